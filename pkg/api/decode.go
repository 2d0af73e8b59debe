package api

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// decode reads r's body as one JSON value of type T: the content type must
// be application/json (UTF-8), unknown fields are refused, and nothing may
// follow the value. Errors are *account.Error values (invalid_json,
// body_too_large, unsupported_media).
func decode[T any](r *http.Request) (T, error) {
	return decodeBody[T](r.Header.Get("Content-Type"), r.Body)
}

// decodeBody is decode on a content type and a body. The body is expected
// to be limited (limitBody); reading past the limit fails with
// *http.MaxBytesError.
func decodeBody[T any](contentType string, body io.Reader) (T, error) {
	var v T
	if err := checkContentType(contentType); err != nil {
		return v, err
	}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		if err == nil {
			err = errors.New("trailing data")
		}
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return v, jsonError(err)
		}
		return v, account.Errorf(account.CodeInvalidJSON, "The body must hold one JSON object and nothing after it.")
	}
	return v, nil
}

// checkContentType accepts application/json with no charset or UTF-8.
func checkContentType(ct string) error {
	mt, params, err := mime.ParseMediaType(ct)
	if err == nil && mt == "application/json" {
		if cs, ok := params["charset"]; !ok || strings.EqualFold(cs, "utf-8") {
			return nil
		}
	}
	return account.Errorf(account.CodeUnsupportedMedia, "The body must be JSON (Content-Type: application/json).")
}

// jsonError turns a decoding error into an *account.Error. Messages name
// fields but never echo the client's values.
func jsonError(err error) error {
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return account.Errorf(account.CodeBodyTooLarge, "The body must be at most %d bytes.", maxBodyBytes)
	}
	if e, ok := errors.AsType[*json.SyntaxError](err); ok {
		return account.Errorf(account.CodeInvalidJSON, "The body is not valid JSON (at byte %d).", e.Offset)
	}
	if e, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := e.Field
		if field == "" {
			return account.Errorf(account.CodeInvalidJSON, "The body must be a JSON object.")
		}
		return account.Errorf(account.CodeInvalidJSON, "Field %s has the wrong type.", shorten(field))
	}
	if _, ok := errors.AsType[base64.CorruptInputError](err); ok {
		return account.Errorf(account.CodeInvalidJSON, "A binary field is not valid base64.")
	}
	if errors.Is(err, io.EOF) {
		return account.Errorf(account.CodeInvalidJSON, "The body is empty.")
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return account.Errorf(account.CodeInvalidJSON, "The body is not valid JSON (it ends too early).")
	}
	// encoding/json has no type for this one.
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return account.Errorf(account.CodeInvalidJSON, "Unknown field %s.", shorten(name))
	}
	return account.Errorf(account.CodeInvalidJSON, "The body is not the JSON this endpoint takes.")
}

// shorten keeps client-chosen names in messages short.
func shorten(s string) string {
	const n = 64
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
