package mail

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// defaultFrom is the sender of outbox mails, which never leave the machine.
const defaultFrom = "blindrelay <blindrelay@localhost>"

// headerAutoSubmitted marks a message as sent by a program (RFC 3834), so
// that vacation responders do not answer it.
const headerAutoSubmitted gomail.Header = "Auto-Submitted"

// orDiscard returns logger, or one that discards if it is nil.
func orDiscard(logger *slog.Logger) *slog.Logger {
	if logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return logger
}

// parseFrom parses a sender such as "noreply@example.com" or
// "blindrelay <noreply@example.com>".
func parseFrom(from string) (*netmail.Address, error) {
	addr, err := netmail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("from address %q: %w", from, err)
	}
	return addr, nil
}

// newMessage renders m and builds the complete message from from, dated
// now. SMTP sends it and Outbox writes it, so both carry the same headers.
func newMessage(from *netmail.Address, m account.Mail, now time.Time) (*gomail.Msg, error) {
	subject, text, err := Render(m)
	if err != nil {
		return nil, err
	}
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	msg.FromMailAddress(from)
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("%w: recipient: %w", ErrInvalidMail, err)
	}
	msg.Subject(subject)
	msg.SetDateWithValue(now)
	msg.SetMessageIDWithValue(messageID(from.Address))
	msg.SetGenHeader(headerAutoSubmitted, "auto-generated")
	msg.SetBodyString(gomail.TypeTextPlain, text)
	return msg, nil
}

// messageID returns a fresh Message-ID (without the angle brackets) in the
// sender's domain. go-mail's default would use the host name, which says
// more about the machine than a mail needs to.
func messageID(from string) string {
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	domain := "localhost"
	if i := strings.LastIndexByte(from, '@'); i >= 0 && i < len(from)-1 {
		domain = from[i+1:]
	}
	return hex.EncodeToString(b[:]) + "@" + domain
}
