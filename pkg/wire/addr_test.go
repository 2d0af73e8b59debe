package wire

import (
	"crypto/sha256"
	"net/netip"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

func TestMgmtAddr(t *testing.T) {
	t.Parallel()
	pub := initiatorKey.Public()
	sum := sha256.Sum256(append([]byte("blindrelay mgmt addr"), pub[:]...))
	want := [16]byte{0xfd, 0xb1, 0xd4, 0xe1, 0xa7, 0x00, 0, 0}
	copy(want[8:], sum[:8])
	got := MgmtAddr(pub)
	if got != netip.AddrFrom16(want) {
		t.Errorf("MgmtAddr = %v, want %v", got, netip.AddrFrom16(want))
	}
	if !MgmtPrefix.Contains(got) || !MgmtPrefix.Contains(RelayMgmtAddr) || got == RelayMgmtAddr {
		t.Errorf("MgmtAddr %v outside %v or equal to the relay's", got, MgmtPrefix)
	}
	if MgmtAddr(responderKey.Public()) == got {
		t.Error("two keys, one address")
	}
	if MgmtAddr(pub) != got {
		t.Error("MgmtAddr is not deterministic")
	}
	// Fixed vectors for other implementations (also in docs/protocol.md).
	for key, want := range map[string]string{
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=": "fdb1:d4e1:a700:0:4db3:1164:95b1:7576",
		"LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE=": "fdb1:d4e1:a700:0:8dd0:8322:45d3:87e2",
	} {
		k, err := wgkey.ParsePublic(key)
		if err != nil {
			t.Fatal(err)
		}
		if got := MgmtAddr(k).String(); got != want {
			t.Errorf("MgmtAddr(%s) = %s, want %s", key, got, want)
		}
	}
}

func TestSessionAddrs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		slot   int
		v4, v6 string
	}{
		{0, "10.77.1.1", "fdb1:d4e1:a7ff::1:1"},
		{3, "10.77.1.4", "fdb1:d4e1:a7ff::1:4"},
		{9, "10.77.1.10", "fdb1:d4e1:a7ff::1:a"},
		{253, "10.77.1.254", "fdb1:d4e1:a7ff::1:fe"},
	}
	for _, tt := range tests {
		a4, ok4 := SlotAddr4(tt.slot)
		a6, ok6 := SlotAddr6(tt.slot)
		if !ok4 || !ok6 || a4.String() != tt.v4 || a6.String() != tt.v6 {
			t.Errorf("slot %d: %v %v, %v %v; want %s, %s", tt.slot, a4, ok4, a6, ok6, tt.v4, tt.v6)
		}
	}
	for _, i := range []int{-1, 254} {
		if _, ok := SlotAddr4(i); ok {
			t.Errorf("SlotAddr4(%d) ok", i)
		}
	}
	for _, i := range []int{-1, 65535} {
		if _, ok := SlotAddr6(i); ok {
			t.Errorf("SlotAddr6(%d) ok", i)
		}
	}
	if a, ok := SlotAddr6(65534); !ok || a.String() != "fdb1:d4e1:a7ff::1:ffff" {
		t.Errorf("SlotAddr6(65534) = %v", a)
	}
	if DeviceSessionAddr4.String() != "10.77.0.1" || DeviceSessionAddr6.String() != "fdb1:d4e1:a7ff::1" {
		t.Error("device session addresses changed")
	}
}
