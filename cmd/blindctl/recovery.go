package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

var recoverySaveCommand = &command{
	name:    "recovery save",
	args:    "<file>",
	nargs:   1,
	summary: "write the recovery file of the logged-in account",
	help: `Writes the recovery file again: the private keys are fetched encrypted, opened
with the password on this machine and written to FILE with mode 0600. An
existing file is never overwritten; "-" writes to stdout.`,
	examples: []string{"blindctl recovery save ~/safe/blindrelay-recovery.json"},
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *app, args []string) error { return a.recoverySave(ctx, args[0]) }
	},
}

func (a *app) recoverySave(ctx context.Context, path string) error {
	if err := a.requireSession(); err != nil {
		return err
	}
	if path != "-" {
		if _, err := os.Lstat(path); err == nil {
			return hint(fmt.Errorf("%s already exists; refusing to overwrite it", path), "Move it away or choose another file name.")
		}
	}
	pw, err := a.readPassword(passwordSpec{prompt: "Password", env: envPassword})
	if err != nil {
		return err
	}
	data, err := a.client.RecoveryFile(ctx, pw)
	if errors.Is(err, apiclient.ErrWrongPassword) {
		return errors.New("wrong password")
	}
	if err != nil {
		return err
	}
	if path == "-" {
		_, err := a.stdout.Write(data)
		return err
	}
	if err := writeExclusive(path, data); err != nil {
		return err
	}
	a.printf("Recovery file written to %s.\nKeep it secret and safe: with it you can reset a forgotten password and keep your devices.\n", path)
	return nil
}

var recoveryRequestCommand = &command{
	name:    "recovery request",
	summary: "mail a password-reset link",
	help: `Asks the relay to mail a password-reset link (valid for one hour) to the
account's address. The relay gives the same answer whether or not the
account exists. Finish with 'blindctl recovery reset'.`,
	examples: []string{"blindctl recovery request --email me@example.com"},
	setup: func(fs *flag.FlagSet) runFunc {
		lang := fs.String("language", "", "language `CODE` of the mail: en, de or fr (default from $LANG)")
		return func(ctx context.Context, a *app, _ []string) error { return a.recoveryRequest(ctx, *lang) }
	},
}

func (a *app) recoveryRequest(ctx context.Context, lang string) error {
	email, err := a.email(true)
	if err != nil {
		return err
	}
	if lang == "" {
		lang = languageFromEnv(a.env)
	}
	if _, err := a.client.RequestReset(ctx, email, lang); err != nil {
		return err
	}
	a.printf(`If %s has an account, a password-reset link is on its way (valid for one hour).
Then run: blindctl recovery reset --token '<link>' --recovery-file FILE
`, email)
	return nil
}

var recoveryResetCommand = &command{
	name:     "recovery reset",
	synopsis: "--token <link|token> [--recovery-file FILE] [--yes]",
	summary:  "set a new password with a mailed reset link",
	help: `Sets a new password with the link from a password-reset mail ('blindctl
recovery request' sends one). Every session of the account ends.

With --recovery-file the keys in the file are kept, so your devices keep
working; the file is checked against the account before you are asked for
the new password.

Without a recovery file new keys replace the old ones: access to ALL devices
shared with the account is lost and the old recovery file stops working.
blindctl warns and asks for confirmation (--yes skips it; without a terminal
--yes is required).

The new password is asked twice, or taken from ` + envPassword + ` or
--password-stdin.`,
	examples: []string{
		"blindctl recovery reset --token 'https://relay.example.com/reset?token=...' --recovery-file ~/safe/blindrelay-recovery.json",
		"blindctl recovery reset --token 'https://relay.example.com/reset?token=...' --yes",
	},
	setup: func(fs *flag.FlagSet) runFunc {
		token := fs.String("token", "", "the reset `LINK` from the mail, or its token (required)")
		file := fs.String("recovery-file", "", "the account's recovery `FILE` (keeps your devices)")
		yes := fs.Bool("yes", false, "reset without a recovery file without asking")
		return func(ctx context.Context, a *app, _ []string) error {
			if *token == "" {
				return usageErrorf("--token is required: the reset link from the mail")
			}
			if *file != "" {
				return a.resetWithRecovery(ctx, *token, *file)
			}
			return a.resetWithoutRecovery(ctx, *token, *yes)
		}
	},
}

