package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// env is a fake environment for parseSettings.
type env map[string]string

func (e env) get(k string) string { return e[k] }

func TestParseSettings(t *testing.T) {
	t.Parallel()
	secretFile := filepath.Join(t.TempDir(), "db-url")
	if err := os.WriteFile(secretFile, []byte("postgres://relay:pw@db:5432/relay\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	home := env{"HOME": "/home/u"}
	with := func(base env, kv ...string) env {
		e := env{}
		for k, v := range base {
			e[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			e[kv[i]] = kv[i+1]
		}
		return e
	}

	tests := []struct {
		name  string
		args  []string
		env   env
		check func(t *testing.T, s settings)
		err   string // substring of the error; "" for success
	}{
		{name: "defaults", env: home, check: func(t *testing.T, s settings) {
			want := settings{logLevel: slog.LevelInfo, logFormat: "text"}
			want.server.DataDir = "/home/u/.local/share/blindrelay"
			want.server.HTTP.Listen = "127.0.0.1:8443"
			want.server.HTTP.ShutdownTimeout = 15 * time.Second
			want.server.UDP.Listen = ":51820"
			if diff := cmp.Diff(want, s, cmp.AllowUnexported(settings{})); diff != "" {
				t.Errorf("settings (-want +got):\n%s", diff)
			}
		}},
		{name: "XDG_DATA_HOME", env: with(home, "XDG_DATA_HOME", "/xdg"), check: func(t *testing.T, s settings) {
			eq(t, "DataDir", s.server.DataDir, "/xdg/blindrelay")
		}},
		{name: "relative XDG_DATA_HOME is ignored", env: with(home, "XDG_DATA_HOME", "xdg"), check: func(t *testing.T, s settings) {
			eq(t, "DataDir", s.server.DataDir, "/home/u/.local/share/blindrelay")
		}},
		{name: "env", env: with(home, "BLINDRELAY_LISTEN", ":9443", "BLINDRELAY_DATA_DIR", "/srv/relay", "BLINDRELAY_LOG_FORMAT", "json"),
			check: func(t *testing.T, s settings) {
				eq(t, "Listen", s.server.HTTP.Listen, ":9443")
				eq(t, "DataDir", s.server.DataDir, "/srv/relay")
				eq(t, "logFormat", s.logFormat, "json")
			}},
		{name: "flag overrides env", args: []string{"--listen", "127.0.0.1:9000", "-log-level=debug"},
			env: with(home, "BLINDRELAY_LISTEN", ":9443", "BLINDRELAY_LOG_LEVEL", "error"),
			check: func(t *testing.T, s settings) {
				eq(t, "Listen", s.server.HTTP.Listen, "127.0.0.1:9000")
				eq(t, "logLevel", s.logLevel, slog.LevelDebug)
			}},
		{name: "secret from file", env: with(home, "BLINDRELAY_DATABASE_URL_FILE", secretFile), check: func(t *testing.T, s settings) {
			eq(t, "Database.URL", s.server.Database.URL, "postgres://relay:pw@db:5432/relay")
		}},
		{name: "secret file missing", env: with(home, "BLINDRELAY_SMTP_URL_FILE", "/nonexistent/smtp"), err: "BLINDRELAY_SMTP_URL_FILE (--smtp-url)"},
		{name: "secret and file", env: with(home, "BLINDRELAY_DATABASE_URL", "postgres://x/y", "BLINDRELAY_DATABASE_URL_FILE", secretFile),
			err: "set only one"},
		{name: "flag beats secret file", args: []string{"--database-url=postgres://flag/db"},
			env: with(home, "BLINDRELAY_DATABASE_URL_FILE", secretFile), check: func(t *testing.T, s settings) {
				eq(t, "Database.URL", s.server.Database.URL, "postgres://flag/db")
			}},
		{name: "numeric log level", args: []string{"--log-level", "2"}, env: home, check: func(t *testing.T, s settings) {
			eq(t, "logLevel", s.logLevel, slog.LevelWarn)
		}},
		{name: "bad log level flag", args: []string{"--log-level", "loud"}, env: home, err: `--log-level: unknown level "loud"`},
		{name: "bad log level env", env: with(home, "BLINDRELAY_LOG_LEVEL", "5"), err: "BLINDRELAY_LOG_LEVEL (--log-level): unknown level"},
		{name: "bad log format", args: []string{"--log-format=xml"}, env: home, err: "--log-format"},
		{name: "trusted proxies", args: []string{"--trusted-proxy", "10.0.0.0/8, 192.168.1.7", "--trusted-proxy=fd00::/8"}, env: home,
			check: func(t *testing.T, s settings) {
				want := []netip.Prefix{
					netip.MustParsePrefix("10.0.0.0/8"),
					netip.MustParsePrefix("192.168.1.7/32"),
					netip.MustParsePrefix("fd00::/8"),
				}
				eq(t, "TrustedProxies", s.server.HTTP.TrustedProxies, want)
			}},
		{name: "trusted proxies env", env: with(home, "BLINDRELAY_TRUSTED_PROXY", "172.16.0.1/12"), check: func(t *testing.T, s settings) {
			eq(t, "TrustedProxies", s.server.HTTP.TrustedProxies, []netip.Prefix{netip.MustParsePrefix("172.16.0.0/12")})
		}},
		{name: "bad trusted proxy", args: []string{"--trusted-proxy=proxy.local"}, env: home, err: "--trusted-proxy"},
		{name: "shutdown timeout", args: []string{"--shutdown-timeout=1m"}, env: home, check: func(t *testing.T, s settings) {
			eq(t, "ShutdownTimeout", s.server.HTTP.ShutdownTimeout, time.Minute)
		}},
		{name: "bad shutdown timeout", args: []string{"--shutdown-timeout=soon"}, env: home, err: "--shutdown-timeout"},
		{name: "public udp", args: []string{"--public-udp", "relay.example.com:4500"}, env: home, check: func(t *testing.T, s settings) {
			eq(t, "UDP.PublicEndpoint", s.server.UDP.PublicEndpoint, "relay.example.com:4500")
		}},
		{name: "public udp env", env: with(home, "BLINDRELAY_PUBLIC_UDP", "[2001:db8::1]:51820"), check: func(t *testing.T, s settings) {
			eq(t, "UDP.PublicEndpoint", s.server.UDP.PublicEndpoint, "[2001:db8::1]:51820")
		}},
		{name: "bad public udp", args: []string{"--public-udp", "relay.example.com"}, env: home, err: "--public-udp"},
		{name: "invalid public url", args: []string{"--public-url", "http://relay.example.com"}, env: home, err: "--public-url"},
		{name: "smtp needs from", env: with(home, "BLINDRELAY_SMTP_URL", "smtp://u:pw@mail:587"), err: "--smtp-from"},
		{name: "flag twice", args: []string{"--listen=:1", "--listen=:2"}, env: home, err: "more than once"},
		{name: "unknown flag", args: []string{"--colour"}, env: home, err: "-colour"},
		{name: "stray argument", args: []string{"now"}, env: home, err: `unexpected argument "now"`},
		{name: "no home", env: env{}, err: "--data-dir"},
		{name: "data dir flag without home", args: []string{"--data-dir", "/d"}, env: env{}, check: func(t *testing.T, s settings) {
			eq(t, "DataDir", s.server.DataDir, "/d")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := parseSettings(tt.args, tt.env.get)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want one containing %q", err, tt.err)
				}
				if _, ok := errors.AsType[*usageError](err); !ok {
					t.Errorf("err %v is not a usage error", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, s)
		})
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("%s (-want +got):\n%s", what, diff)
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	tests := []struct {
		args           []string
		code           int
		stdout, stderr string // substrings
	}{
		{[]string{"help"}, 0, "Usage:", ""},
		{[]string{"--help"}, 0, "Usage:", ""},
		{[]string{"serve", "-h"}, 0, "Usage:", ""},
		{[]string{"version"}, 0, "relay ", ""},
		{[]string{"bogus"}, 2, "", `unknown command "bogus"`},
		{[]string{"--log-level=loud"}, 2, "", "relay: --log-level: unknown level"},
		{[]string{"serve", "--listen=nowhere"}, 2, "", "--listen"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			// A context that has ended: a serve that got this far would stop at once.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			code := run(ctx, tt.args, env{"HOME": t.TempDir()}.get, &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr.String())
			}
		})
	}
}

// TestOptionDocs checks that the help text, the README and the env-file
// example name every flag and variable.
func TestOptionDocs(t *testing.T) {
	t.Parallel()
	var help bytes.Buffer
	printUsage(&help)
	docs := map[string]string{"relay help": help.String()}
	for _, path := range []string{"README.md", "../../deploy/.env.example"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		docs[path] = string(data)
	}
	for _, o := range options {
		if want := envPrefix + strings.ToUpper(strings.ReplaceAll(o.name, "-", "_")); o.env != want {
			t.Errorf("--%s: variable %s, want %s", o.name, o.env, want)
		}
		names := []string{o.env}
		if o.secret {
			names = append(names, o.env+fileSuffix)
		}
		for doc, text := range docs {
			if doc != "../../deploy/.env.example" && !strings.Contains(text, "--"+o.name+" ") {
				t.Errorf("%s does not describe --%s", doc, o.name)
			}
			for _, n := range names {
				if !strings.Contains(text, n) {
					t.Errorf("%s does not name %s", doc, n)
				}
			}
		}
	}
}
