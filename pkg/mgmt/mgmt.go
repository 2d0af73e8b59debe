package mgmt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.zx2c4.com/wireguard/device"

	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// Defaults for Config fields left zero.
const (
	// DefaultOfflineAfter: a device is offline after this long without
	// authenticated traffic. Devices keep the tunnel alive every 25 s
	// (PersistentKeepalive), so this allows two missed keepalives and
	// some slack.
	DefaultOfflineAfter = 2*25*time.Second + 15*time.Second
	// DefaultControlPingInterval is how often the relay pings a control
	// connection; a Ping not answered by the next one ends it.
	DefaultControlPingInterval = 30 * time.Second
	// DefaultQueueSize is the number of datagrams queued toward
	// wireguard-go before new ones are dropped.
	DefaultQueueSize = 1024
	// DefaultMaxPeers bounds the device peers loaded at once, below
	// wireguard-go's own limit of 65536.
	DefaultMaxPeers = 60000
)

// Implementation constants.
const (
	// mtu of the management tunnel: the IPv6 minimum, so that it fits any
	// path the device's own WireGuard interface fits.
	mtu = 1280
	// intakeSize is the number of handshake initiations waiting for a
	// peer lookup; intakeWorkers work on them.
	intakeSize = 256
	// lookupTimeout bounds one store lookup of a device.
	lookupTimeout = 5 * time.Second
	// negativeTTL is how long an unknown static key stays known as
	// unknown, and maxNegative how many are kept.
	negativeTTL = 30 * time.Second
	maxNegative = 4096
	// helloTimeout bounds the wait for a control connection's Hello, and
	// writeTimeout every control frame written.
	helloTimeout = 30 * time.Second
	writeTimeout = 10 * time.Second
	// shutdownTimeout bounds the store writes after Run's context ends.
	shutdownTimeout = 5 * time.Second
)

// Store is what the management side needs of keystore.Store (which
// satisfies it): look devices up by their WireGuard key and record what the
// tunnel proves about them.
type Store interface {
	// DeviceByPublicKey returns the device, or keystore.ErrDeviceNotFound.
	DeviceByPublicKey(ctx context.Context, publicKey [32]byte) (*keystore.Device, error)
	// SetPresence records the device's endpoint and online state as this
	// node learned it (see keystore.Store).
	SetPresence(ctx context.Context, deviceID string, endpoint netip.AddrPort, online bool, node string, now time.Time) error
	// SetFirmware records what the device reported in its Hello.
	SetFirmware(ctx context.Context, deviceID, firmware string, protocolVersion int) error
	// SetNodeOffline marks every device this node holds offline.
	SetNodeOffline(ctx context.Context, node string) (int, error)
	// DeviceByEndpoint returns the device last seen at ep, or
	// keystore.ErrDeviceNotFound: the lookup of a re-handshake.
	DeviceByEndpoint(ctx context.Context, ep netip.AddrPort) (*keystore.Device, error)
	// DeviceByID returns the device, or keystore.ErrDeviceNotFound: the
	// lookup of a wake (Wake).
	DeviceByID(ctx context.Context, id string) (*keystore.Device, error)
}

// Sender writes a datagram through the relay's UDP socket
// ((*relay.Server).WriteTo).
type Sender interface {
	WriteTo(b []byte, to netip.AddrPort) error
}

// Endpoints is the relay's table of device endpoints ((*relay.Server)).
// The management side calls SetDeviceEndpoint only with an address an
// authenticated management packet came from, and ClearDevice when the
// device goes offline.
type Endpoints interface {
	SetDeviceEndpoint(deviceID string, ep netip.AddrPort)
	ClearDevice(deviceID string)
}

