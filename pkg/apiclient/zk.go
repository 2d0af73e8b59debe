package apiclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// The zero-knowledge helpers: each derives keys from a password on this
// side with pkg/zkcrypto and sends the server only what docs/api.md allows
// (login keys, public keys, ciphertext, signatures).
//
// Each helper that makes new credentials takes the KDF parameters to make
// them with. The zero KDFParams means "what the server hands out": its
// default for a new account, the account's current parameters otherwise.
// Either way they must lie within the client's limits (WithKDFLimits).

// Register creates an account for email (see SubmitRegistration): a new
// salt and user key pair, the keys derived from password with kdf, the
// private keys encrypted under the secret key. lang may be "". It returns
// the user keys so that the caller can write the recovery file
// ((*zkcrypto.UserKeys).RecoveryFile). The account stays unverified until
// the mailed link is confirmed (Verify).
func (c *Client) Register(ctx context.Context, email string, password []byte, lang string, kdf KDFParams) (*zkcrypto.UserKeys, error) {
	kdf, err := c.kdfFor(ctx, kdf, email)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	cred, err := c.newCredentials(password, kdf, nil)
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	_, err = c.SubmitRegistration(ctx, &RegisterRequest{
		Email:                email,
		Language:             lang,
		Salt:                 cred.salt,
		KDF:                  kdf,
		LoginKey:             cred.derived.LoginKey[:],
		BoxPublicKey:         cred.keys.BoxPublic[:],
		SignPublicKey:        cred.keys.SignPublic,
		EncryptedPrivateKeys: cred.encrypted,
	})
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	return cred.keys, nil
}

// Login fetches email's salt and KDF parameters, derives the keys from
// password and logs in (LoginWithKey). It returns the session (its Token is
// now the client's) and the derived keys, whose SecretKey opens the user's
// private keys.
func (c *Client) Login(ctx context.Context, email string, password []byte) (*Session, *zkcrypto.DerivedKeys, error) {
	salt, err := c.Salt(ctx, email)
	if err != nil {
		return nil, nil, fmt.Errorf("login: %w", err)
	}
	dk, err := c.derive(password, salt.Salt, salt.KDF)
	if err != nil {
		return nil, nil, fmt.Errorf("login: %w", err)
	}
	s, err := c.LoginWithKey(ctx, email, dk.LoginKey[:])
	if err != nil {
		return nil, nil, fmt.Errorf("login: %w", err)
	}
	return s, dk, nil
}

// ChangePassword replaces the logged-in user's password: it opens the
// private keys with oldPassword (ErrWrongPassword if they do not open),
// re-encrypts the same keys under newPassword derived with kdf and a new
// salt, and sends both (SubmitPasswordChange). The public keys, and so the
// recovery file and the devices, stay valid. The server ends every other
// session.
func (c *Client) ChangePassword(ctx context.Context, oldPassword, newPassword []byte, kdf KDFParams) error {
	keys, old, err := c.unlock(ctx, oldPassword)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	uk, err := openKeys(old, keys)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	if kdf == (KDFParams{}) {
		kdf = keys.KDF
	}
	cred, err := c.newCredentials(newPassword, kdf, uk)
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	_, err = c.SubmitPasswordChange(ctx, &PasswordChangeRequest{
		LoginKey:             old.LoginKey[:],
		Salt:                 cred.salt,
		KDF:                  kdf,
		NewLoginKey:          cred.derived.LoginKey[:],
		EncryptedPrivateKeys: cred.encrypted,
	})
	if err != nil {
		return fmt.Errorf("change password: %w", err)
	}
	return nil
}

// ChangeEmail asks to move the logged-in user's account to newEmail,
// proven with password (see SubmitEmailChange). The change happens when the
// link mailed to newEmail is confirmed.
func (c *Client) ChangeEmail(ctx context.Context, password []byte, newEmail string) error {
	_, dk, err := c.unlock(ctx, password)
	if err != nil {
		return fmt.Errorf("change e-mail: %w", err)
	}
	if _, err := c.SubmitEmailChange(ctx, newEmail, dk.LoginKey[:]); err != nil {
		return fmt.Errorf("change e-mail: %w", err)
	}
	return nil
}

