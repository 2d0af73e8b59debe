package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/api"
	"github.com/blindrelay/blindrelay/pkg/mail"
	"github.com/blindrelay/blindrelay/pkg/ratelimit"
	"github.com/blindrelay/blindrelay/pkg/server"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

func TestMain(m *testing.M) {
	// The test relay derives with tiny parameters; let blindctl accept them.
	minKDF = zkcrypto.TestKDFParams()
	// A *fakeTerm as stdin makes a run interactive.
	terminalFor = func(_ context.Context, stdin io.Reader, _ io.Writer) terminal {
		if ft, ok := stdin.(*fakeTerm); ok {
			return ft
		}
		return nil
	}
	os.Exit(m.Run())
}

// testRelay is a real relay (pkg/server) with a temporary data directory
// and mail going to its outbox.
type testRelay struct {
	url     string
	outbox  string
	dataDir string
	addr    string      // the bound address, to start again on it
	udpAddr string      // the bound UDP address
	log     *syncBuffer // the relay's log
	stop    func()      // shuts the relay down; also at the end of the test
}

// newTestRelay starts a relay on 127.0.0.1:0 with a new data directory.
func newTestRelay(t *testing.T) *testRelay {
	t.Helper()
	return startRelay(t, t.TempDir(), "127.0.0.1:0")
}

// startRelay starts a relay on listen with data directory dir.
func startRelay(t *testing.T, dir, listen string) *testRelay {
	t.Helper()
	return startRelayUDP(t, dir, listen, "127.0.0.1:0")
}

