package mail

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

func newTestOutbox(t *testing.T) (*Outbox, *syncBuffer) {
	t.Helper()
	logger, logs := testLogger(t)
	o, err := NewOutbox(filepath.Join(t.TempDir(), "outbox"), logger)
	if err != nil {
		t.Fatal(err)
	}
	return o, logs
}

// outboxFiles returns the names of all entries of the outbox directory.
func outboxFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestOutboxSend(t *testing.T) {
	t.Parallel()
	o, logs := newTestOutbox(t)
	if runtime.GOOS != "windows" {
		info, err := os.Stat(o.Dir())
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm != 0o700 {
			t.Errorf("outbox directory mode %v, want 0700", perm)
		}
	}
	m := account.Mail{Kind: account.MailResetPassword, To: "ada@example.com", Language: "fr", Link: testLink}
	if err := o.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	names := outboxFiles(t, o.Dir())
	if len(names) != 1 {
		t.Fatalf("outbox holds %q, want one mail and nothing else", names)
	}
	name := names[0]
	if outboxKind(name) != m.Kind || !strings.HasSuffix(name, ".eml") {
		t.Errorf("file name %q does not follow <time>-<kind>-<random>.eml", name)
	}
	stamp, _, _ := strings.Cut(name, "-")
	if ts, err := time.Parse(outboxTimeFormat, stamp); err != nil || time.Since(ts).Abs() > time.Minute {
		t.Errorf("file name time %q: %v", stamp, err)
	}
	path := filepath.Join(o.Dir(), name)
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); runtime.GOOS != "windows" && perm != 0o600 {
		t.Errorf("mail file mode %v, want 0600", perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	checkMessage(t, data, m, time.Now())

	log := logs.String()
	for _, want := range []string{`msg="mail written to outbox"`, "path=" + path, "to=ada@example.com", "kind=reset_password", `link="` + testLink + `"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
}

func TestOutboxLogsNoLinkForNotices(t *testing.T) {
	t.Parallel()
	o, logs := newTestOutbox(t)
	m := account.Mail{Kind: account.MailAlreadyRegistered, To: "ada@example.com", Link: "https://stray.example/"}
	if err := o.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	if log := logs.String(); strings.Contains(log, "link=") || !strings.Contains(log, "kind=already_registered") {
		t.Errorf("log:\n%s", log)
	}
}

func TestOutboxInvalidMail(t *testing.T) {
	t.Parallel()
	o, _ := newTestOutbox(t)
	for _, m := range []account.Mail{
		{Kind: "nonsense", To: "ada@example.com"},
		{Kind: account.MailVerifyEmail, To: "ada@example.com"},
		{Kind: account.MailAccountDeleted, To: "not-an-address"},
	} {
		if err := o.Send(t.Context(), m); err == nil {
			t.Errorf("Send(%+v) succeeded", m)
		}
	}
	if names := outboxFiles(t, o.Dir()); len(names) != 0 {
		t.Errorf("outbox holds %q after failed sends", names)
	}
}

func TestOutboxRestrictsExistingDir(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no Unix modes")
	}
	dir := filepath.Join(t.TempDir(), "outbox")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	logger, _ := testLogger(t)
	if _, err := NewOutbox(dir, logger); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("mode %v, want 0700", perm)
	}
}

func TestNewOutboxErrors(t *testing.T) {
	t.Parallel()
	logger, _ := testLogger(t)
	if _, err := NewOutbox("", logger); err == nil {
		t.Error("NewOutbox(\"\") succeeded")
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := NewOutbox(file, logger); err == nil {
		t.Error("NewOutbox(a file) succeeded")
	}
}

func TestLatestLink(t *testing.T) {
	t.Parallel()
	o, _ := newTestOutbox(t)
	send := func(kind account.MailKind, to, link string) {
		t.Helper()
		if err := o.Send(t.Context(), account.Mail{Kind: kind, To: to, Language: "de", Link: link}); err != nil {
			t.Fatal(err)
		}
	}
	// A long link, so that quoted-printable breaks its line in the file.
	long := "https://relay.example.com/verify?token=" + strings.Repeat("AbCdEfGhIj", 12)
	send(account.MailVerifyEmail, "ada@example.com", "https://relay.example.com/verify?token=first")
	send(account.MailVerifyEmail, "bob@example.com", "https://relay.example.com/verify?token=bob")
	send(account.MailVerifyEmail, "ada@example.com", long)
	send(account.MailResetPassword, "ada@example.com", "https://relay.example.com/reset?token=reset")
	send(account.MailPasswordChanged, "ada@example.com", "")
	// Files that are not outbox mails are ignored.
	if err := os.WriteFile(filepath.Join(o.Dir(), ".outbox-123.tmp"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(o.Dir(), "README"), []byte("hi"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		to      string
		kind    account.MailKind
		want    string
		wantErr error
	}{
		{"newest of two", "ada@example.com", account.MailVerifyEmail, long, nil},
		{"other recipient", "bob@example.com", account.MailVerifyEmail, "https://relay.example.com/verify?token=bob", nil},
		{"address case", "Ada@Example.COM", account.MailResetPassword, "https://relay.example.com/reset?token=reset", nil},
		{"no mail to address", "eve@example.com", account.MailVerifyEmail, "", ErrNoMail},
		{"no mail of kind", "bob@example.com", account.MailResetPassword, "", ErrNoMail},
		{"kind without link", "ada@example.com", account.MailPasswordChanged, "", ErrInvalidMail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := LatestLink(o.Dir(), tt.to, tt.kind)
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("LatestLink = %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
	if _, err := LatestLink(filepath.Join(o.Dir(), "missing"), "ada@example.com", account.MailVerifyEmail); err == nil {
		t.Error("LatestLink on a missing directory succeeded")
	}
}

// TestOutboxConcurrent sends from many goroutines: every mail lands in
// its own file and the newest is found.
func TestOutboxConcurrent(t *testing.T) {
	t.Parallel()
	o, _ := newTestOutbox(t)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			m := account.Mail{Kind: account.MailVerifyEmail, To: "ada@example.com", Link: testLink + strings.Repeat("x", i)}
			if err := o.Send(t.Context(), m); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if names := outboxFiles(t, o.Dir()); len(names) != n {
		t.Errorf("outbox holds %d files, want %d", len(names), n)
	}
	if _, err := LatestLink(o.Dir(), "ada@example.com", account.MailVerifyEmail); err != nil {
		t.Error(err)
	}
}
