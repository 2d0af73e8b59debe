package relay_test

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/blindrelay/blindrelay/pkg/relay"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// rawSetup is a relay with a device that is a raw UDP socket and two
// sessions (key slots 0 and 1) whose browsers are raw WebSocket clients.
type rawSetup struct {
	h         *harness
	dev       *udpPeer
	deviceKey wgkey.Public
	slotKey   [2]wgkey.Public
	browser   [2]*rawBrowser
}

const rawDevice = "dev-raw"

func newRawSetup(t *testing.T) *rawSetup {
	t.Helper()
	h := newHarness(t, harnessOptions{})
	r := &rawSetup{h: h, dev: newUDPPeer(t), deviceKey: newSlotKeys(t).pub}
	h.srv.SetDeviceEndpoint(rawDevice, r.dev.addr())
	for i := range r.browser {
		r.slotKey[i] = newSlotKeys(t).pub
		r.browser[i] = newRawBrowser(t, h, r.session(i))
	}
	return r
}

func (r *rawSetup) session(i int) relay.Session {
	return relay.Session{DeviceID: rawDevice, DeviceKey: r.deviceKey, SlotKey: r.slotKey[i], UserID: "u", Slot: i}
}

// forward sends m from browser i and checks the device gets it verbatim.
func (r *rawSetup) forward(t *testing.T, i int, m []byte) {
	t.Helper()
	r.browser[i].send(t, websocket.MessageBinary, m)
	if got := r.dev.recv(waitFor); !bytes.Equal(got, m) {
		t.Fatalf("device got %x, want %x", got, m)
	}
}

// TestDemuxFromDevice checks DESIGN §3 for datagrams arriving on the UDP
// port: receiver indices learned from browsers' handshakes and mac1 of
// device-initiated handshakes pick the session; everything well-formed
// that no session claims goes to the management side, from a device or a
// stranger; malformed datagrams are dropped and counted.
func TestDemuxFromDevice(t *testing.T) {
	t.Parallel()
	r := newRawSetup(t)
	h := r.h
	stranger := newUDPPeer(t)

	// Indices learned from the browsers: their initiations (type 1) and a
	// response to a device-initiated handshake (type 2).
	r.forward(t, 0, initiation(0xA1, r.deviceKey))
	r.forward(t, 1, initiation(0xB1, r.deviceKey))
	r.forward(t, 0, response(0xA2, 0xD0, r.deviceKey))

	const toA, toB, toMgmt = "A", "B", "mgmt"
	tests := []struct {
		name string
		from *udpPeer
		msg  []byte
		want string // toA, toB, toMgmt or a drop reason
	}{
		{"transport to A's initiation index", r.dev, transport(0xA1, 64), toA},
		{"transport to B's initiation index", r.dev, transport(0xB1, 1400), toB},
		{"transport to A's response index", r.dev, transport(0xA2, wire.MessageTransportMinSize), toA},
		{"response to A's initiation", r.dev, response(0xD1, 0xA1, r.slotKey[0]), toA},
		{"cookie reply to B", r.dev, cookieReply(0xB1), toB},
		{"device-initiated handshake for slot 1", r.dev, initiation(0xD2, r.slotKey[1]), toB},
		{"device-initiated handshake for slot 0", r.dev, initiation(0xD3, r.slotKey[0]), toA},
		{"initiation for another key (management)", r.dev, initiation(0xD4, r.deviceKey), toMgmt},
		{"transport to an unknown index", r.dev, transport(0x999, 64), toMgmt},
		{"cookie reply to an unknown index", r.dev, cookieReply(0x998), toMgmt},
		{"stranger guessing A's index", stranger, transport(0xA1, 64), toMgmt},
		{"stranger with a valid slot mac1", stranger, initiation(0xE1, r.slotKey[0]), toMgmt},
		{"stranger's response to A's index", stranger, response(0xE2, 0xA1, r.slotKey[0]), toMgmt},
		{"too short", r.dev, []byte{4, 0}, string(wire.ErrTooShort)},
		{"bad type", stranger, header(9, randomBytes(64)), string(wire.ErrBadType)},
		{"reserved bytes set", r.dev, append([]byte{4, 0, 1, 0}, transport(0xA1, 64)[4:]...), string(wire.ErrReservedNonZero)},
		{"initiation of the wrong size", r.dev, header(1, randomBytes(150)), string(wire.ErrBadSize)},
		{"transport shorter than a keepalive", stranger, transport(0xA1, 31), string(wire.ErrBadSize)},
	}
	for _, tt := range tests {
		before := h.srv.Stats()
		tt.from.send(t, h.addr(), tt.msg)
		switch tt.want {
		case toA, toB:
			b := r.browser[0]
			if tt.want == toB {
				b = r.browser[1]
			}
			if got := b.next(t); !bytes.Equal(got, tt.msg) {
				t.Errorf("%s: browser %s got %x, want %x", tt.name, tt.want, got, tt.msg)
			}
		case toMgmt:
			eventually(t, tt.name+": management side gets it", func() bool {
				return slices.ContainsFunc(h.mgmt.from(tt.from.addr()), func(b []byte) bool { return bytes.Equal(b, tt.msg) })
			})
		default:
			reason := relay.DropReason(tt.want)
			eventually(t, tt.name+": drop counted as "+tt.want, func() bool {
				return h.srv.Stats().Drops[reason] == before.Drops[reason]+1
			})
		}
	}

	// Nothing went astray: the next thing each browser gets is a marker.
	for i, idx := range []uint32{0xA1, 0xB1} {
		m := transport(idx, 100)
		r.dev.send(t, h.addr(), m)
		if got := r.browser[i].next(t); !bytes.Equal(got, m) {
			t.Errorf("browser %d got a stray datagram %x", i, got)
		}
	}
	// The stranger never got a byte back, and the device only what the
	// browsers sent.
	if got := stranger.recv(200 * time.Millisecond); got != nil {
		t.Errorf("stranger got %x", got)
	}
	if got := r.dev.recv(50 * time.Millisecond); got != nil {
		t.Errorf("device got an unexpected %x", got)
	}
}

