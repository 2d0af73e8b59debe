package account

import (
	"crypto/sha256"

	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// ClientCredentials are credentials as a client sends them: with the login
// key itself, which the service hashes before anything is stored.
type ClientCredentials struct {
	Salt                 []byte
	KDF                  KDFParams
	LoginKey             []byte
	BoxPublicKey         []byte
	SignPublicKey        []byte
	EncryptedPrivateKeys []byte
}

// RegisterInput is a sign-up.
type RegisterInput struct {
	Email       string
	Language    string // "" for the default
	Credentials ClientCredentials
}

// CompleteResetInput finishes a password reset. With KeepKeys the public
// keys must be the account's and Signature the account's Ed25519 signature
// over zkcrypto.ResetMessage(Token, SHA-256(Credentials.LoginKey)).
type CompleteResetInput struct {
	Token       string
	KeepKeys    bool
	Credentials ClientCredentials
	Signature   []byte
}

// PasswordChangeInput replaces the password-derived credentials of a
// logged-in user. The public keys stay; EncryptedPrivateKeys are the same
// private keys under the new secret key.
type PasswordChangeInput struct {
	LoginKey             []byte // the current one
	Salt                 []byte
	KDF                  KDFParams
	NewLoginKey          []byte
	EncryptedPrivateKeys []byte
}

// EmailChangeInput asks to move an account to a new address.
type EmailChangeInput struct {
	NewEmail string
	LoginKey []byte
}

// LoginResult is a new session. Token goes to the client and nowhere else.
type LoginResult struct {
	Token   string
	Session *Session
	User    *User
}

// VerifyResult tells which e-mail a verification link confirmed and why.
type VerifyResult struct {
	Email   string
	Purpose TokenPurpose // PurposeVerifyEmail or PurposeChangeEmail
}

// ResetInfo is what a reset link reveals to whoever holds it: the account's
// address and public keys, so a client can match a recovery file.
type ResetInfo struct {
	Email         string
	BoxPublicKey  []byte
	SignPublicKey []byte
}

// checkSize returns an invalid_input error naming field unless len(b) == n.
func checkSize(field string, b []byte, n int) error {
	if len(b) != n {
		return Errorf(CodeInvalidInput, "%s must be %d bytes.", field, n)
	}
	return nil
}

// checkKDF checks p against the service's bounds.
func (s *Service) checkKDF(p KDFParams) error {
	if err := p.Validate(s.cfg.MinKDF, s.cfg.MaxKDF); err != nil {
		return Errorf(CodeInvalidInput, "kdf is not acceptable: %v.", err)
	}
	return nil
}

// credentials validates c and turns it into what the store keeps.
func (s *Service) credentials(c ClientCredentials) (Credentials, error) {
	for _, f := range []struct {
		name string
		b    []byte
		n    int
	}{
		{"salt", c.Salt, SaltSize},
		{"login_key", c.LoginKey, LoginKeySize},
		{"box_public_key", c.BoxPublicKey, PublicKeySize},
		{"sign_public_key", c.SignPublicKey, PublicKeySize},
		{"encrypted_private_keys", c.EncryptedPrivateKeys, EncryptedPrivateKeysSize},
	} {
		if err := checkSize(f.name, f.b, f.n); err != nil {
			return Credentials{}, err
		}
	}
	if err := s.checkKDF(c.KDF); err != nil {
		return Credentials{}, err
	}
	return Credentials{
		Salt:                 clone(c.Salt),
		KDF:                  c.KDF,
		LoginKeyHash:         zkcrypto.HashLoginKey(c.LoginKey),
		BoxPublicKey:         clone(c.BoxPublicKey),
		SignPublicKey:        clone(c.SignPublicKey),
		EncryptedPrivateKeys: clone(c.EncryptedPrivateKeys),
	}, nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// hashToken is what the store keeps of a session or e-mail token.
func hashToken(raw []byte) []byte {
	h := sha256.Sum256(raw)
	return h[:]
}
