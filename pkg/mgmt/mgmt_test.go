package mgmt

import (
	"context"
	"crypto/ed25519"
	"errors"
	"net/netip"
	"runtime"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// TestDeviceLifecycle walks one device through the management tunnel with
// real wireguard-go on both ends, the real relay and a real SQLite store:
// lazy loading, endpoint learning, the control protocol, roaming and going
// offline.
func TestDeviceLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	priv := newKey(t)
	dev := h.store.addDevice(t, priv)

	if got := h.m.Stats().PeersLoaded; got != 0 {
		t.Fatalf("peers loaded before any handshake: %d, want 0 (lazy)", got)
	}

	d := startDevice(t, priv, h.m.PublicKey(), h.addr)
	eventually(t, "device online", func() bool { return h.m.Online(dev.ID) })

	// The endpoint reached the relay once, with the device's real address,
	// after a handshake the relay's wireguard-go completed.
	calls := h.endpoints.all()
	if len(calls) != 1 || calls[0].id != dev.ID || calls[0].ep != d.addr() {
		t.Fatalf("endpoint calls = %+v, want one SetDeviceEndpoint(%s, %s)", calls, dev.ID, d.addr())
	}
	if calls[0].handshakes == 0 {
		t.Fatal("SetDeviceEndpoint was called before the relay sent a handshake response")
	}
	st := h.m.Stats()
	if st.PeersLoaded != 1 || st.PeerLoads != 1 || st.Online != 1 {
		t.Fatalf("stats = %+v, want one peer loaded lazily and online", st)
	}
	eventually(t, "presence in the store", func() bool {
		sd := h.store.device(t, dev.ID)
		return sd.Online && sd.LastEndpoint == d.addr() && sd.Node == "node-test"
	})

	t.Run("control", func(t *testing.T) {
		cc := d.dialControl(t, wire.Hello{Version: 3, MinVersion: 1,
			Capabilities: []string{"future_thing", wire.CapabilityOwnerCommands}, Firmware: "warp2 2.6.1", UID: dev.UID})
		want := wire.HelloAck{Version: 1, Capabilities: []string{wire.CapabilityOwnerCommands}}
		if diff := cmp.Diff(want, cc.ack); diff != "" {
			t.Fatalf("HelloAck (-want +got):\n%s", diff)
		}
		eventually(t, "firmware recorded", func() bool {
			sd := h.store.device(t, dev.ID)
			return sd.Firmware == "warp2 2.6.1" && sd.ProtocolVersion == 1
		})
		eventually(t, "pings answered", func() bool { return cc.pings.Load() >= 2 })
		if got := h.m.Stats().Control; got != 1 {
			t.Fatalf("control connections = %d, want 1", got)
		}

		_, owner, _ := ed25519.GenerateKey(nil)
		sc := wire.SignCommand(owner, wire.Command{ID: "cmd-1", Kind: wire.CommandRemoveUser, DeviceID: dev.ID,
			UserID: "u-1", Counter: 1, Expires: time.Now().Add(time.Hour)})
		ctx, cancel := context.WithTimeout(t.Context(), waitFor)
		defer cancel()
		ack, err := h.m.SendCommand(ctx, dev.ID, sc)
		if err != nil || ack.ID != "cmd-1" || ack.Status != wire.AckOK {
			t.Fatalf("SendCommand = %+v, %v; want ok for cmd-1", ack, err)
		}
		if _, err := h.m.SendCommand(ctx, "d-nope", sc); !errors.Is(err, ErrNotConnected) {
			t.Fatalf("SendCommand to an unknown device: %v, want ErrNotConnected", err)
		}
	})

	t.Run("replayed and forged initiations", func(t *testing.T) {
		inits := d.bind.initiations()
		if len(inits) == 0 {
			t.Fatal("no initiation captured")
		}
		attacker := newUDPPeer(t)
		before := h.m.Stats()
		for _, init := range inits {
			attacker.send(t, h.addr, init)                                      // replayed verbatim
			attacker.send(t, h.addr, tamperedInitiation(init, h.m.PublicKey())) // forged timestamp, valid mac1
		}
		attacker.expectSilence(t, 500*time.Millisecond)
		for _, c := range h.endpoints.all() {
			if c.ep == attacker.addr {
				t.Fatalf("endpoint moved to the attacker: %+v", c)
			}
		}
		after := h.m.Stats()
		if after.Handshakes != before.Handshakes {
			t.Fatalf("handshakes %d -> %d after replays: the relay answered one", before.Handshakes, after.Handshakes)
		}
		// They reached wireguard-go (which rejected them), rather than
		// being dropped on the way.
		if diff := cmp.Diff(before.Drops, after.Drops); diff != "" {
			t.Fatalf("drops changed (-before +after):\n%s", diff)
		}
		if c, _ := h.endpoints.lastFor(dev.ID); c.ep != d.addr() {
			t.Fatalf("relay endpoint = %s, want %s", c.ep, d.addr())
		}
	})

	t.Run("roaming", func(t *testing.T) {
		old := d.addr()
		d.rebind(t)
		moved := d.addr()
		if moved == old {
			t.Fatal("the device did not move")
		}
		eventually(t, "endpoint follows the device", func() bool {
			c, ok := h.endpoints.lastFor(dev.ID)
			return ok && c.ep == moved
		})
		for _, c := range h.endpoints.all() {
			if c.ep.IsValid() && c.ep != old && c.ep != moved {
				t.Fatalf("SetDeviceEndpoint with an address the device never had: %+v", c)
			}
		}
		eventually(t, "store follows the device", func() bool {
			return h.store.device(t, dev.ID).LastEndpoint == moved
		})
	})

	t.Run("offline", func(t *testing.T) {
		d.stop()
		eventually(t, "device offline", func() bool { return !h.m.Online(dev.ID) })
		c, _ := h.endpoints.lastFor(dev.ID)
		if c.ep.IsValid() {
			t.Fatalf("last endpoint call = %+v, want ClearDevice", c)
		}
		if n := h.relay.Stats().Online; n != 0 {
			t.Fatalf("relay has %d devices with an endpoint, want 0", n)
		}
		st := h.m.Stats()
		if st.PeersLoaded != 0 || st.PeerEvictions != 1 || st.Online != 0 {
			t.Fatalf("stats = %+v, want the peer removed", st)
		}
		eventually(t, "offline in the store", func() bool { return !h.store.device(t, dev.ID).Online })
		if got := h.store.device(t, dev.ID).LastEndpoint; !got.IsValid() {
			t.Fatal("going offline erased the last endpoint")
		}
	})
}