// DeleteAccount deletes the logged-in user's account, proven with password
// (see DeleteWithKey).
func (c *Client) DeleteAccount(ctx context.Context, password []byte) error {
	_, dk, err := c.unlock(ctx, password)
	if err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	if err := c.DeleteWithKey(ctx, dk.LoginKey[:]); err != nil {
		return fmt.Errorf("delete account: %w", err)
	}
	return nil
}

// RecoveryFile rebuilds the logged-in user's recovery file: it fetches the
// keys (MyKeys), opens the private keys with password (ErrWrongPassword if
// they do not open) and returns the file's bytes, ready to be written with
// mode 0600.
func (c *Client) RecoveryFile(ctx context.Context, password []byte) ([]byte, error) {
	me, err := c.Me(ctx)
	if err != nil {
		return nil, fmt.Errorf("recovery file: %w", err)
	}
	keys, dk, err := c.unlock(ctx, password)
	if err != nil {
		return nil, fmt.Errorf("recovery file: %w", err)
	}
	uk, err := openKeys(dk, keys)
	if err != nil {
		return nil, fmt.Errorf("recovery file: %w", err)
	}
	file, err := uk.RecoveryFile(me.Email, time.Now())
	if err != nil {
		return nil, fmt.Errorf("recovery file: %w", err)
	}
	return file, nil
}

// CheckRecovery checks, without using the reset token up, that a recovery
// file fits the account of the reset link: it parses the file (zkcrypto
// errors such as ErrNotRecoveryFile and ErrRecoveryChecksum) and compares its
// public keys with the account's (ErrRecoveryMismatch). token may be the
// whole link. Callers can run it before asking for a new password.
func (c *Client) CheckRecovery(ctx context.Context, token string, recoveryFile []byte) (*zkcrypto.UserKeys, *ResetInfo, error) {
	uk, _, err := zkcrypto.ParseRecoveryFile(recoveryFile)
	if err != nil {
		return nil, nil, fmt.Errorf("check recovery file: %w", err)
	}
	info, err := c.ResetInfo(ctx, token)
	if err != nil {
		return nil, nil, fmt.Errorf("check recovery file: %w", err)
	}
	if !bytes.Equal(info.BoxPublicKey, uk.BoxPublic[:]) || !bytes.Equal(info.SignPublicKey, uk.SignPublic) {
		return nil, nil, fmt.Errorf("check recovery file: %w", ErrRecoveryMismatch)
	}
	return uk, info, nil
}

// ResetWithRecovery sets a new password with a reset link and the
// account's recovery file, keeping the user keys (and so every device).
// It checks the file against the account first (CheckRecovery), before any
// key derivation; then it encrypts the file's private keys under
// newPassword derived with kdf and signs zkcrypto.ResetMessage with the
// file's signing key, as the server demands for keep_keys. Every session of
// the user ends.
func (c *Client) ResetWithRecovery(ctx context.Context, token string, recoveryFile, newPassword []byte, kdf KDFParams) (*ResetResult, error) {
	token = ParseToken(token)
	uk, info, err := c.CheckRecovery(ctx, token, recoveryFile)
	if err != nil {
		return nil, fmt.Errorf("reset with recovery file: %w", err)
	}
	if kdf, err = c.kdfFor(ctx, kdf, info.Email); err != nil {
		return nil, fmt.Errorf("reset with recovery file: %w", err)
	}
	cred, err := c.newCredentials(newPassword, kdf, uk)
	if err != nil {
		return nil, fmt.Errorf("reset with recovery file: %w", err)
	}
	msg := zkcrypto.ResetMessage(token, zkcrypto.HashLoginKey(cred.derived.LoginKey[:]))
	res, err := c.CompleteReset(ctx, cred.resetRequest(token, true, kdf, uk.Sign(msg)))
	if err != nil {
		return nil, fmt.Errorf("reset with recovery file: %w", err)
	}
	return res, nil
}

