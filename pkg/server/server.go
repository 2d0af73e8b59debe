// Package server assembles a blindrelay relay from a Config: it opens the
// store (SQLite or PostgreSQL; it keeps accounts and devices), the mailer
// (SMTP or the outbox directory), the TLS certificate (the operator's, or a
// self-signed one kept in the data directory), the relay's management
// WireGuard key, the UDP socket with the relay's demultiplexer and
// WebSocket bridge (pkg/relay) and management tunnel (pkg/mgmt) on it, the
// account service and the HTTP API, and serves HTTPS and UDP until its
// context ends, then drains in order.
//
// It is the only package that names the concrete stores and mailers; it
// reads no flags and no environment (cmd/relay does that) and holds no
// business logic of its own. cmd/relay and the end-to-end tests use it.
package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/api"
	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/mail"
	"github.com/blindrelay/blindrelay/pkg/store/postgres"
	"github.com/blindrelay/blindrelay/pkg/store/sqlite"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// HTTP server timeouts. The API's requests and answers are small (64 KiB
// bodies at most), so a client that is slower than this is gone or hostile.
// Long-lived handlers (the tunnel WebSocket, later) lift the deadlines for
// their own connection with http.ResponseController.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// Other internal settings.
const (
	mailQueueSize    = 256              // mails waiting for the SMTP server before new ones are dropped
	mailDrainTimeout = 30 * time.Second // how long shutdown waits for queued mail
	janitorInterval  = 10 * time.Minute // how often expired sessions and tokens are deleted
	sqliteFileName   = "blindrelay.db"
	// mgmtKeySecret names the server secret that is the relay's management
	// WireGuard private key: every node of a cluster shares it, and it
	// survives restarts, so paired devices keep trusting the relay.
	mgmtKeySecret = "mgmt_wg_private"
)

// relayStore is what both stores implement: accounts and devices.
type relayStore interface {
	account.Store
	keystore.Store
}

// Server is a relay ready to serve. Make one with New, then call Serve once;
// or call Close to release it without serving.
type Server struct {
	cfg    Config
	logger *slog.Logger
	url    string // effective public URL

	ln        net.Listener // TCP; TLS is added by Serve
	cert      tls.Certificate
	store     relayStore
	mail      *mail.Queue
	mgmtKey   wgkey.Private // the relay's management WireGuard key
	udp       *udpSide      // the UDP socket, relay and management tunnel
	publicUDP string        // the UDP endpoint devices are told
	handler   http.Handler

	closeOnce sync.Once
	closeErr  error
}

// Run makes a Server from cfg and serves until ctx ends.
func Run(ctx context.Context, cfg Config, logger *slog.Logger) error {
	s, err := New(ctx, cfg, logger)
	if err != nil {
		return err
	}
	return s.Serve(ctx)
}

