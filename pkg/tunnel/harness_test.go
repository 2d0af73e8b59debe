//go:build !js

package tunnel

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/coder/websocket"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// The session addressing of docs (ISSUE 3): the device and key slot 0.
var (
	deviceAddr4  = netip.MustParseAddr("10.77.0.1")
	deviceAddr6  = netip.MustParseAddr("fdb1:d4e1:a7ff::1")
	browserAddr4 = netip.MustParseAddr("10.77.1.1")
	browserAddr6 = netip.MustParseAddr("fdb1:d4e1:a7ff::1:1")
)

const (
	testCookie  = "s3ss10n"
	pageMarker  = "blindrelay test device page"
	sumHeader   = "X-Content-Sha256"
	patternSeed = "blindrelay tunnel test pattern!!" // 32 bytes, ChaCha8 seed
)

func testLogger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tb.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// testKeys are one device and one key slot.
type testKeys struct {
	device, browser wgkey.Private
	psk             wgkey.Preshared
}

func newTestKeys(tb testing.TB) testKeys {
	tb.Helper()
	var k testKeys
	var err error
	if k.device, err = wgkey.NewPrivate(); err != nil {
		tb.Fatal(err)
	}
	if k.browser, err = wgkey.NewPrivate(); err != nil {
		tb.Fatal(err)
	}
	if k.psk, err = wgkey.NewPreshared(); err != nil {
		tb.Fatal(err)
	}
	return k
}

// pattern is the deterministic content of /download?size=n.
func pattern(n int64) io.Reader {
	return io.LimitReader(rand.NewChaCha8([32]byte([]byte(patternSeed))), n)
}

// patternSum is the hex SHA-256 of pattern(n).
func patternSum(n int64) string {
	h := sha256.New()
	_, _ = io.Copy(h, pattern(n))
	return hex.EncodeToString(h.Sum(nil))
}

// testDevice is the device end of a session: a real wireguard-go device on a
// netstack TUN with a real UDP bind (conn.NewDefaultBind), serving the test
// web UI on port 80 of its tunnel addresses.
type testDevice struct {
	udpAddr netip.AddrPort // where the forwarder sends: 127.0.0.1:<port>
	dev     *device.Device

	mu      sync.Mutex
	remotes map[string]bool // guarded by mu: client addresses of HTTP requests
}

func newTestDevice(tb testing.TB, k testKeys) *testDevice {
	tb.Helper()
	tunDev, tnet, err := netstack.CreateNetTUN([]netip.Addr{deviceAddr4, deviceAddr6}, nil, DefaultMTU)
	if err != nil {
		tb.Fatal(err)
	}
	d := &testDevice{remotes: map[string]bool{}}
	d.dev = device.NewDevice(tunDev, conn.NewDefaultBind(), newWireGuardLogger(testLogger(tb).With("side", "device")))
	uapi := fmt.Sprintf("private_key=%s\nlisten_port=0\npublic_key=%s\npreshared_key=%s\nallowed_ip=%s/32\nallowed_ip=%s/128\n",
		k.device.Hex(), k.browser.Public().Hex(), k.psk.Hex(), browserAddr4, browserAddr6)
	if err := d.dev.IpcSet(uapi); err != nil {
		tb.Fatal(err)
	}
	if err := d.dev.Up(); err != nil {
		tb.Fatal(err)
	}
	get, err := d.dev.IpcGet()
	if err != nil {
		tb.Fatal(err)
	}
	_, after, _ := strings.Cut(get, "listen_port=")
	port, err := strconv.ParseUint(strings.SplitN(after, "\n", 2)[0], 10, 16)
	if err != nil {
		tb.Fatalf("listen_port in %q: %v", get, err)
	}
	d.udpAddr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))

	srv := &http.Server{Handler: d.handler()}
	var wg sync.WaitGroup
	for _, a := range []netip.Addr{deviceAddr4, deviceAddr6} {
		ln, err := tnet.ListenTCPAddrPort(netip.AddrPortFrom(a, 80))
		if err != nil {
			tb.Fatal(err)
		}
		wg.Go(func() { _ = srv.Serve(ln) })
	}
	tb.Cleanup(func() {
		srv.Close()
		wg.Wait()
		d.dev.Close()
	})
	return d
}

