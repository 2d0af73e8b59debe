package keystore

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

func TestTokenState(t *testing.T) {
	t.Parallel()
	now := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	revoked := now.Add(-time.Hour)
	tests := []struct {
		name string
		tok  PairingToken
		want TokenState
		err  error
	}{
		{"active", PairingToken{MaxUses: 1, ExpiresAt: now.Add(time.Nanosecond)}, TokenActive, nil},
		{"multi use, some used", PairingToken{MaxUses: 3, Uses: 2, ExpiresAt: now.Add(time.Hour)}, TokenActive, nil},
		{"at expiry", PairingToken{MaxUses: 1, ExpiresAt: now}, TokenExpired, ErrTokenExpired},
		{"used up", PairingToken{MaxUses: 2, Uses: 2, ExpiresAt: now.Add(time.Hour)}, TokenUsedUp, ErrTokenUsedUp},
		{"used up and expired", PairingToken{MaxUses: 1, Uses: 1, ExpiresAt: now}, TokenUsedUp, ErrTokenUsedUp},
		{"revoked", PairingToken{MaxUses: 1, ExpiresAt: now.Add(time.Hour), RevokedAt: &revoked}, TokenRevoked, ErrTokenRevoked},
		{"revoked, used up, expired", PairingToken{MaxUses: 1, Uses: 1, ExpiresAt: now, RevokedAt: &revoked}, TokenRevoked, ErrTokenRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tok.State(now); got != tt.want {
				t.Errorf("State = %q, want %q", got, tt.want)
			}
			if err := tt.tok.Usable(now); !errors.Is(err, tt.err) || (tt.err == nil) != (err == nil) {
				t.Errorf("Usable = %v, want %v", err, tt.err)
			}
		})
	}
}

// TestErrorCodes checks that every sentinel carries a code the API knows
// how to answer, and a message.
func TestErrorCodes(t *testing.T) {
	t.Parallel()
	want := map[*account.Error]account.Code{
		ErrDeviceNotFound:       account.CodeNotFound,
		ErrDeviceExists:         account.CodeDeviceExists,
		ErrSlotTaken:            account.CodeConflict,
		ErrAlreadyShared:        account.CodeConflict,
		ErrLastOwner:            account.CodeConflict,
		ErrPairingTokenNotFound: account.CodeNotFound,
		ErrTokenInvalid:         account.CodeTokenInvalid,
		ErrTokenExpired:         account.CodeTokenExpired,
		ErrTokenUsedUp:          account.CodeTokenUsedUp,
		ErrTokenRevoked:         account.CodeTokenRevoked,
	}
	for e, code := range want {
		if account.ErrorCode(e) != code || e.Message == "" {
			t.Errorf("%v: code %q, want %q and a message", e, account.ErrorCode(e), code)
		}
	}
}

// TestLogValue logs every type and checks that no hash, blob or key shows,
// in hex or base64.
func TestLogValue(t *testing.T) {
	t.Parallel()
	blob := func(c byte) []byte { return bytes.Repeat([]byte{c}, 32) }
	key := func(c byte) (k [32]byte) { copy(k[:], blob(c)); return k }
	revoked := time.Now()
	values := []any{
		Device{ID: "d-1", UID: "warp2-AbCd", PublicKey: key(0xa1), MgmtAddr: netip.MustParseAddr("fdb1:d4e1:a700::a1"),
			LastEndpoint: netip.MustParseAddrPort("203.0.113.7:51820")},
		&Device{ID: "d-1", UID: "warp2-AbCd", PublicKey: key(0xa1)},
		DeviceUser{DeviceID: "d-1", UserID: "u-1", Role: RoleOwner, SealedName: blob(0xa2), SealedNote: blob(0xa3)},
		UserDevice{Device: Device{ID: "d-1", PublicKey: key(0xa1)}, Access: DeviceUser{SealedName: blob(0xa2)}},
		KeySlot{DeviceID: "d-1", UserID: "u-1", Index: 3, BrowserPublicKey: key(0xa4), Sealed: blob(0xa5)},
		&PairingToken{ID: "pt-1", TokenHash: blob(0xa6), UserID: "u-1", Name: "garage", RevokedAt: &revoked},
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	for _, v := range values {
		log.Info("x", "v", v)
	}
	out := buf.String()
	for c := byte(0xa1); c <= 0xa6; c++ {
		for _, enc := range []string{hex.EncodeToString(blob(c)), base64.StdEncoding.EncodeToString(blob(c))} {
			if strings.Contains(out, enc[:16]) {
				t.Errorf("log shows bytes %02x...:\n%s", c, out)
			}
		}
	}
	for _, secret := range []string{"203.0.113.7", "garage", "fdb1"} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows %q:\n%s", secret, out)
		}
	}
	for _, want := range []string{"device_id=d-1", "uid=warp2-AbCd", "user_id=u-1", "role=owner", "slot=3", "token_id=pt-1"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}
