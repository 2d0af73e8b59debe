package tunnel

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// Tunnel is an open session: a userspace WireGuard interface whose one peer
// is the device, reached through the relay. Its methods are safe for
// concurrent use.
type Tunnel struct {
	cfg       Config // with defaults; immutable
	log       *slog.Logger
	bind      *Bind
	dev       *device.Device
	net       *netstack.Net
	transport *http.Transport

	// rehandshake has a token when the bind reconnected and the peer's
	// session should be restarted; the rehandshake goroutine takes it.
	rehandshake chan struct{}
	done        chan struct{} // closed by Close
	wg          sync.WaitGroup
	closeOnce   sync.Once

	endOnce sync.Once
	ended   chan struct{} // closed by Close or when the relay ends the session
	endErr  error         // why ended was closed; written before closing it

	// lastHandshake is the latest completed handshake seen, in Unix
	// nanoseconds; kept here because re-adding the peer resets wireguard-go's.
	lastHandshake atomic.Int64
}

// Dial brings up a tunnel for cfg: it dials the relay's WebSocket (bounded by
// ctx), starts wireguard-go on a netstack TUN with the slot's keys and
// returns once the interface is up. The WireGuard handshake then starts at
// once (with a keepalive configured) or with the first packet, and
// connections dialled before it completes simply wait for it.
//
// A refused WebSocket is reported as a *DialError (with the relay's HTTP
// status where the platform shows it); a bad cfg as an error wrapping
// ErrInvalidConfig. ctx only bounds Dial itself; Close ends the tunnel.
func Dial(ctx context.Context, cfg Config) (*Tunnel, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	t := &Tunnel{
		cfg:         cfg,
		log:         cfg.Logger.With("component", "tunnel", "peer", cfg.PeerPublicKey),
		rehandshake: make(chan struct{}, 1),
		done:        make(chan struct{}),
		ended:       make(chan struct{}),
	}
	t.bind = NewBind(BindConfig{
		URL:           cfg.URL,
		Header:        cfg.Header,
		HTTPClient:    cfg.HTTPClient,
		Logger:        cfg.Logger,
		PacketSize:    cfg.MTU + 2*wgTransportOverhead,
		ReconnectFunc: t.requestRehandshake,
		EndFunc:       t.end,
	})
	if err := t.bind.connect(ctx); err != nil {
		return nil, fmt.Errorf("tunnel: %w", err)
	}
	tunDev, tnet, err := netstack.CreateNetTUN(cfg.LocalAddrs, nil, cfg.MTU)
	if err != nil {
		t.bind.dropPending()
		return nil, fmt.Errorf("tunnel: netstack: %w", err)
	}
	t.net = tnet
	t.dev = device.NewDevice(tunDev, t.bind, newWireGuardLogger(cfg.Logger))
	// Up first, then configure. NewDevice also brings the interface up by
	// itself, on its own goroutine, when netstack reports "up" (at once).
	// Were the peer configured while that is under way, its first handshake
	// initiation could meet a Bind not yet open and be lost, and wireguard-go
	// sends the next one only after RekeyTimeout (5 s). Once Up returns the
	// Bind is open (it adopted the connection connect made), so the
	// initiation the new peer sends at once goes out.
	if err := t.dev.Up(); err != nil {
		t.dev.Close()
		t.bind.dropPending()
		return nil, fmt.Errorf("tunnel: bring wireguard up: %w", err)
	}
	if err := t.dev.IpcSet(cfg.interfaceUAPI()); err != nil {
		t.dev.Close()
		t.bind.dropPending()
		return nil, fmt.Errorf("tunnel: configure wireguard: %w", err)
	}
	t.transport = t.newTransport()
	t.wg.Go(t.rehandshakeLoop)
	t.wg.Go(t.stallLoop)
	t.log.Info("tunnel up", "relay", redactURL(cfg.URL), "mtu", cfg.MTU)
	return t, nil
}

// DialContext opens a TCP connection through the tunnel. network is "tcp",
// "tcp4" or "tcp6"; address is a literal IP and port ("10.77.0.1:80",
// "[fdb1:d4e1:a7ff::1]:80"): there is no name resolution inside the tunnel.
// It fails with net.ErrClosed (inside a *net.OpError) after Close.
func (t *Tunnel) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	opErr := func(err error) error {
		return &net.OpError{Op: "dial", Net: network, Err: err}
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return nil, opErr(fmt.Errorf("tunnel dials literal IP addresses only: %w", err))
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	switch {
	case network == "tcp",
		network == "tcp4" && ap.Addr().Is4(),
		network == "tcp6" && ap.Addr().Is6():
	case network == "tcp4" || network == "tcp6":
		return nil, opErr(&net.AddrError{Err: "address family mismatch", Addr: address})
	default:
		return nil, opErr(net.UnknownNetworkError(network))
	}
	select {
	case <-t.done:
		return nil, opErr(net.ErrClosed)
	default:
	}
	c, err := t.net.DialContextTCPAddrPort(ctx, ap)
	if err != nil {
		return nil, opErr(err)
	}
	return c, nil
}

// HTTPClient returns an HTTP/1.1 client whose every connection goes through
// the tunnel: keep-alive, up to 16 idle connections per host and no limit on
// parallel ones, no proxy from the environment (that would leave the
// tunnel). All clients of a Tunnel share one connection pool. Use URLs with
// the device's tunnel address, e.g. http://10.77.0.1/.
func (t *Tunnel) HTTPClient() *http.Client {
	return &http.Client{Transport: t.transport}
}

