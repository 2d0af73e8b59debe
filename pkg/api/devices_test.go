package api

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

func TestPairingTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.newUser(t, "alice@example.org")
	bob := e.newUser(t, "bob@example.org")
	var me userJSON
	e.do("GET", "/api/v1/me", nil, bearer(alice.token)).want(t, 200).decode(t, &me)

	// Defaults: one use, 24 hours.
	now := e.clock.Now().UTC()
	tok := e.createToken(t, alice, createPairingTokenRequest{Name: "Garage wallbox"})
	raw, err := base64.RawURLEncoding.DecodeString(tok.Secret)
	if err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: %d bytes, %v", tok.Secret, len(raw), err)
	}
	want := pairingTokenJSON{ID: tok.ID, Name: "Garage wallbox", UserID: me.ID, Secret: tok.Secret, MaxUses: 1,
		State: keystore.TokenActive, ExpiresAt: now.Add(24 * time.Hour), CreatedAt: now}
	if diff := cmp.Diff(want, tok); diff != "" {
		t.Errorf("created token (-want +got):\n%s", diff)
	}
	if !strings.HasPrefix(tok.ID, "pt_") {
		t.Errorf("token id %q", tok.ID)
	}
	e.clock.Advance(time.Second)
	multi := e.createToken(t, alice, createPairingTokenRequest{MaxUses: 100, TTLSeconds: 60})
	if multi.MaxUses != 100 || !multi.ExpiresAt.Equal(now.Add(time.Second+time.Minute)) || multi.Name != "" {
		t.Errorf("multi-use token %+v", multi)
	}

	// The list never shows a secret; newest first.
	var list []pairingTokenJSON
	r := e.do("GET", "/api/v1/pairing-tokens", nil, bearer(alice.token)).want(t, 200)
	r.decode(t, &list)
	if len(list) != 2 || list[0].ID != multi.ID || list[1].ID != tok.ID || bytes.Contains(r.body, []byte(tok.Secret)) ||
		bytes.Contains(r.body, []byte(`"secret"`)) {
		t.Fatalf("list %s", r.body)
	}

	// States follow the clock and revocation.
	e.clock.Advance(time.Minute)
	e.do("DELETE", "/api/v1/pairing-tokens/"+tok.ID, nil, bearer(alice.token)).want(t, http.StatusNoContent)
	e.do("DELETE", "/api/v1/pairing-tokens/"+tok.ID, nil, bearer(alice.token)).want(t, http.StatusNoContent)
	e.do("GET", "/api/v1/pairing-tokens", nil, bearer(alice.token)).want(t, 200).decode(t, &list)
	if list[0].State != keystore.TokenExpired || list[1].State != keystore.TokenRevoked || list[1].RevokedAt == nil {
		t.Errorf("states after a minute and a revocation: %+v", list)
	}

	// Other users see and touch nothing of it.
	e.do("GET", "/api/v1/pairing-tokens", nil, bearer(bob.token)).want(t, 200).decode(t, &list)
	if len(list) != 0 {
		t.Errorf("bob sees %+v", list)
	}
	e.do("DELETE", "/api/v1/pairing-tokens/"+multi.ID, nil, bearer(bob.token)).wantError(t, 404, account.CodeNotFound)
	e.do("DELETE", "/api/v1/pairing-tokens/pt_nonexistent", nil, bearer(alice.token)).wantError(t, 404, account.CodeNotFound)

	// Without a session.
	e.do("GET", "/api/v1/pairing-tokens", nil).wantError(t, 401, account.CodeUnauthorized)
	e.do("POST", "/api/v1/pairing-tokens", createPairingTokenRequest{}).wantError(t, 401, account.CodeUnauthorized)
	e.do("DELETE", "/api/v1/pairing-tokens/"+multi.ID, nil).wantError(t, 401, account.CodeUnauthorized)
}

func TestPairingTokenInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.newUser(t, "alice@example.org")
	tests := []struct {
		name string
		body any
		code account.Code
	}{
		{"max_uses 101", createPairingTokenRequest{MaxUses: 101}, account.CodeInvalidInput},
		{"max_uses -1", createPairingTokenRequest{MaxUses: -1}, account.CodeInvalidInput},
		{"ttl 59s", createPairingTokenRequest{TTLSeconds: 59}, account.CodeInvalidInput},
		{"ttl 30 days + 1s", createPairingTokenRequest{TTLSeconds: 30*24*3600 + 1}, account.CodeInvalidInput},
		{"ttl negative", createPairingTokenRequest{TTLSeconds: -60}, account.CodeInvalidInput},
		{"name too long", createPairingTokenRequest{Name: strings.Repeat("x", 65)}, account.CodeInvalidInput},
		{"name with a newline", createPairingTokenRequest{Name: "a\nb"}, account.CodeInvalidInput},
		{"name with NUL", createPairingTokenRequest{Name: "a\x00b"}, account.CodeInvalidInput},
		{"unknown field", map[string]any{"name": "x", "uses": 1}, account.CodeInvalidJSON},
		{"ttl as string", map[string]any{"ttl_seconds": "60"}, account.CodeInvalidJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do("POST", "/api/v1/pairing-tokens", tt.body, bearer(alice.token)).wantError(t, 400, tt.code)
		})
	}
	// The bounds themselves are fine, and so is a name of 64 characters.
	e.createToken(t, alice, createPairingTokenRequest{Name: strings.Repeat("ü", 64), MaxUses: 100, TTLSeconds: 30 * 24 * 3600})
	e.createToken(t, alice, createPairingTokenRequest{MaxUses: 1, TTLSeconds: 60})
}

func TestPairDevice(t *testing.T) {
	forEachStore(t, func(t *testing.T, ns newStoreFunc) {
		e := newEnv(t, envOptions{newStore: ns})
		alice := e.newUser(t, "alice@example.org")
		tok := e.createToken(t, alice, createPairingTokenRequest{Name: "garage"})
		d := newTestDevice(t, "warp2-AbCd", alice, 4)

		var pr pairResponse
		r := e.pair(tok.Secret, d).want(t, http.StatusCreated)
		r.decode(t, &pr)
		pub := d.key.Public()
		want := pairResponse{DeviceID: pr.DeviceID, RelayPublicKey: e.relayKey, RelayEndpoint: testRelayEndpoint,
			MgmtAddr: wire.MgmtAddr(pub), RelayMgmtAddr: wire.RelayMgmtAddr, ControlPort: 7000}
		if diff := cmp.Diff(want, pr, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
			t.Errorf("pair answer (-want +got):\n%s", diff)
		}
		if !strings.HasPrefix(pr.DeviceID, "dev_") || len(pr.DeviceID) != 20 {
			t.Errorf("device id %q", pr.DeviceID)
		}
		if !bytes.Contains(r.body, []byte(`"relay_public_key":"`+e.relayKey.String()+`"`)) ||
			!bytes.Contains(r.body, []byte(`"mgmt_addr":"fdb1:d4e1:a700:`)) {
			t.Errorf("pair answer JSON %s", r.body)
		}

		// The store holds the device, owned by alice, with her slots.
		dev, err := e.store.DeviceByID(t.Context(), pr.DeviceID)
		if err != nil || dev.UID != "warp2-AbCd" || dev.PublicKey != pub || dev.Firmware != "warp2 2.6.1" || dev.ProtocolVersion != 1 {
			t.Fatalf("stored device %+v, %v", dev, err)
		}

		// A single-use token is spent.
		again := newTestDevice(t, "warp2-Other", alice, 4)
		e.pair(tok.Secret, again).wantError(t, http.StatusGone, account.CodeTokenUsedUp)

		// Revoked and expired tokens.
		revoked := e.createToken(t, alice, createPairingTokenRequest{})
		e.do("DELETE", "/api/v1/pairing-tokens/"+revoked.ID, nil, bearer(alice.token)).want(t, http.StatusNoContent)
		e.pair(revoked.Secret, again).wantError(t, http.StatusGone, account.CodeTokenRevoked)
		expiring := e.createToken(t, alice, createPairingTokenRequest{TTLSeconds: 60})
		e.clock.Advance(time.Minute)
		e.pair(expiring.Secret, again).wantError(t, http.StatusGone, account.CodeTokenExpired)

		// Unknown and malformed secrets.
		unknown := base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
		e.pair(unknown, again).wantError(t, 400, account.CodeTokenInvalid)
		e.pair("not a secret", again).wantError(t, 400, account.CodeTokenInvalid)
		e.pair("", again).wantError(t, 400, account.CodeInvalidInput)

		// A multi-use token pairs several devices, but no device twice.
		multi := e.createToken(t, alice, createPairingTokenRequest{MaxUses: 3})
		e.pair(multi.Secret, again).want(t, http.StatusCreated)
		sameUID := newTestDevice(t, "warp2-AbCd", alice, 4)
		e.pair(multi.Secret, sameUID).wantError(t, http.StatusConflict, account.CodeDeviceExists)
		sameKey := newTestDevice(t, "warp2-New", alice, 4)
		sameKey.key = d.key
		sameKey.req.PublicKey = d.req.PublicKey
		e.pair(multi.Secret, sameKey).wantError(t, http.StatusConflict, account.CodeDeviceExists)
		var list []pairingTokenJSON
		e.do("GET", "/api/v1/pairing-tokens", nil, bearer(alice.token)).want(t, 200).decode(t, &list)
		if list[0].ID != multi.ID || list[0].Uses != 1 || list[0].State != keystore.TokenActive {
			t.Errorf("multi-use token after one pairing and two refusals: %+v", list[0])
		}
	})
}

