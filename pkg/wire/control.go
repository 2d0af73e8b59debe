package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Control protocol versions (docs/protocol.md, "Versions").
const (
	// ProtocolVersion is the highest control protocol version this package
	// speaks.
	ProtocolVersion = 1
	// MinProtocolVersion is the lowest one it still speaks.
	MinProtocolVersion = 1
)

// Capabilities a side may list in Hello. They are free-form strings: a side
// ignores the ones it does not know, and HelloAck lists those both sides
// have.
const (
	// CapabilityOwnerCommands: the device acts on signed owner commands
	// (add_user, remove_user). A relay sends Command frames only to devices
	// that list it.
	CapabilityOwnerCommands = "owner_commands"
)

// Errors of the control protocol; test with errors.Is.
var (
	// ErrUnknownFrame: a frame of a type this version does not know. Readers
	// skip it (ReadMessage does).
	ErrUnknownFrame = errors.New("unknown control frame type")
	// ErrBadPayload: a known frame whose payload is not the JSON of its
	// message. The stream is still in step (the frame was read whole), so a
	// reader may go on.
	ErrBadPayload = errors.New("malformed control frame payload")
	// ErrNoCommonVersion: the two sides' version ranges do not overlap.
	ErrNoCommonVersion = errors.New("no common control protocol version")
)

// Control is a message of the control protocol: Hello, HelloAck, Ping, Pong,
// SignedCommand or CommandAck.
type Control interface {
	// FrameType is the type of frame that carries the message.
	FrameType() FrameType
}

// Hello opens the control protocol: the device sends it as its first frame.
type Hello struct {
	Version      int      `json:"version"`                // highest version the sender speaks
	MinVersion   int      `json:"min_version"`            // lowest version it speaks; 0 means 1
	Capabilities []string `json:"capabilities,omitempty"` // e.g. CapabilityOwnerCommands
	Firmware     string   `json:"firmware,omitempty"`     // free text, e.g. "warp2 2.6.1"
	UID          string   `json:"uid,omitempty"`          // the device UID, e.g. "warp2-AbCd"
}

// HelloAck answers Hello with the version both sides then speak and the
// capabilities both have. Version 0 means there is no common version (Error
// says why); the management tunnel stays up, but no other frames follow.
type HelloAck struct {
	Version      int      `json:"version"`
	Capabilities []string `json:"capabilities,omitempty"`
	Error        string   `json:"error,omitempty"`
}

// Ping asks the other side for a Pong with the same Seq.
type Ping struct {
	Seq uint64 `json:"seq"`
}

// Pong answers a Ping.
type Pong struct {
	Seq uint64 `json:"seq"`
}

// Command acknowledgement statuses.
const (
	// AckOK: the device carried the command out (or had already: a command
	// sent again after a lost ack is acknowledged again).
	AckOK = "ok"
	// AckRejected: the command failed verification (signature, expiry,
	// device, counter) or validation; it will never succeed as sent.
	AckRejected = "rejected"
	// AckUnsupported: the device does not know the command's kind or format
	// version.
	AckUnsupported = "unsupported"
	// AckFailed: the command was valid but carrying it out failed (say, the
	// upload of the new key slots); the relay may send it again.
	AckFailed = "failed"
)

// CommandAck answers a Command frame.
type CommandAck struct {
	ID     string `json:"id"`              // the command's ID
	Status string `json:"status"`          // AckOK, AckRejected, AckUnsupported or AckFailed
	Error  string `json:"error,omitempty"` // for people, when Status is not AckOK
}

// FrameType returns FrameHello.
func (Hello) FrameType() FrameType { return FrameHello }

// FrameType returns FrameHelloAck.
func (HelloAck) FrameType() FrameType { return FrameHelloAck }

// FrameType returns FramePing.
func (Ping) FrameType() FrameType { return FramePing }

// FrameType returns FramePong.
func (Pong) FrameType() FrameType { return FramePong }

