package server_test

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/server"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	valid := server.Config{DataDir: "/var/lib/blindrelay"}
	tests := []struct {
		name   string
		modify func(*server.Config)
		want   string // substring of the error; "" for valid
	}{
		{"defaults", func(c *server.Config) {}, ""},
		{"everything", func(c *server.Config) {
			c.HTTP.Listen = ":443"
			c.HTTP.PublicURL = "https://relay.example.com/"
			c.HTTP.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			c.HTTP.TLSCertFile, c.HTTP.TLSKeyFile = "/etc/ssl/relay.pem", "/etc/ssl/relay.key"
			c.UDP.Listen = "[::]:51820"
			c.UDP.PublicEndpoint = "relay.example.com:443"
			c.Database.URL = "postgresql://relay:pw@db:5432/relay?sslmode=verify-full"
			c.SMTP.URL, c.SMTP.From = "smtps://u:p@mail.example.com:465", "blindrelay <relay@example.com>"
		}, ""},
		{"no data dir", func(c *server.Config) { c.DataDir = "" }, "--data-dir"},
		{"listen without port", func(c *server.Config) { c.HTTP.Listen = "127.0.0.1" }, "--listen"},
		{"listen port out of range", func(c *server.Config) { c.HTTP.Listen = ":70000" }, "--listen"},
		{"udp listen", func(c *server.Config) { c.UDP.Listen = "udp" }, "--udp-listen"},
		{"public udp without port", func(c *server.Config) { c.UDP.PublicEndpoint = "relay.example.com" }, "--public-udp"},
		{"public udp port 0", func(c *server.Config) { c.UDP.PublicEndpoint = "relay.example.com:0" }, "--public-udp"},
		{"public udp without host", func(c *server.Config) { c.UDP.PublicEndpoint = ":51820" }, "--public-udp"},
		{"public url http", func(c *server.Config) { c.HTTP.PublicURL = "http://relay.example.com" }, "--public-url"},
		{"public url path", func(c *server.Config) { c.HTTP.PublicURL = "https://example.com/relay" }, "--public-url"},
		{"public url no host", func(c *server.Config) { c.HTTP.PublicURL = "https://" }, "--public-url"},
		{"invalid proxy", func(c *server.Config) { c.HTTP.TrustedProxies = []netip.Prefix{{}} }, "--trusted-proxy"},
		{"cert without key", func(c *server.Config) { c.HTTP.TLSCertFile = "/x.pem" }, "--tls-key"},
		{"mysql", func(c *server.Config) { c.Database.URL = "mysql://u:pw@db/x" }, "--database-url"},
		{"smtp scheme", func(c *server.Config) { c.SMTP.URL, c.SMTP.From = "http://mail", "a@b.c" }, "--smtp-url"},
		{"smtp without from", func(c *server.Config) { c.SMTP.URL = "smtp://mail.example.com:587" }, "--smtp-from"},
		{"smtp bad from", func(c *server.Config) { c.SMTP.URL, c.SMTP.From = "smtp://mail:587", "not an address" }, "--smtp-from"},
		{"negative shutdown", func(c *server.Config) { c.HTTP.ShutdownTimeout = -1 }, "--shutdown-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tt.modify(&cfg)
			err := cfg.Validate()
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("Validate: nil, want an error naming %s", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("Validate: %q does not name %s", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), "pw@") {
				t.Errorf("error shows a password: %v", err)
			}
		})
	}
}

// TestConfigLogRedacts checks that the start-up log line holds no password.
func TestConfigLogRedacts(t *testing.T) {
	t.Parallel()
	cfg := server.Config{DataDir: "/data"}
	cfg.Database.URL = "postgres://relay:dbsecret@db:5432/relay?password=qsecret&sslmode=disable"
	cfg.SMTP.URL, cfg.SMTP.From = "smtp://mailer:smtpsecret@mail:587", "relay@example.com"
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		var h slog.Handler = slog.NewTextHandler(&buf, nil)
		if format == "json" {
			h = slog.NewJSONHandler(&buf, nil)
		}
		slog.New(h).Info("starting", "config", cfg)
		out := buf.String()
		for _, secret := range []string{"dbsecret", "qsecret", "smtpsecret"} {
			if strings.Contains(out, secret) {
				t.Errorf("%s log shows %s: %s", format, secret, out)
			}
		}
		for _, want := range []string{"db:5432", "mail:587", "relay@example.com", "/data"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s log lacks %s: %s", format, want, out)
			}
		}
	}
}
