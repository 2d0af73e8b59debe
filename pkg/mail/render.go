package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"
	"unicode"

	"github.com/blindrelay/blindrelay/pkg/account"
)

var (
	// ErrUnknownKind is returned for an account.MailKind that has no
	// template.
	ErrUnknownKind = errors.New("unknown mail kind")
	// ErrInvalidMail is returned for a mail that lacks a field its kind
	// needs, or whose fields cannot go into a message (an address or link
	// with line breaks, say).
	ErrInvalidMail = errors.New("invalid mail")
)

// defaultLanguage is used for a mail whose language has no templates.
const defaultLanguage = "en"

// languages are the languages with templates.
var languages = []string{"en", "de", "fr"}

// kinds are the mail kinds Render knows, in the order of account.go.
var kinds = []account.MailKind{
	account.MailVerifyEmail,
	account.MailAlreadyRegistered,
	account.MailChangeEmailConfirm,
	account.MailChangeEmailNotice,
	account.MailChangeEmailTaken,
	account.MailResetPassword,
	account.MailPasswordChanged,
	account.MailAccountDeleted,
}

// hasLink reports whether mails of kind k carry a link (account.Mail.Link
// must then be set; other kinds ignore it).
func hasLink(k account.MailKind) bool {
	switch k {
	case account.MailVerifyEmail, account.MailChangeEmailConfirm, account.MailResetPassword:
		return true
	}
	return false
}

// templates/<lang>.tmpl defines "<kind>.subject" and "<kind>.body" for
// every kind, plus "footer". One file per language keeps a translation in
// one place.
//
//go:embed templates/*.tmpl
var templateFS embed.FS

// templates maps a language to its parsed template set.
var templates = func() map[string]*template.Template {
	sets := make(map[string]*template.Template, len(languages))
	for _, lang := range languages {
		name := "templates/" + lang + ".tmpl"
		sets[lang] = template.Must(template.New(lang).Option("missingkey=error").ParseFS(templateFS, name))
	}
	return sets
}()

// templateData is what the templates see.
type templateData struct {
	To         string // the recipient
	Link       string // the confirmation or reset link, where the kind has one
	OtherEmail string // the new address, in a change notice
}

// Render returns the subject and the plain-text body of m, in m.Language
// ("de", "de-AT" and "DE" all choose German), or in English if there are
// no templates for it. The body ends with a newline; a link stands alone on
// its line.
//
// It returns an error wrapping ErrUnknownKind for a kind without templates,
// and one wrapping ErrInvalidMail if a link kind has no link or a field
// holds control characters.
func Render(m account.Mail) (subject, text string, err error) {
	if err := check(m); err != nil {
		return "", "", fmt.Errorf("render %s: %w", m.Kind, err)
	}
	t := templates[language(m.Language)]
	data := templateData{To: m.To, OtherEmail: m.OtherEmail}
	if hasLink(m.Kind) {
		data.Link = m.Link
	}
	subject, err = execute(t, string(m.Kind)+".subject", data)
	if err != nil {
		return "", "", err
	}
	text, err = execute(t, string(m.Kind)+".body", data)
	if err != nil {
		return "", "", err
	}
	return strings.Join(strings.Fields(subject), " "), strings.TrimSpace(text) + "\n", nil
}

// check validates m before it goes into a template.
func check(m account.Mail) error {
	if !slices.Contains(kinds, m.Kind) {
		return fmt.Errorf("%w %q", ErrUnknownKind, m.Kind)
	}
	if hasLink(m.Kind) && m.Link == "" {
		return fmt.Errorf("%w: no link", ErrInvalidMail)
	}
	for _, f := range []struct{ name, value string }{{"to", m.To}, {"link", m.Link}, {"other e-mail", m.OtherEmail}} {
		if strings.ContainsFunc(f.value, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) {
			return fmt.Errorf("%w: %s contains white space or control characters", ErrInvalidMail, f.name)
		}
	}
	if m.To == "" {
		return fmt.Errorf("%w: no recipient", ErrInvalidMail)
	}
	return nil
}

// language maps a language tag to one of languages.
func language(tag string) string {
	primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
	primary, _, _ = strings.Cut(primary, "_")
	if _, ok := templates[primary]; ok {
		return primary
	}
	return defaultLanguage
}

func execute(t *template.Template, name string, data templateData) (string, error) {
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, name, data); err != nil {
		return "", fmt.Errorf("render %s: %w", name, err)
	}
	return buf.String(), nil
}
