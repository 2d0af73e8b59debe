package mgmt

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// Errors of SendCommand; test with errors.Is.
var (
	// ErrNotConnected: the device has no control connection (it is
	// offline, runs stock WireGuard, or has not connected yet), or it
	// ended before the device acknowledged the command.
	ErrNotConnected = errors.New("mgmt: device has no control connection")
	// ErrNoOwnerCommands: the device did not list
	// wire.CapabilityOwnerCommands in its Hello.
	ErrNoOwnerCommands = errors.New("mgmt: device does not accept owner commands")
	// ErrCommandPending: a command with the same id is already waiting for
	// its acknowledgement on this connection.
	ErrCommandPending = errors.New("mgmt: a command with this id is already pending")
)

// maxControlConns bounds the control connections one device may have open
// at once (a new one replaces the old after its Hello; this bounds those
// that never send one).
const maxControlConns = 4

// relayHello is the relay's side of the version negotiation.
var relayHello = wire.Hello{
	Version:      wire.ProtocolVersion,
	MinVersion:   wire.MinProtocolVersion,
	Capabilities: []string{wire.CapabilityOwnerCommands},
}

// controlConn is one device's control connection.
type controlConn struct {
	m    *Mgmt
	p    *peer
	c    net.Conn
	done chan struct{} // closed by close
	once sync.Once

	// Set after the Hello, before the connection is registered with p.
	ownerCommands bool

	wmu sync.Mutex // serialises writes

	// mu guards acks and the ping state.
	mu          sync.Mutex
	acks        map[string]chan wire.CommandAck
	pingSeq     uint64
	outstanding uint64 // the unanswered Ping's seq, 0 if none
}

// close ends the connection; serveControl then returns.
func (cc *controlConn) close() {
	cc.once.Do(func() {
		close(cc.done)
		_ = cc.c.SetDeadline(time.Unix(1, 0))
		_ = cc.c.Close()
	})
}

// write sends m, closing the connection on failure.
func (cc *controlConn) write(m wire.Control) error {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	return cc.writeLocked(m)
}

// writeLocked is write; cc.wmu must be held.
func (cc *controlConn) writeLocked(m wire.Control) error {
	_ = cc.c.SetWriteDeadline(time.Now().Add(writeTimeout))
	if err := wire.WriteMessage(cc.c, m); err != nil {
		cc.close()
		return err
	}
	return nil
}

// acceptLoop serves control connections until the listener is closed.
func (m *Mgmt) acceptLoop(ctx context.Context, ln net.Listener, wg *sync.WaitGroup) {
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			m.log.Warn("mgmt: control accept failed", "err", err)
			time.Sleep(10 * time.Millisecond) // do not spin on a broken listener
			continue
		}
		wg.Go(func() { m.serveControl(ctx, c) })
	}
}

// serveControl serves one control connection until it ends or ctx does.
// The connection's source address inside the tunnel names the device:
// wireguard-go let it through only from the peer whose allowed IP it is.
func (m *Mgmt) serveControl(ctx context.Context, c net.Conn) {
	defer c.Close()
	var remote netip.Addr
	if ta, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		remote = ta.AddrPort().Addr().Unmap()
	}
	m.mu.Lock()
	p := m.byAddr[remote]
	if p == nil || p.evicted || p.conns >= maxControlConns {
		m.mu.Unlock()
		return
	}
	p.conns++
	cc := &controlConn{m: m, p: p, c: c, done: make(chan struct{}), acks: make(map[string]chan wire.CommandAck)}
	m.controls[cc] = struct{}{}
	m.mu.Unlock()
	stop := context.AfterFunc(ctx, cc.close)
	defer func() {
		stop()
		cc.close()
		m.mu.Lock()
		delete(m.controls, cc)
		p.conns--
		if p.control == cc {
			p.control = nil
		}
		m.mu.Unlock()
	}()

	hello, err := readHello(c)
	if err != nil {
		m.log.Debug("mgmt: control connection without hello", "device_id", p.id, "err", err)
		return
	}
	ack, nerr := wire.Negotiate(relayHello, hello)
	cc.ownerCommands = slices.Contains(ack.Capabilities, wire.CapabilityOwnerCommands)
	if !m.register(cc, ack) {
		return
	}
	if err := m.store.SetFirmware(ctx, p.id, firmwareString(hello.Firmware), ack.Version); err != nil && ctx.Err() == nil {
		m.log.Warn("mgmt: cannot record firmware", "device_id", p.id, "err", err)
	}
	if nerr != nil {
		// No common version: nothing more is said on this connection,
		// but the tunnel (and the device's reachability) stays.
		m.log.Info("mgmt: control connection without a common version", "device_id", p.id,
			"device_version", hello.Version, "device_min_version", hello.MinVersion, "firmware", hello.Firmware)
		for {
			if _, err := wire.ReadFrame(c); err != nil {
				return
			}
		}
	}
	m.log.Info("mgmt: control connected", "device_id", p.id, "version", ack.Version,
		"capabilities", ack.Capabilities, "firmware", hello.Firmware)

	var pinger sync.WaitGroup
	pinger.Go(func() { cc.pingLoop(m.pingInterval) })
	defer pinger.Wait()
	defer cc.close()
	cc.readLoop()
	m.log.Info("mgmt: control disconnected", "device_id", p.id)
}