// New checks cfg, creates the data directory, binds the HTTPS listener and
// opens everything the relay needs. On error nothing stays open.
func New(ctx context.Context, cfg Config, logger *slog.Logger) (_ *Server, err error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration: %w", err)
	}
	logger.Info("starting blindrelay", "config", cfg)
	s := &Server{cfg: cfg, logger: logger}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()

	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create --data-dir: %w", err)
	}
	var lc net.ListenConfig
	if s.ln, err = lc.Listen(ctx, "tcp", cfg.HTTP.Listen); err != nil {
		return nil, fmt.Errorf("--listen: %w", err)
	}
	s.url = publicURL(cfg.HTTP.PublicURL, s.ln.Addr())
	if s.cert, err = s.loadCertificate(); err != nil {
		return nil, err
	}
	if s.store, err = openStore(ctx, cfg); err != nil {
		return nil, err
	}
	mailer, err := newMailer(cfg, logger)
	if err != nil {
		return nil, err
	}
	s.mail = mail.NewQueue(mailer, logger, mailQueueSize)
	if s.mgmtKey, err = loadMgmtKey(ctx, s.store); err != nil {
		return nil, err
	}
	if s.udp, err = newUDPSide(ctx, cfg, s.mgmtKey, s.store, logger); err != nil {
		return nil, err
	}
	// A crash leaves this node's devices online in the store; the API
	// must not show them so until their tunnels are back. (The
	// management tunnel does this again when it starts.)
	stale, err := s.store.SetNodeOffline(ctx, s.udp.node)
	if err != nil {
		return nil, fmt.Errorf("mark node %q offline: %w", s.udp.node, err)
	}
	if stale > 0 {
		logger.Info("devices left online by an earlier run marked offline", "node", s.udp.node, "devices", stale)
	}
	s.publicUDP = publicUDP(cfg.UDP, cfg.HTTP.PublicURL, s.url, s.udp.addr())
	logger.Info("udp bound", "addr", s.udp.addr().String(), "public_udp", s.publicUDP,
		"mgmt_public_key", s.mgmtKey.Public())
	if s.handler, err = s.newHandler(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// loadCertificate loads or creates the certificate and logs what browsers
// will show for it.
func (s *Server) loadCertificate() (tls.Certificate, error) {
	listenHost, _, _ := net.SplitHostPort(s.cfg.HTTP.Listen)
	hosts := certHosts(hostOf(s.cfg.HTTP.PublicURL), listenHost)
	cert, err := loadCertificate(s.cfg, hosts, time.Now(), s.logger)
	if err != nil {
		return tls.Certificate{}, err
	}
	s.logger.Info("tls certificate",
		"sha256", fingerprint(cert.Leaf),
		"names", slices.Concat(cert.Leaf.DNSNames, ipStrings(cert.Leaf.IPAddresses)),
		"expires", cert.Leaf.NotAfter.UTC().Format(time.DateOnly))
	return cert, nil
}

// openStore opens the store cfg.Database names.
func openStore(ctx context.Context, cfg Config) (relayStore, error) {
	driver, err := databaseDriver(cfg.Database.URL)
	if err != nil {
		return nil, err
	}
	if driver == driverPostgres {
		st, err := postgres.Open(ctx, cfg.Database.URL)
		if err != nil {
			return nil, fmt.Errorf("open --database-url %s: %w", redactURL(cfg.Database.URL), err)
		}
		return st, nil
	}
	st, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, sqliteFileName))
	if err != nil {
		return nil, err // names the file already
	}
	return st, nil
}

// newMailer returns the SMTP client when cfg names a server, else the
// outbox in the data directory.
func newMailer(cfg Config, logger *slog.Logger) (account.Mailer, error) {
	if cfg.SMTP.URL != "" {
		m, err := mail.NewSMTP(cfg.SMTP.URL, cfg.SMTP.From, logger)
		if err != nil {
			return nil, fmt.Errorf("--smtp-url %s: %w", redactURL(cfg.SMTP.URL), err)
		}
		return m, nil
	}
	dir := filepath.Join(cfg.DataDir, "outbox")
	m, err := mail.NewOutbox(dir, logger)
	if err != nil {
		return nil, fmt.Errorf("open mail outbox %s: %w", dir, err)
	}
	return m, nil
}

// loadMgmtKey returns the relay's management WireGuard private key, made
// on first start and kept in the store as a server secret.
func loadMgmtKey(ctx context.Context, st account.Store) (wgkey.Private, error) {
	b, err := st.ServerSecret(ctx, mgmtKeySecret, wgkey.Size)
	if err != nil {
		return wgkey.Private{}, fmt.Errorf("management key: %w", err)
	}
	k := wgkey.Private(b)
	// Clamp as wg genkey does (X25519 clamps on use anyway), so that the
	// key is the canonical form of itself wherever it is written out.
	k[0] &= 248
	k[31] = k[31]&127 | 64
	return k, nil
}

