package relay_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/blake2s"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/blindrelay/blindrelay/pkg/relay"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// waitFor is how long a test waits for something that should happen at
// once on loopback; it only bounds a failure.
const waitFor = 15 * time.Second

// Tunnel addresses (docs/protocol.md): the device, and key slot i's browser.
var deviceTunnelAddr = netip.MustParseAddr("10.77.0.1")

func slotTunnelAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 77, 1, byte(i + 1)})
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// recordingMgmt is a MgmtHandler that keeps a copy of what it gets.
type recordingMgmt struct {
	mu    sync.Mutex
	calls []mgmtCall
}

type mgmtCall struct {
	b    []byte
	from netip.AddrPort
}

func (m *recordingMgmt) HandleMgmt(b []byte, from netip.AddrPort) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, mgmtCall{b: append([]byte(nil), b...), from: from})
}

// from returns the datagrams received from addr.
func (m *recordingMgmt) from(addr netip.AddrPort) [][]byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out [][]byte
	for _, c := range m.calls {
		if c.from == addr {
			out = append(out, c.b)
		}
	}
	return out
}

// harness is a relay on a loopback UDP socket behind an httptest server
// whose handler accepts the WebSocket and calls Accept, as pkg/server will.
type harness struct {
	t    *testing.T
	srv  *relay.Server
	udp  *net.UDPConn
	mgmt *recordingMgmt
	http *httptest.Server

	mu       sync.Mutex
	sessions map[string]relay.Session // by sessionKey
	ended    map[string]chan error    // Accept results, by sessionKey
	cancels  map[string]context.CancelFunc
	all      context.Context // parent of every Accept's context
	handlers sync.WaitGroup  // serveTunnel calls
}

type harnessOptions struct {
	queue int           // Config.SessionQueue
	idle  time.Duration // Config.IdleTimeout
	// sndbuf, if set, is the send buffer of the server's side of every
	// WebSocket, so a stalled browser backs up quickly.
	sndbuf int
}

func sessionKey(deviceID string, slot int) string { return deviceID + "/" + strconv.Itoa(slot) }

func newHarness(t *testing.T, opt harnessOptions) *harness {
	t.Helper()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { udp.Close() })
	h := &harness{
		t:        t,
		udp:      udp,
		mgmt:     &recordingMgmt{},
		sessions: make(map[string]relay.Session),
		ended:    make(map[string]chan error),
		cancels:  make(map[string]context.CancelFunc),
	}
	h.srv, err = relay.New(relay.Config{Conn: udp, Mgmt: h.mgmt, Logger: testLogger(t),
		SessionQueue: opt.queue, IdleTimeout: opt.idle})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- h.srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-runDone; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	h.http = httptest.NewUnstartedServer(http.HandlerFunc(h.serveTunnel))
	if opt.sndbuf > 0 {
		h.http.Config.ConnState = func(c net.Conn, s http.ConnState) {
			if s == http.StateNew {
				_ = c.(*net.TCPConn).SetWriteBuffer(opt.sndbuf)
			}
		}
	}
	h.http.Start()
	t.Cleanup(h.http.Close)
	// Hijacked connections outlive httptest's Close: end every session
	// and wait for its Accept, so nothing logs after the test.
	all, cancelAll := context.WithCancel(context.Background())
	h.all = all
	t.Cleanup(func() {
		cancelAll()
		h.handlers.Wait()
	})
	return h
}

// addr is the relay's UDP address.
func (h *harness) addr() netip.AddrPort { return h.udp.LocalAddr().(*net.UDPAddr).AddrPort() }

