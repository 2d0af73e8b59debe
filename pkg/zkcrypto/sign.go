package zkcrypto

import "crypto/ed25519"

// resetPrefix starts the message signed to keep the keys over a password
// reset (ResetMessage).
const resetPrefix = "blindrelay reset v1\x00"

// Sign returns the Ed25519 signature of msg by the user's signing key. It
// panics if k.SignPrivate is not an Ed25519 private key (a programming error:
// GenerateUserKeys, DecryptUserKeys and ParseRecoveryFile make whole keys).
func (k *UserKeys) Sign(msg []byte) []byte {
	return ed25519.Sign(k.SignPrivate, msg)
}

// Verify reports whether sig is signPublic's Ed25519 signature of msg. A
// public key or signature of the wrong size is just false.
func Verify(signPublic, msg, sig []byte) bool {
	if len(signPublic) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(signPublic, msg, sig)
}

// ResetMessage is what a user signs to complete a password reset that keeps
// the keys (POST /api/v1/auth/reset/complete with keep_keys):
//
//	"blindrelay reset v1\x00" || token || "\x00" || loginKeyHash
//
// It binds the signature to this reset token and to the new login key, so
// a signature can be used neither for another reset nor with another
// password. loginKeyHash is HashLoginKey(new login key), 32 bytes, so the
// message parses unambiguously even if token held a zero byte.
func ResetMessage(token string, loginKeyHash []byte) []byte {
	m := make([]byte, 0, len(resetPrefix)+len(token)+1+len(loginKeyHash))
	m = append(m, resetPrefix...)
	m = append(m, token...)
	m = append(m, 0)
	return append(m, loginKeyHash...)
}
