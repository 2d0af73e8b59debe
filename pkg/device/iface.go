package device

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// PersistentKeepalive is the keepalive towards the relay, in seconds: it
// keeps NAT mappings and the relay's view of the device's endpoint fresh.
const PersistentKeepalive = 25

// iface is the device's WireGuard interface, from which both the
// wireguard-go configuration (uapi) and the wg-quick file (wgQuick) are
// written, so that the two cannot drift apart.
type iface struct {
	private   wgkey.Private
	addresses []netip.Prefix
	mtu       int
	peers     []peer
}

type peer struct {
	comment    string
	public     wgkey.Public
	preshared  *wgkey.Preshared // nil: none
	allowedIPs []netip.Prefix
	keepalive  int // seconds, 0: off
}

// slotPrefixes returns key slot i's allowed IPs.
func slotPrefixes(i int) ([]netip.Prefix, error) {
	a4, ok4 := wire.SlotAddr4(i)
	a6, ok6 := wire.SlotAddr6(i)
	if !ok4 || !ok6 {
		return nil, fmt.Errorf("key slot %d has no address", i)
	}
	return []netip.Prefix{netip.PrefixFrom(a4, 32), netip.PrefixFrom(a6, 128)}, nil
}

// localAddrs are the interface's own addresses.
func (s *state) localAddrs() []netip.Addr {
	return []netip.Addr{wire.DeviceSessionAddr4, wire.DeviceSessionAddr6, s.Relay.MgmtAddr}
}

// iface returns the interface s describes.
func (s *state) iface(mtu int) (*iface, error) {
	f := &iface{private: s.Private, mtu: mtu}
	for _, a := range s.localAddrs() {
		f.addresses = append(f.addresses, netip.PrefixFrom(a, a.BitLen()))
	}
	f.peers = append(f.peers, s.relayPeer())
	for _, sl := range s.Slots {
		p, err := slotPeer(sl)
		if err != nil {
			return nil, err
		}
		f.peers = append(f.peers, p)
	}
	return f, nil
}

func (s *state) relayPeer() peer {
	return peer{
		comment:    "the relay (management tunnel)",
		public:     s.Relay.PublicKey,
		allowedIPs: []netip.Prefix{netip.PrefixFrom(s.Relay.RelayMgmtAddr, 128)},
		keepalive:  PersistentKeepalive,
	}
}

func slotPeer(sl slot) (peer, error) {
	ips, err := slotPrefixes(sl.Index)
	if err != nil {
		return peer{}, err
	}
	psk := sl.Preshared
	return peer{
		comment:    fmt.Sprintf("key slot %d of user %s", sl.Index, sl.UserID),
		public:     sl.PublicKey,
		preshared:  &psk,
		allowedIPs: ips,
	}, nil
}

// uapi returns wireguard-go's configuration (the UAPI "set" protocol,
// keys in hex) of the whole interface: every peer, all at endpoint.
func (f *iface) uapi(listenPort int, endpoint netip.AddrPort) string {
	var b strings.Builder
	b.WriteString("private_key=" + f.private.Hex() + "\n")
	b.WriteString("listen_port=" + strconv.Itoa(listenPort) + "\n")
	b.WriteString("replace_peers=true\n")
	for _, p := range f.peers {
		p.writeUAPI(&b, endpoint)
	}
	return b.String()
}

// writeUAPI writes p's UAPI "set" lines (with its endpoint).
func (p peer) writeUAPI(b *strings.Builder, endpoint netip.AddrPort) {
	b.WriteString("public_key=" + p.public.Hex() + "\n")
	if p.preshared != nil {
		b.WriteString("preshared_key=" + p.preshared.Hex() + "\n")
	}
	if endpoint.IsValid() {
		b.WriteString("endpoint=" + endpoint.String() + "\n")
	}
	b.WriteString("persistent_keepalive_interval=" + strconv.Itoa(p.keepalive) + "\n")
	b.WriteString("replace_allowed_ips=true\n")
	for _, ip := range p.allowedIPs {
		b.WriteString("allowed_ip=" + ip.String() + "\n")
	}
}

// removeUAPI returns the UAPI lines that remove the peer with key pub.
func removeUAPI(pub wgkey.Public) string {
	return "public_key=" + pub.Hex() + "\nremove=true\n"
}

// wgQuick returns f as a wg-quick(8) file, every peer at endpoint
// (host:port, names allowed: wg-quick resolves them).
func (f *iface) wgQuick(header, endpoint string) string {
	var b strings.Builder
	b.WriteString(header)
	b.WriteString("[Interface]\n")
	b.WriteString("PrivateKey = " + f.private.Base64() + "\n")
	b.WriteString("Address = " + joinPrefixes(f.addresses) + "\n")
	b.WriteString("MTU = " + strconv.Itoa(f.mtu) + "\n")
	for _, p := range f.peers {
		b.WriteString("\n# " + p.comment + "\n")
		b.WriteString("[Peer]\n")
		b.WriteString("PublicKey = " + p.public.String() + "\n")
		if p.preshared != nil {
			b.WriteString("PresharedKey = " + p.preshared.Base64() + "\n")
		}
		b.WriteString("AllowedIPs = " + joinPrefixes(p.allowedIPs) + "\n")
		b.WriteString("Endpoint = " + endpoint + "\n")
		if p.keepalive > 0 {
			b.WriteString("PersistentKeepalive = " + strconv.Itoa(p.keepalive) + "\n")
		}
	}
	return b.String()
}

func joinPrefixes(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
}

// WGQuick returns the device's WireGuard interface as a wg-quick(8)
// configuration file: [Interface] with the private key and the device's
// addresses, a [Peer] for the relay (management, PersistentKeepalive 25) and
// one per key slot (with its pre-shared key), all with the relay's UDP
// endpoint. A device running stock WireGuard from this file is reachable
// through the relay, without the control protocol (no owner commands), and
// must serve its UI on 10.77.0.1:80 itself. The file holds the device's
// private key: write it mode 0600.
func (d *Device) WGQuick() (string, error) {
	st := d.state()
	f, err := st.iface(d.cfg.MTU)
	if err != nil {
		return "", fmt.Errorf("wg-quick: %w", err)
	}
	header := fmt.Sprintf("# blindrelay device %s (%s), relay %s\n"+
		"# Generated by pkg/device. Holds the device's private key: keep it secret (mode 0600).\n"+
		"# The device's web UI must listen on %s:%d.\n\n",
		st.UID, st.DeviceID, st.Relay.URL, wire.DeviceSessionAddr4, wire.DeviceUIPort)
	return f.wgQuick(header, st.Relay.Endpoint), nil
}
