package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// Defaults for Config fields left zero.
const (
	DefaultSessionQueue = 256             // datagrams queued toward one browser
	DefaultIdleTimeout  = 5 * time.Minute // a session with no datagram either way ends
)

// Implementation limits.
const (
	// maxDatagram bounds a datagram either way: the largest UDP payload,
	// and the WebSocket read limit of a session.
	maxDatagram = wire.MaxMessageSize
	// maxReadErrors is how many UDP read errors in a row Run tolerates
	// before it gives up on the socket.
	maxReadErrors = 100
)

// MgmtHandler receives every well-formed datagram the demultiplexer does not
// give to a browser session: management tunnel traffic, and anything it must
// judge itself (it counts its own drops).
type MgmtHandler interface {
	// HandleMgmt is called from the Server's UDP read loop, one datagram at
	// a time. It must not block for long and must not keep b after it
	// returns: the buffer is reused for the next datagram. from is the
	// source address, an IPv4 source as IPv4 (never IPv4-mapped IPv6).
	HandleMgmt(b []byte, from netip.AddrPort)
}

// Config configures a Server.
type Config struct {
	// Conn is the one UDP socket. The caller opens it, sizes its buffers
	// and closes it after Run returns; the Server only reads and writes.
	Conn *net.UDPConn
	// Mgmt gets the datagrams no session claims. Nil drops them (no_mgmt).
	Mgmt MgmtHandler
	// Logger logs session ends and socket errors; nil discards.
	Logger *slog.Logger
	// SessionQueue is the number of datagrams queued toward one browser
	// before tail drop; 0 means DefaultSessionQueue.
	SessionQueue int
	// IdleTimeout ends a session that relayed no datagram either way for
	// this long; 0 means DefaultIdleTimeout, a negative value disables it.
	IdleTimeout time.Duration
}

// Server is the UDP demultiplexer and the WebSocket bridge. Its methods are
// safe for concurrent use.
type Server struct {
	conn     *net.UDPConn
	mgmt     MgmtHandler
	logger   *slog.Logger
	queueLen int
	idle     time.Duration
	running  atomic.Bool // Run was called

	// mu guards devices, byAddr and the fields of every device and
	// session marked "guarded by Server.mu". The packet path takes it for
	// reading; writers are session start/end, handshakes crossing from a
	// browser (index learning) and endpoint changes.
	mu      sync.RWMutex
	devices map[string]*device         // by device ID
	byAddr  map[netip.AddrPort]*device // by current endpoint

	toDevice, toBrowser, toMgmt counter
	drops                       dropCounters
}

// New returns a Server for cfg. It does not start reading: call Run.
func New(cfg Config) (*Server, error) {
	if cfg.Conn == nil {
		return nil, errors.New("relay: config: Conn is nil")
	}
	if cfg.SessionQueue < 0 {
		return nil, fmt.Errorf("relay: config: SessionQueue %d is negative", cfg.SessionQueue)
	}
	if cfg.SessionQueue == 0 {
		cfg.SessionQueue = DefaultSessionQueue
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{
		conn:     cfg.Conn,
		mgmt:     cfg.Mgmt,
		logger:   cfg.Logger,
		queueLen: cfg.SessionQueue,
		idle:     cfg.IdleTimeout,
		devices:  make(map[string]*device),
		byAddr:   make(map[netip.AddrPort]*device),
		drops:    newDropCounters(),
	}, nil
}

// Run reads the UDP socket and demultiplexes every datagram until ctx ends
// (then it returns nil) or the socket fails (then it returns the error).
// It must be called once. To stop, Run sets a read deadline on the socket
// and clears it again before it returns; it does not close the socket.
func (s *Server) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("relay: Run called twice")
	}
	// Wake the blocked read when ctx ends; undo the deadline on the way
	// out, as the socket belongs to the caller.
	woken := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = s.conn.SetReadDeadline(time.Unix(1, 0))
		close(woken)
	})
	defer func() {
		if !stop() {
			<-woken
			_ = s.conn.SetReadDeadline(time.Time{})
		}
	}()
	r := newDatagramReader(s.conn)
	errs := 0
	for {
		n, err := r.read()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) || errs >= maxReadErrors {
				return fmt.Errorf("relay: read udp: %w", err)
			}
			if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
				return fmt.Errorf("relay: read udp: unexpected deadline: %w", err)
			}
			errs++
			s.drops.add(idxReadError)
			continue
		}
		errs = 0
		for i := range n {
			s.fromUDP(r.datagram(i))
		}
	}
}

