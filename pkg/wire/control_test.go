package wire

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// controlSamples returns one message of each type.
func controlSamples(tb testing.TB) []Control {
	tb.Helper()
	return []Control{
		Hello{Version: 1, MinVersion: 1, Capabilities: []string{CapabilityOwnerCommands}, Firmware: "warp2 2.6.1", UID: "warp2-AbCd"},
		HelloAck{Version: 1, Capabilities: []string{CapabilityOwnerCommands}},
		HelloAck{Error: "no common version"},
		Ping{Seq: 7},
		Pong{Seq: 7},
		SignCommand(testOwner, testAddUser()),
		SignCommand(testOwner, testRemoveUser()),
		CommandAck{ID: "cmd-1", Status: AckOK},
		CommandAck{ID: "cmd-2", Status: AckRejected, Error: "counter not above 9"},
	}
}

func TestMessageRoundTrip(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	samples := controlSamples(t)
	for _, m := range samples {
		if err := WriteMessage(&buf, m); err != nil {
			t.Fatal(err)
		}
		// Frames of unknown types between them are skipped.
		if err := WriteFrame(&buf, Frame{Type: 77, Payload: []byte("from the future")}); err != nil {
			t.Fatal(err)
		}
	}
	for i, want := range samples {
		got, err := ReadMessage(&buf)
		if err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("message %d (-want +got):\n%s", i, diff)
		}
	}
	if m, err := ReadMessage(&buf); err != io.EOF {
		t.Errorf("at the end: %v, %v; want io.EOF", m, err)
	}
}

// TestMessageJSON pins the JSON of each message: it is the wire format.
func TestMessageJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		m    Control
		typ  FrameType
		want string
	}{
		{Hello{Version: 1, MinVersion: 1, Capabilities: []string{"owner_commands"}, Firmware: "f", UID: "u"}, 1,
			`{"version":1,"min_version":1,"capabilities":["owner_commands"],"firmware":"f","uid":"u"}`},
		{Hello{Version: 2}, 1, `{"version":2,"min_version":0}`},
		{HelloAck{Version: 1}, 2, `{"version":1}`},
		{HelloAck{Error: "e"}, 2, `{"version":0,"error":"e"}`},
		{Ping{Seq: 1}, 3, `{"seq":1}`},
		{Pong{Seq: 1}, 4, `{"seq":1}`},
		{SignedCommand{Version: 1, Command: Command{ID: "i", Kind: "remove_user", DeviceID: "d", UserID: "u", Counter: 2,
			Expires: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}, Signature: []byte{1, 2}}, 5,
			`{"v":1,"command":{"id":"i","kind":"remove_user","device_id":"d","user_id":"u","counter":2,"expires":"2030-01-02T03:04:05Z"},"signature":"AQI="}`},
		{CommandAck{ID: "i", Status: "ok"}, 6, `{"id":"i","status":"ok"}`},
	}
	for _, tt := range tests {
		f, err := EncodeFrame(tt.m)
		if err != nil {
			t.Fatal(err)
		}
		if f.Type != tt.typ || string(f.Payload) != tt.want {
			t.Errorf("%T: frame type %d, payload %s; want %d, %s", tt.m, f.Type, f.Payload, tt.typ, tt.want)
		}
	}
}

