package device

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wire"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// ErrRunning: Run was called while the device is already running.
var ErrRunning = errors.New("device is already running")

// Timeouts of Run's web UI server.
const (
	uiReadHeaderTimeout = 30 * time.Second
	uiIdleTimeout       = 2 * time.Minute
	// uiDrainTimeout bounds how long Run waits for UI handlers to return
	// after the interface is gone.
	uiDrainTimeout = 5 * time.Second
)

// Run brings the device up and keeps it up until ctx ends: the WireGuard
// interface (one UDP socket; the relay peer and a peer per key slot, all at
// the relay's endpoint), the web UI (Config.UI) on the session addresses
// inside the tunnel, reachable from key-slot peers only, and the control
// protocol client, which redials the relay with backoff for as long as Run
// lives. While the relay is away the interface stays up: keepalives go on and
// WireGuard handshakes again when the relay is back.
//
// It returns nil once ctx ends and everything it started has stopped, or an
// error if the interface cannot be brought up. A Device runs once at a time
// (ErrRunning); Run may be called again after it returned.
func (d *Device) Run(ctx context.Context) error {
	d.mu.Lock()
	if d.running {
		d.mu.Unlock()
		return ErrRunning
	}
	d.running = true
	st := d.st
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.running, d.wg, d.listenPort = false, nil, 0
		d.mu.Unlock()
	}()

	endpoint, err := d.resolveRelay(ctx, st.Relay.Endpoint)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("run device: %w", err)
	}
	f, err := st.iface(d.cfg.MTU)
	if err != nil {
		return fmt.Errorf("run device: %w", err)
	}
	tunDev, tnet, err := netstack.CreateNetTUN(st.localAddrs(), nil, d.cfg.MTU)
	if err != nil {
		return fmt.Errorf("run device: netstack: %w", err)
	}
	wgd := device.NewDevice(tunDev, conn.NewDefaultBind(), wgLogger(d.log.With("component", "wireguard")))
	defer wgd.Close() // closes the netstack and the UDP socket
	if err := wgd.IpcSet(f.uapi(d.cfg.ListenPort, endpoint)); err != nil {
		return fmt.Errorf("run device: configure wireguard: %w", err)
	}
	if err := wgd.Up(); err != nil {
		return fmt.Errorf("run device: bring wireguard up: %w", err)
	}
	port, err := boundPort(wgd)
	if err != nil {
		return fmt.Errorf("run device: %w", err)
	}
	d.mu.Lock()
	d.wg, d.listenPort = wgd, port
	d.mu.Unlock()

	ui, err := d.startUI(ctx, tnet)
	if err != nil {
		return fmt.Errorf("run device: %w", err)
	}
	cc := d.newControlClient(tnet, netip.AddrPortFrom(st.Relay.RelayMgmtAddr, uint16(st.Relay.ControlPort)), endpoint)
	var wg sync.WaitGroup
	wg.Go(func() { cc.run(ctx) })

	d.log.Info("device up", "public_key", st.Private.Public(), "listen_port", port,
		"relay_endpoint", endpoint, "mgmt_addr", st.Relay.MgmtAddr, "slots", len(st.Slots))
	<-ctx.Done()

	ui.close()
	wg.Wait()
	wgd.Close() // ends hijacked UI connections (WebSockets) too
	ui.drain(d.log)
	d.log.Info("device down")
	return nil
}

// boundPort reads the UDP port wireguard-go bound.
func boundPort(wgd *device.Device) (int, error) {
	get, err := wgd.IpcGet()
	if err != nil {
		return 0, fmt.Errorf("read wireguard state: %w", err)
	}
	sc := bufio.NewScanner(strings.NewReader(get))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "listen_port="); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, errors.New("wireguard reports no listen port")
}

