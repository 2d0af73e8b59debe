package mgmt

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// maxIndices is how many of its own session indices the relay remembers per
// peer. wireguard-go holds at most a handshake and three keypairs per peer
// (previous, current, next); retried handshakes take new indices, hence
// the margin.
const maxIndices = 8

// peer is a device loaded as a wireguard-go peer.
type peer struct {
	id       string
	key      wgkey.Public
	mgmtAddr netip.Addr
	loadedAt time.Time

	// lastAuth is the time (UnixNano) of the device's last authenticated
	// traffic, zero if none since the peer was loaded. Atomic: the packet
	// path moves it forward without Mgmt.mu.
	lastAuth atomic.Int64

	// The fields below are guarded by Mgmt.mu.
	evicted    bool
	online     bool
	endpoint   netip.AddrPort // the last authenticated UDP address
	endpointAt time.Time      // when the datagram that proved it arrived
	lastProbe  time.Time
	refreshAt  time.Time          // when an online device's presence is written again
	indices    [maxIndices]uint32 // the relay's own indices of this peer's handshakes
	nextIndex  int
	control    *controlConn // the live control connection, if any
	conns      int          // open control connections, with or without a Hello
}

// noteAuth moves lastAuth forward to t.
func (p *peer) noteAuth(t time.Time) {
	n := t.UnixNano()
	for {
		old := p.lastAuth.Load()
		if n <= old || p.lastAuth.CompareAndSwap(old, n) {
			return
		}
	}
}

// idleSince returns when the peer last had authenticated traffic, or when it
// was loaded if that was later (a handshake proves the time its initiation
// arrived, which may be before the peer was loaded for it).
func (p *peer) idleSince() time.Time {
	if n := p.lastAuth.Load(); n != 0 {
		if t := time.Unix(0, n); t.After(p.loadedAt) {
			return t
		}
	}
	return p.loadedAt
}

// lookup is a device lookup in flight, which concurrent initiations with
// the same static key wait for instead of asking the store again.
type lookup struct {
	done chan struct{}
	p    *peer // set before done is closed
	drop int   // the drop reason index if p is nil
}

// peerFor returns the loaded peer for key, loading it from the store if
// needed. If there is none, it returns the drop reason index for the
// caller to count.
func (m *Mgmt) peerFor(ctx context.Context, key wgkey.Public) (*peer, int) {
	now := m.now()
	m.mu.Lock()
	p := m.byKey[key]
	until, negative := m.negative[key]
	l := m.lookups[key]
	if p == nil && l == nil && !(negative && now.Before(until)) {
		l = &lookup{done: make(chan struct{})}
		m.lookups[key] = l
		defer func() {
			m.mu.Lock()
			delete(m.lookups, key)
			m.mu.Unlock()
			close(l.done)
		}()
		m.mu.Unlock()
		l.p, l.drop = m.lookupAndLoad(ctx, key, now)
		return l.p, l.drop
	}
	m.mu.Unlock()
	switch {
	case p != nil:
		return p, -1
	case l == nil:
		return nil, idxUnknownDevice
	}
	select {
	case <-l.done:
		return l.p, l.drop
	case <-ctx.Done():
		return nil, idxNotRunning
	}
}

// lookupAndLoad asks the store for the device with key and loads its peer.
func (m *Mgmt) lookupAndLoad(ctx context.Context, key wgkey.Public, now time.Time) (*peer, int) {
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	dev, err := m.store.DeviceByPublicKey(lctx, key)
	cancel()
	switch {
	case errors.Is(err, keystore.ErrDeviceNotFound):
		m.rememberUnknown(key, now)
		return nil, idxUnknownDevice
	case err != nil:
		if ctx.Err() == nil && m.storeLogs.allow() {
			m.log.Warn("mgmt: device lookup failed", "peer", key, "err", err)
		}
		return nil, idxStoreError
	}
	p, err := m.loadPeer(dev, key, now)
	if err != nil {
		m.log.Warn("mgmt: cannot load peer", "device_id", dev.ID, "err", err)
		return nil, idxPeerLimit
	}
	return p, -1
}

// rememberUnknown caches that key belongs to no device, for negativeTTL.
func (m *Mgmt) rememberUnknown(key wgkey.Public, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.negative) >= maxNegative {
		for k, until := range m.negative {
			if !now.Before(until) {
				delete(m.negative, k)
			}
		}
		if len(m.negative) >= maxNegative {
			clear(m.negative)
		}
	}
	m.negative[key] = now.Add(negativeTTL)
}