// TestPairDeviceInput checks the validation of a registration: every
// refusal is invalid_input (or invalid_json) and spends no token use.
func TestPairDeviceInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.newUser(t, "alice@example.org")
	tok := e.createToken(t, alice, createPairingTokenRequest{})
	tests := []struct {
		name string
		mod  func(d *deviceRequest)
	}{
		{"no uid", func(d *deviceRequest) { d.UID = "" }},
		{"uid with a space", func(d *deviceRequest) { d.UID = "warp2 AbCd" }},
		{"uid too long", func(d *deviceRequest) { d.UID = strings.Repeat("a", 65) }},
		{"uid not ascii", func(d *deviceRequest) { d.UID = "wärp" }},
		{"no public key", func(d *deviceRequest) { d.PublicKey = nil }},
		{"short public key", func(d *deviceRequest) { d.PublicKey = d.PublicKey[:31] }},
		{"zero public key", func(d *deviceRequest) { d.PublicKey = make([]byte, 32) }},
		{"firmware with control characters", func(d *deviceRequest) { d.Firmware = "v1\x1b[31m" }},
		{"firmware too long", func(d *deviceRequest) { d.Firmware = strings.Repeat("v", 129) }},
		{"negative protocol version", func(d *deviceRequest) { d.ProtocolVersion = -1 }},
		{"sealed name too long", func(d *deviceRequest) { d.SealedName = make([]byte, 1025) }},
		{"sealed name too short", func(d *deviceRequest) { d.SealedName = make([]byte, 48) }},
		{"no slots", func(d *deviceRequest) { d.Slots = nil }},
		{"17 slots", func(d *deviceRequest) {
			for len(d.Slots) < 17 {
				s := d.Slots[0]
				s.Index = len(d.Slots)
				s.BrowserPublicKey = bytes.Repeat([]byte{byte(len(d.Slots))}, 32)
				d.Slots = append(d.Slots, s)
			}
		}},
		{"slot index 254", func(d *deviceRequest) { d.Slots[1].Index = 254 }},
		{"slot index -1", func(d *deviceRequest) { d.Slots[1].Index = -1 }},
		{"slot index twice", func(d *deviceRequest) { d.Slots[1].Index = d.Slots[0].Index }},
		{"browser key twice", func(d *deviceRequest) { d.Slots[1].BrowserPublicKey = d.Slots[0].BrowserPublicKey }},
		{"browser key is the device's", func(d *deviceRequest) { d.Slots[1].BrowserPublicKey = d.PublicKey }},
		{"browser key short", func(d *deviceRequest) { d.Slots[1].BrowserPublicKey = d.Slots[1].BrowserPublicKey[:16] }},
		{"sealed slot short", func(d *deviceRequest) { d.Slots[1].Sealed = d.Slots[1].Sealed[:111] }},
		{"sealed slot long", func(d *deviceRequest) { d.Slots[1].Sealed = append(d.Slots[1].Sealed, 0) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newTestDevice(t, "warp2-AbCd", alice, 4)
			tt.mod(&d.req)
			e.pair(tok.Secret, d).wantError(t, 400, account.CodeInvalidInput)
			e.do("POST", "/api/v1/devices", d.req, bearer(alice.token)).wantError(t, 400, account.CodeInvalidInput)
		})
	}
	d := newTestDevice(t, "warp2-AbCd", alice, 4)
	d.req.PublicKey = e.relayKey[:]
	e.pair(tok.Secret, d).wantError(t, 400, account.CodeInvalidInput)
	e.do("POST", "/api/v1/devices/pair", map[string]any{"secret": tok.Secret, "uid": "x", "owner": "me"}).
		wantError(t, 400, account.CodeInvalidJSON)

	// The token is still unused: the bounds themselves pass.
	d = newTestDevice(t, strings.Repeat("~", 64), alice, 16)
	d.req.Slots[15].Index = keystore.MaxSlotIndex
	d.req.SealedName, d.req.Firmware = nil, ""
	e.pair(tok.Secret, d).want(t, http.StatusCreated)
}

