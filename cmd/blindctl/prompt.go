package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// minPasswordLen is the shortest new password blindctl accepts. The relay
// cannot check (it never sees the password), so the client does.
const minPasswordLen = 8

// terminal asks the user things. It exists only when stdin is a terminal.
type terminal interface {
	// ReadPassword shows prompt and reads a line without echo.
	ReadPassword(prompt string) ([]byte, error)
	// ReadLine shows prompt and reads a line.
	ReadLine(prompt string) (string, error)
}

// tty is the terminal on stdin; prompts go to stderr, so stdout stays
// clean for output such as whoami --json.
type tty struct {
	ctx   context.Context // ends a prompt early (Ctrl-C)
	in    *os.File
	lines *bufio.Reader
	out   io.Writer
}

func newTTY(ctx context.Context, in *os.File, out io.Writer) *tty {
	return &tty{ctx: ctx, in: in, lines: bufio.NewReader(in), out: out}
}

func (t *tty) ReadPassword(prompt string) ([]byte, error) {
	fd := int(t.in.Fd())
	saved, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	fmt.Fprint(t.out, prompt)
	pw, err := interruptible(t.ctx, func() ([]byte, error) { return term.ReadPassword(fd) })
	fmt.Fprintln(t.out)
	if t.ctx.Err() != nil {
		// The read is abandoned; give the terminal its echo back.
		_ = term.Restore(fd, saved)
	}
	if err != nil {
		return nil, fmt.Errorf("read password: %w", err)
	}
	return pw, nil
}

func (t *tty) ReadLine(prompt string) (string, error) {
	fmt.Fprint(t.out, prompt)
	s, err := interruptible(t.ctx, func() (string, error) { return t.lines.ReadString('\n') })
	if err != nil && (s == "" || !errors.Is(err, io.EOF)) {
		return "", fmt.Errorf("read answer: %w", err)
	}
	return strings.TrimSpace(s), nil
}

// interruptible runs read, a blocking read of the terminal, and returns
// early when ctx ends (the signal handler of main catches Ctrl-C, so the
// read itself would go on). The abandoned read is left to the process exit.
func interruptible[T any](ctx context.Context, read func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := read()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// passwordSpec says where one password comes from.
type passwordSpec struct {
	prompt string // "Password", "New password", ...
	env    string // environment variable to take it from, if set
	isNew  bool   // a new password: asked twice at a prompt, length-checked
}

// readPassword returns a password: the next line of stdin with
// --password-stdin, else the environment variable, else a no-echo prompt.
func (a *app) readPassword(spec passwordSpec) ([]byte, error) {
	pw, err := a.readPasswordFrom(spec)
	if err != nil {
		return nil, err
	}
	if len(pw) == 0 {
		return nil, errors.New("empty password")
	}
	if spec.isNew && len([]rune(string(pw))) < minPasswordLen {
		return nil, fmt.Errorf("the new password is too short: use at least %d characters", minPasswordLen)
	}
	return pw, nil
}

func (a *app) readPasswordFrom(spec passwordSpec) ([]byte, error) {
	switch {
	case a.passwordStdin:
		if a.lines == nil {
			a.lines = bufio.NewReader(a.stdin)
		}
		line, err := a.lines.ReadBytes('\n')
		if err != nil && (len(line) == 0 || !errors.Is(err, io.EOF)) {
			return nil, fmt.Errorf("--password-stdin: %s: no line on stdin", strings.ToLower(spec.prompt))
		}
		return bytes.TrimRight(line, "\r\n"), nil
	case a.env(spec.env) != "":
		return []byte(a.env(spec.env)), nil
	case a.term == nil:
		return nil, fmt.Errorf("%s needed, but stdin is not a terminal: set %s or use --password-stdin", strings.ToLower(spec.prompt), spec.env)
	}
	pw, err := a.term.ReadPassword(spec.prompt + ": ")
	if err != nil || !spec.isNew {
		return pw, err
	}
	again, err := a.term.ReadPassword(spec.prompt + " (again): ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(pw, again) {
		return nil, errors.New("the passwords do not match")
	}
	return pw, nil
}

// email returns the account's address: --email, else (when fallback is
// set) the last one used, else asked for.
func (a *app) email(fallback bool) (string, error) {
	if a.emailFlag != "" {
		return strings.TrimSpace(a.emailFlag), nil
	}
	last := ""
	if fallback {
		last = a.state.Email
	}
	if a.term == nil {
		if last != "" {
			return last, nil
		}
		return "", usageErrorf("no e-mail address: use --email")
	}
	prompt := "E-mail: "
	if last != "" {
		prompt = fmt.Sprintf("E-mail [%s]: ", last)
	}
	s, err := a.term.ReadLine(prompt)
	switch {
	case err != nil:
		return "", err
	case s == "" && last != "":
		return last, nil
	case s == "":
		return "", errors.New("no e-mail address given")
	}
	return s, nil
}

// errNotConfirmed: the user did not confirm a destructive step.
var errNotConfirmed = errors.New("not confirmed; nothing was changed")

// confirm asks the user to type want (compared without case) before a step
// that cannot be undone. yes (--yes) skips the question; without a terminal
// and without yes it refuses.
func (a *app) confirm(question, want string, yes bool) error {
	if yes {
		return nil
	}
	if a.term == nil {
		return errors.New("refusing without confirmation: stdin is not a terminal; add --yes to confirm")
	}
	answer, err := a.term.ReadLine(question)
	if err != nil {
		return err
	}
	if !strings.EqualFold(answer, want) {
		return errNotConfirmed
	}
	return nil
}
