package device

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// ErrKeyMismatch: the user's private keys, opened with the password, do not
// belong to the public keys the relay handed out. The relay is not trusted
// with the user's public keys, so pairing stops.
var ErrKeyMismatch = errors.New("the account's private keys do not match the public keys the relay sent")

// Pair pairs the device cfg describes with a pairing token (the BRP1.…
// string the owner's client made): it makes the device's keys and key slots,
// seals the slots to the public key the token carries, registers with the
// relay the token names (or cfg.Server) and writes the state file. It
// fails with ErrAlreadyPaired if cfg.DataDir holds a state file.
func Pair(ctx context.Context, cfg Config, token string) (*Device, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validateForPairing(); err != nil {
		return nil, fmt.Errorf("pair: %w", err)
	}
	tok, err := apiclient.ParsePairingToken(token)
	if err != nil {
		return nil, fmt.Errorf("pair: %w", err)
	}
	url := tok.Relay
	if cfg.Server != "" {
		url = cfg.Server
	}
	client, err := cfg.apiClient(url)
	if err != nil {
		return nil, fmt.Errorf("pair: %w", err)
	}
	own := owner{UserID: tok.User, BoxPublicKey: tok.BoxPublicKey, SignPublicKey: tok.SignPublicKey}
	d, err := pair(ctx, cfg, url, own, func(req *apiclient.PairRequest) (*apiclient.PairResult, error) {
		req.Secret = tok.Secret
		return client.PairDevice(ctx, req)
	})
	if err != nil {
		return nil, fmt.Errorf("pair: %w", err)
	}
	return d, nil
}

// PairWithPassword pairs the device cfg describes into the account of
// email at the relay server, as Pair does, but without a token: it logs in
// (Login), registers the device with the session (Account.Pair) and logs
// out. The password and the private keys are not kept.
func PairWithPassword(ctx context.Context, cfg Config, server, email, password string) (*Device, error) {
	a, err := Login(ctx, cfg, server, email, password)
	if err != nil {
		return nil, fmt.Errorf("pair with password: %w", err)
	}
	defer a.Close(ctx)
	d, err := a.Pair(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("pair with password: %w", err)
	}
	return d, nil
}

// Account is a user's account, logged in to pair devices with e-mail and
// password: PairWithPassword for one device, Login then Account.Pair for
// many (one key derivation instead of one per device).
type Account struct {
	client *apiclient.Client
	server string
	owner  owner
	log    *slog.Logger
}

// Login logs in to the relay server as email and fetches the account's
// keys; it opens the private keys with password and checks that they
// belong to the public keys the relay sent (ErrKeyMismatch if not), so that
// the devices it pairs seal their key slots to the user's real key even if
// the relay lies. Only cfg's client fields (HTTPClient, Insecure,
// ClientOptions) and Logger matter here. Close logs out.
func Login(ctx context.Context, cfg Config, server, email, password string) (*Account, error) {
	cfg = cfg.withDefaults()
	client, err := cfg.apiClient(server)
	if err != nil {
		return nil, fmt.Errorf("log in: %w", err)
	}
	own, err := verifiedOwner(ctx, client, email, password)
	if err != nil {
		return nil, fmt.Errorf("log in: %w", err)
	}
	return &Account{client: client, server: server, owner: own, log: cfg.Logger}, nil
}

// Pair pairs the device cfg describes into the account, as Pair does with
// a token.
func (a *Account) Pair(ctx context.Context, cfg Config) (*Device, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validateForPairing(); err != nil {
		return nil, fmt.Errorf("pair: %w", err)
	}
	d, err := pair(ctx, cfg, a.server, a.owner, func(req *apiclient.PairRequest) (*apiclient.PairResult, error) {
		return a.client.AddDevice(ctx, req)
	})
	if err != nil {
		return nil, fmt.Errorf("pair: %w", err)
	}
	return d, nil
}

// Close logs the account out (bounded to 10 s past ctx's end).
func (a *Account) Close(ctx context.Context) error {
	lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := a.client.Logout(lctx); err != nil {
		a.log.Warn("log out", "error", err)
		return fmt.Errorf("log out: %w", err)
	}
	return nil
}

// verifiedOwner logs client in and returns the user with public keys
// derived from the user's own private keys.
func verifiedOwner(ctx context.Context, client *apiclient.Client, email, password string) (owner, error) {
	sess, dk, err := client.Login(ctx, email, []byte(password))
	if err != nil {
		return owner{}, err
	}
	defer clear(dk.SecretKey[:])
	keys, err := client.MyKeys(ctx)
	if err != nil {
		return owner{}, err
	}
	uk, err := zkcrypto.DecryptUserKeys(dk.SecretKey, keys.EncryptedPrivateKeys, keys.BoxPublicKey, keys.SignPublicKey)
	if errors.Is(err, zkcrypto.ErrWrongKey) {
		return owner{}, ErrKeyMismatch
	}
	if err != nil {
		return owner{}, err
	}
	// Public keys from the private ones, not the relay's copies.
	own := owner{
		UserID:        sess.User.ID,
		BoxPublicKey:  append([]byte(nil), uk.BoxPublic[:]...),
		SignPublicKey: append(ed25519.PublicKey(nil), uk.SignPublic...),
	}
	clear(uk.BoxPrivate[:])
	clear(uk.SignPrivate)
	return own, nil
}

