package api

import (
	"context"
	"sync"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// Errors of a lease that cannot be had.
var (
	errAllSlotsBusy = account.Errorf(account.CodeAllSlotsBusy,
		"All your key slots on this device are in use. Close another session (a tab, a blindctl connect) and try again.")
	errSlotBusy = account.Errorf(account.CodeSlotBusy, "This key slot is in use by another session.")
	errNoSlots  = account.Errorf(account.CodeAllSlotsBusy, "You have no key slots on this device.")
)

// slotID names one key slot: slot indexes are unique per device, across
// its users.
type slotID struct {
	device string
	index  int
}

// lease is one key slot held by one tunnel session.
type lease struct {
	user   string
	cancel context.CancelFunc // ends the session's context
}

// leases is this node's table of key slots in use: one tunnel session per
// slot, held from before the WebSocket upgrade until the session ends. It
// lives in memory only; another node of a cluster has its own (a session
// is served by the node that holds the device's management tunnel).
type leases struct {
	mu   sync.Mutex
	held map[slotID]lease // guarded by mu

	// releasedForTest, if not nil, is called after a lease is freed, without
	// mu held. Tests set it before the first acquire, to wait for a
	// session's end without polling.
	releasedForTest func(device string, index int)
}

func newLeases() *leases { return &leases{held: map[slotID]lease{}} }

// acquire leases a slot of the device for user: want if want >= 0 (it must
// be in slots), else the free one with the lowest index among slots, the
// user's slot indexes. cancel ends the session that holds the lease (see
// cancelDevice). It returns the leased index and the function that frees
// it, which may be called more than once.
func (l *leases) acquire(device, user string, slots []int, want int, cancel context.CancelFunc) (int, func(), error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	pick := -1
	switch {
	case len(slots) == 0:
		return 0, nil, errNoSlots
	case want >= 0:
		if _, busy := l.held[slotID{device, want}]; busy {
			return 0, nil, errSlotBusy
		}
		pick = want
	default:
		for _, i := range slots {
			if _, busy := l.held[slotID{device, i}]; !busy && (pick < 0 || i < pick) {
				pick = i
			}
		}
		if pick < 0 {
			return 0, nil, errAllSlotsBusy
		}
	}
	id := slotID{device, pick}
	l.held[id] = lease{user: user, cancel: cancel}
	var once sync.Once
	return pick, func() {
		once.Do(func() {
			l.mu.Lock()
			delete(l.held, id)
			l.mu.Unlock()
			if l.releasedForTest != nil {
				l.releasedForTest(id.device, id.index)
			}
		})
	}, nil
}

// busy returns how many of the device's slot indexes are leased.
func (l *leases) busy(device string, slots []int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, i := range slots {
		if _, ok := l.held[slotID{device, i}]; ok {
			n++
		}
	}
	return n
}

// isBusy reports whether the device's slot index is leased.
func (l *leases) isBusy(device string, index int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.held[slotID{device, index}]
	return ok
}

// cancel ends the sessions on the device, of user only if user is not "".
// The leases go when the sessions' handlers return.
func (l *leases) cancel(device, user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, ls := range l.held {
		if id.device == device && (user == "" || ls.user == user) {
			ls.cancel()
		}
	}
}
