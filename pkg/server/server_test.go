package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/mail"
	"github.com/blindrelay/blindrelay/pkg/server"
	"github.com/blindrelay/blindrelay/pkg/store/postgres/pgtest"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), nil))
}

// newTestConfig is a relay on a free loopback port with a data directory
// that does not exist yet.
func newTestConfig(t testing.TB) server.Config {
	return server.Config{
		DataDir: filepath.Join(t.TempDir(), "data"),
		HTTP:    server.HTTPConfig{Listen: "127.0.0.1:0"},
		UDP:     server.UDPConfig{Listen: "127.0.0.1:0"},
	}
}

// startServer serves cfg until the test ends, and checks then that Serve
// returned nil.
func startServer(t *testing.T, cfg server.Config) *server.Server {
	t.Helper()
	s, stop := startStoppable(t, cfg)
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return s
}

// startStoppable serves cfg; stop cancels Serve's context and returns what
// Serve returned.
func startStoppable(t *testing.T, cfg server.Config) (s *server.Server, stop func() error) {
	t.Helper()
	s, err := server.New(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	var stopped bool
	var serveErr error
	return s, func() error {
		if !stopped {
			stopped = true
			cancel()
			serveErr = <-done
		}
		return serveErr
	}
}

// client trusts s's certificate and nothing else.
func client(s *server.Server) *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: s.CertPool()}},
		Timeout:   10 * time.Second,
	}
}

// get fetches s.URL()+path and returns the response with its body read.
func get(t *testing.T, c *http.Client, url string) (*http.Response, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

func checkHealthz(t *testing.T, s *server.Server) *http.Response {
	t.Helper()
	resp, body := get(t, client(s), s.URL()+"/healthz")
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Fatalf("GET /healthz = %d %q, want 200 ok", resp.StatusCode, body)
	}
	return resp
}

