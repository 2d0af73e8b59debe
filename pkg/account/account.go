// Package account is the domain of blindrelay accounts: users, their
// zero-knowledge credentials, sessions and single-use e-mail tokens.
//
// It holds the types, the validation rules, the Store contract that
// pkg/store/sqlite and pkg/store/postgres implement, and the Service that
// runs the account life cycle on top of a Store. It never sees a password or
// a private key: a user is known by a hash of the login key the client
// derived, and the user's private keys arrive as opaque ciphertext
// (pkg/zkcrypto describes how the client makes both).
//
// It is not the HTTP layer (pkg/api) and knows nothing of SQL.
package account

import (
	"context"
	"log/slog"
	"time"

	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// Sizes of the binary credential fields, checked by Credentials.Validate.
const (
	SaltSize         = 16 // random per-user Argon2id salt
	LoginKeySize     = 32 // HKDF output the client sends to log in
	LoginKeyHashSize = 32 // SHA-256 of the login key, what the store keeps
	PublicKeySize    = 32 // X25519 box and Ed25519 signing public keys
	// EncryptedPrivateKeysSize is the secretbox of the 64-byte private key
	// material: 24-byte nonce + 64 bytes + 16-byte tag.
	EncryptedPrivateKeysSize = 24 + 64 + 16
	TokenSize                = 32 // random bytes in session and e-mail tokens
)

// KDFParams are the Argon2id parameters a user's keys were derived with.
// They are stored per user so that the default can be raised later.
type KDFParams = zkcrypto.KDFParams

// User is one account as the store keeps it.
type User struct {
	ID            string
	Email         string // normalised (trimmed, lower case)
	EmailVerified bool
	Language      string // "en", "de" or "fr"
	Credentials   Credentials
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// LogValue keeps credentials out of logs.
func (u *User) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user_id", u.ID))
}

// Credentials are everything that is derived from the password or protected
// by it. A password change or reset replaces them together.
type Credentials struct {
	Salt                 []byte
	KDF                  KDFParams
	LoginKeyHash         []byte // SHA-256 of the login key; never the key itself
	BoxPublicKey         []byte // X25519
	SignPublicKey        []byte // Ed25519
	EncryptedPrivateKeys []byte // secretbox under the client's secret key
}

// LogValue redacts: even ciphertext and hashes stay out of logs.
func (Credentials) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// Session is a logged-in client. The token itself is never stored.
type Session struct {
	TokenHash  []byte // SHA-256 of the random token in the cookie
	UserID     string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	LastSeenAt time.Time
}

// LogValue redacts the token hash.
func (s Session) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user_id", s.UserID))
}

// TokenPurpose says what a single-use e-mail token may be used for.
type TokenPurpose string

// The token purposes.
const (
	PurposeVerifyEmail   TokenPurpose = "verify_email"
	PurposeChangeEmail   TokenPurpose = "change_email"
	PurposeResetPassword TokenPurpose = "reset_password"
)

// Token is a single-use e-mail token as the store keeps it: only the hash of
// the random value that went out in the mail.
type Token struct {
	TokenHash []byte
	UserID    string
	Purpose   TokenPurpose
	NewEmail  string // only for PurposeChangeEmail
	CreatedAt time.Time
	ExpiresAt time.Time
}

// LogValue redacts the token hash.
func (t Token) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user_id", t.UserID), slog.String("purpose", string(t.Purpose)))
}

