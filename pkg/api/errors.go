package api

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// statusOf maps every error code to its HTTP status (docs/api.md "Errors").
// A code missing here is answered as 500.
var statusOf = map[account.Code]int{
	account.CodeInvalidInput:       http.StatusBadRequest,
	account.CodeInvalidJSON:        http.StatusBadRequest,
	account.CodeUnauthorized:       http.StatusUnauthorized,
	account.CodeInvalidCredentials: http.StatusUnauthorized,
	account.CodeEmailNotVerified:   http.StatusForbidden,
	account.CodeForbiddenOrigin:    http.StatusForbidden,
	account.CodeRecoveryMismatch:   http.StatusBadRequest,
	account.CodeNotFound:           http.StatusNotFound,
	account.CodeMethodNotAllowed:   http.StatusMethodNotAllowed,
	account.CodeEmailTaken:         http.StatusConflict,
	account.CodeConflict:           http.StatusConflict,
	account.CodeTokenInvalid:       http.StatusBadRequest,
	account.CodeTokenExpired:       http.StatusGone,
	account.CodeTokenUsedUp:        http.StatusGone,
	account.CodeTokenRevoked:       http.StatusGone,
	account.CodeDeviceExists:       http.StatusConflict,
	account.CodeAllSlotsBusy:       http.StatusConflict,
	account.CodeSlotBusy:           http.StatusConflict,
	account.CodeDeviceOffline:      http.StatusServiceUnavailable,
	account.CodeBodyTooLarge:       http.StatusRequestEntityTooLarge,
	account.CodeUnsupportedMedia:   http.StatusUnsupportedMediaType,
	account.CodeRateLimited:        http.StatusTooManyRequests,
	account.CodeInternal:           http.StatusInternalServerError,
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    account.Code `json:"code"`
	Message string       `json:"message"`
}

// error answers err. Internal errors are logged; their message stays
// generic.
func (s *server) error(w http.ResponseWriter, r *http.Request, err error) {
	writeError(w, r, err, s.log)
}

// writeError answers err as JSON with the status of its code, and logs it
// to log (if not nil) when it is internal.
func writeError(w http.ResponseWriter, r *http.Request, err error, log *slog.Logger) {
	code := account.ErrorCode(err)
	status, ok := statusOf[code]
	if !ok {
		code, status = account.CodeInternal, http.StatusInternalServerError
	}
	msg := account.ErrorMessage(err)
	if code == account.CodeInternal {
		msg = "Internal error."
		if log != nil {
			log.ErrorContext(r.Context(), "request failed",
				slog.String("method", r.Method), slog.String("path", r.URL.Path),
				slog.String("remote_addr", clientIPFrom(r.Context()).String()), slog.Any("error", err))
		}
	}
	if rl, ok := isRateLimited(err); ok {
		w.Header().Set("Retry-After", strconv.Itoa(rl.retryAfterSeconds()))
	}
	writeJSON(w, status, errorBody{errorDetail{Code: code, Message: msg}})
}

// writeJSON answers v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own response types get here; they always marshal.
		panic("api: marshal response: " + err.Error())
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// notFound is the router's answer to an unknown path.
func (s *server) notFound(w http.ResponseWriter, r *http.Request) {
	s.error(w, r, account.Errorf(account.CodeNotFound, "No such resource."))
}

// methodNotAllowed is the router's answer to a known path with another
// method. Allow lists the methods the path has.
func (s *server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		if s.router.Match(chi.NewRouteContext(), m, r.URL.Path) {
			w.Header().Add("Allow", m)
		}
	}
	s.error(w, r, account.Errorf(account.CodeMethodNotAllowed, "This method is not allowed here."))
}