// register makes cc its device's control connection, replacing an older
// one, and answers the Hello with ack. It holds cc's write lock throughout,
// so that a command sent as soon as cc is registered follows the ack.
func (m *Mgmt) register(cc *controlConn, ack wire.HelloAck) bool {
	cc.wmu.Lock()
	defer cc.wmu.Unlock()
	m.mu.Lock()
	if cc.p.evicted {
		m.mu.Unlock()
		return false
	}
	old := cc.p.control
	cc.p.control = cc
	m.mu.Unlock()
	if old != nil {
		old.close()
	}
	return cc.writeLocked(ack) == nil
}

// maxFirmware bounds the firmware text kept from a Hello.
const maxFirmware = 256

// firmwareString returns the device's free-text firmware as it is stored:
// valid UTF-8, at most maxFirmware bytes.
func firmwareString(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for len(s) > maxFirmware {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}

// readHello reads frames until the Hello (frames before it are skipped)
// within helloTimeout.
func readHello(c net.Conn) (wire.Hello, error) {
	_ = c.SetReadDeadline(time.Now().Add(helloTimeout))
	defer func() { _ = c.SetReadDeadline(time.Time{}) }()
	for {
		msg, err := wire.ReadMessage(c)
		if errors.Is(err, wire.ErrBadPayload) {
			continue
		}
		if err != nil {
			return wire.Hello{}, err
		}
		if h, ok := msg.(wire.Hello); ok {
			return h, nil
		}
	}
}

// readLoop handles the device's frames until the connection ends.
func (cc *controlConn) readLoop() {
	for {
		msg, err := wire.ReadMessage(cc.c)
		if errors.Is(err, wire.ErrBadPayload) {
			continue // the stream is still in step
		}
		if err != nil {
			return
		}
		switch v := msg.(type) {
		case wire.Ping:
			if cc.write(wire.Pong(v)) != nil {
				return
			}
		case wire.Pong:
			cc.mu.Lock()
			if v.Seq == cc.outstanding {
				cc.outstanding = 0
			}
			cc.mu.Unlock()
		case wire.CommandAck:
			cc.mu.Lock()
			ch := cc.acks[v.ID]
			cc.mu.Unlock()
			if ch != nil {
				select {
				case ch <- v:
				default:
				}
			}
		default:
			// A second Hello, or a frame meant for the device: ignored.
		}
	}
}

// pingLoop pings the device every interval and ends the connection when a
// Ping is still unanswered at the next one.
func (cc *controlConn) pingLoop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-cc.done:
			return
		case <-t.C:
		}
		cc.mu.Lock()
		unanswered := cc.outstanding != 0
		cc.pingSeq++
		seq := cc.pingSeq
		cc.outstanding = seq
		cc.mu.Unlock()
		if unanswered {
			cc.m.log.Info("mgmt: control ping unanswered, closing", "device_id", cc.p.id)
			cc.close()
			return
		}
		if cc.write(wire.Ping{Seq: seq}) != nil {
			return
		}
	}
}

// SendCommand sends an owner-signed command to the device over its control
// connection and waits for the device's acknowledgement, or for ctx. The
// relay cannot make or change a command (it is signed by the owner's key);
// it only carries it. It fails with ErrNotConnected, ErrNoOwnerCommands or
// ErrCommandPending, or ctx's error.
func (m *Mgmt) SendCommand(ctx context.Context, deviceID string, sc wire.SignedCommand) (wire.CommandAck, error) {
	m.mu.RLock()
	var cc *controlConn
	if p := m.byID[deviceID]; p != nil {
		cc = p.control
	}
	m.mu.RUnlock()
	if cc == nil {
		return wire.CommandAck{}, ErrNotConnected
	}
	if !cc.ownerCommands {
		return wire.CommandAck{}, ErrNoOwnerCommands
	}
	id := sc.Command.ID
	ch := make(chan wire.CommandAck, 1)
	cc.mu.Lock()
	if _, dup := cc.acks[id]; dup {
		cc.mu.Unlock()
		return wire.CommandAck{}, ErrCommandPending
	}
	cc.acks[id] = ch
	cc.mu.Unlock()
	defer func() {
		cc.mu.Lock()
		delete(cc.acks, id)
		cc.mu.Unlock()
	}()
	if err := cc.write(sc); err != nil {
		return wire.CommandAck{}, fmt.Errorf("mgmt: send command to %s: %w", deviceID, errors.Join(ErrNotConnected, err))
	}
	select {
	case ack := <-ch:
		return ack, nil
	case <-cc.done:
		return wire.CommandAck{}, ErrNotConnected
	case <-ctx.Done():
		return wire.CommandAck{}, ctx.Err()
	}
}
