package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// Time limits of one SMTP delivery.
const (
	// smtpCommandTimeout bounds the connection set-up and each SMTP command.
	smtpCommandTimeout = 15 * time.Second
	// smtpSendTimeout bounds one whole delivery, from dial to QUIT.
	smtpSendTimeout = 60 * time.Second
)

// Default ports of the two URL schemes.
const (
	defaultSMTPPort  = 25  // smtp://, RFC 5321; most providers want 587 (submission), given explicitly
	defaultSMTPSPort = 465 // smtps://, implicit TLS, RFC 8314
)

// SMTP is an account.Mailer that delivers each mail over its own SMTP
// connection. It is safe for concurrent use; Send blocks until the relay
// accepted the mail or failed, so wrap it in a Queue to keep requests fast.
type SMTP struct {
	cfg    smtpConfig
	logger *slog.Logger
}

// smtpConfig is a parsed SMTP URL.
type smtpConfig struct {
	host        string
	port        int
	implicitTLS bool             // smtps://
	startTLS    gomail.TLSPolicy // smtp:// only
	insecure    bool             // skip certificate verification
	user, pass  string           // both empty: no AUTH
	from        *netmail.Address
	redacted    string // the URL with the password replaced, for logs
}

// NewSMTP returns a mailer that sends through the relay at rawURL, one of
//
//	smtp://[user:password@]host[:port]   port 25 by default; STARTTLS if the relay offers it
//	                                     (the certificate must then verify)
//	smtps://[user:password@]host[:port]  port 465 by default; TLS from the first byte
//
// with these optional query parameters:
//
//	starttls=opportunistic|required|none  (smtp:// only) "required" fails unless the
//	                                      relay offers STARTTLS; "none" never starts TLS
//	insecure_skip_verify=true             accept any certificate: only for a private relay
//	                                      with a self-signed certificate
//	from=address                          the sender, overriding from
//
// User name and password must be percent-encoded ("p@ss" is "p%40ss").
// With a user name, Send authenticates with PLAIN or LOGIN only over TLS
// or to a loopback address, and otherwise only with a mechanism that does
// not reveal the password (SCRAM-SHA-256, SCRAM-SHA-1, CRAM-MD5): the
// password is never sent in clear, even when an attacker strips STARTTLS
// (which starttls=required turns into an error).
//
// from may be "noreply@example.com" or "blindrelay <noreply@example.com>".
// Errors name what is wrong with the URL but never quote the password.
// NewSMTP does not connect. A nil logger discards.
func NewSMTP(rawURL, from string, logger *slog.Logger) (*SMTP, error) {
	cfg, err := parseSMTPURL(rawURL, from)
	if err != nil {
		return nil, err
	}
	s := &SMTP{cfg: cfg, logger: orDiscard(logger)}
	// Build a client once, so that option errors show at start-up.
	if _, err := s.newClient(context.Background()); err != nil {
		return nil, fmt.Errorf("smtp url: %w", err)
	}
	return s, nil
}

// String returns the URL without the password.
func (s *SMTP) String() string { return s.cfg.redacted }

// LogValue logs the URL without the password.
func (s *SMTP) LogValue() slog.Value { return slog.StringValue(s.cfg.redacted) }

// Send renders m and delivers it. It returns when the relay has accepted
// the mail, or with an error; a rejection by the relay is a *gomail.SendError
// in the chain. It gives up after a minute, or when ctx ends.
func (s *SMTP) Send(ctx context.Context, m account.Mail) error {
	msg, err := newMessage(s.cfg.from, m, time.Now())
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, smtpSendTimeout)
	defer cancel()
	client, err := s.newClient(ctx)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return fmt.Errorf("smtp: send %s via %s: %w", m.Kind, s.cfg.hostPort(), err)
	}
	s.logger.Debug("mail sent", "kind", m.Kind, "to", m.To, "smtp", s.cfg.hostPort())
	return nil
}

