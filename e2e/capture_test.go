package e2e

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coder/websocket"

	"github.com/blindrelay/blindrelay/pkg/api"
)

// capture keeps a copy of every datagram or message a proxy passed on,
// back to back, for the zero-knowledge scans.
type capture struct {
	mu    sync.Mutex
	buf   []byte // guarded by mu
	count int    // guarded by mu
}

func (c *capture) add(b []byte) {
	c.mu.Lock()
	c.buf = append(c.buf, b...)
	c.count++
	c.mu.Unlock()
}

// bytes returns everything captured and how many datagrams or messages it
// was; the caller must not change it.
func (c *capture) bytes() ([]byte, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf, c.count
}

// udpProxy stands between devices and the relay's UDP socket, as a NAT
// would, and records every datagram both ways: the relay is told to give
// devices the proxy's address, so all the UDP traffic the relay handles
// crosses it. Each device address gets a socket of its own toward the
// relay, so that the relay still sees one source address per device.
type udpProxy struct {
	front  *net.UDPConn
	target atomic.Pointer[netip.AddrPort] // the relay's UDP address
	rec    *capture
	down   atomic.Bool // drop everything, both ways (a path that broke)

	mu    sync.Mutex
	backs map[netip.AddrPort]*net.UDPConn // by device address; guarded by mu
	wg    sync.WaitGroup
}

// newUDPProxy starts a proxy on 127.0.0.1:0 that forwards to the address
// set with setTarget, and stops it when the test ends.
func newUDPProxy(t *testing.T, rec *capture) *udpProxy {
	t.Helper()
	front, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	must(t, "proxy socket", err)
	setBuffers(front)
	p := &udpProxy{front: front, rec: rec, backs: map[netip.AddrPort]*net.UDPConn{}}
	p.wg.Go(p.fromDevices)
	t.Cleanup(func() {
		front.Close()
		p.mu.Lock()
		for _, b := range p.backs {
			b.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *udpProxy) addr() netip.AddrPort {
	return p.front.LocalAddr().(*net.UDPAddr).AddrPort()
}

func (p *udpProxy) setTarget(ap netip.AddrPort) { p.target.Store(&ap) }

// setDown breaks the path between devices and the relay (true) or mends
// it (false).
func (p *udpProxy) setDown(down bool) { p.down.Store(down) }

// fromDevices forwards what devices send to the relay.
func (p *udpProxy) fromDevices() {
	buf := make([]byte, 65536)
	for {
		n, from, err := p.front.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		target := p.target.Load()
		if target == nil || p.down.Load() {
			continue
		}
		back := p.back(from)
		if back == nil {
			return
		}
		p.rec.add(buf[:n])
		back.WriteToUDPAddrPort(buf[:n], *target)
	}
}

// back returns the socket toward the relay for the device at from,
// opening it (and its reader) on first use; nil once the proxy is closed.
func (p *udpProxy) back(from netip.AddrPort) *net.UDPConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if b := p.backs[from]; b != nil {
		return b
	}
	b, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		return nil
	}
	setBuffers(b)
	p.backs[from] = b
	p.wg.Go(func() {
		buf := make([]byte, 65536)
		for {
			n, err := b.Read(buf)
			if err != nil {
				return
			}
			if p.down.Load() {
				continue
			}
			p.rec.add(buf[:n])
			p.front.WriteToUDPAddrPort(buf[:n], from)
		}
	})
	return b
}

// setBuffers sizes a proxy socket's buffers as the relay sizes its own, so
// that the proxy loses nothing the relay would not.
func setBuffers(c *net.UDPConn) {
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
}

// wsProxy stands between tunnel clients and the relay's tunnel route and
// records every WebSocket message both ways. Clients dial it with plain
// ws:// and the path and headers they would send to the relay; it dials the
// relay with them, passes a refusal on as it came (status and body), and
// relays close statuses both ways.
type wsProxy struct {
	srv      *httptest.Server
	upstream string       // the relay's origin, https://host:port
	client   *http.Client // trusts the relay's certificate
	rec      *capture
	conns    sync.WaitGroup
}

// newWSProxy starts a proxy to the relay at upstream (an https origin that
// stays the same across restarts).
func newWSProxy(t *testing.T, upstream string, client *http.Client, rec *capture) *wsProxy {
	t.Helper()
	p := &wsProxy{upstream: upstream, client: client, rec: rec}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(func() {
		p.srv.CloseClientConnections()
		p.srv.Close()
		p.conns.Wait()
	})
	return p
}

// url returns the ws:// URL for path (with its query) through the proxy.
func (p *wsProxy) url(path string) string {
	return "ws" + strings.TrimPrefix(p.srv.URL, "http") + path
}

func (p *wsProxy) serve(w http.ResponseWriter, r *http.Request) {
	h := http.Header{}
	for _, k := range []string{"Authorization", "Cookie", "User-Agent"} {
		if v := r.Header.Get(k); v != "" {
			h.Set(k, v)
		}
	}
	up, resp, err := websocket.Dial(r.Context(), p.upstream+r.URL.RequestURI(), &websocket.DialOptions{
		HTTPClient:      p.client,
		HTTPHeader:      h,
		Subprotocols:    []string{api.TunnelSubprotocol},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
			return
		}
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	down, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		Subprotocols:    []string{api.TunnelSubprotocol},
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		up.CloseNow()
		return
	}
	p.conns.Add(1)
	defer p.conns.Done()
	up.SetReadLimit(1 << 16)
	down.SetReadLimit(1 << 16)
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(up, down) })
	wg.Go(func() { p.pump(down, up) })
	wg.Wait()
}

// pump copies messages from src to dst until src ends, then ends dst the
// same way: with src's close status, or by dropping it.
func (p *wsProxy) pump(src, dst *websocket.Conn) {
	ctx := context.Background()
	for {
		typ, b, err := src.Read(ctx)
		if err != nil {
			if ce, ok := errors.AsType[websocket.CloseError](err); ok {
				dst.Close(ce.Code, ce.Reason)
			} else {
				dst.CloseNow()
			}
			src.CloseNow()
			return
		}
		p.rec.add(b)
		if err := dst.Write(ctx, typ, b); err != nil {
			src.CloseNow()
			return
		}
	}
}
