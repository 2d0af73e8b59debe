package zkcrypto

import (
	"crypto/rand"
	"fmt"

	"golang.org/x/crypto/nacl/box"
)

// SealTo encrypts msg to the holder of the X25519 boxPublic key with a
// nacl/box anonymous seal (ephemeral sender key, no sender identity). The
// result is len(msg)+48 bytes; the holder opens it with UserKeys.OpenSealed.
func SealTo(boxPublic []byte, msg []byte) ([]byte, error) {
	if len(boxPublic) != 32 {
		return nil, fmt.Errorf("seal: %w: box public key is %d bytes, want 32", ErrMalformed, len(boxPublic))
	}
	ct, err := box.SealAnonymous(nil, msg, (*[32]byte)(boxPublic), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return ct, nil
}

// OpenSealed decrypts a SealTo ciphertext sent to k.BoxPublic. It returns
// ErrWrongKey when ct was sealed to another key, was changed or is too short.
func (k *UserKeys) OpenSealed(ct []byte) ([]byte, error) {
	msg, ok := box.OpenAnonymous(nil, ct, &k.BoxPublic, &k.BoxPrivate)
	if !ok {
		return nil, fmt.Errorf("open sealed: %w", ErrWrongKey)
	}
	return msg, nil
}
