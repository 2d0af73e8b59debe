package mgmt

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// recoverWithin bounds how long a device may stay offline after the relay
// restarted, counted from when the new relay serves.
const recoverWithin = 5 * time.Second

// TestRestartRehandshake: the relay (relay.Server and Mgmt) stops and a new
// one starts on the same UDP port with the same key and store, as after a
// crash or an upgrade. The device, real wireguard-go with the standard UDP
// bind, does nothing special: it goes on sending in its old session, which
// the new relay cannot know. The relay answers the first such datagram
// from the device's stored endpoint with a handshake of its own, and the
// device is online again within recoverWithin, long before its own timers
// would start a handshake (15 s after unanswered data, up to two minutes
// for keepalives).
func TestRestartRehandshake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		keepalive int           // the device's PersistentKeepalive, seconds
		chatter   time.Duration // how often it sends a packet; 0: never
	}{
		// pkg/device: keepalive 25 s, and traffic of its own (the control
		// connection) in between.
		{"traffic", 25, 300 * time.Millisecond},
		// A stock WireGuard device with nothing to say: only its keepalives
		// reach the relay. The interval is short so that the test is quick;
		// with 25 s the device is back after its next keepalive.
		{"keepalives only", 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			priv := newKey(t)
			dev := h.store.addDevice(t, priv)
			d := startDeviceKeepalive(t, priv, h.m.PublicKey(), h.addr, tt.keepalive)
			eventually(t, "device online", func() bool { return h.m.Online(dev.ID) })
			eventually(t, "presence stored", func() bool { return h.store.device(t, dev.ID).LastEndpoint == d.addr() })
			if tt.chatter > 0 {
				d.chatter(t, tt.chatter)
			}
			inits := len(d.bind.initiations())

			down := time.Now()
			h.restart()
			serving := time.Now()
			for !h.m.Online(dev.ID) {
				if time.Since(serving) > recoverWithin {
					t.Fatalf("device not online %v after the restart; stats %+v", recoverWithin, h.m.Stats())
				}
				time.Sleep(time.Millisecond)
			}
			t.Logf("online again %v after the new relay served (%v after the old one began to stop)",
				time.Since(serving).Round(time.Millisecond), time.Since(down).Round(time.Millisecond))

			// The relay started the handshake: the device sent no
			// initiation of its own.
			if n := len(d.bind.initiations()); n != inits {
				t.Errorf("the device sent %d initiations after the restart, want none", n-inits)
			}
			// The endpoint reached the relay only after authentication,
			// and it is the device's.
			calls := h.endpoints.all()
			if len(calls) != 1 || calls[0].id != dev.ID || calls[0].ep != d.addr() {
				t.Fatalf("endpoint calls = %+v, want one SetDeviceEndpoint(%s, %s)", calls, dev.ID, d.addr())
			}
			eventually(t, "presence stored", func() bool {
				sd := h.store.device(t, dev.ID)
				return sd.Online && sd.LastEndpoint == d.addr() && sd.Node == "node-test"
			})
			eventually(t, "re-handshake confirmed", func() bool { return h.m.Stats().Rehandshakes.Confirmed == 1 })
			rs := h.m.Stats().Rehandshakes
			if rs.Started != 1 || rs.Sent != 1 || rs.NotStored != 0 || rs.Stale != 0 {
				t.Fatalf("rehandshake stats %+v, want one started, sent and confirmed", rs)
			}

			// A datagram of the old session still in flight finds the
			// device online: no second re-handshake, and later ones are
			// not even looked up.
			lookups := h.store.endpointLookups.Load()
			for range 3 {
				h.m.HandleMgmt(transport(rand.Uint32()), d.addr())
			}
			eventually(t, "old datagrams suppressed", func() bool { return h.m.Stats().Rehandshakes.Suppressed >= 3 })
			if rs := h.m.Stats().Rehandshakes; rs.Started != 1 || h.store.endpointLookups.Load() > lookups+1 {
				t.Fatalf("rehandshake stats %+v, %d lookups, after old datagrams of an online device",
					rs, h.store.endpointLookups.Load()-lookups)
			}
		})
	}
}