func TestAddDevice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.newUser(t, "alice@example.org")
	d := newTestDevice(t, "warp2-AbCd", alice, 2)
	e.do("POST", "/api/v1/devices", d.req).wantError(t, 401, account.CodeUnauthorized)
	var pr pairResponse
	e.do("POST", "/api/v1/devices", d.req, bearer(alice.token)).want(t, http.StatusCreated).decode(t, &pr)
	if pr.RelayPublicKey != e.relayKey || pr.MgmtAddr != wire.MgmtAddr(d.key.Public()) || pr.ControlPort != wire.ControlPort {
		t.Errorf("answer %+v", pr)
	}
	e.do("POST", "/api/v1/devices", d.req, bearer(alice.token)).wantError(t, 409, account.CodeDeviceExists)
	// The session route takes no secret.
	e.do("POST", "/api/v1/devices", pairRequest{Secret: "x", deviceRequest: d.req}, bearer(alice.token)).
		wantError(t, 400, account.CodeInvalidJSON)
	var list []deviceJSON
	e.do("GET", "/api/v1/devices", nil, bearer(alice.token)).want(t, 200).decode(t, &list)
	if len(list) != 1 || list[0].ID != pr.DeviceID || list[0].Role != keystore.RoleOwner || list[0].SlotsTotal != 2 {
		t.Errorf("devices %+v", list)
	}
}

