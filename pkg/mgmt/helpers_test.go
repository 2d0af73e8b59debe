package mgmt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/blake2s"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/relay"
	"github.com/blindrelay/blindrelay/pkg/store/sqlite"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// waitFor bounds the wait for something that should happen soon on
// loopback; it only limits a failure.
const waitFor = 15 * time.Second

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
}

// eventually polls cond until it holds or waitFor passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func newKey(t testing.TB) wgkey.Private {
	t.Helper()
	k, err := wgkey.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// countingStore is the real SQLite store, counting device lookups.
type countingStore struct {
	keystore.Store
	lookups         atomic.Int64 // by public key
	endpointLookups atomic.Int64
	idLookups       atomic.Int64 // by id (Wake)
}

func (s *countingStore) DeviceByPublicKey(ctx context.Context, key [32]byte) (*keystore.Device, error) {
	s.lookups.Add(1)
	return s.Store.DeviceByPublicKey(ctx, key)
}

func (s *countingStore) DeviceByID(ctx context.Context, id string) (*keystore.Device, error) {
	s.idLookups.Add(1)
	return s.Store.DeviceByID(ctx, id)
}

func (s *countingStore) DeviceByEndpoint(ctx context.Context, ep netip.AddrPort) (*keystore.Device, error) {
	s.endpointLookups.Add(1)
	return s.Store.DeviceByEndpoint(ctx, ep)
}

// testStore is a fresh SQLite store with one user.
type testStore struct {
	*countingStore
	sq     *sqlite.Store
	userID string
}

func newTestStore(t *testing.T) *testStore {
	t.Helper()
	ctx := t.Context()
	sq, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sq.Close() })
	now := time.Now().UTC().Truncate(time.Second)
	u := &account.User{
		ID:       "u-" + randHex(t),
		Email:    randHex(t) + "@example.com",
		Language: "en",
		Credentials: account.Credentials{
			Salt:                 randBytes(t, account.SaltSize),
			KDF:                  account.KDFParams{Algorithm: "argon2id", Version: 19, MemoryKiB: 65536, Iterations: 3, Parallelism: 1},
			LoginKeyHash:         randBytes(t, account.LoginKeyHashSize),
			BoxPublicKey:         randBytes(t, account.PublicKeySize),
			SignPublicKey:        randBytes(t, account.PublicKeySize),
			EncryptedPrivateKeys: randBytes(t, account.EncryptedPrivateKeysSize),
		},
		CreatedAt: now,
		UpdatedAt: now,
	}
	if err := sq.CreateUser(ctx, u, nil); err != nil {
		t.Fatal(err)
	}
	return &testStore{countingStore: &countingStore{Store: sq}, sq: sq, userID: u.ID}
}