// publicUDP is the UDP endpoint pairing devices are told: the configured
// one; else, on a relay without a configured public URL whose socket is
// bound to one address, that address (a test or one-machine relay on
// 127.0.0.1); else the public URL's host with the bound port (which is the
// listen port unless that was 0).
func publicUDP(c UDPConfig, configuredURL, publicURL string, bound netip.AddrPort) string {
	if c.PublicEndpoint != "" {
		return c.PublicEndpoint
	}
	if configuredURL == "" && !bound.Addr().IsUnspecified() {
		return bound.String()
	}
	return net.JoinHostPort(hostOf(publicURL), strconv.Itoa(int(bound.Port())))
}

// newHandler builds the account service and the HTTP API on the opened
// store and mailer.
func (s *Server) newHandler(ctx context.Context) (http.Handler, error) {
	acfg := s.cfg.Account
	acfg.PublicURL = s.url
	acfg.KeysReplacedFunc = s.keysReplaced
	svc, err := account.NewService(ctx, s.store, s.mail, acfg, s.logger)
	if err != nil {
		return nil, err // says "account service: ..."
	}
	h := api.New(api.Config{
		PublicURL:      s.cfg.HTTP.PublicURL,
		TrustedProxies: s.cfg.HTTP.TrustedProxies,
		Limits:         s.cfg.Limits,
		Now:            s.cfg.Account.Now, // one clock for sessions, tokens and rate limits
		Devices:        s.store,
		Relay:          api.RelayInfo{PublicKey: s.mgmtKey.Public(), Endpoint: s.publicUDP},
		Tunnels:        s.udp.sessions,
	}, svc, s.logger)
	return s.forgetDeletedDevices(h), nil
}

// keysReplaced is the account service's KeysReplacedFunc: after a password
// reset without the recovery file, the user's slots (sealed to the old
// keys), shares, pairing tokens and the devices only they owned go. Then
// it calls Config.Account.KeysReplacedFunc, if set.
func (s *Server) keysReplaced(ctx context.Context, userID string) error {
	deleted, err := s.store.DeleteUserDeviceAccess(ctx, userID)
	if err != nil {
		return fmt.Errorf("delete device access: %w", err)
	}
	for _, id := range deleted {
		s.udp.mgmt.RemoveDevice(id)
	}
	s.logger.InfoContext(ctx, "device access removed after a reset without recovery file",
		"user_id", userID, "deleted_devices", len(deleted))
	if f := s.cfg.Account.KeysReplacedFunc; f != nil {
		return f(ctx, userID)
	}
	return nil
}

// Addr is the address the HTTPS listener is bound to.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// RelayPublicKey is the relay's management WireGuard public key, which
// pairing devices are told.
func (s *Server) RelayPublicKey() wgkey.Public { return s.mgmtKey.Public() }

// PublicUDP is the UDP endpoint pairing devices are told
// (Config.UDP.PublicEndpoint; or the bound UDP address on a relay without
// a public URL bound to one address; or the public URL's host with the
// bound UDP port).
func (s *Server) PublicUDP() string { return s.publicUDP }

// UDPAddr is the address the UDP socket is bound to (the port chosen when
// Config.UDP.Listen asked for port 0).
func (s *Server) UDPAddr() netip.AddrPort { return s.udp.addr() }

// URL is the relay's public URL: Config.HTTP.PublicURL, or else an https://
// URL of the bound address (localhost when bound to a loopback or wildcard
// address). Mail links point there.
func (s *Server) URL() string { return s.url }

// CertPool returns a pool holding the served certificate, so that a client
// (a test, blindctl) can trust a self-signed relay.
func (s *Server) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.cert.Leaf)
	return pool
}

