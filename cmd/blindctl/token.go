package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
)

// Limits of a pairing token, as the relay checks them (docs/api.md).
const (
	maxTokenUses = 100
	minTokenTTL  = time.Minute
	maxTokenTTL  = 30 * 24 * time.Hour
)

var tokenCreateCommand = &command{
	name:    "token create",
	summary: "make a pairing token for a new device",
	help: `Makes a pairing token: what a new device needs to join your account. The relay
makes the token's secret; blindctl puts it together with the relay's URL and
your account's public keys, as blindctl checked them itself at log-in (the
device seals its key slots to them, so the relay cannot slip in keys of its
own). If blindctl has no checked keys (e.g. after an update), it asks for the
password once to check them.

The token is the only thing printed on stdout; how to use it goes to stderr,
so TOKEN=$(blindctl token create) works. Give the token to the device and
nowhere else: anyone who has it can pair a device into your account until it
is used up, expires or is revoked ('blindctl token revoke').

--uses is how many devices it pairs (1 to 100, default 1); --ttl how long it
is valid (1m to 30d, default 24h; a Go duration such as 90m or 2h30m, or days
such as 7d).`,
	examples: []string{
		"blindctl token create --name garage",
		"blindctl token create --name fleet --uses 10 --ttl 7d",
		"devicesim --token \"$(blindctl token create)\" --data-dir ./sim",
	},
	setup: func(fs *flag.FlagSet) runFunc {
		name := fs.String("name", "", "a `NAME` for the token, shown in 'token list' (at most 64 characters)")
		uses := fs.Int("uses", 1, "how many devices it pairs, `N` from 1 to 100")
		ttl := ttlFlag(24 * time.Hour)
		fs.Var(&ttl, "ttl", "how long it is valid, a `DURATION` from 1m to 30d, e.g. 90m, 24h, 7d")
		return func(ctx context.Context, a *app, _ []string) error {
			if *uses < 1 || *uses > maxTokenUses {
				return usageErrorf("--uses %d: a token pairs 1 to %d devices", *uses, maxTokenUses)
			}
			if d := time.Duration(ttl); d < minTokenTTL || d > maxTokenTTL {
				return usageErrorf("--ttl %s: a token is valid from 1m to 30d", ttl)
			}
			return a.tokenCreate(ctx, *name, *uses, time.Duration(ttl))
		}
	},
}

// ttlFlag is a flag.Value for durations that also takes whole days ("7d").
type ttlFlag time.Duration

func (d *ttlFlag) String() string {
	v := time.Duration(*d)
	if v > 0 && v%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(v/(24*time.Hour)), 10) + "d"
	}
	return v.String()
}

func (d *ttlFlag) Set(s string) error {
	v, err := parseTTL(s)
	if err != nil {
		return err
	}
	*d = ttlFlag(v)
	return nil
}

