package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Control protocol framing (docs/protocol.md, "Control protocol"). A frame
// on the TCP stream is
//
//	 0                   4        5
//	+-------------------+--------+---------------------------+
//	| length (u32, BE)  | type   | payload (length bytes)    |
//	+-------------------+--------+---------------------------+
//
// where length counts the payload only (0..MaxFramePayload). A reader skips
// frames of a type it does not know, which the length makes possible.

// FrameType is the one-byte type of a control frame.
type FrameType uint8

// Frame types of control protocol version 1. Values not listed are skipped
// by readers; new ones are only ever added.
const (
	FrameHello      FrameType = 1 // device -> relay, first frame: Hello
	FrameHelloAck   FrameType = 2 // relay -> device, answers Hello: HelloAck
	FramePing       FrameType = 3 // either way: Ping
	FramePong       FrameType = 4 // answers Ping: Pong
	FrameCommand    FrameType = 5 // relay -> device: SignedCommand
	FrameCommandAck FrameType = 6 // device -> relay, answers Command: CommandAck
)

const (
	// frameHeaderSize is the length and type fields.
	frameHeaderSize = 5
	// MaxFramePayload is the largest payload a frame may carry (64 KiB).
	// ReadFrame refuses longer frames before reading them.
	MaxFramePayload = 64 << 10
)

// ErrFrameTooLarge: a frame longer than MaxFramePayload. A reader cannot
// tell a broken peer from a huge frame, so it should close the connection.
var ErrFrameTooLarge = errors.New("control frame too large")

// Frame is one control protocol frame.
type Frame struct {
	Type    FrameType
	Payload []byte
}

// ReadFrame reads one frame from r. It returns io.EOF if r ends before the
// frame starts, io.ErrUnexpectedEOF if it ends inside it, and
// ErrFrameTooLarge (without reading the payload) for a length over
// MaxFramePayload. The payload is newly allocated.
func ReadFrame(r io.Reader) (Frame, error) {
	var hdr [frameHeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[:4])
	if n > MaxFramePayload {
		return Frame{}, fmt.Errorf("read frame of %d bytes: %w", n, ErrFrameTooLarge)
	}
	f := Frame{Type: FrameType(hdr[4]), Payload: make([]byte, n)}
	if _, err := io.ReadFull(r, f.Payload); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return Frame{}, err
	}
	return f, nil
}

// WriteFrame writes f to w in one Write call. It returns ErrFrameTooLarge
// for a payload over MaxFramePayload.
func WriteFrame(w io.Writer, f Frame) error {
	if len(f.Payload) > MaxFramePayload {
		return fmt.Errorf("write frame of %d bytes: %w", len(f.Payload), ErrFrameTooLarge)
	}
	buf := make([]byte, frameHeaderSize+len(f.Payload))
	binary.BigEndian.PutUint32(buf, uint32(len(f.Payload)))
	buf[4] = byte(f.Type)
	copy(buf[frameHeaderSize:], f.Payload)
	_, err := w.Write(buf)
	return err
}
