package mgmt

import (
	"context"
	"errors"
	"time"

	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// wakeInterval is the least time between two wakes of one device that
// look it up in the store: at most one relay-initiated initiation per
// device and wakeInterval comes from Wake, whoever calls it how often.
const wakeInterval = rehandshakeWindow

// Wake starts a re-handshake with an offline device at its stored
// endpoint, as the re-handshake after a restart does on a datagram from
// it (see the package doc), for a caller that wants the device now: after
// a relay restart an idle device sends nothing until its next keepalive
// (up to 25 s), so nothing of its would start that re-handshake sooner.
//
// The same rules hold: the device's stored endpoint (Store.DeviceByID)
// must have been seen within RehandshakeMaxAge, the device must not be
// online, at most one re-handshake per device is pending, and it sends one
// handshake initiation to that endpoint. In addition a device is looked up
// at most once per five seconds, and wakes count against the rate of all
// re-handshakes.
//
// Wake reports whether a handshake toward the device is under way: one
// started now, or one that was pending already. The device is online (see
// Online) once it answered; false means there is nothing to wait for (the
// device is online already, unknown, not seen recently, or a wake was
// refused by the limits). It blocks for at most the store lookup, which
// ctx and an internal timeout bound.
func (m *Mgmt) Wake(ctx context.Context, deviceID string) bool {
	if !m.running.Load() || deviceID == "" || m.Online(deviceID) {
		return false
	}
	r := &m.reh
	now := m.now()
	r.mu.Lock()
	if rh := r.pending[deviceID]; rh != nil && now.Before(rh.until) {
		r.mu.Unlock()
		return true
	}
	if until, ok := r.wakes[deviceID]; ok && now.Before(until) {
		r.mu.Unlock()
		r.limit.Add(1)
		return false
	}
	if len(r.wakes) >= maxRehandshakePending ||
		!r.global.take(now, time.Second/rehandshakeRate, rehandshakeBurst) {
		r.mu.Unlock()
		r.limit.Add(1)
		return false
	}
	r.wakes[deviceID] = now.Add(wakeInterval)
	r.mu.Unlock()

	r.wakeLookups.Add(1)
	lctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	dev, err := m.store.DeviceByID(lctx, deviceID)
	cancel()
	switch {
	case errors.Is(err, keystore.ErrDeviceNotFound):
		r.notStored.Add(1)
		return false
	case err != nil:
		if ctx.Err() == nil && m.storeLogs.allow() {
			m.log.Warn("mgmt: device lookup for a wake failed", "device_id", deviceID, "err", err)
		}
		return false
	case dev.ID != deviceID || !dev.LastEndpoint.IsValid():
		r.notStored.Add(1) // never seen (or a store that does not keep its contract)
		return false
	case dev.LastSeenAt.IsZero() || now.Sub(dev.LastSeenAt) > RehandshakeMaxAge:
		r.stale.Add(1)
		return false
	}
	key := wgkey.Public(dev.PublicKey)
	if m.onlineKey(key) {
		return false
	}
	switch m.launchRehandshake(dev, key, dev.LastEndpoint, now) {
	case launchStarted:
		r.wakesStarted.Add(1)
		return true
	case launchPending:
		return true
	default:
		return false
	}
}
