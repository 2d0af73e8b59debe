package main

import (
	"context"
	"flag"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
)

var verifyCommand = &command{
	pins:    true,
	name:    "verify",
	args:    "<link|token>",
	nargs:   1,
	summary: "confirm an e-mail address with the mailed link",
	help: `Confirms an e-mail address with the link from a sign-up or e-mail-change
mail. Pass the whole link (quote it for the shell) or only its token.
Opening the link in a browser does the same.`,
	examples: []string{
		"blindctl verify 'https://relay.example.com/verify?token=Zm9v...'",
		"blindctl verify Zm9v...",
	},
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *app, args []string) error { return a.verify(ctx, args[0]) }
	},
}

func (a *app) verify(ctx context.Context, link string) error {
	v, err := a.client.Verify(ctx, link)
	if code := apiclient.ErrorCode(err); code == "token_invalid" || code == "token_expired" {
		return hint(err, "A sign-up link can be sent again: blindctl resend --email ADDRESS\n"+
			"For an e-mail change, run 'blindctl email change NEW' again.")
	}
	if err != nil {
		return err
	}
	if v.Purpose == apiclient.PurposeChangeEmail {
		if a.state.SessionToken != "" {
			// Our session's account now has this address.
			a.state.Email = v.Email
			if err := a.state.save(a.stateDir); err != nil {
				return err
			}
		}
		a.printf("Your account's e-mail address is now %s.\n", v.Email)
		return nil
	}
	a.printf("E-mail address %[1]s confirmed. Log in with: blindctl login --email %[1]s\n", v.Email)
	return nil
}

var resendCommand = &command{
	name:    "resend",
	summary: "mail a new confirmation link for an unconfirmed account",
	help: `Asks the relay to mail a fresh confirmation link to an account that has not
confirmed its address yet; earlier links stop working. The relay gives the
same answer whether or not such an account exists.`,
	examples: []string{"blindctl resend --email me@example.com"},
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *app, _ []string) error { return a.resend(ctx) }
	},
}

func (a *app) resend(ctx context.Context) error {
	email, err := a.email(true)
	if err != nil {
		return err
	}
	if _, err := a.client.Resend(ctx, email); err != nil {
		return err
	}
	a.printf("If %s has an account waiting for confirmation, a new link is on its way.\n", email)
	return nil
}