// addDevice registers a device with the public key of priv.
func (s *testStore) addDevice(t *testing.T, priv wgkey.Private) *keystore.Device {
	t.Helper()
	pub := priv.Public()
	dev := &keystore.Device{
		ID:        "d-" + randHex(t),
		UID:       "warp2-" + randHex(t),
		PublicKey: pub,
		MgmtAddr:  wire.MgmtAddr(pub),
		Firmware:  "factory",
		CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	if _, err := s.sq.AddDeviceForUser(t.Context(), s.userID, dev, nil, nil); err != nil {
		t.Fatal(err)
	}
	return dev
}

// device reads the device back.
func (s *testStore) device(t testing.TB, id string) *keystore.Device {
	t.Helper()
	d, err := s.sq.DeviceByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func randBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func randHex(t testing.TB) string { return hex.EncodeToString(randBytes(t, 6)) }

// endpointCall is one call to the Endpoints interface.
type endpointCall struct {
	id         string
	ep         netip.AddrPort // zero for ClearDevice
	handshakes uint64         // Stats().Handshakes when it was made
}

// recordingEndpoints passes Endpoints calls on to the real relay and records
// them.
type recordingEndpoints struct {
	next Endpoints
	m    atomic.Pointer[Mgmt]

	mu    sync.Mutex
	calls []endpointCall
}

func (r *recordingEndpoints) SetDeviceEndpoint(id string, ep netip.AddrPort) {
	c := endpointCall{id: id, ep: ep}
	if m := r.m.Load(); m != nil {
		c.handshakes = m.stats.handshakes.Load()
	}
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.mu.Unlock()
	r.next.SetDeviceEndpoint(id, ep)
}

func (r *recordingEndpoints) ClearDevice(id string) {
	r.mu.Lock()
	r.calls = append(r.calls, endpointCall{id: id})
	r.mu.Unlock()
	r.next.ClearDevice(id)
}

func (r *recordingEndpoints) all() []endpointCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// lastFor returns the last call for the device, and whether there was one.
func (r *recordingEndpoints) lastFor(id string) (endpointCall, bool) {
	calls := r.all()
	for i := len(calls) - 1; i >= 0; i-- {
		if calls[i].id == id {
			return calls[i], true
		}
	}
	return endpointCall{}, false
}

// relayRef lets the relay and the management side be built in either order:
// each needs the other.
type relayRef struct{ atomic.Pointer[relay.Server] }

func (r *relayRef) WriteTo(b []byte, to netip.AddrPort) error { return r.Load().WriteTo(b, to) }
func (r *relayRef) SetDeviceEndpoint(id string, ep netip.AddrPort) {
	r.Load().SetDeviceEndpoint(id, ep)
}
func (r *relayRef) ClearDevice(id string) { r.Load().ClearDevice(id) }

// harness is the real relay (pkg/relay) on a loopback socket with the
// management side behind it, on a real SQLite store.
type harness struct {
	t         *testing.T
	store     *testStore
	key       wgkey.Private // the relay's management key
	opts      []harnessConfig
	relay     *relay.Server
	m         *Mgmt
	endpoints *recordingEndpoints
	addr      netip.AddrPort // the relay's UDP address
	stop      func()         // ends Run and the relay, and waits for them
}

// harnessConfig adjusts a harness's Mgmt config.
type harnessConfig func(*Config)

func newHarness(t *testing.T, opts ...harnessConfig) *harness {
	t.Helper()
	h := &harness{t: t, store: newTestStore(t), key: newKey(t), opts: opts}
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	h.start(udp)
	return h
}

// restart ends the relay and its management side and starts new ones on
// the same UDP port, with the same key and store: a relay process that
// restarted. Nothing of the old one's memory survives.
func (h *harness) restart() {
	h.t.Helper()
	h.stop()
	udp, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(h.addr))
	if err != nil {
		h.t.Fatalf("listen again on %s: %v", h.addr, err)
	}
	h.start(udp)
}

// start runs a new relay and management side on udp.
func (h *harness) start(udp *net.UDPConn) {
	t := h.t
	t.Helper()
	h.addr = udp.LocalAddr().(*net.UDPAddr).AddrPort()
	ref := &relayRef{}
	h.endpoints = &recordingEndpoints{next: ref}
	cfg := Config{
		Private:             h.key,
		Store:               h.store,
		Sender:              ref,
		Endpoints:           h.endpoints,
		Node:                "node-test",
		Logger:              testLogger(t),
		OfflineAfter:        1500 * time.Millisecond,
		ControlPingInterval: 400 * time.Millisecond,
	}
	for _, o := range h.opts {
		o(&cfg)
	}
	var err error
	h.m, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.endpoints.m.Store(h.m)
	h.relay, err = relay.New(relay.Config{Conn: udp, Mgmt: h.m, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ref.Store(h.relay)

	ctx, cancel := context.WithCancel(context.Background())
	mgmtDone := make(chan error, 1)
	relayDone := make(chan error, 1)
	m, r := h.m, h.relay
	go func() { mgmtDone <- m.Run(ctx) }()
	go func() { relayDone <- r.Run(ctx) }()
	var once sync.Once
	h.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-mgmtDone; err != nil {
				t.Errorf("mgmt Run: %v", err)
			}
			if err := <-relayDone; err != nil {
				t.Errorf("relay Run: %v", err)
			}
			udp.Close()
		})
	}
	t.Cleanup(h.stop)
	eventually(t, "mgmt running", m.running.Load)
}

