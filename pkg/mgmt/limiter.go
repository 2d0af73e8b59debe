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
	limitRate  = 20 // initiations per second and source
	limitBurst = 40 // initiations a quiet source may send at once
	maxSources = 1 << 16
)

// limiter is a token bucket per source, bounded in size.
type limiter struct {
	period time.Duration // one token
	burst  int

	mu      sync.Mutex
	buckets map[netip.Addr]*bucket // guarded by mu
}

// bucket is one token bucket's state: the time at which it is full again
// (the GCRA form of a token bucket).
type bucket struct{ full time.Time }

// take reports whether one more event may happen at now, at one per period
// with bursts of burst, and counts it.
func (b *bucket) take(now time.Time, period time.Duration, burst int) bool {
	if b.full.Before(now) {
		b.full = now
	}
	// Each event takes one period; the bucket may run up to burst
	// periods ahead of now.
	next := b.full.Add(period)
	if next.Sub(now) > time.Duration(burst)*period {
		return false
	}
	b.full = next
	return true
}

// newLimiter returns a limiter of rate events per second and source, with
// bursts of burst.
func newLimiter(rate, burst int) *limiter {
	return &limiter{period: time.Second / time.Duration(rate), burst: burst, buckets: make(map[netip.Addr]*bucket)}
}

// sourceOf returns the rate-limited unit of addr.
func sourceOf(addr netip.Addr) netip.Addr {
	if addr.Is4() {
		return addr
	}
	p, _ := addr.Prefix(64)
	return p.Addr()
}

// allow reports whether the source of addr may send one more datagram at
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
	return b.take(now, l.period, l.burst)
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
