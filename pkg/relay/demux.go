package relay

import (
	"net/netip"
	"sync"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// maxIndices is how many receiver indices one session keeps learned. A
// WireGuard peer uses at most three at once (previous, current and next
// keypair) plus one for a handshake in flight; the rest is slack for
// retransmitted initiations. Older indices are forgotten first.
const maxIndices = 8

// fromUDP demultiplexes one datagram read from the UDP socket (package doc,
// "Demultiplexing"). b is the read loop's buffer: it is copied if kept.
func (s *Server) fromUDP(b []byte, from netip.AddrPort) {
	msg, err := wire.Parse(b)
	if err != nil {
		s.drops.add(malformedIndex(err))
		return
	}
	s.mu.RLock()
	if d := s.byAddr[from]; d != nil && len(d.sessions) > 0 {
		var ss *session
		if msg.Type == wire.MessageInitiationType {
			ss = d.bySlotMac1(b)
		} else {
			ss = d.index[msg.Receiver]
		}
		if ss != nil {
			// Enqueue under the read lock: a session removed from the
			// tables (write lock) gets nothing after that.
			ss.enqueue(b)
			s.mu.RUnlock()
			return
		}
	}
	s.mu.RUnlock()
	if s.mgmt == nil {
		s.drops.add(idxNoMgmt)
		return
	}
	s.toMgmt.add(len(b))
	s.mgmt.HandleMgmt(b, from)
}

// bySlotMac1 returns the session whose key slot the handshake initiation b
// was made for, or nil. Server.mu must be held.
func (d *device) bySlotMac1(b []byte) *session {
	for _, ss := range d.sessions {
		if ss.slotMac1.Valid(b) {
			return ss
		}
	}
	return nil
}

// fromBrowser forwards one datagram of session ss to its device (package
// doc, "Demultiplexing"). b is the session reader's buffer.
func (s *Server) fromBrowser(ss *session, b []byte) {
	msg, err := wire.Parse(b)
	if err != nil {
		ss.drop(malformedIndex(err))
		return
	}
	if msg.Type == wire.MessageInitiationType || msg.Type == wire.MessageResponseType {
		if !ss.allowHandshake(time.Now()) {
			ss.drop(idxHandshakeRate)
			return
		}
		if !ss.deviceMac1.Valid(b) {
			ss.drop(idxBadMac1)
			return
		}
		if !s.learn(ss, msg.Sender) {
			ss.drop(idxIndexInUse)
			return
		}
	}
	s.mu.RLock()
	ep := ss.dev.ep
	s.mu.RUnlock()
	if !ep.IsValid() {
		ss.drop(idxDeviceOffline)
		return
	}
	if _, err := s.conn.WriteToUDPAddrPort(b, ep); err != nil {
		ss.drop(idxWriteError)
		return
	}
	ss.toDevice.add(len(b))
	s.toDevice.add(len(b))
}

// Handshake rate limit per session. A WireGuard peer sends an initiation at
// most every 5 s (REKEY_TIMEOUT) and a response only to the device's
// initiation, so this is generous; it bounds how often one browser takes
// the Server's write lock (learn) and makes the relay send handshakes.
const (
	handshakeBurst = 16
	handshakeEvery = 250 * time.Millisecond // one more allowed per interval
)

// allowHandshake is a token bucket for the session's handshakes. Only the
// session's reader calls it.
func (ss *session) allowHandshake(now time.Time) bool {
	elapsed := now.Sub(ss.hsLast)
	ss.hsLast = now
	ss.hsTokens = min(handshakeBurst, ss.hsTokens+float64(elapsed)/float64(handshakeEvery))
	if ss.hsTokens < 1 {
		return false
	}
	ss.hsTokens--
	return true
}

// learn records idx as a receiver index of ss, forgetting the session's
// oldest one beyond maxIndices. It reports false if another live session
// of the device holds idx, or ss has ended.
func (s *Server) learn(ss *session, idx uint32) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss.gone {
		return false
	}
	d := ss.dev
	switch owner := d.index[idx]; owner {
	case ss:
		return true
	case nil:
	default:
		return false
	}
	if ss.nIndices == maxIndices {
		delete(d.index, ss.indices[ss.nextIndex])
	} else {
		ss.nIndices++
	}
	ss.indices[ss.nextIndex] = idx
	ss.nextIndex = (ss.nextIndex + 1) % maxIndices
	d.index[idx] = ss
	return true
}

// packet is a datagram queued toward a browser. Packets are pooled so the
// steady state allocates nothing per datagram.
type packet struct {
	b []byte
}

// pooledPacketSize is the capacity of pooled packets: any datagram of a
// WireGuard interface with an MTU up to 1500 fits (1500 + 32 bytes).
// Larger ones get a buffer of their own.
const pooledPacketSize = 2048

var packetPool = sync.Pool{New: func() any {
	return &packet{b: make([]byte, 0, pooledPacketSize)}
}}

// newPacket returns a packet holding a copy of b.
func newPacket(b []byte) *packet {
	if len(b) > pooledPacketSize {
		return &packet{b: append([]byte(nil), b...)}
	}
	p := packetPool.Get().(*packet)
	p.b = append(p.b[:0], b...)
	return p
}

// free returns p to the pool; p must not be used afterwards.
func (p *packet) free() {
	if cap(p.b) == pooledPacketSize {
		packetPool.Put(p)
	}
}