// next returns the next datagram that arrives at p within d.
func (p *udpPeer) next(t *testing.T, d time.Duration) []byte {
	t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 2048)
	n, _, err := p.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("nothing arrived: %v", err)
	}
	return buf[:n]
}

// collect returns what arrives at p within d.
func (p *udpPeer) collect(t *testing.T, d time.Duration) [][]byte {
	t.Helper()
	var got [][]byte
	deadline := time.Now().Add(d)
	buf := make([]byte, 2048)
	for {
		_ = p.c.SetReadDeadline(deadline)
		n, _, err := p.c.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return got
			}
			t.Fatal(err)
		}
		got = append(got, slices.Clone(buf[:n]))
	}
}

// TestRehandshakeNotStored: a datagram with an unknown index from an
// address that is no device's stored endpoint makes the relay send
// nothing; it is looked up once and then cached, and a flood from many
// ports of one address is held to the per-source rate.
func TestRehandshakeNotStored(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.store.addDevice(t, newKey(t)) // a device that was never seen
	p := newUDPPeer(t)
	for range 20 {
		p.send(t, h.addr, transport(rand.Uint32()))
	}
	eventually(t, "lookup", func() bool {
		rs := h.m.Stats().Rehandshakes
		return rs.NotStored == 1 && rs.Suppressed+rs.NotStored == h.m.Stats().Drops[DropUnknownIndex]
	})
	p.expectSilence(t, 300*time.Millisecond)
	if n := h.store.endpointLookups.Load(); n != 1 {
		t.Fatalf("%d store lookups, want 1 (a source is cached)", n)
	}

	// Many sources behind one address: the lookups stop at the burst
	// (plus what the rate refills meanwhile).
	start := time.Now()
	peers := make([]*udpPeer, 100)
	for i := range peers {
		peers[i] = newUDPPeer(t)
		peers[i].send(t, h.addr, transport(rand.Uint32()))
	}
	eventually(t, "all counted", func() bool {
		st := h.m.Stats()
		rs := st.Rehandshakes
		return st.Drops[DropUnknownIndex] == 120 && rs.Lookups+rs.Limited+rs.Suppressed == 120
	})
	rs := h.m.Stats().Rehandshakes
	maxLookups := 1 + rehandshakeSourceBurst + uint64(time.Since(start).Seconds()*rehandshakeSourceRate) + 1
	if rs.Lookups > maxLookups || rs.Limited == 0 {
		t.Fatalf("rehandshake stats %+v: want at most %d lookups, the rest limited", rs, maxLookups)
	}
	for _, q := range peers[:3] {
		q.expectSilence(t, 100*time.Millisecond)
	}
	if st := h.m.Stats(); st.PeerLoads != 0 || st.Rehandshakes.Started != 0 || st.Sent != 0 || len(h.endpoints.all()) != 0 {
		t.Fatalf("stats %+v, endpoint calls %v: want nothing loaded, sent or learned", st, h.endpoints.all())
	}
}

// TestRehandshakeStale: a stored endpoint the device was last seen at
// longer than RehandshakeMaxAge ago is not used.
func TestRehandshakeStale(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	dev := h.store.addDevice(t, newKey(t))
	p := newUDPPeer(t)
	seen := time.Now().Add(-RehandshakeMaxAge - time.Minute)
	if err := h.store.SetPresence(t.Context(), dev.ID, p.addr, false, "node-old", seen); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		p.send(t, h.addr, transport(rand.Uint32()))
	}
	eventually(t, "lookup", func() bool { return h.m.Stats().Rehandshakes.Stale == 1 })
	p.expectSilence(t, 300*time.Millisecond)
	if st := h.m.Stats(); st.PeerLoads != 0 || st.Rehandshakes.Started != 0 || st.Sent != 0 {
		t.Fatalf("stats %+v: want nothing loaded or sent", st)
	}
}