func TestDevices(t *testing.T) {
	forEachStore(t, func(t *testing.T, ns newStoreFunc) {
		e := newEnv(t, envOptions{newStore: ns})
		alice := e.newUser(t, "alice@example.org")
		bob := e.newUser(t, "bob@example.org")
		d, id := e.pairNew(t, alice, "warp2-AbCd")

		want := deviceJSON{ID: id, UID: "warp2-AbCd", PublicKey: d.key.Public(), Firmware: "warp2 2.6.1", ProtocolVersion: 1,
			Role: keystore.RoleOwner, SealedName: d.req.SealedName, CreatedAt: e.clock.Now().UTC(), SlotsTotal: 4}
		var list []deviceJSON
		r := e.do("GET", "/api/v1/devices", nil, bearer(alice.token)).want(t, 200)
		r.decode(t, &list)
		if diff := cmp.Diff([]deviceJSON{want}, list); diff != "" {
			t.Errorf("devices (-want +got):\n%s", diff)
		}
		if bytes.Contains(r.body, []byte("last_seen_at")) {
			t.Errorf("a device never seen has a last_seen_at: %s", r.body)
		}
		name, err := alice.keys.OpenSealed(list[0].SealedName)
		if err != nil || string(name) != "Garage" {
			t.Errorf("sealed name opens to %q, %v", name, err)
		}
		var one deviceJSON
		e.do("GET", "/api/v1/devices/"+id, nil, bearer(alice.token)).want(t, 200).decode(t, &one)
		if diff := cmp.Diff(want, one); diff != "" {
			t.Errorf("device (-want +got):\n%s", diff)
		}

		// Presence shows once the relay reports it.
		seen := e.clock.Now().UTC()
		if err := e.store.SetPresence(t.Context(), id, netip.MustParseAddrPort("203.0.113.9:4242"), true, "n1", seen); err != nil {
			t.Fatal(err)
		}
		r = e.do("GET", "/api/v1/devices/"+id, nil, bearer(alice.token)).want(t, 200)
		r.decode(t, &one)
		if !one.Online || !one.LastSeenAt.Equal(seen) || bytes.Contains(r.body, []byte("203.0.113.9")) {
			t.Errorf("device after presence: %s", r.body)
		}

		// The slots open with alice's key to the device's slot secrets.
		var slots []slotJSON
		e.do("GET", "/api/v1/devices/"+id+"/slots", nil, bearer(alice.token)).want(t, 200).decode(t, &slots)
		if len(slots) != 4 {
			t.Fatalf("slots %+v", slots)
		}
		for i, s := range slots {
			plain, err := alice.keys.OpenSealed(s.Sealed)
			if err != nil || s.Index != i || s.Busy || s.BrowserPublicKey != d.slots[i].browser.Public() ||
				!bytes.Equal(plain, append(d.slots[i].browser[:], d.slots[i].psk[:]...)) {
				t.Errorf("slot %d: %+v, opens: %v", i, s, err)
			}
		}

		// Bob sees nothing of it, and learns nothing: the same 404 as for
		// a device that does not exist.
		e.do("GET", "/api/v1/devices", nil, bearer(bob.token)).want(t, 200).decode(t, &list)
		if len(list) != 0 {
			t.Errorf("bob's devices %+v", list)
		}
		for _, path := range []string{id, "dev_doesnotexist"} {
			e.do("GET", "/api/v1/devices/"+path, nil, bearer(bob.token)).wantError(t, 404, account.CodeNotFound)
			e.do("GET", "/api/v1/devices/"+path+"/slots", nil, bearer(bob.token)).wantError(t, 404, account.CodeNotFound)
			e.do("DELETE", "/api/v1/devices/"+path, nil, bearer(bob.token)).wantError(t, 404, account.CodeNotFound)
			_, resp, err := e.dialTunnel(t, bob.token, path, "", nil)
			wantTunnelError(t, resp, err, 404, "not_found")
		}

		// Without a session.
		e.do("GET", "/api/v1/devices", nil).wantError(t, 401, account.CodeUnauthorized)
		e.do("GET", "/api/v1/devices/"+id, nil).wantError(t, 401, account.CodeUnauthorized)
		e.do("GET", "/api/v1/devices/"+id+"/slots", nil).wantError(t, 401, account.CodeUnauthorized)
		e.do("DELETE", "/api/v1/devices/"+id, nil).wantError(t, 401, account.CodeUnauthorized)

		// Bob's attempt changed nothing; alice removes the device.
		e.do("DELETE", "/api/v1/devices/"+id, nil, bearer(alice.token)).want(t, http.StatusNoContent)
		e.do("GET", "/api/v1/devices/"+id, nil, bearer(alice.token)).wantError(t, 404, account.CodeNotFound)
		e.do("DELETE", "/api/v1/devices/"+id, nil, bearer(alice.token)).wantError(t, 404, account.CodeNotFound)
		if _, err := e.store.DeviceByID(t.Context(), id); err == nil {
			t.Error("the device is still stored")
		}
	})
}

