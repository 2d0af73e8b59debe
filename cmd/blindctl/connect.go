package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/tunnel"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// How connect waits.
const (
	// deviceDialTimeout bounds opening one TCP connection to the device
	// through the tunnel (it waits for the WireGuard handshake).
	deviceDialTimeout = 30 * time.Second
	// handshakeWarnAfter is when connect says that no WireGuard handshake
	// with the device has completed yet.
	handshakeWarnAfter = 15 * time.Second
)

var connectCommand = &command{
	name:    "connect",
	args:    "<id|uid>",
	nargs:   1,
	summary: "open a device's web UI on a local port, end to end encrypted",
	help: `Opens a session with a device and forwards a local TCP port to the device's web
UI through it, until Ctrl-C. The session is a WireGuard tunnel from this
machine to the device; the relay only passes its encrypted datagrams on and
cannot read or change them.

The tunnel's keys are those of one of your key slots on the device, sealed to
your account's key: connect asks for the password (or takes it from
` + envPassword + ` or --password-stdin) to open them on this machine. It uses
the first slot not in use by another session (a browser tab or another
connect); --slot N uses slot N only, even if a session of yours holds it,
e.g. one that did not end cleanly.

Every connection to the local port becomes a connection to the device's web
UI (` + wire.DeviceSessionAddr4.String() + `:` + strconv.Itoa(wire.DeviceUIPort) + ` inside the tunnel), many at a time. If the
connection to the relay drops, or the relay restarts, connect dials it again
and the tunnel resumes by itself; open connections may need a reload.

--listen is the local address, 127.0.0.1 and a free port by default; connect
prints the URL to open:

  Forwarding http://127.0.0.1:8080 -> warp2-AbCd (end to end encrypted)

Anyone who can reach that address uses your session, so keep it on a loopback
address unless you mean to share it.`,
	examples: []string{
		"blindctl connect warp2-AbCd --listen 127.0.0.1:8080",
		"BLINDRELAY_PASSWORD=... blindctl connect dev_8d0k2m",
	},
	setup: func(fs *flag.FlagSet) runFunc {
		listen := fs.String("listen", "127.0.0.1:0", "the local `ADDRESS` (host:port) to forward; port 0 picks a free one")
		slot := fs.Int("slot", -1, "use key slot `N` (0-based) only; -1: the first free one")
		verbose := fs.Bool("verbose", false, "log the tunnel's events in detail (includes wireguard-go's log)")
		return func(ctx context.Context, a *app, args []string) error {
			ap, err := parseListen(*listen)
			if err != nil {
				return err
			}
			if *slot < -1 || *slot > maxSlotIndex {
				return usageErrorf("--slot %d: a key slot index is 0 to %d (-1: any)", *slot, maxSlotIndex)
			}
			return a.connect(ctx, args[0], ap, *slot, *verbose)
		}
	},
}

// parseListen checks --listen: a literal IP address or "localhost", and a
// port.
func parseListen(s string) (string, error) {
	host, port, err := net.SplitHostPort(s)
	if err == nil {
		_, err = strconv.ParseUint(port, 10, 16)
	}
	if err == nil && host != "localhost" && host != "" {
		_, err = netip.ParseAddr(host)
	}
	if err != nil {
		return "", usageErrorf("--listen %q: want an IP address and a port, e.g. 127.0.0.1:8080", s)
	}
	return s, nil
}

