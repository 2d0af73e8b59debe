package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"time"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

var loginCommand = &command{
	pins:    true,
	name:    "login",
	summary: "log in and remember the session",
	help: `Logs in: fetches the account's salt and key-derivation parameters, derives
the login key from the password on this machine and sends only that key. The
session token is kept in the state directory (mode 0600), with the account's
public keys once they are checked: the private keys are opened with the
password on this machine, so that a relay cannot slip other keys into the
pairing tokens made later. The password and the private keys are not kept.`,
	examples: []string{
		"blindctl login --email me@example.com",
		"BLINDRELAY_PASSWORD=... blindctl --server https://relay.example.com login --email me@example.com",
	},
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *app, _ []string) error { return a.login(ctx) }
	},
}

func (a *app) login(ctx context.Context) error {
	email, err := a.email(true)
	if err != nil {
		return err
	}
	pw, err := a.readPassword(passwordSpec{prompt: "Password", env: envPassword})
	if err != nil {
		return err
	}
	old := a.state.SessionToken
	s, dk, err := a.client.Login(ctx, email, pw)
	if err != nil {
		return loginError(err, email)
	}
	// Keep the account's public keys, checked with the password, for
	// pairing tokens. Not having them is no reason to fail the log-in:
	// 'token create' then asks for the password.
	a.state.Keys = nil
	if uk, err := a.verifyLoginKeys(ctx, dk); err != nil {
		a.warnf("blindctl: WARNING: could not check the account's keys: %v\n"+
			"'blindctl token create' will ask for the password.\n", a.describe(err))
	} else {
		a.state.Keys = newVerifiedKeys(uk, s.User.Email, s.User.ID)
	}
	if err := a.saveSession(s.User.Email, s.Token); err != nil {
		return err
	}
	if old != "" {
		// The new session replaces the remembered one: end that one
		// rather than leave it valid until it expires. Best effort.
		if c, err := a.newClient(apiclient.WithSessionToken(old)); err == nil {
			_ = c.Logout(ctx)
		}
	}
	a.printf("Logged in as %s at %s.\n", s.User.Email, a.server)
	return nil
}

// verifyLoginKeys opens the account's private keys with the keys a log-in
// derived, which proves their public keys to be the account's.
func (a *app) verifyLoginKeys(ctx context.Context, dk *zkcrypto.DerivedKeys) (*zkcrypto.UserKeys, error) {
	keys, err := a.client.MyKeys(ctx)
	if err != nil {
		return nil, err
	}
	uk, err := zkcrypto.DecryptUserKeys(dk.SecretKey, keys.EncryptedPrivateKeys, keys.BoxPublicKey, keys.SignPublicKey)
	if errors.Is(err, zkcrypto.ErrWrongKey) {
		// The log-in key fit, so the password is right: the relay's
		// encrypted keys are not the account's.
		return nil, errors.New("the account's private keys at the relay do not open with this password")
	}
	return uk, err
}

// loginError adds advice to the errors of a log-in.
func loginError(err error, email string) error {
	switch {
	case apiclient.ErrorCode(err) == "email_not_verified":
		return hint(err, "Open the confirmation link mailed to "+email+", or run: blindctl verify '<link>'\n"+
			"No mail? Get a new link: blindctl resend --email "+email)
	case apiclient.ErrorCode(err) == "invalid_credentials":
		return hint(err, "Forgot your password? blindctl recovery request --email "+email)
	case errors.Is(err, apiclient.ErrKDFRefused):
		return hint(err, "The relay asked for key-derivation parameters outside what blindctl accepts; it may be misconfigured or hostile.")
	}
	return err
}

var whoamiCommand = &command{
	name:     "whoami",
	summary:  "show the logged-in account",
	help:     `Shows the account of the current session. --json prints {"id","email","verified","language","created_at","server"}.`,
	examples: []string{"blindctl whoami", "blindctl whoami --json | jq -r .email"},
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, a *app, _ []string) error { return a.whoami(ctx, *asJSON) }
	},
}

func (a *app) whoami(ctx context.Context, asJSON bool) error {
	if err := a.requireSession(); err != nil {
		return err
	}
	u, err := a.client.Me(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(a.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			ID        string    `json:"id"`
			Email     string    `json:"email"`
			Verified  bool      `json:"verified"`
			Language  string    `json:"language"`
			CreatedAt time.Time `json:"created_at"`
			Server    string    `json:"server"`
		}{u.ID, u.Email, u.Verified, u.Language, u.CreatedAt, a.server})
	}
	verified := "confirmed"
	if !u.Verified {
		verified = "not confirmed"
	}
	a.printf("%s (%s)\nid:       %s\nlanguage: %s\ncreated:  %s\nserver:   %s\n",
		u.Email, verified, u.ID, u.Language, u.CreatedAt.Local().Format(time.DateTime), a.server)
	return nil
}

var logoutCommand = &command{
	name:    "logout",
	summary: "end this session, or with --all every session",
	help: `Ends the session at the relay and forgets its token. --all ends every session
of the account, on all machines and browsers.`,
	examples: []string{"blindctl logout", "blindctl logout --all"},
	setup: func(fs *flag.FlagSet) runFunc {
		all := fs.Bool("all", false, "end every session of the account")
		return func(ctx context.Context, a *app, _ []string) error { return a.logout(ctx, *all) }
	},
}

func (a *app) logout(ctx context.Context, all bool) error {
	if a.state.SessionToken == "" {
		a.printf("Not logged in.\n")
		return nil
	}
	var n int
	var err error
	if all {
		n, err = a.client.LogoutAll(ctx)
	} else {
		err = a.client.Logout(ctx)
	}
	if err != nil && apiclient.ErrorCode(err) != "unauthorized" {
		return err
	}
	if err := a.saveSession("", ""); err != nil {
		return err
	}
	switch {
	case err != nil:
		a.printf("The session had already ended.\n")
	case all:
		a.printf("Logged out everywhere (%d session(s) ended).\n", n)
	default:
		a.printf("Logged out.\n")
	}
	return nil
}
