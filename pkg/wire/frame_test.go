package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// frameBytes returns the encoding of a frame, built by hand.
func frameBytes(typ FrameType, payload string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(payload)))
	return append(append(b, byte(typ)), payload...)
}

func TestFrameRoundTrip(t *testing.T) {
	t.Parallel()
	frames := []Frame{
		{Type: FrameHello, Payload: []byte(`{"version":1}`)},
		{Type: 200, Payload: []byte{}},
		{Type: FramePing, Payload: bytes.Repeat([]byte{0xaa}, MaxFramePayload)},
	}
	var buf bytes.Buffer
	for _, f := range frames {
		if err := WriteFrame(&buf, f); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := buf.Len(), 3*5+13+MaxFramePayload; got != want {
		t.Errorf("wrote %d bytes, want %d", got, want)
	}
	if !bytes.HasPrefix(buf.Bytes(), frameBytes(FrameHello, `{"version":1}`)) {
		t.Errorf("first frame encodes as % x", buf.Bytes()[:18])
	}
	// Read back one byte at a time: frames may arrive in pieces.
	r := iotest.OneByteReader(&buf)
	for i, want := range frames {
		got, err := ReadFrame(r)
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("frame %d (-want +got):\n%s", i, diff)
		}
	}
	if _, err := ReadFrame(r); err != io.EOF {
		t.Errorf("after the last frame: %v, want io.EOF", err)
	}
}

func TestReadFrameErrors(t *testing.T) {
	t.Parallel()
	tooLarge := binary.BigEndian.AppendUint32(nil, MaxFramePayload+1)
	tests := []struct {
		name string
		in   []byte
		want error
	}{
		{"empty", nil, io.EOF},
		{"half a length", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"no type", []byte{0, 0, 0, 0}, io.ErrUnexpectedEOF},
		{"short payload", frameBytes(FramePing, "{}")[:6], io.ErrUnexpectedEOF},
		{"payload missing", frameBytes(FramePing, "{}")[:5], io.ErrUnexpectedEOF},
		{"too large", append(tooLarge, 1), ErrFrameTooLarge},
		{"huge", []byte{0xff, 0xff, 0xff, 0xff, 1}, ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ReadFrame(bytes.NewReader(tt.in)); !errors.Is(err, tt.want) {
				t.Errorf("ReadFrame: %v, want %v", err, tt.want)
			}
		})
	}
	if err := WriteFrame(io.Discard, Frame{Type: 1, Payload: make([]byte, MaxFramePayload+1)}); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("WriteFrame of a large frame: %v", err)
	}
	wantErr := errors.New("broken pipe")
	if err := WriteFrame(errWriter{wantErr}, Frame{Type: 1}); !errors.Is(err, wantErr) {
		t.Errorf("WriteFrame to a failing writer: %v", err)
	}
}

type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }

// FuzzReadFrame: no panic; what ReadFrame accepts re-encodes to the bytes it
// consumed; what DecodeFrame accepts survives an encode/decode round trip.
func FuzzReadFrame(f *testing.F) {
	for _, m := range controlSamples(f) {
		fr, err := EncodeFrame(m)
		if err != nil {
			f.Fatal(err)
		}
		var buf bytes.Buffer
		if err := WriteFrame(&buf, fr); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		f.Add(append(frameBytes(99, "skip me"), buf.Bytes()...))
	}
	f.Add(frameBytes(FrameHello, "{"))
	f.Add(frameBytes(FrameCommand, `{"v":1,"command":{"expires":"x"}}`))
	f.Add([]byte{0, 1, 0, 0, 1})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		fr, err := ReadFrame(r)
		if err != nil {
			if m, err := ReadMessage(bytes.NewReader(b)); err == nil {
				t.Fatalf("ReadMessage read %T where ReadFrame failed", m)
			}
			return
		}
		consumed := b[:len(b)-r.Len()]
		if len(fr.Payload) > MaxFramePayload {
			t.Fatalf("payload of %d bytes", len(fr.Payload))
		}
		var out bytes.Buffer
		if err := WriteFrame(&out, fr); err != nil || !bytes.Equal(out.Bytes(), consumed) {
			t.Fatalf("re-encoding gives % x, %v; read % x", out.Bytes(), err, consumed)
		}
		m, err := DecodeFrame(fr)
		if err != nil {
			if !errors.Is(err, ErrUnknownFrame) && !errors.Is(err, ErrBadPayload) {
				t.Fatalf("DecodeFrame: %v", err)
			}
			return
		}
		if m.FrameType() != fr.Type {
			t.Fatalf("frame type %d decoded to %T", fr.Type, m)
		}
		again, err := EncodeFrame(m)
		if err != nil {
			t.Fatalf("EncodeFrame(%#v): %v", m, err)
		}
		m2, err := DecodeFrame(again)
		if err != nil {
			t.Fatalf("decode of re-encoded %T: %v", m, err)
		}
		if diff := cmp.Diff(m, m2, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("round trip (-first +second):\n%s", diff)
		}
		if sc, ok := m.(SignedCommand); ok {
			// No panic on any command, signed or not.
			_, _ = VerifyCommand(testOwnerPub, sc, sc.Command.Expires)
		}
	})
}
