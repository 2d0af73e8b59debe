package wire

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Owner commands (docs/protocol.md, "Owner commands"). The owner's client
// signs a Command with the owner's Ed25519 key; the relay stores it and
// passes it to the device in a Command frame; the device verifies it with
// the owner's public key, which it learnt when it was paired, and only then
// acts. The relay can withhold a command but not make or change one.
//
// The signature covers a canonical binary encoding, not the JSON that
// carries the command, so the JSON needs no canonical form. The verifier
// re-encodes the command it decoded, so what it checks is what it acts on:
//
//	"blindrelay owner command v1\x00"        domain separation
//	u32 BE length || ID                       strings: UTF-8 bytes
//	u32 BE length || Kind
//	u32 BE length || DeviceID
//	u32 BE length || UserID
//	u32 BE length || BoxPublicKey             0 or 32 bytes
//	i64 BE Slots
//	u64 BE Counter
//	i64 BE Expires, Unix seconds

// Command kinds.
const (
	// CommandAddUser: share the device with UserID. The device creates Slots
	// key slots for the user, seals each to BoxPublicKey and uploads them.
	CommandAddUser = "add_user"
	// CommandRemoveUser: stop sharing the device with UserID. The device
	// removes the user's key slots (and their peers).
	CommandRemoveUser = "remove_user"
)

// Limits of command fields.
const (
	// CommandVersion is the version of the signed encoding SignCommand writes.
	CommandVersion = 1
	// MaxCommandSlots is the most key slots one add_user may ask for.
	MaxCommandSlots = 64
	// maxCommandString is the longest ID, DeviceID or UserID, in bytes.
	maxCommandString = 256
	// boxPublicKeySize is the size of an X25519 (nacl/box) public key.
	boxPublicKeySize = 32
)

// commandDomain separates command signatures from any other use of the
// owner's key.
const commandDomain = "blindrelay owner command v1\x00"

// Errors of VerifyCommand; test with errors.Is.
var (
	// ErrBadSignature: the signature does not verify under the owner's key
	// (or that key is malformed).
	ErrBadSignature = errors.New("owner command: bad signature")
	// ErrCommandExpired: the command is past its Expires.
	ErrCommandExpired = errors.New("owner command: expired")
	// ErrUnsupportedCommand: a command format version or kind this device
	// does not know. Answer AckUnsupported.
	ErrUnsupportedCommand = errors.New("owner command: unsupported")
	// ErrInvalidCommand: a signed command whose fields are out of range.
	ErrInvalidCommand = errors.New("owner command: invalid")
)

// Command is an owner's instruction to a device.
type Command struct {
	ID           string    `json:"id"`                       // unique per command, chosen by the signer; CommandAck.ID
	Kind         string    `json:"kind"`                     // CommandAddUser or CommandRemoveUser
	DeviceID     string    `json:"device_id"`                // the device's id at the relay, as it learnt at pairing
	UserID       string    `json:"user_id"`                  // the user to add or remove
	BoxPublicKey []byte    `json:"box_public_key,omitempty"` // add_user: the user's X25519 box key (32 bytes)
	Slots        int       `json:"slots,omitempty"`          // add_user: key slots to create, 1..MaxCommandSlots
	Counter      uint64    `json:"counter"`                  // > every counter the device accepted from this owner
	Expires      time.Time `json:"expires"`                  // not valid from this instant on; whole seconds
}

// SignedCommand is a Command with the owner's signature, as a Command frame
// carries it.
type SignedCommand struct {
	Version   int     `json:"v"` // CommandVersion
	Command   Command `json:"command"`
	Signature []byte  `json:"signature"` // Ed25519, 64 bytes, over the canonical encoding
}

// SignCommand signs c with the owner's key. It sets Expires to whole seconds
// in UTC, as the signature covers it. It does not check c: call Validate
// first, or the device will reject the command.
func SignCommand(owner ed25519.PrivateKey, c Command) SignedCommand {
	c.Expires = time.Unix(c.Expires.Unix(), 0).UTC()
	return SignedCommand{Version: CommandVersion, Command: c, Signature: ed25519.Sign(owner, c.canonical())}
}