// parseTTL reads a Go duration ("90m", "2h30m") or whole days ("7d").
func parseTTL(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 365 {
			return 0, fmt.Errorf("%q: want whole days such as 7d, or a duration such as 90m", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q: want a duration such as 90m or 24h, or days such as 7d", s)
	}
	return d, nil
}

func (a *app) tokenCreate(ctx context.Context, name string, uses int, ttl time.Duration) error {
	if err := a.requireSession(); err != nil {
		return err
	}
	// Without verified keys the password is needed anyway: ask before a
	// token exists that might then be left unused.
	if a.state.Keys == nil {
		if _, err := a.unlockKeys(ctx, ""); err != nil {
			return hint(err, "blindctl needs the password once to check the account's keys (it remembers them after a log-in).")
		}
	}
	info, err := a.client.CreatePairingToken(ctx, name, uses, ttl)
	if err != nil {
		return err
	}
	tok, err := a.pairingToken(ctx, info)
	if err != nil {
		// Nobody can use a token whose string was never shown: revoke it
		// rather than leave it active. Best effort.
		if rerr := a.client.RevokePairingToken(context.WithoutCancel(ctx), info.ID); rerr != nil {
			a.warnf("blindctl: could not revoke the unfinished token %s: %v\n", info.ID, rerr)
		}
		return err
	}
	s := tok.String()
	a.printf("%s\n", s)
	label := info.ID
	if info.Name != "" {
		label = fmt.Sprintf("%q (%s)", info.Name, info.ID)
	}
	devices := "1 device"
	if info.MaxUses != 1 {
		devices = fmt.Sprintf("up to %d devices", info.MaxUses)
	}
	a.warnf(`
Pairing token %s: pairs %s until %s.
Give it to the device and nowhere else: it lets a device join your account.
An emulated wallbox, for instance, pairs with:
  devicesim --token '%s' --data-dir ./sim
List tokens with 'blindctl token list'; revoke this one with 'blindctl token revoke %s'.
`, label, devices, info.ExpiresAt.Local().Format(timeFormat), s, info.ID)
	return nil
}

// pairingToken builds the token string's content for info with the
// account's verified public keys: those in the state, else (none for this
// user, or the relay has others now) those opened with the password.
func (a *app) pairingToken(ctx context.Context, info *apiclient.PairingTokenInfo) (apiclient.PairingToken, error) {
	if k := a.state.Keys; k.usableFor(info.UserID) {
		tok, err := a.client.NewPairingToken(ctx, info, k.BoxPublicKey, k.SignPublicKey)
		if !errors.Is(err, apiclient.ErrKeysChanged) {
			return tok, err
		}
		a.warnf("blindctl: the account's keys at the relay are not the ones blindctl checked at log-in; checking them again with the password.\n")
	}
	uk, err := a.unlockKeys(ctx, info.UserID)
	if err != nil {
		return apiclient.PairingToken{}, err
	}
	return a.client.NewPairingToken(ctx, info, uk.BoxPublic[:], uk.SignPublic)
}

var tokenListCommand = &command{
	name:    "token list",
	summary: "list the pairing tokens",
	help: `Lists the account's pairing tokens, newest first: id, name, uses (of the
maximum), state (active, used_up, expired or revoked) and when each expires.
The relay keeps only a hash of each secret, so a token string cannot be shown
again. --json prints a list of {"id", "name", "uses", "max_uses", "state",
"expires_at", "created_at", "revoked_at"}.`,
	examples: []string{"blindctl token list", "blindctl token list --json | jq -r '.[] | select(.state == \"active\") | .id'"},
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print JSON")
		return func(ctx context.Context, a *app, _ []string) error { return a.tokenList(ctx, *asJSON) }
	},
}

// tokenJSON is a pairing token in the output of 'token list --json'.
type tokenJSON struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Uses      int        `json:"uses"`
	MaxUses   int        `json:"max_uses"`
	State     string     `json:"state"`
	ExpiresAt time.Time  `json:"expires_at"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

func (a *app) tokenList(ctx context.Context, asJSON bool) error {
	if err := a.requireSession(); err != nil {
		return err
	}
	list, err := a.client.PairingTokens(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]tokenJSON, 0, len(list))
		for _, t := range list {
			out = append(out, tokenJSON{t.ID, t.Name, t.Uses, t.MaxUses, t.State, t.ExpiresAt, t.CreatedAt, t.RevokedAt})
		}
		return a.printJSON(out)
	}
	if len(list) == 0 {
		a.printf("No pairing tokens. Make one with: blindctl token create\n")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ID\tNAME\tUSES\tSTATE\tEXPIRES\n")
	for _, t := range list {
		name := t.Name
		if name == "" {
			name = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%s\t%s\n", t.ID, name, t.Uses, t.MaxUses, t.State, t.ExpiresAt.Local().Format(timeFormat))
	}
	return tw.Flush()
}

var tokenRevokeCommand = &command{
	name:     "token revoke",
	args:     "<id>",
	nargs:    1,
	summary:  "revoke a pairing token",
	help:     `Revokes a pairing token (its id is in 'blindctl token list'): it pairs no more devices. Devices already paired with it stay.`,
	examples: []string{"blindctl token revoke pt_3kq0c2m9"},
	setup: func(*flag.FlagSet) runFunc {
		return func(ctx context.Context, a *app, args []string) error { return a.tokenRevoke(ctx, args[0]) }
	},
}

func (a *app) tokenRevoke(ctx context.Context, id string) error {
	if err := a.requireSession(); err != nil {
		return err
	}
	if err := a.client.RevokePairingToken(ctx, id); err != nil {
		if apiclient.ErrorCode(err) == "not_found" {
			return hint(err, "'blindctl token list' shows your tokens and their ids.")
		}
		return err
	}
	a.printf("Pairing token %s revoked. Devices paired with it stay.\n", id)
	return nil
}

// timeFormat is how blindctl shows a time, in the local zone.
const timeFormat = "2006-01-02 15:04"

// printJSON writes v as indented JSON to stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
