package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

var devicesCommand = &command{
	name:    "devices",
	summary: "list your devices",
	help: `Lists the devices you have access to: UID, id, whether the relay reaches the
device now and when it last did, firmware, your role (owner or user) and how
many of your key slots on it are in use. 'connect' and 'device remove' take
the id or the UID.

A device's name is sealed to your account's key, so the relay cannot read
it; --names asks for the password to open the names.

--json prints a list of {"id", "uid", "name" (with --names), "online",
"last_seen_at" (absent if never seen), "firmware", "protocol_version", "role",
"public_key", "created_at", "slots_total", "slots_busy"}.`,
	examples: []string{
		"blindctl devices",
		"blindctl devices --names",
		"blindctl devices --json | jq -r '.[] | select(.online) | .uid'",
	},
	setup: func(fs *flag.FlagSet) runFunc {
		asJSON := fs.Bool("json", false, "print JSON")
		names := fs.Bool("names", false, "open the devices' names (asks for the password)")
		return func(ctx context.Context, a *app, _ []string) error { return a.devices(ctx, *asJSON, *names) }
	},
}

// deviceJSON is a device in the output of 'devices --json'.
type deviceJSON struct {
	ID              string    `json:"id"`
	UID             string    `json:"uid"`
	Name            string    `json:"name,omitempty"`
	Online          bool      `json:"online"`
	LastSeenAt      time.Time `json:"last_seen_at,omitzero"`
	Firmware        string    `json:"firmware"`
	ProtocolVersion int       `json:"protocol_version"`
	Role            string    `json:"role"`
	PublicKey       string    `json:"public_key"`
	CreatedAt       time.Time `json:"created_at"`
	SlotsTotal      int       `json:"slots_total"`
	SlotsBusy       int       `json:"slots_busy"`
}

func (a *app) devices(ctx context.Context, asJSON, withNames bool) error {
	if err := a.requireSession(); err != nil {
		return err
	}
	list, err := a.client.Devices(ctx)
	if err != nil {
		return err
	}
	var names map[string]string
	if withNames && len(list) > 0 {
		uk, err := a.unlockKeys(ctx, "")
		if err != nil {
			return err
		}
		names = a.openNames(uk, list)
	}
	if asJSON {
		out := make([]deviceJSON, 0, len(list))
		for _, d := range list {
			out = append(out, deviceJSON{
				ID: d.ID, UID: d.UID, Name: names[d.ID], Online: d.Online, LastSeenAt: d.LastSeenAt,
				Firmware: d.Firmware, ProtocolVersion: d.ProtocolVersion, Role: d.Role,
				PublicKey: base64.StdEncoding.EncodeToString(d.PublicKey), CreatedAt: d.CreatedAt,
				SlotsTotal: d.SlotsTotal, SlotsBusy: d.SlotsBusy,
			})
		}
		return a.printJSON(out)
	}
	if len(list) == 0 {
		a.printf("No devices. Pair one with a token: blindctl token create\n")
		return nil
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	header := "UID\tID\tSTATUS\tLAST SEEN\tFIRMWARE\tROLE\tSLOTS IN USE"
	if withNames {
		header += "\tNAME"
	}
	fmt.Fprintln(tw, header)
	for _, d := range list {
		status, seen := "offline", "never"
		if d.Online {
			status = "online"
		}
		if !d.LastSeenAt.IsZero() {
			seen = d.LastSeenAt.Local().Format(timeFormat)
		}
		line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%d/%d", d.UID, d.ID, status, seen, orDash(d.Firmware), d.Role, d.SlotsBusy, d.SlotsTotal)
		if withNames {
			line += "\t" + orDash(names[d.ID])
		}
		fmt.Fprintln(tw, line)
	}
	return tw.Flush()
}

// openNames opens the sealed names of list with uk, by device id. A name
// that does not open is left out, with a warning.
func (a *app) openNames(uk *zkcrypto.UserKeys, list []apiclient.Device) map[string]string {
	names := map[string]string{}
	for _, d := range list {
		if len(d.SealedName) == 0 {
			continue
		}
		b, err := uk.OpenSealed(d.SealedName)
		if err != nil {
			a.warnf("blindctl: the name of device %s does not open with your keys: %v\n", d.UID, err)
			continue
		}
		names[d.ID] = printableName(string(b))
	}
	return names
}

// printableName makes a device's name safe to print: a device chose it,
// and it must not move the cursor or clear the screen.
func printableName(s string) string {
	s = strings.ToValidUTF8(s, "?")
	return strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return '?'
	}, s)
}

// orDash is s, or "-" for an empty table cell.
func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// errDeviceNotFound: no device of the user has the id or UID asked for.
var errDeviceNotFound = errors.New("device not found")

// findDevice returns the user's device whose id or UID is ref: an exact
// id, else an exact UID, else the one UID that matches without case.
func (a *app) findDevice(ctx context.Context, ref string) (*apiclient.Device, error) {
	ref = strings.TrimSpace(ref)
	list, err := a.client.Devices(ctx)
	if err != nil {
		return nil, err
	}
	var folded []int
	for i := range list {
		if list[i].ID == ref || list[i].UID == ref {
			return &list[i], nil
		}
		if strings.EqualFold(list[i].UID, ref) {
			folded = append(folded, i)
		}
	}
	if len(folded) == 1 {
		return &list[folded[0]], nil
	}
	return nil, hint(fmt.Errorf("%w: you have no device with the id or UID %q", errDeviceNotFound, ref),
		"'blindctl devices' lists your devices.")
}

var deviceRemoveCommand = &command{
	name:    "device remove",
	args:    "<id|uid>",
	nargs:   1,
	summary: "remove a device, or your access to it",
	help: `Removes a device. If you own it, it is removed for everyone it is shared with
and must be paired again to be used; if it is shared with you, only your
access goes. Its sessions end. You are asked to type the device's UID to
confirm (--yes skips that; without a terminal --yes is required).`,
	examples: []string{"blindctl device remove warp2-AbCd", "blindctl device remove dev_8d0k2m --yes"},
	setup: func(fs *flag.FlagSet) runFunc {
		yes := fs.Bool("yes", false, "do not ask for confirmation")
		return func(ctx context.Context, a *app, args []string) error { return a.deviceRemove(ctx, args[0], *yes) }
	},
}

func (a *app) deviceRemove(ctx context.Context, ref string, yes bool) error {
	if err := a.requireSession(); err != nil {
		return err
	}
	dev, err := a.findDevice(ctx, ref)
	if err != nil {
		return err
	}
	owner := dev.Role == apiclient.RoleOwner
	if !yes {
		if owner {
			a.warnf("This removes the device %s (%s) for everyone it is shared with.\nIt must be paired again to be used.\n", dev.UID, dev.ID)
		} else {
			a.warnf("This removes your access to the device %s (%s); its owner keeps it.\n", dev.UID, dev.ID)
		}
	}
	if err := a.confirm("Type the device's UID to confirm: ", dev.UID, yes); err != nil {
		return err
	}
	if err := a.client.DeleteDevice(ctx, dev.ID); err != nil {
		return err
	}
	if owner {
		a.printf("Device %s removed.\n", dev.UID)
	} else {
		a.printf("Your access to device %s removed.\n", dev.UID)
	}
	return nil
}