// newClient returns a go-mail client for one delivery under ctx.
func (s *SMTP) newClient(ctx context.Context) (*gomail.Client, error) {
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.port),
		gomail.WithTimeout(smtpCommandTimeout),
		gomail.WithTLSConfig(s.cfg.tlsConfig()),
		gomail.WithDialContextFunc(s.dialFunc(ctx)),
	}
	if s.cfg.implicitTLS {
		opts = append(opts, gomail.WithSSL())
	} else {
		opts = append(opts, gomail.WithTLSPolicy(s.cfg.startTLS))
	}
	if s.cfg.user != "" {
		opts = append(opts, gomail.WithSMTPAuthCustom(&autoAuth{user: s.cfg.user, pass: s.cfg.pass}))
	}
	return gomail.NewClient(s.cfg.host, opts...)
}

// dialFunc dials the relay, with TLS for smtps://. go-mail watches a
// context only while it dials and then relies on per-command deadlines;
// closing the connection when sendCtx ends makes a cancelled send (a Queue
// that is closing) stop at once. sendCtx always ends when Send returns.
func (s *SMTP) dialFunc(sendCtx context.Context) gomail.DialContextFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		dialer := &net.Dialer{}
		var conn net.Conn
		var err error
		if s.cfg.implicitTLS {
			// go-mail does not wrap a custom dialer's connection in TLS.
			conn, err = (&tls.Dialer{NetDialer: dialer, Config: s.cfg.tlsConfig()}).DialContext(ctx, network, addr)
		} else {
			conn, err = dialer.DialContext(ctx, network, addr)
		}
		if err != nil {
			return nil, err
		}
		context.AfterFunc(sendCtx, func() { conn.Close() })
		return conn, nil
	}
}

func (c *smtpConfig) hostPort() string {
	return net.JoinHostPort(c.host, strconv.Itoa(c.port))
}

func (c *smtpConfig) tlsConfig() *tls.Config {
	return &tls.Config{
		ServerName:         c.host,
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: c.insecure, //nolint:gosec // opt-in for private relays, see NewSMTP
	}
}

// parseSMTPURL parses an SMTP URL (see NewSMTP). Its errors never contain
// the password, nor any part of the URL that might hold a piece of it.
func parseSMTPURL(rawURL, from string) (smtpConfig, error) {
	var cfg smtpConfig
	u, err := url.Parse(rawURL)
	if err != nil {
		// url.Parse's error quotes the URL, and its reason may quote a
		// piece of the password (a bad %-escape, or a ':' '/' '?' '#' that
		// ended the host early), so none of it is passed on.
		return cfg, errors.New("smtp url: cannot parse it; check the form smtp://user:password@host:port and percent-encode special characters in user name and password")
	}
	if u.Fragment != "" || strings.Contains(rawURL, "#") {
		return cfg, errors.New("smtp url: unexpected '#': percent-encode it as %23 in user name or password")
	}
	if u.Opaque != "" {
		return cfg, errors.New("smtp url: the form is smtp://host:port or smtps://host:port")
	}
	if u.Path != "" && u.Path != "/" {
		return cfg, errors.New("smtp url: unexpected path: percent-encode '/' as %2F in user name or password")
	}
	switch u.Scheme {
	case "smtp":
		cfg.port = defaultSMTPPort
		cfg.startTLS = gomail.TLSOpportunistic
	case "smtps":
		cfg.port = defaultSMTPSPort
		cfg.implicitTLS = true
	default:
		return cfg, errors.New("smtp url: the scheme must be smtp or smtps")
	}
	cfg.host = u.Hostname()
	if cfg.host == "" {
		return cfg, errors.New("smtp url: no host")
	}
	if p := u.Port(); p != "" {
		port, err := strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return cfg, errors.New("smtp url: the port must be a number from 1 to 65535")
		}
		cfg.port = port
	}
	if u.User != nil {
		cfg.user = u.User.Username()
		cfg.pass, _ = u.User.Password()
		if cfg.user == "" || cfg.pass == "" {
			return cfg, errors.New("smtp url: give both user name and password, or neither")
		}
	}
	if err := cfg.parseQuery(u.RawQuery, &from); err != nil {
		return cfg, err
	}
	if from == "" {
		return cfg, errors.New("smtp: no from address: set one, or add ?from=address to the smtp url")
	}
	if cfg.from, err = parseFrom(from); err != nil {
		return cfg, fmt.Errorf("smtp: %w", err)
	}
	cfg.redacted = u.Redacted()
	return cfg, nil
}

