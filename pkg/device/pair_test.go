package device

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/device/devicetest"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// pairConfig is a device config for relay r in a new directory.
func pairConfig(t *testing.T, r *devicetest.Relay, uid string) Config {
	return Config{
		DataDir:       filepath.Join(t.TempDir(), "dev"),
		UID:           uid,
		Firmware:      "warp2 2.6.1",
		HTTPClient:    r.HTTPClient,
		ClientOptions: devicetest.KDFOptions(),
		Logger:        testLogger(t),
	}
}

// checkPaired checks a freshly paired device against the relay, as its
// owner u sees it: the state file, the device in the list, and that every
// sealed slot opens with u's private key to exactly the keys the device
// kept. The relay holds only public keys and sealed blobs.
func checkPaired(t *testing.T, u *devicetest.User, d *Device, wantSlots int) {
	t.Helper()
	ctx := t.Context()
	st := d.state()
	wantMode(t, statePath(d.cfg.DataDir), 0o600)
	wantMode(t, d.cfg.DataDir, 0o700)
	if _, err := loadState(d.cfg.DataDir); err != nil {
		t.Fatalf("state file: %v", err)
	}
	info := d.Info()
	if info.DeviceID == "" || info.OwnerUserID != u.ID || info.MgmtAddr != wire.MgmtAddr(info.PublicKey) ||
		info.RelayPublicKey.IsZero() || info.RelayEndpoint != u.Relay.UDPEndpoint || len(info.Slots) != wantSlots {
		t.Fatalf("Info %+v", info)
	}
	if !bytes.Equal(st.Owner.BoxPublicKey, u.Keys.BoxPublic[:]) || !bytes.Equal(st.Owner.SignPublicKey, u.Keys.SignPublic) {
		t.Fatal("the device keeps other owner keys than the user's")
	}

	dev, err := u.Client.Device(ctx, info.DeviceID)
	if err != nil {
		t.Fatalf("the owner's view of the device: %v", err)
	}
	if dev.UID != info.UID || dev.Firmware != "warp2 2.6.1" || dev.ProtocolVersion != wire.ProtocolVersion ||
		!bytes.Equal(dev.PublicKey, info.PublicKey[:]) || dev.Role != "owner" || dev.SlotsTotal != wantSlots {
		t.Fatalf("device at the relay %+v", dev)
	}
	name, err := u.Keys.OpenSealed(dev.SealedName)
	if err != nil || string(name) != info.UID {
		t.Fatalf("sealed name opens to %q (%v)", name, err)
	}
	slots, err := u.Client.DeviceSlots(ctx, info.DeviceID)
	if err != nil {
		t.Fatal(err)
	}
	if len(slots) != wantSlots {
		t.Fatalf("%d slots at the relay, want %d", len(slots), wantSlots)
	}
	for i, s := range slots {
		kept := st.Slots[i]
		plain, err := u.Keys.OpenSealed(s.Sealed)
		if err != nil || len(plain) != 64 {
			t.Fatalf("slot %d: open: %v (%d bytes)", s.Index, err, len(plain))
		}
		browser := wgkey.Private(plain[:32])
		psk := wgkey.Preshared(plain[32:])
		if s.Index != kept.Index || !bytes.Equal(s.BrowserPublicKey, kept.PublicKey[:]) ||
			browser.Public() != kept.PublicKey || !psk.Equal(kept.Preshared) || kept.UserID != u.ID {
			t.Fatalf("slot %d: the relay's sealed keys do not match what the device kept", s.Index)
		}
		// The browser's private key is nowhere on the device.
		raw, _ := os.ReadFile(statePath(d.cfg.DataDir))
		if bytes.Contains(raw, []byte(browser.Base64())) {
			t.Fatalf("slot %d: the browser's private key is in the state file", s.Index)
		}
	}
}

