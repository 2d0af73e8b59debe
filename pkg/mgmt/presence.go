package mgmt

import (
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// allowSend applies the relay's sending rules to the datagram b that
// wireguard-go wants to send to e, and learns from it (see endpoint).
//
// wireguard-go sends to a peer's endpoint, which it only ever takes from a
// packet it authenticated (the relay configures none), except for a cookie
// reply, which answers a handshake it has not authenticated yet. So:
//
//   - Types 1, 2 and 4 go out, and prove that the device e.peer was at
//     e.addr when e.rx's datagram arrived: a response (2) follows an
//     initiation wireguard-go verified, a transport message (4) goes where
//     the last verified packet came from (which is how a device's roaming is
//     noticed). A response and a relay-initiated handshake also carry a new
//     index of the relay's, which is recorded for the device's answers.
//   - A cookie reply (3) goes out only to the address the device is already
//     known at; otherwise it is dropped, as is anything for an endpoint that
//     names no peer. The relay sends nothing to an address it did not learn
//     from an authenticated packet.
//   - The provisional endpoint of a re-handshake carries one initiation
//     and proves nothing (allowRehandshake).
func (m *Mgmt) allowSend(b []byte, e *endpoint) bool {
	if e.reh != nil {
		return m.allowRehandshake(b, e)
	}
	p := e.peer
	if p == nil || e.rx.IsZero() || len(b) < wire.MessageTransportHeaderSize {
		m.stats.drop(idxUnauthenticated)
		return false
	}
	switch b[0] {
	case wire.MessageInitiationType:
		m.recordIndex(p, binary.LittleEndian.Uint32(b[4:8]))
	case wire.MessageResponseType:
		m.recordIndex(p, binary.LittleEndian.Uint32(b[4:8]))
		m.stats.handshakes.Add(1)
	case wire.MessageTransportType:
	case wire.MessageCookieReplyType:
		m.mu.RLock()
		known := !p.evicted && p.online && p.endpoint == e.addr
		m.mu.RUnlock()
		if !known {
			m.stats.drop(idxUnauthenticated)
		}
		return known
	default:
		m.stats.drop(idxUnauthenticated)
		return false
	}
	m.authenticated(p, e.addr, e.rx)
	return true
}

// authenticated records that the relay's wireguard-go authenticated a
// datagram from the device p at addr, received at rx: the device is online
// there. A new address reaches the relay's endpoint table and the store.
func (m *Mgmt) authenticated(p *peer, addr netip.AddrPort, rx time.Time) {
	p.noteAuth(rx)
	m.mu.RLock()
	same := p.evicted || (p.online && p.endpoint == addr)
	m.mu.RUnlock()
	if same {
		return
	}
	now := m.now()
	if now.Sub(rx) >= m.offlineAfter {
		return // old news: it proves nothing about now
	}
	m.outMu.Lock()
	defer m.outMu.Unlock()
	m.mu.Lock()
	if p.evicted || (p.online && rx.Before(p.endpointAt)) {
		m.mu.Unlock()
		return // gone, or a proof older than the one we hold
	}
	wasOnline, moved := p.online, p.endpoint != addr
	p.online, p.endpoint, p.endpointAt = true, addr, rx
	m.mu.Unlock()
	if wasOnline && !moved {
		return
	}
	m.endpoints.SetDeviceEndpoint(p.id, addr)
	m.reportOnline(p, addr, now)
	if !wasOnline {
		m.reh.confirm(p.id)
		m.log.Info("mgmt: device online", "device_id", p.id, "remote_addr", addr)
	} else {
		m.log.Info("mgmt: device moved", "device_id", p.id, "remote_addr", addr)
	}
}

// noteTunnelPacket records an IP packet that wireguard-go decrypted and
// checked against the allowed IPs, from the management address src.
func (m *Mgmt) noteTunnelPacket(src netip.Addr) {
	m.mu.RLock()
	p := m.byAddr[src]
	m.mu.RUnlock()
	if p != nil {
		p.noteAuth(m.now())
	}
}

// sweepInterval is how often sweep runs.
func (m *Mgmt) sweepInterval() time.Duration {
	return min(max(min(m.offlineAfter, m.idleTimeout)/8, 10*time.Millisecond), 5*time.Second)
}

// sweep takes devices offline and removes idle peers, probes devices that
// have been quiet for a while, and cleans the caches.
//
// Probing: the relay sees a device's authenticated traffic only when it
// sends to the device itself (allowSend) or an IP packet comes out of the
// tunnel (noteTunnelPacket); the device's keepalives alone show neither.
// So a device quiet for a third of OfflineAfter gets an ICMPv6 echo
// request to its management address, which every WireGuard interface with
// that address answers; both the request's encryption and the reply then
// refresh its state. Going offline removes the peer: wireguard-go would
// otherwise keep trying to reach a device that is gone, and the device's
// next handshake loads it again.
func (m *Mgmt) sweep(now time.Time, ping *netstack.PingConn, seq *uint16) {
	type removal struct {
		p   *peer
		why string
	}
	var gone []removal
	var probe []*peer
	probeAfter := m.offlineAfter / 3
	m.mu.Lock()
	for _, p := range m.byKey {
		idle := now.Sub(p.idleSince())
		switch {
		case p.online && idle >= m.offlineAfter:
			gone = append(gone, removal{p, "no authenticated traffic"})
		case idle >= m.idleTimeout:
			gone = append(gone, removal{p, "idle"})
		case p.online && idle >= probeAfter && now.Sub(p.lastProbe) >= probeAfter/2:
			p.lastProbe = now
			probe = append(probe, p)
		}
	}
	for k, until := range m.negative {
		if !now.Before(until) {
			delete(m.negative, k)
		}
	}
	m.mu.Unlock()
	for _, r := range gone {
		m.evict(r.p, r.why)
	}
	for _, p := range probe {
		*seq++
		m.probe(ping, p, *seq)
	}
	m.refreshPresence(now)
	m.limiter.gc(now)
	m.gcRehandshakes(now)
}

// probe sends an ICMPv6 echo request to p's management address.
func (m *Mgmt) probe(ping *netstack.PingConn, p *peer, seq uint16) {
	if ping == nil {
		return
	}
	// Type, code, checksum and identifier are filled in by the stack.
	msg := []byte{128, 0, 0, 0, 0, 0, byte(seq >> 8), byte(seq), 'b', 'r', 'm', 'g', 'm', 't', 0, 0}
	if _, err := ping.WriteTo(msg, netstack.PingAddrFromAddr(p.mgmtAddr)); err != nil {
		m.log.Debug("mgmt: probe failed", "device_id", p.id, "err", err)
		return
	}
	m.stats.probes.Add(1)
}

// drainPings reads and discards echo replies until ping is closed; the
// replies themselves were noted on their way through the tunnel.
func drainPings(ctx context.Context, ping *netstack.PingConn) {
	buf := make([]byte, 256)
	for {
		if _, _, err := ping.ReadFrom(buf); err != nil {
			if ctx.Err() != nil {
				return
			}
			time.Sleep(10 * time.Millisecond) // a transient error; do not spin
		}
	}
}

// presenceUpdate is one pending store write.
type presenceUpdate struct {
	endpoint netip.AddrPort
	online   bool
	at       time.Time
}

// presenceQueue hands presence changes from the packet path to a writer
// goroutine, coalesced per device (only the latest state is written), so
// that the store never stalls wireguard-go and its size is bounded by the
// number of devices.
type presenceQueue struct {
	mu      sync.Mutex
	pending map[string]presenceUpdate // guarded by mu
	wake    chan struct{}
}

func newPresenceQueue() presenceQueue {
	return presenceQueue{pending: make(map[string]presenceUpdate), wake: make(chan struct{}, 1)}
}

// report queues the device's presence.
func (q *presenceQueue) report(deviceID string, ep netip.AddrPort, online bool, at time.Time) {
	q.mu.Lock()
	q.pending[deviceID] = presenceUpdate{endpoint: ep, online: online, at: at}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take returns and clears the pending updates.
func (q *presenceQueue) take() map[string]presenceUpdate {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return nil
	}
	out := q.pending
	q.pending = make(map[string]presenceUpdate)
	return out
}

// presenceLoop writes queued presence changes to the store until ctx ends.
// A device the store no longer knows (deleted while online) is removed.
func (m *Mgmt) presenceLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.presence.wake:
		}
		for id, u := range m.presence.take() {
			err := m.store.SetPresence(ctx, id, u.endpoint, u.online, m.node, u.at)
			switch {
			case err == nil:
			case errors.Is(err, keystore.ErrDeviceNotFound):
				m.mu.RLock()
				p := m.byID[id]
				m.mu.RUnlock()
				if p != nil {
					m.evict(p, "device deleted")
				}
			case ctx.Err() != nil:
				return
			default:
				if m.storeLogs.allow() {
					m.log.Warn("mgmt: cannot record presence", "device_id", id, "err", err)
				}
			}
		}
	}
}

