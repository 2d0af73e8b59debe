package wire

import (
	"errors"
	"testing"

	"golang.zx2c4.com/wireguard/device"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// TestParseRealTraffic: Parse reads wireguard-go's datagrams, and the
// indices line up as the relay's demux relies on.
func TestParseRealTraffic(t *testing.T) {
	t.Parallel()
	c := mustCapture(t)
	counts := map[[2]int]int{}
	var initSender, respSender uint32
	for i, d := range c.datagrams {
		m, err := Parse(d.b)
		if err != nil {
			t.Fatalf("datagram %d (%d bytes from device %d): %v", i, len(d.b), d.from, err)
		}
		counts[[2]int{d.from, int(m.Type)}]++
		t.Logf("device %d sent type %d, %d bytes, sender %#x, receiver %#x", d.from, m.Type, len(d.b), m.Sender, m.Receiver)
		switch m.Type {
		case MessageInitiationType:
			if d.from != 0 || m.Receiver != 0 {
				t.Errorf("initiation %+v from device %d", m, d.from)
			}
			initSender = m.Sender
		case MessageResponseType:
			if d.from != 1 {
				t.Errorf("response from device %d", d.from)
			}
			if m.Receiver != initSender {
				t.Errorf("response receiver %#x, want the initiation's sender %#x", m.Receiver, initSender)
			}
			respSender = m.Sender
		case MessageTransportType:
			want := respSender // device 0 sends to device 1's index
			if d.from == 1 {
				want = initSender
			}
			if m.Receiver != want || m.Sender != 0 {
				t.Errorf("transport from device %d: %+v, want receiver %#x", d.from, m, want)
			}
			if len(d.b) < MessageTransportMinSize {
				t.Errorf("transport of %d bytes", len(d.b))
			}
		default:
			t.Errorf("unexpected %+v from device %d", m, d.from)
		}
	}
	if initSender == respSender {
		t.Errorf("initiator and responder picked the same index %#x", initSender)
	}
	for _, want := range [][2]int{{0, 1}, {1, 2}, {0, 4}, {1, 4}} {
		if counts[want] == 0 {
			t.Errorf("no message of type %d from device %d; got %v", want[1], want[0], counts)
		}
	}
	m, err := Parse(c.cookie)
	if err != nil || m.Type != MessageCookieReplyType || m.Receiver != initSender || m.Sender != 0 {
		t.Errorf("Parse(cookie reply) = %+v, %v; want receiver %#x", m, err, initSender)
	}
}

// TestMac1RealTraffic: mac1 of wireguard-go's handshakes checks out under
// the receiver's key only, as wireguard-go's own CookieChecker sees it.
func TestMac1RealTraffic(t *testing.T) {
	t.Parallel()
	c := mustCapture(t)
	init, resp := c.first(MessageInitiationType, 0), c.first(MessageResponseType, 1)
	tests := []struct {
		name     string
		msg      []byte
		receiver wgkey.Public
		want     bool
	}{
		{"initiation, responder key", init, responderKey.Public(), true},
		{"initiation, initiator key", init, initiatorKey.Public(), false},
		{"initiation, other key", init, otherKey.Public(), false},
		{"response, initiator key", resp, initiatorKey.Public(), true},
		{"response, responder key", resp, responderKey.Public(), false},
		{"response, other key", resp, otherKey.Public(), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Mac1Valid(tt.msg, tt.receiver); got != tt.want {
				t.Errorf("Mac1Valid = %v, want %v", got, tt.want)
			}
			k := NewMac1Key(tt.receiver)
			if got := k.Valid(tt.msg); got != tt.want {
				t.Errorf("Mac1Key.Valid = %v, want %v", got, tt.want)
			}
			var cc device.CookieChecker
			cc.Init(device.NoisePublicKey(tt.receiver))
			if got := cc.CheckMAC1(tt.msg); got != tt.want {
				t.Errorf("wireguard-go CheckMAC1 = %v, the test is wrong", got)
			}
		})
	}
	// Any change before or in mac1 breaks it; a change of mac2 does not.
	for i := range len(init) {
		msg := clone(init)
		msg[i] ^= 0x01
		got := Mac1Valid(msg, responderKey.Public())
		inMac2 := i >= len(init)-16
		if got != inMac2 {
			t.Errorf("initiation with byte %d flipped: Mac1Valid = %v", i, got)
		}
	}
	// Not a handshake, or cut short: never valid.
	for _, msg := range [][]byte{c.first(MessageTransportType, 0), c.cookie, init[:len(init)-1], nil} {
		if Mac1Valid(msg, responderKey.Public()) || Mac1Valid(msg, initiatorKey.Public()) {
			t.Errorf("Mac1Valid true for a %d-byte non-handshake", len(msg))
		}
	}
}

// TestInitiatorStaticRealTraffic: the responder's key opens the initiator's
// static key from wireguard-go's initiation; another key or a changed
// message does not.
func TestInitiatorStaticRealTraffic(t *testing.T) {
	t.Parallel()
	c := mustCapture(t)
	init := c.first(MessageInitiationType, 0)
	got, err := InitiatorStatic(init, responderKey)
	if err != nil || got != initiatorKey.Public() {
		t.Fatalf("InitiatorStatic = %v, %v; want %v", got, err, initiatorKey.Public())
	}
	r := NewResponder(responderKey)
	if got, err := r.InitiatorStatic(init); err != nil || got != initiatorKey.Public() {
		t.Fatalf("Responder.InitiatorStatic = %v, %v", got, err)
	}
	for _, k := range []wgkey.Private{initiatorKey, otherKey, {}} {
		if got, err := InitiatorStatic(init, k); !errors.Is(err, ErrBadHandshake) || !got.IsZero() {
			t.Errorf("with another key: %v, %v; want ErrBadHandshake", got, err)
		}
	}
	// Tampering with the ephemeral or the encrypted static key is caught.
	// The sender index, timestamp and MACs are outside what is decrypted.
	for i := range len(init) {
		msg := clone(init)
		msg[i] ^= 0x80
		got, err := r.InitiatorStatic(msg)
		switch {
		case i < 4:
			if err == nil {
				t.Errorf("byte %d (type/reserved) flipped: no error", i)
			}
		case i >= offsetEphemeral && i < offsetStatic+sizeEncryptedStatic:
			if !errors.Is(err, ErrBadHandshake) {
				t.Errorf("byte %d flipped: %v, %v; want ErrBadHandshake", i, got, err)
			}
		default:
			if err != nil || got != initiatorKey.Public() {
				t.Errorf("byte %d flipped: %v, %v; want the key", i, got, err)
			}
		}
	}
	// Other message types are refused with their drop reason.
	for _, msg := range [][]byte{c.first(MessageResponseType, 1), c.first(MessageTransportType, 0), c.cookie} {
		if _, err := r.InitiatorStatic(msg); !errors.Is(err, ErrBadType) {
			t.Errorf("type %d: %v, want ErrBadType", msg[0], err)
		}
	}
	// A low-order ephemeral key gives a zero shared secret.
	msg := clone(init)
	clear(msg[offsetEphemeral : offsetEphemeral+32])
	if _, err := r.InitiatorStatic(msg); !errors.Is(err, ErrBadHandshake) {
		t.Errorf("zero ephemeral: %v, want ErrBadHandshake", err)
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