// serveTunnel accepts /tunnel?device=ID&slot=N for a registered session.
func (h *harness) serveTunnel(w http.ResponseWriter, r *http.Request) {
	h.handlers.Add(1)
	defer h.handlers.Done()
	slot, _ := strconv.Atoi(r.URL.Query().Get("slot"))
	key := sessionKey(r.URL.Query().Get("device"), slot)
	h.mu.Lock()
	sess, ok := h.sessions[key]
	ended := h.ended[key]
	h.mu.Unlock()
	if !ok {
		http.Error(w, "no such session", http.StatusNotFound)
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
	if err != nil {
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(h.all, cancel)()
	h.mu.Lock()
	h.cancels[key] = cancel
	h.mu.Unlock()
	ended <- h.srv.Accept(ctx, ws, sess)
}

// cancel cancels the context of the session's latest Accept.
func (h *harness) cancel(deviceID string, slot int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.cancels[sessionKey(deviceID, slot)]()
}

// sessionStats returns the counters of a live session.
func (h *harness) sessionStats(t *testing.T, deviceID string, slot int) relay.SessionStats {
	t.Helper()
	for _, st := range h.srv.Sessions() {
		if st.DeviceID == deviceID && st.Slot == slot {
			return st
		}
	}
	t.Fatalf("no session %s/%d", deviceID, slot)
	return relay.SessionStats{}
}

// register makes a session known to the handler and returns the channel
// its Accept results arrive on.
func (h *harness) register(sess relay.Session) chan error {
	h.mu.Lock()
	defer h.mu.Unlock()
	key := sessionKey(sess.DeviceID, sess.Slot)
	if h.ended[key] == nil {
		h.ended[key] = make(chan error, 8)
	}
	h.sessions[key] = sess
	return h.ended[key]
}

// dial opens the WebSocket of a registered session. rcvbuf, if set, is
// the receive buffer of the browser's side.
func (h *harness) dial(ctx context.Context, deviceID string, slot int, rcvbuf int) (*websocket.Conn, error) {
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err == nil && rcvbuf > 0 {
			err = c.(*net.TCPConn).SetReadBuffer(rcvbuf)
		}
		return c, err
	}
	ws, _, err := websocket.Dial(ctx, h.url(deviceID, slot), &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: &http.Transport{DialContext: dial}},
	})
	if err != nil {
		return nil, err
	}
	ws.SetReadLimit(-1)
	return ws, nil
}

// url is the WebSocket URL of a session.
func (h *harness) url(deviceID string, slot int) string {
	return strings.Replace(h.http.URL, "http://", "ws://", 1) + fmt.Sprintf("/tunnel?device=%s&slot=%d", deviceID, slot)
}

// waitEnded returns the next Accept result of a session.
func waitEnded(t *testing.T, ended chan error) error {
	t.Helper()
	select {
	case err := <-ended:
		return err
	case <-time.After(waitFor):
		t.Fatal("Accept did not return")
		return nil
	}
}

// eventually polls cond until it holds, failing the test after waitFor.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// keys of a test device and its key slots.
type slotKeys struct {
	priv wgkey.Private
	pub  wgkey.Public
	psk  wgkey.Preshared
}

func newSlotKeys(t testing.TB) slotKeys {
	t.Helper()
	priv, err := wgkey.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	psk, err := wgkey.NewPreshared()
	if err != nil {
		t.Fatal(err)
	}
	return slotKeys{priv: priv, pub: priv.Public(), psk: psk}
}

// wgLogger logs wireguard-go errors to the test while it runs.
func wgLogger(t testing.TB, name string) *device.Logger {
	var done atomic.Bool
	t.Cleanup(func() { done.Store(true) })
	return &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf: func(format string, args ...any) {
			if !done.Load() {
				t.Logf(name+": "+format, args...)
			}
		},
	}
}

// testDevice is a real wireguard-go device on a loopback UDP socket with a
// netstack interface at 10.77.0.1 serving HTTP on port 80; its peers are
// the key slots, all with the relay as endpoint.
type testDevice struct {
	id    string
	keys  slotKeys
	slots []slotKeys
	dev   *device.Device
	tnet  *netstack.Net
	addr  netip.AddrPort // its UDP address
}