// reportOnline queues the store write that p is online at addr, and
// schedules its refresh: while a device stays online, its presence is
// written again every presenceRefresh (less up to a quarter, so that
// devices that came online together spread their writes), which keeps its
// LastSeenAt within RehandshakeMaxAge. Call it with outMu held.
func (m *Mgmt) reportOnline(p *peer, addr netip.AddrPort, now time.Time) {
	m.mu.Lock()
	p.refreshAt = now.Add(presenceRefresh - rand.N(presenceRefresh/4))
	m.mu.Unlock()
	m.presence.report(p.id, addr, true, now)
}

// refreshPresence writes the presence of the online devices whose refresh
// is due at now again, if they had authenticated traffic recently (within
// a third of OfflineAfter, when probing starts): a device that may have
// gone elsewhere is not claimed for this node again.
func (m *Mgmt) refreshPresence(now time.Time) {
	type due struct {
		p  *peer
		ep netip.AddrPort
	}
	var refresh []due
	m.outMu.Lock()
	defer m.outMu.Unlock()
	m.mu.RLock()
	for _, p := range m.byKey {
		if p.online && !now.Before(p.refreshAt) && now.Sub(p.idleSince()) < m.offlineAfter/3 {
			refresh = append(refresh, due{p, p.endpoint})
		}
	}
	m.mu.RUnlock()
	for _, d := range refresh {
		m.reportOnline(d.p, d.ep, now)
	}
}