// TestUnknownDevice: an initiation from a key no device has is dropped and
// counted, looked up once, and never answered.
func TestUnknownDevice(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stranger := newKey(t)
	init := captureInitiation(t, stranger, h.m.PublicKey())
	p := newUDPPeer(t)
	for range 5 {
		p.send(t, h.addr, init)
	}
	eventually(t, "unknown_device drops", func() bool { return h.m.Stats().Drops[DropUnknownDevice] == 5 })
	if n := h.store.lookups.Load(); n != 1 {
		t.Fatalf("store lookups = %d, want 1 (unknown keys are cached)", n)
	}
	p.expectSilence(t, 300*time.Millisecond)
	st := h.m.Stats()
	if st.PeersLoaded != 0 || st.PeerLoads != 0 || len(h.endpoints.all()) != 0 {
		t.Fatalf("stats = %+v, endpoint calls %v: want nothing loaded or learned", st, h.endpoints.all())
	}

	// A real wireguard-go device with that key gets nowhere either.
	d := startDevice(t, stranger, h.m.PublicKey(), h.addr)
	eventually(t, "its initiation dropped", func() bool {
		return len(d.bind.initiations()) > 0 && h.m.Stats().Drops[DropUnknownDevice] > 5
	})
	if len(h.endpoints.all()) != 0 {
		t.Fatalf("endpoint calls %v, want none", h.endpoints.all())
	}

	// Datagrams that are not for the relay's key or name none of its
	// handshakes are dropped before wireguard-go.
	other := captureInitiation(t, stranger, newKey(t).Public())
	p.send(t, h.addr, other)
	p.send(t, h.addr, transport(0xdeadbeef))
	p.send(t, h.addr, []byte{1, 2})
	eventually(t, "bad_mac1, unknown_index, too_short", func() bool {
		dr := h.m.Stats().Drops
		return dr[DropReason(wire.ErrBadMac1)] >= 1 && dr[DropUnknownIndex] >= 1
	})
}

