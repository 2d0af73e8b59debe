package tunnel

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// Interface defaults and limits.
const (
	// DefaultMTU is the tunnel MTU when Config.MTU is zero. The WebSocket
	// leg does not care about packet sizes (TCP segments them), but the
	// relay forwards every datagram to the device as one UDP datagram over
	// the device's Internet uplink. 1280 + 32 (WireGuard) + 48 (IPv6 + UDP)
	// = 1360 bytes fits every common uplink, including PPPoE (1492), DS-Lite
	// (1460) and most mobile carriers, without IP fragmentation, which
	// home routers and carrier NATs often drop. 1280 is also the smallest
	// MTU IPv6 allows, so it cannot be lower.
	DefaultMTU = 1280

	// MinMTU is the smallest MTU accepted: the IPv6 minimum (RFC 8200).
	MinMTU = 1280

	// MaxMTU is the largest MTU accepted: a full-size packet plus WireGuard's
	// overhead must still fit in one UDP datagram over IPv4.
	MaxMTU = maxDatagramSize - wgTransportOverhead

	// DefaultKeepAlive is the persistent keepalive when Config.KeepAlive is
	// zero, WireGuard's customary 25 s: it keeps the relay's idle timer and
	// NAT mappings fresh and proves the path while the user reads a page.
	DefaultKeepAlive = 25 * time.Second
)

// ErrInvalidConfig is wrapped by every error Dial returns for a bad Config.
var ErrInvalidConfig = errors.New("invalid tunnel config")

// Config describes one session: where the relay is, the key slot's keys and
// the addresses inside the tunnel.
type Config struct {
	// URL is the relay's tunnel WebSocket for one device, e.g.
	// wss://relay.example/api/v1/devices/ID/tunnel?slot=2 (ws, wss, http or
	// https). It is dialled verbatim on every reconnect, so it must name the
	// same key slot each time.
	URL string

	// Header is sent with every WebSocket handshake: typically the session
	// cookie. Ignored under js/wasm, where the browser sends cookies itself.
	Header http.Header

	// HTTPClient performs the WebSocket handshake (e.g. TLS roots for a
	// self-signed relay); nil means http.DefaultClient. Ignored under
	// js/wasm.
	HTTPClient *http.Client

	// PrivateKey is the slot's browser-side WireGuard private key.
	PrivateKey wgkey.Private
	// PeerPublicKey is the device's WireGuard public key.
	PeerPublicKey wgkey.Public
	// PresharedKey is the slot's pre-shared key; zero means none.
	PresharedKey wgkey.Preshared

	// LocalAddrs are this end's addresses inside the tunnel, the slot's
	// browser addresses (e.g. 10.77.1.1 and fdb1:d4e1:a7ff::1:1).
	LocalAddrs []netip.Addr
	// PeerAddrs are the device's AllowedIPs (e.g. 10.77.0.1/32 and
	// fdb1:d4e1:a7ff::1/128): what may be dialled, and what the device may
	// send from.
	PeerAddrs []netip.Prefix

	// MTU of the tunnel interface; zero means DefaultMTU (see there for why
	// 1280). Must lie within [MinMTU, MaxMTU].
	MTU int

	// KeepAlive is WireGuard's persistent keepalive interval, rounded up to
	// whole seconds; zero means DefaultKeepAlive, negative turns it off.
	KeepAlive time.Duration

	// Logger receives connection events (never per packet), with keys
	// redacted; nil discards. wireguard-go's own messages are logged at
	// Debug (verbose) and Warn (errors) under component=wireguard.
	Logger *slog.Logger
}

// withDefaults returns a copy of cfg with defaults filled in and addresses
// normalised, or an error wrapping ErrInvalidConfig.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	cfg.LocalAddrs = append([]netip.Addr(nil), cfg.LocalAddrs...)
	for i, a := range cfg.LocalAddrs {
		cfg.LocalAddrs[i] = a.Unmap()
	}
	cfg.PeerAddrs = append([]netip.Prefix(nil), cfg.PeerAddrs...)
	for i, p := range cfg.PeerAddrs {
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		cfg.PeerAddrs[i] = p.Masked()
	}
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return cfg, nil
}

