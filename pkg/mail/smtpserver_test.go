package mail

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// testSMTPOptions configure newTestSMTPServer.
type testSMTPOptions struct {
	user, pass  string      // if set, AUTH PLAIN with these is required before MAIL
	rejectRcpt  string      // RCPT TO this address is answered 550
	tlsConfig   *tls.Config // if set, STARTTLS is offered (or, with implicitTLS, spoken from the start)
	implicitTLS bool
}

// received is one message as the test server got it.
type received struct {
	from     string
	to       []string
	data     []byte
	authUser string
	tls      bool
}

// testSMTPServer is a real SMTP server (emersion/go-smtp) on 127.0.0.1.
type testSMTPServer struct {
	addr     netip.AddrPort
	opts     testSMTPOptions
	messages chan received // every accepted message, in order
}

// newTestSMTPServer starts a server that lives as long as the test.
func newTestSMTPServer(t *testing.T, opts testSMTPOptions) *testSMTPServer {
	t.Helper()
	ts := &testSMTPServer{opts: opts, messages: make(chan received, 100)}
	s := gosmtp.NewServer(gosmtp.BackendFunc(ts.newSession))
	s.Domain = "localhost"
	s.AllowInsecureAuth = true // AUTH PLAIN without TLS, as go-mail allows on loopback
	s.ReadTimeout = 30 * time.Second
	s.WriteTimeout = 30 * time.Second
	s.MaxMessageBytes = 1 << 20
	s.ErrorLog = slogLogger{slog.New(slog.NewTextHandler(t.Output(), nil))}
	var ln net.Listener
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.implicitTLS {
		ln = tls.NewListener(ln, opts.tlsConfig)
	} else {
		s.TLSConfig = opts.tlsConfig
	}
	ts.addr = netip.MustParseAddrPort(ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		s.Close()
		ln.Close() // Close misses a listener that Serve has not registered yet
		if err := <-served; err != nil && !errors.Is(err, gosmtp.ErrServerClosed) {
			t.Errorf("smtp server: %v", err)
		}
	})
	return ts
}

// next returns the next message the server accepted, failing the test if
// none comes within a while.
func (ts *testSMTPServer) next(t *testing.T) received {
	t.Helper()
	select {
	case r := <-ts.messages:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("smtp server: no message received")
		return received{}
	}
}

// none fails the test if a message is waiting.
func (ts *testSMTPServer) none(t *testing.T) {
	t.Helper()
	select {
	case r := <-ts.messages:
		t.Fatalf("smtp server: unexpected message to %v", r.to)
	default:
	}
}

func (ts *testSMTPServer) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &testSession{server: ts, tls: isTLS}, nil
}

type testSession struct {
	server   *testSMTPServer
	tls      bool
	authUser string
	msg      received
}

var _ gosmtp.AuthSession = (*testSession)(nil)

func (s *testSession) AuthMechanisms() []string {
	if s.server.opts.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || s.server.opts.user == "" {
		return nil, gosmtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.server.opts.user || pass != s.server.opts.pass {
			return gosmtp.ErrAuthFailed
		}
		s.authUser = user
		return nil
	}), nil
}

func (s *testSession) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.server.opts.user != "" && s.authUser == "" {
		return gosmtp.ErrAuthRequired
	}
	s.msg = received{from: from, authUser: s.authUser, tls: s.tls}
	return nil
}

func (s *testSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.server.opts.rejectRcpt != "" && strings.EqualFold(to, s.server.opts.rejectRcpt) {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	}
	s.msg.to = append(s.msg.to, to)
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.data = data
	s.server.messages <- s.msg
	return nil
}

func (s *testSession) Reset()        { s.msg = received{} }
func (s *testSession) Logout() error { return nil }

// slogLogger adapts slog to go-smtp's Logger.
type slogLogger struct{ l *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) {
	l.l.Info("smtp server", "msg", fmt.Sprintf(format, v...))
}
func (l slogLogger) Println(v ...any) { l.l.Info("smtp server", "msg", fmt.Sprint(v...)) }

// selfSignedTLS returns a server TLS config with a fresh self-signed
// certificate for 127.0.0.1 and localhost.
func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "blindrelay test smtp"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (loggers of
// background goroutines).
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

// testLogger logs to the test output and returns what was logged.
func testLogger(t *testing.T) (*slog.Logger, *syncBuffer) {
	var buf syncBuffer
	return slog.New(slog.NewTextHandler(io.MultiWriter(t.Output(), &buf), &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}