// connect is 'blindctl connect': it finds the device, binds the local port,
// opens the key slot's keys with the password, brings the tunnel up and
// forwards until ctx ends (Ctrl-C) or the relay ends the session for good.
func (a *app) connect(ctx context.Context, ref, listen string, want int, verbose bool) error {
	if err := a.requireSession(); err != nil {
		return err
	}
	dev, err := a.findDevice(ctx, ref)
	if err != nil {
		return err
	}
	if !dev.Online {
		return errDeviceOffline(dev)
	}
	// Bind the port first: a port in use should fail before the password
	// is asked for, and cost no session.
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("--listen: %w", err)
	}
	defer ln.Close()
	uk, err := a.unlockKeys(ctx, "")
	if err != nil {
		return err
	}
	slots, err := a.client.DeviceSlots(ctx, dev.ID)
	if err != nil {
		return err
	}
	// Goroutines write to stdout and stderr from here on.
	a.stdout = &lockedWriter{w: a.stdout}
	a.stderr = &lockedWriter{w: a.stderr}
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level, ReplaceAttr: dropTime}))

	tun, slot, err := a.openSession(ctx, dev, slots, want, uk, logger)
	if err != nil {
		return err
	}
	defer tun.Close()

	a.printf("Forwarding http://%s -> %s (end to end encrypted)\n", ln.Addr(), dev.UID)
	if ip, ok := netip.AddrFromSlice(ln.Addr().(*net.TCPAddr).IP); ok && !ip.Unmap().IsLoopback() {
		a.warnf("blindctl: WARNING: %s is not a loopback address: anyone who can reach it uses this session.\n", ln.Addr())
	}
	a.warnf("Session on key slot %d of %s. Press Ctrl-C to stop.\n", slot, dev.UID)

	fctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		select {
		case <-tun.Done(): // the relay ended the session for good
			stop()
		case <-fctx.Done():
		}
	})
	wg.Go(func() { a.watchHandshake(fctx, tun, dev.UID) })
	target := netip.AddrPortFrom(wire.DeviceSessionAddr4, wire.DeviceUIPort).String()
	err = forward(fctx, ln, func(ctx context.Context) (net.Conn, error) {
		return tun.DialContext(ctx, "tcp4", target)
	}, func(format string, args ...any) { a.warnf("blindctl: "+format+"\n", args...) })
	stop()
	if err != nil {
		return err
	}
	if ctx.Err() == nil {
		if terr := tun.Err(); errors.Is(terr, tunnel.ErrSessionEnded) {
			return hint(fmt.Errorf("the relay ended the session with %s: %w", dev.UID, terr),
				"Another session took its key slot, or your access to the device ended. Run connect again to open a new one.")
		}
	}
	a.printf("Stopped forwarding to %s.\n", dev.UID)
	return nil
}

// errDeviceOffline says that the relay does not reach dev.
func errDeviceOffline(dev *apiclient.Device) error {
	seen := "the relay has never seen it"
	if !dev.LastSeenAt.IsZero() {
		seen = "the relay last saw it " + dev.LastSeenAt.Local().Format(timeFormat)
	}
	return hint(fmt.Errorf("device %s is offline: %s", dev.UID, seen),
		"Check that the device is on and has Internet access; 'blindctl devices' shows when it comes online.")
}

