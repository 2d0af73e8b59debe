// Package wgkey holds typed WireGuard keys: the Curve25519 public and private
// keys of a WireGuard interface and the optional pre-shared key of a peer.
//
// Keys are written as WireGuard writes them: standard base64 with padding
// (44 characters), the form of wg(8) and wg-quick(8) files. wireguard-go's
// configuration protocol (IpcSet) wants hex instead, hence Hex.
//
// Public keys print in full (String) or in a short log form (ShortString,
// used by LogValue). Private and Preshared never show their bytes when
// formatted with fmt (any verb), logged with slog or marshalled to JSON; the
// bytes are reached only explicitly, through Base64, Hex or k[:].
//
// The package does no I/O besides reading crypto/rand and builds for
// GOOS=js GOARCH=wasm. It knows nothing of the Noise handshake or of the
// WireGuard message formats (pkg/wire).
package wgkey

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/crypto/curve25519"
)

// Size is the length in bytes of every WireGuard key.
const Size = 32

// base64Len is the length of a key in padded standard base64.
const base64Len = 44

// ErrInvalidKey: a key string or byte slice that is not a well-formed key (not
// 44 characters of canonical padded standard base64, or not 32 bytes).
var ErrInvalidKey = errors.New("invalid wireguard key")

// redacted is what private and pre-shared keys print, log and marshal as.
const redacted = "[redacted]"

// b64 is padded standard base64 that refuses non-zero trailing bits, so a key
// has exactly one text form and parsing then formatting gives the input back.
var b64 = base64.StdEncoding.Strict()

// Public is a WireGuard (Curve25519) public key. Its zero value is not a
// usable key; see IsZero.
type Public [Size]byte

// Private is a WireGuard (Curve25519) private key. It redacts itself in fmt,
// slog and JSON output.
//
// One gap is fmt's own: fmt calls no method on an unexported struct field, so
// a struct that keeps a Private in an unexported field and may be printed
// should implement Format (or String and GoString) itself.
type Private [Size]byte

// Preshared is a WireGuard pre-shared key (the "psk" of Noise_IKpsk2). It
// redacts itself like Private.
type Preshared [Size]byte

// NewPrivate returns a new random private key, clamped as wg genkey clamps.
func NewPrivate() (Private, error) {
	var k Private
	if _, err := rand.Read(k[:]); err != nil {
		return Private{}, fmt.Errorf("new private key: %w", err)
	}
	k.clamp()
	return k, nil
}

// NewPreshared returns a new random pre-shared key.
func NewPreshared() (Preshared, error) {
	var k Preshared
	if _, err := rand.Read(k[:]); err != nil {
		return Preshared{}, fmt.Errorf("new preshared key: %w", err)
	}
	return k, nil
}

// clamp applies the Curve25519 scalar clamping of RFC 7748. X25519 clamps on
// every use anyway; stored keys are clamped so they match what wg produces.
func (k *Private) clamp() {
	k[0] &= 248
	k[31] = (k[31] & 127) | 64
}

// Public returns the public key of k.
func (k Private) Public() Public {
	pub, err := curve25519.X25519(k[:], curve25519.Basepoint)
	if err != nil {
		// X25519 with the base point never yields the all-zero point.
		panic("wgkey: X25519 with the base point failed: " + err.Error())
	}
	return Public(pub)
}

// ParsePublic parses a public key in WireGuard's text form (44 characters of
// padded standard base64). It accepts the all-zero key; callers that need a
// usable key check IsZero.
func ParsePublic(s string) (Public, error) {
	var k Public
	if err := decode(k[:], s); err != nil {
		return Public{}, fmt.Errorf("parse public key: %w", err)
	}
	return k, nil
}

// ParsePrivate parses a private key in WireGuard's text form. The error never
// contains the input.
func ParsePrivate(s string) (Private, error) {
	var k Private
	if err := decode(k[:], s); err != nil {
		return Private{}, fmt.Errorf("parse private key: %w", err)
	}
	return k, nil
}

// ParsePreshared parses a pre-shared key in WireGuard's text form. The error
// never contains the input.
func ParsePreshared(s string) (Preshared, error) {
	var k Preshared
	if err := decode(k[:], s); err != nil {
		return Preshared{}, fmt.Errorf("parse preshared key: %w", err)
	}
	return k, nil
}

