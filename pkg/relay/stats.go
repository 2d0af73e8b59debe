package relay

import (
	"errors"
	"sync/atomic"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// DropReason says why the relay dropped a datagram. It is a metric label: a
// small closed set made of the relay's own reasons below and every
// wire.DropReason (a malformed datagram is counted under the reason Parse
// gave).
type DropReason string

// The relay's own drop reasons.
const (
	// DropDeviceOffline: a browser sent a datagram for a device with no
	// known endpoint.
	DropDeviceOffline DropReason = "device_offline"
	// DropQueueFull: a session's queue toward its browser was full; the
	// newest datagram was dropped (tail drop).
	DropQueueFull DropReason = "queue_full"
	// DropIndexInUse: a browser's handshake carried a sender index that
	// another session of the same device holds.
	DropIndexInUse DropReason = "index_in_use"
	// DropHandshakeRate: a browser sent handshakes faster than any
	// WireGuard peer does (see allowHandshake).
	DropHandshakeRate DropReason = "handshake_rate"
	// DropNotBinary: a browser sent a text WebSocket message.
	DropNotBinary DropReason = "not_binary"
	// DropSessionClosed: datagrams still queued when their session ended.
	DropSessionClosed DropReason = "session_closed"
	// DropWriteError: the UDP socket refused a datagram toward a device.
	DropWriteError DropReason = "write_error"
	// DropReadError: the UDP socket returned a transient read error.
	DropReadError DropReason = "read_error"
	// DropNoMgmt: a datagram for the management side arrived while the
	// Server has no MgmtHandler.
	DropNoMgmt DropReason = "no_mgmt"
	// DropMalformed: a malformed datagram whose reason is not one of
	// wire.AllDropReasons (a newer pkg/wire); should stay zero.
	DropMalformed DropReason = "malformed"
)

// dropReasons is every DropReason, in a fixed order: the relay's own, then
// pkg/wire's. A reason's position is its index into the counter arrays.
var dropReasons = func() []DropReason {
	r := []DropReason{DropDeviceOffline, DropQueueFull, DropIndexInUse, DropHandshakeRate, DropNotBinary,
		DropSessionClosed, DropWriteError, DropReadError, DropNoMgmt, DropMalformed}
	for _, w := range wire.AllDropReasons() {
		r = append(r, DropReason(w))
	}
	return r
}()

// DropReasons returns every DropReason the relay counts, to create metrics
// up front.
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

// Fixed indices of the relay's own reasons, looked up once.
var (
	idxDeviceOffline = reasonIndex(DropDeviceOffline)
	idxQueueFull     = reasonIndex(DropQueueFull)
	idxIndexInUse    = reasonIndex(DropIndexInUse)
	idxHandshakeRate = reasonIndex(DropHandshakeRate)
	idxNotBinary     = reasonIndex(DropNotBinary)
	idxSessionClosed = reasonIndex(DropSessionClosed)
	idxWriteError    = reasonIndex(DropWriteError)
	idxReadError     = reasonIndex(DropReadError)
	idxNoMgmt        = reasonIndex(DropNoMgmt)
	idxBadMac1       = reasonIndex(DropReason(wire.ErrBadMac1))
)

// malformedIndex is the counter index for an error from wire.Parse.
func malformedIndex(err error) int {
	if r, ok := errors.AsType[wire.DropReason](err); ok {
		return reasonIndex(DropReason(r))
	}
	return reasonIndex(DropMalformed)
}

// Counter counts datagrams and their bytes.
type Counter struct {
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
}

// counter is the live, atomic form of Counter.
type counter struct {
	packets atomic.Uint64
	bytes   atomic.Uint64
}

func (c *counter) add(n int) {
	c.packets.Add(1)
	c.bytes.Add(uint64(n))
}

func (c *counter) load() Counter {
	return Counter{Packets: c.packets.Load(), Bytes: c.bytes.Load()}
}

// dropCounters counts dropped datagrams by reason index.
type dropCounters struct {
	n []atomic.Uint64 // len(dropReasons)
}

func newDropCounters() dropCounters {
	return dropCounters{n: make([]atomic.Uint64, len(dropReasons))}
}

func (d *dropCounters) add(idx int) { d.n[idx].Add(1) }

// load returns the non-zero counters; all=true includes the zero ones.
func (d *dropCounters) load(all bool) map[DropReason]uint64 {
	m := make(map[DropReason]uint64)
	for i := range d.n {
		if v := d.n[i].Load(); v != 0 || all {
			m[dropReasons[i]] = v
		}
	}
	return m
}

// Stats is a snapshot of a Server's counters.
type Stats struct {
	// Devices is the number of devices the relay tracks (with an endpoint
	// or a session); Online counts those with an endpoint.
	Devices, Online int
	// Sessions is the number of live browser sessions.
	Sessions int
	// ToDevice counts datagrams sent from browsers to devices, ToBrowser
	// datagrams written to browsers' WebSockets, ToMgmt datagrams handed
	// to the MgmtHandler.
	ToDevice, ToBrowser, ToMgmt Counter
	// Drops counts dropped datagrams by reason; every reason is present.
	Drops map[DropReason]uint64
}

// SessionStats is a snapshot of one session's counters.
type SessionStats struct {
	DeviceID string
	UserID   string
	Slot     int
	// ToDevice counts datagrams this session's browser sent to the device;
	// ToBrowser datagrams written to its WebSocket.
	ToDevice, ToBrowser Counter
	// Drops counts this session's dropped datagrams by reason (non-zero
	// reasons only).
	Drops map[DropReason]uint64
}
