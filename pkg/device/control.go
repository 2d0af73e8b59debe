package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wire"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// Timing of the control protocol client. Liveness of the device is
// WireGuard's business (keepalives); these only notice a dead TCP
// connection, e.g. after the relay restarted and lost its end.
type controlTiming struct {
	dialTimeout  time.Duration // one TCP connect through the tunnel
	helloTimeout time.Duration // from connect to the HelloAck
	pingInterval time.Duration // a Ping after this long without a frame
	pongTimeout  time.Duration // no frame for this long after a Ping: dead
	minBackoff   time.Duration // between redials, doubling up to maxBackoff
	maxBackoff   time.Duration
	noVersion    time.Duration // wait after a HelloAck without a common version
}

var defaultControlTiming = controlTiming{
	dialTimeout:  20 * time.Second,
	helloTimeout: 20 * time.Second,
	pingInterval: 25 * time.Second,
	pongTimeout:  15 * time.Second,
	minBackoff:   time.Second,
	maxBackoff:   time.Minute,
	noVersion:    10 * time.Minute,
}

// controlCapabilities are the capabilities the device announces.
var controlCapabilities = []string{wire.CapabilityOwnerCommands}

// errControlTimeout: the relay did not answer in time; the WireGuard
// session to it may be stale.
var errControlTimeout = errors.New("control connection timed out")

// controlClient speaks the control protocol (docs/protocol.md §5) to the
// relay, from the device's management address through the tunnel.
type controlClient struct {
	d        *Device
	log      *slog.Logger
	net      *netstack.Net
	addr     netip.AddrPort // [RelayMgmtAddr]:ControlPort
	endpoint netip.AddrPort // the relay's UDP endpoint, to re-add its peer
	timing   controlTiming
}

func (d *Device) newControlClient(tnet *netstack.Net, addr, endpoint netip.AddrPort) *controlClient {
	return &controlClient{
		d:        d,
		log:      d.log.With("component", "control"),
		net:      tnet,
		addr:     addr,
		endpoint: endpoint,
		timing:   d.controlTiming(),
	}
}

// run keeps a control connection to the relay until ctx ends, redialling
// with backoff.
func (c *controlClient) run(ctx context.Context) {
	b := newBackoff(c.timing.minBackoff, c.timing.maxBackoff)
	for {
		established, err := c.session(ctx)
		if ctx.Err() != nil {
			return
		}
		if established {
			b.reset()
		}
		switch {
		case errors.Is(err, wire.ErrNoCommonVersion):
			c.log.Warn("relay speaks no common control protocol version; the device stays reachable", "error", err, "retry_in", c.timing.noVersion)
			if !sleep(ctx, c.timing.noVersion) {
				return
			}
			continue
		case errors.Is(err, errControlTimeout):
			// The relay may have restarted and lost the WireGuard
			// session; handshake again now rather than after
			// WireGuard's own timeouts.
			c.log.Info("control connection lost", "error", err)
			c.d.rehandshakeRelay(c.endpoint)
		case established:
			// The relay ended the connection: it may be restarting, and
			// a new relay knows nothing of the old WireGuard session.
			c.log.Info("control connection lost", "error", err)
			c.d.rehandshakeRelay(c.endpoint)
		default:
			c.log.Debug("control connection failed", "error", err)
		}
		if !b.wait(ctx) {
			return
		}
	}
}

