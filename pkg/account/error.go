package account

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error code. The API sends it to
// clients as is; pkg/api maps each code to an HTTP status.
type Code string

// The error codes. Add new ones; never change the meaning of one.
const (
	CodeInvalidInput       Code = "invalid_input"       // a field is missing, malformed or the wrong length
	CodeInvalidJSON        Code = "invalid_json"        // the body is not the JSON the endpoint takes
	CodeBodyTooLarge       Code = "body_too_large"      // the body exceeds the endpoint's limit
	CodeUnsupportedMedia   Code = "unsupported_media"   // not application/json
	CodeUnauthorized       Code = "unauthorized"        // no or no longer valid session
	CodeInvalidCredentials Code = "invalid_credentials" // wrong e-mail or password
	CodeEmailNotVerified   Code = "email_not_verified"  // log-in before the address was confirmed
	CodeEmailTaken         Code = "email_taken"         // only where it leaks nothing: e-mail change by a logged-in user
	CodeTokenInvalid       Code = "token_invalid"       // unknown or already used e-mail token
	CodeTokenExpired       Code = "token_expired"       // e-mail token past its lifetime
	CodeRecoveryMismatch   Code = "recovery_mismatch"   // the recovery file belongs to another account or key set
	CodeForbiddenOrigin    Code = "forbidden_origin"    // state-changing request from a foreign Origin
	CodeRateLimited        Code = "rate_limited"        // too many attempts; retry later
	CodeNotFound           Code = "not_found"           // no such route or resource
	CodeMethodNotAllowed   Code = "method_not_allowed"  // route exists, method does not
	CodeConflict           Code = "conflict"            // the state changed under the request
	CodeInternal           Code = "internal"            // anything unexpected; logged, never detailed

	// Devices and pairing (pkg/keystore). A pairing token that is unknown
	// or past its lifetime gets CodeTokenInvalid or CodeTokenExpired, as an
	// e-mail token does.
	CodeTokenUsedUp  Code = "token_used_up" // pairing token with no uses left
	CodeTokenRevoked Code = "token_revoked" // pairing token revoked by its user
	CodeDeviceExists Code = "device_exists" // a device with this UID or WireGuard public key is already paired

	// Tunnels (GET /devices/{id}/tunnel), before the WebSocket upgrade.
	CodeAllSlotsBusy  Code = "all_slots_busy" // every key slot of the user on the device is in use
	CodeSlotBusy      Code = "slot_busy"      // the key slot the client asked for is in use
	CodeDeviceOffline Code = "device_offline" // the relay has no management tunnel to the device
)

// Error is a domain error: a stable Code and a message fit for a person.
// The message never carries secrets.
type Error struct {
	Code    Code
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal if there is none (and "" for a nil err).
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the message of the first *Error in err's chain, or
// a generic message that reveals nothing of an internal error.
func ErrorMessage(err error) string {
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Message
	}
	return "Internal error."
}

// Errors the stores return. They are *Error values, so they carry their code
// to the API without translation.
var (
	ErrUserNotFound       = &Error{Code: CodeNotFound, Message: "Account not found."}
	ErrEmailTaken         = &Error{Code: CodeEmailTaken, Message: "This e-mail address is already in use."}
	ErrTokenInvalid       = &Error{Code: CodeTokenInvalid, Message: "This link is not valid or has already been used."}
	ErrTokenExpired       = &Error{Code: CodeTokenExpired, Message: "This link has expired. Please request a new one."}
	ErrSessionNotFound    = &Error{Code: CodeUnauthorized, Message: "Please log in."}
	ErrInvalidCredentials = &Error{Code: CodeInvalidCredentials, Message: "Wrong e-mail address or password."}
)