// startRelayUDP starts a relay on listen, with its UDP side on udp, and
// data directory dir.
func startRelayUDP(t *testing.T, dir, listen, udp string) *testRelay {
	t.Helper()
	no := api.Limit{PerIP: ratelimit.NoLimit, PerAccount: ratelimit.NoLimit}
	cfg := server.Config{
		DataDir: dir,
		HTTP:    server.HTTPConfig{Listen: listen},
		UDP:     server.UDPConfig{Listen: udp},
		Account: account.ServiceConfig{DefaultKDF: zkcrypto.TestKDFParams(), MinKDF: zkcrypto.TestKDFParams()},
		Limits:  api.RateLimits{Salt: no, Login: no, Register: no, Resend: no, Reset: no, EmailChange: no},
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), logs), nil))
	ctx, cancel := context.WithCancel(t.Context())
	srv, err := server.New(ctx, cfg, logger)
	if err != nil {
		cancel()
		t.Fatalf("server.New: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return &testRelay{
		url:     srv.URL(),
		outbox:  filepath.Join(dir, "outbox"),
		dataDir: dir,
		addr:    srv.Addr().String(),
		udpAddr: srv.UDPAddr().String(),
		log:     logs,
		stop:    stop,
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// link waits for the newest mail of kind to the address whose link is not
// old, and returns the link. Mail goes out through a queue, so it may land
// in the outbox a moment after the request that caused it.
func (r *testRelay) link(t *testing.T, to string, kind account.MailKind, old string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		link, err := mail.LatestLink(r.outbox, to, kind)
		if err == nil && link != old {
			return link
		}
		if err != nil && !errors.Is(err, mail.ErrNoMail) && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("LatestLink: %v", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no new %s mail to %s in the outbox (last error: %v)", kind, to, err)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// user is one machine running blindctl: its own state directory and
// environment.
type user struct {
	t        *testing.T
	stateDir string
	env      map[string]string
}

func newUser(t *testing.T, r *testRelay) *user {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	return &user{t: t, stateDir: dir, env: map[string]string{
		envServer:   r.url,
		envInsecure: "1",
		envStateDir: dir,
	}}
}

type result struct {
	code           int
	stdout, stderr string
}

// run runs blindctl with stdin (nil, a string, or a *fakeTerm) and u's
// environment.
func (u *user) run(stdin any, args ...string) result {
	u.t.Helper()
	env := map[string]string{}
	for k, v := range u.env {
		env[k] = v
	}
	var in io.Reader
	switch s := stdin.(type) {
	case nil:
		in = strings.NewReader("")
	case string:
		in = strings.NewReader(s)
	case *fakeTerm:
		in = s
	}
	var stdout, stderr strings.Builder
	code := run(u.t.Context(), args, in, &stdout, &stderr, func(k string) string { return env[k] })
	res := result{code, stdout.String(), stderr.String()}
	u.t.Logf("blindctl %s -> %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, res.stdout, res.stderr)
	return res
}

// with returns u's run with extra environment variables.
func (u *user) with(kv ...string) *user {
	v := &user{t: u.t, stateDir: u.stateDir, env: map[string]string{}}
	for k, val := range u.env {
		v.env[k] = val
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.env[kv[i]] = kv[i+1]
	}
	return v
}

func (u *user) must(stdin any, args ...string) result {
	u.t.Helper()
	res := u.run(stdin, args...)
	if res.code != exitOK {
		u.t.Fatalf("blindctl %s: exit %d\n%s", strings.Join(args, " "), res.code, res.stderr)
	}
	return res
}

func (u *user) fail(code int, stdin any, args ...string) result {
	u.t.Helper()
	res := u.run(stdin, args...)
	if res.code != code {
		u.t.Fatalf("blindctl %s: exit %d, want %d", strings.Join(args, " "), res.code, code)
	}
	return res
}

func (u *user) loadState() *state {
	u.t.Helper()
	st, err := loadState(u.stateDir)
	if err != nil {
		u.t.Fatal(err)
	}
	return st
}

func contains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s does not contain %q:\n%s", what, w, got)
		}
	}
}

func wantMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

func recoveryKeys(t *testing.T, path string) (*zkcrypto.UserKeys, *zkcrypto.RecoveryInfo) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	k, info, err := zkcrypto.ParseRecoveryFile(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return k, info
}

func TestLifeCycle(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)
	u := newUser(t, r)
	files := t.TempDir()
	const email = "alice@example.com"
	recovery := filepath.Join(files, "alice-recovery.json")

	// register writes the recovery file (0600) and remembers the address.
	res := u.with(envPassword, "password-1").must(nil, "register", "--email", email, "--recovery-file", recovery, "--language", "de")
	contains(t, "register output", res.stdout, recovery, "Keep it secret", "blindctl verify")
	wantMode(t, recovery, 0o600)
	origKeys, info := recoveryKeys(t, recovery)
	if info.Email != email {
		t.Errorf("recovery file e-mail = %q", info.Email)
	}
	wantMode(t, filepath.Join(u.stateDir, stateFileName), 0o600)
	wantMode(t, u.stateDir, 0o700)
	if st := u.loadState(); st.Email != email || st.Server != r.url || st.SessionToken != "" {
		t.Errorf("state after register = %+v", st)
	}
	// It never overwrites a recovery file.
	before, _ := os.ReadFile(recovery)
	res = u.with(envPassword, "password-1").fail(exitError, nil, "register", "--email", "other@example.com", "--recovery-file", recovery)
	contains(t, "second register", res.stderr, "already exists")
	if after, _ := os.ReadFile(recovery); string(after) != string(before) {
		t.Error("register overwrote the recovery file")
	}

	// Log-in before the address is confirmed says how to go on.
	res = u.with(envPassword, "password-1").fail(exitError, nil, "login")
	contains(t, "unverified login", res.stderr, "email_not_verified", "blindctl resend --email "+email, "blindctl verify")
	first := r.link(t, email, account.MailVerifyEmail, "")
	res = u.must(nil, "resend")
	contains(t, "resend", res.stdout, email)
	link := r.link(t, email, account.MailVerifyEmail, first)
	res = u.must(nil, "verify", link)
	contains(t, "verify", res.stdout, "confirmed", email)
	u.fail(exitError, nil, "verify", link) // used up

	// Log-in: wrong password, then right (the e-mail comes from the state).
	res = u.with(envPassword, "wrong-password").fail(exitError, nil, "login")
	contains(t, "wrong password", res.stderr, "Wrong e-mail address or password.", "invalid_credentials", "recovery request")
	res = u.with(envPassword, "password-1").must(nil, "login")
	contains(t, "login", res.stdout, "Logged in as "+email)
	st := u.loadState()
	if st.SessionToken == "" {
		t.Fatal("login saved no session token")
	}
	// Logging in again ends the session it replaces.
	u.with(envPassword, "password-1").must(nil, "login")
	if u.loadState().SessionToken == st.SessionToken {
		t.Fatal("a second login kept the session token")
	}
	stale := newUser(t, r)
	if err := st.save(stale.stateDir); err != nil {
		t.Fatal(err)
	}
	res = stale.fail(exitError, nil, "whoami")
	contains(t, "whoami with the replaced session", res.stderr, "unauthorized")
	stateBytes, _ := os.ReadFile(filepath.Join(u.stateDir, stateFileName))
	if strings.Contains(string(stateBytes), "password-1") {
		t.Error("the state file holds the password")
	}
	wantMode(t, filepath.Join(u.stateDir, stateFileName), 0o600)

	// whoami --json.
	res = u.must(nil, "whoami", "--json")
	var who struct {
		ID, Email, Language, Server string
		Verified                    bool
	}
	if err := json.Unmarshal([]byte(res.stdout), &who); err != nil {
		t.Fatalf("whoami --json: %v", err)
	}
	if who.Email != email || !who.Verified || who.ID == "" || who.Language != "de" || who.Server != r.url {
		t.Errorf("whoami --json = %+v", who)
	}
	res = u.must(nil, "whoami")
	contains(t, "whoami", res.stdout, email, "confirmed")

	// passwd: from the environment, then from stdin.
	res = u.with(envPassword, "wrong-password", envNewPassword, "password-2").fail(exitError, nil, "passwd")
	contains(t, "passwd with a wrong password", res.stderr, "wrong current password")
	res = u.with(envPassword, "password-1", envNewPassword, "password-2").must(nil, "passwd")
	contains(t, "passwd", res.stdout, "Password changed")
	u.must("password-2\npassword-3\n", "passwd", "--password-stdin")
	res = u.with(envPassword, "password-3").fail(exitError, nil, "passwd", "--password-stdin") // no lines on stdin
	contains(t, "passwd without stdin lines", res.stderr, "--password-stdin")

	// e-mail change, confirmed with the mailed link; global flags after the command.
	const newEmail = "alice@example.org"
	res = u.with(envPassword, "password-3").must(nil, "email", "change", newEmail)
	contains(t, "email change", res.stdout, newEmail)
	link = r.link(t, newEmail, account.MailChangeEmailConfirm, "")
	res = u.must(nil, "verify", link, "--state-dir", u.stateDir)
	contains(t, "verify change", res.stdout, "now "+newEmail)
	res = u.must(nil, "whoami", "--json")
	contains(t, "whoami after change", res.stdout, `"email": "`+newEmail+`"`)
	if st := u.loadState(); st.Email != newEmail {
		t.Errorf("state e-mail after the change = %q", st.Email)
	}

	// logout, and logout --all from a second machine.
	res = u.must(nil, "logout")
	contains(t, "logout", res.stdout, "Logged out.")
	res = u.fail(exitError, nil, "whoami")
	contains(t, "whoami after logout", res.stderr, "not logged in", "blindctl login")
	res = u.must(nil, "logout")
	contains(t, "second logout", res.stdout, "Not logged in.")
	laptop := newUser(t, r)
	u.with(envPassword, "password-3").must(nil, "login")
	laptop.with(envPassword, "password-3").must(nil, "login", "--email", newEmail)
	res = laptop.must(nil, "logout", "--all")
	contains(t, "logout --all", res.stdout, "2 session(s) ended")
	res = u.fail(exitError, nil, "whoami")
	contains(t, "whoami after logout --all elsewhere", res.stderr, "unauthorized", "session has ended")
	if st := u.loadState(); st.SessionToken != "" {
		t.Error("an ended session stayed in the state")
	}

	// recovery save: same keys as the file of register.
	u.with(envPassword, "password-3").must(nil, "login")
	saved := filepath.Join(files, "saved.json")
	res = u.with(envPassword, "wrong-password").fail(exitError, nil, "recovery", "save", saved)
	contains(t, "recovery save with a wrong password", res.stderr, "wrong password")
	res = u.with(envPassword, "password-3").must(nil, "recovery", "save", saved)
	contains(t, "recovery save", res.stdout, saved)
	wantMode(t, saved, 0o600)
	savedKeys, info := recoveryKeys(t, saved)
	if savedKeys.BoxPublic != origKeys.BoxPublic || !savedKeys.SignPublic.Equal(origKeys.SignPublic) || info.Email != newEmail {
		t.Error("recovery save wrote other keys than register")
	}
	u.with(envPassword, "password-3").fail(exitError, nil, "recovery", "save", saved)

	// recovery reset with the file: keys kept, new password works.
	res = u.must(nil, "recovery", "request")
	contains(t, "recovery request", res.stdout, newEmail)
	resetLink := r.link(t, newEmail, account.MailResetPassword, "")
	res = u.with(envPassword, "password-4").must(nil, "recovery", "reset", "--token", resetLink, "--recovery-file", recovery)
	contains(t, "reset with file", res.stdout, "devices keep working")
	if st := u.loadState(); st.SessionToken != "" {
		t.Error("the session of the reset account stayed in the state")
	}
	u.with(envPassword, "password-3").fail(exitError, nil, "login")
	u.with(envPassword, "password-4").must(nil, "login")
	again := filepath.Join(files, "after-reset.json")
	u.with(envPassword, "password-4").must(nil, "recovery", "save", again)
	if k, _ := recoveryKeys(t, again); k.BoxPublic != origKeys.BoxPublic || !k.SignPublic.Equal(origKeys.SignPublic) {
		t.Error("a reset with the recovery file changed the keys")
	}
	res = u.fail(exitError, nil, "recovery", "reset", "--token", resetLink, "--recovery-file", recovery)
	contains(t, "reset with a used link", res.stderr, "token_invalid", "recovery request")

	// recovery reset without the file: warning, refused without --yes, new keys with it.
	u.must(nil, "recovery", "request")
	resetLink = r.link(t, newEmail, account.MailResetPassword, resetLink)
	res = u.with(envPassword, "password-5").fail(exitError, nil, "recovery", "reset", "--token", resetLink)
	contains(t, "reset without file, no --yes", res.stderr, "WARNING", "ALL devices", "refusing", "--yes")
	res = u.with(envPassword, "password-5").must(nil, "recovery", "reset", "--yes", "--token", resetLink)
	contains(t, "reset without file", res.stderr, "WARNING", "ALL devices")
	contains(t, "reset without file", res.stdout, "new keys", "recovery save")
	u.with(envPassword, "password-5").must(nil, "login")
	fresh := filepath.Join(files, "fresh.json")
	u.with(envPassword, "password-5").must(nil, "recovery", "save", fresh)
	if k, _ := recoveryKeys(t, fresh); k.BoxPublic == origKeys.BoxPublic {
		t.Error("a reset without the recovery file kept the keys")
	}

	// account delete: refused without confirmation, then done.
	res = u.with(envPassword, "password-5").fail(exitError, nil, "account", "delete")
	contains(t, "delete without --yes", res.stderr, "refusing", "--yes")
	res = u.with(envPassword, "password-5").must(nil, "account", "delete", "--yes")
	contains(t, "delete", res.stdout, "deleted")
	res = u.with(envPassword, "password-5").fail(exitError, nil, "login", "--email", newEmail)
	contains(t, "login after delete", res.stderr, "invalid_credentials")
}

// TestInteractive drives the prompts through a fake terminal: passwords
// asked twice, typed confirmations.
func TestInteractive(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)
	u := newUser(t, r)
	const email = "bob@example.com"
	recovery := filepath.Join(t.TempDir(), "bob.json")

	// Passwords that differ are refused, and no account or file is made.
	res := u.fail(exitError, newFakeTerm(email, "password-1", "password-X"), "register", "--recovery-file", recovery)
	contains(t, "register with mismatched passwords", res.stderr, "do not match")
	if _, err := os.Stat(recovery); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a failed register left the recovery file: %v", err)
	}
	res = u.fail(exitError, newFakeTerm(email, "short", "short"), "register", "--recovery-file", recovery)
	contains(t, "register with a short password", res.stderr, "too short")

	ft := newFakeTerm(email, "password-1", "password-1")
	u.must(ft, "register", "--recovery-file", recovery)
	contains(t, "register prompts", strings.Join(ft.prompts, "|"), "E-mail: ", "Password: ", "Password (again): ")
	u.must(nil, "verify", r.link(t, email, account.MailVerifyEmail, ""))
	ft = newFakeTerm("", "password-1") // accept the remembered address
	u.must(ft, "login")
	contains(t, "login prompts", strings.Join(ft.prompts, "|"), "E-mail ["+email+"]: ")

	// account delete wants the address typed.
	res = u.fail(exitError, newFakeTerm("someone@example.com"), "account", "delete")
	contains(t, "delete with the wrong address", res.stderr, "not confirmed")
	u.must(nil, "whoami")

	// reset without a file wants "yes".
	u.must(nil, "recovery", "request")
	link := r.link(t, email, account.MailResetPassword, "")
	res = u.fail(exitError, newFakeTerm("no"), "recovery", "reset", "--token", link)
	contains(t, "reset answered no", res.stderr, "WARNING", "not confirmed")
	u.must(newFakeTerm("yes", "password-2", "password-2"), "recovery", "reset", "--token", link)
	u.must(newFakeTerm("", "password-2"), "login")

	u.must(newFakeTerm("BOB@example.com", "password-2"), "account", "delete")
}

