package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
)

// hinted is an error with advice on what to do about it.
type hinted struct {
	err  error
	hint string
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

// hint attaches advice to err, printed on its own line after the error.
func hint(err error, advice string) error { return &hinted{err: err, hint: advice} }

// report prints a failed command's error to stderr: the relay's message
// and code for API errors, plain words for connection problems, then any
// hints.
func (a *app) report(err error) {
	fmt.Fprintf(a.stderr, "blindctl: %s\n", a.describe(err))
	if apiclient.ErrorCode(err) == "unauthorized" && a.state != nil && a.state.SessionToken != "" {
		// The relay ended the session (expiry, logout elsewhere, password
		// change): forget it so that the next command says so plainly.
		if a.saveSession("", "") == nil {
			fmt.Fprintln(a.stderr, "Your session has ended. Log in again: blindctl login")
		}
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if h, ok := e.(*hinted); ok {
			fmt.Fprintln(a.stderr, h.hint)
		}
	}
}

// describe turns err into one line for a person.
func (a *app) describe(err error) string {
	if e, ok := errors.AsType[*apiclient.Error](err); ok {
		switch {
		case e.Code == "":
			return fmt.Sprintf("%s from %s", e.Error(), a.server)
		case e.RetryAfter > 0:
			return fmt.Sprintf("%s (%s) Try again in %s.", e.Message, e.Code, e.RetryAfter)
		default:
			return fmt.Sprintf("%s (%s)", e.Message, e.Code)
		}
	}
	if msg := a.describeCertError(err); msg != "" {
		return msg
	}
	var opErr *net.OpError
	var urlErr *url.Error
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return fmt.Sprintf("cannot reach the relay at %s: %v\nCheck --server (or %s).", a.server, opErr.Err, envServer)
	}
	if errors.As(err, &urlErr) {
		return fmt.Sprintf("talking to the relay at %s: %v", a.server, urlErr.Err)
	}
	return err.Error()
}
