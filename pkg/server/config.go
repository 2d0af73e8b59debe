package server

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/api"
)

// Config is everything the relay needs to run. cmd/relay builds it from
// flags and the environment; tests build it directly. Zero fields take the
// defaults of DefaultConfig, except DataDir, which must be set.
//
// Error messages from Validate and New name the command-line flag of the
// field at fault (--listen, --database-url, ...), because that is what an
// operator can change.
type Config struct {
	// DataDir holds the SQLite database, the self-signed certificate and
	// the mail outbox. New creates it (mode 0700) if it does not exist.
	DataDir string

	HTTP     HTTPConfig
	UDP      UDPConfig
	Database DatabaseConfig
	SMTP     SMTPConfig

	// Account tunes the account life cycle: session and link lifetimes,
	// the KDF parameters accepted. Zero fields take the values of
	// account.DefaultServiceConfig. Leave Account.PublicURL empty: the
	// server sets it to URL().
	Account account.ServiceConfig
	// Limits are the API's rate limits; zero fields take pkg/api's
	// defaults.
	Limits api.RateLimits

	// Node names this relay process in the devices' presence records
	// (which node holds a device's management tunnel). Empty: the host
	// name. Nodes of a cluster need distinct names; a restarted node
	// keeps its name, so that it marks its own stale presence offline.
	Node string
}

// HTTPConfig is the HTTPS side: portal API, mail-link pages, health checks.
type HTTPConfig struct {
	// Listen is the TCP address to serve HTTPS on, host:port. An empty
	// host means every interface; port 0 picks a free port (tests).
	Listen string
	// PublicURL is the https:// origin users reach the relay at, such as
	// https://relay.example.com. Mail links point there and state-changing
	// requests must come from it. Empty: the relay's own address (fine on
	// one machine, not behind a proxy or for mail to other people).
	PublicURL string
	// TrustedProxies are the reverse proxies whose X-Forwarded-For header
	// is believed when rate-limiting by client IP.
	TrustedProxies []netip.Prefix
	// TLSCertFile and TLSKeyFile name a PEM certificate chain and key to
	// serve instead of the self-signed pair in DataDir/tls. Both or neither.
	TLSCertFile string
	TLSKeyFile  string
	// ShutdownTimeout bounds how long Serve waits for requests in flight
	// once its context ends; after it open connections are closed.
	ShutdownTimeout time.Duration
}

// UDPConfig is the WireGuard side: the one UDP socket of the management
// tunnels and the browser sessions.
type UDPConfig struct {
	// Listen is the UDP address to bind, host:port, default :51820. Port
	// 0 picks a free port (tests; Server.UDPAddr tells which).
	Listen string
	// PublicEndpoint is the UDP host:port devices are told to send
	// WireGuard to (what they can reach: a public name or address, and the
	// port a NAT or firewall forwards). Empty: the host of the public URL
	// and the bound port; with no public URL configured and Listen bound
	// to one address, that address and port.
	PublicEndpoint string
}

// DatabaseConfig chooses the store.
type DatabaseConfig struct {
	// URL is empty for SQLite at DataDir/blindrelay.db, or a
	// postgres:// (postgresql://) URL for PostgreSQL. It may carry a
	// password, so it is never logged as is.
	URL string `json:"-"`
}

// SMTPConfig is where mail goes. With no URL, mails are written to the
// outbox directory DataDir/outbox and their links logged (development).
type SMTPConfig struct {
	// URL is smtp://user:pass@host:port (STARTTLS) or smtps://... (TLS);
	// pkg/mail documents the options. It may carry a password.
	URL  string `json:"-"`
	From string // sender address, required with URL
}

// The defaults of DefaultConfig.
const (
	DefaultListen          = "127.0.0.1:8443"
	DefaultUDPListen       = ":51820"
	DefaultShutdownTimeout = 15 * time.Second
)

// DefaultConfig returns a Config with every default filled in but DataDir.
func DefaultConfig() Config {
	return Config{
		HTTP: HTTPConfig{
			Listen:          DefaultListen,
			ShutdownTimeout: DefaultShutdownTimeout,
		},
		UDP: UDPConfig{Listen: DefaultUDPListen},
	}
}

// withDefaults returns c with its zero fields set from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.HTTP.Listen == "" {
		c.HTTP.Listen = d.HTTP.Listen
	}
	if c.HTTP.ShutdownTimeout == 0 {
		c.HTTP.ShutdownTimeout = d.HTTP.ShutdownTimeout
	}
	if c.UDP.Listen == "" {
		c.UDP.Listen = d.UDP.Listen
	}
	return c
}