// TestRehandshakeFlood: a flood of datagrams with unknown indices from a
// device's stored endpoint (forged, say: no device answers here) makes the
// relay send one handshake initiation to that endpoint, for the device's
// key, and nothing else; the peer loaded for it is removed when the
// re-handshake expires unanswered.
func TestRehandshakeFlood(t *testing.T) {
	t.Parallel()
	// Idle peers stay long: the removal is the re-handshake's.
	h := newHarness(t, func(c *Config) { c.IdlePeerTimeout = time.Minute })
	priv := newKey(t)
	dev := h.store.addDevice(t, priv)
	p := newUDPPeer(t) // where the device was; nothing answers
	if err := h.store.SetPresence(t.Context(), dev.ID, p.addr, true, "node-test", time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	for range 2000 {
		p.send(t, h.addr, transport(rand.Uint32()))
	}
	init := p.next(t, waitFor)
	devMac1 := wire.NewMac1Key(priv.Public())
	if len(init) != wire.MessageInitiationSize || init[0] != wire.MessageInitiationType || !devMac1.Valid(init) {
		t.Fatalf("sent %d bytes of type %d, want a handshake initiation for the device", len(init), init[0])
	}

	// The initiation's index is one the relay expects an answer to; a
	// forged answer gets to wireguard-go, which rejects it.
	forged := make([]byte, wire.MessageResponseSize)
	forged[0] = wire.MessageResponseType
	binary.LittleEndian.PutUint32(forged[4:8], rand.Uint32())
	copy(forged[8:12], init[4:8])
	forged = withMac1(forged, h.m.PublicKey())
	received := h.m.Stats().Received
	eventually(t, "forged response handed to wireguard-go", func() bool {
		p.send(t, h.addr, forged) // again: the flood may still fill the relay's socket buffer
		return h.m.Stats().Received > received
	})

	// Nothing else, through wireguard-go's first retry (REKEY_TIMEOUT, 5 s,
	// plus jitter) and the re-handshake's expiry.
	if got := p.collect(t, rehandshakeWindow+1500*time.Millisecond); len(got) != 0 {
		t.Fatalf("the relay sent %d more datagrams to the stored endpoint, want none", len(got))
	}
	st := h.m.Stats()
	rs := st.Rehandshakes
	if rs.Lookups != 1 || rs.Started != 1 || rs.Sent != 1 || rs.Confirmed != 0 || h.store.endpointLookups.Load() != 1 {
		t.Fatalf("rehandshake stats %+v, %d store lookups; want one of each", rs, h.store.endpointLookups.Load())
	}
	if rs.Lookups+rs.Suppressed+rs.Limited != st.Drops[DropUnknownIndex] {
		t.Fatalf("rehandshake stats %+v do not add up to the %d unknown_index drops", rs, st.Drops[DropUnknownIndex])
	}
	eventually(t, "unanswered peer removed", func() bool {
		st := h.m.Stats()
		return st.PeersLoaded == 0 && st.PeerEvictions == 1
	})
	if h.m.Online(dev.ID) || len(h.endpoints.all()) != 0 {
		t.Fatalf("online %v, endpoint calls %v: sending proves nothing", h.m.Online(dev.ID), h.endpoints.all())
	}
}

// TestPresenceRefresh: an online device's presence is written again when
// its refresh is due, which keeps its LastSeenAt recent enough for a
// re-handshake after a restart however long it has been online.
func TestPresenceRefresh(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *Config) { c.OfflineAfter = 30 * time.Second })
	priv := newKey(t)
	dev := h.store.addDevice(t, priv)
	d := startDevice(t, priv, h.m.PublicKey(), h.addr)
	d.chatter(t, 100*time.Millisecond) // recent authenticated traffic
	eventually(t, "presence stored", func() bool { return h.store.device(t, dev.ID).Online })
	first := h.store.device(t, dev.ID).LastSeenAt

	h.m.mu.Lock()
	p := h.m.byID[dev.ID]
	if due := p.refreshAt.Sub(first); due < presenceRefresh*3/4-time.Second || due > presenceRefresh+time.Second {
		t.Errorf("refresh due %v after the device came online, want within [%v, %v]", due, presenceRefresh*3/4, presenceRefresh)
	}
	// Due a second from now: not yet for the sweep, which runs on the
	// real clock, but at the time given here.
	now := time.Now().Add(time.Second)
	p.refreshAt = now
	h.m.mu.Unlock()
	h.m.refreshPresence(now)
	eventually(t, "presence written again", func() bool {
		sd := h.store.device(t, dev.ID)
		return sd.LastSeenAt.Equal(now.UTC().Truncate(time.Microsecond)) && sd.Online && sd.LastEndpoint == d.addr()
	})
	h.m.mu.RLock()
	next := p.refreshAt
	h.m.mu.RUnlock()
	if !next.After(now.Add(presenceRefresh / 2)) {
		t.Errorf("next refresh at %v, want about %v later", next, presenceRefresh)
	}
}

