package mgmt

import (
	"context"
	"net/netip"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// HandleMgmt takes one datagram the relay's demultiplexer did not give to a
// browser session (it implements relay.MgmtHandler). It never blocks and
// keeps no reference to b.
//
//   - A handshake initiation must carry a mac1 for the relay's key and come
//     from a source within its rate; it then waits in a bounded queue for a
//     worker that reads its (claimed) static key, loads the device's peer
//     if needed, and hands it to wireguard-go, which authenticates it.
//   - A response, cookie reply or transport message must name one of the
//     relay's own session indices (a response also needs its mac1); it goes
//     to wireguard-go's bounded queue. One that names none may start a
//     re-handshake with the device whose stored endpoint it came from
//     (maybeRehandshake, rate-limited).
//
// Everything else, and anything that finds a queue full, is dropped and
// counted (Stats.Drops).
func (m *Mgmt) HandleMgmt(b []byte, from netip.AddrPort) {
	if !m.running.Load() {
		m.stats.drop(idxNotRunning)
		return
	}
	msg, err := wire.Parse(b)
	if err != nil {
		m.stats.drop(wireIndex(err))
		return
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	now := m.now()
	if msg.Type == wire.MessageInitiationType {
		if !m.mac1.Valid(b) {
			m.stats.drop(idxBadMac1)
			return
		}
		if !m.limiter.allow(from.Addr(), now) {
			m.stats.drop(idxRateLimited)
			return
		}
		p := newPacket(b, &endpoint{addr: from, rx: now})
		select {
		case m.intake <- p:
		default:
			p.release()
			m.stats.drop(idxBusy)
		}
		return
	}
	if msg.Type == wire.MessageResponseType && !m.mac1.Valid(b) {
		m.stats.drop(idxBadMac1)
		return
	}
	m.mu.RLock()
	pr := m.byIndex[msg.Receiver]
	m.mu.RUnlock()
	if pr == nil {
		m.stats.drop(idxUnknownIndex)
		m.maybeRehandshake(from, now)
		return
	}
	m.enqueue(newPacket(b, &endpoint{addr: from, rx: now, peer: pr}))
}

// enqueue hands p to wireguard-go, or drops it if the queue is full.
func (m *Mgmt) enqueue(p *packet) {
	select {
	case m.queue <- p:
	default:
		p.release()
		m.stats.drop(idxQueueFull)
	}
}

// intakeLoop works on queued initiations until ctx ends.
func (m *Mgmt) intakeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-m.intake:
			m.admit(ctx, p)
		}
	}
}

// admit reads the initiation's static key, finds or loads the device's peer
// and passes the initiation on to wireguard-go, its endpoint tagged with
// the peer. The key is only a claim (see wire.Responder.InitiatorStatic):
// it picks the peer whose handshake wireguard-go then checks; nothing is
// learned from it.
func (m *Mgmt) admit(ctx context.Context, p *packet) {
	key, err := m.responder.InitiatorStatic(p.data)
	if err != nil {
		m.stats.drop(wireIndex(err))
		p.release()
		return
	}
	pr, drop := m.peerFor(ctx, key)
	if pr == nil {
		m.stats.drop(drop)
		p.release()
		return
	}
	p.ep.peer = pr
	m.enqueue(p)
}
