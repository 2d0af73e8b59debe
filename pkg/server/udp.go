package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/blindrelay/blindrelay/pkg/api"
	"github.com/blindrelay/blindrelay/pkg/mgmt"
	"github.com/blindrelay/blindrelay/pkg/relay"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// udpBufferSize is the receive and send buffer asked for on the UDP socket.
// Every device and every browser session shares the one socket; with
// Linux's default (208 KiB) bursts of a single TCP transfer inside a tunnel
// overflow it and TCP in the tunnel crawls (measured by pkg/tunnel's
// benchmarks).
const udpBufferSize = 4 << 20

// udpSide is the relay's WireGuard side: the one UDP socket, the
// demultiplexer and WebSocket bridge (pkg/relay) and the management tunnel
// (pkg/mgmt) reading from it, and the tunnel sessions the API hands over.
type udpSide struct {
	conn     *net.UDPConn
	relay    *relay.Server
	mgmt     *mgmt.Mgmt
	sessions *sessions
	node     string // this process in presence records

	// Set by start.
	stopMgmt, stopRelay context.CancelFunc
	mgmtDone, relayDone chan struct{} // closed when each Run returned
	failed              chan error    // the error of a Run that failed, wrapped
}

// newUDPSide binds cfg.UDP.Listen and builds the relay and the management
// tunnel on it; nothing runs until start. On error the socket is closed.
func newUDPSide(ctx context.Context, cfg Config, key wgkey.Private, st relayStore, logger *slog.Logger) (*udpSide, error) {
	var lc net.ListenConfig
	pc, err := lc.ListenPacket(ctx, "udp", cfg.UDP.Listen)
	if err != nil {
		return nil, fmt.Errorf("--udp-listen: %w", err)
	}
	conn := pc.(*net.UDPConn)
	sizeBuffers(conn, udpBufferSize, logger)

	node := cfg.Node
	if node == "" {
		if node, err = os.Hostname(); err != nil || node == "" {
			node = "relay"
		}
	}
	// The management tunnel sends through the relay and tells it where
	// devices are; the relay hands it what no session claims. link breaks
	// the cycle between the two constructors.
	link := &relayLink{}
	m, err := mgmt.New(mgmt.Config{
		Private:   key,
		Store:     st,
		Sender:    link,
		Endpoints: link,
		Node:      node,
		Logger:    logger.With("component", "mgmt"),
	})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("management tunnel: %w", err)
	}
	r, err := relay.New(relay.Config{Conn: conn, Mgmt: m, Logger: logger.With("component", "relay")})
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("relay: %w", err)
	}
	link.r = r
	return &udpSide{conn: conn, relay: r, mgmt: m, sessions: newSessions(r, m), node: node}, nil
}

// addr is the bound UDP address.
func (u *udpSide) addr() netip.AddrPort {
	ap := u.conn.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

// start runs the management tunnel and the relay's read loop, each until
// stop. Both start at once; until the management tunnel serves (a few
// milliseconds) it drops what the read loop hands it, and devices send
// their handshakes again. The error of a Run that fails (the tunnel cannot
// come up, the socket fails) is sent on failed.
func (u *udpSide) start() {
	mgmtCtx, stopMgmt := context.WithCancel(context.Background())
	relayCtx, stopRelay := context.WithCancel(context.Background())
	u.stopMgmt, u.stopRelay = stopMgmt, stopRelay
	u.mgmtDone, u.relayDone = make(chan struct{}), make(chan struct{})
	u.failed = make(chan error, 2)
	go func() {
		defer close(u.mgmtDone)
		if err := u.mgmt.Run(mgmtCtx); err != nil {
			u.failed <- fmt.Errorf("management tunnel: %w", err)
		}
	}()
	go func() {
		defer close(u.relayDone)
		if err := u.relay.Run(relayCtx); err != nil {
			u.failed <- fmt.Errorf("relay: %w", err)
		}
	}()
}

// stop ends what start started, in order: the tunnel sessions end, the
// read loop stops (nothing reaches the management tunnel any more), then
// the management tunnel takes its devices offline (in the store, which
// must still be open). The socket stays open for close. It returns the
// errors on failed that nobody took yet.
func (u *udpSide) stop() error {
	u.sessions.shutdown()
	u.stopRelay()
	<-u.relayDone
	u.stopMgmt()
	<-u.mgmtDone
	var errs []error
	for {
		select {
		case err := <-u.failed:
			errs = append(errs, err)
		default:
			return errors.Join(errs...)
		}
	}
}

// close closes the socket; calls after the first do nothing.
func (u *udpSide) close() error {
	if err := u.conn.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close udp socket: %w", err)
	}
	return nil
}