// captureBind is wireguard-go's standard UDP bind that keeps a copy of every
// handshake initiation it sends and reports its port.
type captureBind struct {
	conn.Bind
	port  atomic.Uint32
	mu    sync.Mutex
	inits [][]byte
}

func (b *captureBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	fns, actual, err := b.Bind.Open(port)
	if err == nil {
		b.port.Store(uint32(actual))
	}
	return fns, actual, err
}

func (b *captureBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	for _, buf := range bufs {
		if len(buf) == wire.MessageInitiationSize && buf[0] == wire.MessageInitiationType {
			b.mu.Lock()
			b.inits = append(b.inits, slices.Clone(buf))
			b.mu.Unlock()
		}
	}
	return b.Bind.Send(bufs, ep)
}

// initiations returns the initiations sent so far.
func (b *captureBind) initiations() [][]byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.inits)
}

// testDevice is a device as pkg/device will be: wireguard-go over a gVisor
// netstack holding the device's management address, a standard UDP bind,
// and the relay's management key as its one peer.
type testDevice struct {
	t    *testing.T
	priv wgkey.Private
	dev  *device.Device
	tnet *netstack.Net
	bind *captureBind
}

func startDevice(t *testing.T, priv wgkey.Private, relayPub wgkey.Public, relayAddr netip.AddrPort) *testDevice {
	t.Helper()
	return startDeviceKeepalive(t, priv, relayPub, relayAddr, 1)
}

// startDeviceKeepalive is startDevice with a PersistentKeepalive of
// keepalive seconds.
func startDeviceKeepalive(t *testing.T, priv wgkey.Private, relayPub wgkey.Public, relayAddr netip.AddrPort, keepalive int) *testDevice {
	t.Helper()
	tunDev, tnet, err := netstack.CreateNetTUN([]netip.Addr{wire.MgmtAddr(priv.Public())}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	b := &captureBind{Bind: conn.NewDefaultBind()}
	logger := device.NewLogger(device.LogLevelError, fmt.Sprintf("device %s: ", priv.Public().ShortString()))
	dev := device.NewDevice(tunDev, b, logger)
	conf := "private_key=" + priv.Hex() + "\nlisten_port=0\n" +
		"public_key=" + relayPub.Hex() + "\n" +
		"endpoint=" + relayAddr.String() + "\n" +
		"allowed_ip=" + netip.PrefixFrom(wire.RelayMgmtAddr, 128).String() + "\n" +
		"persistent_keepalive_interval=" + strconv.Itoa(keepalive) + "\n"
	if err := dev.IpcSet(conf); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	d := &testDevice{t: t, priv: priv, dev: dev, tnet: tnet, bind: b}
	t.Cleanup(d.stop)
	return d
}

// addr is the device's UDP address as the relay sees it.
func (d *testDevice) addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(d.bind.port.Load()))
}

// rebind moves the device to a new UDP port, as a NAT rebinding would.
func (d *testDevice) rebind(t *testing.T) {
	t.Helper()
	old := d.bind.port.Load()
	for d.bind.port.Load() == old {
		if err := d.dev.IpcSet("listen_port=0\n"); err != nil {
			t.Fatal(err)
		}
	}
}

func (d *testDevice) stop() { d.dev.Close() }

