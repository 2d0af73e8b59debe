package device

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// StateFileName is the state file's name in Config.DataDir.
const StateFileName = "device.json"

// The state file's format marker and version.
const (
	stateFormat  = "blindrelay-device"
	stateVersion = 1
)

// maxRecentCommands is how many accepted commands the device remembers by
// id, to acknowledge one sent again after a lost ack.
const maxRecentCommands = 32

var (
	// ErrNotPaired: Open found no state file; pair first.
	ErrNotPaired = errors.New("device is not paired")
	// ErrAlreadyPaired: Pair found a state file; the device keeps its
	// identity. Remove the data directory (and the device at the relay) to
	// pair again.
	ErrAlreadyPaired = errors.New("device is already paired")
	// ErrBadState: the state file is damaged or of an unknown version.
	ErrBadState = errors.New("bad device state file")
)

// state is everything a paired device keeps. Its secrets are typed
// (wgkey.Private, wgkey.Preshared) and redact themselves in logs; the
// file's JSON (stateFile) spells them out.
type state struct {
	UID      string
	DeviceID string
	Private  wgkey.Private
	PairedAt time.Time
	Relay    relayInfo
	Owner    owner
	Slots    []slot
	Counter  uint64          // the highest owner command counter accepted
	Recent   []recentCommand // the latest accepted commands, oldest first
}

// relayInfo is what the relay told the device at pairing.
type relayInfo struct {
	URL           string       `json:"url"`
	PublicKey     wgkey.Public `json:"public_key"` // the relay's management WireGuard key
	Endpoint      string       `json:"endpoint"`   // UDP "host:port"
	MgmtAddr      netip.Addr   `json:"mgmt_addr"`  // the device's management address
	RelayMgmtAddr netip.Addr   `json:"relay_mgmt_addr"`
	ControlPort   int          `json:"control_port"`
}

// owner is the user the device was paired to. The keys come from the
// pairing token (built by the user's client) or from the user's own
// private keys (PairWithPassword), never from the relay's word alone.
type owner struct {
	UserID        string            `json:"user_id"`
	BoxPublicKey  []byte            `json:"box_public_key"`  // X25519, 32 bytes: slots are sealed to it
	SignPublicKey ed25519.PublicKey `json:"sign_public_key"` // verifies owner commands
}

// slot is one key slot: a WireGuard peer of the device. The browser's
// private key is not kept.
type slot struct {
	Index     int
	UserID    string
	PublicKey wgkey.Public // the browser's
	Preshared wgkey.Preshared
}

// recentCommand is an accepted owner command, remembered by id.
type recentCommand struct {
	ID      string `json:"id"`
	Counter uint64 `json:"counter"`
}

// stateFile is the JSON of the state file.
type stateFile struct {
	Format     string          `json:"format"`
	Version    int             `json:"version"`
	Comment    string          `json:"comment"`
	UID        string          `json:"uid"`
	DeviceID   string          `json:"device_id"`
	PublicKey  wgkey.Public    `json:"public_key"`
	PrivateKey string          `json:"private_key"`
	PairedAt   time.Time       `json:"paired_at"`
	Relay      relayInfo       `json:"relay"`
	Owner      owner           `json:"owner"`
	Slots      []slotFile      `json:"slots"`
	Counter    uint64          `json:"command_counter"`
	Recent     []recentCommand `json:"recent_commands,omitempty"`
}

type slotFile struct {
	Index        int          `json:"index"`
	UserID       string       `json:"user_id"`
	PublicKey    wgkey.Public `json:"public_key"`
	PresharedKey string       `json:"preshared_key"`
}

