package zkcrypto

import (
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Recovery file specification (version 1); the layout is in the package doc.
const (
	recoveryFormat   = "blindrelay-recovery"
	recoveryVersion  = 1
	recoveryChecksum = "blindrelay recovery v1\x00" // prefix of the checksummed bytes
	checksumSize     = 8                            // leading bytes of the SHA-256, hex in the file

	recoveryComment = "Keep this file secret and offline. It holds the private keys of your " +
		"blindrelay account. With it you can reset a forgotten password and keep your devices; " +
		"anyone who has it and can read your e-mail can take over your account."
)

// RecoveryInfo is what a recovery file says besides the keys.
type RecoveryInfo struct {
	Email   string    // account address when the file was written
	Created time.Time // UTC, to the second
}

// recoveryFileV1 is the JSON of a version 1 file. The field order is the
// order in the file.
type recoveryFileV1 struct {
	Format        string `json:"format"`
	Version       int    `json:"version"`
	Comment       string `json:"comment"`
	Email         string `json:"email"`
	Created       string `json:"created"` // RFC 3339, UTC
	BoxPublicKey  []byte `json:"box_public_key"`
	SignPublicKey []byte `json:"sign_public_key"`
	PrivateKeys   []byte `json:"private_keys"` // box private key || Ed25519 seed
	Checksum      string `json:"checksum"`     // hex
}

// recoveryHeader is the part every version shares.
type recoveryHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// recoverySum is the checksum over the keys of a version 1 file.
func recoverySum(boxPub, signPub, priv []byte) []byte {
	h := sha256.New()
	h.Write([]byte(recoveryChecksum))
	h.Write(boxPub)
	h.Write(signPub)
	h.Write(priv)
	return h.Sum(nil)[:checksumSize]
}

// RecoveryFile returns k as a recovery file (indented JSON ending in a
// newline) for the account email, created at created (written in UTC, to the
// second). The file holds the private keys in clear: the caller writes it
// with mode 0600 or hands it to the user as a download.
func (k *UserKeys) RecoveryFile(email string, created time.Time) ([]byte, error) {
	priv, err := k.privateKeys()
	if err != nil {
		return nil, fmt.Errorf("recovery file: %w", err)
	}
	defer clear(priv)
	if len(k.SignPublic) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("recovery file: %w: sign public key is %d bytes, want %d", ErrMalformed, len(k.SignPublic), ed25519.PublicKeySize)
	}
	created = created.UTC().Truncate(time.Second)
	if y := created.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("recovery file: created year %d is out of range", y)
	}
	f := recoveryFileV1{
		Format:        recoveryFormat,
		Version:       recoveryVersion,
		Comment:       recoveryComment,
		Email:         email,
		Created:       created.Format(time.RFC3339),
		BoxPublicKey:  k.BoxPublic[:],
		SignPublicKey: k.SignPublic,
		PrivateKeys:   priv,
		Checksum:      hex.EncodeToString(recoverySum(k.BoxPublic[:], k.SignPublic, priv)),
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("recovery file: %w", err)
	}
	return append(out, '\n'), nil
}

// ParseRecoveryFile reads a file written by UserKeys.RecoveryFile. Errors:
// ErrNotRecoveryFile (not JSON, another format, a field missing or of the
// wrong size), ErrUnsupportedRecoveryVersion (a newer file), and
// ErrRecoveryChecksum (the keys do not match the checksum, or the private
// keys do not belong to the public keys: the file was damaged or edited).
// Unknown fields are ignored.
func ParseRecoveryFile(data []byte) (*UserKeys, *RecoveryInfo, error) {
	var h recoveryHeader
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNotRecoveryFile, jsonError(err))
	}
	if h.Format != recoveryFormat {
		return nil, nil, fmt.Errorf("%w: format is %q, want %q", ErrNotRecoveryFile, h.Format, recoveryFormat)
	}
	if h.Version != recoveryVersion {
		return nil, nil, fmt.Errorf("%w: version %d; this program reads version %d, a newer blindrelay may read it",
			ErrUnsupportedRecoveryVersion, h.Version, recoveryVersion)
	}
	var f recoveryFileV1
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNotRecoveryFile, jsonError(err))
	}
	defer clear(f.PrivateKeys)
	info, err := f.info()
	if err != nil {
		return nil, nil, err
	}
	if err := f.checkSizes(); err != nil {
		return nil, nil, err
	}
	sum, err := hex.DecodeString(f.Checksum)
	if err != nil || len(sum) != checksumSize {
		return nil, nil, fmt.Errorf("%w: checksum %q is not %d hex digits", ErrNotRecoveryFile, f.Checksum, 2*checksumSize)
	}
	if subtle.ConstantTimeCompare(sum, recoverySum(f.BoxPublicKey, f.SignPublicKey, f.PrivateKeys)) != 1 {
		return nil, nil, ErrRecoveryChecksum
	}
	k, err := newUserKeys(f.PrivateKeys[:32], f.PrivateKeys[32:])
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNotRecoveryFile, err)
	}
	if !k.matches(f.BoxPublicKey, f.SignPublicKey) {
		return nil, nil, fmt.Errorf("%w: private keys do not belong to the public keys", ErrRecoveryChecksum)
	}
	return k, info, nil
}

func (f *recoveryFileV1) info() (*RecoveryInfo, error) {
	created, err := time.Parse(time.RFC3339, f.Created)
	if err != nil {
		return nil, fmt.Errorf("%w: created %q is not an RFC 3339 time", ErrNotRecoveryFile, f.Created)
	}
	created = created.UTC().Truncate(time.Second)
	if y := created.Year(); y < 1 || y > 9999 {
		return nil, fmt.Errorf("%w: created %q is out of range", ErrNotRecoveryFile, f.Created)
	}
	return &RecoveryInfo{Email: f.Email, Created: created}, nil
}

func (f *recoveryFileV1) checkSizes() error {
	for _, c := range []struct {
		name string
		b    []byte
		want int
	}{
		{"box_public_key", f.BoxPublicKey, 32},
		{"sign_public_key", f.SignPublicKey, ed25519.PublicKeySize},
		{"private_keys", f.PrivateKeys, privateKeysSize},
	} {
		if len(c.b) != c.want {
			return fmt.Errorf("%w: %s is %d bytes, want %d", ErrNotRecoveryFile, c.name, len(c.b), c.want)
		}
	}
	return nil
}

// jsonError shortens encoding/json's errors for people: the file is not
// JSON at all, or a field has the wrong type or bad base64.
func jsonError(err error) error {
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return fmt.Errorf("not JSON: %w", err)
	}
	return err
}
