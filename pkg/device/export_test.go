package device

import "time"

// SetControlTimingForTest shortens the control client's timers.
func (d *Device) SetControlTimingForTest(ping, pong, backoff time.Duration) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.timing = &controlTiming{
		dialTimeout:  2 * pong,
		helloTimeout: 2 * pong,
		pingInterval: ping,
		pongTimeout:  pong,
		minBackoff:   backoff,
		maxBackoff:   4 * backoff,
		noVersion:    4 * backoff,
	}
}