// handler is the device's web UI: a page, a deterministic download with its
// checksum in a header, and an upload that answers the body's SHA-256.
func (d *testDevice) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.remotes[r.RemoteAddr] = true
		d.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>wallbox</title><p>%s, you are %s</p>\n", pageMarker, r.RemoteAddr)
	})
	mux.HandleFunc("GET /download", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.ParseInt(r.URL.Query().Get("size"), 10, 64)
		if err != nil || n < 0 {
			http.Error(w, "bad size", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
		if !r.URL.Query().Has("nosum") { // benchmarks skip the extra pass
			w.Header().Set(sumHeader, patternSum(n))
		}
		_, _ = io.Copy(w, pattern(n))
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		h := sha256.New()
		if _, err := io.Copy(h, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		fmt.Fprint(w, hex.EncodeToString(h.Sum(nil)))
	})
	return mux
}

// clientCount is the number of distinct client connections that fetched the page.
func (d *testDevice) clientCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.remotes)
}

// forwarder is a minimal relay: a TLS WebSocket server that checks a session
// cookie and forwards each binary message as one UDP datagram to the device,
// from a UDP socket of its own per session, and each datagram back.
type forwarder struct {
	target   *net.UDPAddr
	srv      *httptest.Server
	sessions atomic.Int64 // WebSocket sessions accepted

	mu     sync.Mutex
	killed bool                             // guarded by mu
	conns  map[*websocket.Conn]*net.UDPConn // guarded by mu: live sessions
	wg     sync.WaitGroup                   // forwarding handlers
}

// startForwarder serves on listenAddr ("127.0.0.1:0" for any port) and
// forwards to target. It is killed at cleanup.
func startForwarder(tb testing.TB, listenAddr string, target netip.AddrPort) *forwarder {
	tb.Helper()
	ln, err := net.Listen("tcp", listenAddr)
	if err != nil {
		tb.Fatal(err)
	}
	f := &forwarder{target: net.UDPAddrFromAddrPort(target), conns: map[*websocket.Conn]*net.UDPConn{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Listener.Close()
	f.srv.Listener = ln
	f.srv.StartTLS()
	tb.Cleanup(f.kill)
	return f
}

// addr is the forwarder's TCP address.
func (f *forwarder) addr() string { return f.srv.Listener.Addr().String() }

// url is the tunnel URL of the forwarder.
func (f *forwarder) url() string { return "wss://" + f.addr() + "/api/v1/devices/d1/tunnel?slot=0" }

// kill stops the forwarder abruptly, as a crashed relay stops: no close
// frames, every socket closed. It waits for its goroutines.
func (f *forwarder) kill() {
	f.mu.Lock()
	f.killed = true
	for ws, udp := range f.conns {
		ws.CloseNow()
		udp.Close()
	}
	f.mu.Unlock()
	f.srv.Close()
	f.wg.Wait()
}

// endSessions closes every session's WebSocket with status 1008, as
// pkg/relay does to a session replaced by a newer one.
func (f *forwarder) endSessions() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for ws := range f.conns {
		f.wg.Go(func() { _ = ws.Close(websocket.StatusPolicyViolation, "replaced by a newer session") })
	}
}

// track registers a session's sockets; false if the forwarder was killed.
func (f *forwarder) track(ws *websocket.Conn, udp *net.UDPConn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.killed {
		return false
	}
	f.conns[ws] = udp
	f.wg.Add(1)
	return true
}

func (f *forwarder) untrack(ws *websocket.Conn, udp *net.UDPConn) {
	f.mu.Lock()
	delete(f.conns, ws)
	f.mu.Unlock()
	f.wg.Done()
}

func (f *forwarder) serve(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie("session"); err != nil || c.Value != testCookie {
		http.Error(w, `{"error":{"code":"unauthorized"}}`, http.StatusUnauthorized)
		return
	}
	// As pkg/api does: the subprotocol must be offered, and a text hello
	// opens the session.
	if !strings.Contains(r.Header.Get("Sec-WebSocket-Protocol"), Subprotocol) {
		http.Error(w, `{"error":{"code":"invalid_input"}}`, http.StatusBadRequest)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		return
	}
	if err := ws.Write(r.Context(), websocket.MessageText, []byte(`{"slot":0,"device_public_key":"..."}`)); err != nil {
		ws.CloseNow()
		return
	}
	udp, err := net.DialUDP("udp", nil, f.target)
	if err != nil {
		ws.CloseNow()
		return
	}
	// A relay needs a deep UDP receive buffer: a device's TCP sends in
	// bursts far larger than the default 208 KiB, and on two busy CPUs the
	// loop below falls behind for a moment now and then.
	_ = udp.SetReadBuffer(4 << 20)
	if !f.track(ws, udp) {
		ws.CloseNow()
		udp.Close()
		return
	}
	defer f.untrack(ws, udp)
	f.sessions.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		for {
			n, err := udp.Read(buf)
			if err != nil {
				ws.CloseNow()
				return
			}
			if err := ws.Write(ctx, websocket.MessageBinary, buf[:n]); err != nil {
				udp.Close()
				return
			}
		}
	}()
	for {
		typ, msg, err := ws.Read(ctx)
		if err != nil {
			break
		}
		if typ == websocket.MessageBinary {
			// UDP send errors (an ICMP "refused" from a device that is
			// down) lose the datagram, as on a real path.
			_, _ = udp.Write(msg)
		}
	}
	udp.Close()
	<-done
	ws.CloseNow()
}

