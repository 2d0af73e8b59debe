package wire

// DropReason says why a datagram was dropped. The values are a small closed
// set (AllDropReasons) meant as metric labels; String returns the label. The
// errors of Parse, InitiatorStatic and Responder.InitiatorStatic are
// DropReason values, so a caller counts a drop with
//
//	if r, ok := errors.AsType[wire.DropReason](err); ok { drops[r].Add(1) }
//
// and tests for one with errors.Is(err, wire.ErrTooShort).
type DropReason string

// The drop reasons of this package.
const (
	// ErrTooShort: fewer than 4 bytes, so no type and reserved field.
	ErrTooShort DropReason = "too_short"
	// ErrTooLong: more than MaxMessageSize bytes.
	ErrTooLong DropReason = "too_long"
	// ErrBadType: a message type other than 1, 2, 3 or 4.
	ErrBadType DropReason = "bad_type"
	// ErrReservedNonZero: one of the three reserved bytes after the type is
	// not zero.
	ErrReservedNonZero DropReason = "reserved"
	// ErrBadSize: a known type with the wrong size for it (handshake messages
	// have one fixed size, transport messages a minimum one).
	ErrBadSize DropReason = "bad_size"
	// ErrBadMac1: a handshake message whose mac1 does not match the
	// receiver's key. Mac1Valid returns false rather than this error; it is
	// here so that callers count that drop under the same label set.
	ErrBadMac1 DropReason = "bad_mac1"
	// ErrBadHandshake: a well-formed initiation whose static key does not
	// decrypt with the responder's private key (sent to another key,
	// tampered with, or an ephemeral key of low order).
	ErrBadHandshake DropReason = "bad_handshake"
)

// AllDropReasons returns every DropReason of this package, to create the
// metric series up front.
func AllDropReasons() []DropReason {
	return []DropReason{ErrTooShort, ErrTooLong, ErrBadType, ErrReservedNonZero, ErrBadSize, ErrBadMac1, ErrBadHandshake}
}

// String returns the metric label, e.g. "too_short".
func (r DropReason) String() string { return string(r) }

// Error describes the drop for people, e.g. "wireguard message: too_short".
func (r DropReason) Error() string { return "wireguard message: " + string(r) }
