package mgmt

import (
	"net/netip"
	"sync"
	"time"
)

// Rate limits of handshake initiations per source. Every initiation costs
// the relay an X25519 multiplication (the static key) and maybe a store
// lookup before wireguard-go spends more on it. A source is an IPv4 address
// or an IPv6 /64, as wireguard-go's own rate limiter counts them; many
// devices behind one NAT share it, hence a generous rate.
const (
	limitRate   = 20 // initiations per second and source
	limitBurst  = 40 // initiations a quiet source may send at once
	maxSources  = 1 << 16
	limitPeriod = time.Second / limitRate
)

// limiter is a token bucket per source, bounded in size.
type limiter struct {
	mu      sync.Mutex
	buckets map[netip.Addr]*bucket // guarded by mu
}

// bucket is one source's state: the time at which its bucket is full again
// (the GCRA form of a token bucket).
type bucket struct{ full time.Time }

func newLimiter() *limiter { return &limiter{buckets: make(map[netip.Addr]*bucket)} }

// sourceOf returns the rate-limited unit of addr.
func sourceOf(addr netip.Addr) netip.Addr {
	if addr.Is4() {
		return addr
	}
	p, _ := addr.Prefix(64)
	return p.Addr()
}

// allow reports whether the source of addr may send one more initiation at
// now, and counts it.
func (l *limiter) allow(addr netip.Addr, now time.Time) bool {
	src := sourceOf(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[src]
	if b == nil {
		if len(l.buckets) >= maxSources {
			return false // a flood of sources; gc makes room
		}
		b = &bucket{full: now}
		l.buckets[src] = b
	}
	if b.full.Before(now) {
		b.full = now
	}
	// Each initiation takes one period; a source may run up to
	// limitBurst periods ahead of now.
	next := b.full.Add(limitPeriod)
	if next.Sub(now) > limitBurst*limitPeriod {
		return false
	}
	b.full = next
	return true
}

// gc forgets the sources whose bucket is full again at now.
func (l *limiter) gc(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for src, b := range l.buckets {
		if !b.full.After(now) {
			delete(l.buckets, src)
		}
	}
}
