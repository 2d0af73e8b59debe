package relay

import (
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/crypto/blake2s"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// The fuzz targets drive the two packet paths directly, without
// WebSockets: a session is registered as Accept would, and datagrams are
// handed to fromBrowser and fromUDP. Invariants: no panic; every datagram
// is accounted for exactly once (forwarded, queued, handed to the
// management side, or dropped); only well-formed datagrams leave; a
// session never holds more than maxIndices indices.

type countingMgmt struct{ n int }

func (m *countingMgmt) HandleMgmt([]byte, netip.AddrPort) { m.n++ }

type fuzzSetup struct {
	srv       *Server
	mgmt      *countingMgmt
	ss        *session
	deviceKey wgkey.Public
	slotKey   wgkey.Public
	device    netip.AddrPort // the device's endpoint: a socket nobody reads
}

func newFuzzSetup(t testing.TB) *fuzzSetup {
	udp := listenLoopback(t)
	sink := listenLoopback(t)
	f := &fuzzSetup{mgmt: &countingMgmt{}, device: sink.LocalAddr().(*net.UDPAddr).AddrPort()}
	var err error
	f.srv, err = New(Config{Conn: udp, Mgmt: f.mgmt, SessionQueue: 4})
	if err != nil {
		t.Fatal(err)
	}
	f.deviceKey = testKey(t)
	f.slotKey = testKey(t)
	f.srv.SetDeviceEndpoint("dev", f.device)
	sess := Session{DeviceID: "dev", DeviceKey: f.deviceKey, SlotKey: f.slotKey}
	f.ss = &session{Session: sess, srv: f.srv, slotMac1: wire.NewMac1Key(sess.SlotKey),
		deviceMac1: wire.NewMac1Key(sess.DeviceKey), queue: make(chan *packet, 4), cancel: func(error) {},
		drops: newDropCounters(), hsTokens: handshakeBurst}
	f.srv.register(f.ss)
	return f
}

func listenLoopback(t testing.TB) *net.UDPConn {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testKey(t testing.TB) wgkey.Public {
	k, err := wgkey.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

// total is every datagram the relay has accounted for.
func (f *fuzzSetup) total() uint64 {
	n := f.srv.toDevice.packets.Load() + uint64(len(f.ss.queue)) + uint64(f.mgmt.n)
	for i := range f.srv.drops.n {
		n += f.srv.drops.n[i].Load()
	}
	return n
}

func (f *fuzzSetup) drain() {
	for len(f.ss.queue) > 0 {
		(<-f.ss.queue).free()
	}
}

// seedMessage builds a well-formed message of type typ with index idx and,
// for handshakes, a mac1 for key.
func seedMessage(typ byte, size int, idx uint32, key wgkey.Public) []byte {
	b := make([]byte, size)
	b[0] = typ
	for i := 8; i < size; i++ {
		b[i] = byte(i * 7)
	}
	binary.LittleEndian.PutUint32(b[4:], idx)
	if typ == wire.MessageResponseType {
		binary.LittleEndian.PutUint32(b[8:], idx+1)
	}
	if typ == wire.MessageInitiationType || typ == wire.MessageResponseType {
		mk := wire.NewMac1Key(key)
		h, _ := blake2s.New128(mk[:])
		h.Write(b[:size-32])
		copy(b[size-32:], h.Sum(nil))
	}
	return b
}

func addSeeds(f *testing.F, s *fuzzSetup, key wgkey.Public) {
	f.Add(seedMessage(wire.MessageInitiationType, wire.MessageInitiationSize, 1, key))
	f.Add(seedMessage(wire.MessageResponseType, wire.MessageResponseSize, 2, key))
	f.Add(seedMessage(wire.MessageCookieReplyType, wire.MessageCookieReplySize, 3, key))
	f.Add(seedMessage(wire.MessageTransportType, 1452, 4, key))
	f.Add(seedMessage(wire.MessageTransportType, wire.MessageTransportMinSize, 1, key))
	f.Add([]byte{})
	f.Add([]byte{4, 0, 0})
	f.Add([]byte("\x01\x00\x00\x00 not a handshake"))
	f.Add(make([]byte, wire.MessageInitiationSize))
}

// FuzzFromBrowser feeds arbitrary WebSocket messages to the browser→device
// path.
func FuzzFromBrowser(f *testing.F) {
	s := newFuzzSetup(f)
	addSeeds(f, s, s.deviceKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		before, sent := s.total(), s.srv.toDevice.packets.Load()
		s.ss.hsTokens = handshakeBurst // reach learn, not only the rate limit
		s.srv.fromBrowser(s.ss, b)
		if got := s.total(); got != before+1 {
			t.Fatalf("datagram accounted %d times", got-before)
		}
		if s.srv.toDevice.packets.Load() != sent {
			if _, err := wire.Parse(b); err != nil {
				t.Fatalf("malformed datagram forwarded: %v", err)
			}
		}
		if n := len(s.srv.IndicesForTest("dev")); n > maxIndices {
			t.Fatalf("%d indices learned", n)
		}
	})
}

// FuzzFromUDP feeds arbitrary datagrams to the UDP demultiplexer, from the
// device's endpoint (after the fuzz input's first byte says so) or from a
// stranger.
func FuzzFromUDP(f *testing.F) {
	s := newFuzzSetup(f)
	// Learn an index for the session, as a browser's initiation would.
	s.srv.fromBrowser(s.ss, seedMessage(wire.MessageInitiationType, wire.MessageInitiationSize, 4, s.deviceKey))
	stranger := netip.MustParseAddrPort("192.0.2.1:51820")
	addSeeds(f, s, s.slotKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		from := s.device
		if len(b) > 0 && b[0]&0x80 != 0 {
			from = stranger
			b[0] &^= 0x80
		}
		before, queued := s.total(), len(s.ss.queue)
		s.srv.fromUDP(b, from)
		if got := s.total(); got != before+1 {
			t.Fatalf("datagram accounted %d times", got-before)
		}
		if len(s.ss.queue) != queued {
			msg, err := wire.Parse(b)
			if err != nil || from != s.device {
				t.Fatalf("datagram from %v (%v) given to the session", from, err)
			}
			if msg.Type == wire.MessageInitiationType && !wire.Mac1Valid(b, s.slotKey) {
				t.Fatal("initiation without the slot's mac1 given to the session")
			}
		}
		s.drain()
	})
}
