package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/coder/websocket"
)

// run owns the session's connection: it reads c until it fails, then redials
// with backoff, until the session is closed. It is the session's one
// long-lived goroutine.
func (b *Bind) run(s *bindSession, c *websocket.Conn) {
	defer s.wg.Done()
	for {
		err := b.serve(s, c)
		s.conn.CompareAndSwap(c, nil)
		c.CloseNow()
		if s.closing.Load() || s.ctx.Err() != nil {
			return
		}
		b.stats.connected.Store(false)
		if st := websocket.CloseStatus(err); st == websocket.StatusPolicyViolation || st == 4001 {
			b.log.Warn("relay ended the session; not redialling", "error", err)
			if b.cfg.EndFunc != nil {
				b.cfg.EndFunc(fmt.Errorf("%w: %w", ErrSessionEnded, err))
			}
			return
		}
		b.log.Warn("websocket lost, redialling", "error", err)
		down := time.Now()
		c = b.redial(s)
		if c == nil {
			return
		}
		b.stats.reconnects.Add(1)
		b.stats.connected.Store(true)
		b.log.Info("websocket reconnected", "downtime", time.Since(down).Round(time.Millisecond))
		if b.cfg.ReconnectFunc != nil {
			b.cfg.ReconnectFunc()
		}
	}
}

// serve reads datagrams from c into the session's queue until c fails or the
// session ends, pinging c meanwhile. It returns why it stopped.
func (b *Bind) serve(s *bindSession, c *websocket.Conn) error {
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	s.wg.Go(func() { b.ping(ctx, c) })
	for {
		typ, r, err := c.Reader(ctx)
		if err != nil {
			return err
		}
		p := b.getBuf()
		msg, oversize, err := readMessage(r, *p, maxDatagramSize)
		if err != nil {
			b.putBuf(p)
			return err
		}
		switch {
		case typ != websocket.MessageBinary:
			b.stats.dropText.Add(1)
		case oversize:
			b.stats.dropOversize.Add(1)
		case len(msg) == 0:
			b.stats.dropEmpty.Add(1)
		default:
			*p = msg
			select {
			case s.queue <- p:
				b.stats.rxPackets.Add(1)
				b.stats.rxBytes.Add(uint64(len(msg)))
				continue
			default:
				b.stats.dropQueueFull.Add(1)
			}
		}
		b.putBuf(p)
	}
}

// ping pings c every PingInterval until ctx ends. A ping that gets no pong
// within PingTimeout closes c, which ends serve: a relay that neither
// answers nor hangs up would otherwise hold the session until TCP gives up.
func (b *Bind) ping(ctx context.Context, c *websocket.Conn) {
	t := time.NewTicker(b.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, b.cfg.PingTimeout)
		err := c.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				b.log.Warn("websocket ping unanswered, dropping the connection", "error", err)
				c.CloseNow()
			}
			return
		}
	}
}

// redial dials until it succeeds or the session ends (then it returns nil),
// waiting between attempts as backoff says.
func (b *Bind) redial(s *bindSession) *websocket.Conn {
	bo := backoff{min: b.cfg.MinBackoff, max: b.cfg.MaxBackoff}
	t := time.NewTimer(bo.next())
	defer t.Stop()
	for attempt := 1; ; attempt++ {
		select {
		case <-s.ctx.Done():
			return nil
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, b.cfg.DialTimeout)
		c, err := b.dial(ctx)
		cancel()
		if err == nil {
			if s.closing.Load() || s.ctx.Err() != nil {
				c.CloseNow()
				return nil
			}
			s.conn.Store(c)
			return c
		}
		if s.ctx.Err() != nil {
			return nil
		}
		level := slog.LevelDebug
		if attempt == 1 {
			level = slog.LevelWarn
		}
		b.log.Log(s.ctx, level, "websocket redial failed", "attempt", attempt, "error", err)
		t.Reset(bo.next())
	}
}

// backoff yields the waits between redial attempts: the first is drawn from
// [min/2, min], each later one from the upper half of twice the previous
// ceiling, which is capped at max ("equal jitter"). Jitter keeps the clients
// of a restarted relay from redialling in lockstep.
type backoff struct {
	min, max time.Duration
	ceil     time.Duration // the ceiling of the last wait; 0 before the first
}

func (bo *backoff) next() time.Duration {
	if bo.ceil == 0 {
		bo.ceil = bo.min
	} else {
		bo.ceil = min(2*bo.ceil, bo.max)
	}
	half := bo.ceil / 2
	return bo.ceil - half + rand.N(half+1)
}

// readMessage reads one message from r into buf, growing it (by allocation)
// up to limit+1 bytes. A message longer than limit is drained and reported
// as oversize instead of returned.
func readMessage(r io.Reader, buf []byte, limit int) (msg []byte, oversize bool, err error) {
	n := 0
	for {
		if n == len(buf) {
			if n > limit {
				_, err := io.Copy(io.Discard, r)
				return nil, true, err
			}
			grown := make([]byte, min(max(2*len(buf), 512), limit+1))
			copy(grown, buf[:n])
			buf = grown
		}
		m, err := r.Read(buf[n:])
		n += m
		if errors.Is(err, io.EOF) {
			if n > limit {
				return nil, true, nil
			}
			return buf[:n], false, nil
		}
		if err != nil {
			return nil, false, err
		}
	}
}