// relayLink forwards the management tunnel's output and endpoint changes
// to the relay, set once both exist (before anything runs).
type relayLink struct{ r *relay.Server }

func (l *relayLink) WriteTo(b []byte, to netip.AddrPort) error { return l.r.WriteTo(b, to) }
func (l *relayLink) SetDeviceEndpoint(id string, ep netip.AddrPort) {
	l.r.SetDeviceEndpoint(id, ep)
}
func (l *relayLink) ClearDevice(id string) { l.r.ClearDevice(id) }

// sessions is the API's api.Tunnels: it answers whether this node reaches
// a device (its management tunnel is up here) and carries each tunnel
// session with the relay. It tracks the sessions so that shutdown can end
// them: their WebSockets are hijacked connections, which
// http.Server.Shutdown neither closes nor waits for.
type sessions struct {
	relay *relay.Server
	mgmt  *mgmt.Mgmt

	mu      sync.Mutex
	closed  bool                        // guarded by mu; no new session starts
	cancels map[*int]context.CancelFunc // the live sessions; guarded by mu
	wg      sync.WaitGroup              // the live sessions
}

func newSessions(r *relay.Server, m *mgmt.Mgmt) *sessions {
	return &sessions{relay: r, mgmt: m, cancels: map[*int]context.CancelFunc{}}
}

// errShuttingDown ends a session that starts while the relay shuts down.
var errShuttingDown = errors.New("the relay is shutting down")

// Bounds of DeviceOnline's wait for a device it woke.
const (
	// wakeWait bounds the wait for a woken device: its answer to the
	// relay's initiation takes one round trip, a second or two on a slow
	// mobile link.
	wakeWait = 2 * time.Second
	// wakePoll is how often the wait looks at the device's state.
	wakePoll = 50 * time.Millisecond
)

// DeviceOnline implements api.Tunnels: the device's management tunnel is
// up on this node. A device that is not online but was recently seen (the
// relay restarted, say, and the device is idle until its next keepalive)
// is woken (mgmt.Wake) and waited for, up to wakeWait; a device there is
// nothing to wake for is answered at once.
func (s *sessions) DeviceOnline(deviceID string) bool {
	if s.mgmt.Online(deviceID) {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), wakeWait)
	defer cancel()
	if !s.mgmt.Wake(ctx, deviceID) {
		return s.mgmt.Online(deviceID) // it may have come online meanwhile
	}
	t := time.NewTicker(wakePoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return s.mgmt.Online(deviceID)
		case <-t.C:
			if s.mgmt.Online(deviceID) {
				return true
			}
		}
	}
}

// Serve implements api.Tunnels with relay.Accept.
func (s *sessions) Serve(ctx context.Context, ws *websocket.Conn, ts api.TunnelSession) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	key := new(int)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.CloseNow()
		return errShuttingDown
	}
	s.cancels[key] = cancel
	s.wg.Add(1)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.cancels, key)
		s.mu.Unlock()
		s.wg.Done()
	}()
	return s.relay.Accept(ctx, ws, relay.Session(ts))
}

// shutdown ends every session and waits for them; no session starts after
// it.
func (s *sessions) shutdown() {
	s.mu.Lock()
	s.closed = true
	for _, cancel := range s.cancels {
		cancel()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
