package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
)

var registerCommand = &command{
	pins:    true,
	name:    "register",
	summary: "create an account and write its recovery file",
	help: `Creates an account: the keys are made and derived from the password on this
machine, and only public keys, a login-key hash and encrypted private keys go
to the relay. The relay mails a confirmation link; open it or pass it to
'blindctl verify'.

register also writes the recovery file, which holds your private keys. Keep
it secret and safe (offline): with it a forgotten password can be reset
without losing access to your devices. It is written with mode 0600 and an
existing file is never overwritten.

The password is asked twice, or taken from ` + envPassword + ` or
--password-stdin. It must have at least 8 characters.`,
	examples: []string{
		"blindctl --server https://relay.example.com register --email me@example.com",
		"blindctl register --email me@example.com --recovery-file ~/safe/blindrelay.json --language de",
	},
	setup: func(fs *flag.FlagSet) runFunc {
		recoveryFile := fs.String("recovery-file", "", "where to write the recovery `FILE` (default ./blindrelay-recovery-<email>.json)")
		lang := fs.String("language", "", "language `CODE` of the account's mails: en, de or fr (default from $LANG, else en)")
		return func(ctx context.Context, a *app, _ []string) error {
			return a.register(ctx, *recoveryFile, *lang)
		}
	},
}

func (a *app) register(ctx context.Context, recoveryPath, lang string) error {
	email, err := a.email(false)
	if err != nil {
		return err
	}
	if recoveryPath == "" {
		recoveryPath = defaultRecoveryPath(email)
	}
	if lang == "" {
		lang = languageFromEnv(a.env)
	}
	// Claim the recovery file first, so that an account is never made whose
	// keys cannot be written down.
	f, err := createExclusive(recoveryPath)
	if err != nil {
		return err
	}
	written := false
	defer func() {
		if !written {
			f.Close()
			os.Remove(recoveryPath)
		}
	}()
	pw, err := a.readPassword(passwordSpec{prompt: "Password", env: envPassword, isNew: true})
	if err != nil {
		return err
	}
	keys, err := a.client.Register(ctx, email, pw, lang, apiclient.KDFParams{})
	if err != nil {
		return err
	}
	data, err := keys.RecoveryFile(email, time.Now())
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Close()
	}
	if err != nil {
		return hint(fmt.Errorf("write recovery file %s: %w", recoveryPath, err),
			"The account was created. Confirm it, log in and write the file with: blindctl recovery save FILE")
	}
	written = true
	if abs, err := filepath.Abs(recoveryPath); err == nil {
		recoveryPath = abs
	}
	if err := a.saveSession(email, ""); err != nil {
		return err
	}
	a.printf(`Check your mail: we sent a link to %[1]s to confirm the address.
Open it, or run: blindctl verify '<link>'
Then log in: blindctl login --email %[1]s
(If %[1]s already has an account, the mail says so instead and nothing changed.)

Your recovery file: %[2]s
Keep it secret and safe, e.g. offline on a USB stick or printed. With it you can
reset a forgotten password and keep access to your devices. Anyone who has it
and can read your e-mail can take over your account.
`, email, recoveryPath)
	return nil
}

// defaultRecoveryPath is ./blindrelay-recovery-<email>.json, with anything
// odd in the address replaced so that it stays one file name.
func defaultRecoveryPath(email string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("@.+-_", r):
			return r
		}
		return '_'
	}, strings.TrimSpace(email))
	return "blindrelay-recovery-" + safe + ".json"
}

// createExclusive creates path with mode 0600, refusing to overwrite.
func createExclusive(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, hint(fmt.Errorf("%s already exists; refusing to overwrite it", path),
			"Move it away or choose another file name.")
	}
	if err != nil {
		return nil, err
	}
	return f, nil
}

// writeExclusive writes data to a new file path with mode 0600.
func writeExclusive(path string, data []byte) error {
	f, err := createExclusive(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// languageFromEnv picks en, de or fr from the locale variables, or "" (the
// relay then uses English).
func languageFromEnv(env func(string) string) string {
	for _, name := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		v := env(name)
		if v == "" {
			continue
		}
		if len(v) >= 2 {
			switch l := strings.ToLower(v[:2]); l {
			case "en", "de", "fr":
				return l
			}
		}
		return ""
	}
	return ""
}
