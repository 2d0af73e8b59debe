package wire

import (
	"crypto/sha256"
	"net/netip"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// The addressing plan (docs/protocol.md, "Addresses"). The management tunnel
// (relay <-> device) uses a unique local IPv6 prefix; each device's own
// WireGuard interface uses the same fixed session addresses, since that
// interface is private to the device.
var (
	// MgmtPrefix holds the management addresses of the relay and of every
	// device.
	MgmtPrefix = netip.MustParsePrefix("fdb1:d4e1:a700::/64")
	// RelayMgmtAddr is the relay's address in the management tunnel.
	RelayMgmtAddr = netip.MustParseAddr("fdb1:d4e1:a700::1")

	// DeviceSessionAddr4 and DeviceSessionAddr6 are a device's own addresses
	// on its session interface; its web UI listens on DeviceSessionAddr4,
	// port DeviceUIPort.
	DeviceSessionAddr4 = netip.MustParseAddr("10.77.0.1")
	DeviceSessionAddr6 = netip.MustParseAddr("fdb1:d4e1:a7ff::1")
)

const (
	// ControlPort is the TCP port of the control protocol on RelayMgmtAddr;
	// the device dials it.
	ControlPort = 7000
	// DeviceUIPort is the TCP port of the device's web UI on
	// DeviceSessionAddr4.
	DeviceUIPort = 80
	// mgmtAddrLabel is hashed with a device's public key into its
	// management address.
	mgmtAddrLabel = "blindrelay mgmt addr"
)

// MgmtAddr returns a device's address in the management tunnel: MgmtPrefix
// with, as the low 64 bits, the first 8 bytes of
// SHA-256("blindrelay mgmt addr" || device public key), or bytes 8..15 of
// that hash if the first 8 would give RelayMgmtAddr.
func MgmtAddr(device wgkey.Public) netip.Addr {
	h := sha256.New()
	h.Write([]byte(mgmtAddrLabel))
	h.Write(device[:])
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	a := MgmtPrefix.Addr().As16()
	copy(a[8:], sum[:8])
	if netip.AddrFrom16(a) == RelayMgmtAddr {
		copy(a[8:], sum[8:16])
	}
	return netip.AddrFrom16(a)
}

// SlotAddr4 returns the IPv4 address of key slot i (0-based) on a device's
// session interface: 10.77.1.(i+1). It reports false for a slot outside
// 0..253.
func SlotAddr4(i int) (netip.Addr, bool) {
	if i < 0 || i > 253 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4([4]byte{10, 77, 1, byte(i + 1)}), true
}

// SlotAddr6 returns the IPv6 address of key slot i (0-based) on a device's
// session interface: fdb1:d4e1:a7ff::1:(i+1), the last group in hex. It
// reports false for a slot outside 0..65534.
func SlotAddr6(i int) (netip.Addr, bool) {
	if i < 0 || i > 65534 {
		return netip.Addr{}, false
	}
	a := DeviceSessionAddr6.As16()
	a[13] = 1
	a[14], a[15] = byte((i+1)>>8), byte(i+1)
	return netip.AddrFrom16(a), true
}