// Config configures a Mgmt.
type Config struct {
	// Private is the relay's management WireGuard key. Required.
	Private wgkey.Private
	// Store looks devices up and keeps their presence. Required.
	Store Store
	// Sender and Endpoints are the relay's socket and endpoint table,
	// normally the same *relay.Server. Required.
	Sender    Sender
	Endpoints Endpoints
	// Node names this relay process in presence records. Required.
	Node string
	// Logger logs peer and control events; nil discards.
	Logger *slog.Logger
	// OfflineAfter: a device with no authenticated traffic for this long
	// is offline; 0 means DefaultOfflineAfter.
	OfflineAfter time.Duration
	// IdlePeerTimeout: a lazily loaded peer with no authenticated traffic
	// for this long (counted from its loading if it never had any) is
	// removed from wireguard-go; 0 means OfflineAfter. A device whose peer
	// is removed is offline.
	IdlePeerTimeout time.Duration
	// ControlPingInterval is how often control connections are pinged;
	// 0 means DefaultControlPingInterval.
	ControlPingInterval time.Duration
	// QueueSize is the queue toward wireguard-go; 0 means DefaultQueueSize.
	QueueSize int
	// MaxPeers bounds the peers loaded at once; 0 means DefaultMaxPeers.
	MaxPeers int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Mgmt is the relay's end of the management tunnel. Its methods are safe
// for concurrent use.
type Mgmt struct {
	public    wgkey.Public
	private   wgkey.Private
	responder *wire.Responder
	mac1      wire.Mac1Key
	store     Store
	sender    Sender
	endpoints Endpoints
	node      string
	log       *slog.Logger
	now       func() time.Time

	offlineAfter, idleTimeout, pingInterval time.Duration
	maxPeers                                int

	bind      *bind
	queue     chan *packet // toward wireguard-go
	intake    chan *packet // initiations waiting for a peer lookup
	limiter   *limiter
	stats     *counters
	storeLogs logLimiter // store errors on the packet path

	ran     atomic.Bool // Run was called
	running atomic.Bool // Run serves: HandleMgmt accepts datagrams

	// ipcMu serialises peer loading and removal (IpcSet) and guards dev.
	ipcMu sync.Mutex
	dev   *device.Device

	// mu guards the peer tables, the negative cache, lookups, controls and the
	// fields of every peer marked "guarded by Mgmt.mu". The packet path
	// takes it for reading.
	mu       sync.RWMutex
	byKey    map[wgkey.Public]*peer
	byID     map[string]*peer
	byAddr   map[netip.Addr]*peer // by management address
	byIndex  map[uint32]*peer     // by the relay's own session index
	negative map[wgkey.Public]time.Time
	lookups  map[wgkey.Public]*lookup // in flight
	controls map[*controlConn]struct{}

	// outMu orders the calls to Endpoints, so that they reach the relay
	// in the order the peer state changed.
	outMu sync.Mutex

	presence presenceQueue
	reh      rehandshakes
}

// New returns a Mgmt for cfg. It does not start the tunnel: call Run.
func New(cfg Config) (*Mgmt, error) {
	switch {
	case cfg.Private.IsZero():
		return nil, errors.New("mgmt: config: Private is zero")
	case cfg.Store == nil:
		return nil, errors.New("mgmt: config: Store is nil")
	case cfg.Sender == nil:
		return nil, errors.New("mgmt: config: Sender is nil")
	case cfg.Endpoints == nil:
		return nil, errors.New("mgmt: config: Endpoints is nil")
	case cfg.Node == "":
		return nil, errors.New("mgmt: config: Node is empty")
	case cfg.OfflineAfter < 0, cfg.IdlePeerTimeout < 0, cfg.ControlPingInterval < 0:
		return nil, errors.New("mgmt: config: negative duration")
	case cfg.QueueSize < 0, cfg.MaxPeers < 0:
		return nil, errors.New("mgmt: config: negative QueueSize or MaxPeers")
	}
	if cfg.OfflineAfter == 0 {
		cfg.OfflineAfter = DefaultOfflineAfter
	}
	if cfg.IdlePeerTimeout == 0 {
		cfg.IdlePeerTimeout = cfg.OfflineAfter
	}
	if cfg.ControlPingInterval == 0 {
		cfg.ControlPingInterval = DefaultControlPingInterval
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = DefaultQueueSize
	}
	if cfg.MaxPeers == 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	pub := cfg.Private.Public()
	m := &Mgmt{
		public:       pub,
		private:      cfg.Private,
		responder:    wire.NewResponder(cfg.Private),
		mac1:         wire.NewMac1Key(pub),
		store:        cfg.Store,
		sender:       cfg.Sender,
		endpoints:    cfg.Endpoints,
		node:         cfg.Node,
		log:          cfg.Logger,
		now:          cfg.Now,
		offlineAfter: cfg.OfflineAfter,
		idleTimeout:  cfg.IdlePeerTimeout,
		pingInterval: cfg.ControlPingInterval,
		maxPeers:     cfg.MaxPeers,
		queue:        make(chan *packet, cfg.QueueSize),
		intake:       make(chan *packet, intakeSize),
		limiter:      newLimiter(limitRate, limitBurst),
		stats:        newCounters(),
		byKey:        make(map[wgkey.Public]*peer),
		byID:         make(map[string]*peer),
		byAddr:       make(map[netip.Addr]*peer),
		byIndex:      make(map[uint32]*peer),
		negative:     make(map[wgkey.Public]time.Time),
		lookups:      make(map[wgkey.Public]*lookup),
		controls:     make(map[*controlConn]struct{}),
		presence:     newPresenceQueue(),
		reh:          newRehandshakes(),
	}
	m.bind = &bind{m: m}
	return m, nil
}

// Format keeps the private key out of fmt output of a *Mgmt.
func (m *Mgmt) Format(f fmt.State, _ rune) {
	_, _ = fmt.Fprintf(f, "mgmt.Mgmt{%s}", m.public.ShortString())
}

// LogValue keeps the private key out of logs.
func (m *Mgmt) LogValue() slog.Value { return slog.StringValue(m.public.ShortString()) }

// PublicKey returns the relay's management public key: the devices' peer.
func (m *Mgmt) PublicKey() wgkey.Public { return m.public }

// Online reports whether the device is online: the management tunnel
// authenticated traffic from it within OfflineAfter.
func (m *Mgmt) Online(deviceID string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p := m.byID[deviceID]
	return p != nil && p.online
}

// Stats returns a snapshot of the counters.
func (m *Mgmt) Stats() Stats {
	s := Stats{
		Received:      m.stats.received.Load(),
		Sent:          m.stats.sent.Load(),
		Handshakes:    m.stats.handshakes.Load(),
		Probes:        m.stats.probes.Load(),
		PeerLoads:     m.stats.peerLoads.Load(),
		PeerEvictions: m.stats.peerEvictions.Load(),
		Rehandshakes:  m.reh.stats(),
		Drops:         m.stats.dropMap(),
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	s.PeersLoaded = len(m.byKey)
	for _, p := range m.byKey {
		if p.online {
			s.Online++
		}
	}
	s.Control = len(m.controls)
	return s
}

// intakeWorkers is the number of goroutines that look initiations up.
func intakeWorkers() int { return min(4, max(1, runtime.GOMAXPROCS(0)/2)) }