// parseQuery reads the query parameters into cfg and from.
func (cfg *smtpConfig) parseQuery(rawQuery string, from *string) error {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return errors.New("smtp url: cannot parse the query (after '?'): percent-encode '?' as %3F in user name or password")
	}
	for key, values := range q {
		switch key {
		case "starttls", "insecure_skip_verify", "from":
		default:
			// The name is not quoted: with a '?' in an unencoded password,
			// it would be a piece of the password.
			return errors.New("smtp url: unknown query parameter; known are starttls, insecure_skip_verify and from")
		}
		if len(values) != 1 {
			return fmt.Errorf("smtp url: parameter %s given more than once", key)
		}
		value := values[0]
		switch key {
		case "starttls":
			if cfg.implicitTLS {
				return errors.New("smtp url: starttls applies to smtp://, not smtps://")
			}
			switch value {
			case "opportunistic":
				cfg.startTLS = gomail.TLSOpportunistic
			case "required":
				cfg.startTLS = gomail.TLSMandatory
			case "none":
				cfg.startTLS = gomail.NoTLS
			default:
				return errors.New("smtp url: starttls must be opportunistic, required or none")
			}
		case "insecure_skip_verify":
			b, err := strconv.ParseBool(value)
			if err != nil {
				return errors.New("smtp url: insecure_skip_verify must be true or false")
			}
			cfg.insecure = b
		case "from":
			*from = value
		}
	}
	return nil
}

// autoAuth picks the SMTP AUTH mechanism when the relay has told which it
// offers: PLAIN or LOGIN where the password cannot be overheard (TLS, or a
// relay on a loopback address), otherwise a challenge-response mechanism.
// It makes that decision itself, so it lets go-mail's PLAIN and LOGIN skip
// theirs. One autoAuth serves one connection.
type autoAuth struct {
	user, pass string
	chosen     smtp.Auth
}

// Start chooses the mechanism and starts it.
func (a *autoAuth) Start(server *smtp.ServerInfo) (string, []byte, error) {
	private := server.TLS || isLoopback(server.Name)
	offered := func(mech string) bool {
		return slices.ContainsFunc(server.Auth, func(s string) bool { return strings.EqualFold(s, mech) })
	}
	switch {
	case private && offered("PLAIN"):
		a.chosen = smtp.PlainAuth("", a.user, a.pass, server.Name, true)
	case private && offered("LOGIN"):
		a.chosen = smtp.LoginAuth(a.user, a.pass, server.Name, true)
	case offered("SCRAM-SHA-256"):
		a.chosen = smtp.ScramSHA256Auth(a.user, a.pass)
	case offered("SCRAM-SHA-1"):
		a.chosen = smtp.ScramSHA1Auth(a.user, a.pass)
	case offered("CRAM-MD5"):
		a.chosen = smtp.CRAMMD5Auth(a.user, a.pass)
	case offered("PLAIN") || offered("LOGIN"):
		return "", nil, errors.New("the relay offers only PLAIN or LOGIN authentication and the connection is not encrypted; refusing to send the password in clear (use smtps:// or starttls=required)")
	default:
		return "", nil, fmt.Errorf("the relay offers no supported authentication mechanism (it offers %q)", strings.Join(server.Auth, " "))
	}
	return a.chosen.Start(server)
}

// Next continues the chosen mechanism.
func (a *autoAuth) Next(fromServer []byte, more bool) ([]byte, error) {
	return a.chosen.Next(fromServer, more)
}

// isLoopback reports whether host names this machine.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
