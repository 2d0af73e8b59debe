package mgmt

import (
	"errors"
	"sync/atomic"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// DropReason says why the management side dropped a datagram, inbound or
// outbound. It is a metric label: a small closed set made of the reasons
// below and every wire.DropReason.
type DropReason string

// The management side's own drop reasons.
const (
	// DropNotRunning: a datagram arrived while Run was not serving.
	DropNotRunning DropReason = "not_running"
	// DropRateLimited: a handshake initiation from a source that sent more
	// than its share (see limiter).
	DropRateLimited DropReason = "rate_limited"
	// DropBusy: the queue of initiations waiting for a peer lookup was
	// full.
	DropBusy DropReason = "busy"
	// DropQueueFull: the queue toward wireguard-go was full.
	DropQueueFull DropReason = "queue_full"
	// DropUnknownDevice: an initiation whose (claimed) static key belongs
	// to no registered device.
	DropUnknownDevice DropReason = "unknown_device"
	// DropUnknownIndex: a response, cookie reply or transport message whose
	// receiver index names no handshake of the relay's.
	DropUnknownIndex DropReason = "unknown_index"
	// DropStoreError: the device lookup failed (the store is down).
	DropStoreError DropReason = "store_error"
	// DropPeerLimit: a peer could not be loaded: Config.MaxPeers are
	// loaded, or wireguard-go refused it.
	DropPeerLimit DropReason = "peer_limit"
	// DropUnauthenticatedDst: wireguard-go wanted to send to an address no
	// authenticated packet came from (a cookie reply under load); the
	// relay never does.
	DropUnauthenticatedDst DropReason = "unauthenticated_dst"
	// DropSendError: the relay's socket refused an outgoing datagram.
	DropSendError DropReason = "send_error"
	// DropRehandshakeLimit: wireguard-go wanted to send a second datagram
	// (a retried initiation, say) to the provisional endpoint of a
	// re-handshake, which carries one initiation only.
	DropRehandshakeLimit DropReason = "rehandshake_limit"
	// DropMalformed: a malformed datagram whose reason is not one of
	// wire.AllDropReasons (a newer pkg/wire); should stay zero.
	DropMalformed DropReason = "malformed"
)

// dropReasons is every DropReason in a fixed order; a reason's position is
// its index into the counters.
var dropReasons = func() []DropReason {
	r := []DropReason{DropNotRunning, DropRateLimited, DropBusy, DropQueueFull, DropUnknownDevice,
		DropUnknownIndex, DropStoreError, DropPeerLimit, DropUnauthenticatedDst, DropSendError, DropRehandshakeLimit,
		DropMalformed}
	for _, w := range wire.AllDropReasons() {
		r = append(r, DropReason(w))
	}
	return r
}()

// DropReasons returns every DropReason, to create metric series up front.
func DropReasons() []DropReason { return append([]DropReason(nil), dropReasons...) }

// reasonIndex is the position of r in dropReasons; unknown reasons count as
// DropMalformed.
func reasonIndex(r DropReason) int {
	for i, d := range dropReasons {
		if d == r {
			return i
		}
	}
	return reasonIndex(DropMalformed)
}

// Fixed counter indices, looked up once.
var (
	idxNotRunning       = reasonIndex(DropNotRunning)
	idxRateLimited      = reasonIndex(DropRateLimited)
	idxBusy             = reasonIndex(DropBusy)
	idxQueueFull        = reasonIndex(DropQueueFull)
	idxUnknownDevice    = reasonIndex(DropUnknownDevice)
	idxUnknownIndex     = reasonIndex(DropUnknownIndex)
	idxStoreError       = reasonIndex(DropStoreError)
	idxPeerLimit        = reasonIndex(DropPeerLimit)
	idxUnauthenticated  = reasonIndex(DropUnauthenticatedDst)
	idxSendError        = reasonIndex(DropSendError)
	idxRehandshakeLimit = reasonIndex(DropRehandshakeLimit)
	idxBadMac1          = reasonIndex(DropReason(wire.ErrBadMac1))
	idxBadHandshakeDrop = reasonIndex(DropReason(wire.ErrBadHandshake))
)

// wireIndex is the counter index for an error of pkg/wire.
func wireIndex(err error) int {
	if r, ok := errors.AsType[wire.DropReason](err); ok {
		return reasonIndex(DropReason(r))
	}
	return reasonIndex(DropMalformed)
}

// Stats is a snapshot of the management side's counters.
type Stats struct {
	// Received counts datagrams handed to wireguard-go; Sent those written
	// to the relay's socket.
	Received, Sent uint64
	// Handshakes counts handshake responses the relay sent: handshakes a
	// device started and wireguard-go authenticated.
	Handshakes uint64
	// Probes counts ICMPv6 echo requests sent to quiet devices.
	Probes uint64
	// PeerLoads counts peers loaded lazily from the store, PeerEvictions
	// those removed again (idle, offline or deleted).
	PeerLoads, PeerEvictions uint64
	// Rehandshakes counts the relay-initiated re-handshakes.
	Rehandshakes RehandshakeStats
	// PeersLoaded is the number of device peers wireguard-go holds now,
	// Online the number of devices online, Control the number of live
	// control connections.
	PeersLoaded, Online, Control int
	// Drops counts dropped datagrams by reason; every reason is present.
	Drops map[DropReason]uint64
}

// RehandshakeStats counts the re-handshakes the relay starts with devices
// that still use a session it lost (a restart): see the package doc.
type RehandshakeStats struct {
	// Lookups counts sources of datagrams with an unknown receiver index
	// looked up among the devices' stored endpoints.
	Lookups uint64
	// Started counts re-handshakes started: a device recently seen at the
	// source, its peer loaded and wireguard-go asked to initiate.
	Started uint64
	// Sent counts initiations sent to stored endpoints, at most one per
	// re-handshake; Confirmed the re-handshakes whose device then came
	// online through an authenticated handshake.
	Sent, Confirmed uint64
	// NotStored counts sources that are no device's stored endpoint, Stale
	// those whose device was seen there longer than RehandshakeMaxAge ago.
	// Nothing is sent to either.
	NotStored, Stale uint64
	// Suppressed counts datagrams that started nothing because their
	// source was looked up within the last few seconds (or found to be no
	// usable endpoint within the last half minute), or its device is online
	// or has a re-handshake pending.
	Suppressed uint64
	// Limited counts datagrams that started nothing because of the rate
	// limits (per source and for all sources) or a full table or queue.
	Limited uint64
	// Wakes counts the devices Wake looked up in the store, WakesStarted
	// the re-handshakes it started (also counted in Started). A wake's
	// unknown or stale device counts in NotStored or Stale, a wake the
	// limits refused in Limited.
	Wakes, WakesStarted uint64
}

// counters are the live, atomic counters behind Stats.
type counters struct {
	received, sent, handshakes, probes atomic.Uint64
	peerLoads, peerEvictions           atomic.Uint64
	drops                              []atomic.Uint64 // len(dropReasons)
}

func newCounters() *counters {
	return &counters{drops: make([]atomic.Uint64, len(dropReasons))}
}

func (c *counters) drop(idx int) { c.drops[idx].Add(1) }

func (c *counters) dropMap() map[DropReason]uint64 {
	m := make(map[DropReason]uint64, len(dropReasons))
	for i := range c.drops {
		m[dropReasons[i]] = c.drops[i].Load()
	}
	return m
}