// TestDemuxFromBrowser checks what the relay does with a browser's
// datagrams: well-formed ones reach the device verbatim, handshakes only
// with a mac1 for the device's key and an index no other session holds.
func TestDemuxFromBrowser(t *testing.T) {
	t.Parallel()
	r := newRawSetup(t)
	h := r.h
	r.forward(t, 1, initiation(0xB1, r.deviceKey)) // slot 1 holds 0xB1

	tests := []struct {
		name string
		typ  websocket.MessageType
		msg  []byte
		want relay.DropReason // "" = forwarded
	}{
		{"initiation", websocket.MessageBinary, initiation(0xA1, r.deviceKey), ""},
		{"response", websocket.MessageBinary, response(0xA2, 0xD1, r.deviceKey), ""},
		{"cookie reply", websocket.MessageBinary, cookieReply(0xD1), ""},
		{"transport", websocket.MessageBinary, transport(0xD1, 1400), ""},
		{"keepalive", websocket.MessageBinary, transport(0xD1, wire.MessageTransportMinSize), ""},
		{"initiation with mac1 for another key", websocket.MessageBinary, initiation(0xA3, r.slotKey[0]), relay.DropReason(wire.ErrBadMac1)},
		{"response with a broken mac1", websocket.MessageBinary, header(2, randomBytes(wire.MessageResponseSize)), relay.DropReason(wire.ErrBadMac1)},
		{"initiation with slot 1's index", websocket.MessageBinary, initiation(0xB1, r.deviceKey), relay.DropIndexInUse},
		{"empty", websocket.MessageBinary, nil, relay.DropReason(wire.ErrTooShort)},
		{"junk", websocket.MessageBinary, []byte("GET / HTTP/1.1\r\n\r\n"), relay.DropReason(wire.ErrBadType)},
		{"reserved bytes set", websocket.MessageBinary, []byte{4, 1, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28}, relay.DropReason(wire.ErrReservedNonZero)},
		{"cookie reply of the wrong size", websocket.MessageBinary, header(3, randomBytes(65)), relay.DropReason(wire.ErrBadSize)},
		{"text message", websocket.MessageText, transport(0xD1, 64), relay.DropNotBinary},
	}
	for _, tt := range tests {
		if tt.want == "" {
			r.forward(t, 0, tt.msg)
			continue
		}
		before := h.sessionStats(t, rawDevice, 0).Drops[tt.want]
		r.browser[0].send(t, tt.typ, tt.msg)
		eventually(t, tt.name+": drop counted as "+string(tt.want), func() bool {
			return h.sessionStats(t, rawDevice, 0).Drops[tt.want] == before+1
		})
	}
	// The dropped ones never reached the device: the next datagram it
	// gets is a marker.
	r.forward(t, 0, transport(0xD2, 64))

	// The index refused to slot 0 still belongs to slot 1.
	m := transport(0xB1, 64)
	r.dev.send(t, h.addr(), m)
	if got := r.browser[1].next(t); !bytes.Equal(got, m) {
		t.Errorf("slot 1 got %x, want %x", got, m)
	}

	// Without an endpoint the device is offline; with one again it is not.
	h.srv.ClearDevice(rawDevice)
	r.browser[0].send(t, websocket.MessageBinary, transport(0xD1, 64))
	eventually(t, "device_offline drop", func() bool {
		return h.sessionStats(t, rawDevice, 0).Drops[relay.DropDeviceOffline] == 1
	})
	h.srv.SetDeviceEndpoint(rawDevice, r.dev.addr())
	r.forward(t, 0, transport(0xD1, 64))

	st := h.sessionStats(t, rawDevice, 0)
	if st.ToDevice.Packets != 7 || st.UserID != "u" {
		t.Errorf("session stats = %+v, want 7 datagrams to the device", st)
	}
}