// newTransport builds the transport behind HTTPClient. Setting DialContext
// also matters under js/wasm: without it net/http would use the browser's
// fetch and bypass the tunnel.
func (t *Tunnel) newTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 nil,
		DialContext:           t.DialContext,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Stats returns the tunnel's counters (see Stats) with the time of the last
// completed WireGuard handshake.
func (t *Tunnel) Stats() Stats {
	s := t.bind.Stats()
	t.noteHandshake()
	if ns := t.lastHandshake.Load(); ns != 0 {
		s.LastHandshake = time.Unix(0, ns)
	}
	return s
}

// Done returns a channel that is closed when the tunnel can carry no more
// traffic: after Close, or when the relay ended the session for good (Err
// tells which). A dropped WebSocket does not close it; the tunnel redials.
func (t *Tunnel) Done() <-chan struct{} { return t.ended }

// Err returns nil while the tunnel runs, and after Done is closed why: an
// error wrapping ErrSessionEnded if the relay ended the session (the tunnel
// still needs Close), or net.ErrClosed after Close.
func (t *Tunnel) Err() error {
	select {
	case <-t.ended:
		return t.endErr
	default:
		return nil
	}
}

// end closes Done with err, once.
func (t *Tunnel) end(err error) {
	t.endOnce.Do(func() {
		t.endErr = err
		close(t.ended)
	})
}

// Close tears the tunnel down: the WebSocket (with a close handshake, so the
// relay frees the slot at once), WireGuard, the netstack and every open
// connection. It waits for all goroutines of the tunnel to end and always
// returns nil; later calls do nothing.
func (t *Tunnel) Close() error {
	t.closeOnce.Do(func() {
		t.end(net.ErrClosed)
		close(t.done)
		t.wg.Wait()
		t.transport.CloseIdleConnections()
		t.dev.Close() // closes the TUN (netstack) and the Bind
		t.bind.dropPending()
		t.log.Info("tunnel closed")
	})
	return nil
}

// requestRehandshake is the Bind's ReconnectFunc: it must not block.
func (t *Tunnel) requestRehandshake() {
	select {
	case t.rehandshake <- struct{}{}:
	default:
	}
}

// rehandshakeLoop restarts the peer's WireGuard session after every
// reconnect, until Close. A relay that restarted knows none of the receiver
// indexes of the old session and would drop the device's transport packets
// until the next handshake, up to two minutes away; a new handshake now
// costs one round trip. It runs on its own goroutine because reconfiguring
// a peer waits for the peer's goroutines, which may be sending on the Bind.
func (t *Tunnel) rehandshakeLoop() {
	for {
		select {
		case <-t.done:
			return
		case <-t.rehandshake:
		}
		t.noteHandshake()
		if err := t.dev.IpcSet(t.cfg.rehandshakeUAPI()); err != nil {
			t.log.Warn("restart wireguard session", "error", err)
			continue
		}
		t.log.Debug("wireguard session restarted after reconnect")
	}
}

// noteHandshake records wireguard-go's last handshake time if it is newer
// than the one recorded.
func (t *Tunnel) noteHandshake() {
	get, err := t.dev.IpcGet()
	if err != nil {
		return
	}
	hs, err := parseLastHandshake(get)
	if err != nil || hs.IsZero() {
		return
	}
	for {
		old := t.lastHandshake.Load()
		if hs.UnixNano() <= old || t.lastHandshake.CompareAndSwap(old, hs.UnixNano()) {
			return
		}
	}
}

// parseLastHandshake finds the peer's last handshake in a UAPI "get" answer;
// zero if there was none.
func parseLastHandshake(get string) (time.Time, error) {
	var sec, nsec int64
	sc := bufio.NewScanner(strings.NewReader(get))
	for sc.Scan() {
		key, value, _ := strings.Cut(sc.Text(), "=")
		var err error
		switch key {
		case "last_handshake_time_sec":
			sec, err = strconv.ParseInt(value, 10, 64)
		case "last_handshake_time_nsec":
			nsec, err = strconv.ParseInt(value, 10, 64)
		}
		if err != nil {
			return time.Time{}, fmt.Errorf("uapi %s: %w", key, err)
		}
	}
	if sec == 0 && nsec == 0 {
		return time.Time{}, nil
	}
	return time.Unix(sec, nsec), nil
}

// newWireGuardLogger adapts wireguard-go's printf logging to slog: verbose
// messages at Debug (formatted only if Debug is on), errors at Warn.
func newWireGuardLogger(l *slog.Logger) *device.Logger {
	l = l.With("component", "wireguard")
	wl := &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf:   func(format string, args ...any) { l.Warn(fmt.Sprintf(format, args...)) },
	}
	if l.Enabled(context.Background(), slog.LevelDebug) {
		wl.Verbosef = func(format string, args ...any) { l.Debug(fmt.Sprintf(format, args...)) }
	}
	return wl
}

// stallLoop restarts the WireGuard session when datagrams go out and
// nothing comes back for stallAfter: the device lost the session (it
// rebooted) and wireguard-go itself would wait 15 s.
func (t *Tunnel) stallLoop() {
	const stallAfter = 3 * time.Second
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	st := t.bind.Stats()
	lastRx, txAtRx, since := st.RxPackets, st.TxPackets, time.Now()
	for {
		select {
		case <-t.done:
			return
		case <-tick.C:
		}
		st := t.bind.Stats()
		now := time.Now()
		if st.RxPackets != lastRx {
			lastRx, txAtRx, since = st.RxPackets, st.TxPackets, now
			continue
		}
		if now.Sub(since) >= stallAfter && st.TxPackets-txAtRx >= 3 {
			t.log.Info("no answer from the device; restarting the wireguard session")
			t.requestRehandshake()
			txAtRx, since = st.TxPackets, now
		}
	}
}