// marshal returns the state file's bytes.
func (s *state) marshal() ([]byte, error) {
	f := stateFile{
		Format:     stateFormat,
		Version:    stateVersion,
		Comment:    "blindrelay device state: holds this device's WireGuard private key and its key slots' pre-shared keys. Keep it secret.",
		UID:        s.UID,
		DeviceID:   s.DeviceID,
		PublicKey:  s.Private.Public(),
		PrivateKey: s.Private.Base64(),
		PairedAt:   s.PairedAt.UTC(),
		Relay:      s.Relay,
		Owner:      s.Owner,
		Counter:    s.Counter,
		Recent:     s.Recent,
	}
	for _, sl := range s.Slots {
		f.Slots = append(f.Slots, slotFile{Index: sl.Index, UserID: sl.UserID, PublicKey: sl.PublicKey, PresharedKey: sl.Preshared.Base64()})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// parseState parses and checks a state file.
func parseState(b []byte) (*state, error) {
	var f stateFile
	d := json.NewDecoder(bytes.NewReader(b))
	if err := d.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if f.Format != stateFormat {
		return nil, fmt.Errorf("%w: not a device state file", ErrBadState)
	}
	if f.Version != stateVersion {
		return nil, fmt.Errorf("%w: version %d, this build reads %d", ErrBadState, f.Version, stateVersion)
	}
	priv, err := wgkey.ParsePrivate(f.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("%w: private key: %w", ErrBadState, err)
	}
	if !f.PublicKey.IsZero() && !f.PublicKey.Equal(priv.Public()) {
		return nil, fmt.Errorf("%w: public key does not match the private key", ErrBadState)
	}
	s := &state{
		UID: f.UID, DeviceID: f.DeviceID, Private: priv, PairedAt: f.PairedAt,
		Relay: f.Relay, Owner: f.Owner, Counter: f.Counter, Recent: f.Recent,
	}
	for _, sf := range f.Slots {
		psk, err := wgkey.ParsePreshared(sf.PresharedKey)
		if err != nil {
			return nil, fmt.Errorf("%w: slot %d: pre-shared key: %w", ErrBadState, sf.Index, err)
		}
		s.Slots = append(s.Slots, slot{Index: sf.Index, UserID: sf.UserID, PublicKey: sf.PublicKey, Preshared: psk})
	}
	if err := s.check(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	return s, nil
}

// check checks the state's consistency.
func (s *state) check() error {
	switch {
	case ValidateUID(s.UID) != nil:
		return fmt.Errorf("UID: %w", ValidateUID(s.UID))
	case s.DeviceID == "":
		return errors.New("no device id")
	case s.Relay.PublicKey.IsZero():
		return errors.New("no relay public key")
	case s.Relay.Endpoint == "":
		return errors.New("no relay endpoint")
	case !s.Relay.MgmtAddr.Is6() || !s.Relay.RelayMgmtAddr.Is6():
		return errors.New("management addresses are not IPv6")
	case s.Relay.ControlPort < 1 || s.Relay.ControlPort > 65535:
		return errors.New("control port out of range")
	case len(s.Owner.BoxPublicKey) != 32 || len(s.Owner.SignPublicKey) != ed25519.PublicKeySize:
		return errors.New("owner keys missing or malformed")
	case s.Owner.UserID == "":
		return errors.New("no owner user id")
	}
	seenIndex := make(map[int]bool)
	seenKey := make(map[wgkey.Public]bool)
	for _, sl := range s.Slots {
		if _, ok := wire.SlotAddr4(sl.Index); !ok {
			return fmt.Errorf("slot index %d out of range", sl.Index)
		}
		if seenIndex[sl.Index] || seenKey[sl.PublicKey] {
			return fmt.Errorf("slot %d: index or key used twice", sl.Index)
		}
		if sl.PublicKey.IsZero() || sl.UserID == "" {
			return fmt.Errorf("slot %d: no public key or user", sl.Index)
		}
		seenIndex[sl.Index], seenKey[sl.PublicKey] = true, true
	}
	return nil
}

// statePath is the state file's path in dir.
func statePath(dir string) string { return filepath.Join(dir, StateFileName) }

// loadState reads the state file in dir; ErrNotPaired if there is none.
func loadState(dir string) (*state, error) {
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", dir, ErrNotPaired)
	}
	if err != nil {
		return nil, fmt.Errorf("read device state: %w", err)
	}
	s, err := parseState(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(dir), err)
	}
	return s, nil
}

// prepareDir creates dir (mode 0700) or tightens an existing one, and
// checks that a file can be written there.
func prepareDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("device data directory: %w", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("device data directory: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("device data directory: %w", err)
		}
	}
	f, err := os.CreateTemp(dir, ".probe-*")
	if err != nil {
		return fmt.Errorf("device data directory is not writable: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// saveState writes s to dir atomically (a temporary file renamed over the
// old one), mode 0600.
func saveState(dir string, s *state) error {
	b, err := s.marshal()
	if err != nil {
		return fmt.Errorf("save device state: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+StateFileName+".tmp-*") // mode 0600
	if err != nil {
		return fmt.Errorf("save device state: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename, a no-op
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("save device state: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("save device state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save device state: %w", err)
	}
	if err := os.Rename(tmp, statePath(dir)); err != nil {
		return fmt.Errorf("save device state: %w", err)
	}
	if d, err := os.Open(dir); err == nil { // make the rename durable
		d.Sync()
		d.Close()
	}
	return nil
}

// clone returns a deep copy of s, for changes that may have to be undone.
func (s *state) clone() *state {
	c := *s
	c.Slots = append([]slot(nil), s.Slots...)
	c.Recent = append([]recentCommand(nil), s.Recent...)
	return &c
}