// TestIndexRing checks that a session keeps only its newest receiver
// indices, so a browser cannot fill the index table.
func TestIndexRing(t *testing.T) {
	t.Parallel()
	r := newRawSetup(t)
	const n = relay.MaxIndices + 3
	for i := range uint32(n) {
		r.forward(t, 0, initiation(0x100+i, r.deviceKey))
	}
	got := r.h.srv.IndicesForTest(rawDevice)
	slices.Sort(got)
	var want []uint32
	for i := uint32(n - relay.MaxIndices); i < n; i++ {
		want = append(want, 0x100+i)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("indices = %x, want %x", got, want)
	}
	// A forgotten index no longer reaches the browser.
	m := transport(0x100, 64)
	r.dev.send(t, r.h.addr(), m)
	eventually(t, "management side gets the forgotten index", func() bool {
		return len(r.h.mgmt.from(r.dev.addr())) == 1
	})
}

// TestEndpoints checks SetDeviceEndpoint and ClearDevice: one endpoint per
// device, the newer device wins an address, and the relay forgets a device
// with neither endpoint nor session.
func TestEndpoints(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	a := newUDPPeer(t)
	b := newUDPPeer(t)
	h.srv.SetDeviceEndpoint("one", a.addr())
	h.srv.SetDeviceEndpoint("two", b.addr())
	if st := h.srv.Stats(); st.Devices != 2 || st.Online != 2 {
		t.Fatalf("stats = %+v, want 2 devices online", st)
	}
	h.srv.SetDeviceEndpoint("one", b.addr()) // "one" moved to b's address
	if got := h.srv.EndpointForTest("one"); got != b.addr() {
		t.Errorf("one at %v, want %v", got, b.addr())
	}
	if h.srv.DeviceKnownForTest("two") {
		t.Error("two still known after losing its only endpoint")
	}
	// An IPv4-mapped IPv6 endpoint is the IPv4 one.
	mapped := netipMapped(a.addr())
	h.srv.SetDeviceEndpoint("three", mapped)
	if got := h.srv.EndpointForTest("three"); got != a.addr() {
		t.Errorf("three at %v, want %v", got, a.addr())
	}
	h.srv.ClearDevice("one")
	h.srv.ClearDevice("three")
	h.srv.ClearDevice("never-seen")
	if st := h.srv.Stats(); st.Devices != 0 || st.Online != 0 {
		t.Errorf("stats = %+v, want no devices", st)
	}
}

// TestHandshakeRate: a browser that floods handshakes gets only a burst
// through; the rest is dropped and counted.
func TestHandshakeRate(t *testing.T) {
	t.Parallel()
	r := newRawSetup(t)
	const n = 64
	for i := range uint32(n) {
		r.browser[0].send(t, websocket.MessageBinary, initiation(0x200+i, r.deviceKey))
	}
	var st relay.SessionStats
	eventually(t, "all handshakes accounted for", func() bool {
		st = r.h.sessionStats(t, rawDevice, 0)
		return st.ToDevice.Packets+st.Drops[relay.DropHandshakeRate] == n
	})
	if st.ToDevice.Packets < 16 || st.ToDevice.Packets > 32 {
		t.Errorf("%d of %d back-to-back handshakes forwarded, want the burst of 16 (plus refill)", st.ToDevice.Packets, n)
	}
	for range st.ToDevice.Packets {
		if r.dev.recv(waitFor) == nil {
			t.Fatal("device got fewer handshakes than counted")
		}
	}
	// Transport data is not limited.
	r.forward(t, 0, transport(1, 64))
}