func TestErrors(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)

	t.Run("not logged in", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, r)
		for _, args := range [][]string{{"whoami"}, {"passwd"}, {"email", "change", "x@example.com"}, {"recovery", "save", "x"}, {"account", "delete", "--yes"}} {
			res := u.fail(exitError, nil, args...)
			contains(t, strings.Join(args, " "), res.stderr, "not logged in", "blindctl login")
		}
	})
	t.Run("no password without a terminal", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, r)
		res := u.fail(exitError, nil, "login", "--email", "x@example.com")
		contains(t, "login", res.stderr, "stdin is not a terminal", envPassword, "--password-stdin")
	})
	t.Run("no email without a terminal", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, r)
		res := u.fail(exitUsage, nil, "register")
		contains(t, "register", res.stderr, "--email")
	})
	t.Run("missing --server value", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, r)
		res := u.fail(exitUsage, nil, "login", "--server")
		contains(t, "login --server", res.stderr, "flag needs an argument", "-server", "Usage: blindctl login")
		res = u.fail(exitUsage, nil, "--server")
		contains(t, "--server", res.stderr, "flag needs an argument")
	})
	t.Run("bad --server", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, r)
		res := u.fail(exitUsage, nil, "--server", "relay.example:8443", "whoami")
		contains(t, "--server without scheme", res.stderr, "--server", "scheme")
	})
	t.Run("unreachable server", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, r)
		u.env[envServer] = "https://" + closedAddr(t)
		res := u.with(envPassword, "password-1").fail(exitError, nil, "login", "--email", "x@example.com")
		contains(t, "login", res.stderr, "cannot reach the relay", envServer)
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, r)
		delete(u.env, envInsecure)
		res := u.fail(exitError, nil, "resend", "--email", "x@example.com")
		contains(t, "resend", res.stderr, "not trusted", "--insecure")
		u.must(nil, "resend", "--email", "x@example.com", "--insecure")
		u.env[envInsecure] = "maybe"
		res = u.fail(exitUsage, nil, "resend", "--email", "x@example.com")
		contains(t, "bad env", res.stderr, envInsecure)
	})
	t.Run("session goes only to its server", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, r)
		st := &state{Server: "https://elsewhere.example", Email: "a@example.com", SessionToken: "secret"}
		if err := st.save(u.stateDir); err != nil {
			t.Fatal(err)
		}
		res := u.fail(exitError, nil, "whoami")
		contains(t, "whoami", res.stderr, "not logged in")
	})
	t.Run("reset with a bad link", func(t *testing.T) {
		t.Parallel()
		u := newUser(t, r)
		res := u.fail(exitError, nil, "recovery", "reset", "--token", r.url+"/reset?token=bogus", "--yes")
		contains(t, "reset", res.stderr, "token_invalid", "recovery request")
		u.fail(exitUsage, nil, "recovery", "reset")
	})
}