func (a *app) resetWithRecovery(ctx context.Context, token, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("recovery file: %w", err)
	}
	keys, info, err := a.client.CheckRecovery(ctx, token, data)
	if err != nil {
		return resetError(err)
	}
	a.printf("Resetting the password of %s, keeping the keys of the recovery file.\n", info.Email)
	pw, err := a.readPassword(passwordSpec{prompt: "New password", env: envPassword, isNew: true})
	if err != nil {
		return err
	}
	if _, err := a.client.ResetWithRecovery(ctx, token, data, pw, apiclient.KDFParams{}); err != nil {
		return resetError(err)
	}
	if err := a.afterReset(info.Email, keys); err != nil {
		return err
	}
	a.printf(`Password reset for %[1]s. Your keys were kept, so your devices keep working
and your recovery file stays valid. Every session was logged out.
Log in with the new password: blindctl login --email %[1]s
`, info.Email)
	return nil
}

func (a *app) resetWithoutRecovery(ctx context.Context, token string, yes bool) error {
	info, err := a.client.ResetInfo(ctx, token)
	if err != nil {
		return resetError(err)
	}
	a.warnf(`WARNING: resetting the password of %s WITHOUT a recovery file.
New keys will replace the account's keys: you lose access to ALL devices
shared with this account (they must be paired again), and your old recovery
file stops working. If you have the recovery file, stop and run this again
with --recovery-file FILE.
`, info.Email)
	if err := a.confirm("Type 'yes' to reset without a recovery file: ", "yes", yes); err != nil {
		return err
	}
	pw, err := a.readPassword(passwordSpec{prompt: "New password", env: envPassword, isNew: true})
	if err != nil {
		return err
	}
	keys, _, err := a.client.ResetWithoutRecovery(ctx, token, pw, apiclient.KDFParams{})
	if err != nil {
		return resetError(err)
	}
	if err := a.afterReset(info.Email, keys); err != nil {
		return err
	}
	a.printf(`Password reset for %[1]s with new keys. Devices shared with the old keys
must be paired again. Every session was logged out.
Log in and save the new recovery file:
  blindctl login --email %[1]s
  blindctl recovery save FILE
`, info.Email)
	return nil
}

// resetError adds advice to the errors of a reset.
func resetError(err error) error {
	code := apiclient.ErrorCode(err)
	switch {
	case code == "token_invalid", code == "token_expired":
		return hint(err, "Reset links work once and for one hour. Get a new one: blindctl recovery request --email ADDRESS")
	case code == "recovery_mismatch", errors.Is(err, apiclient.ErrRecoveryMismatch):
		return hint(err, "Use the recovery file of this account, or reset without one (you then lose access to your devices).")
	case errors.Is(err, zkcrypto.ErrNotRecoveryFile), errors.Is(err, zkcrypto.ErrRecoveryChecksum), errors.Is(err, zkcrypto.ErrUnsupportedRecoveryVersion):
		return hint(err, "Check that --recovery-file names the file 'blindctl register' or 'blindctl recovery save' wrote.")
	}
	return err
}

// afterReset updates the state of the account whose password was reset:
// the relay ended every session of it, and keys are the account's keys now,
// verified (those of the user's recovery file, or new ones made here). The
// state of another account is left alone.
func (a *app) afterReset(email string, keys *zkcrypto.UserKeys) error {
	if a.state.Email != email {
		return nil
	}
	userID := ""
	if old := a.state.Keys; old != nil && old.Email == email {
		userID = old.UserID // the same account keeps its id
	}
	a.state.Keys = newVerifiedKeys(keys, email, userID)
	return a.saveSession("", "")
}
