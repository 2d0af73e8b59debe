package apiclient

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The pairing token string (docs/api.md "Pairing tokens"):
//
//	BRP1.<payload>.<checksum>
//
// payload is the JSON of PairingToken in unpadded base64url; checksum is the
// first 6 bytes of SHA-256(JSON) in unpadded base64url. The client builds
// it, never the relay: it carries the user's public keys as the client
// verified them, so that a relay cannot slip its own keys to a device.
const (
	// PairingTokenPrefix starts every pairing token string of version 1.
	PairingTokenPrefix = "BRP1."
	// PairingTokenVersion is the version this package writes and reads.
	PairingTokenVersion = 1

	pairingChecksumSize = 6
	pairingSecretSize   = 32
	maxPairingNameLen   = 64
	maxPairingUserLen   = 128
)

// tokenEncoding reads the parts of a token string.
var tokenEncoding = base64.RawURLEncoding.Strict()

// Errors of ParsePairingToken.
var (
	// ErrNotPairingToken: the text does not start like a pairing token.
	ErrNotPairingToken = errors.New("not a pairing token: it must start with " + PairingTokenPrefix)
	// ErrPairingTokenMistyped: the checksum does not match, so a character
	// was changed, added or lost when the token was copied or typed.
	ErrPairingTokenMistyped = errors.New("mistyped pairing token: its checksum does not match; copy it again, completely and exactly")
)

// PairingToken is what a device needs to pair into a user's account: the
// relay, the user and the user's public keys (to seal its key slots to),
// the token's secret (to authenticate the pairing) and the token's name.
//
// String returns the token string, which holds the secret: hand it to the
// device and nowhere else. LogValue redacts it.
type PairingToken struct {
	Version       int    `json:"v"`
	Relay         string `json:"relay"` // the relay's base URL, https://host:port
	User          string `json:"user"`  // the user's id
	BoxPublicKey  []byte `json:"box"`   // X25519, 32 bytes
	SignPublicKey []byte `json:"sign"`  // Ed25519, 32 bytes
	Secret        string `json:"secret"`
	Name          string `json:"name"`
}

// String returns the token string: PairingTokenPrefix, the payload and the
// checksum. A zero Version is written as PairingTokenVersion.
func (p PairingToken) String() string {
	if p.Version == 0 {
		p.Version = PairingTokenVersion
	}
	payload, err := json.Marshal(p)
	if err != nil {
		// Strings and byte slices always marshal.
		panic("apiclient: marshal pairing token: " + err.Error())
	}
	sum := sha256.Sum256(payload)
	return PairingTokenPrefix + base64.RawURLEncoding.EncodeToString(payload) + "." +
		base64.RawURLEncoding.EncodeToString(sum[:pairingChecksumSize])
}

// LogValue leaves the secret out.
func (p PairingToken) LogValue() slog.Value {
	return slog.GroupValue(slog.String("relay", p.Relay), slog.String("user_id", p.User))
}

// ParsePairingToken parses and checks a token string. White space anywhere
// in s is ignored (a token copied from a wrapped line). A wrong checksum is
// ErrPairingTokenMistyped, text that is no token at all ErrNotPairingToken;
// other errors name the field at fault.
func ParsePairingToken(s string) (PairingToken, error) {
	s = strings.Join(strings.Fields(s), "")
	prefix, rest, ok := strings.Cut(s, ".")
	if !ok || len(prefix) < 4 || !strings.EqualFold(prefix[:3], "BRP") {
		return PairingToken{}, ErrNotPairingToken
	}
	if v, err := strconv.Atoi(prefix[3:]); err != nil || v != PairingTokenVersion {
		return PairingToken{}, fmt.Errorf("pairing token of version %q: this software reads version %d only; update it", prefix[3:], PairingTokenVersion)
	}
	enc, encSum, ok := strings.Cut(rest, ".")
	if !ok || strings.Contains(encSum, ".") {
		return PairingToken{}, ErrPairingTokenMistyped
	}
	// Strict: a changed character in the unused bits of the last one would
	// otherwise decode to the same bytes and pass unnoticed.
	payload, err1 := tokenEncoding.DecodeString(enc)
	sum, err2 := tokenEncoding.DecodeString(encSum)
	if err1 != nil || err2 != nil || len(sum) != pairingChecksumSize {
		return PairingToken{}, ErrPairingTokenMistyped
	}
	want := sha256.Sum256(payload)
	if subtle.ConstantTimeCompare(sum, want[:pairingChecksumSize]) != 1 {
		return PairingToken{}, ErrPairingTokenMistyped
	}
	var p PairingToken
	if err := json.Unmarshal(payload, &p); err != nil {
		return PairingToken{}, errors.New("pairing token: its content is not valid (the checksum matches: the software that made it is at fault)")
	}
	if err := p.validate(); err != nil {
		return PairingToken{}, fmt.Errorf("pairing token: %w", err)
	}
	return p, nil
}

