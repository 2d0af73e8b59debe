package mgmt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// Run brings the management tunnel up and serves it until ctx ends: a
// wireguard-go device with the relay's key over a gVisor netstack holding
// wire.RelayMgmtAddr, the management Bind, and the control protocol server
// on [wire.RelayMgmtAddr]:wire.ControlPort inside it. HandleMgmt accepts
// datagrams while Run serves.
//
// At start it marks every device this node held offline (left over from a
// crash); when ctx ends it stops everything it started, takes every online
// device offline (relay endpoint table and store), and returns nil. It
// returns an error only if the tunnel cannot be brought up. Run must be
// called once.
func (m *Mgmt) Run(ctx context.Context) error {
	if !m.ran.CompareAndSwap(false, true) {
		return errors.New("mgmt: Run called twice")
	}
	if _, err := m.store.SetNodeOffline(ctx, m.node); err != nil {
		if ctx.Err() != nil {
			return nil // asked to stop before it started: nothing to undo
		}
		return fmt.Errorf("mgmt: mark node %q offline: %w", m.node, err)
	}
	tunDev, tnet, err := netstack.CreateNetTUN([]netip.Addr{wire.RelayMgmtAddr}, nil, mtu)
	if err != nil {
		return fmt.Errorf("mgmt: netstack: %w", err)
	}
	dev := device.NewDevice(&observedTUN{Device: tunDev, m: m}, m.bind, wgLogger(m.log))
	defer dev.Close()
	if err := dev.IpcSet("private_key=" + m.private.Hex() + "\n"); err != nil {
		return fmt.Errorf("mgmt: set private key: %w", err)
	}
	if err := dev.Up(); err != nil {
		return fmt.Errorf("mgmt: device up: %w", err)
	}
	ln, err := tnet.ListenTCPAddrPort(netip.AddrPortFrom(wire.RelayMgmtAddr, wire.ControlPort))
	if err != nil {
		return fmt.Errorf("mgmt: listen control port: %w", err)
	}
	defer ln.Close()
	ping, err := tnet.ListenPingAddr(wire.RelayMgmtAddr)
	if err != nil {
		return fmt.Errorf("mgmt: ping socket: %w", err)
	}
	defer ping.Close()

	m.ipcMu.Lock()
	m.dev = dev
	m.ipcMu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { m.acceptLoop(ctx, ln, &wg) })
	wg.Go(func() { drainPings(ctx, ping) })
	wg.Go(func() { m.presenceLoop(ctx) })
	wg.Go(func() { m.sweepLoop(ctx, ping) })
	for range intakeWorkers() {
		wg.Go(func() { m.intakeLoop(ctx) })
		wg.Go(func() { m.rehandshakeLoop(ctx) })
	}
	m.running.Store(true)
	m.log.Info("mgmt: management tunnel up", "public_key", m.public, "addr", wire.RelayMgmtAddr, "control_port", wire.ControlPort)

	<-ctx.Done()
	m.running.Store(false)
	cancel()
	_ = ln.Close()
	_ = ping.Close()
	m.closeControls()
	wg.Wait()
	m.ipcMu.Lock()
	m.dev = nil // RemoveDevice from now on only updates the tables
	m.ipcMu.Unlock()
	dev.Close() // no more Bind.Send: nothing changes behind shutdown's back
	m.shutdown()
	return nil
}

// sweepLoop runs sweep until ctx ends.
func (m *Mgmt) sweepLoop(ctx context.Context, ping *netstack.PingConn) {
	t := time.NewTicker(m.sweepInterval())
	defer t.Stop()
	var seq uint16
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.sweep(m.now(), ping, &seq)
		}
	}
}

// closeControls ends every control connection.
func (m *Mgmt) closeControls() {
	m.mu.RLock()
	ccs := make([]*controlConn, 0, len(m.controls))
	for cc := range m.controls {
		ccs = append(ccs, cc)
	}
	m.mu.RUnlock()
	for _, cc := range ccs {
		cc.close()
	}
}

// shutdown takes every device offline and forgets the peers. It runs after
// every goroutine of Run ended and the wireguard-go device is closed.
func (m *Mgmt) shutdown() {
	m.outMu.Lock()
	m.mu.Lock()
	var online []string
	for _, p := range m.byKey {
		p.evicted = true
		if p.online {
			online = append(online, p.id)
			p.online = false
		}
	}
	clear(m.byKey)
	clear(m.byID)
	clear(m.byAddr)
	clear(m.byIndex)
	m.mu.Unlock()
	for _, id := range online {
		m.endpoints.ClearDevice(id)
	}
	m.outMu.Unlock()
	m.presence.take() // superseded by SetNodeOffline
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if _, err := m.store.SetNodeOffline(ctx, m.node); err != nil {
		m.log.Warn("mgmt: cannot mark devices offline", "node", m.node, "err", err)
	}
	m.log.Info("mgmt: management tunnel down", "devices_online", len(online))
}

// wgLogger adapts slog to wireguard-go's logger: its verbose lines at debug
// level (formatted only when that level is on), its errors as warnings,
// rate-limited since some are per packet.
func wgLogger(l *slog.Logger) *device.Logger {
	verbose := device.DiscardLogf
	if l.Enabled(context.Background(), slog.LevelDebug) {
		verbose = func(format string, args ...any) {
			l.Debug("wireguard: "+fmt.Sprintf(format, args...), "component", "wireguard")
		}
	}
	var lim logLimiter
	errorf := func(format string, args ...any) {
		if lim.allow() {
			l.Warn("wireguard: "+fmt.Sprintf(format, args...), "component", "wireguard")
		}
	}
	return &device.Logger{Verbosef: verbose, Errorf: errorf}
}

// logLimiter lets a few log lines a second through, for errors that may
// repeat per packet (the packet path does not log per packet).
type logLimiter struct {
	mu    sync.Mutex
	start time.Time // of the current second; guarded by mu
	n     int       // lines in it; guarded by mu
}

// allow reports whether one more line may be logged now.
func (l *logLimiter) allow() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now := time.Now(); now.Sub(l.start) >= time.Second {
		l.start, l.n = now, 0
	}
	l.n++
	return l.n <= 5
}
