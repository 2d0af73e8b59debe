package apiclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Error is an error answer of the relay: the HTTP status, the stable code
// (see pkg/account's Code constants, e.g. "invalid_credentials") and the
// message meant for people. An answer that is not the API's JSON error
// (a proxy's HTML page, say) gives an Error with an empty Code and a Message
// that names the status and quotes the start of the body.
type Error struct {
	Status  int
	Code    string
	Message string
	// RetryAfter is the server's Retry-After on a 429 answer (0 if none).
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.Status)
	}
	return fmt.Sprintf("%s (%s, HTTP %d)", e.Message, e.Code, e.Status)
}

// ErrorCode returns the Code of the first *Error in err's chain, or "".
func ErrorCode(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return ""
}

// Errors of the client-side work, before or instead of a request.
var (
	// ErrWrongPassword: the password does not open the account's private
	// keys (it is not the account's current password).
	ErrWrongPassword = errors.New("wrong password")
	// ErrRecoveryMismatch: the recovery file's public keys are not the
	// account's, so it cannot be used for this reset.
	ErrRecoveryMismatch = errors.New("this recovery file does not belong to the account of this reset link")
	// ErrKDFRefused: key-derivation parameters outside the client's limits
	// (see WithKDFLimits).
	ErrKDFRefused = errors.New("key-derivation parameters refused")
	// ErrNoSessionCookie: a log-in answered 200 but set no session cookie.
	ErrNoSessionCookie = errors.New("the server set no session cookie")
)

// parseError turns a non-2xx response into an *Error.
func parseError(resp *http.Response) *Error {
	e := &Error{Status: resp.StatusCode}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n >= 0 {
			e.RetryAfter = time.Duration(n) * time.Second
		}
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorSize))
	var doc struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &doc); err == nil && doc.Error.Code != "" {
		e.Code, e.Message = doc.Error.Code, doc.Error.Message
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
		return e
	}
	e.Message = "unexpected answer from the server: " + resp.Status
	if snippet := bodySnippet(body); snippet != "" {
		e.Message += ": " + strconv.Quote(snippet)
	}
	return e
}

// bodySnippet returns the start of a body as one line of valid text.
func bodySnippet(b []byte) string {
	const max = 120
	s := strings.Join(strings.Fields(strings.ToValidUTF8(string(b), "?")), " ")
	if len(s) > max {
		s = s[:max]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return s
}