// harness is a device, a forwarder in front of it and the client's HTTP
// client for the forwarder's TLS certificate.
type harness struct {
	keys testKeys
	dev  *testDevice
	fwd  *forwarder
	wss  *http.Client // dials the forwarder (trusts its certificate)
}

func newHarness(tb testing.TB) *harness {
	tb.Helper()
	h := &harness{keys: newTestKeys(tb)}
	h.dev = newTestDevice(tb, h.keys)
	h.fwd = startForwarder(tb, "127.0.0.1:0", h.dev.udpAddr)
	pool := x509.NewCertPool()
	pool.AddCert(h.fwd.srv.Certificate())
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	h.wss = &http.Client{Transport: tr}
	tb.Cleanup(tr.CloseIdleConnections)
	return h
}

// config is the tunnel Config of the harness's key slot.
func (h *harness) config(tb testing.TB) Config {
	return Config{
		URL:           h.fwd.url(),
		Header:        http.Header{"Cookie": {"session=" + testCookie}},
		HTTPClient:    h.wss,
		PrivateKey:    h.keys.browser,
		PeerPublicKey: h.keys.device.Public(),
		PresharedKey:  h.keys.psk,
		LocalAddrs:    []netip.Addr{browserAddr4, browserAddr6},
		PeerAddrs:     []netip.Prefix{netip.PrefixFrom(deviceAddr4, 32), netip.PrefixFrom(deviceAddr6, 128)},
		Logger:        testLogger(tb),
	}
}

// dial opens a tunnel through the harness, closed at cleanup.
func (h *harness) dial(tb testing.TB) *Tunnel {
	tb.Helper()
	tun, err := Dial(tb.Context(), h.config(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { tun.Close() })
	return tun
}

// get fetches url through c and returns the body, failing tb on any error
// or a status other than 200.
func get(tb testing.TB, ctx context.Context, c *http.Client, url string) (string, http.Header) {
	tb.Helper()
	body, hdr, err := tryGet(ctx, c, url)
	if err != nil {
		tb.Fatal(err)
	}
	return body, hdr
}

func tryGet(ctx context.Context, c *http.Client, url string) (string, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b), resp.Header, nil
}

// sha256Hex hashes all of r.
func sha256Hex(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	return hex.EncodeToString(h.Sum(nil)), n, err
}