// TestIdlePeerEviction: a peer loaded for an initiation that never
// completes (a forged one naming a registered device) is removed after
// IdlePeerTimeout, and nothing is learned from it.
func TestIdlePeerEviction(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.IdlePeerTimeout = time.Second })
	priv := newKey(t)
	dev := h.store.addDevice(t, priv)
	forged := tamperedInitiation(captureInitiation(t, priv, h.m.PublicKey()), h.m.PublicKey())
	p := newUDPPeer(t)
	p.send(t, h.addr, forged)
	eventually(t, "peer loaded", func() bool { return h.m.Stats().PeerLoads == 1 })
	eventually(t, "peer evicted", func() bool {
		st := h.m.Stats()
		return st.PeersLoaded == 0 && st.PeerEvictions == 1
	})
	if h.m.Online(dev.ID) || len(h.endpoints.all()) != 0 {
		t.Fatalf("online %v, endpoint calls %v after a forged initiation", h.m.Online(dev.ID), h.endpoints.all())
	}
	p.expectSilence(t, 200*time.Millisecond)

	// The real device still gets in afterwards: the peer is loaded again.
	d := startDevice(t, priv, h.m.PublicKey(), h.addr)
	eventually(t, "device online", func() bool { return h.m.Online(dev.ID) })
	if c, _ := h.endpoints.lastFor(dev.ID); c.ep != d.addr() {
		t.Fatalf("endpoint %s, want %s", c.ep, d.addr())
	}
}

// TestNoCommonVersion: a device whose control protocol range does not meet
// the relay's gets a HelloAck of version 0 and stays online.
func TestNoCommonVersion(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	priv := newKey(t)
	dev := h.store.addDevice(t, priv)
	d := startDevice(t, priv, h.m.PublicKey(), h.addr)
	eventually(t, "device online", func() bool { return h.m.Online(dev.ID) })
	cc := d.dialControl(t, wire.Hello{Version: 9, MinVersion: 7})
	if cc.ack.Version != 0 || cc.ack.Error == "" {
		t.Fatalf("HelloAck = %+v, want version 0 with an error", cc.ack)
	}
	eventually(t, "version 0 recorded", func() bool { return h.store.device(t, dev.ID).ProtocolVersion == 0 })
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	if _, err := h.m.SendCommand(ctx, dev.ID, wire.SignedCommand{}); !errors.Is(err, ErrNoOwnerCommands) {
		t.Fatalf("SendCommand: %v, want ErrNoOwnerCommands", err)
	}
	// Nothing is said on the control connection now, and the device's
	// keepalives alone do not show; the relay's probes keep it online
	// across more than OfflineAfter.
	probes := h.m.Stats().Probes
	eventually(t, "four more probes", func() bool { return h.m.Stats().Probes >= probes+4 })
	if !h.m.Online(dev.ID) || h.m.Stats().PeerEvictions != 0 {
		t.Fatal("device went offline")
	}
}

// TestRemoveDevice: a device deleted from the store is dropped at once when
// the server says so, and its key is unknown afterwards.
func TestRemoveDevice(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	priv := newKey(t)
	dev := h.store.addDevice(t, priv)
	d := startDevice(t, priv, h.m.PublicKey(), h.addr)
	eventually(t, "device online", func() bool { return h.m.Online(dev.ID) })
	d.dialControl(t, wire.Hello{Version: 1, MinVersion: 1})
	eventually(t, "control connected", func() bool { return h.m.Stats().Control == 1 })

	if err := h.store.sq.DeleteDevice(t.Context(), dev.ID); err != nil {
		t.Fatal(err)
	}
	h.m.RemoveDevice(dev.ID)
	if h.m.Online(dev.ID) {
		t.Fatal("online after RemoveDevice")
	}
	if c, _ := h.endpoints.lastFor(dev.ID); c.ep.IsValid() {
		t.Fatalf("last endpoint call %+v, want ClearDevice", c)
	}
	eventually(t, "control connection closed", func() bool { return h.m.Stats().Control == 0 })
	if st := h.m.Stats(); st.PeersLoaded != 0 {
		t.Fatalf("stats %+v, want no peer", st)
	}
	drops := h.m.Stats().Drops[DropUnknownDevice]
	newUDPPeer(t).send(t, h.addr, captureInitiation(t, priv, h.m.PublicKey()))
	eventually(t, "its key is unknown", func() bool { return h.m.Stats().Drops[DropUnknownDevice] > drops })
	h.m.RemoveDevice(dev.ID) // again: no error, nothing to do
}