func newTestDevice(t *testing.T, h *harness, id string, nslots int) *testDevice {
	t.Helper()
	d := &testDevice{id: id, keys: newSlotKeys(t)}
	tunDev, tnet, err := netstack.CreateNetTUN([]netip.Addr{deviceTunnelAddr}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	d.tnet = tnet
	d.dev = device.NewDevice(tunDev, conn.NewStdNetBind(), wgLogger(t, id))
	t.Cleanup(d.dev.Close)
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "private_key=%s\nlisten_port=0\n", d.keys.priv.Hex())
	for i := range nslots {
		s := newSlotKeys(t)
		d.slots = append(d.slots, s)
		fmt.Fprintf(&cfg, "public_key=%s\npreshared_key=%s\nendpoint=%s\nallowed_ip=%s/32\n",
			s.pub.Hex(), s.psk.Hex(), h.addr(), slotTunnelAddr(i))
	}
	if err := d.dev.IpcSet(cfg.String()); err != nil {
		t.Fatal(err)
	}
	if err := d.dev.Up(); err != nil {
		t.Fatal(err)
	}
	get, err := d.dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(get, "\n") {
		if p, ok := strings.CutPrefix(line, "listen_port="); ok {
			port, _ := strconv.Atoi(p)
			d.addr = netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
		}
	}
	if !d.addr.IsValid() {
		t.Fatal("device has no listen port")
	}

	ln, err := tnet.ListenTCPAddrPort(netip.AddrPortFrom(deviceTunnelAddr, 80))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s to %s", id, r.RemoteAddr)
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return d
}

// session is the relay Session of key slot i.
func (d *testDevice) session(i int) relay.Session {
	return relay.Session{DeviceID: d.id, DeviceKey: d.keys.pub, SlotKey: d.slots[i].pub, UserID: "user-" + d.id, Slot: i}
}

// testBrowser is a real wireguard-go peer with a netstack interface at the
// slot's address, over a WebSocket to the relay (wsBind).
type testBrowser struct {
	ended  chan error // Accept results of its session
	bind   *wsBind
	dev    *device.Device
	tnet   *netstack.Net
	client *http.Client
}

type browserOptions struct {
	rcvbuf int // browser-side TCP receive buffer of the WebSocket
}

