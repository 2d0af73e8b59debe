package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// Limits of what a client may send about devices and pairing tokens.
const (
	// MinSlots and MaxSlots bound how many key slots a device uploads for
	// its user when it pairs (the device decides; keystore.DefaultSlots is
	// the usual).
	MinSlots = 1
	MaxSlots = 16
	// SealedSlotSize is a sealed key slot: zkcrypto.SealTo of the
	// browser's WireGuard private key and the pre-shared key (64 bytes)
	// plus the anonymous seal's 48 bytes (ephemeral key and tag).
	SealedSlotSize = 64 + sealOverhead
	// MaxSealedNameSize bounds a device's sealed name.
	MaxSealedNameSize = 1024
	// MaxUIDLength bounds a device UID (bytes of printable ASCII).
	MaxUIDLength = 64
	// MaxFirmwareLength bounds the firmware string a device reports.
	MaxFirmwareLength = 128
	// MaxProtocolVersion bounds the control protocol version a device
	// reports.
	MaxProtocolVersion = 1 << 16
	// MaxTokenNameLength bounds a pairing token's name (characters).
	MaxTokenNameLength = 64
	// MaxTokenUses is the most devices one pairing token may pair.
	MaxTokenUses = 100
	// DefaultTokenTTL, MinTokenTTL and MaxTokenTTL are a pairing token's
	// lifetime: the default and the bounds a client may ask for.
	DefaultTokenTTL = 24 * time.Hour
	MinTokenTTL     = time.Minute
	MaxTokenTTL     = 30 * 24 * time.Hour

	// sealOverhead is what nacl/box's anonymous seal adds.
	sealOverhead = 32 + 16
	// pairingSecretSize is the random part of a pairing token.
	pairingSecretSize = 32
)

// idEncoding writes generated ids: lower-case base32 without padding,
// safe in URLs and easy to read out.
var idEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newID returns prefix followed by 80 random bits.
func newID(prefix string) string {
	b := make([]byte, 10)
	rand.Read(b)
	return prefix + idEncoding.EncodeToString(b)
}

// newPairingSecret returns a fresh pairing token secret and its hash.
func newPairingSecret() (secret string, hash []byte) {
	raw := make([]byte, pairingSecretSize)
	rand.Read(raw)
	h := sha256.Sum256(raw)
	return base64.RawURLEncoding.EncodeToString(raw), h[:]
}

// pairingSecretHash returns the hash of a secret a device sent:
// keystore.ErrTokenInvalid for a string that cannot be one of ours.
func pairingSecretHash(secret string) ([]byte, error) {
	if secret == "" {
		return nil, account.Errorf(account.CodeInvalidInput, "secret is required.")
	}
	raw, err := base64.RawURLEncoding.DecodeString(secret)
	if err != nil || len(raw) != pairingSecretSize {
		return nil, keystore.ErrTokenInvalid
	}
	h := sha256.Sum256(raw)
	return h[:], nil
}

// invalid returns an invalid_input error.
func invalid(format string, args ...any) error {
	return account.Errorf(account.CodeInvalidInput, format, args...)
}

