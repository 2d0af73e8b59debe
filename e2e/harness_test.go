package e2e

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/api"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/mail"
	"github.com/blindrelay/blindrelay/pkg/mail/mailtest"
	"github.com/blindrelay/blindrelay/pkg/ratelimit"
	"github.com/blindrelay/blindrelay/pkg/server"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// relay is a running server.Server with everything it logged.
type relay struct {
	srv     *server.Server
	opts    relayOptions
	dataDir string
	logs    *syncBuffer
	mailbox mailbox
	// seen records every request the relay received, as the relay saw it.
	seen *recorder
	// stop ends Serve and waits for it; safe to call more than once.
	stop func(t *testing.T)
}

// relayOptions choose the backends of a test relay.
type relayOptions struct {
	databaseURL string           // "" for SQLite in the data directory
	smtp        *mailtest.Server // nil for the outbox
	// publicUDP is the UDP endpoint devices are told (a capture proxy);
	// "" for the relay's own address.
	publicUDP string
	// quiet logs to the test at info level; relay.logs still gets debug
	// (wireguard-go's debug log is a line per handshake and keepalive).
	quiet bool

	// Set by restart: the same data, ports and log buffer again.
	dataDir               string
	httpListen, udpListen string
	logs                  *syncBuffer
}

// startRelay runs a relay on 127.0.0.1 (free ports for HTTPS and UDP) that
// lives as long as the test. It logs at debug level to the test and to
// relay.logs, accepts the fast test KDF parameters and has no rate limits.
func startRelay(t *testing.T, opts relayOptions) *relay {
	t.Helper()
	if opts.dataDir == "" {
		opts.dataDir = t.TempDir()
	}
	if opts.logs == nil {
		opts.logs = &syncBuffer{}
	}
	if opts.httpListen == "" {
		opts.httpListen = "127.0.0.1:0"
	}
	if opts.udpListen == "" {
		opts.udpListen = "127.0.0.1:0"
	}
	r := &relay{opts: opts, dataDir: opts.dataDir, logs: opts.logs, seen: &recorder{}}
	debug := &slog.HandlerOptions{Level: slog.LevelDebug}
	logger := slog.New(slog.NewJSONHandler(io.MultiWriter(t.Output(), r.logs), debug))
	if opts.quiet {
		logger = slog.New(slog.NewMultiHandler(
			slog.NewJSONHandler(r.logs, debug),
			slog.NewJSONHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo})))
	}
	no := api.Limit{PerIP: ratelimit.NoLimit, PerAccount: ratelimit.NoLimit}
	cfg := server.Config{
		DataDir:  r.dataDir,
		HTTP:     server.HTTPConfig{Listen: opts.httpListen},
		UDP:      server.UDPConfig{Listen: opts.udpListen, PublicEndpoint: opts.publicUDP},
		Database: server.DatabaseConfig{URL: opts.databaseURL},
		Account:  account.ServiceConfig{DefaultKDF: zkcrypto.TestKDFParams(), MinKDF: zkcrypto.TestKDFParams()},
		Limits:   api.RateLimits{Salt: no, Login: no, Register: no, Resend: no, Reset: no, EmailChange: no, Pair: no},
	}
	if opts.smtp != nil {
		cfg.SMTP = server.SMTPConfig{URL: opts.smtp.URL(), From: "relay@example.test"}
		r.mailbox = &smtpBox{srv: opts.smtp, pending: map[string][]string{}}
	} else {
		r.mailbox = &outboxBox{dir: filepath.Join(r.dataDir, "outbox"), last: map[string]string{}}
	}
	srv, err := server.New(t.Context(), cfg, logger)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	r.srv = srv
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx) }()
	var once sync.Once
	r.stop = func(t *testing.T) {
		once.Do(func() {
			cancel()
			if err := <-served; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// restart stops r as a shut-down process would stop (Serve's context
// ends) and starts a new relay on the same data directory, database, ports
// and log buffer, as the same process started again would.
func (r *relay) restart(t *testing.T) *relay {
	t.Helper()
	opts := r.opts
	opts.httpListen = r.srv.Addr().String()
	opts.udpListen = r.srv.UDPAddr().String()
	r.stop(t)
	return startRelay(t, opts)
}

// client returns an API client that trusts the relay's certificate, accepts
// the test KDF parameters and records what it sends in r.seen.
func (r *relay) client(t *testing.T) *apiclient.Client {
	t.Helper()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig.RootCAs = r.srv.CertPool()
	hc := &http.Client{Transport: &recordingTransport{next: tr, rec: r.seen}, Timeout: time.Minute}
	c, err := apiclient.New(r.srv.URL(), apiclient.WithHTTPClient(hc),
		apiclient.WithKDFLimits(zkcrypto.TestKDFParams(), zkcrypto.MaxKDFParams()))
	if err != nil {
		t.Fatalf("apiclient.New: %v", err)
	}
	return c
}

// mailbox hands out the link of the next mail of a kind to an address.
type mailbox interface {
	link(t *testing.T, to string, kind account.MailKind) string
}

// outboxBox reads the relay's development outbox.
type outboxBox struct {
	dir  string
	last map[string]string // to+kind -> the link returned last
}

func (b *outboxBox) link(t *testing.T, to string, kind account.MailKind) string {
	t.Helper()
	key := to + "\x00" + string(kind)
	var err error
	var link string
	waitFor(t, "a "+string(kind)+" mail to "+to+" in the outbox", func() bool {
		link, err = mail.LatestLink(b.dir, to, kind)
		if err != nil && !errors.Is(err, mail.ErrNoMail) && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("LatestLink: %v", err)
		}
		return err == nil && link != b.last[key]
	})
	b.last[key] = link
	return link
}

// smtpBox reads what the relay sent to an in-process SMTP server. Mails to
// other addresses or of other kinds are kept for later calls.
type smtpBox struct {
	srv     *mailtest.Server
	pending map[string][]string // recipient -> links not yet asked for, in order
}

func (b *smtpBox) link(t *testing.T, to string, _ account.MailKind) string {
	t.Helper()
	for len(b.pending[to]) == 0 {
		m := b.srv.Next(t)
		link, err := mailtest.Link(m)
		if err != nil {
			continue // a notice without a link
		}
		for _, rcpt := range m.To {
			b.pending[rcpt] = append(b.pending[rcpt], link)
		}
	}
	link := b.pending[to][0]
	b.pending[to] = b.pending[to][1:]
	return link
}

// waitFor polls cond every 10 ms for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// recorder keeps every request (headers and body) a client sent.
type recorder struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}

// recordingTransport copies each request into a recorder before sending it.
type recordingTransport struct {
	next http.RoundTripper
	rec  *recorder
}

func (rt *recordingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		var err error
		body, err = io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	rt.rec.mu.Lock()
	req.Header.Write(&rt.rec.buf)
	rt.rec.buf.WriteString(req.URL.String())
	rt.rec.buf.Write(body)
	rt.rec.buf.WriteByte('\n')
	rt.rec.mu.Unlock()
	return rt.next.RoundTrip(req)
}

// syncBuffer is a bytes.Buffer for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