// pair is the part of Pair and PairWithPassword after the owner is known:
// register sends the request to the relay.
func pair(ctx context.Context, cfg Config, url string, own owner, register func(*apiclient.PairRequest) (*apiclient.PairResult, error)) (*Device, error) {
	if len(own.BoxPublicKey) != 32 || len(own.SignPublicKey) != ed25519.PublicKeySize || own.UserID == "" {
		return nil, errors.New("the owner's user id or public keys are missing or malformed")
	}
	if _, err := loadState(cfg.DataDir); err == nil {
		return nil, fmt.Errorf("%s: %w", cfg.DataDir, ErrAlreadyPaired)
	} else if !errors.Is(err, ErrNotPaired) {
		return nil, err
	}
	if err := prepareDir(cfg.DataDir); err != nil {
		return nil, err
	}
	priv, err := wgkey.NewPrivate()
	if err != nil {
		return nil, err
	}
	pub := priv.Public()
	slots, uploads, err := newSlots(own, 0, cfg.Slots)
	if err != nil {
		return nil, err
	}
	name := cfg.Name
	if name == "" {
		name = cfg.UID
	}
	sealedName, err := zkcrypto.SealTo(own.BoxPublicKey, []byte(name))
	if err != nil {
		return nil, err
	}
	res, err := register(&apiclient.PairRequest{
		UID:             cfg.UID,
		PublicKey:       pub[:],
		Firmware:        cfg.Firmware,
		ProtocolVersion: wire.ProtocolVersion,
		SealedName:      sealedName,
		Slots:           uploads,
	})
	if err != nil {
		return nil, fmt.Errorf("register: %w", err)
	}
	relay, err := relayFromResult(res, url, pub, cfg)
	if err != nil {
		return nil, fmt.Errorf("registered as device %s, but the relay's answer is unusable: %w", res.DeviceID, err)
	}
	st := &state{
		UID:      cfg.UID,
		DeviceID: res.DeviceID,
		Private:  priv,
		PairedAt: time.Now().UTC().Truncate(time.Second),
		Relay:    relay,
		Owner:    own,
		Slots:    slots,
	}
	if err := st.check(); err != nil {
		return nil, fmt.Errorf("registered as device %s, but: %w", res.DeviceID, err)
	}
	if err := saveState(cfg.DataDir, st); err != nil {
		return nil, fmt.Errorf("registered as device %s, but: %w (remove the device at the relay and pair again)", res.DeviceID, err)
	}
	cfg.Logger.Info("device paired", "device_id", st.DeviceID, "uid", st.UID, "public_key", pub,
		"relay_endpoint", relay.Endpoint, "slots", len(slots))
	return newDevice(cfg, st), nil
}

// newSlots makes n key slots for own with indexes from first on: the
// device's part (public key and pre-shared key) and the relay's (public
// key and the sealed browser private key || pre-shared key).
func newSlots(own owner, first, n int) ([]slot, []apiclient.DeviceSlot, error) {
	var slots []slot
	var uploads []apiclient.DeviceSlot
	for i := first; i < first+n; i++ {
		browser, err := wgkey.NewPrivate()
		if err != nil {
			return nil, nil, err
		}
		psk, err := wgkey.NewPreshared()
		if err != nil {
			return nil, nil, err
		}
		plain := make([]byte, 0, 64)
		plain = append(append(plain, browser[:]...), psk[:]...)
		sealed, err := zkcrypto.SealTo(own.BoxPublicKey, plain)
		clear(plain)
		if err != nil {
			return nil, nil, err
		}
		bpub := browser.Public()
		clear(browser[:]) // the device never needs the browser's private key again
		slots = append(slots, slot{Index: i, UserID: own.UserID, PublicKey: bpub, Preshared: psk})
		uploads = append(uploads, apiclient.DeviceSlot{Index: i, BrowserPublicKey: bpub[:], Sealed: sealed})
	}
	return slots, uploads, nil
}

// relayFromResult checks the relay's answer to a registration.
func relayFromResult(res *apiclient.PairResult, url string, pub wgkey.Public, cfg Config) (relayInfo, error) {
	if res.DeviceID == "" {
		return relayInfo{}, errors.New("no device id")
	}
	rpub, err := wgkey.PublicFromBytes(res.RelayPublicKey)
	if err != nil {
		return relayInfo{}, fmt.Errorf("relay public key: %w", err)
	}
	if _, _, err := net.SplitHostPort(res.RelayEndpoint); err != nil {
		return relayInfo{}, fmt.Errorf("relay endpoint %q: %w", res.RelayEndpoint, err)
	}
	r := relayInfo{
		URL:           url,
		PublicKey:     rpub,
		Endpoint:      res.RelayEndpoint,
		MgmtAddr:      wire.MgmtAddr(pub),
		RelayMgmtAddr: wire.RelayMgmtAddr,
		ControlPort:   wire.ControlPort,
	}
	// The addressing plan is fixed (docs/protocol.md §4); the relay's word
	// wins where it differs, as its peer for this device uses it.
	if a, err := netip.ParseAddr(res.MgmtAddr); err == nil && a.Is6() {
		if a != r.MgmtAddr {
			cfg.Logger.Warn("relay assigned a management address other than the computed one", "mgmt_addr", a, "computed", r.MgmtAddr)
		}
		r.MgmtAddr = a
	}
	if a, err := netip.ParseAddr(res.RelayMgmtAddr); err == nil && a.Is6() {
		r.RelayMgmtAddr = a
	}
	if res.ControlPort > 0 && res.ControlPort <= 65535 {
		r.ControlPort = res.ControlPort
	}
	return r, nil
}
