package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blindrelay/blindrelay/pkg/server"
)

// settings is everything the serve command's options decide: the server's
// Config and how to log.
type settings struct {
	server    server.Config
	logLevel  slog.Level
	logFormat string // "text" or "json"
}

// option is one setting: a flag, its environment variable and how to parse
// it. options is the one table of them; the help text, the README and
// deploy/.env.example follow it (a test checks the latter two).
type option struct {
	name   string // flag name, without dashes
	env    string // environment variable
	arg    string // placeholder for the value in the help text
	def    string // default value, as text; applied like any other value
	defDoc string // describes a default that is computed, instead of def
	help   string
	// secret options may hold passwords: their values are never printed,
	// and env+"_FILE" may name a file to read the value from.
	secret bool
	// repeat options may be given several times; the values are joined
	// with commas, as the environment variable lists them.
	repeat bool
	apply  func(s *settings, v string) error
}

// The environment variable prefix and the suffix of file variants.
const (
	envPrefix  = "BLINDRELAY_"
	fileSuffix = "_FILE"
)

var options = []option{
	{
		name: "data-dir", env: "BLINDRELAY_DATA_DIR", arg: "DIR",
		defDoc: "$XDG_DATA_HOME/blindrelay, else $HOME/.local/share/blindrelay",
		help:   "Directory for the SQLite database, the self-signed TLS certificate and the mail outbox; created (mode 0700) if missing.",
		apply:  func(s *settings, v string) error { s.server.DataDir = v; return nil },
	},
	{
		name: "listen", env: "BLINDRELAY_LISTEN", arg: "HOST:PORT", def: server.DefaultListen,
		help:  "TCP address to serve HTTPS on. Use :8443 to accept connections from other machines.",
		apply: func(s *settings, v string) error { s.server.HTTP.Listen = v; return nil },
	},
	{
		name: "public-url", env: "BLINDRELAY_PUBLIC_URL", arg: "URL",
		defDoc: "https://localhost:PORT",
		help:   "The https:// origin users reach the relay at, e.g. https://relay.example.com. Mail links point there and browser requests must come from it.",
		apply:  func(s *settings, v string) error { s.server.HTTP.PublicURL = v; return nil },
	},
	{
		name: "trusted-proxy", env: "BLINDRELAY_TRUSTED_PROXY", arg: "CIDR", repeat: true,
		help:  "Reverse proxy whose X-Forwarded-For is believed, as a CIDR or an IP address. Repeat the flag or separate with commas.",
		apply: applyTrustedProxies,
	},
	{
		name: "tls-cert", env: "BLINDRELAY_TLS_CERT", arg: "FILE",
		defDoc: "a self-signed certificate in DATA_DIR/tls",
		help:   "PEM certificate chain to serve instead of the self-signed one; needs --tls-key.",
		apply:  func(s *settings, v string) error { s.server.HTTP.TLSCertFile = v; return nil },
	},
	{
		name: "tls-key", env: "BLINDRELAY_TLS_KEY", arg: "FILE",
		help:  "PEM private key of --tls-cert.",
		apply: func(s *settings, v string) error { s.server.HTTP.TLSKeyFile = v; return nil },
	},
	{
		name: "udp-listen", env: "BLINDRELAY_UDP_LISTEN", arg: "HOST:PORT", def: server.DefaultUDPListen,
		help:  "UDP address for WireGuard: device management tunnels and relayed sessions share this one port.",
		apply: func(s *settings, v string) error { s.server.UDP.Listen = v; return nil },
	},
	{
		name: "public-udp", env: "BLINDRELAY_PUBLIC_UDP", arg: "HOST:PORT",
		defDoc: "the --public-url host and the --udp-listen port",
		help:   "UDP endpoint devices are told to send WireGuard to, e.g. relay.example.com:51820: what they can reach through any NAT or port forwarding.",
		apply:  func(s *settings, v string) error { s.server.UDP.PublicEndpoint = v; return nil },
	},
	{
		name: "database-url", env: "BLINDRELAY_DATABASE_URL", arg: "URL", secret: true,
		defDoc: "SQLite in DATA_DIR/blindrelay.db",
		help:   "PostgreSQL URL, postgres://user:password@host:5432/dbname?sslmode=verify-full.",
		apply:  func(s *settings, v string) error { s.server.Database.URL = v; return nil },
	},
	{
		name: "smtp-url", env: "BLINDRELAY_SMTP_URL", arg: "URL", secret: true,
		defDoc: "mails are written to DATA_DIR/outbox and their links logged",
		help:   "SMTP server for outgoing mail: smtp://user:password@host:587 (STARTTLS) or smtps://user:password@host:465.",
		apply:  func(s *settings, v string) error { s.server.SMTP.URL = v; return nil },
	},
	{
		name: "smtp-from", env: "BLINDRELAY_SMTP_FROM", arg: "ADDRESS",
		help:  "Sender of outgoing mail, e.g. 'blindrelay <relay@example.com>'; required with --smtp-url.",
		apply: func(s *settings, v string) error { s.server.SMTP.From = v; return nil },
	},
	{
		name: "shutdown-timeout", env: "BLINDRELAY_SHUTDOWN_TIMEOUT", arg: "DURATION",
		def:   server.DefaultShutdownTimeout.String(),
		help:  "How long to let requests in flight finish after SIGINT or SIGTERM.",
		apply: applyShutdownTimeout,
	},
	{
		name: "log-level", env: "BLINDRELAY_LOG_LEVEL", arg: "LEVEL", def: "info",
		help:  "error, warn, info or debug (or 1 to 4).",
		apply: applyLogLevel,
	},
	{
		name: "log-format", env: "BLINDRELAY_LOG_FORMAT", arg: "FORMAT", def: "text",
		help:  "text or json.",
		apply: applyLogFormat,
	},
}

