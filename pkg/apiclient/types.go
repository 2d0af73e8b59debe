package apiclient

import (
	"log/slog"
	"time"

	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// The request and response bodies of docs/api.md. Binary fields are []byte,
// which encoding/json writes as standard base64 with padding, as the API
// expects.

// KDFParams are the Argon2id parameters of an account.
type KDFParams = zkcrypto.KDFParams

// User is an account as GET /api/v1/me returns it.
type User struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Verified  bool      `json:"verified"`
	Language  string    `json:"language"`
	CreatedAt time.Time `json:"created_at"`
	KDF       KDFParams `json:"kdf"`
}

// Status is the small {"status": ...} answer of several endpoints, e.g.
// "check_email" or "changed".
type Status struct {
	Status string `json:"status"`
}

// SaltResponse is the answer of POST /api/v1/auth/salt.
type SaltResponse struct {
	Salt []byte    `json:"salt"`
	KDF  KDFParams `json:"kdf"`
}

// RegisterRequest is the body of POST /api/v1/auth/register.
type RegisterRequest struct {
	Email                string    `json:"email"`
	Language             string    `json:"language,omitempty"`
	Salt                 []byte    `json:"salt"`
	KDF                  KDFParams `json:"kdf"`
	LoginKey             []byte    `json:"login_key"`
	BoxPublicKey         []byte    `json:"box_public_key"`
	SignPublicKey        []byte    `json:"sign_public_key"`
	EncryptedPrivateKeys []byte    `json:"encrypted_private_keys"`
}

// LogValue keeps the login key out of logs.
func (r RegisterRequest) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Verification is the answer of POST /api/v1/auth/verify. Purpose is
// "verify_email" or "change_email"; Email is the confirmed address.
type Verification struct {
	Status  string `json:"status"`
	Email   string `json:"email"`
	Purpose string `json:"purpose"`
}

// The purposes a Verification can have.
const (
	PurposeVerifyEmail = "verify_email"
	PurposeChangeEmail = "change_email"
)

// Session is a successful log-in: the token (from the session cookie) the
// client now sends as "Authorization: Bearer", the user and when the
// session expires unless used.
type Session struct {
	Token     string    `json:"-"`
	User      User      `json:"user"`
	ExpiresAt time.Time `json:"expires_at"`
}

// LogValue keeps the token out of logs.
func (s *Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user_id", s.User.ID))
}

// ResetInfo is the answer of POST /api/v1/auth/reset/info: whose reset link
// this is and the account's current public keys.
type ResetInfo struct {
	Email         string `json:"email"`
	BoxPublicKey  []byte `json:"box_public_key"`
	SignPublicKey []byte `json:"sign_public_key"`
}

// ResetCompleteRequest is the body of POST /api/v1/auth/reset/complete.
// Signature is set only with KeepKeys.
type ResetCompleteRequest struct {
	Token                string    `json:"token"`
	KeepKeys             bool      `json:"keep_keys"`
	Salt                 []byte    `json:"salt"`
	KDF                  KDFParams `json:"kdf"`
	LoginKey             []byte    `json:"login_key"`
	EncryptedPrivateKeys []byte    `json:"encrypted_private_keys"`
	BoxPublicKey         []byte    `json:"box_public_key"`
	SignPublicKey        []byte    `json:"sign_public_key"`
	Signature            []byte    `json:"signature,omitempty"`
}

// LogValue keeps the token and login key out of logs.
func (r ResetCompleteRequest) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// ResetResult is the answer of POST /api/v1/auth/reset/complete.
type ResetResult struct {
	Status   string `json:"status"`
	KeysKept bool   `json:"keys_kept"`
}

// Keys is the answer of GET /api/v1/me/keys: what a client needs to derive
// the user's keys and open the private ones.
type Keys struct {
	Salt                 []byte    `json:"salt"`
	KDF                  KDFParams `json:"kdf"`
	BoxPublicKey         []byte    `json:"box_public_key"`
	SignPublicKey        []byte    `json:"sign_public_key"`
	EncryptedPrivateKeys []byte    `json:"encrypted_private_keys"`
}

// PasswordChangeRequest is the body of POST /api/v1/me/password. LoginKey is
// the current login key, the rest the new credentials.
type PasswordChangeRequest struct {
	LoginKey             []byte    `json:"login_key"`
	Salt                 []byte    `json:"salt"`
	KDF                  KDFParams `json:"kdf"`
	NewLoginKey          []byte    `json:"new_login_key"`
	EncryptedPrivateKeys []byte    `json:"encrypted_private_keys"`
}

// LogValue keeps the login keys out of logs.
func (r PasswordChangeRequest) LogValue() slog.Value { return slog.StringValue("[redacted]") }