// validate checks every field of a parsed or built token.
func (p *PairingToken) validate() error {
	if p.Version != PairingTokenVersion {
		return fmt.Errorf("version %d is not supported", p.Version)
	}
	u, err := url.Parse(p.Relay)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return errors.New("relay must be the relay's http(s) URL")
	}
	if p.User == "" || !printable(p.User, maxPairingUserLen) {
		return errors.New("user must be a user id")
	}
	if len(p.BoxPublicKey) != 32 || len(p.SignPublicKey) != 32 {
		return errors.New("box and sign must be public keys of 32 bytes")
	}
	if raw, err := base64.RawURLEncoding.DecodeString(p.Secret); err != nil || len(raw) != pairingSecretSize {
		return fmt.Errorf("secret must be %d bytes in base64url", pairingSecretSize)
	}
	if !printable(p.Name, maxPairingNameLen) {
		return fmt.Errorf("name must be at most %d printable characters", maxPairingNameLen)
	}
	return nil
}

// printable reports whether s is valid UTF-8 of at most n printable
// characters.
func printable(s string, n int) bool {
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

// PairingTokenInfo is a pairing token as the relay keeps it. Secret is set
// only in the answer of CreatePairingToken: the relay stores its hash.
type PairingTokenInfo struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	UserID    string     `json:"user_id"`
	Secret    string     `json:"secret,omitempty"`
	MaxUses   int        `json:"max_uses"`
	Uses      int        `json:"uses"`
	State     string     `json:"state"` // active, used_up, expired or revoked
	ExpiresAt time.Time  `json:"expires_at"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// The states of a PairingTokenInfo.
const (
	TokenActive  = "active"
	TokenUsedUp  = "used_up"
	TokenExpired = "expired"
	TokenRevoked = "revoked"
)

// LogValue leaves the secret and the name out.
func (t *PairingTokenInfo) LogValue() slog.Value {
	return slog.GroupValue(slog.String("token_id", t.ID), slog.String("state", t.State))
}

// CreatePairingToken makes a pairing token (POST /pairing-tokens) that
// pairs up to maxUses devices during ttl. Zero values take the relay's
// defaults (1 use, 24 hours); ttl is sent in whole seconds, rounded up. The
// answer holds the secret, which the relay will not show again: build the
// token string with NewPairingToken.
func (c *Client) CreatePairingToken(ctx context.Context, name string, maxUses int, ttl time.Duration) (*PairingTokenInfo, error) {
	in := struct {
		Name       string `json:"name"`
		MaxUses    int    `json:"max_uses,omitempty"`
		TTLSeconds int64  `json:"ttl_seconds,omitempty"`
	}{name, maxUses, int64((ttl + time.Second - 1) / time.Second)}
	if ttl < 0 {
		in.TTLSeconds = int64(ttl / time.Second)
	}
	var out PairingTokenInfo
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/pairing-tokens", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// PairingTokens lists the user's pairing tokens, newest first, without
// secrets (GET /pairing-tokens).
func (c *Client) PairingTokens(ctx context.Context) ([]PairingTokenInfo, error) {
	var out []PairingTokenInfo
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/pairing-tokens", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// RevokePairingToken revokes one of the user's pairing tokens (DELETE
// /pairing-tokens/{id}). Devices paired with it stay.
func (c *Client) RevokePairingToken(ctx context.Context, id string) error {
	_, err := c.do(ctx, http.MethodDelete, "/api/v1/pairing-tokens/"+url.PathEscape(id), nil, nil)
	return err
}

// ErrKeysChanged: the account's public keys at the relay are not the ones
// the caller verified, e.g. after a password reset without the recovery
// file on another machine.
var ErrKeysChanged = errors.New("the account's public keys at the relay differ from the ones this client verified; log in again")

// NewPairingToken builds the token string's content for info, a token just
// made by CreatePairingToken, with the user's public keys box and sign as
// the caller verified them (derived from the private keys it decrypted, or
// kept from such a log-in; never taken from the relay unchecked). It also
// asks the relay for the account's keys (MyKeys) and refuses with
// ErrKeysChanged if they differ, since a device would then seal its slots
// to keys the account no longer has.
func (c *Client) NewPairingToken(ctx context.Context, info *PairingTokenInfo, box, sign []byte) (PairingToken, error) {
	if info.Secret == "" {
		return PairingToken{}, errors.New("new pairing token: no secret (only CreatePairingToken's answer has it)")
	}
	p := PairingToken{
		Version: PairingTokenVersion, Relay: c.BaseURL(), User: info.UserID,
		BoxPublicKey: bytes.Clone(box), SignPublicKey: bytes.Clone(sign), Secret: info.Secret, Name: info.Name,
	}
	if err := p.validate(); err != nil {
		return PairingToken{}, fmt.Errorf("new pairing token: %w", err)
	}
	keys, err := c.MyKeys(ctx)
	if err != nil {
		return PairingToken{}, fmt.Errorf("new pairing token: %w", err)
	}
	if !bytes.Equal(keys.BoxPublicKey, box) || !bytes.Equal(keys.SignPublicKey, sign) {
		return PairingToken{}, fmt.Errorf("new pairing token: %w", ErrKeysChanged)
	}
	return p, nil
}