// VerifyCommand returns the command sc carries if it is signed by owner,
// valid and not expired at now. In that order it fails with
// ErrUnsupportedCommand (a format version other than 1), ErrBadSignature,
// ErrCommandExpired, ErrUnsupportedCommand (an unknown kind) and
// ErrInvalidCommand (see Validate).
//
// It cannot check what needs the device's state; the caller must also reject
// a command whose DeviceID is not its own, and one whose Counter is not above
// the highest it accepted from this owner (unless it is that very command,
// by ID, sent again: acknowledge it again).
func VerifyCommand(owner ed25519.PublicKey, sc SignedCommand, now time.Time) (Command, error) {
	c := sc.Command
	c.Expires = time.Unix(c.Expires.Unix(), 0).UTC() // what the signature covers
	if sc.Version != CommandVersion {
		return Command{}, fmt.Errorf("verify command: format version %d: %w", sc.Version, ErrUnsupportedCommand)
	}
	if len(owner) != ed25519.PublicKeySize {
		return Command{}, fmt.Errorf("verify command: owner key of %d bytes: %w", len(owner), ErrBadSignature)
	}
	if !ed25519.Verify(owner, c.canonical(), sc.Signature) {
		return Command{}, fmt.Errorf("verify command: %w", ErrBadSignature)
	}
	if !now.Before(c.Expires) {
		return Command{}, fmt.Errorf("verify command: expired at %s: %w", c.Expires.Format(time.RFC3339), ErrCommandExpired)
	}
	if c.Kind != CommandAddUser && c.Kind != CommandRemoveUser {
		return Command{}, fmt.Errorf("verify command: kind %q: %w", c.Kind, ErrUnsupportedCommand)
	}
	if err := c.Validate(); err != nil {
		return Command{}, fmt.Errorf("verify command: %w", err)
	}
	return c, nil
}

// Validate checks c's fields: a known kind; ID, DeviceID and UserID
// non-empty, valid UTF-8 and at most 256 bytes; for add_user a 32-byte
// BoxPublicKey and 1..MaxCommandSlots slots, for remove_user neither; a
// non-zero Counter and Expires. Errors wrap ErrInvalidCommand (or
// ErrUnsupportedCommand for an unknown kind).
func (c Command) Validate() error {
	for _, f := range []struct{ name, v string }{{"id", c.ID}, {"device_id", c.DeviceID}, {"user_id", c.UserID}} {
		if f.v == "" || len(f.v) > maxCommandString || !utf8.ValidString(f.v) {
			return fmt.Errorf("%s must be 1..%d bytes of UTF-8: %w", f.name, maxCommandString, ErrInvalidCommand)
		}
	}
	switch c.Kind {
	case CommandAddUser:
		if len(c.BoxPublicKey) != boxPublicKeySize {
			return fmt.Errorf("box_public_key must be %d bytes: %w", boxPublicKeySize, ErrInvalidCommand)
		}
		if c.Slots < 1 || c.Slots > MaxCommandSlots {
			return fmt.Errorf("slots must be 1..%d: %w", MaxCommandSlots, ErrInvalidCommand)
		}
	case CommandRemoveUser:
		if len(c.BoxPublicKey) != 0 || c.Slots != 0 {
			return fmt.Errorf("remove_user takes no box_public_key or slots: %w", ErrInvalidCommand)
		}
	default:
		return fmt.Errorf("kind %q: %w", c.Kind, ErrUnsupportedCommand)
	}
	if c.Counter == 0 {
		return fmt.Errorf("counter must not be 0: %w", ErrInvalidCommand)
	}
	if c.Expires.IsZero() {
		return fmt.Errorf("expires must be set: %w", ErrInvalidCommand)
	}
	return nil
}

// canonical returns the encoding the signature covers (see the top of this
// file). Lengths are 32 bits and numbers 64, so no two commands a frame can
// carry encode alike (with Expires in whole seconds).
func (c Command) canonical() []byte {
	n := len(commandDomain) + 5*4 + len(c.ID) + len(c.Kind) + len(c.DeviceID) + len(c.UserID) + len(c.BoxPublicKey) + 8 + 8 + 8
	b := make([]byte, 0, n)
	b = append(b, commandDomain...)
	for _, s := range [][]byte{[]byte(c.ID), []byte(c.Kind), []byte(c.DeviceID), []byte(c.UserID), c.BoxPublicKey} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(int64(c.Slots)))
	b = binary.BigEndian.AppendUint64(b, c.Counter)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Expires.Unix()))
	return b
}