// Validate checks c after defaults are applied and returns every problem
// found, each naming its flag.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if c.DataDir == "" {
		add(errors.New("--data-dir: must be set"))
	}
	add(validateHostPort("--listen", c.HTTP.Listen))
	add(validateHostPort("--udp-listen", c.UDP.Listen))
	if c.UDP.PublicEndpoint != "" {
		add(validatePublicUDP(c.UDP.PublicEndpoint))
	}
	if _, err := parsePublicURL(c.HTTP.PublicURL); err != nil {
		add(err)
	}
	for _, p := range c.HTTP.TrustedProxies {
		if !p.IsValid() {
			add(fmt.Errorf("--trusted-proxy: invalid prefix %v", p))
		}
	}
	if (c.HTTP.TLSCertFile == "") != (c.HTTP.TLSKeyFile == "") {
		add(errors.New("--tls-cert and --tls-key: set both or neither"))
	}
	if c.HTTP.ShutdownTimeout < 0 {
		add(fmt.Errorf("--shutdown-timeout %s: must not be negative", c.HTTP.ShutdownTimeout))
	}
	if _, err := databaseDriver(c.Database.URL); err != nil {
		add(err)
	}
	add(c.SMTP.validate())
	if err := (api.Config{Limits: c.Limits}).Validate(); err != nil {
		add(err)
	}
	return errors.Join(errs...)
}

func validateHostPort(flag, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%s %q: want host:port, such as 127.0.0.1:8443 or :8443: %w", flag, addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%s %q: port must be a number from 0 to 65535", flag, addr)
	}
	return nil
}

// validatePublicUDP checks a --public-udp value: a host and a port that
// devices can send to (not 0).
func validatePublicUDP(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return fmt.Errorf("--public-udp %q: want host:port, such as relay.example.com:51820", addr)
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("--public-udp %q: port must be a number from 1 to 65535", addr)
	}
	return nil
}

// parsePublicURL checks a --public-url value and returns it without a
// trailing slash; "" stays "".
func parsePublicURL(raw string) (string, error) {
	if raw == "" {
		return "", nil
	}
	bad := func(why string) error {
		return fmt.Errorf("--public-url %q: %s; want an https:// origin such as https://relay.example.com or https://relay.example.com:8443", raw, why)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", bad("not a URL")
	case u.Scheme != "https":
		return "", bad("scheme must be https")
	case u.Host == "" || u.Hostname() == "":
		return "", bad("no host")
	case u.User != nil:
		return "", bad("must not contain a user name")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return "", bad("must not have a path, query or fragment")
	}
	return "https://" + u.Host, nil
}

// Database drivers.
const (
	driverSQLite   = "sqlite"
	driverPostgres = "postgres"
)

// databaseDriver picks the store for a --database-url value.
func databaseDriver(raw string) (string, error) {
	if raw == "" {
		return driverSQLite, nil
	}
	scheme, _, ok := strings.Cut(raw, "://")
	if ok && (scheme == "postgres" || scheme == "postgresql") {
		if _, err := url.Parse(raw); err != nil {
			return "", fmt.Errorf("--database-url: not a valid URL (%s)", redactURL(raw))
		}
		return driverPostgres, nil
	}
	return "", fmt.Errorf("--database-url %s: want a postgres:// or postgresql:// URL, or nothing for SQLite in the data directory", redactURL(raw))
}

func (s SMTPConfig) validate() error {
	if s.URL == "" {
		return nil
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return fmt.Errorf("--smtp-url %s: want smtp://user:password@host:587 or smtps://user:password@host:465", redactURL(s.URL))
	}
	if s.From == "" {
		return errors.New("--smtp-from: must be set when --smtp-url is")
	}
	if _, err := mail.ParseAddress(s.From); err != nil {
		return fmt.Errorf("--smtp-from %q: %w", s.From, err)
	}
	return nil
}

// LogValue is the effective configuration with secrets redacted, for the
// start-up log line.
func (c Config) LogValue() slog.Value {
	db := "sqlite"
	if c.Database.URL != "" {
		db = redactURL(c.Database.URL)
	}
	mailTo := "outbox"
	if c.SMTP.URL != "" {
		mailTo = redactURL(c.SMTP.URL)
	}
	proxies := make([]string, len(c.HTTP.TrustedProxies))
	for i, p := range c.HTTP.TrustedProxies {
		proxies[i] = p.String()
	}
	attrs := []slog.Attr{
		slog.String("data_dir", c.DataDir),
		slog.String("listen", c.HTTP.Listen),
		slog.String("public_url", c.HTTP.PublicURL),
		slog.String("trusted_proxies", strings.Join(proxies, ",")),
		slog.String("udp_listen", c.UDP.Listen),
		slog.String("public_udp", c.UDP.PublicEndpoint),
		slog.String("node", c.Node),
		slog.String("database", db),
		slog.String("smtp", mailTo),
	}
	if c.SMTP.URL != "" {
		attrs = append(attrs, slog.String("smtp_from", c.SMTP.From))
	}
	if c.HTTP.TLSCertFile != "" {
		attrs = append(attrs, slog.String("tls_cert", c.HTTP.TLSCertFile), slog.String("tls_key", c.HTTP.TLSKeyFile))
	}
	return slog.GroupValue(attrs...)
}

// redactURL returns raw with any password replaced, in the user info or in
// a password query parameter (libpq accepts both).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "[unparsable URL redacted]"
	}
	if q := u.Query(); q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}
