package zkcrypto

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/crypto/argon2"
)

// Sizes of the derivation inputs and outputs.
const (
	SaltSize = 16 // random per-user Argon2id salt
	KeySize  = 32 // Argon2id master key, login key and secret key
)

// Specification constants of the derivation. Changing any of them changes
// every user's keys.
const (
	algorithmArgon2id = "argon2id"
	infoLogin         = "blindrelay login"  // HKDF info of the login key
	infoSecret        = "blindrelay secret" // HKDF info of the secret key
)

// KDFParams are the Argon2id parameters a user's keys are derived with. The
// server stores them per user and hands them out with the salt.
type KDFParams struct {
	Algorithm   string `json:"algorithm"`   // always "argon2id"
	Version     int    `json:"version"`     // Argon2 version, 19 (0x13)
	MemoryKiB   uint32 `json:"memory_kib"`  // memory in KiB
	Iterations  uint32 `json:"iterations"`  // time cost
	Parallelism uint8  `json:"parallelism"` // lanes
}

// DefaultKDFParams are the parameters new accounts get: 64 MiB, 3 passes,
// one lane (the first recommendation of RFC 9106 scaled to fit a browser).
func DefaultKDFParams() KDFParams {
	return KDFParams{Algorithm: algorithmArgon2id, Version: argon2.Version, MemoryKiB: 64 << 10, Iterations: 3, Parallelism: 1}
}

// MinKDFParams is the server's default lower bound: 19 MiB, 2 passes, one
// lane (the OWASP minimum for Argon2id).
func MinKDFParams() KDFParams {
	return KDFParams{Algorithm: algorithmArgon2id, Version: argon2.Version, MemoryKiB: 19 << 10, Iterations: 2, Parallelism: 1}
}

// MaxKDFParams is the server's default upper bound: 1 GiB, 10 passes, 8
// lanes. DeriveKeys refuses anything above it too, so that a server cannot
// make a client allocate without limit.
func MaxKDFParams() KDFParams {
	return KDFParams{Algorithm: algorithmArgon2id, Version: argon2.Version, MemoryKiB: 1 << 20, Iterations: 10, Parallelism: 8}
}

// TestKDFParams are the smallest parameters Argon2id allows (8 KiB, one pass,
// one lane), for fast tests. A server accepts them only when its minimum is
// lowered to them; they protect no real password.
func TestKDFParams() KDFParams {
	return KDFParams{Algorithm: algorithmArgon2id, Version: argon2.Version, MemoryKiB: 8, Iterations: 1, Parallelism: 1}
}

// Validate reports whether p is Argon2id version 19 with memory, iterations
// and parallelism each within [min, max] (the algorithm and version of min
// and max are not looked at). Argon2 also needs at least 8 KiB of memory per
// lane. Errors wrap ErrInvalidKDFParams and name the JSON field.
func (p KDFParams) Validate(min, max KDFParams) error {
	if p.Algorithm != algorithmArgon2id {
		return fmt.Errorf("%w: algorithm %q is not %q", ErrInvalidKDFParams, p.Algorithm, algorithmArgon2id)
	}
	if p.Version != argon2.Version {
		return fmt.Errorf("%w: version %d is not %d", ErrInvalidKDFParams, p.Version, argon2.Version)
	}
	if err := checkRange("memory_kib", uint64(p.MemoryKiB), uint64(min.MemoryKiB), uint64(max.MemoryKiB)); err != nil {
		return err
	}
	if err := checkRange("iterations", uint64(p.Iterations), uint64(min.Iterations), uint64(max.Iterations)); err != nil {
		return err
	}
	if err := checkRange("parallelism", uint64(p.Parallelism), uint64(min.Parallelism), uint64(max.Parallelism)); err != nil {
		return err
	}
	// Zero iterations or lanes make argon2 panic; fewer than 8 KiB per lane
	// make it silently use more memory than asked for.
	switch {
	case p.Iterations < 1:
		return fmt.Errorf("%w: iterations must be at least 1", ErrInvalidKDFParams)
	case p.Parallelism < 1:
		return fmt.Errorf("%w: parallelism must be at least 1", ErrInvalidKDFParams)
	case uint64(p.MemoryKiB) < 8*uint64(p.Parallelism):
		return fmt.Errorf("%w: memory_kib %d is below 8 KiB per lane (%d lanes)", ErrInvalidKDFParams, p.MemoryKiB, p.Parallelism)
	}
	return nil
}