// Store keeps users, sessions and tokens. Implementations translate driver
// errors into the errors below and make every method atomic: a method that
// fails leaves the store as it was.
//
// Times are passed in (now) so that tests control the clock. Stores keep
// them to the microsecond and return them in UTC. A token or session has
// expired once now is at or after its ExpiresAt. Email arguments are already
// normalised by the caller.
type Store interface {
	// CreateUser inserts u together with the token tok (normally a
	// PurposeVerifyEmail token for u). It returns ErrEmailTaken if the
	// e-mail is in use, and then writes nothing. tok may be nil; if not,
	// tok.UserID must be u.ID.
	CreateUser(ctx context.Context, u *User, tok *Token) error
	// UserByID and UserByEmail return ErrUserNotFound if there is none.
	UserByID(ctx context.Context, id string) (*User, error)
	UserByEmail(ctx context.Context, email string) (*User, error)
	// DeleteUser removes a user with its sessions and tokens.
	// ErrUserNotFound if there is none.
	DeleteUser(ctx context.Context, id string) error
	// SetLanguage changes the user's language. ErrUserNotFound if there is none.
	SetLanguage(ctx context.Context, id, lang string, now time.Time) error

	// CreateToken stores a single-use token. If replace is true, other
	// tokens of the same user and purpose are deleted in the same step.
	// ErrUserNotFound if the user is gone.
	CreateToken(ctx context.Context, tok *Token, replace bool) error
	// PeekToken returns the token with this hash and purpose without using
	// it up: ErrTokenInvalid if there is none, ErrTokenExpired if it is past
	// its ExpiresAt.
	PeekToken(ctx context.Context, hash []byte, purpose TokenPurpose, now time.Time) (*Token, error)

	// VerifyEmail uses up a PurposeVerifyEmail token and marks its user's
	// e-mail verified. Errors as PeekToken.
	VerifyEmail(ctx context.Context, hash []byte, now time.Time) (*User, error)
	// ChangeEmail uses up a PurposeChangeEmail token and sets the user's
	// e-mail to the token's NewEmail (also marking it verified). It
	// returns the user as it was before the change. Errors as PeekToken,
	// plus ErrEmailTaken (the token then stays unused).
	ChangeEmail(ctx context.Context, hash []byte, now time.Time) (before *User, err error)
	// ResetCredentials uses up a PurposeResetPassword token, replaces the
	// user's credentials, marks the e-mail verified (the mail reached
	// them), deletes all of the user's sessions and reset tokens.
	// Errors as PeekToken.
	ResetCredentials(ctx context.Context, hash []byte, creds Credentials, now time.Time) (*User, error)
	// ChangeCredentials replaces the credentials of user id if its current
	// LoginKeyHash equals oldLoginKeyHash (ErrInvalidCredentials if not),
	// and deletes every session of the user but keepSession (may be nil).
	// ErrUserNotFound if there is none.
	ChangeCredentials(ctx context.Context, id string, oldLoginKeyHash []byte, creds Credentials, keepSession []byte, now time.Time) error

	// CreateSession stores a session. ErrUserNotFound if the user is gone.
	CreateSession(ctx context.Context, s *Session) error
	// SessionByHash returns a live session and its user, sets the
	// session's LastSeenAt to now and moves ExpiresAt on by as much, so a
	// session lives its lifetime past its latest use (a clock that steps
	// back moves neither). ErrSessionNotFound if there is none or it has
	// expired (an expired one is deleted).
	SessionByHash(ctx context.Context, hash []byte, now time.Time) (*Session, *User, error)
	// DeleteSession removes one session; deleting a missing one is no error.
	DeleteSession(ctx context.Context, hash []byte) error
	// DeleteSessions removes every session of a user but keep (may be nil)
	// and returns how many went.
	DeleteSessions(ctx context.Context, userID string, keep []byte) (int, error)

	// ServerSecret returns the server-wide secret called name, creating it
	// with size random bytes on first use. Every node of a cluster gets the
	// same value (it is used to derive fake salts for unknown e-mails).
	// size counts only on creation: asking for a stored secret with
	// another size is an error.
	ServerSecret(ctx context.Context, name string, size int) ([]byte, error)

	// DeleteExpired removes expired sessions and tokens.
	DeleteExpired(ctx context.Context, now time.Time) error

	// Close releases the store.
	Close() error
}

// MailKind names one of the mails the account life cycle sends.
type MailKind string

// The mails.
const (
	MailVerifyEmail        MailKind = "verify_email"         // link to confirm a new account
	MailAlreadyRegistered  MailKind = "already_registered"   // sign-up attempted for a verified address
	MailChangeEmailConfirm MailKind = "change_email_confirm" // link to confirm the new address (to the new address)
	MailChangeEmailNotice  MailKind = "change_email_notice"  // the address is being changed (to the old address)
	MailChangeEmailTaken   MailKind = "change_email_taken"   // someone tried to move an account to this address
	MailResetPassword      MailKind = "reset_password"       // link to reset the password
	MailPasswordChanged    MailKind = "password_changed"     // the password was changed or reset
	MailAccountDeleted     MailKind = "account_deleted"      // the account was deleted
)

// Mail is one message to send. Link and OtherEmail are set where the kind
// uses them (OtherEmail: the new address in a change notice).
type Mail struct {
	Kind       MailKind
	To         string
	Language   string
	Link       string
	OtherEmail string
}

// LogValue keeps the link (it carries a token) out of logs.
func (m Mail) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kind", string(m.Kind)), slog.String("to", m.To))
}

// Mailer sends mails. Send may return before the mail is delivered.
type Mailer interface {
	Send(ctx context.Context, m Mail) error
}