// TestAllowRehandshake: the provisional endpoint of a re-handshake lets one
// handshake initiation out while the re-handshake is pending, and nothing
// else; sending it proves nothing about the device.
func TestAllowRehandshake(t *testing.T) {
	t.Parallel()
	m, r := newIdleMgmt(t, 4)
	if _, _, err := m.bind.Open(0); err != nil {
		t.Fatal(err)
	}
	defer m.bind.Close()
	now := time.Now()
	p := &peer{id: "d-1", loadedAt: now}
	m.byID[p.id] = p
	rh := &rehandshake{deviceID: p.id, until: now.Add(rehandshakeWindow)}
	m.reh.pending[p.id] = rh
	e := &endpoint{addr: netip.MustParseAddrPort("192.0.2.1:4000"), rx: now, peer: p, reh: rh}
	init := make([]byte, wire.MessageInitiationSize)
	init[0] = wire.MessageInitiationType
	binary.LittleEndian.PutUint32(init[4:8], 77)

	tests := []struct {
		name   string
		b      []byte
		before func()
		sent   bool
	}{
		{"transport first", transport(1), nil, false},
		{"initiation", init, nil, true},
		{"retry", init, nil, false},
		{"cookie reply", make([]byte, wire.MessageCookieReplySize), nil, false},
		{"another re-handshake's", init, func() {
			rh2 := &rehandshake{deviceID: p.id, until: now.Add(rehandshakeWindow)}
			m.reh.pending[p.id] = rh2
		}, false},
	}
	for _, tt := range tests {
		if tt.before != nil {
			tt.before()
		}
		writes, drops := r.writes.Load(), m.Stats().Drops[DropRehandshakeLimit]
		if err := m.bind.Send([][]byte{tt.b}, e); err != nil {
			t.Fatalf("%s: Send: %v", tt.name, err)
		}
		if sent := r.writes.Load() > writes; sent != tt.sent {
			t.Fatalf("%s: sent %v, want %v", tt.name, sent, tt.sent)
		}
		if !tt.sent && m.Stats().Drops[DropRehandshakeLimit] != drops+1 {
			t.Fatalf("%s: not counted as %s", tt.name, DropRehandshakeLimit)
		}
	}
	if m.byIndex[77] != p {
		t.Fatal("the initiation's index was not recorded for the device")
	}
	if p.online || r.endpoints.Load() != 0 || m.Stats().Rehandshakes.Sent != 1 {
		t.Fatalf("online %v, %d endpoint calls, stats %+v: want one initiation sent and nothing learned",
			p.online, r.endpoints.Load(), m.Stats().Rehandshakes)
	}

	// An expired re-handshake lets nothing out.
	rh3 := &rehandshake{deviceID: p.id, until: now.Add(-time.Millisecond)}
	m.reh.pending[p.id] = rh3
	e.reh = rh3
	writes := r.writes.Load()
	_ = m.bind.Send([][]byte{init}, e)
	if r.writes.Load() != writes {
		t.Fatal("an expired re-handshake sent its initiation")
	}
}
