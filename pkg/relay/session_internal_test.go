package relay

import "testing"

// TestDrain: what is still queued when a session ends is freed and counted.
func TestDrain(t *testing.T) {
	t.Parallel()
	s := newFuzzSetup(t)
	for range 3 {
		s.ss.enqueue([]byte{4, 0, 0, 0})
	}
	s.ss.enqueue(make([]byte, pooledPacketSize+1)) // not pooled
	s.ss.drain()
	if got := s.ss.drops.load(false)[DropSessionClosed]; got != 4 || len(s.ss.queue) != 0 {
		t.Errorf("session_closed = %d, queue %d; want 4 and empty", got, len(s.ss.queue))
	}
	if got := s.srv.Stats().Drops[DropSessionClosed]; got != 4 {
		t.Errorf("global session_closed = %d, want 4", got)
	}
}