// loadPeer adds the device as a wireguard-go peer: its public key and its
// management address as the only allowed IP, and no endpoint (wireguard-go
// learns that from the handshake it authenticates).
func (m *Mgmt) loadPeer(dev *keystore.Device, key wgkey.Public, now time.Time) (*peer, error) {
	m.ipcMu.Lock()
	defer m.ipcMu.Unlock()
	m.mu.RLock()
	p, n := m.byKey[key], len(m.byKey)
	m.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	if m.dev == nil {
		return nil, errors.New("not running")
	}
	if n >= m.maxPeers {
		return nil, fmt.Errorf("%d peers loaded", n)
	}
	addr := wire.MgmtAddr(key)
	if dev.MgmtAddr.IsValid() && dev.MgmtAddr != addr {
		m.log.Warn("mgmt: stored management address differs from the computed one; using the computed one",
			"device_id", dev.ID, "stored", dev.MgmtAddr, "computed", addr)
	}
	if err := m.dev.IpcSet("public_key=" + key.Hex() + "\nallowed_ip=" + netip.PrefixFrom(addr, 128).String() + "\n"); err != nil {
		return nil, fmt.Errorf("add peer: %w", err)
	}
	p = &peer{id: dev.ID, key: key, mgmtAddr: addr, loadedAt: now}
	m.mu.Lock()
	if old := m.byID[dev.ID]; old != nil && old.key != key {
		// The device's key changed under the same id: cannot happen with
		// the keystore (keys are immutable), so just keep the tables sane.
		delete(m.byID, dev.ID)
	}
	m.byKey[key] = p
	m.byID[dev.ID] = p
	m.byAddr[addr] = p
	m.mu.Unlock()
	m.stats.peerLoads.Add(1)
	m.log.Debug("mgmt: peer loaded", "device_id", p.id, "peer", key)
	return p, nil
}

// evict removes p from wireguard-go and the tables. If the device was
// online it goes offline: the relay forgets its endpoint and the store
// records it.
func (m *Mgmt) evict(p *peer, why string) {
	m.ipcMu.Lock()
	m.outMu.Lock()
	m.mu.Lock()
	if p.evicted {
		m.mu.Unlock()
		m.outMu.Unlock()
		m.ipcMu.Unlock()
		return
	}
	p.evicted = true
	wasOnline := p.online
	p.online = false
	ctl := p.control
	p.control = nil
	if m.byKey[p.key] == p {
		delete(m.byKey, p.key)
	}
	if m.byID[p.id] == p {
		delete(m.byID, p.id)
	}
	if m.byAddr[p.mgmtAddr] == p {
		delete(m.byAddr, p.mgmtAddr)
	}
	for _, idx := range p.indices {
		if m.byIndex[idx] == p {
			delete(m.byIndex, idx)
		}
	}
	m.mu.Unlock()
	m.stats.peerEvictions.Add(1)
	if wasOnline {
		m.endpoints.ClearDevice(p.id)
		m.presence.report(p.id, netip.AddrPort{}, false, m.now())
	}
	m.outMu.Unlock()
	if m.dev != nil {
		if err := m.dev.IpcSet("public_key=" + p.key.Hex() + "\nremove=true\n"); err != nil {
			m.log.Warn("mgmt: cannot remove peer", "device_id", p.id, "err", err)
		}
	}
	m.ipcMu.Unlock()
	if ctl != nil {
		ctl.close()
	}
	if wasOnline {
		m.log.Info("mgmt: device offline", "device_id", p.id, "reason", why)
	} else {
		m.log.Debug("mgmt: peer removed", "device_id", p.id, "reason", why)
	}
}

// RemoveDevice forgets a device that was deleted or unpaired: its peer
// leaves wireguard-go, its control connection ends and, if it was online,
// the relay forgets its endpoint. Its next handshake finds it unknown. A
// device that is not loaded is no error.
func (m *Mgmt) RemoveDevice(deviceID string) {
	m.mu.RLock()
	p := m.byID[deviceID]
	m.mu.RUnlock()
	if p != nil {
		m.evict(p, "device removed")
	}
}

// recordIndex remembers that the relay's session index idx belongs to p,
// so that the device's answers to it (types 2, 3, 4) are attributed to p.
// The relay's indices are unique within its wireguard-go, and the relay
// always sends one (Send) before a device can use it.
func (m *Mgmt) recordIndex(p *peer, idx uint32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if p.evicted {
		return
	}
	for _, have := range p.indices {
		if have == idx && m.byIndex[idx] == p {
			return
		}
	}
	if old := p.indices[p.nextIndex]; m.byIndex[old] == p {
		delete(m.byIndex, old)
	}
	p.indices[p.nextIndex] = idx
	p.nextIndex = (p.nextIndex + 1) % maxIndices
	m.byIndex[idx] = p
}