func TestDecodeFrame(t *testing.T) {
	t.Parallel()
	// Unknown fields are ignored: a newer peer may add some.
	m, err := DecodeFrame(Frame{Type: FrameHello, Payload: []byte(`{"version":3,"min_version":1,"flux":true,"capabilities":["x"]}`)})
	if err != nil || !cmp.Equal(m, Hello{Version: 3, MinVersion: 1, Capabilities: []string{"x"}}) {
		t.Errorf("Hello with an unknown field: %#v, %v", m, err)
	}
	for _, f := range []Frame{
		{Type: FrameHello, Payload: []byte(`{"version":"1"}`)},
		{Type: FramePing, Payload: []byte(`{`)},
		{Type: FramePong, Payload: nil},
		{Type: FrameCommand, Payload: []byte(`{"v":1,"command":{"expires":"tomorrow"}}`)},
		{Type: FrameCommandAck, Payload: []byte(`[]`)},
	} {
		if m, err := DecodeFrame(f); !errors.Is(err, ErrBadPayload) {
			t.Errorf("DecodeFrame(%d, %q) = %#v, %v; want ErrBadPayload", f.Type, f.Payload, m, err)
		}
	}
	for _, typ := range []FrameType{0, 7, 255} {
		if _, err := DecodeFrame(Frame{Type: typ, Payload: []byte("{}")}); !errors.Is(err, ErrUnknownFrame) {
			t.Errorf("DecodeFrame(type %d): %v, want ErrUnknownFrame", typ, err)
		}
	}
	// After a bad payload the stream is still in step.
	var buf bytes.Buffer
	_ = WriteFrame(&buf, Frame{Type: FramePing, Payload: []byte("nonsense")})
	_ = WriteMessage(&buf, Pong{Seq: 3})
	if _, err := ReadMessage(&buf); !errors.Is(err, ErrBadPayload) {
		t.Errorf("first: %v, want ErrBadPayload", err)
	}
	if m, err := ReadMessage(&buf); err != nil || m != (Pong{Seq: 3}) {
		t.Errorf("second: %#v, %v", m, err)
	}
}

func TestNegotiate(t *testing.T) {
	t.Parallel()
	relay := Hello{Version: 3, MinVersion: 1, Capabilities: []string{"owner_commands", "b", "c", "b"}}
	tests := []struct {
		name         string
		local, remot Hello
		want         HelloAck
		wantErr      bool
	}{
		{"same", Hello{Version: 1, MinVersion: 1}, Hello{Version: 1, MinVersion: 1}, HelloAck{Version: 1}, false},
		{"old device", relay, Hello{Version: 1, MinVersion: 1, Capabilities: []string{"owner_commands"}},
			HelloAck{Version: 1, Capabilities: []string{"owner_commands"}}, false},
		{"new device", relay, Hello{Version: 7, MinVersion: 2, Capabilities: []string{"z", "c", "b"}},
			HelloAck{Version: 3, Capabilities: []string{"b", "c"}}, false},
		{"min 0 reads as 1", Hello{Version: 2}, Hello{Version: 1}, HelloAck{Version: 1}, false},
		{"device too new", Hello{Version: 1, MinVersion: 1}, Hello{Version: 9, MinVersion: 5}, HelloAck{}, true},
		{"device too old", Hello{Version: 5, MinVersion: 4}, Hello{Version: 3, MinVersion: 1}, HelloAck{}, true},
		{"no version", relay, Hello{}, HelloAck{}, true},
		{"inverted range", relay, Hello{Version: 1, MinVersion: 3}, HelloAck{}, true},
		{"negative", relay, Hello{Version: -1, MinVersion: -5}, HelloAck{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Negotiate(tt.local, tt.remot)
			if tt.wantErr {
				if !errors.Is(err, ErrNoCommonVersion) || got.Version != 0 || got.Error == "" {
					t.Errorf("Negotiate = %+v, %v; want version 0 with an error", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Negotiate (-want +got):\n%s", diff)
			}
			if !tt.local.Supports(got.Version) || !tt.remot.Supports(got.Version) {
				t.Errorf("version %d outside a side's range", got.Version)
			}
		})
	}
	// The package's own range agrees with itself.
	self := Hello{Version: ProtocolVersion, MinVersion: MinProtocolVersion}
	if ack, err := Negotiate(self, self); err != nil || ack.Version != ProtocolVersion {
		t.Errorf("Negotiate(self, self) = %+v, %v", ack, err)
	}
}

// TestHelloJSONFromOlderPeer: a Hello that has only a version (a minimal
// firmware) still negotiates.
func TestHelloJSONFromOlderPeer(t *testing.T) {
	t.Parallel()
	var h Hello
	if err := json.Unmarshal([]byte(`{"version":1}`), &h); err != nil {
		t.Fatal(err)
	}
	if ack, err := Negotiate(Hello{Version: ProtocolVersion, MinVersion: MinProtocolVersion}, h); err != nil || ack.Version != 1 {
		t.Errorf("Negotiate = %+v, %v", ack, err)
	}
}
