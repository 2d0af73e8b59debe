package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// Reasons a session ends, as returned by Accept.
var (
	// ErrIdleTimeout: no datagram crossed the session for Config.IdleTimeout.
	ErrIdleTimeout = errors.New("relay: session idle")
	// ErrReplaced: a newer session for the same key slot of the device
	// was accepted.
	ErrReplaced = errors.New("relay: session replaced by a newer one for the same key slot")
)

// closeGrace is how long a session that ends for a reason of its own
// (idle, replaced, ctx) waits for a write in progress to a browser before
// it drops the connection.
const closeGrace = time.Second

// Session says who a browser session is for. The caller has authorised the
// user for the device and leased the key slot.
type Session struct {
	DeviceID  string       // the device, as SetDeviceEndpoint names it
	DeviceKey wgkey.Public // the device's WireGuard public key
	SlotKey   wgkey.Public // the key slot's (browser's) WireGuard public key
	UserID    string       // for logs and stats only
	Slot      int          // key slot number, for logs and stats only
}

func (s Session) validate() error {
	switch {
	case s.DeviceID == "":
		return errors.New("device id is empty")
	case s.DeviceKey.IsZero():
		return errors.New("device key is zero")
	case s.SlotKey.IsZero():
		return errors.New("slot key is zero")
	}
	return nil
}

// session is a live browser session.
type session struct {
	Session
	srv        *Server
	dev        *device      // set once when registered
	slotMac1   wire.Mac1Key // mac1 key of handshakes sent to the slot
	deviceMac1 wire.Mac1Key // mac1 key of handshakes sent to the device
	queue      chan *packet // toward the browser
	cancel     context.CancelCauseFunc

	// Learned receiver indices, a ring; all guarded by Server.mu.
	indices   [maxIndices]uint32
	nIndices  int
	nextIndex int
	gone      bool // removed from the tables

	// Handshake token bucket (allowHandshake); only the reader uses it.
	hsTokens float64
	hsLast   time.Time

	toDevice, toBrowser counter
	drops               dropCounters
}

// drop counts a dropped datagram of the session, also globally.
func (ss *session) drop(idx int) {
	ss.drops.add(idx)
	ss.srv.drops.add(idx)
}

// enqueue queues a copy of b toward the browser, or drops it if the queue
// is full. It never blocks. Server.mu must be held (for reading).
func (ss *session) enqueue(b []byte) {
	p := newPacket(b)
	select {
	case ss.queue <- p:
	default:
		p.free()
		ss.drop(idxQueueFull)
	}
}

func (ss *session) stats() SessionStats {
	return SessionStats{
		DeviceID:  ss.DeviceID,
		UserID:    ss.UserID,
		Slot:      ss.Slot,
		ToDevice:  ss.toDevice.load(),
		ToBrowser: ss.toBrowser.load(),
		Drops:     ss.drops.load(false),
	}
}

// Accept serves one browser session on ws, an accepted WebSocket on which
// every binary message is one WireGuard datagram. It blocks until ctx ends,
// the browser closes the WebSocket, the session idles out or is replaced,
// and closes ws before it returns. It returns nil when the browser closed
// the WebSocket normally; otherwise ctx's error, ErrIdleTimeout,
// ErrReplaced, or the WebSocket error.
//
// The caller authorises the user for sess.DeviceID and leases the key slot
// before, and frees the lease after Accept returns.
func (s *Server) Accept(ctx context.Context, ws *websocket.Conn, sess Session) error {
	if err := sess.validate(); err != nil {
		_ = ws.Close(websocket.StatusInternalError, "bad session")
		return fmt.Errorf("relay: accept: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ss := &session{
		Session:    sess,
		srv:        s,
		slotMac1:   wire.NewMac1Key(sess.SlotKey),
		deviceMac1: wire.NewMac1Key(sess.DeviceKey),
		queue:      make(chan *packet, s.queueLen),
		cancel:     cancel,
		drops:      newDropCounters(),
		hsTokens:   handshakeBurst,
		hsLast:     time.Now(),
	}
	s.register(ss)
	log := s.logger.With("device_id", sess.DeviceID, "user_id", sess.UserID, "slot", sess.Slot)
	log.Debug("relay session started")

	ws.SetReadLimit(maxDatagram)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		cancel(&browserError{ss.readLoop(ws)})
	}()
	stopIdle := ss.watchIdle(ctx, s.idle)
	stopForce := forceCloseAfter(ctx, ws, closeGrace)

	ss.writeLoop(ctx, ws)

	stopIdle()
	s.unregister(ss)
	cause := context.Cause(ctx)
	closeFor(ws, cause)
	stopForce()
	<-readDone
	ss.drain()

	err := acceptResult(ctx, cause)
	st := ss.stats()
	log.Info("relay session ended", "to_device", st.ToDevice, "to_browser", st.ToBrowser,
		"drops", st.Drops, "reason", endReason(err))
	return err
}

// register adds ss to the tables; a session of the same key slot on the
// same device is removed and told it was replaced.
func (s *Server) register(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[ss.DeviceID]; d != nil {
		for _, old := range d.sessions {
			if old.SlotKey == ss.SlotKey {
				s.removeLocked(old)
				old.cancel(ErrReplaced)
				break
			}
		}
	}
	d := s.deviceLocked(ss.DeviceID) // after removeLocked, which may forget it
	ss.dev = d
	d.sessions = append(d.sessions, ss)
}

// unregister removes ss from the tables, if it is still there.
func (s *Server) unregister(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked(ss)
}

