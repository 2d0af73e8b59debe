package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.zx2c4.com/wireguard/conn"
)

// Subprotocol is the WebSocket subprotocol the Bind offers: it names the
// framing, one binary message per WireGuard datagram. The relay's tunnel
// route requires it (pkg/api.TunnelSubprotocol); an incompatible framing
// would get a new name.
const Subprotocol = "blindrelay.v1"

// Protocol limits of the WebSocket leg.
const (
	// maxDatagramSize is the largest WireGuard datagram the bind passes on:
	// the largest UDP payload over IPv4 (65535 - 20 - 8), since the relay
	// forwards each message as one UDP datagram. Larger messages are dropped.
	maxDatagramSize = 65507

	// wgTransportOverhead is what WireGuard adds to an IP packet: the
	// 16-byte transport header and the 16-byte Poly1305 tag.
	wgTransportOverhead = 32
)

// Implementation defaults of BindConfig.
const (
	defaultQueueLen     = 1024
	defaultBatchSize    = 16
	defaultDialTimeout  = 15 * time.Second
	defaultMinBackoff   = 250 * time.Millisecond
	defaultMaxBackoff   = 3 * time.Second
	defaultPingInterval = 15 * time.Second
	defaultPingTimeout  = 10 * time.Second
	defaultPacketSize   = 2048

	// closeGrace bounds how long Close waits for the relay to answer the
	// WebSocket close handshake before dropping the connection.
	closeGrace = time.Second
)

// BindConfig configures a Bind. URL is required; zero values of the other
// fields select the documented defaults.
type BindConfig struct {
	// URL is the relay's tunnel WebSocket (ws, wss, http or https scheme),
	// dialled verbatim on every (re)connect.
	URL string

	// Header is sent with every WebSocket handshake (a session cookie, an
	// Authorization header). Ignored under js/wasm: a browser sends the
	// relay origin's cookies by itself and lets no script set headers.
	Header http.Header

	// HTTPClient performs the WebSocket handshake (TLS roots, proxies);
	// nil means http.DefaultClient. Ignored under js/wasm.
	HTTPClient *http.Client

	// Logger receives connection events (never per packet); nil discards.
	Logger *slog.Logger

	// QueueLen bounds the datagrams received from the WebSocket and not yet
	// taken by WireGuard (default 1024). When it is full, new datagrams are
	// dropped and counted, as a full UDP socket buffer drops them.
	QueueLen int

	// PacketSize is the expected largest datagram, used to size pooled
	// receive buffers (default 2048). Larger datagrams still work, each with
	// an allocation of its own.
	PacketSize int

	// DialTimeout bounds one WebSocket dial attempt (default 15 s).
	DialTimeout time.Duration

	// MinBackoff and MaxBackoff bound the wait between redial attempts
	// (defaults 250 ms and 3 s: a user waits on a redial after a relay restart, and one redial is one cheap HTTPS request). Each wait doubles the last, capped at
	// MaxBackoff, and is then drawn at random from its upper half.
	MinBackoff, MaxBackoff time.Duration

	// PingInterval is the time between WebSocket pings (default 15 s); a
	// pong missing for PingTimeout (default 10 s) counts as a dropped
	// connection. Browsers answer pings themselves and offer scripts no
	// ping, so under js/wasm WireGuard's keepalives are the only probe.
	PingInterval, PingTimeout time.Duration

	// ReconnectFunc, if set, is called after each successful redial (not
	// after the first dial). It must not block: it runs on the goroutine
	// that reads the WebSocket, and it must not call back into the Bind.
	ReconnectFunc func()

	// EndFunc, if set, is called once if the relay ends the session for
	// good (see ErrSessionEnded), with an error wrapping ErrSessionEnded.
	// The Bind then stops redialling and drops what is sent until Close.
	// It must not block.
	EndFunc func(error)
}

// ErrSessionEnded reports that the relay closed the WebSocket with status
// 1008 (policy violation), which a relay sends when it will not carry this
// session again; pkg/relay sends it to a session replaced by a newer one for
// the same key slot. Redialling would only take the slot back from the
// newer session, which would take it back in turn.
var ErrSessionEnded = errors.New("relay ended the session")

// withDefaults returns cfg with every zero field set to its default.
func (cfg BindConfig) withDefaults() BindConfig {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	setDefault(&cfg.QueueLen, defaultQueueLen)
	setDefault(&cfg.PacketSize, defaultPacketSize)
	setDefault(&cfg.DialTimeout, defaultDialTimeout)
	setDefault(&cfg.MinBackoff, defaultMinBackoff)
	setDefault(&cfg.MaxBackoff, defaultMaxBackoff)
	setDefault(&cfg.PingInterval, defaultPingInterval)
	setDefault(&cfg.PingTimeout, defaultPingTimeout)
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	cfg.PacketSize = min(cfg.PacketSize, maxDatagramSize)
	return cfg
}