// Serve serves HTTPS and UDP (the management tunnel and the relay's read
// loop) until ctx ends, the listener fails or the UDP side fails. Then it
// ends every tunnel session, stops accepting, lets requests in flight
// finish for up to Config.HTTP.ShutdownTimeout, stops the relay's read
// loop and then the management tunnel (which marks this node's devices
// offline), closes the UDP socket, waits for queued mail to go out, and
// closes the store. It returns nil after a shutdown that ctx asked for.
func (s *Server) Serve(ctx context.Context) error {
	srv := &http.Server{
		Handler:           s.handler,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          newHTTPErrorLog(s.logger),
		// Requests keep ctx's values but not its cancellation: when ctx
		// ends, requests in flight may still finish (Shutdown below).
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}

	var wg sync.WaitGroup
	janitorCtx, stopJanitor := context.WithCancel(ctx)
	wg.Go(func() { runJanitor(janitorCtx, s.store, janitorInterval, time.Now, s.logger) })

	s.udp.start()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.ServeTLS(s.ln, "", "") }()
	s.logger.Info("listening", "url", s.url, "addr", s.ln.Addr().String(),
		"udp", s.udp.addr().String(), "mgmt_public_key", s.mgmtKey.Public())
	s.hintPublicURL()

	var err error
	select {
	case err = <-serveErr:
		err = fmt.Errorf("serve https: %w", err)
	case err = <-s.udp.failed:
		s.logger.Error("udp side failed; shutting down", "err", err)
		err = errors.Join(err, s.shutdown(srv))
		<-serveErr
	case <-ctx.Done():
		s.logger.Info("shutting down", "drain_timeout", s.cfg.HTTP.ShutdownTimeout)
		// Tunnel WebSockets are hijacked connections: Shutdown neither
		// closes nor waits for them.
		s.udp.sessions.shutdown()
		err = s.shutdown(srv)
		<-serveErr // http.ErrServerClosed once Shutdown or Close began
	}
	err = errors.Join(err, s.udp.stop())
	stopJanitor()
	wg.Wait()
	err = errors.Join(err, s.Close())
	if err == nil {
		s.logger.Info("stopped")
	}
	return err
}

// shutdown drains srv, and closes what is still open after the timeout.
func (s *Server) shutdown(srv *http.Server) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.HTTP.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		s.logger.Warn("drain timed out; closing open connections", "err", err)
		return srv.Close()
	}
	return nil
}

// Close releases the listener and the UDP socket, waits up to
// mailDrainTimeout for queued mail and closes the store. Serve calls it on
// its way out; a Server that never served must be closed by its owner.
// Calls after the first return the first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		var errs []error
		if s.ln != nil {
			if err := s.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
				errs = append(errs, fmt.Errorf("close listener: %w", err))
			}
		}
		if s.udp != nil {
			if err := s.udp.close(); err != nil {
				errs = append(errs, err)
			}
		}
		if s.mail != nil {
			ctx, cancel := context.WithTimeout(context.Background(), mailDrainTimeout)
			if err := s.mail.Close(ctx); err != nil {
				errs = append(errs, fmt.Errorf("drain mail queue: %w", err))
			}
			cancel()
		}
		if s.store != nil {
			if err := s.store.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close store: %w", err))
			}
		}
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}

// hintPublicURL tells the operator of a relay that other machines can reach
// that mail links will point at localhost.
func (s *Server) hintPublicURL() {
	if s.cfg.HTTP.PublicURL != "" {
		return
	}
	if ap, err := netip.ParseAddrPort(s.ln.Addr().String()); err == nil && !ap.Addr().IsLoopback() {
		s.logger.Warn("no --public-url set: mail links point at " + s.url + ", which works only on this machine")
	}
}

// publicURL is the configured public URL, or an https:// URL for addr.
func publicURL(configured string, addr net.Addr) string {
	if configured != "" {
		u, _ := parsePublicURL(configured) // Validate checked it
		return u
	}
	ap, err := netip.ParseAddrPort(addr.String())
	if err != nil {
		return "https://" + addr.String()
	}
	if ip := ap.Addr(); ip.IsLoopback() || ip.IsUnspecified() {
		return fmt.Sprintf("https://localhost:%d", ap.Port())
	}
	return "https://" + ap.String()
}

// hostOf returns the host of a URL, without brackets or port ("" for "").
func hostOf(origin string) string {
	u, err := url.Parse(origin)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

func ipStrings(ips []net.IP) []string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return s
}
