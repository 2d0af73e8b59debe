package tunnel

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

func validConfig(t *testing.T) Config {
	t.Helper()
	priv, err := wgkey.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	peer, err := wgkey.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return Config{
		URL:           "wss://relay.example/api/v1/devices/d1/tunnel?slot=0",
		PrivateKey:    priv,
		PeerPublicKey: peer.Public(),
		LocalAddrs:    []netip.Addr{netip.MustParseAddr("10.77.1.1"), netip.MustParseAddr("fdb1:d4e1:a7ff::1:1")},
		PeerAddrs:     []netip.Prefix{netip.MustParsePrefix("10.77.0.1/32"), netip.MustParsePrefix("fdb1:d4e1:a7ff::1/128")},
	}
}

func TestConfigDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := validConfig(t).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MTU != 1280 || cfg.KeepAlive != 25*time.Second || cfg.Logger == nil {
		t.Errorf("defaults: MTU %d, KeepAlive %v, Logger %v", cfg.MTU, cfg.KeepAlive, cfg.Logger)
	}
	for _, tc := range []struct {
		keepAlive time.Duration
		want      string
	}{
		{0, "persistent_keepalive_interval=25\n"},
		{-1, "persistent_keepalive_interval=0\n"},
		{1500 * time.Millisecond, "persistent_keepalive_interval=2\n"},
		{10 * time.Second, "persistent_keepalive_interval=10\n"},
	} {
		c := validConfig(t)
		c.KeepAlive = tc.keepAlive
		c, err := c.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		if got := c.peerUAPI(); !strings.Contains(got, tc.want) {
			t.Errorf("KeepAlive %v: uapi %q lacks %q", tc.keepAlive, got, tc.want)
		}
	}
}

func TestConfigUAPI(t *testing.T) {
	t.Parallel()
	cfg, err := validConfig(t).withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	want := "private_key=" + cfg.PrivateKey.Hex() + "\nreplace_peers=true\n" +
		"public_key=" + cfg.PeerPublicKey.Hex() + "\n" +
		"preshared_key=" + strings.Repeat("0", 64) + "\n" +
		"endpoint=relay\npersistent_keepalive_interval=25\nreplace_allowed_ips=true\n" +
		"allowed_ip=10.77.0.1/32\nallowed_ip=fdb1:d4e1:a7ff::1/128\n"
	if got := cfg.interfaceUAPI(); got != want {
		t.Errorf("interface uapi:\n%s\nwant:\n%s", got, want)
	}
	re := cfg.rehandshakeUAPI()
	if !strings.HasPrefix(re, "public_key="+cfg.PeerPublicKey.Hex()+"\nremove=true\npublic_key=") || strings.Contains(re, "private_key") {
		t.Errorf("rehandshake uapi %q: want remove, then the peer again, and no interface key", re)
	}
}

func TestConfigInvalid(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		modify func(*Config)
	}{
		{"no URL", func(c *Config) { c.URL = "" }},
		{"bad scheme", func(c *Config) { c.URL = "ftp://relay.example/x" }},
		{"no host", func(c *Config) { c.URL = "wss:///x" }},
		{"zero private key", func(c *Config) { c.PrivateKey = wgkey.Private{} }},
		{"zero peer key", func(c *Config) { c.PeerPublicKey = wgkey.Public{} }},
		{"peer is self", func(c *Config) { c.PeerPublicKey = c.PrivateKey.Public() }},
		{"no local address", func(c *Config) { c.LocalAddrs = nil }},
		{"unspecified local address", func(c *Config) { c.LocalAddrs = []netip.Addr{netip.IPv4Unspecified()} }},
		{"invalid local address", func(c *Config) { c.LocalAddrs = []netip.Addr{{}} }},
		{"no peer prefix", func(c *Config) { c.PeerAddrs = nil }},
		{"invalid peer prefix", func(c *Config) { c.PeerAddrs = []netip.Prefix{{}} }},
		{"MTU too small", func(c *Config) { c.MTU = 1000 }},
		{"MTU too large", func(c *Config) { c.MTU = 70000 }},
		{"keepalive too long", func(c *Config) { c.KeepAlive = 100000 * time.Second }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := validConfig(t)
			tc.modify(&cfg)
			if _, err := Dial(t.Context(), cfg); !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Dial: %v, want ErrInvalidConfig", err)
			}
		})
	}
}

func TestConfigNormalises(t *testing.T) {
	t.Parallel()
	cfg := validConfig(t)
	cfg.LocalAddrs = []netip.Addr{netip.MustParseAddr("::ffff:10.77.1.1")}
	cfg.PeerAddrs = []netip.Prefix{netip.MustParsePrefix("10.77.0.9/24")}
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LocalAddrs[0] != netip.MustParseAddr("10.77.1.1") || cfg.PeerAddrs[0] != netip.MustParsePrefix("10.77.0.0/24") {
		t.Errorf("normalised to %v %v", cfg.LocalAddrs, cfg.PeerAddrs)
	}
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	bo := backoff{min: 100 * time.Millisecond, max: time.Second}
	for i, ceil := range []time.Duration{100, 200, 400, 800, 1000, 1000, 1000} {
		ceil *= time.Millisecond
		for range 50 {
			b := bo
			if d := b.next(); d < ceil/2 || d > ceil {
				t.Fatalf("wait %d = %v, want within [%v, %v]", i, d, ceil/2, ceil)
			}
		}
		bo.next()
	}
}

func TestReadMessage(t *testing.T) {
	t.Parallel()
	const limit = 100
	for _, size := range []int{0, 1, 16, 17, 64, 99, 100, 101, 1000} {
		msg := bytes.Repeat([]byte{0xab}, size)
		for _, oneByte := range []bool{false, true} {
			src := bytes.NewReader(msg)
			rd := iotest.DataErrReader(src)
			if oneByte {
				rd = iotest.OneByteReader(src)
			}
			got, oversize, err := readMessage(rd, make([]byte, 16), limit)
			if err != nil {
				t.Fatalf("size %d: %v", size, err)
			}
			if oversize != (size > limit) || (!oversize && !bytes.Equal(got, msg)) {
				t.Errorf("size %d (one byte %v): got %d bytes, oversize %v", size, oneByte, len(got), oversize)
			}
			if src.Len() != 0 {
				t.Errorf("size %d: %d bytes left unread", size, src.Len())
			}
		}
	}
	if _, _, err := readMessage(iotest.ErrReader(errors.New("boom")), make([]byte, 16), limit); err == nil {
		t.Error("a read error was swallowed")
	}
}

func TestParseLastHandshake(t *testing.T) {
	t.Parallel()
	got, err := parseLastHandshake("public_key=ab\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\nrx_bytes=1\n")
	if err != nil || !got.Equal(time.Unix(1700000000, 5)) {
		t.Errorf("got %v, %v", got, err)
	}
	if got, err := parseLastHandshake("last_handshake_time_sec=0\nlast_handshake_time_nsec=0\n"); err != nil || !got.IsZero() {
		t.Errorf("no handshake: got %v, %v", got, err)
	}
	if _, err := parseLastHandshake("last_handshake_time_sec=x\n"); err == nil {
		t.Error("garbage accepted")
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	got := redactURL("wss://user:pw@relay.example:8443/api/v1/devices/d1/tunnel?ticket=SECRET#frag")
	if got != "wss://relay.example:8443/api/v1/devices/d1/tunnel" {
		t.Errorf("redactURL = %q", got)
	}
}