// WriteTo sends b to the UDP address to through the relay's socket. It is
// for the management side (its conn.Bind); the session path never calls it.
func (s *Server) WriteTo(b []byte, to netip.AddrPort) error {
	if _, err := s.conn.WriteToUDPAddrPort(b, to); err != nil {
		return fmt.Errorf("relay: write udp %s: %w", to, err)
	}
	return nil
}

// SetDeviceEndpoint records ep as the device's current UDP address. Call it
// only when an authenticated management packet came from ep: it is the only
// way an address enters the session path. An endpoint another device held
// is taken from it (the newer proof wins).
func (s *Server) SetDeviceEndpoint(deviceID string, ep netip.AddrPort) {
	ep = netip.AddrPortFrom(ep.Addr().Unmap(), ep.Port())
	if !ep.IsValid() {
		s.ClearDevice(deviceID)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deviceLocked(deviceID)
	if d.ep == ep {
		return
	}
	if other := s.byAddr[ep]; other != nil {
		other.ep = netip.AddrPort{}
		s.gcDeviceLocked(other)
	}
	if d.ep.IsValid() {
		delete(s.byAddr, d.ep)
	}
	d.ep = ep
	s.byAddr[ep] = d
}

// ClearDevice forgets the device's endpoint (it went offline or was
// removed). Its sessions stay; datagrams toward it are dropped as
// device_offline until SetDeviceEndpoint is called again, so a rebooting
// device does not end the browser's session.
func (s *Server) ClearDevice(deviceID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.devices[deviceID]
	if d == nil {
		return
	}
	if d.ep.IsValid() {
		delete(s.byAddr, d.ep)
		d.ep = netip.AddrPort{}
	}
	s.gcDeviceLocked(d)
}

// Stats returns a snapshot of the Server's counters.
func (s *Server) Stats() Stats {
	st := Stats{
		ToDevice:  s.toDevice.load(),
		ToBrowser: s.toBrowser.load(),
		ToMgmt:    s.toMgmt.load(),
		Drops:     s.drops.load(true),
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st.Devices = len(s.devices)
	st.Online = len(s.byAddr)
	for _, d := range s.devices {
		st.Sessions += len(d.sessions)
	}
	return st
}

// Sessions returns a snapshot of every live session's counters.
func (s *Server) Sessions() []SessionStats {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []SessionStats
	for _, d := range s.devices {
		for _, ss := range d.sessions {
			out = append(out, ss.stats())
		}
	}
	return out
}

// device is what the relay knows of one device.
type device struct {
	id string
	// ep is the current endpoint, zero while offline. Guarded by Server.mu.
	ep netip.AddrPort
	// sessions are the live sessions. Guarded by Server.mu.
	sessions []*session
	// index maps receiver indices learned from sessions' handshakes to
	// the session. Guarded by Server.mu.
	index map[uint32]*session
}

// deviceLocked returns the device, creating it. s.mu must be held for writing.
func (s *Server) deviceLocked(id string) *device {
	d := s.devices[id]
	if d == nil {
		d = &device{id: id, index: make(map[uint32]*session)}
		s.devices[id] = d
	}
	return d
}

// gcDeviceLocked forgets d once it has neither endpoint nor session. s.mu
// must be held for writing.
func (s *Server) gcDeviceLocked(d *device) {
	if !d.ep.IsValid() && len(d.sessions) == 0 && s.devices[d.id] == d {
		delete(s.devices, d.id)
	}
}