// closedAddr returns a local address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestUsage(t *testing.T) {
	t.Parallel()
	u := &user{t: t, env: map[string]string{}}

	res := u.must(nil, "--help")
	for _, c := range commands {
		contains(t, "--help", res.stdout, "  "+c.name)
	}
	contains(t, "--help", res.stdout, "help [command]", "--server", "--insecure", "--ca-cert", envCACert, "--state-dir", "--email", "--password-stdin", "Examples:", envPassword)
	if help := u.must(nil, "help").stdout; help != res.stdout {
		t.Error("blindctl help differs from blindctl --help")
	}

	for _, c := range commands {
		args := append(strings.Fields(c.name), "--help")
		res := u.must(nil, args...)
		contains(t, c.name+" --help", res.stdout, "Usage: blindctl "+c.name, "Examples:", "Global flags:")
		if h := u.must(nil, append([]string{"help"}, strings.Fields(c.name)...)...).stdout; h != res.stdout {
			t.Errorf("blindctl help %s differs from --help", c.name)
		}
	}
	contains(t, "recovery --help", u.must(nil, "recovery", "--help").stdout, "recovery save", "recovery reset")

	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, "no command"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"recovery"}, "needs a subcommand"},
		{[]string{"recovery", "frob"}, `unknown command "recovery frob"`},
		{[]string{"whoami", "--frob"}, "flag provided but not defined"},
		{[]string{"--frob", "whoami"}, "flag provided but not defined"},
		{[]string{"--json", "whoami"}, "flag provided but not defined"},
		{[]string{"verify"}, "takes 1 argument"},
		{[]string{"verify", "a", "b"}, "takes 1 argument"},
		{[]string{"help", "frobnicate"}, "unknown command"},
	} {
		res := u.fail(exitUsage, nil, tt.args...)
		contains(t, strings.Join(tt.args, " "), res.stderr, tt.want, "Usage:")
	}
}

