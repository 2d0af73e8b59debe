package main

import (
	"context"
	"flag"
	"strings"
)

var emailChangeCommand = &command{
	name:    "email change",
	args:    "<new-address>",
	nargs:   1,
	summary: "move the account to another e-mail address",
	help: `Asks to move the logged-in account to a new e-mail address; the password is
needed to prove it is you. The relay mails a confirmation link to the new
address and a notice to the old one. The address changes when the link is
opened (or passed to 'blindctl verify'); until then you log in with the old
one.`,
	examples: []string{
		"blindctl email change new@example.com",
		"blindctl verify 'https://relay.example.com/verify?token=...'",
	},
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *app, args []string) error { return a.emailChange(ctx, args[0]) }
	},
}

func (a *app) emailChange(ctx context.Context, newEmail string) error {
	newEmail = strings.TrimSpace(newEmail)
	if newEmail == "" {
		return usageErrorf("the new address is empty")
	}
	if err := a.requireSession(); err != nil {
		return err
	}
	pw, err := a.readPassword(passwordSpec{prompt: "Password", env: envPassword})
	if err != nil {
		return err
	}
	if err := a.client.ChangeEmail(ctx, pw, newEmail); err != nil {
		return err
	}
	a.printf("We sent a confirmation link to %s. The address changes when you open it,\nor run: blindctl verify '<link>'\n", newEmail)
	return nil
}
