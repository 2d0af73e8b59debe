package zkcrypto

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"golang.org/x/crypto/curve25519"
	"golang.org/x/crypto/nacl/box"
	"golang.org/x/crypto/nacl/secretbox"
)

// Layout of the encrypted private keys (UserKeys.Encrypt):
//
//	nonce (24) || secretbox(box private key (32) || Ed25519 seed (32))
const (
	nonceSize        = 24                                               // random secretbox nonce
	privateKeysSize  = 32 + ed25519.SeedSize                            // box private key || Ed25519 seed
	encryptedKeySize = nonceSize + privateKeysSize + secretbox.Overhead // 104 bytes
)

// UserKeys are a user's long-term key pairs: X25519 for nacl/box (others
// seal secrets to the user) and Ed25519 (the user signs what devices must
// trust).
//
// Formatted with fmt, logged with slog or marshalled to JSON, a UserKeys
// shows its public keys only.
type UserKeys struct {
	BoxPublic   [32]byte
	BoxPrivate  [32]byte
	SignPublic  ed25519.PublicKey
	SignPrivate ed25519.PrivateKey
}

// GenerateUserKeys makes new random key pairs, for a new account or a
// password reset that does not keep the keys.
func GenerateUserKeys() (*UserKeys, error) {
	_, boxPriv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate user keys: box: %w", err)
	}
	defer clear(boxPriv[:])
	seed := make([]byte, ed25519.SeedSize)
	defer clear(seed)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("generate user keys: ed25519: %w", err)
	}
	return newUserKeys(boxPriv[:], seed)
}

// newUserKeys builds UserKeys from the private halves, deriving the public
// ones. It copies its arguments.
func newUserKeys(boxPriv, seed []byte) (*UserKeys, error) {
	if len(boxPriv) != 32 || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("%w: private keys are %d+%d bytes, want 32+%d", ErrMalformed, len(boxPriv), len(seed), ed25519.SeedSize)
	}
	var k UserKeys
	copy(k.BoxPrivate[:], boxPriv)
	pub, err := curve25519.X25519(k.BoxPrivate[:], curve25519.Basepoint)
	if err != nil { // cannot happen with the base point
		return nil, fmt.Errorf("%w: box public key: %w", ErrMalformed, err)
	}
	copy(k.BoxPublic[:], pub)
	k.SignPrivate = ed25519.NewKeyFromSeed(seed)
	k.SignPublic = k.SignPrivate.Public().(ed25519.PublicKey)
	return &k, nil
}

// privateKeys returns box private key || Ed25519 seed. The caller clears it.
func (k *UserKeys) privateKeys() ([]byte, error) {
	if len(k.SignPrivate) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: ed25519 private key is %d bytes, want %d", ErrMalformed, len(k.SignPrivate), ed25519.PrivateKeySize)
	}
	b := make([]byte, 0, privateKeysSize)
	b = append(b, k.BoxPrivate[:]...)
	return append(b, k.SignPrivate.Seed()...), nil
}

// Encrypt returns the private keys as a secretbox under secretKey, 104
// bytes: a random 24-byte nonce || secretbox(box private key || Ed25519
// seed). The server stores it as encrypted_private_keys.
func (k *UserKeys) Encrypt(secretKey Key) ([]byte, error) {
	plain, err := k.privateKeys()
	if err != nil {
		return nil, fmt.Errorf("encrypt user keys: %w", err)
	}
	defer clear(plain)
	var nonce [nonceSize]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return nil, fmt.Errorf("encrypt user keys: nonce: %w", err)
	}
	out := make([]byte, nonceSize, encryptedKeySize)
	copy(out, nonce[:])
	return secretbox.Seal(out, plain, &nonce, (*[KeySize]byte)(&secretKey)), nil
}

// DecryptUserKeys opens blob (from Encrypt) with secretKey and checks that
// the private keys belong to boxPublic and signPublic, the public keys the
// server has for the user. Errors: ErrWrongKey when the blob does not
// authenticate (wrong password, tampered blob) or the keys do not match the
// public keys; ErrMalformed when an argument has the wrong size.
func DecryptUserKeys(secretKey Key, blob, boxPublic, signPublic []byte) (*UserKeys, error) {
	switch {
	case len(blob) != encryptedKeySize:
		return nil, fmt.Errorf("decrypt user keys: %w: encrypted private keys are %d bytes, want %d", ErrMalformed, len(blob), encryptedKeySize)
	case len(boxPublic) != 32:
		return nil, fmt.Errorf("decrypt user keys: %w: box public key is %d bytes, want 32", ErrMalformed, len(boxPublic))
	case len(signPublic) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("decrypt user keys: %w: sign public key is %d bytes, want %d", ErrMalformed, len(signPublic), ed25519.PublicKeySize)
	}
	nonce := (*[nonceSize]byte)(blob[:nonceSize])
	plain, ok := secretbox.Open(nil, blob[nonceSize:], nonce, (*[KeySize]byte)(&secretKey))
	if !ok {
		return nil, fmt.Errorf("decrypt user keys: %w", ErrWrongKey)
	}
	defer clear(plain)
	k, err := newUserKeys(plain[:32], plain[32:])
	if err != nil {
		return nil, fmt.Errorf("decrypt user keys: %w", err)
	}
	if !k.matches(boxPublic, signPublic) {
		return nil, fmt.Errorf("decrypt user keys: %w: private keys do not belong to the public keys", ErrWrongKey)
	}
	return k, nil
}

// matches reports whether k's public keys are boxPublic and signPublic.
func (k *UserKeys) matches(boxPublic, signPublic []byte) bool {
	return subtle.ConstantTimeCompare(k.BoxPublic[:], boxPublic)&
		subtle.ConstantTimeCompare(k.SignPublic, signPublic) == 1
}

// shortKey is the log form of a public key: its first 4 bytes in hex.
func shortKey(pub []byte) string {
	if len(pub) < 4 {
		return "[invalid]"
	}
	return hex.EncodeToString(pub[:4])
}

// String returns the short form of the public keys; the private keys are
// redacted.
func (k UserKeys) String() string {
	return fmt.Sprintf("UserKeys{box_public_key:%s sign_public_key:%s private:%s}",
		shortKey(k.BoxPublic[:]), shortKey(k.SignPublic), redacted)
}

// GoString is String.
func (k UserKeys) GoString() string { return k.String() }

// Format writes String whatever the verb, so %x and %#v leak nothing.
func (k UserKeys) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue logs the short form of the public keys only.
func (k UserKeys) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("box_public_key", shortKey(k.BoxPublic[:])),
		slog.String("sign_public_key", shortKey(k.SignPublic)),
	)
}

// MarshalJSON writes the public keys only, {"box_public_key","sign_public_key"}
// in base64, so that UserKeys caught up in JSON leak nothing. There is no
// matching UnmarshalJSON: private keys travel as Encrypt's blob or in a
// recovery file.
func (k UserKeys) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		BoxPublic  []byte `json:"box_public_key"`
		SignPublic []byte `json:"sign_public_key"`
	}{k.BoxPublic[:], k.SignPublic})
}