// session runs one control connection. established reports whether the
// relay answered the Hello.
func (c *controlClient) session(ctx context.Context) (established bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, c.timing.dialTimeout)
	conn, err := c.net.DialContextTCPAddrPort(dctx, c.addr)
	timedOut := errors.Is(dctx.Err(), context.DeadlineExceeded)
	cancel()
	if err != nil {
		if timedOut {
			err = errControlTimeout
		}
		return false, fmt.Errorf("dial %s: %w", c.addr, err)
	}
	// The reader hands over every message; it ends when conn is closed
	// or the session is over (sctx).
	sctx, cancel := context.WithCancel(ctx)
	msgs := make(chan wire.Control)
	readErr := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer conn.Close()
	defer cancel()
	// A write blocked on a stalled connection ends with ctx too.
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	wg.Go(func() { readErr <- c.read(sctx, conn, msgs) })

	info := c.d.state()
	hello := wire.Hello{
		Version:      wire.ProtocolVersion,
		MinVersion:   wire.MinProtocolVersion,
		Capabilities: controlCapabilities,
		Firmware:     c.d.cfg.Firmware,
		UID:          info.UID,
	}
	if err := c.write(conn, hello); err != nil {
		return false, err
	}

	timer := time.NewTimer(c.timing.helloTimeout)
	defer timer.Stop()
	var pingSeq uint64
	pinged := false
	for {
		select {
		case <-ctx.Done():
			return established, ctx.Err()
		case err := <-readErr:
			return established, err
		case <-timer.C:
			switch {
			case !established:
				return false, fmt.Errorf("no HelloAck: %w", errControlTimeout)
			case pinged:
				return true, fmt.Errorf("no answer to ping %d: %w", pingSeq, errControlTimeout)
			}
			pingSeq++
			if err := c.write(conn, wire.Ping{Seq: pingSeq}); err != nil {
				return true, err
			}
			pinged = true
			timer.Reset(c.timing.pongTimeout)
		case m := <-msgs:
			// Any frame shows the connection is alive.
			pinged = false
			if established {
				timer.Reset(c.timing.pingInterval)
			}
			switch m := m.(type) {
			case wire.HelloAck:
				if established {
					continue
				}
				if m.Version == 0 {
					return false, fmt.Errorf("%w: %s", wire.ErrNoCommonVersion, m.Error)
				}
				established = true
				timer.Reset(c.timing.pingInterval)
				c.log.Info("control connection up", "version", m.Version, "capabilities", m.Capabilities)
			case wire.Ping:
				if err := c.write(conn, wire.Pong{Seq: m.Seq}); err != nil {
					return established, err
				}
			case wire.Pong:
			case wire.SignedCommand:
				ack := c.d.handleCommand(m, time.Now())
				if err := c.write(conn, ack); err != nil {
					return established, err
				}
			default:
				// Hello, CommandAck: not for a device to receive.
				c.log.Debug("unexpected control frame ignored", "type", m.FrameType())
			}
		}
	}
}

// read reads messages into msgs until the connection fails. Frames of
// unknown types are skipped (wire.ReadMessage), as are malformed payloads;
// anything else ends the connection.
func (c *controlClient) read(ctx context.Context, conn net.Conn, msgs chan<- wire.Control) error {
	for {
		m, err := wire.ReadMessage(conn)
		if errors.Is(err, wire.ErrBadPayload) {
			c.log.Warn("malformed control frame skipped", "error", err)
			continue
		}
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		select {
		case msgs <- m:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// write sends one message, giving up after the ping timeout.
func (c *controlClient) write(conn net.Conn, m wire.Control) error {
	conn.SetWriteDeadline(time.Now().Add(c.timing.pongTimeout))
	if err := wire.WriteMessage(conn, m); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// rehandshakeRelay removes and re-adds the relay's peer, which starts a new
// WireGuard handshake at once (the persistent keepalive fires when the peer
// comes up).
func (d *Device) rehandshakeRelay(endpoint netip.AddrPort) {
	d.mu.Lock()
	wgd, st := d.wg, d.st
	d.mu.Unlock()
	if wgd == nil {
		return
	}
	var b strings.Builder
	b.WriteString(removeUAPI(st.Relay.PublicKey))
	st.relayPeer().writeUAPI(&b, endpoint)
	if err := wgd.IpcSet(b.String()); err != nil {
		d.log.Warn("restart the relay's wireguard session", "error", err)
	}
}

// sleep waits for d or until ctx ends (false).
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
