package zkcrypto

import "errors"

// Errors returned by this package, wrapped with detail; test with errors.Is.
var (
	// ErrInvalidKDFParams: KDF parameters of the wrong algorithm or version,
	// or with a number outside the accepted range.
	ErrInvalidKDFParams = errors.New("invalid kdf parameters")

	// ErrMalformed: an input (salt, public key, ciphertext, key pair) has the
	// wrong size or shape. It is a bug or damaged data, not a wrong password.
	ErrMalformed = errors.New("malformed key material")

	// ErrWrongKey: a ciphertext does not authenticate under the key, or the
	// decrypted private keys do not belong to the expected public keys. For
	// DecryptUserKeys that means the wrong secret key (password) or a
	// tampered blob.
	ErrWrongKey = errors.New("wrong key or corrupted ciphertext")

	// ErrNotRecoveryFile: the data is not JSON, not of the recovery file
	// format, or misses or has malformed fields.
	ErrNotRecoveryFile = errors.New("not a blindrelay recovery file")

	// ErrRecoveryChecksum: a well-formed recovery file whose keys do not match
	// its checksum, or whose private keys do not belong to its public keys:
	// the file was damaged or edited.
	ErrRecoveryChecksum = errors.New("recovery file checksum mismatch: the file is damaged or was edited")

	// ErrUnsupportedRecoveryVersion: a recovery file of a version this
	// program cannot read (written by a newer blindrelay).
	ErrUnsupportedRecoveryVersion = errors.New("unsupported recovery file version")
)
