package mail

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime/quotedprintable"
	netmail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// ErrNoMail is returned by LatestLink when no mail in the outbox matches.
var ErrNoMail = errors.New("no matching mail in the outbox")

// outboxTimeFormat starts each outbox file name: UTC, sortable as text.
const outboxTimeFormat = "20060102T150405.000000000Z"

// Outbox is an account.Mailer that writes mails to a directory instead of
// sending them: the mailer for development, tests, and relays without SMTP.
//
// Each mail becomes a complete RFC 5322 message (the headers SMTP would
// send) in <dir>/<UTC time>-<kind>-<random>.eml, readable by any mail
// program, with mode 0600 in a directory of mode 0700. A file appears
// whole or not at all (it is written aside and renamed).
//
// Each mail is also logged at level info as "mail written to outbox" with
// path, to, kind and, for kinds that carry one, the link. Logging the link
// breaks the rule that tokens stay out of logs, on purpose: on a relay
// without SMTP, the log is how a newcomer confirms the first account.
// Treat that log like the outbox itself: whoever reads it can take over
// accounts that are being confirmed or reset. Use SMTP wherever people
// other than the operator have accounts.
type Outbox struct {
	dir    string
	logger *slog.Logger
	from   *netmail.Address

	mu   sync.Mutex
	last time.Time // time of the newest mail; guarded by mu
}

// NewOutbox returns an Outbox writing to dir, creating dir (mode 0700) if
// needed. An existing dir that others may read is restricted to 0700. A
// nil logger discards (and so loses the links).
func NewOutbox(dir string, logger *slog.Logger) (*Outbox, error) {
	if dir == "" {
		return nil, errors.New("outbox: no directory")
	}
	logger = orDiscard(logger)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	if info.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return nil, fmt.Errorf("outbox: %w", err)
		}
		logger.Info("outbox directory restricted to its owner", "path", dir, "was", info.Mode().Perm().String())
	}
	from, err := parseFrom(defaultFrom)
	if err != nil {
		panic(err) // a constant
	}
	return &Outbox{dir: dir, logger: logger, from: from}, nil
}

// Dir returns the outbox directory.
func (o *Outbox) Dir() string { return o.dir }

// Send writes m to the outbox and logs it (see Outbox). Errors are those
// of Render and of the file system.
func (o *Outbox) Send(ctx context.Context, m account.Mail) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	now := o.now()
	msg, err := newMessage(o.from, m, now)
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	name := fmt.Sprintf("%s-%s-%s.eml", now.Format(outboxTimeFormat), m.Kind, randomHex(4))
	path := filepath.Join(o.dir, name)
	if err := writeFileAtomic(path, msg); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	attrs := []any{"path", path, "to", m.To, "kind", m.Kind}
	if hasLink(m.Kind) {
		attrs = append(attrs, "link", m.Link) // on purpose, see Outbox
	}
	o.logger.Info("mail written to outbox", attrs...)
	return nil
}

// now returns the current time in UTC, later than that of any earlier
// mail, so that file names sort in sending order even on a coarse clock.
func (o *Outbox) now() time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := time.Now().UTC().Round(0)
	if !now.After(o.last) {
		now = o.last.Add(time.Nanosecond)
	}
	o.last = now
	return now
}

// writeFileAtomic writes what w writes to path, through a temporary file
// (mode 0600) in the same directory that is renamed into place.
func writeFileAtomic(path string, w io.WriterTo) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), ".outbox-*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	bw := bufio.NewWriter(f)
	if _, err := w.WriteTo(bw); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close %s: %w", f.Name(), err)
	}
	return os.Rename(f.Name(), path)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand, Go 1.24+)
	return hex.EncodeToString(b)
}

// LatestLink returns the link in the newest mail of the given kind to the
// address to in the outbox directory dir. It is for tests and scripts
// that play the user's part: sign up, then follow the mailed link.
//
// The error wraps ErrNoMail if there is no such mail, and ErrInvalidMail
// if kind carries no link.
func LatestLink(dir, to string, kind account.MailKind) (string, error) {
	if !hasLink(kind) {
		return "", fmt.Errorf("outbox %s: %w: %s mails carry no link", dir, ErrInvalidMail, kind)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	var names []string
	for _, e := range entries {
		if e.Type().IsRegular() && outboxKind(e.Name()) == kind {
			names = append(names, e.Name())
		}
	}
	// The names start with the time: the newest sorts last.
	slices.Sort(names)
	slices.Reverse(names)
	for _, name := range names {
		path := filepath.Join(dir, name)
		rcpts, link, err := readOutboxMail(path)
		if err != nil {
			return "", fmt.Errorf("outbox: %s: %w", path, err)
		}
		if slices.ContainsFunc(rcpts, func(a *netmail.Address) bool { return strings.EqualFold(a.Address, to) }) {
			if link == "" {
				return "", fmt.Errorf("outbox: %s: no link in the mail", path)
			}
			return link, nil
		}
	}
	return "", fmt.Errorf("outbox %s: %w: to %s, kind %s", dir, ErrNoMail, to, kind)
}

// outboxKind returns the kind in an outbox file name, or "" if name is
// not one.
func outboxKind(name string) account.MailKind {
	base, ok := strings.CutSuffix(name, ".eml")
	if !ok {
		return ""
	}
	first := strings.IndexByte(base, '-')
	last := strings.LastIndexByte(base, '-')
	if first < 0 || last <= first {
		return ""
	}
	return account.MailKind(base[first+1 : last])
}

// readOutboxMail parses an outbox file and returns its recipients and the
// first line of its body that is a URL.
func readOutboxMail(path string) (to []*netmail.Address, link string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	defer f.Close()
	msg, err := netmail.ReadMessage(bufio.NewReader(f))
	if err != nil {
		return nil, "", err
	}
	to, err = msg.Header.AddressList("To")
	if err != nil {
		return nil, "", fmt.Errorf("to: %w", err)
	}
	body, err := decodeBody(msg)
	if err != nil {
		return nil, "", err
	}
	for line := range strings.Lines(string(body)) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "https://") || strings.HasPrefix(line, "http://") {
			return to, line, nil
		}
	}
	return to, "", nil
}

// decodeBody returns the body of a single-part message, undoing its
// Content-Transfer-Encoding.
func decodeBody(msg *netmail.Message) ([]byte, error) {
	var r io.Reader
	switch cte := strings.ToLower(strings.TrimSpace(msg.Header.Get("Content-Transfer-Encoding"))); cte {
	case "quoted-printable":
		r = quotedprintable.NewReader(msg.Body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, msg.Body)
	case "", "7bit", "8bit", "binary":
		r = msg.Body
	default:
		return nil, fmt.Errorf("unknown content transfer encoding %q", cte)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return body, nil
}