// ResetWithoutRecovery sets a new password with a reset link alone. New
// user keys replace the old ones, so access to every device shared with the
// old keys is lost and the old recovery file becomes useless; the new keys
// are returned so that the caller can write a new recovery file. The token
// is checked (ResetInfo) before any key derivation. Every session of the
// user ends.
func (c *Client) ResetWithoutRecovery(ctx context.Context, token string, newPassword []byte, kdf KDFParams) (*zkcrypto.UserKeys, *ResetResult, error) {
	token = ParseToken(token)
	info, err := c.ResetInfo(ctx, token)
	if err != nil {
		return nil, nil, fmt.Errorf("reset without recovery file: %w", err)
	}
	if kdf, err = c.kdfFor(ctx, kdf, info.Email); err != nil {
		return nil, nil, fmt.Errorf("reset without recovery file: %w", err)
	}
	cred, err := c.newCredentials(newPassword, kdf, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("reset without recovery file: %w", err)
	}
	res, err := c.CompleteReset(ctx, cred.resetRequest(token, false, kdf, nil))
	if err != nil {
		return nil, nil, fmt.Errorf("reset without recovery file: %w", err)
	}
	return cred.keys, res, nil
}

// credentials are freshly made credentials for a password.
type credentials struct {
	salt      []byte
	derived   *zkcrypto.DerivedKeys
	keys      *zkcrypto.UserKeys
	encrypted []byte // keys' private halves under derived.SecretKey
}

// newCredentials derives keys from password with a new salt and kdf and
// encrypts keys under them; keys nil means new user keys.
func (c *Client) newCredentials(password []byte, kdf KDFParams, keys *zkcrypto.UserKeys) (*credentials, error) {
	salt, err := zkcrypto.NewSalt()
	if err != nil {
		return nil, err
	}
	dk, err := c.derive(password, salt, kdf)
	if err != nil {
		return nil, err
	}
	if keys == nil {
		if keys, err = zkcrypto.GenerateUserKeys(); err != nil {
			return nil, err
		}
	}
	enc, err := keys.Encrypt(dk.SecretKey)
	if err != nil {
		return nil, err
	}
	return &credentials{salt: salt, derived: dk, keys: keys, encrypted: enc}, nil
}

func (cr *credentials) resetRequest(token string, keep bool, kdf KDFParams, sig []byte) *ResetCompleteRequest {
	return &ResetCompleteRequest{
		Token:                token,
		KeepKeys:             keep,
		Salt:                 cr.salt,
		KDF:                  kdf,
		LoginKey:             cr.derived.LoginKey[:],
		EncryptedPrivateKeys: cr.encrypted,
		BoxPublicKey:         cr.keys.BoxPublic[:],
		SignPublicKey:        cr.keys.SignPublic,
		Signature:            sig,
	}
}

// kdfFor returns kdf, or for the zero KDFParams the parameters the server
// hands out for email.
func (c *Client) kdfFor(ctx context.Context, kdf KDFParams, email string) (KDFParams, error) {
	if kdf != (KDFParams{}) {
		return kdf, nil
	}
	s, err := c.Salt(ctx, email)
	if err != nil {
		return kdf, err
	}
	return s.KDF, nil
}

// derive checks kdf against the client's limits, then derives.
func (c *Client) derive(password, salt []byte, kdf KDFParams) (*zkcrypto.DerivedKeys, error) {
	if len(password) == 0 {
		return nil, errors.New("empty password")
	}
	if err := c.checkKDF(kdf); err != nil {
		return nil, err
	}
	return zkcrypto.DeriveKeys(password, salt, kdf)
}

// unlock fetches the logged-in user's keys and derives from password with
// the account's salt and parameters.
func (c *Client) unlock(ctx context.Context, password []byte) (*Keys, *zkcrypto.DerivedKeys, error) {
	keys, err := c.MyKeys(ctx)
	if err != nil {
		return nil, nil, err
	}
	dk, err := c.derive(password, keys.Salt, keys.KDF)
	if err != nil {
		return nil, nil, err
	}
	return keys, dk, nil
}

// openKeys decrypts the user's private keys; a blob that does not open
// means the password was wrong.
func openKeys(dk *zkcrypto.DerivedKeys, keys *Keys) (*zkcrypto.UserKeys, error) {
	uk, err := zkcrypto.DecryptUserKeys(dk.SecretKey, keys.EncryptedPrivateKeys, keys.BoxPublicKey, keys.SignPublicKey)
	if errors.Is(err, zkcrypto.ErrWrongKey) {
		return nil, ErrWrongPassword
	}
	return uk, err
}
