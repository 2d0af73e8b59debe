package main

import (
	"context"
	"errors"
	"flag"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
)

var passwdCommand = &command{
	name:    "passwd",
	summary: "change the password",
	help: `Changes the password of the logged-in account. The private keys are opened
with the current password and encrypted again under the new one on this
machine, so the public keys, the recovery file and access to devices stay as
they are. Every other session of the account ends.

Without a terminal the current password comes from ` + envPassword + ` and the new
one from ` + envNewPassword + `, or with --password-stdin from the first and second
line of stdin.`,
	examples: []string{
		"blindctl passwd",
		"printf '%s\\n%s\\n' \"$OLD\" \"$NEW\" | blindctl passwd --password-stdin",
	},
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *app, _ []string) error { return a.passwd(ctx) }
	},
}

func (a *app) passwd(ctx context.Context) error {
	if err := a.requireSession(); err != nil {
		return err
	}
	old, err := a.readPassword(passwordSpec{prompt: "Current password", env: envPassword})
	if err != nil {
		return err
	}
	pw, err := a.readPassword(passwordSpec{prompt: "New password", env: envNewPassword, isNew: true})
	if err != nil {
		return err
	}
	if err := a.client.ChangePassword(ctx, old, pw, apiclient.KDFParams{}); err != nil {
		if errors.Is(err, apiclient.ErrWrongPassword) {
			return errors.New("wrong current password; nothing was changed")
		}
		return err
	}
	a.printf("Password changed. Every other session was logged out; this one stays.\nYour recovery file stays valid.\n")
	return nil
}