// validate checks a Config that withDefaults has filled in.
func (cfg *Config) validate() error {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return errors.New("URL does not parse")
	}
	switch u.Scheme {
	case "ws", "wss", "http", "https":
	default:
		return fmt.Errorf("URL scheme %q: want ws, wss, http or https", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("URL has no host")
	}
	if cfg.PrivateKey.IsZero() {
		return errors.New("PrivateKey is zero")
	}
	if cfg.PeerPublicKey.IsZero() {
		return errors.New("PeerPublicKey is zero")
	}
	if cfg.PeerPublicKey.Equal(cfg.PrivateKey.Public()) {
		// wireguard-go silently ignores a peer with the interface's own key.
		return errors.New("PeerPublicKey is this end's own public key")
	}
	if len(cfg.LocalAddrs) == 0 {
		return errors.New("no LocalAddrs")
	}
	for _, a := range cfg.LocalAddrs {
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || a.Zone() != "" {
			return fmt.Errorf("LocalAddrs: %v is not a unicast address", a)
		}
	}
	if len(cfg.PeerAddrs) == 0 {
		return errors.New("no PeerAddrs")
	}
	for _, p := range cfg.PeerAddrs {
		if !p.IsValid() {
			return fmt.Errorf("PeerAddrs: %v is not a prefix", p)
		}
	}
	if cfg.MTU < MinMTU || cfg.MTU > MaxMTU {
		return fmt.Errorf("MTU %d outside [%d, %d]", cfg.MTU, MinMTU, MaxMTU)
	}
	if cfg.KeepAlive > math.MaxUint16*time.Second {
		return fmt.Errorf("KeepAlive %v longer than %d s", cfg.KeepAlive, math.MaxUint16)
	}
	return nil
}

// keepAliveSeconds is KeepAlive as wireguard-go wants it: whole seconds,
// rounded up, 0 for off.
func (cfg *Config) keepAliveSeconds() int {
	if cfg.KeepAlive <= 0 {
		return 0
	}
	return int((cfg.KeepAlive + time.Second - 1) / time.Second)
}

// interfaceUAPI is the wireguard-go configuration (UAPI "set" body) of the
// whole interface: its key and its one peer.
func (cfg *Config) interfaceUAPI() string {
	return "private_key=" + cfg.PrivateKey.Hex() + "\nreplace_peers=true\n" + cfg.peerUAPI()
}

// peerUAPI configures the device as a peer. The endpoint is the relay, the
// Bind's only endpoint.
func (cfg *Config) peerUAPI() string {
	var b strings.Builder
	fmt.Fprintf(&b, "public_key=%s\n", cfg.PeerPublicKey.Hex())
	fmt.Fprintf(&b, "preshared_key=%s\n", cfg.PresharedKey.Hex())
	fmt.Fprintf(&b, "endpoint=%s\n", relayEndpointName)
	fmt.Fprintf(&b, "persistent_keepalive_interval=%d\n", cfg.keepAliveSeconds())
	b.WriteString("replace_allowed_ips=true\n")
	for _, p := range cfg.PeerAddrs {
		fmt.Fprintf(&b, "allowed_ip=%s\n", p)
	}
	return b.String()
}

// rehandshakeUAPI removes the peer and adds it afresh: the only way
// wireguard-go's configuration interface offers to drop a peer's session
// keys, so that the next packet (at once, with a keepalive configured)
// starts a new handshake.
func (cfg *Config) rehandshakeUAPI() string {
	return "public_key=" + cfg.PeerPublicKey.Hex() + "\nremove=true\n" + cfg.peerUAPI()
}
