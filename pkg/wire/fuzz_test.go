package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"golang.zx2c4.com/wireguard/device"
)

// addRealSeeds adds every datagram wireguard-go sent in the capture, and
// a few cut or damaged copies of each, as seeds.
func addRealSeeds(f *testing.F) {
	c := mustCapture(f)
	for _, b := range c.all() {
		f.Add(b)
		f.Add(b[:len(b)-1])
		f.Add(append(clone(b), 0))
		d := clone(b)
		d[1] = 1
		f.Add(d)
	}
	f.Add([]byte{})
	f.Add([]byte{MessageTransportType, 0, 0, 0})
}

// sizeOK reports whether an accepted message has the documented size.
func sizeOK(m Message, n int) bool {
	switch m.Type {
	case MessageInitiationType:
		return n == MessageInitiationSize
	case MessageResponseType:
		return n == MessageResponseSize
	case MessageCookieReplyType:
		return n == MessageCookieReplySize
	case MessageTransportType:
		return n >= MessageTransportMinSize && n <= MaxMessageSize
	}
	return false
}

// FuzzParse: Parse never panics; what it accepts has the documented size and
// the indices at the documented offsets; what it refuses is a DropReason of
// the closed set. For handshakes, Mac1Valid agrees with wireguard-go.
func FuzzParse(f *testing.F) {
	addRealSeeds(f)
	var cc device.CookieChecker
	cc.Init(device.NoisePublicKey(responderKey.Public()))
	mac1 := NewMac1Key(responderKey.Public())
	f.Fuzz(func(t *testing.T, b []byte) {
		in := clone(b)
		m, err := Parse(b)
		if !bytes.Equal(in, b) {
			t.Fatal("Parse changed its input")
		}
		if err != nil {
			r, ok := errors.AsType[DropReason](err)
			if !ok || !slices.Contains(AllDropReasons(), r) || m != (Message{}) {
				t.Fatalf("Parse = %+v, %v: not a known DropReason", m, err)
			}
			if mac1.Valid(b) {
				t.Fatal("Mac1Key.Valid accepted a message Parse refuses")
			}
			return
		}
		if !sizeOK(m, len(b)) {
			t.Fatalf("accepted type %d of %d bytes", m.Type, len(b))
		}
		le := binary.LittleEndian
		var want Message
		switch m.Type {
		case MessageInitiationType:
			want = Message{Type: 1, Sender: le.Uint32(b[4:])}
		case MessageResponseType:
			want = Message{Type: 2, Sender: le.Uint32(b[4:]), Receiver: le.Uint32(b[8:])}
		default:
			want = Message{Type: m.Type, Receiver: le.Uint32(b[4:])}
		}
		if m != want {
			t.Fatalf("Parse = %+v, want %+v", m, want)
		}
		if m.Type == MessageInitiationType || m.Type == MessageResponseType {
			if got, wg := mac1.Valid(b), cc.CheckMAC1(b); got != wg {
				t.Fatalf("Mac1Key.Valid = %v, wireguard-go CheckMAC1 = %v", got, wg)
			}
		} else if mac1.Valid(b) {
			t.Fatalf("Mac1Key.Valid accepted type %d", m.Type)
		}
	})
}

// FuzzInitiatorStatic: no panic; errors are DropReasons; only a
// well-formed initiation yields a key.
func FuzzInitiatorStatic(f *testing.F) {
	addRealSeeds(f)
	c := mustCapture(f)
	realInit := c.first(MessageInitiationType, 0)
	r := NewResponder(responderKey)
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, err := r.InitiatorStatic(b)
		if err != nil {
			if _, ok := errors.AsType[DropReason](err); !ok || !pub.IsZero() {
				t.Fatalf("InitiatorStatic = %v, %v", pub, err)
			}
			return
		}
		if m, perr := Parse(b); perr != nil || m.Type != MessageInitiationType {
			t.Fatalf("a key from a message Parse reads as %+v, %v", m, perr)
		}
		if bytes.Equal(b[:offsetStatic+sizeEncryptedStatic], realInit[:offsetStatic+sizeEncryptedStatic]) && pub != initiatorKey.Public() {
			t.Fatalf("the real initiation gave %v", pub)
		}
	})
}

func BenchmarkParse(b *testing.B) {
	c := mustCapture(b)
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"initiation", c.first(MessageInitiationType, 0)},
		{"transport-1440", c.datagrams[len(c.datagrams)-1].b},
		{"bad-type", []byte{7, 0, 0, 0}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.msg)))
			for b.Loop() {
				_, _ = Parse(tc.msg)
			}
		})
	}
}

func BenchmarkMac1Valid(b *testing.B) {
	c := mustCapture(b)
	init := c.first(MessageInitiationType, 0)
	pub := responderKey.Public()
	b.Run("Mac1Valid", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !Mac1Valid(init, pub) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("Mac1Key.Valid", func(b *testing.B) {
		k := NewMac1Key(pub)
		b.ReportAllocs()
		for b.Loop() {
			if !k.Valid(init) {
				b.Fatal("invalid")
			}
		}
	})
}

func BenchmarkInitiatorStatic(b *testing.B) {
	c := mustCapture(b)
	init := c.first(MessageInitiationType, 0)
	b.Run("InitiatorStatic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := InitiatorStatic(init, responderKey); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Responder", func(b *testing.B) {
		r := NewResponder(responderKey)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.InitiatorStatic(init); err != nil {
				b.Fatal(err)
			}
		}
	})
}