// openSession opens a tunnel to dev with the first of the user's key slots
// that is free and whose keys open (only slot want, if want >= 0), and
// returns it with the slot's index.
func (a *app) openSession(ctx context.Context, dev *apiclient.Device, slots []apiclient.DeviceSlot, want int, uk *zkcrypto.UserKeys, logger *slog.Logger) (*tunnel.Tunnel, int, error) {
	devKey, err := wgkey.PublicFromBytes(dev.PublicKey)
	if err != nil {
		return nil, 0, fmt.Errorf("device %s: the relay gave no valid WireGuard key for it: %w", dev.UID, err)
	}
	if len(slots) == 0 {
		return nil, 0, hint(fmt.Errorf("you have no key slots on device %s", dev.UID),
			"The device makes them when it is paired, or shared with you; pair it again if they are gone.")
	}
	slots = slices.Clone(slots)
	slices.SortFunc(slots, func(x, y apiclient.DeviceSlot) int { return x.Index - y.Index })
	if want >= 0 {
		i := slices.IndexFunc(slots, func(s apiclient.DeviceSlot) bool { return s.Index == want })
		if i < 0 {
			return nil, 0, fmt.Errorf("you have no key slot %d on device %s (you have %s)", want, dev.UID, slotList(slots))
		}
		slots = slots[i : i+1]
		slots[0].Busy = false // asked for: try it anyway
	}
	var lastErr error
	busy := 0
	for _, s := range slots {
		if s.Busy {
			busy++
			continue
		}
		cfg, err := a.sessionConfig(dev.ID, s, devKey, uk)
		if err != nil {
			a.warnf("blindctl: skipping key slot %d of %s: %v\n", s.Index, dev.UID, err)
			lastErr = err
			continue
		}
		cfg.Logger = logger
		tun, err := tunnel.Dial(ctx, cfg)
		if err == nil {
			return tun, s.Index, nil
		}
		err = tunnelError(err)
		switch apiclient.ErrorCode(err) {
		case "slot_busy": // taken since DeviceSlots answered
			if want >= 0 {
				return nil, 0, hint(err, "Another user's session holds it, or your relay cannot hand it over. Try another --slot, or none.")
			}
			busy++
			continue
		case "device_offline":
			return nil, 0, errDeviceOffline(dev)
		}
		return nil, 0, err
	}
	if busy > 0 {
		return nil, 0, hint(fmt.Errorf("all %d of your key slots on %s are in use by other sessions", busy, dev.UID),
			"Close another session with the device (a browser tab, another 'blindctl connect') and try again,\n"+
				"or take one of the slots over with --slot N (its session ends).")
	}
	return nil, 0, hint(fmt.Errorf("none of your key slots on %s opens with your keys: %w", dev.UID, lastErr),
		"The slots were sealed to other keys, e.g. before a password reset without the recovery file. Pair the device again.")
}

// slotList lists the indexes of slots, e.g. "0, 1, 2 and 3".
func slotList(slots []apiclient.DeviceSlot) string {
	var s string
	for i, sl := range slots {
		switch {
		case i == 0:
		case i == len(slots)-1:
			s += " and "
		default:
			s += ", "
		}
		s += strconv.Itoa(sl.Index)
	}
	return s
}

// maxSlotIndex is the highest key slot index (docs/api.md).
const maxSlotIndex = 253

// sessionConfig is the tunnel configuration for key slot s: the slot's
// keys opened with uk, its addresses and the relay's tunnel URL for it,
// authenticated with the session and checked with the run's TLS trust.
func (a *app) sessionConfig(deviceID string, s apiclient.DeviceSlot, devKey wgkey.Public, uk *zkcrypto.UserKeys) (tunnel.Config, error) {
	plain, err := uk.OpenSealed(s.Sealed)
	if err != nil {
		return tunnel.Config{}, fmt.Errorf("its sealed keys do not open: %w", err)
	}
	defer clear(plain)
	if len(plain) != 2*wgkey.Size {
		return tunnel.Config{}, fmt.Errorf("its sealed keys have %d bytes, want %d", len(plain), 2*wgkey.Size)
	}
	var priv wgkey.Private
	var psk wgkey.Preshared
	copy(priv[:], plain[:wgkey.Size])
	copy(psk[:], plain[wgkey.Size:])
	if pub := priv.Public(); !bytes.Equal(pub[:], s.BrowserPublicKey) {
		return tunnel.Config{}, errors.New("its private key does not belong to its public key")
	}
	v4, ok4 := wire.SlotAddr4(s.Index)
	v6, ok6 := wire.SlotAddr6(s.Index)
	if !ok4 || !ok6 {
		return tunnel.Config{}, fmt.Errorf("index %d is not a key slot index", s.Index)
	}
	u, err := url.Parse(a.client.BaseURL())
	if err != nil {
		return tunnel.Config{}, err
	}
	u = u.JoinPath("api/v1/devices", deviceID, "tunnel")
	u.RawQuery = url.Values{"slot": {strconv.Itoa(s.Index)}}.Encode()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+a.state.SessionToken)
	h.Set("User-Agent", "blindctl")
	return tunnel.Config{
		URL:           u.String(),
		Header:        h,
		HTTPClient:    a.hc,
		PrivateKey:    priv,
		PeerPublicKey: devKey,
		PresharedKey:  psk,
		LocalAddrs:    []netip.Addr{v4, v6},
		PeerAddrs: []netip.Prefix{
			netip.PrefixFrom(wire.DeviceSessionAddr4, 32),
			netip.PrefixFrom(wire.DeviceSessionAddr6, 128),
		},
	}, nil
}