func checkRange(name string, v, min, max uint64) error {
	if v < min {
		return fmt.Errorf("%w: %s %d is below the minimum %d", ErrInvalidKDFParams, name, v, min)
	}
	if v > max {
		return fmt.Errorf("%w: %s %d is above the maximum %d", ErrInvalidKDFParams, name, v, max)
	}
	return nil
}

// NewSalt returns SaltSize random bytes for a new account or password.
func NewSalt() ([]byte, error) {
	salt := make([]byte, SaltSize)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("new salt: %w", err)
	}
	return salt, nil
}

// redacted is what secret values print, log and marshal as.
const redacted = "[redacted]"

// Key is secret key material. It never shows its bytes when formatted with
// fmt (any verb), logged with slog or marshalled to JSON; use k[:] to reach
// them.
//
// One gap is fmt's own: printing a bad verb (say %s of a pointer, nested in
// another value) dumps the pointed-to struct without calling any method. A
// type that holds a Key should therefore implement Format itself, as
// DerivedKeys and UserKeys do.
type Key [KeySize]byte

// String returns "[redacted]".
func (Key) String() string { return redacted }

// GoString returns "[redacted]".
func (Key) GoString() string { return redacted }

// Format writes "[redacted]" whatever the verb, so %x and %v leak nothing.
func (Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redacted) }

// LogValue returns "[redacted]".
func (Key) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON returns the JSON string "[redacted]".
func (Key) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// DerivedKeys are the two keys one Argon2id run gives.
type DerivedKeys struct {
	LoginKey  Key // sent to the server to log in; it stores HashLoginKey(LoginKey)
	SecretKey Key // never leaves the client; encrypts the user's private keys
}

const redactedDerivedKeys = "DerivedKeys{" + redacted + "}"

// String returns "DerivedKeys{[redacted]}".
func (DerivedKeys) String() string { return redactedDerivedKeys }

// GoString returns "DerivedKeys{[redacted]}".
func (DerivedKeys) GoString() string { return redactedDerivedKeys }

// Format writes "DerivedKeys{[redacted]}" whatever the verb.
func (DerivedKeys) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedDerivedKeys) }

// LogValue returns "[redacted]". (JSON is redacted field by field by Key.)
func (DerivedKeys) LogValue() slog.Value { return slog.StringValue(redacted) }

// DeriveKeys runs Argon2id over password and salt with p and expands the
// master key with HKDF-SHA256 into the login and the secret key (see the
// package doc). salt must be SaltSize bytes. p must lie within
// [TestKDFParams, MaxKDFParams]: the server that sends p decides its own
// minimum, but the client refuses what would exhaust its memory.
func DeriveKeys(password []byte, salt []byte, p KDFParams) (*DerivedKeys, error) {
	if len(salt) != SaltSize {
		return nil, fmt.Errorf("derive keys: %w: salt is %d bytes, want %d", ErrMalformed, len(salt), SaltSize)
	}
	if err := p.Validate(TestKDFParams(), MaxKDFParams()); err != nil {
		return nil, fmt.Errorf("derive keys: %w", err)
	}
	master := argon2.IDKey(password, salt, p.Iterations, p.MemoryKiB, p.Parallelism, KeySize)
	defer clear(master)
	var dk DerivedKeys
	if err := expand(&dk.LoginKey, master, infoLogin); err != nil {
		return nil, err
	}
	if err := expand(&dk.SecretKey, master, infoSecret); err != nil {
		return nil, err
	}
	return &dk, nil
}

func expand(dst *Key, master []byte, info string) error {
	k, err := hkdf.Key(sha256.New, master, nil, info, KeySize)
	if err != nil {
		return fmt.Errorf("derive keys: hkdf %q: %w", info, err)
	}
	copy(dst[:], k)
	clear(k)
	return nil
}

// HashLoginKey returns SHA-256(loginKey), the 32 bytes the server stores and
// compares (in constant time) instead of the login key.
func HashLoginKey(loginKey []byte) []byte {
	h := sha256.Sum256(loginKey)
	return h[:]
}
