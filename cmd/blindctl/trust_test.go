package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// logFingerprint is the fingerprint in the relay's start-up log line
// "tls certificate sha256=...".
var logFingerprint = regexp.MustCompile(`msg="tls certificate" sha256=([0-9a-f]{64})`)

// fingerprint returns the fingerprint the relay logged at start, after
// checking that it is the one of DataDir/tls/cert.pem.
func (r *testRelay) fingerprint(t *testing.T) string {
	t.Helper()
	m := logFingerprint.FindStringSubmatch(r.log.String())
	if m == nil {
		t.Fatalf("no 'tls certificate sha256=' line in the relay's log:\n%s", r.log.String())
	}
	data, err := os.ReadFile(r.certFile())
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM", r.certFile())
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if fp := certFingerprint(c); fp != m[1] {
		t.Fatalf("the relay logged sha256=%s, its cert.pem has %s", m[1], fp)
	}
	return m[1]
}

func (r *testRelay) certFile() string { return filepath.Join(r.dataDir, "tls", "cert.pem") }

// restartWithNewCert stops r, removes its certificate and starts it again
// on the same address and data directory: a new self-signed certificate,
// the same accounts.
func (r *testRelay) restartWithNewCert(t *testing.T) *testRelay {
	t.Helper()
	r.stop()
	if err := os.RemoveAll(filepath.Join(r.dataDir, "tls")); err != nil {
		t.Fatal(err)
	}
	n := startRelay(t, r.dataDir, r.addr)
	if n.url != r.url {
		t.Fatalf("restarted relay has URL %s, was %s", n.url, r.url)
	}
	return n
}

// checkStateFile checks that the state file is private and holds only
// what it should: no password, no key material, only the known fields.
func checkStateFile(t *testing.T, u *user, secrets ...string) {
	t.Helper()
	path := filepath.Join(u.stateDir, stateFileName)
	wantMode(t, path, 0o600)
	wantMode(t, u.stateDir, 0o700)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if strings.Contains(string(data), s) {
			t.Errorf("the state file holds %q:\n%s", s, data)
		}
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		t.Fatal(err)
	}
	for k := range fields {
		if !slices.Contains([]string{"server", "email", "session_token", "account_keys", "tls_pins"}, k) {
			t.Errorf("the state file has an unexpected field %q:\n%s", k, data)
		}
	}
}