// usageError is a problem with the command line or the environment: exit
// status 2.
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Errorf(format, args...)}
}

// parseSettings reads the serve command's flags from args and its
// environment variables through getenv; flags win. It returns flag.ErrHelp
// for -h/--help and a *usageError for anything invalid.
func parseSettings(args []string, getenv func(string) string) (settings, error) {
	fs := flag.NewFlagSet("relay serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are reported by the caller
	given := map[string][]string{}
	for _, o := range options {
		fs.Func(o.name, o.help, func(v string) error {
			if len(given[o.name]) > 0 && !o.repeat {
				return fmt.Errorf("given more than once")
			}
			given[o.name] = append(given[o.name], v)
			return nil
		})
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return settings{}, err
		}
		return settings{}, &usageError{err}
	}
	if fs.NArg() > 0 {
		return settings{}, usagef("unexpected argument %q", fs.Arg(0))
	}

	var s settings
	for _, o := range options {
		v, source, err := o.value(given, getenv)
		if err != nil {
			return settings{}, err
		}
		if err := o.apply(&s, v); err != nil {
			return settings{}, usagef("%s: %w", source, err)
		}
	}
	if s.server.DataDir == "" {
		dir, err := defaultDataDir(getenv)
		if err != nil {
			return settings{}, &usageError{err}
		}
		s.server.DataDir = dir
	}
	if err := s.server.Validate(); err != nil {
		return settings{}, &usageError{err}
	}
	return s, nil
}

// value returns the option's raw value and where it came from ("--name",
// "BLINDRELAY_NAME (--name)" or "default"): the flag if given, else the
// environment variable or its _FILE variant, else the default.
func (o option) value(given map[string][]string, getenv func(string) string) (v, source string, err error) {
	flagName := "--" + o.name
	if vs, ok := given[o.name]; ok {
		return strings.Join(vs, ","), flagName, nil
	}
	env, fileEnv := getenv(o.env), ""
	if o.secret {
		fileEnv = getenv(o.env + fileSuffix)
	}
	switch {
	case env != "" && fileEnv != "":
		return "", "", usagef("%s and %s%s (%s): set only one", o.env, o.env, fileSuffix, flagName)
	case env != "":
		return env, fmt.Sprintf("%s (%s)", o.env, flagName), nil
	case fileEnv != "":
		source := fmt.Sprintf("%s%s (%s)", o.env, fileSuffix, flagName)
		data, err := os.ReadFile(fileEnv)
		if err != nil {
			return "", "", usagef("%s: %w", source, err)
		}
		return strings.TrimSpace(string(data)), source, nil
	}
	return o.def, "default of " + flagName, nil
}

