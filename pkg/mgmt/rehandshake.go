package mgmt

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/device"

	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// Bounds of the relay-initiated re-handshake (see the package doc,
// "Re-handshake after a restart").
const (
	// RehandshakeMaxAge: a stored endpoint is used only if the device was
	// seen there (keystore.Device.LastSeenAt) at most this long ago.
	// An online device's presence is written again every presenceRefresh
	// (at most), so a device that was online when the relay stopped
	// qualifies for at least the next five minutes.
	RehandshakeMaxAge = 10 * time.Minute
	// rehandshakeWindow is the time a source is not looked up again after
	// a lookup, and the lifetime of a pending re-handshake, which sends
	// one initiation: at most one initiation per window and stored
	// endpoint. It is WireGuard's REKEY_TIMEOUT, the time wireguard-go
	// waits for a response before it retries.
	rehandshakeWindow = 5 * time.Second
	// rehandshakeRate and rehandshakeBurst bound the store lookups (and
	// so the initiations) of all sources together, per second.
	rehandshakeRate  = 500
	rehandshakeBurst = 1000
	// rehandshakeSourceRate and rehandshakeSourceBurst bound them per
	// source (an IPv4 address or IPv6 /64, as for initiations): devices
	// behind one NAT share it.
	rehandshakeSourceRate  = 20
	rehandshakeSourceBurst = 40
	// maxRehandshakeSources bounds the table of recently looked-up
	// sources, maxRehandshakePending the re-handshakes pending at once,
	// rehandshakeQueue the lookups waiting for a worker.
	maxRehandshakeSources = 1 << 16
	maxRehandshakePending = 1 << 14
	rehandshakeQueue      = 256
	// presenceRefresh is how often an online device's presence is
	// written again, so that its LastSeenAt stays within
	// RehandshakeMaxAge while it is online.
	presenceRefresh = RehandshakeMaxAge / 2
)

// rehandshake is one pending relay-initiated handshake with a device at
// its stored endpoint.
type rehandshake struct {
	deviceID string
	until    time.Time   // pending until then
	sent     atomic.Bool // its one initiation went out
}

// rehandshakes is the state of the re-handshake path.
type rehandshakes struct {
	perSource *limiter
	queue     chan netip.AddrPort // sources waiting for a lookup

	mu      sync.Mutex
	global  bucket                       // guarded by mu
	seen    map[netip.AddrPort]time.Time // source → not looked up again before; guarded by mu
	pending map[string]*rehandshake      // by device id; guarded by mu
	wakes   map[string]time.Time         // device id → not woken again before (Wake); guarded by mu

	lookups, started, sent, confirmed   atomic.Uint64
	wakeLookups, wakesStarted           atomic.Uint64
	notStored, stale, suppressed, limit atomic.Uint64
}

func newRehandshakes() rehandshakes {
	return rehandshakes{
		perSource: newLimiter(rehandshakeSourceRate, rehandshakeSourceBurst),
		queue:     make(chan netip.AddrPort, rehandshakeQueue),
		seen:      make(map[netip.AddrPort]time.Time),
		pending:   make(map[string]*rehandshake),
		wakes:     make(map[string]time.Time),
	}
}

// stats returns a snapshot of the counters.
func (r *rehandshakes) stats() RehandshakeStats {
	return RehandshakeStats{
		Lookups:      r.lookups.Load(),
		Started:      r.started.Load(),
		Sent:         r.sent.Load(),
		Confirmed:    r.confirmed.Load(),
		NotStored:    r.notStored.Load(),
		Stale:        r.stale.Load(),
		Suppressed:   r.suppressed.Load(),
		Limited:      r.limit.Load(),
		Wakes:        r.wakeLookups.Load(),
		WakesStarted: r.wakesStarted.Load(),
	}
}

// suppress keeps src from being looked up again before until.
func (r *rehandshakes) suppress(src netip.AddrPort, until time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.seen[src]; ok || len(r.seen) < maxRehandshakeSources {
		r.seen[src] = until
	}
}

// gc forgets sources and pending re-handshakes that expired at now. It
// returns the devices whose re-handshake expired unanswered.
func (r *rehandshakes) gc(now time.Time) (unanswered []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for src, until := range r.seen {
		if !now.Before(until) {
			delete(r.seen, src)
		}
	}
	for id, until := range r.wakes {
		if !now.Before(until) {
			delete(r.wakes, id)
		}
	}
	for id, rh := range r.pending {
		if !now.Before(rh.until) {
			delete(r.pending, id)
			unanswered = append(unanswered, id)
		}
	}
	r.perSource.gc(now)
	return unanswered
}