// TestPairWithToken pairs devices with pairing tokens against a real relay.
func TestPairWithToken(t *testing.T) {
	t.Parallel()
	r := devicetest.NewRelay(t)
	u := r.NewUser(t)
	tok := u.Token(t, "garage", 2)

	parsed, err := apiclient.ParsePairingToken(tok)
	if err != nil || parsed.Relay != r.URL || parsed.User != u.ID || !bytes.Equal(parsed.BoxPublicKey, u.Keys.BoxPublic[:]) {
		t.Fatalf("ParsePairingToken: %+v, %v", parsed, err)
	}

	cfg := pairConfig(t, r, "warp2-AbCd")
	d, err := Pair(t.Context(), cfg, tok)
	if err != nil {
		t.Fatalf("Pair: %v", err)
	}
	checkPaired(t, u, d, DefaultSlots)

	// Open finds the same device; pairing again in its directory fails.
	again, err := Open(Config{DataDir: cfg.DataDir})
	if err != nil || again.Info().DeviceID != d.Info().DeviceID || again.Info().PublicKey != d.Info().PublicKey {
		t.Fatalf("Open after Pair: %v", err)
	}
	if _, err := Pair(t.Context(), cfg, tok); !errors.Is(err, ErrAlreadyPaired) {
		t.Fatalf("Pair in a paired directory: %v", err)
	}

	// The token's second use, with 2 slots and a name; a UID that is taken.
	taken := pairConfig(t, r, "warp2-AbCd")
	if _, err := Pair(t.Context(), taken, tok); apiclient.ErrorCode(err) != string(account.CodeDeviceExists) {
		t.Fatalf("Pair with a taken UID: %v", err)
	}
	if _, err := os.Stat(statePath(taken.DataDir)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed pairing left a state file: %v", err)
	}
	cfg2 := pairConfig(t, r, "warp2-Ef12")
	cfg2.Slots, cfg2.Name = 2, "Garage"
	d2, err := Pair(t.Context(), cfg2, tok)
	if err != nil {
		t.Fatalf("second Pair: %v", err)
	}
	dev, _ := u.Client.Device(t.Context(), d2.Info().DeviceID)
	if name, _ := u.Keys.OpenSealed(dev.SealedName); string(name) != "Garage" || dev.SlotsTotal != 2 {
		t.Fatalf("second device: name %q, %d slots", name, dev.SlotsTotal)
	}
	// Used up.
	if _, err := Pair(t.Context(), pairConfig(t, r, "warp2-Gh34"), tok); apiclient.ErrorCode(err) != string(account.CodeTokenUsedUp) {
		t.Fatalf("Pair with a used-up token: %v", err)
	}

	// Bad input never reaches the relay.
	for _, tc := range []struct {
		name  string
		cfg   Config
		token string
		want  error
	}{
		{"mistyped token", pairConfig(t, r, "warp2-Ij56"), tok[:len(tok)-2] + "xx", apiclient.ErrPairingTokenMistyped},
		{"no token", pairConfig(t, r, "warp2-Ij56"), "hello", apiclient.ErrNotPairingToken},
		{"no UID", pairConfig(t, r, ""), tok, ErrInvalidConfig},
		{"UID with a space", pairConfig(t, r, "warp2 Ij56"), tok, ErrInvalidConfig},
		{"too many slots", func() Config { c := pairConfig(t, r, "warp2-Ij56"); c.Slots = MaxSlots + 1; return c }(), tok, ErrInvalidConfig},
	} {
		if _, err := Pair(t.Context(), tc.cfg, tc.token); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestPairWithPassword pairs with e-mail and password, once with a relay
// that tells the truth, once through a relay that swaps the user's public
// box key (the device must notice).
func TestPairWithPassword(t *testing.T) {
	t.Parallel()
	r := devicetest.NewRelay(t)
	u := r.NewUser(t)
	d, err := PairWithPassword(t.Context(), pairConfig(t, r, "warp2-Pw12"), r.URL, u.Email, u.Password)
	if err != nil {
		t.Fatalf("PairWithPassword: %v", err)
	}
	checkPaired(t, u, d, DefaultSlots)

	if _, err := PairWithPassword(t.Context(), pairConfig(t, r, "warp2-Pw34"), r.URL, u.Email, "wrong password"); apiclient.ErrorCode(err) != string(account.CodeInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}

	// A lying relay: /me/keys with another box public key.
	liar, err := zkcrypto.GenerateUserKeys()
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(r.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = r.HTTPClient.Transport
	proxy.ModifyResponse = func(res *http.Response) error {
		if res.Request.URL.Path != "/api/v1/me/keys" {
			return nil
		}
		var keys map[string]any
		if err := json.NewDecoder(res.Body).Decode(&keys); err != nil {
			return err
		}
		res.Body.Close()
		keys["box_public_key"] = base64.StdEncoding.EncodeToString(liar.BoxPublic[:])
		b, _ := json.Marshal(keys)
		res.Body = io.NopCloser(bytes.NewReader(b))
		res.ContentLength = int64(len(b))
		res.Header.Set("Content-Length", strconv.Itoa(len(b)))
		return nil
	}
	front := httptest.NewServer(proxy)
	defer front.Close()
	cfg := pairConfig(t, r, "warp2-Li34")
	_, err = PairWithPassword(t.Context(), cfg, front.URL, u.Email, u.Password)
	if !errors.Is(err, ErrKeyMismatch) {
		t.Fatalf("pairing through a relay that swaps the box key: %v, want ErrKeyMismatch", err)
	}
	devs, err := u.Client.Devices(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range devs {
		if strings.HasPrefix(dev.UID, "warp2-Li") {
			t.Fatal("a device registered despite the swapped key")
		}
	}
}