// TestShutdown: when Run ends, online devices go offline in the relay and
// the store, and no goroutine of Run, wireguard-go or the netstack is left.
// Not parallel: it counts goroutines.
func TestShutdown(t *testing.T) {
	// Let anything started once per process (gVisor, wireguard-go) start
	// before counting.
	captureInitiation(t, newKey(t), newKey(t).Public())
	base := runtime.NumGoroutine()
	// Registered first, so it runs after every other cleanup (the store's
	// too).
	t.Cleanup(func() {
		eventually(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= base })
	})

	h := newHarness(t)
	priv := newKey(t)
	dev := h.store.addDevice(t, priv)
	d := startDevice(t, priv, h.m.PublicKey(), h.addr)
	eventually(t, "device online", func() bool { return h.m.Online(dev.ID) })
	d.dialControl(t, wire.Hello{Version: 1, MinVersion: 1})
	eventually(t, "control connected", func() bool { return h.m.Stats().Control == 1 })

	h.stop()
	if h.m.Online(dev.ID) {
		t.Fatal("online after Run returned")
	}
	if n := h.relay.Stats().Online; n != 0 {
		t.Fatalf("relay has %d devices with an endpoint after Run returned", n)
	}
	if h.store.device(t, dev.ID).Online {
		t.Fatal("store: online after Run returned")
	}
	if st := h.m.Stats(); st.PeersLoaded != 0 || st.Control != 0 {
		t.Fatalf("stats after Run returned: %+v", st)
	}
	before := h.m.Stats().Drops[DropNotRunning]
	h.m.HandleMgmt(transport(1), d.addr())
	if h.m.Stats().Drops[DropNotRunning] != before+1 {
		t.Fatal("HandleMgmt after Run: not counted as not_running")
	}
}

// TestRunTwice: Run is for one use.
func TestRunTwice(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	if err := h.m.Run(t.Context()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestNewValidates(t *testing.T) {
	t.Parallel()
	ok := Config{Private: newKey(t), Store: &fakeStore{}, Sender: &fakeRelay{}, Endpoints: &fakeRelay{}, Node: "n"}
	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no key", func(c *Config) { c.Private = [32]byte{} }},
		{"no store", func(c *Config) { c.Store = nil }},
		{"no sender", func(c *Config) { c.Sender = nil }},
		{"no endpoints", func(c *Config) { c.Endpoints = nil }},
		{"no node", func(c *Config) { c.Node = "" }},
		{"negative duration", func(c *Config) { c.OfflineAfter = -1 }},
		{"negative queue", func(c *Config) { c.QueueSize = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			if _, err := New(c); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	m, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	if m.idleTimeout != DefaultOfflineAfter || m.offlineAfter != DefaultOfflineAfter {
		t.Fatalf("defaults: idle %v, offline %v", m.idleTimeout, m.offlineAfter)
	}
}

// TestRunCancelledBeforeStart: a relay asked to stop while it is still
// starting (its context already ended) stops cleanly, not with the store's
// context error.
func TestRunCancelledBeforeStart(t *testing.T) {
	t.Parallel()
	store := newTestStore(t)
	m, err := New(Config{Private: newKey(t), Store: store, Sender: nopSender{}, Endpoints: &recordingEndpoints{}, Node: "n1", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := m.Run(ctx); err != nil {
		t.Fatalf("Run with an ended context = %v, want nil", err)
	}
}

// nopSender sends nothing.
type nopSender struct{}

func (nopSender) WriteTo([]byte, netip.AddrPort) error { return nil }
