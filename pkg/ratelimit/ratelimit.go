// Package ratelimit limits how often something may happen per key (a client
// IP, an e-mail address): one token bucket per key, kept in a map whose size
// is bounded so that an attacker who sends from many keys costs a fixed
// amount of memory.
//
// It is not a distributed limiter: every relay node counts on its own.
package ratelimit

import (
	"container/list"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// DefaultMaxKeys is the number of keys a Limiter tracks when Config.MaxKeys
// is zero. An entry costs about 270 bytes, so a full Limiter about 5 MiB.
const DefaultMaxKeys = 20_000

// Rate is "N events per Per": a key may spend N events at once and regains
// them evenly over Per. A zero Rate (N == 0) means no limit.
type Rate struct {
	N   int
	Per time.Duration
}

// NoLimit is a Rate that limits nothing, for configurations where a zero
// Rate means "the default".
var NoLimit = Rate{N: -1}

// String reads like "10/1m0s".
func (r Rate) String() string {
	if r.Unlimited() {
		return "unlimited"
	}
	return fmt.Sprintf("%d/%s", r.N, r.Per)
}

// Unlimited reports whether r imposes no limit.
func (r Rate) Unlimited() bool { return r.N <= 0 }

// Validate reports a Rate that is not unlimited but has no period.
func (r Rate) Validate() error {
	if !r.Unlimited() && r.Per <= 0 {
		return fmt.Errorf("rate %d per %s: period must be positive", r.N, r.Per)
	}
	return nil
}

// Config configures a Limiter.
type Config struct {
	Rate    Rate
	MaxKeys int              // keys tracked at most; 0 means DefaultMaxKeys
	NowFunc func() time.Time // clock; nil means time.Now
}

// Limiter is a set of token buckets, one per key. It is safe for concurrent
// use. The zero value is not usable; call New.
type Limiter struct {
	limit   rate.Limit
	burst   int
	refill  time.Duration // time an idle bucket needs to fill up completely
	maxKeys int
	now     func() time.Time

	mu sync.Mutex
	// keys maps a key to its element in lru. Guarded by mu.
	keys map[string]*list.Element
	// lru holds *entry values, most recently used at the front. Guarded by mu.
	lru *list.List
}

type entry struct {
	key      string
	bucket   *rate.Limiter
	lastUsed time.Time
}

// New returns a Limiter. A Config whose Rate is unlimited gives a Limiter
// that allows everything and keeps no state.
func New(cfg Config) (*Limiter, error) {
	if err := cfg.Rate.Validate(); err != nil {
		return nil, fmt.Errorf("ratelimit: %w", err)
	}
	l := &Limiter{
		maxKeys: cfg.MaxKeys,
		now:     cfg.NowFunc,
		keys:    make(map[string]*list.Element),
		lru:     list.New(),
	}
	if l.maxKeys <= 0 {
		l.maxKeys = DefaultMaxKeys
	}
	if l.now == nil {
		l.now = time.Now
	}
	if cfg.Rate.Unlimited() {
		l.limit = rate.Inf
		return l, nil
	}
	l.burst = cfg.Rate.N
	l.limit = rate.Limit(float64(cfg.Rate.N) / cfg.Rate.Per.Seconds())
	l.refill = cfg.Rate.Per
	return l, nil
}

// Allow spends one event of key's bucket. If the bucket is empty it returns
// false and how long until the next event would be allowed.
func (l *Limiter) Allow(key string) (ok bool, retryAfter time.Duration) {
	if l.limit == rate.Inf {
		return true, 0
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.lookup(key, now)
	e.lastUsed = now
	if e.bucket.AllowN(now, 1) {
		return true, 0
	}
	missing := 1 - e.bucket.TokensAt(now)
	wait := time.Duration(math.Ceil(missing / float64(l.limit) * float64(time.Second)))
	return false, max(wait, time.Nanosecond)
}

// Len returns the number of keys tracked.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys)
}

// lookup returns key's entry, moved to the front of the LRU list, creating
// it (and making room for it) if needed. The caller must hold l.mu.
func (l *Limiter) lookup(key string, now time.Time) *entry {
	if el, ok := l.keys[key]; ok {
		l.lru.MoveToFront(el)
		return el.Value.(*entry)
	}
	l.evict(now)
	e := &entry{key: key, bucket: rate.NewLimiter(l.limit, l.burst), lastUsed: now}
	l.keys[key] = l.lru.PushFront(e)
	return e
}

// evict drops entries that have been idle long enough for their bucket to
// be full again (forgetting them changes nothing), and if the map is still
// full, the least recently used one. The caller must hold l.mu.
//
// Dropping a live entry under a flood of keys hands that key a full bucket
// again; that is the price of bounded memory, and the keys that matter most
// (the attacker's own) are the most recently used and stay.
func (l *Limiter) evict(now time.Time) {
	for back := l.lru.Back(); back != nil; back = l.lru.Back() {
		e := back.Value.(*entry)
		if now.Sub(e.lastUsed) < l.refill {
			break
		}
		l.remove(back)
	}
	for len(l.keys) >= l.maxKeys {
		l.remove(l.lru.Back())
	}
}

// remove deletes el from the list and the map. The caller must hold l.mu.
func (l *Limiter) remove(el *list.Element) {
	e := l.lru.Remove(el).(*entry)
	delete(l.keys, e.key)
}
