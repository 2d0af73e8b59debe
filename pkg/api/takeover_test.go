package api

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestTunnelTakeover checks that a session asking for a key slot by index
// that the same user's older session holds takes the slot over: the older
// WebSocket is closed with StatusReplaced, the newer one carries the
// session, and the slot is freed once, when the newer one ends.
func TestTunnelTakeover(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.newUser(t, "alice@example.org")
	_, id := e.pairNew(t, alice, "warp2-AbCd")

	old, h := e.openTunnel(t, alice.token, id, "?slot=2")
	if h.Slot != 2 {
		t.Fatalf("slot %d, want 2", h.Slot)
	}
	e.nextSession(t)

	start := time.Now()
	cur, h := e.openTunnel(t, alice.token, id, "?slot=2")
	if h.Slot != 2 {
		t.Fatalf("slot %d after the takeover, want 2", h.Slot)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("takeover took %s", d)
	}
	e.nextSession(t)
	_, _, err := old.Read(t.Context())
	if ce, ok := errors.AsType[websocket.CloseError](err); !ok || ce.Code != StatusReplaced || ce.Reason != "replaced" {
		t.Fatalf("old session: %v, want close %d replaced", err, StatusReplaced)
	}
	select {
	case <-e.tunnels.ended: // the old session's Serve returned
	case <-time.After(10 * time.Second):
		t.Fatal("the old session's Serve did not return")
	}

	datagram := bytes.Repeat([]byte{4, 0, 0, 0}, 8)
	if err := cur.Write(t.Context(), websocket.MessageBinary, datagram); err != nil {
		t.Fatal(err)
	}
	if _, b, err := cur.Read(t.Context()); err != nil || !bytes.Equal(b, datagram) {
		t.Fatalf("new session: %v", err)
	}
	var dj deviceJSON
	e.do("GET", "/api/v1/devices/"+id, nil, bearer(alice.token)).want(t, 200).decode(t, &dj)
	if dj.SlotsBusy != 1 {
		t.Errorf("slots busy %d after the takeover, want 1", dj.SlotsBusy)
	}

	// Without an index, a session never takes a slot: it gets a free one,
	// and none once all are busy.
	for _, want := range []int{0, 1, 3} {
		if _, h := e.openTunnel(t, alice.token, id, ""); h.Slot != want {
			t.Errorf("slot %d, want %d", h.Slot, want)
		}
	}
	_, resp, err := e.dialTunnel(t, alice.token, id, "", nil)
	wantTunnelError(t, resp, err, 409, "all_slots_busy")

	// The newer session's end frees the slot (the older one's did not).
	if err := cur.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatal(err)
	}
	e.waitReleased(t, id, 2)
	if _, h := e.openTunnel(t, alice.token, id, ""); h.Slot != 2 {
		t.Errorf("slot %d, want the freed 2", h.Slot)
	}
}

// TestLeasesTakeover checks the lease table's rules directly, including a
// takeover of a session that has not upgraded yet.
func TestLeasesTakeover(t *testing.T) {
	t.Parallel()
	l := newLeases()
	var freed []int
	l.releasedForTest = func(_ string, i int) { freed = append(freed, i) }
	noop := func() {}
	cancelled := false

	i, first, releaseFirst, err := l.acquire("dev", "alice", []int{0, 1}, 1, func() { cancelled = true })
	if err != nil || i != 1 {
		t.Fatalf("acquire: %d, %v", i, err)
	}
	// Another user never takes a slot (indexes are per device, so this
	// only guards the table's own rule).
	if _, _, _, err := l.acquire("dev", "bob", []int{1}, 1, noop); !errors.Is(err, errSlotBusy) {
		t.Fatalf("bob's acquire: %v, want errSlotBusy", err)
	}
	// Alice takes it over before the first session upgraded.
	i, second, releaseSecond, err := l.acquire("dev", "alice", []int{0, 1}, 1, noop)
	if err != nil || i != 1 {
		t.Fatalf("takeover: %d, %v", i, err)
	}
	if cancelled {
		t.Error("a session that has not upgraded was cancelled; it must learn it in attach")
	}
	if l.attach(first, nil) {
		t.Error("attach of the replaced lease succeeded")
	}
	if !l.attach(second, nil) {
		t.Error("attach of the new lease failed")
	}
	releaseFirst()
	if !l.isBusy("dev", 1) || len(freed) != 0 {
		t.Fatalf("the replaced session's release freed the new lease (freed %v)", freed)
	}
	// Any free slot: 0; then none.
	if i, _, _, err := l.acquire("dev", "alice", []int{0, 1}, -1, noop); err != nil || i != 0 {
		t.Fatalf("acquire any: %d, %v", i, err)
	}
	if _, _, _, err := l.acquire("dev", "alice", []int{0, 1}, -1, noop); !errors.Is(err, errAllSlotsBusy) {
		t.Fatalf("acquire any: %v, want errAllSlotsBusy", err)
	}
	releaseSecond()
	releaseSecond()
	if l.isBusy("dev", 1) || len(freed) != 1 || freed[0] != 1 {
		t.Fatalf("after the new session's release: busy %v, freed %v", l.isBusy("dev", 1), freed)
	}
}
