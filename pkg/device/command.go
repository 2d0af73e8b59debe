package device

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// errAddUserUnavailable: add_user needs a way to upload the new user's
// sealed key slots to the relay, which protocol v1 and the API do not have
// yet. The command is valid, so it is acknowledged "failed" (the relay may
// send it again) and its counter is not spent.
var errAddUserUnavailable = errors.New("add_user: this device cannot upload key slots for a new user yet")

// handleCommand verifies and carries out an owner command, in the order of
// docs/protocol.md §5.4: the signature and fields (wire.VerifyCommand), then
// what needs the device's state (device id, counter), then the command.
// It returns the CommandAck to send.
func (d *Device) handleCommand(sc wire.SignedCommand, now time.Time) wire.CommandAck {
	d.mu.Lock()
	defer d.mu.Unlock()
	ack := wire.CommandAck{ID: sc.Command.ID}
	log := d.log.With("command_id", sc.Command.ID, "kind", sc.Command.Kind, "counter", sc.Command.Counter)
	answer := func(status string, err error) wire.CommandAck {
		ack.Status = status
		if err != nil {
			ack.Error = err.Error()
		}
		log.Info("owner command", "status", status, "error", ack.Error)
		return ack
	}

	st := d.st
	cmd, err := wire.VerifyCommand(st.Owner.SignPublicKey, sc, now)
	switch {
	case errors.Is(err, wire.ErrUnsupportedCommand):
		return answer(wire.AckUnsupported, err)
	case err != nil:
		return answer(wire.AckRejected, err)
	case cmd.DeviceID != st.DeviceID:
		return answer(wire.AckRejected, fmt.Errorf("command for device %q, this is %q", cmd.DeviceID, st.DeviceID))
	}
	for _, r := range st.Recent {
		if r.ID == cmd.ID && r.Counter == cmd.Counter {
			return answer(wire.AckOK, nil) // sent again after a lost ack: done already
		}
	}
	if cmd.Counter <= st.Counter {
		return answer(wire.AckRejected, fmt.Errorf("counter %d is not above %d, the last accepted", cmd.Counter, st.Counter))
	}

	next := st.clone()
	var removed []slot
	switch cmd.Kind {
	case wire.CommandRemoveUser:
		if cmd.UserID == st.Owner.UserID {
			return answer(wire.AckRejected, errors.New("remove_user: the owner cannot be removed; delete the device instead"))
		}
		next.Slots = next.Slots[:0]
		for _, sl := range st.Slots {
			if sl.UserID == cmd.UserID {
				removed = append(removed, sl)
			} else {
				next.Slots = append(next.Slots, sl)
			}
		}
	case wire.CommandAddUser:
		return answer(wire.AckFailed, errAddUserUnavailable)
	default: // VerifyCommand let an unknown kind through: a newer wire package
		return answer(wire.AckUnsupported, fmt.Errorf("%w: kind %q", wire.ErrUnsupportedCommand, cmd.Kind))
	}

	next.Counter = cmd.Counter
	next.Recent = append(next.Recent, recentCommand{ID: cmd.ID, Counter: cmd.Counter})
	if n := len(next.Recent); n > maxRecentCommands {
		next.Recent = next.Recent[n-maxRecentCommands:]
	}
	if err := saveState(d.cfg.DataDir, next); err != nil {
		log.Error("save device state", "error", err)
		return answer(wire.AckFailed, errors.New("the device could not save its state"))
	}
	d.st = next
	d.removePeersLocked(removed)
	return answer(wire.AckOK, nil)
}

// removePeersLocked removes the slots' peers from the running interface.
// The caller holds d.mu.
func (d *Device) removePeersLocked(slots []slot) {
	if d.wg == nil || len(slots) == 0 {
		return
	}
	var b strings.Builder
	for _, sl := range slots {
		b.WriteString(removeUAPI(sl.PublicKey))
	}
	if err := d.wg.IpcSet(b.String()); err != nil {
		d.log.Warn("remove key slot peers", "error", err)
	}
}
