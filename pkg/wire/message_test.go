package wire

import (
	"encoding/binary"
	"errors"
	"regexp"
	"testing"

	"golang.zx2c4.com/wireguard/device"
)

// msg returns a message of size bytes with type typ and the given bytes from
// offset 4 on.
func msg(typ byte, size int) []byte {
	b := make([]byte, size)
	if size > 0 {
		b[0] = typ
	}
	for i := 4; i < size; i++ {
		b[i] = byte(i * 7)
	}
	return b
}

func TestParseDropReasons(t *testing.T) {
	t.Parallel()
	withReserved := func(i int) []byte {
		b := msg(MessageTransportType, 32)
		b[i] = 1
		return b
	}
	tests := []struct {
		name string
		in   []byte
		want DropReason
	}{
		{"nil", nil, ErrTooShort},
		{"one byte", []byte{MessageTransportType}, ErrTooShort},
		{"three bytes", []byte{MessageTransportType, 0, 0}, ErrTooShort},
		{"too long transport", msg(MessageTransportType, MaxMessageSize+1), ErrTooLong},
		{"type 0", msg(0, 148), ErrBadType},
		{"type 5", msg(5, 148), ErrBadType},
		{"type 255", msg(255, 32), ErrBadType},
		{"bad type before reserved", []byte{9, 1, 1, 1}, ErrBadType},
		{"reserved byte 1", withReserved(1), ErrReservedNonZero},
		{"reserved byte 2", withReserved(2), ErrReservedNonZero},
		{"reserved byte 3", withReserved(3), ErrReservedNonZero},
		{"reserved before size", []byte{MessageInitiationType, 0, 0, 0x80}, ErrReservedNonZero},
		{"header only", msg(MessageInitiationType, 4), ErrBadSize},
		{"initiation short", msg(MessageInitiationType, MessageInitiationSize-1), ErrBadSize},
		{"initiation long", msg(MessageInitiationType, MessageInitiationSize+1), ErrBadSize},
		{"response short", msg(MessageResponseType, MessageResponseSize-1), ErrBadSize},
		{"response long", msg(MessageResponseType, MessageResponseSize+1), ErrBadSize},
		{"response with initiation size", msg(MessageResponseType, MessageInitiationSize), ErrBadSize},
		{"cookie short", msg(MessageCookieReplyType, MessageCookieReplySize-1), ErrBadSize},
		{"cookie long", msg(MessageCookieReplyType, MessageCookieReplySize+1), ErrBadSize},
		{"transport header only", msg(MessageTransportType, MessageTransportHeaderSize), ErrBadSize},
		{"transport short", msg(MessageTransportType, MessageTransportMinSize-1), ErrBadSize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := Parse(tt.in)
			if err != tt.want || !errors.Is(err, tt.want) || m != (Message{}) {
				t.Errorf("Parse = %+v, %v; want %v", m, err, tt.want)
			}
			if r, ok := errors.AsType[DropReason](err); !ok || r.String() != string(tt.want) {
				t.Errorf("error %v is not the DropReason %q", err, tt.want)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	le := binary.LittleEndian
	init := msg(MessageInitiationType, MessageInitiationSize)
	resp := msg(MessageResponseType, MessageResponseSize)
	cookie := msg(MessageCookieReplyType, MessageCookieReplySize)
	tests := []struct {
		name string
		in   []byte
		want Message
	}{
		{"initiation", init, Message{Type: 1, Sender: le.Uint32(init[4:])}},
		{"response", resp, Message{Type: 2, Sender: le.Uint32(resp[4:]), Receiver: le.Uint32(resp[8:])}},
		{"cookie", cookie, Message{Type: 3, Receiver: le.Uint32(cookie[4:])}},
		{"keepalive", []byte{4, 0, 0, 0, 0xef, 0xbe, 0xad, 0xde, 30: 0, 31: 0}, Message{Type: 4, Receiver: 0xdeadbeef}},
		{"transport odd size", msg(MessageTransportType, 1441), Message{Type: 4, Receiver: le.Uint32(msg(4, 8)[4:])}},
		{"transport max", msg(MessageTransportType, MaxMessageSize), Message{Type: 4, Receiver: le.Uint32(msg(4, 8)[4:])}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got, err := Parse(tt.in); err != nil || got != tt.want {
				t.Errorf("Parse = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// TestConstantsMatchWireGuardGo: the sizes and types are wireguard-go's.
func TestConstantsMatchWireGuardGo(t *testing.T) {
	t.Parallel()
	pairs := []struct {
		name       string
		ours, wggo int
	}{
		{"MessageInitiationType", MessageInitiationType, device.MessageInitiationType},
		{"MessageResponseType", MessageResponseType, device.MessageResponseType},
		{"MessageCookieReplyType", MessageCookieReplyType, device.MessageCookieReplyType},
		{"MessageTransportType", MessageTransportType, device.MessageTransportType},
		{"MessageInitiationSize", MessageInitiationSize, device.MessageInitiationSize},
		{"MessageResponseSize", MessageResponseSize, device.MessageResponseSize},
		{"MessageCookieReplySize", MessageCookieReplySize, device.MessageCookieReplySize},
		{"MessageTransportHeaderSize", MessageTransportHeaderSize, device.MessageTransportHeaderSize},
		{"MessageTransportMinSize", MessageTransportMinSize, device.MessageTransportSize},
		{"MaxMessageSize", MaxMessageSize, device.MaxMessageSize},
	}
	for _, p := range pairs {
		if p.ours != p.wggo {
			t.Errorf("%s = %d, wireguard-go has %d", p.name, p.ours, p.wggo)
		}
	}
	if construction != device.NoiseConstruction || identifier != device.WGIdentifier || labelMac1 != device.WGLabelMAC1 {
		t.Error("handshake constants differ from wireguard-go's")
	}
}

// TestDropReasons: the set is closed, labels are unique snake_case metric
// label values, and each is produced by something in this package (see the
// tests named in the table).
func TestDropReasons(t *testing.T) {
	t.Parallel()
	label := regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	seen := map[string]bool{}
	for _, r := range AllDropReasons() {
		if !label.MatchString(r.String()) || seen[r.String()] {
			t.Errorf("bad or duplicate label %q", r)
		}
		seen[r.String()] = true
		if r.Error() == r.String() || r.Error() == "" {
			t.Errorf("%q has no error text", r)
		}
	}
	// Produced by: TestParseDropReasons (the first five), TestMac1RealTraffic
	// (bad_mac1, as a false result), TestInitiatorStaticRealTraffic.
	want := []string{"too_short", "too_long", "bad_type", "reserved", "bad_size", "bad_mac1", "bad_handshake"}
	if len(seen) != len(want) {
		t.Errorf("AllDropReasons = %v, want %v", AllDropReasons(), want)
	}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("AllDropReasons lacks %q", w)
		}
	}
}