// chatter sends an ICMPv6 echo request to the relay's management address
// every interval until the test ends, as a device with something to say
// (pkg/device's control connection, say) does: WireGuard transport
// messages that are not keepalives. Replies are read and discarded.
func (d *testDevice) chatter(t *testing.T, interval time.Duration) {
	t.Helper()
	ping, err := d.tnet.DialPingAddr(wire.MgmtAddr(d.priv.Public()), wire.RelayMgmtAddr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	t.Cleanup(func() {
		close(done)
		ping.Close()
		wg.Wait()
	})
	wg.Go(func() {
		buf := make([]byte, 256)
		for {
			if _, err := ping.Read(buf); err != nil {
				select {
				case <-done:
					return
				default:
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
	})
	wg.Go(func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for seq := uint16(1); ; seq++ {
			msg := []byte{128, 0, 0, 0, 0, 0, byte(seq >> 8), byte(seq), 't', 'e', 's', 't'}
			_, _ = ping.Write(msg)
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
}

// controlClient is a minimal device side of the control protocol: it sends
// its Hello, then answers Pings and Commands until closed.
type controlClient struct {
	c     net.Conn
	ack   wire.HelloAck
	pings atomic.Int64
	done  chan struct{}
}

func (d *testDevice) dialControl(t *testing.T, hello wire.Hello) *controlClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	defer cancel()
	c, err := d.tnet.DialContextTCPAddrPort(ctx, netip.AddrPortFrom(wire.RelayMgmtAddr, wire.ControlPort))
	if err != nil {
		t.Fatalf("dial control port: %v", err)
	}
	if err := wire.WriteMessage(c, hello); err != nil {
		t.Fatal(err)
	}
	msg, err := wire.ReadMessage(c)
	if err != nil {
		t.Fatalf("read hello ack: %v", err)
	}
	ack, ok := msg.(wire.HelloAck)
	if !ok {
		t.Fatalf("first frame from the relay is %T, want HelloAck", msg)
	}
	cc := &controlClient{c: c, ack: ack, done: make(chan struct{})}
	go cc.serve()
	t.Cleanup(func() {
		c.Close()
		<-cc.done
	})
	return cc
}

func (cc *controlClient) serve() {
	defer close(cc.done)
	for {
		msg, err := wire.ReadMessage(cc.c)
		if errors.Is(err, wire.ErrBadPayload) {
			continue
		}
		if err != nil {
			return
		}
		switch v := msg.(type) {
		case wire.Ping:
			cc.pings.Add(1)
			_ = wire.WriteMessage(cc.c, wire.Pong(v))
		case wire.SignedCommand:
			_ = wire.WriteMessage(cc.c, wire.CommandAck{ID: v.Command.ID, Status: wire.AckOK})
		}
	}
}

// udpPeer is a plain UDP socket, for an attacker's datagrams.
type udpPeer struct {
	c    *net.UDPConn
	addr netip.AddrPort
}

func newUDPPeer(t *testing.T) *udpPeer {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &udpPeer{c: c, addr: c.LocalAddr().(*net.UDPAddr).AddrPort()}
}

func (p *udpPeer) send(t *testing.T, to netip.AddrPort, b []byte) {
	t.Helper()
	if _, err := p.c.WriteToUDPAddrPort(b, to); err != nil {
		t.Fatal(err)
	}
}

// expectSilence fails if anything arrives at p within d.
func (p *udpPeer) expectSilence(t *testing.T, d time.Duration) {
	t.Helper()
	_ = p.c.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 2048)
	n, from, err := p.c.ReadFromUDPAddrPort(buf)
	if err == nil {
		t.Fatalf("the relay sent %d bytes (type %d) to %s, which never authenticated", n, buf[0], from)
	}
}

// withMac1 returns msg with its mac1 recomputed for receiver, as anyone who
// knows the receiver's public key can.
func withMac1(msg []byte, receiver wgkey.Public) []byte {
	out := slices.Clone(msg)
	key := wire.NewMac1Key(receiver)
	off := len(out) - 32
	mac, _ := blake2s.New128(key[:])
	mac.Write(out[:off])
	copy(out[off:off+16], mac.Sum(nil))
	return out
}

// tamperedInitiation returns init with its encrypted timestamp changed and a
// valid mac1: the static key still decrypts (so it names the device), but
// wireguard-go rejects the handshake.
func tamperedInitiation(init []byte, relayPub wgkey.Public) []byte {
	b := slices.Clone(init)
	b[88] ^= 1 // first byte of the encrypted timestamp
	return withMac1(b, relayPub)
}

// captureInitiation returns a fresh handshake initiation from priv to
// relayPub, made by wireguard-go and never delivered anywhere.
func captureInitiation(t testing.TB, priv wgkey.Private, relayPub wgkey.Public) []byte {
	t.Helper()
	tunDev, _, err := netstack.CreateNetTUN([]netip.Addr{wire.MgmtAddr(priv.Public())}, nil, 1420)
	if err != nil {
		t.Fatal(err)
	}
	b := &sinkBind{got: make(chan []byte, 16)}
	dev := device.NewDevice(tunDev, b, device.NewLogger(device.LogLevelError, ""))
	defer dev.Close()
	conf := "private_key=" + priv.Hex() + "\n" +
		"public_key=" + relayPub.Hex() + "\nendpoint=127.0.0.1:9\n" +
		"allowed_ip=" + netip.PrefixFrom(wire.RelayMgmtAddr, 128).String() + "\npersistent_keepalive_interval=1\n"
	if err := dev.IpcSet(conf); err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case msg := <-b.got:
			if len(msg) == wire.MessageInitiationSize && msg[0] == wire.MessageInitiationType {
				return msg
			}
		case <-time.After(waitFor):
			t.Fatal("no initiation")
		}
	}
}

// sinkBind is a conn.Bind that receives nothing and keeps what is sent.
type sinkBind struct {
	got    chan []byte
	mu     sync.Mutex
	closed chan struct{}
}

func (b *sinkBind) Open(port uint16) ([]conn.ReceiveFunc, uint16, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := make(chan struct{})
	b.closed = c
	return []conn.ReceiveFunc{func([][]byte, []int, []conn.Endpoint) (int, error) {
		<-c
		return 0, net.ErrClosed
	}}, port, nil
}

func (b *sinkBind) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed != nil {
		close(b.closed)
		b.closed = nil
	}
	return nil
}

func (*sinkBind) SetMark(uint32) error { return nil }
func (*sinkBind) BatchSize() int       { return 1 }

func (b *sinkBind) Send(bufs [][]byte, _ conn.Endpoint) error {
	for _, buf := range bufs {
		select {
		case b.got <- slices.Clone(buf):
		default:
		}
	}
	return nil
}

func (*sinkBind) ParseEndpoint(s string) (conn.Endpoint, error) {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, err
	}
	return &endpoint{addr: ap}, nil
}