// FrameType returns FrameCommand.
func (SignedCommand) FrameType() FrameType { return FrameCommand }

// FrameType returns FrameCommandAck.
func (CommandAck) FrameType() FrameType { return FrameCommandAck }

// minVersion returns h.MinVersion, reading 0 as version 1.
func (h Hello) minVersion() int { return max(h.MinVersion, 1) }

// Supports reports whether version lies within h's range.
func (h Hello) Supports(version int) bool {
	return version >= h.minVersion() && version <= h.Version
}

// Negotiate returns the HelloAck for two sides' Hellos: the highest version
// both speak and the capabilities both list (in local's order, without
// duplicates). The relay calls it with its own Hello as local and the
// device's as remote. Without a common version it returns a HelloAck of
// Version 0 that says so, and an error wrapping ErrNoCommonVersion: send the
// ack anyway, so the device can tell what happened.
func Negotiate(local, remote Hello) (HelloAck, error) {
	hi := min(local.Version, remote.Version)
	lo := max(local.minVersion(), remote.minVersion())
	if hi < lo {
		err := fmt.Errorf("negotiate: local versions %d..%d, remote %d..%d: %w",
			local.minVersion(), local.Version, remote.minVersion(), remote.Version, ErrNoCommonVersion)
		return HelloAck{Error: err.Error()}, err
	}
	var caps []string
	for _, c := range local.Capabilities {
		if slices.Contains(remote.Capabilities, c) && !slices.Contains(caps, c) {
			caps = append(caps, c)
		}
	}
	return HelloAck{Version: hi, Capabilities: caps}, nil
}

// EncodeFrame returns the frame that carries m.
func EncodeFrame(m Control) (Frame, error) {
	payload, err := json.Marshal(m)
	if err != nil {
		return Frame{}, fmt.Errorf("encode %T: %w", m, err)
	}
	return Frame{Type: m.FrameType(), Payload: payload}, nil
}

// DecodeFrame returns the message f carries, as a value of its type (Hello,
// HelloAck, Ping, Pong, SignedCommand or CommandAck). It returns an error
// wrapping ErrUnknownFrame for a type it does not know and ErrBadPayload for
// a payload that is not the message's JSON. Unknown JSON fields are ignored.
func DecodeFrame(f Frame) (Control, error) {
	switch f.Type {
	case FrameHello:
		return decodeJSON[Hello](f)
	case FrameHelloAck:
		return decodeJSON[HelloAck](f)
	case FramePing:
		return decodeJSON[Ping](f)
	case FramePong:
		return decodeJSON[Pong](f)
	case FrameCommand:
		return decodeJSON[SignedCommand](f)
	case FrameCommandAck:
		return decodeJSON[CommandAck](f)
	default:
		return nil, fmt.Errorf("decode frame type %d: %w", f.Type, ErrUnknownFrame)
	}
}

func decodeJSON[M Control](f Frame) (Control, error) {
	var m M
	if err := json.Unmarshal(f.Payload, &m); err != nil {
		return nil, fmt.Errorf("decode frame type %d: %w: %w", f.Type, ErrBadPayload, err)
	}
	return m, nil
}

// WriteMessage writes the frame that carries m to w.
func WriteMessage(w io.Writer, m Control) error {
	f, err := EncodeFrame(m)
	if err != nil {
		return err
	}
	return WriteFrame(w, f)
}

// ReadMessage reads frames from r until one of a known type, and returns its
// message (see DecodeFrame). Frames of unknown types are skipped. Its errors
// are those of ReadFrame and DecodeFrame: after ErrBadPayload the stream is
// still in step; after any other error the connection should be closed.
func ReadMessage(r io.Reader) (Control, error) {
	for {
		f, err := ReadFrame(r)
		if err != nil {
			return nil, err
		}
		m, err := DecodeFrame(f)
		if errors.Is(err, ErrUnknownFrame) {
			continue
		}
		return m, err
	}
}
