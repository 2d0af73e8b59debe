package mgmt

import (
	"net/netip"

	"golang.zx2c4.com/wireguard/tun"
)

// observedTUN is the relay's netstack TUN, seen from wireguard-go. Every IP
// packet wireguard-go writes to it was decrypted and its source checked
// against the sending peer's allowed IPs (the device's management address):
// authenticated traffic of that device, which keeps it online.
type observedTUN struct {
	tun.Device
	m *Mgmt
}

// Write notes the source of each IPv6 packet, then passes them on.
func (t *observedTUN) Write(bufs [][]byte, offset int) (int, error) {
	for _, b := range bufs {
		if len(b) < offset+40 {
			continue
		}
		pkt := b[offset:]
		if pkt[0]>>4 == 6 {
			t.m.noteTunnelPacket(netip.AddrFrom16([16]byte(pkt[8:24])))
		}
	}
	return t.Device.Write(bufs, offset)
}