// tunnelError turns the relay's refusal of the tunnel's WebSocket into the
// *apiclient.Error its JSON body describes.
func tunnelError(err error) error {
	de, ok := errors.AsType[*tunnel.DialError](err)
	if !ok || de.StatusCode == 0 {
		return err
	}
	var doc struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	e := &apiclient.Error{Status: de.StatusCode}
	if json.Unmarshal([]byte(de.Body), &doc) == nil && doc.Error.Code != "" {
		e.Code, e.Message = doc.Error.Code, doc.Error.Message
	} else {
		e.Message = fmt.Sprintf("the relay refused the tunnel: HTTP %d", de.StatusCode)
	}
	return fmt.Errorf("open tunnel: %w", e)
}

// watchHandshake says when no WireGuard handshake with the device has
// completed handshakeWarnAfter after the tunnel came up: connections then
// wait, and the user should know why.
func (a *app) watchHandshake(ctx context.Context, tun *tunnel.Tunnel, uid string) {
	start := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if !tun.Stats().LastHandshake.IsZero() {
			return
		}
		if time.Since(start) >= handshakeWarnAfter {
			a.warnf("blindctl: no WireGuard handshake with %s after %s; connections wait for it.\n"+
				"The device may have lost its Internet access, or its keys changed.\n", uid, handshakeWarnAfter)
			return
		}
	}
}

// forward accepts connections on ln until ctx ends and pipes each to a
// connection that dial opens, many at a time. It closes ln and every
// connection when ctx ends, and returns once all are closed. logf reports
// connections that fail.
func forward(ctx context.Context, ln net.Listener, dial func(context.Context) (net.Conn, error), logf func(format string, args ...any)) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	stopClose := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopClose()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors and the like: try again shortly.
			logf("accept: %v", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		wg.Go(func() { pipe(ctx, c, dial, logf) })
	}
}

// pipe copies between local and a connection dial opens, both ways, until
// both sides have finished or ctx ends. An end of data on one side is
// passed on as a half-close, so that request-then-close clients work.
func pipe(ctx context.Context, local net.Conn, dial func(context.Context) (net.Conn, error), logf func(format string, args ...any)) {
	defer local.Close()
	dctx, cancel := context.WithTimeout(ctx, deviceDialTimeout)
	remote, err := dial(dctx)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			logf("connection from %s: cannot reach the device: %v", local.RemoteAddr(), err)
		}
		return
	}
	defer remote.Close()
	closeBoth := func() {
		local.Close()
		remote.Close()
	}
	stop := context.AfterFunc(ctx, closeBoth)
	defer stop()
	done := make(chan struct{}, 2)
	copyHalf := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		if _, err := io.Copy(dst, src); err != nil {
			closeBoth() // a broken side ends the connection
			return
		}
		closeWrite(dst)
	}
	go copyHalf(remote, local)
	go copyHalf(local, remote)
	<-done
	<-done
}

// closeWrite half-closes c, or closes it if it cannot half-close.
func closeWrite(c net.Conn) {
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	c.Close()
}

// lockedWriter serialises writes of several goroutines to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// dropTime leaves the time out of connect's log lines: a person reads them
// as they come.
func dropTime(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.TimeKey {
		return slog.Attr{}
	}
	return a
}