// resolveRelay turns the relay's UDP endpoint (host:port) into an address,
// looking a name up until it resolves or ctx ends.
func (d *Device) resolveRelay(ctx context.Context, endpoint string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(endpoint); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	host, portStr, err := net.SplitHostPort(endpoint)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("relay endpoint %q: %w", endpoint, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("relay endpoint %q: bad port", endpoint)
	}
	b := newBackoff(time.Second, time.Minute)
	for {
		addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err == nil && len(addrs) > 0 {
			return netip.AddrPortFrom(addrs[0].Unmap(), uint16(port)), nil
		}
		d.log.Warn("resolve relay endpoint", "endpoint", endpoint, "error", err)
		if !b.wait(ctx) {
			return netip.AddrPort{}, ctx.Err()
		}
	}
}

// uiServer is the web UI inside the tunnel.
type uiServer struct {
	srv      *http.Server
	wg       sync.WaitGroup // the Serve loops
	handlers sync.WaitGroup // requests in flight, hijacked ones included
}

// startUI serves d.cfg.UI on the session addresses, port DeviceUIPort.
// Requests see ctx (through their context), so that long-lived handlers
// such as WebSockets end with Run.
func (d *Device) startUI(ctx context.Context, tnet *netstack.Net) (*uiServer, error) {
	u := &uiServer{}
	u.srv = &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			u.handlers.Add(1)
			defer u.handlers.Done()
			d.cfg.UI.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: uiReadHeaderTimeout,
		IdleTimeout:       uiIdleTimeout,
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ErrorLog:          slog.NewLogLogger(d.log.With("component", "ui").Handler(), slog.LevelDebug),
	}
	var ls []net.Listener
	for _, a := range []netip.Addr{wire.DeviceSessionAddr4, wire.DeviceSessionAddr6} {
		l, err := tnet.ListenTCPAddrPort(netip.AddrPortFrom(a, wire.DeviceUIPort))
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		ls = append(ls, &slotListener{Listener: l, log: d.log})
	}
	for _, l := range ls {
		u.wg.Go(func() { u.srv.Serve(l) })
	}
	return u, nil
}

// close stops accepting and closes every connection but hijacked ones.
func (u *uiServer) close() {
	u.srv.Close()
	u.wg.Wait()
}

// drain waits a while for handlers still running (hijacked connections,
// which end when the interface is closed under them).
func (u *uiServer) drain(log *slog.Logger) {
	done := make(chan struct{})
	go func() {
		u.handlers.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(uiDrainTimeout):
		log.Warn("web UI handlers still running after shutdown")
	}
}

// The key slots' address ranges: only connections from these reach the UI.
var (
	slotRange4 = netip.MustParsePrefix("10.77.1.0/24")
	slotRange6 = netip.MustParsePrefix("fdb1:d4e1:a7ff::1:0/112")
)

// slotListener accepts only connections from key-slot addresses. Inside the
// tunnel WireGuard binds each peer to its allowed IPs, so a connection from
// a slot address comes from that slot's browser; the relay's management
// peer could otherwise open connections to the UI's IPv6 address (its own
// source address is allowed, the destination is not checked by WireGuard)
// and read the UI in the clear. The relay must only ever see ciphertext.
type slotListener struct {
	net.Listener
	log *slog.Logger
}

func (l *slotListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if allowedUIPeer(c.RemoteAddr()) {
			return c, nil
		}
		l.log.Warn("web UI connection from outside the key slots refused", "remote_addr", c.RemoteAddr().String())
		c.Close()
	}
}

func allowedUIPeer(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return false
	}
	ip := ta.AddrPort().Addr().Unmap()
	return slotRange4.Contains(ip) || slotRange6.Contains(ip)
}

// backoff is an exponential backoff with jitter.
type backoff struct {
	min, max, next time.Duration
}

func newBackoff(min, max time.Duration) *backoff {
	return &backoff{min: min, max: max, next: min}
}

// reset starts over at min.
func (b *backoff) reset() { b.next = b.min }

// wait sleeps for the next interval (0.5..1.5 of it) and doubles it; false
// if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	d := b.next/2 + rand.N(b.next+1)
	b.next = min(2*b.next, b.max)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
