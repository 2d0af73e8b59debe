// Package mailtest is a test helper: a real SMTP server (emersion/go-smtp)
// on 127.0.0.1 that accepts mail and records every message, so that tests
// can check what a mailer sent or follow the link in it.
//
// It is for tests only, not for production: it keeps messages in memory,
// accepts AUTH PLAIN without TLS and trusts anyone who connects.
//
// A typical end-to-end test:
//
//	srv := mailtest.NewServer(t, mailtest.Options{})
//	// configure the relay with srv.URL() and make it send a mail …
//	link, err := mailtest.Link(srv.Next(t))
package mailtest

import (
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
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
)

// Wait is how long Next waits for a message before it fails the test.
const Wait = 30 * time.Second

// Options configure NewServer. The zero value is a plain server without
// authentication or TLS.
type Options struct {
	// User and Pass, if User is set, are required with AUTH PLAIN before
	// MAIL FROM. AUTH is offered without TLS too.
	User, Pass string
	// RejectRcpt, if set, is an address whose RCPT TO is answered with
	// 550 5.1.1 (compared case-insensitively).
	RejectRcpt string
	// TLSConfig, if set, makes the server offer STARTTLS, or with
	// ImplicitTLS speak TLS from the start (smtps). See SelfSignedTLS.
	TLSConfig *tls.Config
	// ImplicitTLS makes the server speak TLS from the start; it needs
	// TLSConfig.
	ImplicitTLS bool
}

// Message is one message as the server accepted it.
type Message struct {
	From     string   // envelope sender (MAIL FROM)
	To       []string // envelope recipients (RCPT TO) that were accepted
	Data     []byte   // the message as sent after DATA: headers and body
	AuthUser string   // the user that authenticated, or ""
	TLS      bool     // whether the session was encrypted (STARTTLS or implicit)
}

// Server is a running test SMTP server. Its methods are safe for
// concurrent use.
type Server struct {
	addr     netip.AddrPort
	opts     Options
	messages chan Message  // every accepted message, in order
	closed   chan struct{} // closed when the test ends
}

// NewServer starts a server on 127.0.0.1 that lives as long as the test
// (it is closed by t.Cleanup). It logs to the test's output.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	if opts.ImplicitTLS && opts.TLSConfig == nil {
		t.Fatal("mailtest: ImplicitTLS needs a TLSConfig")
	}
	srv := &Server{opts: opts, messages: make(chan Message, 100), closed: make(chan struct{})}
	s := gosmtp.NewServer(gosmtp.BackendFunc(srv.newSession))
	s.Domain = "localhost"
	s.AllowInsecureAuth = true // AUTH PLAIN without TLS, as clients allow on loopback
	s.ReadTimeout = 30 * time.Second
	s.WriteTimeout = 30 * time.Second
	s.MaxMessageBytes = 1 << 20
	out := &testOutput{w: t.Output()}
	s.ErrorLog = slogLogger{slog.New(slog.NewTextHandler(out, nil))}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.ImplicitTLS {
		ln = tls.NewListener(ln, opts.TLSConfig)
	} else {
		s.TLSConfig = opts.TLSConfig
	}
	srv.addr = netip.MustParseAddrPort(ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		out.close()
		close(srv.closed) // release sessions blocked on a full channel
		s.Close()
		ln.Close() // Close misses a listener that Serve has not registered yet
		if err := <-served; err != nil && !errors.Is(err, gosmtp.ErrServerClosed) {
			t.Errorf("mailtest: smtp server: %v", err)
		}
	})
	return srv
}

// Addr returns the address the server listens on (127.0.0.1 and a free
// port).
func (s *Server) Addr() netip.AddrPort { return s.addr }

// URL returns the server as an SMTP URL: smtp://127.0.0.1:port, or
// smtps:// with ImplicitTLS, with user and password (URL-escaped) when
// Options.User is set. It has no query; a client that needs one (say, to
// accept the self-signed certificate) adds it.
func (s *Server) URL() string {
	u := url.URL{Scheme: "smtp", Host: s.addr.String()}
	if s.opts.ImplicitTLS {
		u.Scheme = "smtps"
	}
	if s.opts.User != "" {
		u.User = url.UserPassword(s.opts.User, s.opts.Pass)
	}
	return u.String()
}

// Messages returns the channel of accepted messages, in order, for tests
// that wait in a select. Next and None receive from the same channel.
func (s *Server) Messages() <-chan Message { return s.messages }

// Next returns the next message the server accepted. It fails the test if
// none comes within Wait.
func (s *Server) Next(t testing.TB) Message {
	t.Helper()
	timer := time.NewTimer(Wait)
	defer timer.Stop()
	select {
	case m := <-s.messages:
		return m
	case <-timer.C:
		t.Fatalf("mailtest: no message received within %v", Wait)
		return Message{}
	}
}

// None fails the test if a message is waiting. It does not wait.
func (s *Server) None(t testing.TB) {
	t.Helper()
	select {
	case m := <-s.messages:
		t.Fatalf("mailtest: unexpected message from %q to %q", m.From, m.To)
	default:
	}
}

func (s *Server) newSession(c *gosmtp.Conn) (gosmtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{server: s, tls: isTLS}, nil
}

type session struct {
	server   *Server
	tls      bool
	authUser string
	msg      Message
}

var _ gosmtp.AuthSession = (*session)(nil)

func (s *session) AuthMechanisms() []string {
	if s.server.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain || s.server.opts.User == "" {
		return nil, gosmtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.server.opts.User || pass != s.server.opts.Pass {
			return gosmtp.ErrAuthFailed
		}
		s.authUser = user
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *gosmtp.MailOptions) error {
	if s.server.opts.User != "" && s.authUser == "" {
		return gosmtp.ErrAuthRequired
	}
	s.msg = Message{From: from, AuthUser: s.authUser, TLS: s.tls}
	return nil
}

func (s *session) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.server.opts.RejectRcpt != "" && strings.EqualFold(to, s.server.opts.RejectRcpt) {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "No such user"}
	}
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.msg.Data = data
	select {
	case s.server.messages <- s.msg:
		return nil
	case <-s.server.closed:
		return &gosmtp.SMTPError{Code: 421, EnhancedCode: gosmtp.EnhancedCode{4, 3, 2}, Message: "Test server closing"}
	}
}

func (s *session) Reset()        { s.msg = Message{} }
func (s *session) Logout() error { return nil }

// testOutput writes to a test's output until closed, then discards: the
// server's connection goroutines may log after the test has ended, when
// writing to t.Output is a data race.
type testOutput struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (o *testOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return len(p), nil
	}
	return o.w.Write(p)
}

func (o *testOutput) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
}

// slogLogger adapts slog to go-smtp's Logger.
type slogLogger struct{ l *slog.Logger }

func (l slogLogger) Printf(format string, v ...any) {
	l.l.Info("mailtest smtp server", "msg", fmt.Sprintf(format, v...))
}
func (l slogLogger) Println(v ...any) { l.l.Info("mailtest smtp server", "msg", fmt.Sprint(v...)) }

// SelfSignedTLS returns a server TLS config with a fresh self-signed
// certificate for 127.0.0.1 and localhost, valid for an hour either side
// of now. Clients must skip verification or trust the certificate in
// Certificates[0].
func SelfSignedTLS(t testing.TB) *tls.Config {
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
