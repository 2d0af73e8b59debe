package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// The account's keys on this machine. The relay keeps the account's public
// keys and its private keys encrypted under the secret key, which is derived
// from the password here and never leaves. blindctl trusts public keys only
// after checking them itself: private keys that the password-derived key
// decrypts, and whose public halves match, cannot have been made up by the
// relay, which does not know that key. Such verified public keys are kept
// in the state file (state.Keys), so that 'token create' needs no password.

// unlockKeys asks for the password and opens the logged-in account's
// private keys with it: the relay's salt and KDF parameters (within
// blindctl's limits), the secret key derived here, the private keys
// decrypted and checked against the public keys. It remembers the verified
// public keys in the state, for the user with id userID ("" if not known).
func (a *app) unlockKeys(ctx context.Context, userID string) (*zkcrypto.UserKeys, error) {
	pw, err := a.readPassword(passwordSpec{prompt: "Password", env: envPassword})
	if err != nil {
		return nil, err
	}
	keys, err := a.client.MyKeys(ctx)
	if err != nil {
		return nil, err
	}
	uk, err := openUserKeys(pw, keys)
	if err != nil {
		return nil, err
	}
	if err := a.rememberKeys(uk, "", userID); err != nil {
		return nil, err
	}
	return uk, nil
}

// openUserKeys derives the secret key from password with the account's salt
// and parameters and decrypts the private keys.
func openUserKeys(password []byte, keys *apiclient.Keys) (*zkcrypto.UserKeys, error) {
	if err := keys.KDF.Validate(minKDF, zkcrypto.MaxKDFParams()); err != nil {
		return nil, hint(fmt.Errorf("%w: %w", apiclient.ErrKDFRefused, err),
			"The relay asked for key-derivation parameters outside what blindctl accepts; it may be misconfigured or hostile.")
	}
	dk, err := zkcrypto.DeriveKeys(password, keys.Salt, keys.KDF)
	if err != nil {
		return nil, err
	}
	return decryptUserKeys(dk, keys)
}

// decryptUserKeys opens the account's private keys with derived keys; a
// blob that does not open means the password was wrong.
func decryptUserKeys(dk *zkcrypto.DerivedKeys, keys *apiclient.Keys) (*zkcrypto.UserKeys, error) {
	uk, err := zkcrypto.DecryptUserKeys(dk.SecretKey, keys.EncryptedPrivateKeys, keys.BoxPublicKey, keys.SignPublicKey)
	if errors.Is(err, zkcrypto.ErrWrongKey) {
		return nil, errors.New("wrong password")
	}
	if err != nil {
		return nil, fmt.Errorf("open the account's keys: %w", err)
	}
	return uk, nil
}

// newVerifiedKeys returns the public halves of uk for the state.
func newVerifiedKeys(uk *zkcrypto.UserKeys, email, userID string) *verifiedKeys {
	return &verifiedKeys{
		UserID:        userID,
		Email:         email,
		BoxPublicKey:  bytes.Clone(uk.BoxPublic[:]),
		SignPublicKey: bytes.Clone(uk.SignPublic),
	}
}

// rememberKeys keeps uk's public keys in the state as the account's, and
// saves the state if that changed anything. email and userID may be "";
// what the state knew of the same keys is kept then.
func (a *app) rememberKeys(uk *zkcrypto.UserKeys, email, userID string) error {
	k := newVerifiedKeys(uk, email, userID)
	if old := a.state.Keys; old != nil && bytes.Equal(old.BoxPublicKey, k.BoxPublicKey) && bytes.Equal(old.SignPublicKey, k.SignPublicKey) {
		if k.UserID == "" {
			k.UserID = old.UserID
		}
		if k.Email == "" {
			k.Email = old.Email
		}
		if k.UserID == old.UserID && k.Email == old.Email {
			return nil
		}
	}
	a.state.Keys = k
	return a.state.save(a.stateDir)
}
