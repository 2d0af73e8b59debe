package device

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"golang.zx2c4.com/wireguard/device"
)

// Device is a paired device. Make one with Pair, PairWithPassword or Open;
// then Run it. Its methods are safe for concurrent use.
type Device struct {
	cfg Config // with defaults; immutable
	log *slog.Logger

	mu         sync.Mutex
	st         *state         // guarded by mu; replaced, never changed in place
	running    bool           // guarded by mu: Run is under way
	wg         *device.Device // guarded by mu: the running interface, nil outside Run
	listenPort int            // guarded by mu: the bound UDP port while running
	timing     *controlTiming // guarded by mu: nil means defaultControlTiming (tests shorten it)
}

// Open loads the device whose state cfg.DataDir holds. It fails with
// ErrNotPaired (wrapped) if there is none, ErrBadState if the file is
// damaged. The state file's UID wins over cfg.UID.
func Open(cfg Config) (*Device, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("open device: %w", err)
	}
	st, err := loadState(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("open device: %w", err)
	}
	return newDevice(cfg, st), nil
}

func newDevice(cfg Config, st *state) *Device {
	cfg.UID = st.UID
	return &Device{
		cfg: cfg,
		log: cfg.Logger.With("device_id", st.DeviceID, "uid", st.UID),
		st:  st,
	}
}

// Info describes a paired device: public facts only.
type Info struct {
	DeviceID       string       // the device's id at the relay
	UID            string       // the device's own name
	PublicKey      wgkey.Public // the device's WireGuard static key
	MgmtAddr       netip.Addr   // the device's address in the management tunnel
	RelayURL       string       // the relay's API
	RelayEndpoint  string       // the relay's UDP endpoint, host:port
	RelayPublicKey wgkey.Public // the relay's management key
	OwnerUserID    string
	PairedAt       time.Time
	Slots          []SlotInfo
}

// SlotInfo is one key slot: its index, whose it is and the browser's public
// key. The pre-shared key stays inside the package.
type SlotInfo struct {
	Index     int
	UserID    string
	PublicKey wgkey.Public
}

// Info returns the device's public facts.
func (d *Device) Info() Info {
	st := d.state()
	info := Info{
		DeviceID:       st.DeviceID,
		UID:            st.UID,
		PublicKey:      st.Private.Public(),
		MgmtAddr:       st.Relay.MgmtAddr,
		RelayURL:       st.Relay.URL,
		RelayEndpoint:  st.Relay.Endpoint,
		RelayPublicKey: st.Relay.PublicKey,
		OwnerUserID:    st.Owner.UserID,
		PairedAt:       st.PairedAt,
	}
	for _, sl := range st.Slots {
		info.Slots = append(info.Slots, SlotInfo{Index: sl.Index, UserID: sl.UserID, PublicKey: sl.PublicKey})
	}
	return info
}

// ListenPort returns the UDP port of the WireGuard interface while Run is
// running it, 0 otherwise.
func (d *Device) ListenPort() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.listenPort
}

// controlTiming returns the control client's timers.
func (d *Device) controlTiming() controlTiming {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timing != nil {
		return *d.timing
	}
	return defaultControlTiming
}

// state returns the current state; the caller must not change it.
func (d *Device) state() *state {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.st
}

// LogValue logs the device's identity.
func (d *Device) LogValue() slog.Value {
	st := d.state()
	return slog.GroupValue(slog.String("device_id", st.DeviceID), slog.String("uid", st.UID),
		slog.String("public_key", st.Private.Public().ShortString()))
}

// wgLogger adapts wireguard-go's logging to slog: its verbose lines at
// debug level (formatted only if debug is on), its errors as warnings.
// wireguard-go logs peers by a shortened public key and never a private one.
func wgLogger(log *slog.Logger) *device.Logger {
	l := &device.Logger{Verbosef: device.DiscardLogf, Errorf: func(format string, args ...any) {
		log.Warn(fmt.Sprintf(format, args...))
	}}
	if log.Enabled(context.Background(), slog.LevelDebug) {
		l.Verbosef = func(format string, args ...any) { log.Debug(fmt.Sprintf(format, args...)) }
	}
	return l
}
