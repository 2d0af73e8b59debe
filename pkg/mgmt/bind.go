package mgmt

import (
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// Implementation constants of the Bind.
const (
	// batchSize is the Bind's BatchSize. wireguard-go allocates that many
	// 64 KiB buffers per receive routine; management traffic is light.
	batchSize = 8
	// packetBufSize is the capacity of a pooled datagram buffer. The
	// management tunnel's MTU keeps its datagrams below it; a larger one
	// gets a buffer of its own.
	packetBufSize = 2048
)

// endpoint is the conn.Endpoint of the management Bind: the UDP address a
// datagram came from, with what the Bind knew of it when it arrived.
//
// Every datagram gets its own endpoint. wireguard-go keeps, as a peer's
// endpoint, the one of the last datagram it authenticated for that peer
// (Peer.SetEndpointFromPacket), and sends to that peer through it. So
// when Send is handed an endpoint, its addr is an address the relay's
// wireguard-go authenticated the peer at, at time rx, and peer (set on the
// way in, from the initiation's static key or from the receiver index)
// names the device. That is how the relay learns endpoints only from
// authenticated packets without decrypting anything itself.
//
// The one exception is the provisional endpoint of a re-handshake (reh set):
// addr is the device's endpoint as the store recorded it from
// authenticated traffic before a restart, and it carries one handshake
// initiation and nothing else (allowRehandshake).
type endpoint struct {
	addr netip.AddrPort
	rx   time.Time    // when the datagram arrived; zero from ParseEndpoint
	peer *peer        // the device peer the datagram was for; nil if unknown
	reh  *rehandshake // set on the provisional endpoint of a re-handshake
}

var _ conn.Endpoint = (*endpoint)(nil)

// ClearSrc does nothing: the relay's socket has one source address.
func (*endpoint) ClearSrc() {}

// SrcToString returns "": the source is the relay's socket.
func (*endpoint) SrcToString() string { return "" }

// DstToString returns the UDP address, e.g. "192.0.2.1:51820".
func (e *endpoint) DstToString() string { return e.addr.String() }

// DstToBytes returns the address and port as bytes, for the mac2 cookie.
func (e *endpoint) DstToBytes() []byte {
	b, _ := e.addr.MarshalBinary()
	return b
}

// DstIP returns the IP address.
func (e *endpoint) DstIP() netip.Addr { return e.addr.Addr() }

// SrcIP returns the zero Addr (see SrcToString).
func (*endpoint) SrcIP() netip.Addr { return netip.Addr{} }

// packet is one datagram on its way to wireguard-go.
type packet struct {
	data []byte
	ep   *endpoint
}

var packetPool = sync.Pool{New: func() any { return &packet{data: make([]byte, 0, packetBufSize)} }}

// newPacket copies b into a pooled packet (the caller's buffer is reused).
func newPacket(b []byte, ep *endpoint) *packet {
	p := packetPool.Get().(*packet)
	if len(b) > cap(p.data) {
		p.data = make([]byte, len(b))
	}
	p.data = append(p.data[:0], b...)
	p.ep = ep
	return p
}

// release returns p to the pool.
func (p *packet) release() {
	p.ep = nil
	if cap(p.data) != packetBufSize {
		return // an oversized one-off
	}
	p.data = p.data[:0]
	packetPool.Put(p)
}

// bind is the conn.Bind of the relay's management wireguard-go. It opens no
// socket: datagrams come from the relay's read loop through HandleMgmt and
// a bounded queue, and go out through Config.Sender, the relay's socket.
//
// It keeps wireguard-go's Bind contract: Open returns one ReceiveFunc,
// which returns net.ErrClosed once Close was called (and Open may be
// called again after Close, as wireguard-go does on BindUpdate); Send
// takes at most BatchSize buffers for one endpoint.
type bind struct {
	m *Mgmt

	mu     sync.Mutex
	closed chan struct{} // of the current Open; nil while not open. Guarded by mu.
}

var _ conn.Bind = (*bind)(nil)

// Open returns the ReceiveFunc of the queue. port is reported back as
// bound: the relay's socket is not the Bind's to choose.
func (b *bind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed != nil {
		return nil, 0, conn.ErrBindAlreadyOpen
	}
	c := make(chan struct{})
	b.closed = c
	return []conn.ReceiveFunc{b.receiveFunc(c)}, port, nil
}

// Close makes the ReceiveFuncs of the last Open return net.ErrClosed and
// drops what is queued.
func (b *bind) Close() error {
	b.mu.Lock()
	if b.closed != nil {
		close(b.closed)
		b.closed = nil
	}
	b.mu.Unlock()
	for {
		select {
		case p := <-b.m.queue:
			p.release()
		default:
			return nil
		}
	}
}

// isOpen reports whether the Bind is open.
func (b *bind) isOpen() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.closed != nil
}

// SetMark does nothing: there is no socket of the Bind's own.
func (*bind) SetMark(uint32) error { return nil }

// BatchSize returns the most datagrams one ReceiveFunc call or Send takes.
func (*bind) BatchSize() int { return batchSize }

// ParseEndpoint parses "ip:port". Such an endpoint carries no proof of
// anything, so Send refuses it: the relay configures no peer endpoints.
func (*bind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return &endpoint{addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// receiveFunc returns the ReceiveFunc of one Open: it blocks for the first
// queued datagram, then takes what else is queued, up to len(bufs).
func (b *bind) receiveFunc(closed chan struct{}) conn.ReceiveFunc {
	return func(bufs [][]byte, sizes []int, eps []conn.Endpoint) (int, error) {
		select {
		case <-closed:
			return 0, net.ErrClosed
		default:
		}
		var p *packet
		select {
		case <-closed:
			return 0, net.ErrClosed
		case p = <-b.m.queue:
		}
		n := 0
		for {
			if len(p.data) <= len(bufs[n]) {
				sizes[n] = copy(bufs[n], p.data)
			} else {
				sizes[n] = 0 // wireguard-go skips it; cannot happen with its buffers
				b.m.stats.drop(reasonIndex(DropReason(wire.ErrTooLong)))
			}
			eps[n] = p.ep
			p.release()
			n++
			b.m.stats.received.Add(1)
			if n == len(bufs) {
				return n, nil
			}
			select {
			case p = <-b.m.queue:
			default:
				return n, nil
			}
		}
	}
}

// Send writes bufs to ep through the relay's socket, where the rules of
// Mgmt.allowSend let it (see endpoint). It returns net.ErrClosed when the
// Bind is closed and the Sender's first error otherwise; datagrams the
// rules refuse are dropped and counted, not errors.
func (b *bind) Send(bufs [][]byte, ep conn.Endpoint) error {
	e, ok := ep.(*endpoint)
	if !ok {
		return conn.ErrWrongEndpointType
	}
	if !b.isOpen() {
		return net.ErrClosed
	}
	var first error
	for _, buf := range bufs {
		if !b.m.allowSend(buf, e) {
			continue
		}
		if err := b.m.sender.WriteTo(buf, e.addr); err != nil {
			b.m.stats.drop(idxSendError)
			if first == nil {
				first = err
			}
			continue
		}
		b.m.stats.sent.Add(1)
	}
	return first
}
