package main

import (
	"context"
	"flag"
)

var accountDeleteCommand = &command{
	name:    "account delete",
	summary: "delete the account",
	help: `Deletes the logged-in account with its sessions and everything the relay
keeps for it. It cannot be undone. You are asked to type the account's e-mail
address to confirm (--yes skips that; without a terminal --yes is required),
then for the password.`,
	examples: []string{"blindctl account delete", "BLINDRELAY_PASSWORD=... blindctl account delete --yes"},
	setup: func(fs *flag.FlagSet) runFunc {
		yes := fs.Bool("yes", false, "do not ask for confirmation")
		return func(ctx context.Context, a *app, _ []string) error { return a.accountDelete(ctx, *yes) }
	},
}

func (a *app) accountDelete(ctx context.Context, yes bool) error {
	if err := a.requireSession(); err != nil {
		return err
	}
	me, err := a.client.Me(ctx)
	if err != nil {
		return err
	}
	if !yes {
		a.warnf("This deletes the account %s and everything the relay keeps for it.\nIt cannot be undone.\n", me.Email)
	}
	if err := a.confirm("Type the account's e-mail address to confirm: ", me.Email, yes); err != nil {
		return err
	}
	pw, err := a.readPassword(passwordSpec{prompt: "Password", env: envPassword})
	if err != nil {
		return err
	}
	if err := a.client.DeleteAccount(ctx, pw); err != nil {
		return err
	}
	a.state.Email = ""
	a.state.Keys = nil
	if err := a.saveSession("", ""); err != nil {
		return err
	}
	a.printf("Account %s deleted.\n", me.Email)
	return nil
}