// TestDeleteSharedDevice checks that a shared user's DELETE removes only
// their own access, and the owner's removes the device for everyone.
func TestDeleteSharedDevice(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envOptions{})
	alice := e.newUser(t, "alice@example.org")
	bob := e.newUser(t, "bob@example.org")
	_, id := e.pairNew(t, alice, "warp2-AbCd")
	share := func() {
		t.Helper()
		var me userJSON
		e.do("GET", "/api/v1/me", nil, bearer(bob.token)).want(t, 200).decode(t, &me)
		k, _ := wgkey.NewPrivate()
		pub := k.Public()
		slot := keystore.KeySlot{Index: 10, BrowserPublicKey: pub, Sealed: seal(t, bob, make([]byte, 64))}
		err := e.store.ShareDevice(t.Context(), id, keystore.DeviceUser{UserID: me.ID, Role: keystore.RoleUser, CreatedAt: e.clock.Now()},
			[]keystore.KeySlot{slot})
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func(c *client) int {
		t.Helper()
		var list []deviceJSON
		e.do("GET", "/api/v1/devices", nil, bearer(c.token)).want(t, 200).decode(t, &list)
		return len(list)
	}
	share()
	var dj deviceJSON
	e.do("GET", "/api/v1/devices/"+id, nil, bearer(bob.token)).want(t, 200).decode(t, &dj)
	if dj.Role != keystore.RoleUser || dj.SlotsTotal != 1 || dj.SealedName != nil {
		t.Errorf("bob's view %+v", dj)
	}
	e.do("DELETE", "/api/v1/devices/"+id, nil, bearer(bob.token)).want(t, http.StatusNoContent)
	if count(alice) != 1 || count(bob) != 0 {
		t.Fatalf("after bob left: alice %d, bob %d devices", count(alice), count(bob))
	}
	share()
	e.do("DELETE", "/api/v1/devices/"+id, nil, bearer(alice.token)).want(t, http.StatusNoContent)
	if count(alice) != 0 || count(bob) != 0 {
		t.Fatalf("after alice removed it: alice %d, bob %d devices", count(alice), count(bob))
	}
}

// TestResetRemovesDevices checks that a password reset without the
// recovery file ends the user's device access (and spends their pairing
// tokens), and that one with it keeps everything.
func TestResetRemovesDevices(t *testing.T) {
	forEachStore(t, func(t *testing.T, ns newStoreFunc) {
		e := newEnv(t, envOptions{newStore: ns})
		alice := e.newUser(t, "alice@example.org")
		e.pairNew(t, alice, "warp2-AbCd")
		e.createToken(t, alice, createPairingTokenRequest{})
		reset := func(keep bool) {
			t.Helper()
			e.do("POST", "/api/v1/auth/reset/request", emailRequest{Email: alice.email}).want(t, http.StatusAccepted)
			token := linkToken(t, e.mail.last(t, alice.email, account.MailResetPassword).Link)
			if !keep {
				keys, err := zkcrypto.GenerateUserKeys()
				if err != nil {
					t.Fatal(err)
				}
				alice.keys = keys
			}
			alice.setPassword(t, "another password "+time.Now().String())
			req := completeResetRequest{Token: token, KeepKeys: keep, credentialsJSON: alice.credentials()}
			if keep {
				req.Signature = alice.keys.Sign(zkcrypto.ResetMessage(token, zkcrypto.HashLoginKey(alice.loginKey())))
			}
			e.do("POST", "/api/v1/auth/reset/complete", req).want(t, 200)
			e.login(t, alice)
		}
		counts := func() (devices, tokens int) {
			t.Helper()
			var dl []deviceJSON
			var tl []pairingTokenJSON
			e.do("GET", "/api/v1/devices", nil, bearer(alice.token)).want(t, 200).decode(t, &dl)
			e.do("GET", "/api/v1/pairing-tokens", nil, bearer(alice.token)).want(t, 200).decode(t, &tl)
			return len(dl), len(tl)
		}
		reset(true)
		if d, tk := counts(); d != 1 || tk != 2 {
			t.Fatalf("after a reset with the recovery file: %d devices, %d tokens; want 1, 2", d, tk)
		}
		reset(false)
		if d, tk := counts(); d != 0 || tk != 0 {
			t.Fatalf("after a reset without the recovery file: %d devices, %d tokens; want none", d, tk)
		}
	})
}