// removeLocked removes ss and its learned indices from the tables. s.mu
// must be held for writing.
func (s *Server) removeLocked(ss *session) {
	if ss.gone {
		return
	}
	ss.gone = true
	d := ss.dev
	d.sessions = slices.DeleteFunc(d.sessions, func(o *session) bool { return o == ss })
	for _, idx := range ss.indices[:ss.nIndices] {
		if d.index[idx] == ss {
			delete(d.index, idx)
		}
	}
	s.gcDeviceLocked(d)
}

// readLoop forwards the browser's datagrams until the WebSocket fails.
// It reads with a context that is never done: a cancellable one would cost
// an allocation per message in the WebSocket library. The WebSocket is
// closed to stop it.
func (ss *session) readLoop(ws *websocket.Conn) error {
	buf := make([]byte, pooledPacketSize)
	for {
		typ, r, err := ws.Reader(context.Background())
		if err != nil {
			return err
		}
		n, err := readMessage(r, &buf)
		if err != nil {
			return err
		}
		if typ != websocket.MessageBinary {
			ss.drop(idxNotBinary)
			continue
		}
		ss.srv.fromBrowser(ss, buf[:n])
	}
}

// readMessage reads one message from r into *buf, growing it as needed
// (the WebSocket read limit bounds the size).
func readMessage(r io.Reader, buf *[]byte) (int, error) {
	b, n := *buf, 0
	for {
		if n == len(b) {
			b = append(b, make([]byte, len(b))...)
			*buf = b
		}
		m, err := r.Read(b[n:])
		n += m
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// writeLoop writes queued datagrams to the browser until ctx ends or a
// write fails. Writes use a context that is never done, for the same
// reason as readLoop; forceCloseAfter unblocks a write that hangs.
func (ss *session) writeLoop(ctx context.Context, ws *websocket.Conn) {
	done := ctx.Done()
	for ctx.Err() == nil {
		var p *packet
		// While datagrams are queued, take them without the cost of a
		// two-case select; block on both only when the queue is empty.
		select {
		case p = <-ss.queue:
		default:
			select {
			case <-done:
				return
			case p = <-ss.queue:
			}
		}
		err := ws.Write(context.Background(), websocket.MessageBinary, p.b)
		n := len(p.b)
		p.free()
		if err != nil {
			ss.cancel(&browserError{err})
			return
		}
		ss.toBrowser.add(n)
		ss.srv.toBrowser.add(n)
	}
}

// drain drops what is left in the queue once the session is out of the
// tables (nothing is enqueued any more).
func (ss *session) drain() {
	for {
		select {
		case p := <-ss.queue:
			p.free()
			ss.drop(idxSessionClosed)
		default:
			return
		}
	}
}

// watchIdle ends the session with ErrIdleTimeout once no datagram was
// relayed either way for d (checked every d/4, so it ends within 1.25 d).
// It returns a function that stops watching.
func (ss *session) watchIdle(ctx context.Context, d time.Duration) (stop func()) {
	if d <= 0 {
		return func() {}
	}
	const checks = 4
	var (
		last  atomic.Uint64
		quiet atomic.Int32
		t     atomic.Pointer[time.Timer]
	)
	t.Store(time.AfterFunc(time.Hour, func() {
		if ctx.Err() != nil {
			return
		}
		n := ss.toDevice.packets.Load() + ss.toBrowser.packets.Load()
		if last.Swap(n) != n {
			quiet.Store(0)
		} else if quiet.Add(1) >= checks {
			ss.cancel(ErrIdleTimeout)
			return
		}
		t.Load().Reset(d / checks)
	}))
	t.Load().Reset(d / checks)
	return func() { t.Load().Stop() }
}

// forceCloseAfter closes ws without a handshake if it is still open grace
// after ctx ends: a write to a stalled browser must not hold the session.
// It returns a function that cancels this; call it only once ctx is done.
func forceCloseAfter(ctx context.Context, ws *websocket.Conn, grace time.Duration) (stop func()) {
	force := time.AfterFunc(time.Hour, func() { _ = ws.CloseNow() })
	force.Stop()
	armed := make(chan struct{})
	stopArm := context.AfterFunc(ctx, func() {
		force.Reset(grace)
		close(armed)
	})
	return func() {
		if !stopArm() {
			<-armed
		}
		force.Stop()
	}
}

// browserError is a WebSocket read or write error: the browser's side of
// the session ended or broke.
type browserError struct{ err error }

func (e *browserError) Error() string { return "websocket: " + e.err.Error() }
func (e *browserError) Unwrap() error { return e.err }

// closeFor closes ws as fits the reason the session ended. Only an idle
// session gets a close handshake (status 1000, "idle timeout"): it sent
// nothing for a while, so a close frame does not wait behind datagrams in a
// full TCP buffer. Every other end drops the connection at once: the
// library's close handshake cannot be cut short once begun (it may take
// 10 s with a browser that stopped reading), and a replaced or shut-down
// session must not hold anything up. Clients redial either way.
func closeFor(ws *websocket.Conn, cause error) {
	if errors.Is(cause, ErrIdleTimeout) {
		_ = ws.Close(websocket.StatusNormalClosure, "idle timeout")
		return
	}
	_ = ws.CloseNow()
}

// acceptResult is what Accept returns for the session's end.
func acceptResult(ctx context.Context, cause error) error {
	if be, ok := errors.AsType[*browserError](cause); ok {
		switch websocket.CloseStatus(be.err) {
		case websocket.StatusNormalClosure, websocket.StatusGoingAway:
			return nil
		}
		return fmt.Errorf("relay: session: %w", be)
	}
	if errors.Is(cause, ErrIdleTimeout) || errors.Is(cause, ErrReplaced) {
		return cause
	}
	return ctx.Err()
}

// endReason is the log value for why a session ended.
func endReason(err error) slog.Value {
	if err == nil {
		return slog.StringValue("closed by browser")
	}
	return slog.StringValue(err.Error())
}
