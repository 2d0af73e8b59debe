package mail

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/blindrelay/blindrelay/pkg/account"
)

const testLink = "https://relay.example.com/verify?token=AbC-123_xyz"

// wordsByLanguage are phrases each language's mails must contain, and
// that the other languages' mails must not.
var wordsByLanguage = map[string][]string{
	"en": {"Hello,", "blindrelay", "Replies are not read."},
	"de": {"Hallo,", "blindrelay", "Antworten werden nicht gelesen."},
	"fr": {"Bonjour,", "blindrelay", "Les réponses ne sont pas lues."},
}

// unexpected are the openings of the paragraph that says what to do if the
// mail was not expected; each mail has one.
var unexpected = map[string][]string{
	"en": {"If you did not", "If it was not you"},
	"de": {"Falls Sie das nicht", "Falls Sie sich nicht"},
	"fr": {"Si vous n'", "Si ce n'était pas vous"},
}

// validity is how each language says how long a link lives.
var validity = map[string]map[account.MailKind]string{
	"en": {account.MailVerifyEmail: "valid for 24 hours", account.MailChangeEmailConfirm: "valid for 24 hours", account.MailResetPassword: "valid for one hour"},
	"de": {account.MailVerifyEmail: "24 Stunden gültig", account.MailChangeEmailConfirm: "24 Stunden gültig", account.MailResetPassword: "eine Stunde gültig"},
	"fr": {account.MailVerifyEmail: "valable 24 heures", account.MailChangeEmailConfirm: "valable 24 heures", account.MailResetPassword: "valable une heure"},
}

// resetWords: the reset mail explains the recovery file and its absence.
var resetWords = map[string][]string{
	"en": {"recovery file", "devices keep working", "lose access to your devices", "paired again"},
	"de": {"Wiederherstellungsdatei", "Geräte funktionieren nach dem Zurücksetzen weiter", "verlieren den Zugriff auf Ihre Geräte", "neu gekoppelt"},
	"fr": {"fichier de récupération", "appareils continuent de fonctionner", "perdrez l'accès à vos appareils", "appairé de nouveau"},
}

func TestRenderAll(t *testing.T) {
	t.Parallel()
	for _, lang := range languages {
		t.Run(lang, func(t *testing.T) {
			t.Parallel()
			for _, kind := range kinds {
				t.Run(string(kind), func(t *testing.T) {
					t.Parallel()
					m := account.Mail{Kind: kind, To: "ada@example.com", Language: lang, OtherEmail: "new@example.org"}
					if hasLink(kind) {
						m.Link = testLink
					}
					subject, text, err := Render(m)
					if err != nil {
						t.Fatal(err)
					}
					t.Logf("Subject: %s\n\n%s", subject, text)
					checkRendered(t, lang, kind, subject, text)
				})
			}
		})
	}
}

func checkRendered(t *testing.T, lang string, kind account.MailKind, subject, text string) {
	t.Helper()
	if strings.TrimSpace(subject) == "" || strings.ContainsAny(subject, "\r\n") || subject != strings.TrimSpace(subject) {
		t.Errorf("subject %q: want one non-empty trimmed line", subject)
	}
	if !strings.Contains(subject, "blindrelay") {
		t.Errorf("subject %q does not name blindrelay", subject)
	}
	if !utf8.ValidString(text) || strings.Contains(text, "\r") {
		t.Error("body is not clean UTF-8 with \\n line ends")
	}
	if !strings.HasSuffix(text, "\n") || strings.HasSuffix(text, "\n\n") || strings.HasPrefix(text, "\n") {
		t.Error("body must end with exactly one newline and start with text")
	}
	for _, bad := range []string{"<no value>", "{{", "}}", "%!"} {
		if strings.Contains(subject+text, bad) {
			t.Errorf("rendered mail contains %q", bad)
		}
	}
	for _, w := range wordsByLanguage[lang] {
		if !strings.Contains(text, w) {
			t.Errorf("body lacks %q", w)
		}
	}
	for other, words := range wordsByLanguage {
		if other != lang && strings.Contains(text, words[0]) {
			t.Errorf("body contains %q of language %s", words[0], other)
		}
	}
	if !slices.ContainsFunc(unexpected[lang], func(w string) bool { return strings.Contains(text, w) }) {
		t.Errorf("body does not say what to do if the mail was unexpected (one of %q)", unexpected[lang])
	}
	lines := strings.Split(text, "\n")
	if hasLink(kind) {
		if !slices.Contains(lines, testLink) {
			t.Error("the link is not on a line of its own")
		}
		if want := validity[lang][kind]; !strings.Contains(text, want) {
			t.Errorf("body does not say how long the link is valid (%q)", want)
		}
	} else if strings.Contains(text, "http") {
		t.Error("body of a kind without link contains a URL")
	}
	if !strings.Contains(text, "ada@example.com") && kind != account.MailVerifyEmail {
		t.Error("body does not name the account's address")
	}
	switch kind {
	case account.MailResetPassword:
		for _, w := range resetWords[lang] {
			if !strings.Contains(text, w) {
				t.Errorf("reset mail lacks %q", w)
			}
		}
	case account.MailChangeEmailNotice:
		if !slices.Contains(lines, "new@example.org") {
			t.Error("change notice does not show the new address on its own line")
		}
	}
}

