package mgmt

import (
	"context"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// wakeWithin bounds how long an idle device may take to come online after
// Wake, once the relay restarted.
const wakeWithin = 3 * time.Second

// TestWakeIdleAfterRestart: after a relay restart, a device that sends
// nothing (a PersistentKeepalive of 25 s, no traffic of its own: real
// wireguard-go with the standard UDP bind) is brought online by Wake within
// wakeWithin, through one initiation of the relay's, long before its next
// keepalive would have started a re-handshake.
func TestWakeIdleAfterRestart(t *testing.T) {
	t.Parallel()
	// The device stays online before the restart however idle it is.
	h := newHarness(t, func(c *Config) { c.OfflineAfter = time.Minute })
	priv := newKey(t)
	dev := h.store.addDevice(t, priv)
	d := startDeviceKeepalive(t, priv, h.m.PublicKey(), h.addr, 25)
	eventually(t, "device online", func() bool { return h.m.Online(dev.ID) })
	eventually(t, "presence stored", func() bool { return h.store.device(t, dev.ID).LastEndpoint == d.addr() })
	if h.m.Wake(t.Context(), dev.ID) {
		t.Fatal("Wake of an online device started a wake")
	}
	inits := len(d.bind.initiations())
	// Idle: the keepalive that confirms the device's handshake has
	// arrived, and nothing follows.
	for received := h.m.Stats().Received; ; {
		time.Sleep(300 * time.Millisecond)
		now := h.m.Stats().Received
		if now == received {
			break
		}
		received = now
	}

	h.restart()
	if h.m.Online(dev.ID) {
		t.Fatal("online right after the restart")
	}
	start := time.Now()
	if !h.m.Wake(t.Context(), dev.ID) {
		t.Fatalf("Wake after the restart = false; stats %+v", h.m.Stats().Rehandshakes)
	}
	for !h.m.Online(dev.ID) {
		if time.Since(start) > wakeWithin {
			t.Fatalf("idle device not online %v after Wake; stats %+v", wakeWithin, h.m.Stats())
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("online again %v after Wake", time.Since(start).Round(time.Millisecond))

	if n := len(d.bind.initiations()); n != inits {
		t.Errorf("the device sent %d initiations after the restart, want none", n-inits)
	}
	calls := h.endpoints.all()
	if len(calls) != 1 || calls[0].id != dev.ID || calls[0].ep != d.addr() {
		t.Fatalf("endpoint calls = %+v, want one SetDeviceEndpoint(%s, %s)", calls, dev.ID, d.addr())
	}
	eventually(t, "re-handshake confirmed", func() bool { return h.m.Stats().Rehandshakes.Confirmed == 1 })
	if got := h.m.Stats().Drops[DropUnknownIndex]; got != 0 {
		t.Errorf("%d datagrams of the old session reached the new relay: the device was not idle", got)
	}
	rs := h.m.Stats().Rehandshakes
	if rs.Wakes != 1 || rs.WakesStarted != 1 || rs.Started != 1 || rs.Sent != 1 {
		t.Fatalf("rehandshake stats %+v, want one wake started, sent and confirmed", rs)
	}
	// Online now: nothing more to do.
	if h.m.Wake(t.Context(), dev.ID) {
		t.Fatal("Wake of a device online again started a wake")
	}
}

// TestWakeRefused: Wake of a device that is unknown, was never seen or
// was seen too long ago returns false and sends nothing.
func TestWakeRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	never := h.store.addDevice(t, newKey(t))
	stale := h.store.addDevice(t, newKey(t))
	p := newUDPPeer(t) // where the stale device was
	seen := time.Now().Add(-RehandshakeMaxAge - time.Minute)
	if err := h.store.SetPresence(t.Context(), stale.ID, p.addr, true, "node-test", seen); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"d-unknown", never.ID, stale.ID, ""} {
		if h.m.Wake(t.Context(), id) {
			t.Errorf("Wake(%q) = true, want false", id)
		}
	}
	p.expectSilence(t, 300*time.Millisecond)
	st := h.m.Stats()
	rs := st.Rehandshakes
	if st.PeerLoads != 0 || st.Sent != 0 || rs.Started != 0 || rs.NotStored != 2 || rs.Stale != 1 {
		t.Fatalf("stats %+v: want nothing loaded or sent, two devices not stored and one stale", st)
	}

	// A device is looked up once per wakeInterval, whoever asks.
	lookups := h.store.idLookups.Load()
	for range 10 {
		if h.m.Wake(t.Context(), stale.ID) {
			t.Fatal("Wake of a stale device = true")
		}
	}
	if n := h.store.idLookups.Load() - lookups; n != 0 {
		t.Fatalf("%d store lookups within the wake interval, want none", n)
	}
}

// TestWakeOnce: a device that does not answer (its recent stored endpoint
// is a socket that reads only) gets one handshake initiation from any
// number of wakes within the re-handshake window; the wakes after the
// first report the pending one.
func TestWakeOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.IdlePeerTimeout = time.Minute })
	priv := newKey(t)
	dev := h.store.addDevice(t, priv)
	p := newUDPPeer(t)
	if err := h.store.SetPresence(t.Context(), dev.ID, p.addr, true, "node-test", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if !h.m.Wake(context.Background(), dev.ID) {
			t.Fatalf("Wake #%d = false, want true (started or pending)", i)
		}
	}
	init := p.next(t, waitFor)
	devMac1 := wire.NewMac1Key(priv.Public())
	if len(init) != wire.MessageInitiationSize || init[0] != wire.MessageInitiationType || !devMac1.Valid(init) {
		t.Fatalf("sent %d bytes of type %d, want a handshake initiation for the device", len(init), init[0])
	}
	if got := p.collect(t, time.Second); len(got) != 0 {
		t.Fatalf("the relay sent %d more datagrams, want none", len(got))
	}
	if rs := h.m.Stats().Rehandshakes; rs.Wakes != 1 || rs.WakesStarted != 1 || rs.Sent != 1 || h.store.idLookups.Load() != 1 {
		t.Fatalf("rehandshake stats %+v, %d lookups: want one wake, one lookup, one initiation", rs, h.store.idLookups.Load())
	}
	if h.m.Online(dev.ID) {
		t.Fatal("online: sending proves nothing")
	}
}