func newTestBrowser(t *testing.T, h *harness, d *testDevice, slot int, opt browserOptions) *testBrowser {
	t.Helper()
	b := &testBrowser{ended: h.register(d.session(slot))}
	ws, err := h.dial(t.Context(), d.id, slot, opt.rcvbuf)
	if err != nil {
		t.Fatal(err)
	}
	b.bind = newWSBind(ws)
	tunDev, tnet, err := netstack.CreateNetTUN([]netip.Addr{slotTunnelAddr(slot)}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	b.tnet = tnet
	b.dev = device.NewDevice(tunDev, b.bind, wgLogger(t, fmt.Sprintf("browser %s/%d", d.id, slot)))
	t.Cleanup(b.close)
	s := d.slots[slot]
	cfg := fmt.Sprintf("private_key=%s\npublic_key=%s\npreshared_key=%s\nendpoint=relay:0\nallowed_ip=%s/32\n",
		s.priv.Hex(), d.keys.pub.Hex(), s.psk.Hex(), deviceTunnelAddr)
	if err := b.dev.IpcSet(cfg); err != nil {
		t.Fatal(err)
	}
	if err := b.dev.Up(); err != nil {
		t.Fatal(err)
	}
	b.client = &http.Client{Transport: &http.Transport{DialContext: tnet.DialContext}, Timeout: waitFor}
	t.Cleanup(b.client.CloseIdleConnections)
	return b
}

// close ends the browser: its device, its bind and so its WebSocket.
func (b *testBrowser) close() {
	b.bind.unstall()
	b.dev.Close()
}

// get fetches path from the device's web UI through the relay.
func (b *testBrowser) get(ctx context.Context, path string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+deviceTunnelAddr.String()+path, nil)
	if err != nil {
		return "", err
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// wsBind is a minimal conn.Bind over one WebSocket: each binary message is
// one datagram; every datagram goes to the relay. Its reading can be
// stalled to play a slow browser.
type wsBind struct {
	ws     *websocket.Conn
	closed chan struct{}

	mu     sync.Mutex
	open   bool
	gone   bool
	stallC chan struct{} // non-nil while stalled; guarded by mu
}

func newWSBind(ws *websocket.Conn) *wsBind {
	return &wsBind{ws: ws, closed: make(chan struct{})}
}

type wsEndpoint struct{}

func (wsEndpoint) ClearSrc()           {}
func (wsEndpoint) SrcToString() string { return "" }
func (wsEndpoint) DstToString() string { return "relay" }
func (wsEndpoint) DstToBytes() []byte  { return []byte("relay") }
func (wsEndpoint) DstIP() netip.Addr   { return netip.Addr{} }
func (wsEndpoint) SrcIP() netip.Addr   { return netip.Addr{} }

func (b *wsBind) Open(uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gone {
		return nil, 0, net.ErrClosed
	}
	b.open = true
	return []conn.ReceiveFunc{b.receive}, 1, nil
}

// Close ends the WebSocket once the bind was open (wireguard-go closes a
// bind before it first opens it).
func (b *wsBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.open && !b.gone {
		b.gone = true
		close(b.closed)
		_ = b.ws.Close(websocket.StatusNormalClosure, "")
	}
	return nil
}

func (b *wsBind) SetMark(uint32) error                        { return nil }
func (b *wsBind) BatchSize() int                              { return 1 }
func (b *wsBind) ParseEndpoint(string) (conn.Endpoint, error) { return wsEndpoint{}, nil }

func (b *wsBind) Send(bufs [][]byte, _ conn.Endpoint) error {
	for _, buf := range bufs {
		if err := b.ws.Write(context.Background(), websocket.MessageBinary, buf); err != nil {
			return net.ErrClosed
		}
	}
	return nil
}

func (b *wsBind) receive(packets [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
	b.mu.Lock()
	stall := b.stallC
	b.mu.Unlock()
	if stall != nil {
		select {
		case <-stall:
		case <-b.closed:
			return 0, net.ErrClosed
		}
	}
	_, msg, err := b.ws.Read(context.Background())
	if err != nil {
		return 0, net.ErrClosed
	}
	sizes[0] = copy(packets[0], msg)
	eps[0] = wsEndpoint{}
	return 1, nil
}

// stall stops reading the WebSocket (after the message being read).
func (b *wsBind) stall() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stallC == nil {
		b.stallC = make(chan struct{})
	}
}

func (b *wsBind) unstall() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stallC != nil {
		close(b.stallC)
		b.stallC = nil
	}
}

// Crafted WireGuard messages, for the demux tables: right sizes and
// fields, random bodies, and a real mac1 where asked.

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// setMac1 writes the mac1 of handshake message msg for receiver.
func setMac1(msg []byte, receiver wgkey.Public) []byte {
	key := wire.NewMac1Key(receiver)
	h, err := blake2s.New128(key[:])
	if err != nil {
		panic(err)
	}
	start := len(msg) - 32
	h.Write(msg[:start])
	copy(msg[start:start+16], h.Sum(nil))
	return msg
}

func header(typ byte, b []byte) []byte {
	b[0], b[1], b[2], b[3] = typ, 0, 0, 0
	return b
}

// initiation is a type 1 message from sender, its mac1 made for receiver.
func initiation(sender uint32, receiver wgkey.Public) []byte {
	b := header(wire.MessageInitiationType, randomBytes(wire.MessageInitiationSize))
	binary.LittleEndian.PutUint32(b[4:], sender)
	return setMac1(b, receiver)
}

// response is a type 2 message, its mac1 made for receiverKey.
func response(sender, receiver uint32, receiverKey wgkey.Public) []byte {
	b := header(wire.MessageResponseType, randomBytes(wire.MessageResponseSize))
	binary.LittleEndian.PutUint32(b[4:], sender)
	binary.LittleEndian.PutUint32(b[8:], receiver)
	return setMac1(b, receiverKey)
}

func cookieReply(receiver uint32) []byte {
	b := header(wire.MessageCookieReplyType, randomBytes(wire.MessageCookieReplySize))
	binary.LittleEndian.PutUint32(b[4:], receiver)
	return b
}

func transport(receiver uint32, size int) []byte {
	b := header(wire.MessageTransportType, randomBytes(size))
	binary.LittleEndian.PutUint32(b[4:], receiver)
	return b
}

// udpPeer is a raw UDP socket on loopback: a device that speaks no
// WireGuard, or a stranger.
type udpPeer struct {
	c *net.UDPConn
}

func newUDPPeer(t testing.TB) *udpPeer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpPeer{c: c}
}