// TestRenderTranslated checks that every kind reads differently in every
// language, so that no template was left untranslated.
func TestRenderTranslated(t *testing.T) {
	t.Parallel()
	for _, kind := range kinds {
		seen := map[string]string{}
		for _, lang := range languages {
			subject, text, err := Render(account.Mail{Kind: kind, To: "a@example.com", Language: lang, Link: testLink})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{subject, text} {
				if prev, ok := seen[s]; ok {
					t.Errorf("%s: %s and %s render the same: %q", kind, prev, lang, s)
				}
				seen[s] = lang
			}
		}
	}
}

// TestTemplatesComplete checks that each language file defines exactly
// the kinds there are, so that a typo in a name shows up here.
func TestTemplatesComplete(t *testing.T) {
	t.Parallel()
	var want []string
	for _, kind := range kinds {
		want = append(want, string(kind)+".body", string(kind)+".subject")
	}
	want = append(want, "footer")
	slices.Sort(want)
	for _, lang := range languages {
		var got []string
		for _, tmpl := range templates[lang].Templates() {
			if name := tmpl.Name(); name != lang && name != lang+".tmpl" {
				got = append(got, name)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s templates:\n got %q\nwant %q", lang, got, want)
		}
	}
}

func TestRenderLanguage(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, language, want string
	}{
		{"german", "de", "Hallo,"},
		{"german region", "de-AT", "Hallo,"},
		{"german upper case", "DE", "Hallo,"},
		{"french underscore", "fr_CH", "Bonjour,"},
		{"empty", "", "Hello,"},
		{"unknown", "es", "Hello,"},
		{"garbage", "x-\x00", "Hello,"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, text, err := Render(account.Mail{Kind: account.MailPasswordChanged, To: "a@example.com", Language: tt.language})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(text, tt.want) {
				t.Errorf("body starts %q, want %q", text[:20], tt.want)
			}
		})
	}
}

func TestRenderNoticeWithoutOtherEmail(t *testing.T) {
	t.Parallel()
	for _, lang := range languages {
		_, text, err := Render(account.Mail{Kind: account.MailChangeEmailNotice, To: "a@example.com", Language: lang})
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(text, ":\n\n\n") || strings.Contains(text, "\n\n\n") {
			t.Errorf("%s: empty new-address block:\n%s", lang, text)
		}
	}
}

func TestRenderIgnoresLinkOfKindWithoutLink(t *testing.T) {
	t.Parallel()
	_, text, err := Render(account.Mail{Kind: account.MailAccountDeleted, To: "a@example.com", Link: testLink})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(text, testLink) {
		t.Error("link rendered into a mail kind that has none")
	}
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		m    account.Mail
		want error
	}{
		{"unknown kind", account.Mail{Kind: "welcome_back", To: "a@example.com"}, ErrUnknownKind},
		{"empty kind", account.Mail{To: "a@example.com"}, ErrUnknownKind},
		{"no link", account.Mail{Kind: account.MailVerifyEmail, To: "a@example.com"}, ErrInvalidMail},
		{"no link in reset", account.Mail{Kind: account.MailResetPassword, To: "a@example.com"}, ErrInvalidMail},
		{"no recipient", account.Mail{Kind: account.MailAccountDeleted}, ErrInvalidMail},
		{"link with line break", account.Mail{Kind: account.MailVerifyEmail, To: "a@example.com", Link: testLink + "\nBcc: x"}, ErrInvalidMail},
		{"recipient with space", account.Mail{Kind: account.MailAccountDeleted, To: "a@example.com b@example.com"}, ErrInvalidMail},
		{"other e-mail with control", account.Mail{Kind: account.MailChangeEmailNotice, To: "a@example.com", OtherEmail: "b@example.com\x07"}, ErrInvalidMail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			subject, text, err := Render(tt.m)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Render error = %v, want %v", err, tt.want)
			}
			if subject != "" || text != "" {
				t.Error("Render returned text with its error")
			}
		})
	}
}