// setDefault sets *v to def when *v is zero or negative.
func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Bind is a conn.Bind that carries WireGuard datagrams over one WebSocket to
// the relay: each binary message is exactly one datagram, both ways. It has a
// single endpoint, the relay, which stands for the device.
//
// Open dials the WebSocket and keeps it up, redialling with backoff while
// the Bind is open. Close ends the connection and every goroutine of the
// Bind; the receive functions Open returned then report net.ErrClosed. A
// closed Bind can be opened again, as wireguard-go does when an interface
// goes down and up.
//
// A Bind never panics on what it reads: text messages, oversize messages and
// datagrams arriving while the receive queue is full are dropped and counted
// (see Stats).
type Bind struct {
	cfg   BindConfig // immutable after NewBind
	log   *slog.Logger
	stats counters

	// sess is the open session, nil while the Bind is closed. Send and the
	// receive functions read it without locks.
	sess atomic.Pointer[bindSession]

	// pool holds receive buffers of cfg.PacketSize bytes.
	pool sync.Pool

	mu sync.Mutex // serialises Open, Close and connect; guards pending
	// pending is a connection dialled by connect and not yet taken by Open.
	pending *websocket.Conn
}

var _ conn.Bind = (*Bind)(nil)

// NewBind returns a closed Bind for cfg. It does no I/O.
func NewBind(cfg BindConfig) *Bind {
	cfg = cfg.withDefaults()
	b := &Bind{cfg: cfg, log: cfg.Logger.With("component", "wsbind", "relay", redactURL(cfg.URL))}
	b.pool.New = func() any {
		buf := make([]byte, cfg.PacketSize)
		return &buf
	}
	return b
}

// bindSession is one Open..Close span of a Bind. Its ctx is the span's
// lifetime (what Close cancels), not a request's: conn.Bind's methods take
// no context.
type bindSession struct {
	ctx    context.Context
	cancel context.CancelFunc
	queue  chan *[]byte // received datagrams, each a pooled or exact-size buffer

	// conn is the live WebSocket, nil while redialling.
	conn atomic.Pointer[websocket.Conn]

	// closing is set by Close before it ends the connection, so that the
	// read loop does not mistake the end for a drop and redial.
	closing atomic.Bool

	wg sync.WaitGroup // the connection goroutine and whatever it starts
}

// connect dials the WebSocket now, bounded by ctx, and keeps the connection
// for the next Open, so that the caller's deadline bounds the first dial and
// a refusal reaches the caller (Open has no context and wireguard-go only
// logs its errors). Close keeps the connection, because wireguard-go closes
// a Bind before every Open; dropPending releases it.
func (b *Bind) connect(ctx context.Context) error {
	c, err := b.dial(ctx)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sess.Load() != nil {
		c.CloseNow()
		return conn.ErrBindAlreadyOpen
	}
	if b.pending != nil {
		b.pending.CloseNow()
	}
	b.pending = c
	return nil
}

// Open implements conn.Bind. The port is meaningless for a WebSocket and is
// returned as given. Open blocks while it dials, at most DialTimeout.
func (b *Bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sess.Load() != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	c := b.pending
	b.pending = nil
	if c == nil {
		ctx, cancel := context.WithTimeout(context.Background(), b.cfg.DialTimeout)
		var err error
		c, err = b.dial(ctx)
		cancel()
		if err != nil {
			return nil, 0, err
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &bindSession{ctx: ctx, cancel: cancel, queue: make(chan *[]byte, b.cfg.QueueLen)}
	s.conn.Store(c)
	b.stats.connected.Store(true)
	b.sess.Store(s)
	s.wg.Add(1)
	go b.run(s, c)
	return []conn.ReceiveFunc{b.receiveFunc(s)}, port, nil
}

// Close implements conn.Bind: it closes the WebSocket (with a close
// handshake bounded by one second), stops every goroutine of the session and
// makes its receive functions return net.ErrClosed. Closing a closed Bind is
// a no-op.
func (b *Bind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.sess.Swap(nil)
	if s == nil {
		return nil
	}
	s.closing.Store(true)
	if c := s.conn.Load(); c != nil {
		b.closeGracefully(s, c)
	}
	s.cancel()
	s.wg.Wait()
	b.stats.connected.Store(false)
	for {
		select {
		case p := <-s.queue:
			b.putBuf(p)
		default:
			return nil
		}
	}
}

// dropPending closes the connection connect left, if Open did not take it.
func (b *Bind) dropPending() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pending != nil {
		b.pending.CloseNow()
		b.pending = nil
	}
}

// closeGracefully sends a normal-closure close frame and waits up to
// closeGrace for the relay's answer, so the relay frees the session at once.
// The read loop keeps reading meanwhile, which is where the answer arrives.
func (b *Bind) closeGracefully(s *bindSession, c *websocket.Conn) {
	done := make(chan struct{})
	s.wg.Go(func() {
		defer close(done)
		_ = c.Close(websocket.StatusNormalClosure, "tunnel closed")
	})
	t := time.NewTimer(closeGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		// s.cancel, which follows, makes the connection give up.
	}
}

// SetMark implements conn.Bind; a WebSocket has no packet mark.
func (*Bind) SetMark(uint32) error { return nil }

// BatchSize implements conn.Bind.
func (*Bind) BatchSize() int { return defaultBatchSize }

// ParseEndpoint implements conn.Bind. Every string names the relay, the one
// endpoint of a Bind.
func (*Bind) ParseEndpoint(string) (conn.Endpoint, error) { return relayEndpoint{}, nil }

// Send implements conn.Bind: each buffer becomes one binary message. While
// the WebSocket is being redialled, datagrams are dropped and counted and
// Send reports success, as UDP would. It returns net.ErrClosed on a closed
// Bind.
func (b *Bind) Send(bufs [][]byte, _ conn.Endpoint) error {
	s := b.sess.Load()
	if s == nil {
		return net.ErrClosed
	}
	c := s.conn.Load()
	if c == nil {
		b.stats.dropDisconnected.Add(uint64(len(bufs)))
		return nil
	}
	for i, buf := range bufs {
		if err := c.Write(s.ctx, websocket.MessageBinary, buf); err != nil {
			// The connection is broken; make sure the read loop sees it
			// too, so that it redials. CloseNow does not wait for the
			// relay.
			b.stats.dropSendError.Add(uint64(len(bufs) - i))
			c.CloseNow()
			return nil
		}
		b.stats.txPackets.Add(1)
		b.stats.txBytes.Add(uint64(len(buf)))
	}
	return nil
}

// receiveFunc returns the conn.ReceiveFunc of session s: it blocks for one
// datagram, then takes whatever else is queued, up to len(bufs).
func (b *Bind) receiveFunc(s *bindSession) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		if s.ctx.Err() != nil {
			return 0, net.ErrClosed
		}
		var p *[]byte
		select {
		case p = <-s.queue:
		case <-s.ctx.Done():
			return 0, net.ErrClosed
		}
		n := 0
		for {
			if len(*p) > len(bufs[n]) {
				// Cannot happen with wireguard-go's buffers; a zero size
				// tells the caller to skip the slot.
				b.stats.dropOversize.Add(1)
				sizes[n] = 0
			} else {
				sizes[n] = copy(bufs[n], *p)
			}
			eps[n] = relayEndpoint{}
			b.putBuf(p)
			n++
			if n == len(bufs) {
				return n, nil
			}
			select {
			case p = <-s.queue:
			default:
				return n, nil
			}
		}
	}
}

