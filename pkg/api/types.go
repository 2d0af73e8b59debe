package api

import (
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// The request and response bodies of docs/api.md. Binary fields are
// []byte: standard base64 with padding on the wire.

// credentialsJSON are the key fields of register and reset/complete.
type credentialsJSON struct {
	Salt                 []byte            `json:"salt"`
	KDF                  account.KDFParams `json:"kdf"`
	LoginKey             []byte            `json:"login_key"`
	BoxPublicKey         []byte            `json:"box_public_key"`
	SignPublicKey        []byte            `json:"sign_public_key"`
	EncryptedPrivateKeys []byte            `json:"encrypted_private_keys"`
}

func (c credentialsJSON) account() account.ClientCredentials {
	return account.ClientCredentials(c)
}

type emailRequest struct {
	Email string `json:"email"`
}

type emailLanguageRequest struct {
	Email    string `json:"email"`
	Language string `json:"language,omitempty"`
}

type tokenRequest struct {
	Token string `json:"token"`
}

type saltResponse struct {
	Salt []byte            `json:"salt"`
	KDF  account.KDFParams `json:"kdf"`
}

type registerRequest struct {
	Email    string `json:"email"`
	Language string `json:"language,omitempty"`
	credentialsJSON
}

type statusResponse struct {
	Status string `json:"status"`
}

// checkEmail is the one answer of every request that may mail someone.
var checkEmail = statusResponse{Status: "check_email"}

type verifyResponse struct {
	Status  string               `json:"status"`
	Email   string               `json:"email"`
	Purpose account.TokenPurpose `json:"purpose"`
}

type loginRequest struct {
	Email    string `json:"email"`
	LoginKey []byte `json:"login_key"`
}

type loginResponse struct {
	User      userJSON  `json:"user"`
	ExpiresAt time.Time `json:"expires_at"`
}

type userJSON struct {
	ID        string            `json:"id"`
	Email     string            `json:"email"`
	Verified  bool              `json:"verified"`
	Language  string            `json:"language"`
	CreatedAt time.Time         `json:"created_at"`
	KDF       account.KDFParams `json:"kdf"`
}

func newUserJSON(u *account.User) userJSON {
	return userJSON{
		ID: u.ID, Email: u.Email, Verified: u.EmailVerified, Language: u.Language,
		CreatedAt: u.CreatedAt.UTC(), KDF: u.Credentials.KDF,
	}
}

type logoutAllResponse struct {
	SessionsEnded int `json:"sessions_ended"`
}

type resetInfoResponse struct {
	Email         string `json:"email"`
	BoxPublicKey  []byte `json:"box_public_key"`
	SignPublicKey []byte `json:"sign_public_key"`
}

type completeResetRequest struct {
	Token     string `json:"token"`
	KeepKeys  bool   `json:"keep_keys"`
	Signature []byte `json:"signature,omitempty"`
	credentialsJSON
}

type completeResetResponse struct {
	Status   string `json:"status"`
	KeysKept bool   `json:"keys_kept"`
}

type keysResponse struct {
	Salt                 []byte            `json:"salt"`
	KDF                  account.KDFParams `json:"kdf"`
	BoxPublicKey         []byte            `json:"box_public_key"`
	SignPublicKey        []byte            `json:"sign_public_key"`
	EncryptedPrivateKeys []byte            `json:"encrypted_private_keys"`
}

type languageRequest struct {
	Language string `json:"language"`
}

type passwordRequest struct {
	LoginKey             []byte            `json:"login_key"`
	Salt                 []byte            `json:"salt"`
	KDF                  account.KDFParams `json:"kdf"`
	NewLoginKey          []byte            `json:"new_login_key"`
	EncryptedPrivateKeys []byte            `json:"encrypted_private_keys"`
}

type emailChangeRequest struct {
	NewEmail string `json:"new_email"`
	LoginKey []byte `json:"login_key"`
}

type loginKeyRequest struct {
	LoginKey []byte `json:"login_key"`
}