// gcRehandshakes expires re-handshakes (and the rest of their state) at
// now. The peer of a device that did not answer is removed if it is still
// offline: wireguard-go would otherwise go on making initiations to retry
// (every REKEY_TIMEOUT for up to 90 s), none of which may leave, and
// making one costs four X25519 operations.
func (m *Mgmt) gcRehandshakes(now time.Time) {
	for _, id := range m.reh.gc(now) {
		m.mu.RLock()
		p := m.byID[id]
		offline := p != nil && !p.online
		m.mu.RUnlock()
		if offline {
			m.evict(p, "re-handshake unanswered")
		}
	}
}

// confirm ends the device's pending re-handshake, if any: it came online
// (the authenticated path proved its endpoint).
func (r *rehandshakes) confirm(deviceID string) {
	r.mu.Lock()
	rh := r.pending[deviceID]
	delete(r.pending, deviceID)
	r.mu.Unlock()
	if rh != nil && rh.sent.Load() {
		r.confirmed.Add(1)
	}
}

// maybeRehandshake is called by HandleMgmt for a datagram from src whose
// receiver index names no handshake of the relay's: after a relay restart,
// a device still using its old session. Unless src was looked up within
// the window (or is known to be no endpoint), or its source or all sources
// together are over their rate, src is queued for a lookup
// (rehandshakeLoop). It never blocks.
func (m *Mgmt) maybeRehandshake(src netip.AddrPort, now time.Time) {
	r := &m.reh
	r.mu.Lock()
	if until, ok := r.seen[src]; ok && now.Before(until) {
		r.mu.Unlock()
		r.suppressed.Add(1)
		return
	}
	if len(r.seen) >= maxRehandshakeSources || !r.perSource.allow(src.Addr(), now) ||
		!r.global.take(now, time.Second/rehandshakeRate, rehandshakeBurst) {
		r.mu.Unlock()
		r.limit.Add(1)
		return
	}
	r.seen[src] = now.Add(rehandshakeWindow)
	r.mu.Unlock()
	select {
	case r.queue <- src:
	default:
		r.limit.Add(1)
	}
}

// rehandshakeLoop works on queued sources until ctx ends.
func (m *Mgmt) rehandshakeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case src := <-m.reh.queue:
			m.startRehandshake(ctx, src)
		}
	}
}

// startRehandshake looks src up among the devices' stored endpoints. If it
// is the endpoint a device was recently seen at, and the device is not
// online and has no re-handshake pending, the device's peer is loaded with
// src as a provisional endpoint (which lets exactly one initiation out,
// see allowRehandshake) and wireguard-go starts a handshake with it.
func (m *Mgmt) startRehandshake(ctx context.Context, src netip.AddrPort) {
	r := &m.reh
	now := m.now()
	r.lookups.Add(1)
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	dev, err := m.store.DeviceByEndpoint(lctx, src)
	cancel()
	switch {
	case errors.Is(err, keystore.ErrDeviceNotFound):
		r.notStored.Add(1)
		r.suppress(src, now.Add(negativeTTL))
		return
	case err != nil:
		if ctx.Err() == nil && m.storeLogs.allow() {
			m.log.Warn("mgmt: device lookup by endpoint failed", "err", err)
		}
		return // src stays suppressed for the window
	case dev.LastEndpoint != src:
		r.notStored.Add(1) // a store that does not keep its contract
		r.suppress(src, now.Add(negativeTTL))
		return
	case dev.LastSeenAt.IsZero() || now.Sub(dev.LastSeenAt) > RehandshakeMaxAge:
		r.stale.Add(1)
		r.suppress(src, now.Add(negativeTTL))
		return
	}
	key := wgkey.Public(dev.PublicKey)
	if m.onlineKey(key) {
		// A datagram of an old session (or of a browser session that
		// ended) from a device that is here: nothing to do.
		r.suppressed.Add(1)
		r.suppress(src, now.Add(negativeTTL))
		return
	}
	m.launchRehandshake(dev, key, src, now)
}

// onlineKey reports whether the device with key is loaded and online.
func (m *Mgmt) onlineKey(key wgkey.Public) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p := m.byKey[key]
	return p != nil && p.online
}