// dial opens one WebSocket to the relay, bounded by ctx.
func (b *Bind) dial(ctx context.Context) (*websocket.Conn, error) {
	b.stats.dials.Add(1)
	c, resp, err := websocket.Dial(ctx, b.cfg.URL, dialOptions(&b.cfg))
	if err != nil {
		return nil, newDialError(resp, err)
	}
	// Oversize messages are drained and dropped by the read loop, never
	// fatal, so the library's own limit (which closes the connection) is off.
	c.SetReadLimit(-1)
	return c, nil
}

// getBuf returns a pooled receive buffer of full length.
func (b *Bind) getBuf() *[]byte {
	p := b.pool.Get().(*[]byte)
	*p = (*p)[:cap(*p)]
	return p
}

// putBuf returns a receive buffer to the pool unless it was grown for an
// unusually large datagram.
func (b *Bind) putBuf(p *[]byte) {
	if cap(*p) == b.cfg.PacketSize {
		b.pool.Put(p)
	}
}

// Stats reports the Bind's counters since NewBind, across reopenings.
// LastHandshake is left zero; the Tunnel fills it in.
func (b *Bind) Stats() Stats { return b.stats.snapshot() }

// DialError reports a WebSocket dial that failed. StatusCode and Body are set
// when the relay answered the upgrade with an HTTP status other than 101 (not
// under js/wasm, where browsers hide the answer); Body holds at most the
// first 1024 bytes.
type DialError struct {
	StatusCode int
	Body       string
	Err        error
}

func (e *DialError) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("websocket dial: relay answered %d %s: %v", e.StatusCode, http.StatusText(e.StatusCode), e.Err)
	}
	return fmt.Sprintf("websocket dial: %v", e.Err)
}

func (e *DialError) Unwrap() error { return e.Err }

// redactURL returns u without query, fragment and user info, for logs: a
// tunnel URL may carry a ticket.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return "invalid-url"
	}
	p.User, p.RawQuery, p.Fragment, p.RawFragment = nil, "", "", ""
	return p.String()
}

// relayEndpoint is the single endpoint of a Bind: the relay, which stands
// for the device.
type relayEndpoint struct{}

var _ conn.Endpoint = relayEndpoint{}

// relayEndpointName is what the endpoint prints as (wg show, uapi get).
const relayEndpointName = "relay"

func (relayEndpoint) ClearSrc()           {}
func (relayEndpoint) SrcToString() string { return "" }
func (relayEndpoint) DstToString() string { return relayEndpointName }

// DstToBytes keys WireGuard's cookie MACs (mac2); one endpoint, one value.
func (relayEndpoint) DstToBytes() []byte { return []byte(relayEndpointName) }
func (relayEndpoint) DstIP() netip.Addr  { return netip.Addr{} }
func (relayEndpoint) SrcIP() netip.Addr  { return netip.Addr{} }