func (p *udpPeer) addr() netip.AddrPort { return p.c.LocalAddr().(*net.UDPAddr).AddrPort() }

func (p *udpPeer) send(t testing.TB, to netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := p.c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next datagram, or nil after d.
func (p *udpPeer) recv(d time.Duration) []byte {
	buf := make([]byte, 65536)
	_ = p.c.SetReadDeadline(time.Now().Add(d))
	n, _, err := p.c.ReadFromUDPAddrPort(buf)
	if err != nil {
		return nil
	}
	return buf[:n]
}

// rawBrowser is a WebSocket client of a session that speaks no WireGuard:
// it sends crafted datagrams and collects what the relay writes to it.
type rawBrowser struct {
	ws    *websocket.Conn
	msgs  chan []byte
	ended chan error // Accept results of its session
	done  chan struct{}
	err   error // why reading ended; set before done is closed
}

func newRawBrowser(t *testing.T, h *harness, sess relay.Session) *rawBrowser {
	t.Helper()
	b := &rawBrowser{ended: h.register(sess), msgs: make(chan []byte, 1024), done: make(chan struct{})}
	ws, err := h.dial(t.Context(), sess.DeviceID, sess.Slot, 0)
	if err != nil {
		t.Fatal(err)
	}
	b.ws = ws
	go func() {
		defer close(b.done)
		for {
			_, m, err := ws.Read(context.Background())
			if err != nil {
				b.err = err
				return
			}
			b.msgs <- m
		}
	}()
	t.Cleanup(func() {
		ws.CloseNow()
		<-b.done
	})
	eventually(t, "session registered", func() bool { return h.hasSession(sess.DeviceID, sess.Slot) })
	return b
}

// hasSession reports whether the relay has a live session of the slot.
func (h *harness) hasSession(deviceID string, slot int) bool {
	for _, st := range h.srv.Sessions() {
		if st.DeviceID == deviceID && st.Slot == slot {
			return true
		}
	}
	return false
}

func (b *rawBrowser) send(t testing.TB, typ websocket.MessageType, m []byte) {
	t.Helper()
	if err := b.ws.Write(t.Context(), typ, m); err != nil {
		t.Fatal(err)
	}
}

// closed waits until the relay ended the WebSocket and returns the error
// reading ended with.
func (b *rawBrowser) closed(t testing.TB) error {
	t.Helper()
	select {
	case <-b.done:
		return b.err
	case <-time.After(waitFor):
		t.Fatal("WebSocket not closed")
		return nil
	}
}

// next returns the next datagram the relay wrote to the browser.
func (b *rawBrowser) next(t testing.TB) []byte {
	t.Helper()
	select {
	case m := <-b.msgs:
		return m
	case <-time.After(waitFor):
		t.Fatal("browser got nothing")
		return nil
	}
}

// netipMapped returns ap with its IPv4 address mapped into IPv6.
func netipMapped(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(ap.Addr().As16()), ap.Port())
}

// servePage serves body over HTTP on ln until ln is closed.
func servePage(ln net.Listener, body string) {
	_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, body)
	}))
}

// httpClient is an HTTP client inside a netstack.
type httpClient struct {
	tnet *netstack.Net
}

func (c *httpClient) get(ctx context.Context, to netip.AddrPort) (string, error) {
	client := &http.Client{Transport: &http.Transport{DialContext: c.tnet.DialContext, DisableKeepAlives: true}, Timeout: waitFor}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+to.String()+"/", nil)
	if err != nil {
		return "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