func TestCertificateTrust(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)
	fp1 := r.fingerprint(t)
	u := newUser(t, r)
	delete(u.env, envInsecure) // --insecure only where a step says so
	const email = "carol@example.com"
	const password = "password-1"
	recovery := filepath.Join(t.TempDir(), "carol.json")
	key := pinKey(r.url)

	// A self-signed relay is not trusted; the error shows its fingerprint
	// and the ways to trust it.
	res := u.fail(exitError, nil, "resend", "--email", email)
	contains(t, "untrusted", res.stderr, "not trusted", "sha256="+fp1, "blindctl trust --fingerprint "+fp1, "--ca-cert", "--insecure")

	// --ca-cert with the relay's cert.pem: no --insecure, no pin.
	res = u.with(envPassword, password).must(nil, "register", "--email", email, "--recovery-file", recovery, "--ca-cert", r.certFile())
	if strings.Contains(res.stderr, fp1) {
		t.Errorf("register with --ca-cert talked about the fingerprint:\n%s", res.stderr)
	}
	// ... and from the environment.
	u.with(envCACert, r.certFile()).must(nil, "verify", r.link(t, email, account.MailVerifyEmail, ""))
	if st := u.loadState(); len(st.TLSPins) != 0 {
		t.Errorf("--ca-cert pinned a certificate: %v", st.TLSPins)
	}
	res = u.fail(exitUsage, nil, "whoami", "--ca-cert", filepath.Join(t.TempDir(), "missing.pem"))
	contains(t, "missing --ca-cert", res.stderr, "--ca-cert", "missing.pem")
	notPEM := filepath.Join(t.TempDir(), "not.pem")
	if err := os.WriteFile(notPEM, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res = u.fail(exitUsage, nil, "whoami", "--ca-cert", notPEM)
	contains(t, "--ca-cert without PEM", res.stderr, "no PEM certificate")

	// A log-in with --insecure shows the fingerprint and pins it.
	res = u.with(envPassword, password).must(nil, "login", "--insecure")
	contains(t, "login --insecure", res.stdout, "Logged in as "+email)
	contains(t, "login --insecure", res.stderr, "sha256="+fp1, "tls certificate sha256=", "now pinned for "+key)
	if st := u.loadState(); st.TLSPins[key] != fp1 || st.SessionToken == "" {
		t.Fatalf("state after login --insecure = %+v, want pin %s for %s", st, fp1, key)
	}
	checkStateFile(t, u, password)

	// Later commands trust the pinned certificate without --insecure, and
	// say nothing about it; --insecure still works and has nothing new to say.
	res = u.must(nil, "whoami")
	contains(t, "whoami via the pin", res.stdout, email, "confirmed")
	if res.stderr != "" {
		t.Errorf("whoami via the pin wrote to stderr:\n%s", res.stderr)
	}
	if res = u.must(nil, "whoami", "--insecure"); res.stderr != "" {
		t.Errorf("whoami --insecure with the pinned certificate wrote to stderr:\n%s", res.stderr)
	}
	res = u.must(nil, "trust")
	contains(t, "trust of the pinned certificate", res.stdout, "already trusted")

	// The pin is for this relay only: another self-signed relay is not
	// trusted through it, and asking it does not end this session.
	other := newTestRelay(t)
	res = u.fail(exitError, nil, "resend", "--email", email, "--server", other.url)
	contains(t, "other relay", res.stderr, "not trusted", "sha256="+other.fingerprint(t))
	u.must(nil, "whoami")

	// The relay makes a new certificate: refused as changed, with both
	// fingerprints and how to trust the new one.
	r = r.restartWithNewCert(t)
	fp2 := r.fingerprint(t)
	if fp2 == fp1 {
		t.Fatal("the restarted relay kept its certificate")
	}
	res = u.fail(exitError, nil, "whoami")
	contains(t, "whoami after the new certificate", res.stderr,
		"TLS certificate changed", "pinned:    sha256="+fp1, "presented: sha256="+fp2, "blindctl trust --fingerprint "+fp2, "--insecure")
	if st := u.loadState(); st.SessionToken == "" || st.TLSPins[key] != fp1 {
		t.Errorf("a changed certificate changed the state: %+v", st)
	}
	// The login key is never sent over it.
	res = u.with(envPassword, password).fail(exitError, nil, "login", "--email", email)
	contains(t, "login after the new certificate", res.stderr, "TLS certificate changed")

	// trust checks the fingerprint it is given; without one and without a
	// terminal it only shows it.
	res = u.fail(exitError, nil, "trust", "--fingerprint", fp1)
	contains(t, "trust with the old fingerprint", res.stderr, "sha256="+fp2, "nothing was trusted")
	res = u.fail(exitError, nil, "trust")
	contains(t, "trust without a terminal", res.stderr, "sha256="+fp2, "--fingerprint")
	res = u.fail(exitUsage, nil, "trust", "--fingerprint", "abc")
	contains(t, "trust with a short fingerprint", res.stderr, "64 hex digits")
	if st := u.loadState(); st.TLSPins[key] != fp1 {
		t.Fatalf("a refused trust changed the pin to %q", st.TLSPins[key])
	}
	// The fingerprint as the relay logs it, in any case and with colons.
	res = u.must(nil, "trust", "--fingerprint", "SHA256:"+strings.ToUpper(colons(fp2)))
	contains(t, "trust", res.stdout, "Trusted sha256="+fp2, key)
	res = u.must(nil, "whoami")
	contains(t, "whoami after trust", res.stdout, email)

	// Again, now re-trusted with --insecure once: a plain command with
	// --insecure warns but does not pin; a log-in does.
	r = r.restartWithNewCert(t)
	fp3 := r.fingerprint(t)
	u.fail(exitError, nil, "whoami")
	res = u.must(nil, "whoami", "--insecure")
	contains(t, "whoami --insecure with a new certificate", res.stderr, "sha256="+fp3, "WARNING", "sha256="+fp2, "blindctl trust --fingerprint "+fp3)
	if st := u.loadState(); st.TLSPins[key] != fp2 {
		t.Errorf("whoami --insecure pinned: %v", st.TLSPins)
	}
	res = u.with(envPassword, password).must(nil, "login", "--insecure")
	contains(t, "login --insecure with a new certificate", res.stderr, "sha256="+fp3, "now pinned")
	u.must(nil, "whoami")

	// trust --forget, then trust confirmed on a terminal.
	res = u.must(nil, "trust", "--forget")
	contains(t, "trust --forget", res.stdout, "Forgot", key)
	res = u.fail(exitError, nil, "whoami")
	contains(t, "whoami after forget", res.stderr, "not trusted")
	res = u.fail(exitError, newFakeTerm("no"), "trust")
	contains(t, "trust answered no", res.stderr, "sha256="+fp3, "not confirmed")
	u.must(newFakeTerm("yes"), "trust")
	u.must(nil, "whoami")
	if st := u.loadState(); st.TLSPins[key] != fp3 {
		t.Errorf("pin after trust on a terminal = %q, want %s", st.TLSPins[key], fp3)
	}

	// --ca-cert with the current cert.pem verifies without the pin.
	u.must(nil, "trust", "--forget")
	res = u.must(nil, "whoami", "--ca-cert", r.certFile())
	contains(t, "whoami --ca-cert", res.stdout, email)
	res = u.must(nil, "trust", "--ca-cert", r.certFile())
	contains(t, "trust --ca-cert", res.stdout, "needs no pin")
	if st := u.loadState(); len(st.TLSPins) != 0 {
		t.Errorf("pins after --ca-cert = %v", st.TLSPins)
	}
	checkStateFile(t, u, password)
}

// colons writes a hex fingerprint as aa:bb:cc...
func colons(hex string) string {
	var parts []string
	for i := 0; i+2 <= len(hex); i += 2 {
		parts = append(parts, hex[i:i+2])
	}
	return strings.Join(parts, ":")
}

func TestParseFingerprint(t *testing.T) {
	t.Parallel()
	const fp = "3f6c0d2b9a8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
	for _, in := range []string{fp, strings.ToUpper(fp), "sha256=" + fp, "SHA256:" + colons(fp), " " + colons(fp) + "\n"} {
		if got, err := parseFingerprint(in); got != fp || err != nil {
			t.Errorf("parseFingerprint(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "abc", fp + "00", "zz" + fp[2:], "sha1=" + fp} {
		if got, err := parseFingerprint(in); err == nil {
			t.Errorf("parseFingerprint(%q) = %q, want an error", in, got)
		}
	}
}

func TestPinKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://localhost:8443":          "localhost:8443",
		"https://Relay.Example.com":       "relay.example.com:443",
		"https://relay.example.com/r":     "relay.example.com:443",
		"https://[::1]:8443":              "[::1]:8443",
		"https://127.0.0.1:8443/prefix/x": "127.0.0.1:8443",
	} {
		if got := pinKey(in); got != want {
			t.Errorf("pinKey(%q) = %q, want %q", in, got, want)
		}
	}
}