func TestParseInterleaved(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		args    []string
		wantPos []string
		wantYes bool
	}{
		{[]string{"a", "--yes", "b"}, []string{"a", "b"}, true},
		{[]string{"--yes", "a"}, []string{"a"}, true},
		{[]string{"a", "--", "--yes"}, []string{"a", "--yes"}, false},
		{nil, nil, false},
	} {
		a := &app{}
		fs := a.flagSet("t")
		yes := fs.Bool("yes", false, "")
		pos, err := parseInterleaved(fs, tt.args)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(pos, ",") != strings.Join(tt.wantPos, ",") || *yes != tt.wantYes {
			t.Errorf("parseInterleaved(%q) = %q, yes=%v", tt.args, pos, *yes)
		}
	}
}

func TestDefaultRecoveryPath(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"alice@example.com":   "blindrelay-recovery-alice@example.com.json",
		"a/b\\c@example.com ": "blindrelay-recovery-a_b_c@example.com.json",
		"../x@example.com":    "blindrelay-recovery-.._x@example.com.json",
	} {
		if got := defaultRecoveryPath(in); got != want {
			t.Errorf("defaultRecoveryPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLanguageFromEnv(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"LANG": "de_DE.UTF-8"}, "de"},
		{map[string]string{"LANG": "fr_FR.UTF-8", "LC_ALL": "en_US.UTF-8"}, "en"},
		{map[string]string{"LANG": "it_IT.UTF-8"}, ""},
		{map[string]string{"LANG": "C"}, ""},
		{nil, ""},
	} {
		if got := languageFromEnv(func(k string) string { return tt.env[k] }); got != tt.want {
			t.Errorf("languageFromEnv(%v) = %q, want %q", tt.env, got, tt.want)
		}
	}
}

func TestInterruptible(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	block := make(chan struct{})
	defer close(block)
	done := make(chan error, 1)
	go func() {
		_, err := interruptible(ctx, func() (string, error) { <-block; return "late", nil })
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("interruptible after cancel = %v, want context.Canceled", err)
	}
	if got, err := interruptible(t.Context(), func() (string, error) { return "line", nil }); got != "line" || err != nil {
		t.Errorf("interruptible = %q, %v", got, err)
	}
}

// fakeTerm is a terminal that answers prompts from a list. As stdin of run
// it makes the run interactive (see TestMain).
type fakeTerm struct {
	answers []string
	prompts []string
}

func newFakeTerm(answers ...string) *fakeTerm { return &fakeTerm{answers: answers} }

func (f *fakeTerm) next(prompt string) (string, error) {
	f.prompts = append(f.prompts, prompt)
	if len(f.answers) == 0 {
		return "", io.EOF
	}
	a := f.answers[0]
	f.answers = f.answers[1:]
	return a, nil
}

func (f *fakeTerm) ReadPassword(prompt string) ([]byte, error) {
	s, err := f.next(prompt)
	return []byte(s), err
}

func (f *fakeTerm) ReadLine(prompt string) (string, error) { return f.next(prompt) }

func (f *fakeTerm) Read([]byte) (int, error) { return 0, io.EOF }