// defaultDataDir is the data directory when none is set: under
// $XDG_DATA_HOME, else under $HOME/.local/share (the XDG default), so that
// a first run with no flags works and keeps its data across runs.
func defaultDataDir(getenv func(string) string) (string, error) {
	if d := getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "blindrelay"), nil
	}
	home := getenv("HOME")
	if home == "" {
		return "", errors.New("--data-dir: not set, and neither $XDG_DATA_HOME nor $HOME is there to hold the default")
	}
	return filepath.Join(home, ".local", "share", "blindrelay"), nil
}

func applyTrustedProxies(s *settings, v string) error {
	s.server.HTTP.TrustedProxies = nil
	for item := range strings.SplitSeq(v, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			ip, ipErr := netip.ParseAddr(item)
			if ipErr != nil {
				return fmt.Errorf("%q is neither a CIDR (10.0.0.0/8) nor an IP address", item)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		s.server.HTTP.TrustedProxies = append(s.server.HTTP.TrustedProxies, p.Masked())
	}
	return nil
}

func applyShutdownTimeout(s *settings, v string) error {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%q is not a positive duration such as 15s or 1m", v)
	}
	s.server.HTTP.ShutdownTimeout = d
	return nil
}

func applyLogLevel(s *settings, v string) error {
	switch strings.ToLower(v) {
	case "error", "1":
		s.logLevel = slog.LevelError
	case "warn", "warning", "2":
		s.logLevel = slog.LevelWarn
	case "info", "3":
		s.logLevel = slog.LevelInfo
	case "debug", "4":
		s.logLevel = slog.LevelDebug
	default:
		return fmt.Errorf("unknown level %q; want error, warn, info or debug (or 1 to 4)", v)
	}
	return nil
}

func applyLogFormat(s *settings, v string) error {
	switch v {
	case "text", "json":
		s.logFormat = v
		return nil
	}
	return fmt.Errorf("unknown format %q; want text or json", v)
}

// newLogger returns the process's logger, writing to w.
func newLogger(w io.Writer, s settings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.logLevel}
	if s.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// printUsage writes the help text, generated from options.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `relay runs a blindrelay relay: the portal API over HTTPS. With no flags it
listens on https://localhost:8443 with a self-signed certificate, and keeps a
SQLite database and a mail outbox in its data directory.

Usage:
  relay [serve] [flags]   run the relay (serve is the default command)
  relay version           print the version
  relay help              print this help

Each flag can also be set with the environment variable shown below it; a
flag on the command line wins. Options marked "secret" can instead be read
from the file named by the variable with _FILE appended (Docker secrets);
prefer that, or the variable, over the flag, which other users can see in
the process list.

Flags:
`)
	for _, o := range options {
		fmt.Fprintf(w, "  --%s %s\n", o.name, o.arg)
		env := "$" + o.env
		if o.secret {
			env += " or $" + o.env + fileSuffix + " (secret)"
		}
		switch {
		case o.def != "":
			env += fmt.Sprintf("; default %s", o.def)
		case o.defDoc != "":
			env += fmt.Sprintf("; default: %s", o.defDoc)
		}
		if o.repeat {
			env += "; repeatable"
		}
		fmt.Fprintf(w, "        %s\n        %s\n", env, o.help)
	}
	fmt.Fprint(w, `
Signals: SIGINT or SIGTERM stop the relay gracefully.
Exit status: 0 after a requested stop, 1 on a runtime error, 2 on a usage error.
`)
}
