package api

import (
	"context"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// Errors of a lease that cannot be had.
var (
	errAllSlotsBusy = account.Errorf(account.CodeAllSlotsBusy,
		"All your key slots on this device are in use. Close another session (a tab, a blindctl connect) and try again.")
	errSlotBusy = account.Errorf(account.CodeSlotBusy, "This key slot is in use by another session.")
	errNoSlots  = account.Errorf(account.CodeAllSlotsBusy, "You have no key slots on this device.")
)

// StatusReplaced is the WebSocket close status of a tunnel session whose
// key slot a newer session of the same user took over (reason
// "replaced"). A client must not redial after it: the slot is in use by
// its own newer session, which a redial would take back in turn.
const StatusReplaced websocket.StatusCode = 4001

// replacedReason is the close reason sent with StatusReplaced.
const replacedReason = "replaced"

// replaceWait bounds how long a session that takes a slot over waits for
// the old session's close handshake. The new session goes on after it in
// any case: it must not wait for a browser that stopped answering. By then
// the close frame is on its way (Close writes it before it waits), so a
// later drop of the old connection (pkg/relay's Accept drops a session of
// the same key slot) does not keep it from the old client.
const replaceWait = 250 * time.Millisecond

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

	// Both guarded by leases.mu.
	ws       *websocket.Conn // the session's WebSocket once upgraded (attach)
	replaced bool            // a newer session of the same user took the slot
}

// leases is this node's table of key slots in use: one tunnel session per
// slot, held from before the WebSocket upgrade until the session ends. It
// lives in memory only; another node of a cluster has its own (a session
// is served by the node that holds the device's management tunnel).
type leases struct {
	mu   sync.Mutex
	held map[slotID]*lease // guarded by mu

	// releasedForTest, if not nil, is called after a lease is freed, without
	// mu held. Tests set it before the first acquire, to wait for a
	// session's end without polling.
	releasedForTest func(device string, index int)
}

func newLeases() *leases { return &leases{held: map[slotID]*lease{}} }

// acquire leases a slot of the device for user: want if want >= 0 (it must
// be in slots), else the free one with the lowest index among slots, the
// user's slot indexes. cancel ends the session that holds the lease (see
// cancel). It returns the leased index, the lease (for attach) and the
// function that frees it, which may be called more than once.
//
// A slot asked for by index that an older session of the same user holds
// is taken over: the old session is closed with StatusReplaced (acquire
// waits up to replaceWait for its close handshake) and the slot is the new
// one's. This is how a client that lost its connection without noticing
// gets its slot back at once. A slot of another user is never taken.
func (l *leases) acquire(device, user string, slots []int, want int, cancel context.CancelFunc) (int, *lease, func(), error) {
	l.mu.Lock()
	pick := -1
	var old *lease
	switch {
	case len(slots) == 0:
		l.mu.Unlock()
		return 0, nil, nil, errNoSlots
	case want >= 0:
		if o := l.held[slotID{device, want}]; o != nil {
			if o.user != user {
				l.mu.Unlock()
				return 0, nil, nil, errSlotBusy
			}
			o.replaced = true
			old = o
		}
		pick = want
	default:
		for _, i := range slots {
			if _, busy := l.held[slotID{device, i}]; !busy && (pick < 0 || i < pick) {
				pick = i
			}
		}
		if pick < 0 {
			l.mu.Unlock()
			return 0, nil, nil, errAllSlotsBusy
		}
	}
	id := slotID{device, pick}
	ls := &lease{user: user, cancel: cancel}
	l.held[id] = ls
	var oldWS *websocket.Conn
	if old != nil {
		oldWS = old.ws
	}
	l.mu.Unlock()

	if oldWS != nil {
		select {
		case <-endReplaced(oldWS, old.cancel):
		case <-time.After(replaceWait):
		}
	}
	// An old session not upgraded yet sees replaced in attach.

	var once sync.Once
	return pick, ls, func() {
		once.Do(func() {
			l.mu.Lock()
			freed := l.held[id] == ls // else a newer session took it over
			if freed {
				delete(l.held, id)
			}
			l.mu.Unlock()
			if freed && l.releasedForTest != nil {
				l.releasedForTest(id.device, id.index)
			}
		})
	}, nil
}

// attach records the upgraded WebSocket of the session holding ls. It
// reports false if a newer session took the slot over meanwhile; the
// caller then ends the session (endReplaced).
func (l *leases) attach(ls *lease, ws *websocket.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ls.replaced {
		return false
	}
	ls.ws = ws
	return true
}

// endReplaced closes ws with StatusReplaced and then calls cancel, in the
// background; the returned channel is closed when both are done. The
// close handshake takes a round trip to the client, or up to 10 s (the
// WebSocket library's bound) with a client that stopped answering.
func endReplaced(ws *websocket.Conn, cancel context.CancelFunc) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ws.Close(StatusReplaced, replacedReason)
		cancel()
	}()
	return done
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