// checkTokenRequest validates a pairing token request and fills in the
// defaults.
func checkTokenRequest(req *createPairingTokenRequest) (ttl time.Duration, err error) {
	if !printableText(req.Name, MaxTokenNameLength) {
		return 0, invalid("name must be at most %d printable characters.", MaxTokenNameLength)
	}
	switch {
	case req.MaxUses == 0:
		req.MaxUses = 1
	case req.MaxUses < 1 || req.MaxUses > MaxTokenUses:
		return 0, invalid("max_uses must be from 1 to %d.", MaxTokenUses)
	}
	switch {
	case req.TTLSeconds == 0:
		ttl = DefaultTokenTTL
	case req.TTLSeconds < int64(MinTokenTTL/time.Second) || req.TTLSeconds > int64(MaxTokenTTL/time.Second):
		return 0, invalid("ttl_seconds must be from %d to %d.", int64(MinTokenTTL/time.Second), int64(MaxTokenTTL/time.Second))
	default:
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	return ttl, nil
}

// printableText reports whether s is valid UTF-8 of at most n characters,
// none of them a control or other non-printable character (spaces are
// fine).
func printableText(s string, n int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > n {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// validUID reports whether uid is 1..MaxUIDLength printable ASCII
// characters without spaces, e.g. "warp2-AbCd".
func validUID(uid string) bool {
	if len(uid) == 0 || len(uid) > MaxUIDLength {
		return false
	}
	for i := range len(uid) {
		if c := uid[i]; c <= ' ' || c > '~' {
			return false
		}
	}
	return true
}

// publicKey checks a WireGuard public key field.
func publicKey(field string, b []byte) (wgkey.Public, error) {
	k, err := wgkey.PublicFromBytes(b)
	if err != nil || k.IsZero() {
		return wgkey.Public{}, invalid("%s must be a WireGuard public key of %d bytes.", field, wgkey.Size)
	}
	return k, nil
}

// newDevice validates a device's registration and returns the device (id
// and times set), its owner's key slots and the sealed name. relayKey is
// the relay's own management key, which no device may claim.
func newDevice(req *deviceRequest, relayKey wgkey.Public, now time.Time) (*keystore.Device, []keystore.KeySlot, error) {
	if !validUID(req.UID) {
		return nil, nil, invalid("uid must be 1 to %d printable ASCII characters without spaces.", MaxUIDLength)
	}
	pub, err := publicKey("public_key", req.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	if pub.Equal(relayKey) {
		return nil, nil, invalid("public_key is the relay's own key.")
	}
	if !printableText(req.Firmware, MaxFirmwareLength) {
		return nil, nil, invalid("firmware must be at most %d printable characters.", MaxFirmwareLength)
	}
	if req.ProtocolVersion < 0 || req.ProtocolVersion > MaxProtocolVersion {
		return nil, nil, invalid("protocol_version must be from 0 to %d.", MaxProtocolVersion)
	}
	if n := len(req.SealedName); n != 0 && (n <= sealOverhead || n > MaxSealedNameSize) {
		return nil, nil, invalid("sealed_name must be a sealed box of %d to %d bytes.", sealOverhead+1, MaxSealedNameSize)
	}
	slots, err := newSlots(req.Slots, pub)
	if err != nil {
		return nil, nil, err
	}
	dev := &keystore.Device{
		ID:              newID("dev_"),
		UID:             req.UID,
		PublicKey:       pub,
		MgmtAddr:        wire.MgmtAddr(pub),
		Firmware:        req.Firmware,
		ProtocolVersion: req.ProtocolVersion,
		CreatedAt:       now,
	}
	return dev, slots, nil
}

// newSlots validates uploaded key slots: MinSlots..MaxSlots of them,
// indexes in range and distinct, browser keys distinct and not the
// device's, sealed blobs of SealedSlotSize.
func newSlots(in []slotRequest, device wgkey.Public) ([]keystore.KeySlot, error) {
	if len(in) < MinSlots || len(in) > MaxSlots {
		return nil, invalid("slots must hold %d to %d key slots.", MinSlots, MaxSlots)
	}
	out := make([]keystore.KeySlot, len(in))
	seenIndex := map[int]bool{}
	seenKey := map[wgkey.Public]bool{}
	for i, s := range in {
		if s.Index < 0 || s.Index > keystore.MaxSlotIndex {
			return nil, invalid("slots[%d].index must be from 0 to %d.", i, keystore.MaxSlotIndex)
		}
		k, err := publicKey("slots[].browser_public_key", s.BrowserPublicKey)
		if err != nil {
			return nil, err
		}
		if len(s.Sealed) != SealedSlotSize {
			return nil, invalid("slots[%d].sealed must be %d bytes.", i, SealedSlotSize)
		}
		if seenIndex[s.Index] || seenKey[k] || k.Equal(device) {
			return nil, invalid("slots[%d] repeats an index or a key.", i)
		}
		seenIndex[s.Index], seenKey[k] = true, true
		out[i] = keystore.KeySlot{Index: s.Index, BrowserPublicKey: k, Sealed: s.Sealed}
	}
	return out, nil
}
