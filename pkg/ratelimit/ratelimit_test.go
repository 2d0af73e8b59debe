package ratelimit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func mustNew(t *testing.T, cfg Config) *Limiter {
	t.Helper()
	l, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

func TestAllowBurstThenRefill(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := mustNew(t, Config{Rate: Rate{N: 3, Per: time.Minute}, NowFunc: clock.Now})

	for i := range 3 {
		if ok, _ := l.Allow("a"); !ok {
			t.Fatalf("event %d denied within burst", i)
		}
	}
	ok, retry := l.Allow("a")
	if ok {
		t.Fatal("event past burst allowed")
	}
	if retry != 20*time.Second {
		t.Errorf("retryAfter = %v, want 20s (one event per 20s)", retry)
	}
	// Other keys have their own bucket.
	if ok, _ := l.Allow("b"); !ok {
		t.Error("key b denied though it never spent anything")
	}

	clock.Advance(15 * time.Second)
	ok, retry = l.Allow("a")
	if ok || retry != 5*time.Second {
		t.Errorf("after 15s: Allow = %v, %v; want false, 5s", ok, retry)
	}
	clock.Advance(5 * time.Second)
	if ok, _ := l.Allow("a"); !ok {
		t.Error("after 20s: denied, want one event allowed")
	}
	if ok, _ := l.Allow("a"); ok {
		t.Error("second event after 20s allowed")
	}
}

func TestUnlimited(t *testing.T) {
	t.Parallel()
	l := mustNew(t, Config{})
	for range 1000 {
		if ok, _ := l.Allow("x"); !ok {
			t.Fatal("unlimited limiter denied")
		}
	}
	if l.Len() != 0 {
		t.Errorf("unlimited limiter keeps %d keys", l.Len())
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		rate Rate
		ok   bool
	}{
		{"zero", Rate{}, true},
		{"normal", Rate{N: 5, Per: time.Hour}, true},
		{"no period", Rate{N: 5}, false},
		{"negative period", Rate{N: 5, Per: -time.Second}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{Rate: tt.rate})
			if (err == nil) != tt.ok {
				t.Errorf("New(%v) error = %v, want ok=%v", tt.rate, err, tt.ok)
			}
		})
	}
}

func TestMemoryBounded(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := mustNew(t, Config{Rate: Rate{N: 1, Per: time.Hour}, MaxKeys: 100, NowFunc: clock.Now})

	// An attacker spends the bucket of key "victim"... then floods with
	// fresh keys; the map never grows past MaxKeys.
	l.Allow("attacker")
	for i := range 10_000 {
		l.Allow(fmt.Sprintf("k%d", i))
		if n := l.Len(); n > 100 {
			t.Fatalf("after %d keys the limiter tracks %d > MaxKeys", i+1, n)
		}
	}
	// The most recently used keys stay limited.
	if ok, _ := l.Allow("k9999"); ok {
		t.Error("most recent key lost its state")
	}
}

func TestIdleEntriesEvicted(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	l := mustNew(t, Config{Rate: Rate{N: 2, Per: time.Minute}, MaxKeys: 1000, NowFunc: clock.Now})
	for i := range 50 {
		l.Allow(fmt.Sprintf("old%d", i))
	}
	l.Allow("busy")
	l.Allow("busy")
	clock.Advance(30 * time.Second)
	l.Allow("fresh") // old entries are not yet full: kept
	if n := l.Len(); n != 52 {
		t.Fatalf("Len = %d, want 52", n)
	}
	clock.Advance(31 * time.Second)
	l.Allow("newer") // the old ones and busy are full again: dropped
	if n := l.Len(); n != 2 {
		t.Fatalf("Len = %d after idle period, want 2 (fresh, newer)", n)
	}
	// A dropped key behaves like a new one: full bucket.
	if ok, _ := l.Allow("busy"); !ok {
		t.Error("busy denied after its bucket refilled")
	}
}

func TestConcurrent(t *testing.T) {
	t.Parallel()
	l := mustNew(t, Config{Rate: Rate{N: 100, Per: time.Hour}, MaxKeys: 10})
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				if ok, _ := l.Allow("shared"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
				l.Allow(fmt.Sprintf("g%d-%d", g, i%20))
			}
		})
	}
	wg.Wait()
	// "shared" may be evicted under key churn and get a fresh bucket, so
	// at least the burst is allowed, never fewer.
	if allowed < 100 {
		t.Errorf("allowed %d events of the shared key, want >= 100", allowed)
	}
	if l.Len() > 10 {
		t.Errorf("Len = %d > MaxKeys", l.Len())
	}
}
