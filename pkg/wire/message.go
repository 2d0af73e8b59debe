package wire

import "encoding/binary"

// WireGuard message layouts (WireGuard paper §5.4, "Messages"). Every message
// starts with a one-byte type and three reserved bytes that must be zero;
// integers are little-endian. Sizes and offsets are in bytes.
//
// Type 1, handshake initiation, 148 bytes, initiator -> responder:
//
//	 0      1      4        8             40                 88                    116    132    148
//	+------+------+--------+-------------+------------------+---------------------+------+------+
//	| 0x01 | 0 0 0| sender | ephemeral   | encrypted static | encrypted timestamp | mac1 | mac2 |
//	|      |      | u32 LE | 32          | 32 + 16 (tag)    | 12 + 16 (tag)       | 16   | 16   |
//	+------+------+--------+-------------+------------------+---------------------+------+------+
//
// Type 2, handshake response, 92 bytes, responder -> initiator:
//
//	 0      1      4        8          12            44                60     76     92
//	+------+------+--------+----------+-------------+-----------------+------+------+
//	| 0x02 | 0 0 0| sender | receiver | ephemeral   | encrypted empty | mac1 | mac2 |
//	|      |      | u32 LE | u32 LE   | 32          | 0 + 16 (tag)    | 16   | 16   |
//	+------+------+--------+----------+-------------+-----------------+------+------+
//
// Type 3, cookie reply, 64 bytes, sent instead of a response under load:
//
//	 0      1      4          8       32                64
//	+------+------+----------+-------+-----------------+
//	| 0x03 | 0 0 0| receiver | nonce | encrypted cookie|
//	|      |      | u32 LE   | 24    | 16 + 16 (tag)   |
//	+------+------+----------+-------+-----------------+
//
// Type 4, transport data, at least 32 bytes, either direction:
//
//	 0      1      4          8         16
//	+------+------+----------+---------+--------------------------------------+
//	| 0x04 | 0 0 0| receiver | counter | encrypted packet (padded) + 16 (tag) |
//	|      |      | u32 LE   | u64 LE  | >= 16; a keepalive is exactly 16     |
//	+------+------+----------+---------+--------------------------------------+
//
// The sender index is a random number the sending side picked for this
// handshake; the receiver index is the other side's sender index. After a
// handshake, each side's transport messages carry the other side's index.
// A cookie reply carries the sender index of the message it answers.

// Message types (the first byte).
const (
	MessageInitiationType  = 1 // handshake initiation
	MessageResponseType    = 2 // handshake response
	MessageCookieReplyType = 3 // cookie reply
	MessageTransportType   = 4 // transport data
)

// Message sizes, from the specification.
const (
	MessageInitiationSize      = 148 // handshake initiation
	MessageResponseSize        = 92  // handshake response
	MessageCookieReplySize     = 64  // cookie reply
	MessageTransportHeaderSize = 16  // type, reserved, receiver, counter
	MessageTransportMinSize    = 32  // header + an empty (keepalive) packet's 16-byte tag
)

// Implementation limits, not from the specification.
const (
	// MaxMessageSize is the largest message Parse accepts: the largest UDP
	// payload. The relay uses it to bound WebSocket messages too.
	MaxMessageSize = 65535
)

// Field offsets, from the specification.
const (
	offsetSender           = 4  // types 1 and 2
	offsetReceiver         = 4  // types 3 and 4
	offsetResponseReceiver = 8  // type 2
	offsetEphemeral        = 8  // type 1
	offsetStatic           = 40 // type 1: encrypted static key, 32 + 16
	sizeEncryptedStatic    = 48
	sizeMAC                = 16 // mac1 and mac2; mac1 is the 32 bytes before the end
)

// Message is what the relay reads of a WireGuard message: its type and the
// session indices it carries. Indices are zero where the type has none.
type Message struct {
	Type     uint8  // MessageInitiationType .. MessageTransportType
	Sender   uint32 // types 1 and 2: the sending side's index for this handshake
	Receiver uint32 // types 2, 3 and 4: the index the receiving side picked
}

// Parse reads the header of the WireGuard message b. It checks the type, the
// reserved bytes and the size for the type, in that order, and returns the
// first failure as a DropReason. It does not look at any encrypted field or
// MAC. It does not allocate and does not keep b.
func Parse(b []byte) (Message, error) {
	if len(b) < 4 {
		return Message{}, ErrTooShort
	}
	if len(b) > MaxMessageSize {
		return Message{}, ErrTooLong
	}
	typ := b[0]
	if typ < MessageInitiationType || typ > MessageTransportType {
		return Message{}, ErrBadType
	}
	if b[1]|b[2]|b[3] != 0 {
		return Message{}, ErrReservedNonZero
	}
	m := Message{Type: typ}
	switch typ {
	case MessageInitiationType:
		if len(b) != MessageInitiationSize {
			return Message{}, ErrBadSize
		}
		m.Sender = binary.LittleEndian.Uint32(b[offsetSender:])
	case MessageResponseType:
		if len(b) != MessageResponseSize {
			return Message{}, ErrBadSize
		}
		m.Sender = binary.LittleEndian.Uint32(b[offsetSender:])
		m.Receiver = binary.LittleEndian.Uint32(b[offsetResponseReceiver:])
	case MessageCookieReplyType:
		if len(b) != MessageCookieReplySize {
			return Message{}, ErrBadSize
		}
		m.Receiver = binary.LittleEndian.Uint32(b[offsetReceiver:])
	case MessageTransportType:
		if len(b) < MessageTransportMinSize {
			return Message{}, ErrBadSize
		}
		m.Receiver = binary.LittleEndian.Uint32(b[offsetReceiver:])
	}
	return m, nil
}

// isHandshake reports whether b is a well-formed initiation or response, the
// two types that carry mac1.
func isHandshake(b []byte) bool {
	m, err := Parse(b)
	return err == nil && (m.Type == MessageInitiationType || m.Type == MessageResponseType)
}