// checkSalt asks for a salt, which goes through the account service to the
// store.
func checkSalt(t *testing.T, s *server.Server) {
	t.Helper()
	c := client(s)
	resp, err := c.Post(s.URL()+"/api/v1/auth/salt", "application/json", strings.NewReader(`{"email":"nobody@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(`"salt"`)) {
		t.Fatalf("POST /api/v1/auth/salt = %d %s", resp.StatusCode, body)
	}
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

// certFingerprint is the SHA-256 of the certificate in a PEM file.
func certFingerprint(t *testing.T, path string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", path)
	}
	return sha256.Sum256(block.Bytes)
}

func TestServeSQLite(t *testing.T) {
	t.Parallel()
	cfg := newTestConfig(t)
	s := startServer(t, cfg)

	if !strings.HasPrefix(s.URL(), "https://localhost:") {
		t.Errorf("URL() = %q, want https://localhost:PORT", s.URL())
	}
	resp := checkHealthz(t, s)
	checkSalt(t, s)

	tlsDir := filepath.Join(cfg.DataDir, "tls")
	checkMode(t, cfg.DataDir, 0o700)
	checkMode(t, tlsDir, 0o700)
	checkMode(t, filepath.Join(tlsDir, "key.pem"), 0o600)
	checkMode(t, filepath.Join(cfg.DataDir, "blindrelay.db"), 0o600)
	served := sha256.Sum256(resp.TLS.PeerCertificates[0].Raw)
	if served != certFingerprint(t, filepath.Join(tlsDir, "cert.pem")) {
		t.Error("served certificate is not the one in cert.pem")
	}
	leaf := resp.TLS.PeerCertificates[0]
	for _, name := range []string{"localhost", "127.0.0.1", "::1"} {
		if err := leaf.VerifyHostname(name); err != nil {
			t.Errorf("certificate does not cover %s: %v", name, err)
		}
	}
}

func TestServePostgres(t *testing.T) {
	t.Parallel()
	cfg := newTestConfig(t)
	cfg.Database.URL = pgtest.URL(t)
	s := startServer(t, cfg)
	checkHealthz(t, s)
	checkSalt(t, s)
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "blindrelay.db")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("PostgreSQL mode made a SQLite file (stat: %v)", err)
	}
}

// TestCertificateReused checks that a second start serves the certificate
// the first one made, and that a new public host gets a new one.
func TestCertificateReused(t *testing.T) {
	t.Parallel()
	cfg := newTestConfig(t)
	certPath := filepath.Join(cfg.DataDir, "tls", "cert.pem")

	s, stop := startStoppable(t, cfg)
	checkHealthz(t, s)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	first := certFingerprint(t, certPath)

	s = startServer(t, cfg)
	served := checkHealthz(t, s).TLS.PeerCertificates[0]
	if sha256.Sum256(served.Raw) != first || certFingerprint(t, certPath) != first {
		t.Fatal("second start made a new certificate")
	}

	cfg.HTTP.PublicURL = "https://relay.example.com:8443"
	s2, err := server.New(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
	if certFingerprint(t, certPath) == first {
		t.Fatal("certificate kept although it does not name the new public host")
	}
	if s2.URL() != "https://relay.example.com:8443" {
		t.Errorf("URL() = %q, want the public URL", s2.URL())
	}
}

func TestCorruptCertificate(t *testing.T) {
	t.Parallel()
	// Make one good pair to copy into each case.
	good := newTestConfig(t)
	s, err := server.New(t.Context(), good, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	goodCert, _ := os.ReadFile(filepath.Join(good.DataDir, "tls", "cert.pem"))
	goodKey, _ := os.ReadFile(filepath.Join(good.DataDir, "tls", "key.pem"))
	otherCfg := newTestConfig(t)
	s, err = server.New(t.Context(), otherCfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	otherKey, _ := os.ReadFile(filepath.Join(otherCfg.DataDir, "tls", "key.pem"))

	tests := []struct {
		name      string
		cert, key []byte // nil: file missing
		wantPath  string // file the error must name
	}{
		{"garbage cert", []byte("not a certificate\n"), goodKey, "cert.pem"},
		{"truncated cert", goodCert[:len(goodCert)/2], goodKey, "cert.pem"},
		{"garbage key", goodCert, []byte("-----BEGIN NOTHING-----\n"), "key.pem"},
		{"missing key", goodCert, nil, "key.pem"},
		{"missing cert", nil, goodKey, "cert.pem"},
		{"key of another cert", goodCert, otherKey, "key.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := newTestConfig(t)
			dir := filepath.Join(cfg.DataDir, "tls")
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			for name, data := range map[string][]byte{"cert.pem": tt.cert, "key.pem": tt.key} {
				if data != nil {
					if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
						t.Fatal(err)
					}
				}
			}
			s, err := server.New(t.Context(), cfg, testLogger(t))
			if err == nil {
				s.Close()
				t.Fatal("New succeeded with a broken certificate pair")
			}
			t.Log(err)
			if want := filepath.Join(dir, tt.wantPath); !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
			// Nothing was overwritten.
			if tt.cert != nil {
				if got, _ := os.ReadFile(filepath.Join(dir, "cert.pem")); !bytes.Equal(got, tt.cert) {
					t.Error("cert.pem was changed")
				}
			}
		})
	}
}

func TestOperatorCertificate(t *testing.T) {
	t.Parallel()
	// A pair the relay made elsewhere stands in for the operator's.
	other := newTestConfig(t)
	s, err := server.New(t.Context(), other, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	cfg := newTestConfig(t)
	cfg.HTTP.TLSCertFile = filepath.Join(other.DataDir, "tls", "cert.pem")
	cfg.HTTP.TLSKeyFile = filepath.Join(other.DataDir, "tls", "key.pem")
	s = startServer(t, cfg)
	served := checkHealthz(t, s).TLS.PeerCertificates[0]
	if sha256.Sum256(served.Raw) != certFingerprint(t, cfg.HTTP.TLSCertFile) {
		t.Error("the --tls-cert certificate is not the one served")
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "tls")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a self-signed pair was made although --tls-cert is set (stat: %v)", err)
	}
}

func TestNewErrors(t *testing.T) {
	t.Parallel()
	busy := startServer(t, newTestConfig(t))
	tests := []struct {
		name   string
		modify func(*server.Config)
		want   string
	}{
		{"listen in use", func(c *server.Config) { c.HTTP.Listen = busy.Addr().String() }, "--listen"},
		{"unreachable postgres", func(c *server.Config) {
			c.Database.URL = "postgres://u:secretpw@127.0.0.1:1/db?connect_timeout=2"
		}, "--database-url"},
		{"bad config", func(c *server.Config) { c.HTTP.PublicURL = "http://x" }, "--public-url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := newTestConfig(t)
			tt.modify(&cfg)
			s, err := server.New(t.Context(), cfg, testLogger(t))
			if err == nil {
				s.Close()
				t.Fatal("New succeeded")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "secretpw") {
				t.Errorf("error %q: want it to name %s and hold no password", err, tt.want)
			}
		})
	}
}

// TestShutdown checks that Serve returns nil soon after its context ends,
// with a client connection open, and that no goroutine outlives it. It is
// not parallel so that other tests' goroutines do not come and go.
func TestShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	cfg := newTestConfig(t)
	s, stop := startStoppable(t, cfg)
	c := client(s)
	checkHealthz(t, s) // leaves a keep-alive connection open
	checkSalt(t, s)

	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	c.CloseIdleConnections()
	if _, err := c.Get(s.URL() + "/healthz"); err == nil {
		t.Error("server still answers after shutdown")
	}
	c.CloseIdleConnections()
	checkGoroutines(t, before)
}

// checkGoroutines waits up to a few seconds for the number of goroutines to
// fall back to want (goroutines of closed connections take a moment to
// notice), then fails with their stacks.
func checkGoroutines(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > want {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d goroutines, want at most %d:\n%s", runtime.NumGoroutine(), want, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCertPoolTrustsOnlyThisRelay(t *testing.T) {
	t.Parallel()
	a := startServer(t, newTestConfig(t))
	b := startServer(t, newTestConfig(t))
	_, err := client(a).Get(b.URL() + "/healthz")
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); !ok {
		t.Fatalf("GET with another relay's pool: err = %v, want a certificate verification error", err)
	}
	if a.CertPool().Equal(b.CertPool()) {
		t.Error("two relays with different data directories share a certificate")
	}
}

// TestSignUpAcrossRestart signs up through the API, stops the relay (which
// must first write the queued confirmation mail to the outbox), starts it
// again on the same data, follows the mailed link and logs in.
func TestSignUpAcrossRestart(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			cfg := newTestConfig(t)
			if driver == "postgres" {
				cfg.Database.URL = pgtest.URL(t)
			}
			cfg.Account.MinKDF = zkcrypto.TestKDFParams()
			cfg.Account.DefaultKDF = zkcrypto.TestKDFParams()
			const email = "alice@example.com"
			password := []byte("correct horse battery staple")

			s, stop := startStoppable(t, cfg)
			if _, err := apiClient(t, s).Register(t.Context(), email, password, "en", zkcrypto.KDFParams{}); err != nil {
				t.Fatal(err)
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			link, err := mail.LatestLink(filepath.Join(cfg.DataDir, "outbox"), email, account.MailVerifyEmail)
			if err != nil {
				t.Fatalf("no confirmation mail after shutdown: %v", err)
			}
			if !strings.HasPrefix(link, s.URL()+"/verify?token=") {
				t.Errorf("mailed link %q does not start with the relay's URL %s", link, s.URL())
			}

			s = startServer(t, cfg)
			c := apiClient(t, s)
			if _, err := c.Verify(t.Context(), apiclient.ParseToken(link)); err != nil {
				t.Fatalf("verify after restart: %v", err)
			}
			if _, _, err := c.Login(t.Context(), email, password); err != nil {
				t.Fatalf("login: %v", err)
			}
			me, err := c.Me(t.Context())
			if err != nil || me.Email != email {
				t.Fatalf("Me = %+v, %v", me, err)
			}
		})
	}
}

func apiClient(t *testing.T, s *server.Server) *apiclient.Client {
	t.Helper()
	c, err := apiclient.New(s.URL(),
		apiclient.WithHTTPClient(client(s)),
		apiclient.WithKDFLimits(zkcrypto.TestKDFParams(), zkcrypto.MaxKDFParams()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}
