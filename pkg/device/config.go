package device

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"unicode"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
)

// Defaults and limits of Config.
const (
	// DefaultSlots is the number of key slots a device makes for its owner
	// (one slot = one concurrent browser session).
	DefaultSlots = 4
	// MaxSlots is the most key slots the relay accepts at pairing.
	MaxSlots = 16
	// DefaultMTU is the interface MTU: the same as pkg/tunnel's, small
	// enough that a datagram fits every common uplink unfragmented.
	DefaultMTU = 1280
	// MaxUIDLength is the longest UID accepted.
	MaxUIDLength = 64
)

// ErrInvalidConfig is wrapped by the errors of a bad Config.
var ErrInvalidConfig = errors.New("invalid device config")

// Config describes a device. DataDir is always required; UID at pairing
// (afterwards the state file's UID wins).
type Config struct {
	// DataDir holds the state file (created mode 0700; the file 0600).
	DataDir string

	// UID is the device's own name, unique at the relay, e.g.
	// "warp2-AbCd": printable, no spaces, at most MaxUIDLength bytes.
	UID string
	// Name is what the owner sees as the device's name (sealed to the
	// owner's key, so the relay does not); "" means the UID.
	Name string
	// Firmware is reported at pairing and in the control protocol's Hello.
	Firmware string
	// Slots is the number of key slots to make at pairing, 1..MaxSlots;
	// 0 means DefaultSlots.
	Slots int

	// UI is the device's web UI, served inside the tunnel on
	// DeviceSessionAddr4 and DeviceSessionAddr6, port DeviceUIPort. nil
	// serves 404s.
	UI http.Handler

	// ListenPort is the UDP port of the WireGuard interface; 0 picks a
	// free one on each Run.
	ListenPort int
	// MTU of the interface; 0 means DefaultMTU.
	MTU int

	// Logger receives the device's logs; nil discards them. Keys never
	// appear in them, public keys only in short form.
	Logger *slog.Logger

	// HTTPClient talks to the relay's API at pairing (e.g. with the
	// relay's certificate pool); nil means a default client. Insecure
	// skips TLS certificate verification instead (a relay with a
	// self-signed certificate, for tests and first setups).
	HTTPClient *http.Client
	Insecure   bool
	// ClientOptions are further options of the API client (e.g.
	// apiclient.WithKDFLimits for PairWithPassword against a test relay).
	ClientOptions []apiclient.Option
	// Server, if set, is the relay URL Pair talks to instead of the one
	// the pairing token names.
	Server string
}

// withDefaults returns cfg with the zero fields filled in.
func (cfg Config) withDefaults() Config {
	if cfg.Slots == 0 {
		cfg.Slots = DefaultSlots
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.UI == nil {
		cfg.UI = http.NotFoundHandler()
	}
	return cfg
}

// validate checks the fields every use needs; pairing checks more
// (validateForPairing).
func (cfg Config) validate() error {
	if cfg.DataDir == "" {
		return fmt.Errorf("%w: no data directory", ErrInvalidConfig)
	}
	if cfg.ListenPort < 0 || cfg.ListenPort > 65535 {
		return fmt.Errorf("%w: listen port %d out of range", ErrInvalidConfig, cfg.ListenPort)
	}
	if cfg.MTU != 0 && (cfg.MTU < 1280 || cfg.MTU > 65535-80) {
		return fmt.Errorf("%w: MTU %d out of range", ErrInvalidConfig, cfg.MTU)
	}
	return nil
}

func (cfg Config) validateForPairing() error {
	if err := cfg.validate(); err != nil {
		return err
	}
	if err := ValidateUID(cfg.UID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if cfg.Slots < 1 || cfg.Slots > MaxSlots {
		return fmt.Errorf("%w: %d key slots, want 1..%d", ErrInvalidConfig, cfg.Slots, MaxSlots)
	}
	return nil
}

// ValidateUID checks a device UID: 1..MaxUIDLength bytes of printable,
// non-space characters.
func ValidateUID(uid string) error {
	if uid == "" {
		return errors.New("empty UID")
	}
	if len(uid) > MaxUIDLength {
		return fmt.Errorf("UID longer than %d bytes", MaxUIDLength)
	}
	if strings.ContainsFunc(uid, func(r rune) bool { return !unicode.IsPrint(r) || unicode.IsSpace(r) }) {
		return fmt.Errorf("UID %q has spaces or unprintable characters", uid)
	}
	return nil
}

// apiClient returns a client for the relay at url.
func (cfg Config) apiClient(url string) (*apiclient.Client, error) {
	opts := []apiclient.Option{apiclient.WithUserAgent("blindrelay-device/1")}
	if cfg.HTTPClient != nil {
		opts = append(opts, apiclient.WithHTTPClient(cfg.HTTPClient))
	}
	if cfg.Insecure {
		opts = append(opts, apiclient.WithInsecureTLS())
	}
	opts = append(opts, cfg.ClientOptions...)
	return apiclient.New(url, opts...)
}
