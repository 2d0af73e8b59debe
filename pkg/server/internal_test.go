package server

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// TestSelfSignedRenewal checks that the certificate is kept until it comes
// close to its end, and replaced then.
func TestSelfSignedRenewal(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "tls")
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	hosts := certHosts("", "")
	now := time.Now()
	first, err := selfSignedCertificate(dir, hosts, now, logger)
	if err != nil {
		t.Fatal(err)
	}
	if d := first.Leaf.NotAfter.Sub(first.Leaf.NotBefore); d > 825*24*time.Hour {
		t.Errorf("validity %s is longer than the 825 days Apple clients accept", d)
	}
	tests := []struct {
		name    string
		at      time.Time
		renewed bool
	}{
		{"next day", now.Add(24 * time.Hour), false},
		{"a month before the end", first.Leaf.NotAfter.Add(-31 * 24 * time.Hour), false},
		{"within the last month", first.Leaf.NotAfter.Add(-29 * 24 * time.Hour), true},
	}
	for _, tt := range tests {
		got, err := selfSignedCertificate(dir, hosts, tt.at, logger)
		if err != nil {
			t.Fatal(err)
		}
		renewed := sha256.Sum256(got.Leaf.Raw) != sha256.Sum256(first.Leaf.Raw)
		if renewed != tt.renewed {
			t.Errorf("%s: renewed = %v, want %v", tt.name, renewed, tt.renewed)
		}
	}
}

func TestCertHosts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		public, listen string
		want           []string
	}{
		{"", "", []string{"localhost", "127.0.0.1", "::1"}},
		{"", "0.0.0.0", []string{"localhost", "127.0.0.1", "::1"}},
		{"relay.example.com", "192.0.2.7", []string{"localhost", "127.0.0.1", "::1", "relay.example.com", "192.0.2.7"}},
		{"2001:db8::1", "localhost", []string{"localhost", "127.0.0.1", "::1", "2001:db8::1"}},
	}
	for _, tt := range tests {
		got := certHosts(tt.public, tt.listen)
		if len(got) != len(tt.want) {
			t.Errorf("certHosts(%q, %q) = %q, want %q", tt.public, tt.listen, got, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("certHosts(%q, %q) = %q, want %q", tt.public, tt.listen, got, tt.want)
				break
			}
		}
	}
}

// janitorStore counts DeleteExpired calls; the other methods are never
// called.
type janitorStore struct {
	account.Store
	mu    sync.Mutex
	calls []time.Time
}

func (s *janitorStore) DeleteExpired(_ context.Context, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, now)
	return nil
}

func TestJanitor(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		st := &janitorStore{}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			runJanitor(ctx, st, time.Minute, time.Now, slog.New(slog.NewTextHandler(io.Discard, nil)))
			close(done)
		}()
		time.Sleep(3*time.Minute + time.Second)
		synctest.Wait()
		if n := len(st.calls); n != 3 {
			t.Errorf("after 3 intervals: %d calls, want 3", n)
		}
		cancel()
		synctest.Wait()
		select {
		case <-done:
		default:
			t.Fatal("janitor did not stop with its context")
		}
	})
}

func TestPublicUDP(t *testing.T) {
	t.Parallel()
	ap := netip.MustParseAddrPort
	tests := []struct {
		name          string
		cfg           UDPConfig
		configuredURL string // --public-url
		publicURL     string // the effective one
		bound         netip.AddrPort
		want          string
	}{
		{"public url", UDPConfig{}, "https://relay.example.com", "https://relay.example.com", ap("[::]:51820"), "relay.example.com:51820"},
		{"public url with port", UDPConfig{}, "https://relay.example.com:8443", "https://relay.example.com:8443", ap("0.0.0.0:4500"), "relay.example.com:4500"},
		{"public url ipv6", UDPConfig{}, "https://[2001:db8::1]:8443", "https://[2001:db8::1]:8443", ap("[::]:51820"), "[2001:db8::1]:51820"},
		{"public url, one address bound", UDPConfig{}, "https://relay.example.com", "https://relay.example.com", ap("192.0.2.7:51820"), "relay.example.com:51820"},
		{"configured endpoint", UDPConfig{PublicEndpoint: "udp.example.com:443"}, "https://relay.example.com", "https://relay.example.com", ap("[::]:51820"), "udp.example.com:443"},
		{"no public url, wildcard", UDPConfig{}, "", "https://localhost:8443", ap("[::]:51820"), "localhost:51820"},
		{"no public url, loopback, port 0", UDPConfig{}, "", "https://localhost:8443", ap("127.0.0.1:40123"), "127.0.0.1:40123"},
		{"no public url, ipv6 loopback", UDPConfig{}, "", "https://localhost:8443", ap("[::1]:40123"), "[::1]:40123"},
	}
	for _, tt := range tests {
		if got := publicUDP(tt.cfg, tt.configuredURL, tt.publicURL, tt.bound); got != tt.want {
			t.Errorf("%s: publicUDP(%+v, %q, %q, %v) = %q, want %q", tt.name, tt.cfg, tt.configuredURL, tt.publicURL, tt.bound, got, tt.want)
		}
	}
}