// launchResult is what launchRehandshake did.
type launchResult int

const (
	launchStarted launchResult = iota // started: the initiation is on its way
	launchPending                     // one was pending already
	launchFailed                      // nothing started (limit, error, eviction)
)

// launchRehandshake starts a re-handshake with dev (whose key is key) at
// its stored endpoint src, which the caller checked to be recent (at most
// RehandshakeMaxAge old), unless the device has one pending or too many
// are pending: the device's peer is loaded with src as a provisional
// endpoint (which lets exactly one initiation out, see allowRehandshake)
// and wireguard-go starts a handshake with it.
func (m *Mgmt) launchRehandshake(dev *keystore.Device, key wgkey.Public, src netip.AddrPort, now time.Time) launchResult {
	r := &m.reh
	rh := &rehandshake{deviceID: dev.ID, until: now.Add(rehandshakeWindow)}
	r.mu.Lock()
	if old := r.pending[dev.ID]; old != nil && now.Before(old.until) {
		r.mu.Unlock()
		r.suppressed.Add(1)
		return launchPending
	}
	if len(r.pending) >= maxRehandshakePending {
		r.mu.Unlock()
		r.limit.Add(1)
		return launchFailed
	}
	r.pending[dev.ID] = rh
	r.mu.Unlock()

	p, err := m.loadPeer(dev, key, now)
	if err != nil {
		if m.storeLogs.allow() {
			m.log.Warn("mgmt: cannot load peer for a re-handshake", "device_id", dev.ID, "err", err)
		}
		r.drop(rh)
		return launchFailed
	}
	// ipcMu keeps the peer from being removed (evict) until wireguard-go
	// has its endpoint and started the handshake; the initiation goes out
	// through Bind.Send, which does not take it.
	m.ipcMu.Lock()
	defer m.ipcMu.Unlock()
	var wp *device.Peer
	if m.dev != nil {
		wp = m.dev.LookupPeer(device.NoisePublicKey(key))
	}
	if wp == nil {
		r.drop(rh) // evicted meanwhile, or shutting down
		return launchFailed
	}
	m.mu.RLock()
	online := p.online
	m.mu.RUnlock()
	if online {
		// It came online meanwhile: its endpoint in wireguard-go is an
		// authenticated one, which the provisional one must not replace.
		r.drop(rh)
		return launchFailed
	}
	wp.SetEndpointFromPacket(&endpoint{addr: src, rx: now, peer: p, reh: rh})
	r.started.Add(1)
	m.log.Debug("mgmt: re-handshake with a device at its stored endpoint", "device_id", dev.ID)
	// A handshake wireguard-go sent within REKEY_TIMEOUT is not sent
	// again now; its retry timer then sends it, through the endpoint just
	// set.
	if err := wp.SendHandshakeInitiation(false); err != nil {
		m.log.Debug("mgmt: re-handshake initiation failed", "device_id", dev.ID, "err", err)
	}
	return launchStarted
}

// drop forgets rh if it is still the device's pending re-handshake.
func (r *rehandshakes) drop(rh *rehandshake) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending[rh.deviceID] == rh {
		delete(r.pending, rh.deviceID)
	}
}

// allowRehandshake applies the sending rules to b for the provisional
// endpoint e of a re-handshake: the one handshake initiation of a pending
// re-handshake goes out, and nothing else (no retry, no cookie reply, no
// transport message). The initiation's sender index is recorded so that
// the device's response reaches wireguard-go. Nothing is learned from
// sending it: the device's endpoint moves, and it comes online, only when
// its response has been authenticated (allowSend, then authenticated).
func (m *Mgmt) allowRehandshake(b []byte, e *endpoint) bool {
	rh := e.reh
	if e.peer == nil || len(b) != wire.MessageInitiationSize || b[0] != wire.MessageInitiationType {
		m.stats.drop(idxRehandshakeLimit)
		return false
	}
	m.reh.mu.Lock()
	live := m.reh.pending[rh.deviceID] == rh && m.now().Before(rh.until)
	m.reh.mu.Unlock()
	if !live || !rh.sent.CompareAndSwap(false, true) {
		m.stats.drop(idxRehandshakeLimit)
		return false
	}
	m.recordIndex(e.peer, binary.LittleEndian.Uint32(b[4:8]))
	m.reh.sent.Add(1)
	return true
}
