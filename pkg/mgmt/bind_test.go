package mgmt

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// newIdleMgmt returns a Mgmt that is not running, over fakes.
func newIdleMgmt(t *testing.T, queue int) (*Mgmt, *fakeRelay) {
	t.Helper()
	r := &fakeRelay{}
	m, err := New(Config{Private: newKey(t), Store: &fakeStore{}, Sender: r, Endpoints: r, Node: "n", QueueSize: queue, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return m, r
}

// TestBindContract checks wireguard-go's conn.Bind contract: one Open at a
// time, ReceiveFunc batches what is queued and returns net.ErrClosed after
// Close, and Open works again after Close.
func TestBindContract(t *testing.T) {
	t.Parallel()
	m, _ := newIdleMgmt(t, 4)
	b := m.bind
	fns, port, err := b.Open(51820)
	if err != nil || len(fns) != 1 || port != 51820 {
		t.Fatalf("Open = %d fns, %d, %v", len(fns), port, err)
	}
	if _, _, err := b.Open(0); !errors.Is(err, conn.ErrBindAlreadyOpen) {
		t.Fatalf("second Open: %v, want ErrBindAlreadyOpen", err)
	}

	from := netip.MustParseAddrPort("192.0.2.1:4000")
	peer := &peer{id: "d-1"}
	m.byIndex[7] = peer
	m.running.Store(true)
	for range 6 { // two more than the queue holds
		m.HandleMgmt(transport(7), from)
	}
	if got := m.Stats().Drops[DropQueueFull]; got != 2 {
		t.Fatalf("queue_full drops = %d, want 2", got)
	}

	bufs := make([][]byte, b.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, 1500)
	}
	sizes := make([]int, len(bufs))
	eps := make([]conn.Endpoint, len(bufs))
	n, err := fns[0](bufs, sizes, eps)
	if err != nil || n != 4 {
		t.Fatalf("ReceiveFunc = %d, %v; want the 4 queued", n, err)
	}
	for i := range n {
		e := eps[i].(*endpoint)
		if sizes[i] != wire.MessageTransportMinSize || e.addr != from || e.peer != peer || e.rx.IsZero() {
			t.Fatalf("datagram %d: size %d, endpoint %+v", i, sizes[i], e)
		}
	}

	// A blocked ReceiveFunc returns net.ErrClosed on Close, and so does
	// every later call.
	errc := make(chan error, 1)
	go func() {
		_, err := fns[0](bufs, sizes, eps)
		errc <- err
	}()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("blocked ReceiveFunc after Close: %v", err)
	}
	m.HandleMgmt(transport(7), from) // queued while closed
	if _, err := fns[0](bufs, sizes, eps); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("ReceiveFunc after Close: %v", err)
	}
	if err := b.Send([][]byte{transport(7)}, &endpoint{addr: from, rx: time.Now(), peer: peer}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	fns2, _, err := b.Open(0)
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	n, err = fns2[0](bufs, sizes, eps)
	if err != nil || n != 1 {
		t.Fatalf("ReceiveFunc after reopening = %d, %v", n, err)
	}
	b.Close()
}

// TestSendRules: the Bind sends only where an authenticated packet proved
// the device is.
func TestSendRules(t *testing.T) {
	t.Parallel()
	m, r := newIdleMgmt(t, 4)
	if _, _, err := m.bind.Open(0); err != nil {
		t.Fatal(err)
	}
	defer m.bind.Close()
	known := netip.MustParseAddrPort("192.0.2.1:4000")
	other := netip.MustParseAddrPort("198.51.100.7:9")
	p := &peer{id: "d-1"}
	m.byKey[p.key], m.byID[p.id] = p, p

	cookie := make([]byte, wire.MessageCookieReplySize)
	cookie[0] = wire.MessageCookieReplyType
	response := make([]byte, wire.MessageResponseSize)
	response[0] = wire.MessageResponseType
	response[4] = 42 // the relay's new index

	parsed, err := m.bind.ParseEndpoint(known.String())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.bind.ParseEndpoint("nonsense"); err == nil {
		t.Fatal("ParseEndpoint accepted nonsense")
	}

	steps := []struct {
		name     string
		b        []byte
		ep       conn.Endpoint
		sent     bool
		endpoint bool // SetDeviceEndpoint called
	}{
		{"configured endpoint, no proof", transport(1), parsed, false, false},
		{"cookie to an unknown address", cookie, &endpoint{addr: other, rx: time.Now(), peer: p}, false, false},
		{"response after a verified initiation", response, &endpoint{addr: known, rx: time.Now(), peer: p}, true, true},
		{"cookie to the known address", cookie, &endpoint{addr: known, rx: time.Now(), peer: p}, true, false},
		{"transport to the same address", transport(1), &endpoint{addr: known, rx: time.Now(), peer: p}, true, false},
		{"stale proof of another address", transport(1), &endpoint{addr: other, rx: time.Now().Add(-time.Hour), peer: p}, true, false},
	}
	for _, s := range steps {
		w, e := r.writes.Load(), r.endpoints.Load()
		if err := m.bind.Send([][]byte{s.b}, s.ep); err != nil {
			t.Fatalf("%s: Send: %v", s.name, err)
		}
		if sent := r.writes.Load() > w; sent != s.sent {
			t.Errorf("%s: sent %v, want %v", s.name, sent, s.sent)
		}
		if called := r.endpoints.Load() > e; called != s.endpoint {
			t.Errorf("%s: SetDeviceEndpoint %v, want %v", s.name, called, s.endpoint)
		}
	}
	if m.byIndex[42] != p {
		t.Fatal("the response's sender index was not recorded")
	}
	if got := m.Stats().Drops[DropUnauthenticatedDst]; got != 2 {
		t.Fatalf("unauthenticated_dst drops = %d, want 2", got)
	}
	if err := m.bind.Send([][]byte{transport(1)}, wrongEndpoint{}); !errors.Is(err, conn.ErrWrongEndpointType) {
		t.Fatalf("Send to a foreign endpoint: %v", err)
	}
}

type wrongEndpoint struct{ conn.Endpoint }

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := newLimiter(limitRate, limitBurst)
	now := time.Unix(1000, 0)
	a := netip.MustParseAddr("192.0.2.1")
	for i := range limitBurst {
		if !l.allow(a, now) {
			t.Fatalf("initiation %d of a burst refused", i)
		}
	}
	if l.allow(a, now) {
		t.Fatal("burst exceeded but allowed")
	}
	if !l.allow(netip.MustParseAddr("192.0.2.2"), now) {
		t.Fatal("another source limited")
	}
	if !l.allow(a, now.Add(l.period)) {
		t.Fatal("no refill after one period")
	}
	// IPv6 sources share a /64.
	v6a, v6b := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
	for range limitBurst {
		l.allow(v6a, now)
	}
	if l.allow(v6b, now) {
		t.Fatal("a /64 is one source")
	}
	l.gc(now.Add(time.Hour))
	if len(l.buckets) != 0 {
		t.Fatalf("%d buckets after gc", len(l.buckets))
	}
}

func TestFirmwareString(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("ä", maxFirmware) // 2 bytes each
	tests := []struct {
		name, in, want string
	}{
		{"plain", "warp2 2.6.1", "warp2 2.6.1"},
		{"invalid utf-8", "a\xffb", "a\uFFFDb"},
		{"cut at a rune boundary", long, long[:maxFirmware]},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := firmwareString(tt.in)
			if got != tt.want || !utf8.ValidString(got) || len(got) > maxFirmware {
				t.Fatalf("firmwareString(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
