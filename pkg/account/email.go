package account

import (
	"net/mail"
	"slices"
	"strings"
)

// MaxEmailLength is the longest e-mail address accepted (RFC 5321's limit
// on a forward path, less the angle brackets).
const MaxEmailLength = 254

// Languages are the languages mails and pages come in; the first is the
// default.
var Languages = []string{"en", "de", "fr"}

// DefaultLanguage is used where nobody chose one.
const DefaultLanguage = "en"

// NormalizeEmail trims and lower-cases an e-mail address and checks that it
// is one plain address ("someone@example.org", no display name, no
// comments) of at most MaxEmailLength characters. The error is an *Error
// with CodeInvalidInput.
func NormalizeEmail(s string) (string, error) { return normalizeEmail("email", s) }

// normalizeEmail is NormalizeEmail with errors that name field.
func normalizeEmail(field, s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch {
	case s == "":
		return "", Errorf(CodeInvalidInput, "%s is required.", field)
	case len(s) > MaxEmailLength:
		return "", Errorf(CodeInvalidInput, "%s must be at most %d characters.", field, MaxEmailLength)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s {
		return "", Errorf(CodeInvalidInput, "%s is not a valid e-mail address.", field)
	}
	return s, nil
}

// ValidLanguage reports whether lang is one of Languages.
func ValidLanguage(lang string) bool { return slices.Contains(Languages, lang) }

// checkLanguage validates an optional language: "" gives def.
func checkLanguage(lang, def string) (string, error) {
	if lang == "" {
		return def, nil
	}
	if !ValidLanguage(lang) {
		return "", Errorf(CodeInvalidInput, "language must be one of %s.", strings.Join(Languages, ", "))
	}
	return lang, nil
}