// PublicFromBytes returns the public key held in b, which must be Size bytes.
func PublicFromBytes(b []byte) (Public, error) {
	if len(b) != Size {
		return Public{}, fmt.Errorf("public key of %d bytes: %w", len(b), ErrInvalidKey)
	}
	return Public(b), nil
}

// decode fills dst (Size bytes) from the base64 text s. Its errors describe
// the shape of s but never quote it, since s may be a secret.
func decode(dst []byte, s string) error {
	if len(s) != base64Len {
		return fmt.Errorf("%d characters, want %d: %w", len(s), base64Len, ErrInvalidKey)
	}
	var buf [Size + 1]byte // 44 base64 characters decode into at most 33 bytes
	n, err := b64.Decode(buf[:], []byte(s))
	if err != nil || n != Size {
		return fmt.Errorf("not canonical base64 of %d bytes: %w", Size, ErrInvalidKey)
	}
	copy(dst, buf[:Size])
	return nil
}

// String returns k in WireGuard's text form (padded standard base64).
func (k Public) String() string { return b64.EncodeToString(k[:]) }

// ShortString returns the first five base64 characters of k in square
// brackets, "[abcde]": enough to tell keys apart in logs.
func (k Public) ShortString() string { return "[" + k.String()[:5] + "]" }

// LogValue logs k in its short form (see ShortString).
func (k Public) LogValue() slog.Value { return slog.StringValue(k.ShortString()) }

// Hex returns k as 64 lower-case hex digits, the form of wireguard-go's IpcSet.
func (k Public) Hex() string { return hex.EncodeToString(k[:]) }

// Equal reports whether k and other are the same key, in constant time.
func (k Public) Equal(other Public) bool { return subtle.ConstantTimeCompare(k[:], other[:]) == 1 }

// IsZero reports whether k is all zeros (no key).
func (k Public) IsZero() bool { return k.Equal(Public{}) }

// MarshalText returns k in WireGuard's text form.
func (k Public) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses WireGuard's text form into k (see ParsePublic).
func (k *Public) UnmarshalText(b []byte) error {
	p, err := ParsePublic(string(b))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// String returns "[redacted]".
func (Private) String() string { return redacted }

// GoString returns "[redacted]".
func (Private) GoString() string { return redacted }

// Format writes "[redacted]" whatever the verb, so %x and %v leak nothing.
func (Private) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue returns "[redacted]".
func (Private) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "[redacted]". To store a key, write
// Base64 explicitly.
func (Private) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Base64 returns the secret k in WireGuard's text form, as a wg-quick file
// needs it. Never log it.
func (k Private) Base64() string { return b64.EncodeToString(k[:]) }

// Hex returns the secret k as 64 hex digits, as wireguard-go's IpcSet needs
// it. Never log it.
func (k Private) Hex() string { return hex.EncodeToString(k[:]) }

// Equal reports whether k and other are the same key, in constant time.
func (k Private) Equal(other Private) bool { return subtle.ConstantTimeCompare(k[:], other[:]) == 1 }

// IsZero reports whether k is all zeros (no key), in constant time.
func (k Private) IsZero() bool { return k.Equal(Private{}) }

// String returns "[redacted]".
func (Preshared) String() string { return redacted }

// GoString returns "[redacted]".
func (Preshared) GoString() string { return redacted }

// Format writes "[redacted]" whatever the verb.
func (Preshared) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue returns "[redacted]".
func (Preshared) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "[redacted]". To store a key, write
// Base64 explicitly.
func (Preshared) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// Base64 returns the secret k in WireGuard's text form (a wg-quick
// PresharedKey). Never log it.
func (k Preshared) Base64() string { return b64.EncodeToString(k[:]) }

// Hex returns the secret k as 64 hex digits (wireguard-go's IpcSet
// preshared_key). Never log it.
func (k Preshared) Hex() string { return hex.EncodeToString(k[:]) }

// Equal reports whether k and other are the same key, in constant time.
func (k Preshared) Equal(other Preshared) bool {
	return subtle.ConstantTimeCompare(k[:], other[:]) == 1
}

// IsZero reports whether k is all zeros (no pre-shared key), in constant time.
func (k Preshared) IsZero() bool { return k.Equal(Preshared{}) }