// transport returns a keepalive-sized transport message to receiver.
func transport(receiver uint32) []byte {
	b := make([]byte, wire.MessageTransportMinSize)
	b[0] = wire.MessageTransportType
	binary.LittleEndian.PutUint32(b[4:8], receiver)
	return b
}

// fakeStore knows no device and records nothing.
type fakeStore struct{ lookups atomic.Int64 }

func (s *fakeStore) DeviceByPublicKey(context.Context, [32]byte) (*keystore.Device, error) {
	s.lookups.Add(1)
	return nil, keystore.ErrDeviceNotFound
}
func (*fakeStore) SetPresence(context.Context, string, netip.AddrPort, bool, string, time.Time) error {
	return nil
}
func (*fakeStore) SetFirmware(context.Context, string, string, int) error { return nil }
func (*fakeStore) SetNodeOffline(context.Context, string) (int, error)    { return 0, nil }
func (*fakeStore) DeviceByEndpoint(context.Context, netip.AddrPort) (*keystore.Device, error) {
	return nil, keystore.ErrDeviceNotFound
}
func (*fakeStore) DeviceByID(context.Context, string) (*keystore.Device, error) {
	return nil, keystore.ErrDeviceNotFound
}

// fakeRelay counts what the management side asks of the relay.
type fakeRelay struct {
	writes, endpoints, clears atomic.Int64
}

func (r *fakeRelay) WriteTo([]byte, netip.AddrPort) error     { r.writes.Add(1); return nil }
func (r *fakeRelay) SetDeviceEndpoint(string, netip.AddrPort) { r.endpoints.Add(1) }
func (r *fakeRelay) ClearDevice(string)                       { r.clears.Add(1) }
