package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// loggedIn registers, confirms and logs in an account with password
// "password-1" and returns its user and its keys (from the recovery file).
func loggedIn(t *testing.T, r *testRelay, email string) (*user, *zkcrypto.UserKeys) {
	t.Helper()
	u := newUser(t, r)
	recovery := filepath.Join(t.TempDir(), "recovery.json")
	u.with(envPassword, "password-1").must(nil, "register", "--email", email, "--recovery-file", recovery)
	u.must(nil, "verify", r.link(t, email, account.MailVerifyEmail, ""))
	u.with(envPassword, "password-1").must(nil, "login")
	keys, _ := recoveryKeys(t, recovery)
	return u, keys
}

// pairDevice pairs a device with the pairing token string as a device
// would: its own WireGuard key, two key slots and its name sealed to the
// token's box key.
func pairDevice(t *testing.T, r *testRelay, token, uid, name string) (*apiclient.PairResult, error) {
	t.Helper()
	p, err := apiclient.ParsePairingToken(token)
	if err != nil {
		t.Fatalf("ParsePairingToken: %v", err)
	}
	c, err := apiclient.New(p.Relay, apiclient.WithInsecureTLS())
	if err != nil {
		t.Fatal(err)
	}
	devKey, err := wgkey.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	devPub := devKey.Public()
	req := &apiclient.PairRequest{Secret: p.Secret, UID: uid, PublicKey: devPub[:], Firmware: "warp2 2.6.1 (test)", ProtocolVersion: 1}
	if req.SealedName, err = zkcrypto.SealTo(p.BoxPublicKey, []byte(name)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		priv, err := wgkey.NewPrivate()
		if err != nil {
			t.Fatal(err)
		}
		psk, err := wgkey.NewPreshared()
		if err != nil {
			t.Fatal(err)
		}
		pub := priv.Public()
		sealed, err := zkcrypto.SealTo(p.BoxPublicKey, slices.Concat(priv[:], psk[:]))
		if err != nil {
			t.Fatal(err)
		}
		req.Slots = append(req.Slots, apiclient.DeviceSlot{Index: i, BrowserPublicKey: pub[:], Sealed: sealed})
	}
	return c.PairDevice(t.Context(), req)
}

// tokens runs token list --json.
func (u *user) tokens() []tokenJSON {
	u.t.Helper()
	var list []tokenJSON
	if err := json.Unmarshal([]byte(u.must(nil, "token", "list", "--json").stdout), &list); err != nil {
		u.t.Fatalf("token list --json: %v", err)
	}
	return list
}

func tokenByID(t *testing.T, list []tokenJSON, id string) tokenJSON {
	t.Helper()
	for _, tok := range list {
		if tok.ID == id {
			return tok
		}
	}
	t.Fatalf("token %s not in the list %+v", id, list)
	return tokenJSON{}
}

// devices runs devices --json (with extra arguments) and returns the
// objects as generic maps, to see which fields are there.
func (u *user) devices(stdin any, args ...string) []map[string]any {
	u.t.Helper()
	res := u.must(stdin, append([]string{"devices", "--json"}, args...)...)
	var list []map[string]any
	if err := json.Unmarshal([]byte(res.stdout), &list); err != nil {
		u.t.Fatalf("devices --json: %v\n%s", err, res.stdout)
	}
	return list
}

func TestTokens(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)
	const email = "dora@example.com"
	u, keys := loggedIn(t, r, email)
	var who struct{ ID string }
	if err := json.Unmarshal([]byte(u.must(nil, "whoami", "--json").stdout), &who); err != nil {
		t.Fatal(err)
	}

	// The log-in kept the account's public keys, checked, and nothing secret.
	st := u.loadState()
	if st.Keys == nil || !bytes.Equal(st.Keys.BoxPublicKey, keys.BoxPublic[:]) || !bytes.Equal(st.Keys.SignPublicKey, keys.SignPublic) ||
		st.Keys.UserID != who.ID || st.Keys.Email != email {
		t.Fatalf("state keys after login = %+v, want the recovery file's public keys for %s", st.Keys, who.ID)
	}
	checkStateFile(t, u, "password-1",
		base64.StdEncoding.EncodeToString(keys.BoxPrivate[:]), base64.StdEncoding.EncodeToString(keys.SignPrivate.Seed()))

	// token create needs no password: the token carries the checked keys.
	res := u.must(nil, "token", "create", "--name", "garage", "--uses", "2", "--ttl", "2h")
	tokStr := strings.TrimSpace(res.stdout)
	if strings.Contains(tokStr, "\n") {
		t.Fatalf("token create printed more than the token on stdout:\n%s", res.stdout)
	}
	p, err := apiclient.ParsePairingToken(tokStr)
	if err != nil {
		t.Fatalf("ParsePairingToken(%q): %v", tokStr, err)
	}
	if !bytes.Equal(p.BoxPublicKey, keys.BoxPublic[:]) || !bytes.Equal(p.SignPublicKey, keys.SignPublic) ||
		p.User != who.ID || p.Relay != r.url || p.Name != "garage" {
		t.Errorf("token = %+v, want the account's keys, user %s, relay %s, name garage", p, who.ID, r.url)
	}
	contains(t, "token create stderr", res.stderr, "devicesim --token '"+tokStr+"'", "token revoke", "up to 2 devices")

	list := u.tokens()
	if len(list) != 1 {
		t.Fatalf("token list = %+v, want one token", list)
	}
	garage := list[0]
	if garage.Name != "garage" || garage.Uses != 0 || garage.MaxUses != 2 || garage.State != apiclient.TokenActive ||
		garage.RevokedAt != nil || garage.ExpiresAt.Sub(garage.CreatedAt).Round(time.Minute) != 2*time.Hour {
		t.Errorf("token list entry = %+v", garage)
	}
	contains(t, "token list", u.must(nil, "token", "list").stdout, "ID", "STATE", garage.ID, "garage", "0/2", "active")

	// A device pairs with it, which counts a use.
	if _, err := pairDevice(t, r, tokStr, "warp2-Tok1", "Garage"); err != nil {
		t.Fatalf("PairDevice: %v", err)
	}
	if got := tokenByID(t, u.tokens(), garage.ID); got.Uses != 1 || got.State != apiclient.TokenActive {
		t.Errorf("after one pairing: %+v", got)
	}

	// Revoked: shown so, and it pairs no more.
	res = u.must(nil, "token", "revoke", garage.ID)
	contains(t, "token revoke", res.stdout, garage.ID, "revoked")
	if got := tokenByID(t, u.tokens(), garage.ID); got.State != apiclient.TokenRevoked || got.RevokedAt == nil {
		t.Errorf("after revoke: %+v", got)
	}
	contains(t, "token list after revoke", u.must(nil, "token", "list").stdout, "revoked")
	if _, err := pairDevice(t, r, tokStr, "warp2-Tok2", "Carport"); apiclient.ErrorCode(err) != "token_revoked" {
		t.Errorf("pairing with a revoked token: %v, want token_revoked", err)
	}
	res = u.fail(exitError, nil, "token", "revoke", "pt_nosuchtoken")
	contains(t, "revoke an unknown token", res.stderr, "not_found", "token list")

	// Without keys in the state, token create asks for the password once,
	// and keeps the keys again.
	st = u.loadState()
	st.Keys = nil
	if err := st.save(u.stateDir); err != nil {
		t.Fatal(err)
	}
	before := len(u.tokens())
	res = u.fail(exitError, nil, "token", "create")
	contains(t, "token create without keys or password", res.stderr, "stdin is not a terminal", envPassword, "password once")
	if n := len(u.tokens()); n != before {
		t.Errorf("a token create that could not build the token left %d token(s) instead of %d", n, before)
	}
	res = u.with(envPassword, "wrong-password").fail(exitError, nil, "token", "create")
	contains(t, "token create with a wrong password", res.stderr, "wrong password")
	ft := newFakeTerm("password-1")
	res = u.must(ft, "token", "create", "--ttl", "7d")
	if p, err := apiclient.ParsePairingToken(res.stdout); err != nil || !bytes.Equal(p.BoxPublicKey, keys.BoxPublic[:]) {
		t.Errorf("token made with the password: %+v, %v", p, err)
	}
	if len(ft.prompts) != 1 {
		t.Errorf("token create asked %q, want one password prompt", ft.prompts)
	}
	if st := u.loadState(); st.Keys == nil || !bytes.Equal(st.Keys.BoxPublicKey, keys.BoxPublic[:]) {
		t.Errorf("token create with the password did not keep the keys: %+v", st.Keys)
	}

	// Keys in the state that are not the account's (say, a reset elsewhere)
	// are not put in a token: the password is asked for, and the unfinished
	// token revoked if there is none.
	other, err := zkcrypto.GenerateUserKeys()
	if err != nil {
		t.Fatal(err)
	}
	st = u.loadState()
	st.Keys = newVerifiedKeys(other, email, who.ID)
	if err := st.save(u.stateDir); err != nil {
		t.Fatal(err)
	}
	res = u.fail(exitError, nil, "token", "create", "--name", "stale")
	contains(t, "token create with stale keys", res.stderr, "not the ones blindctl checked", envPassword)
	if stale := u.tokens()[0]; stale.Name != "stale" || stale.State != apiclient.TokenRevoked {
		t.Errorf("the unfinished token is %+v, want it revoked", stale)
	}
	res = u.with(envPassword, "password-1").must(nil, "token", "create", "--name", "fresh")
	if p, err := apiclient.ParsePairingToken(res.stdout); err != nil || !bytes.Equal(p.BoxPublicKey, keys.BoxPublic[:]) {
		t.Errorf("token after stale keys: %+v, %v", p, err)
	}
	if st := u.loadState(); !bytes.Equal(st.Keys.BoxPublicKey, keys.BoxPublic[:]) || st.Keys.UserID != who.ID {
		t.Errorf("state keys after the password = %+v", st.Keys)
	}

	// Command-line mistakes.
	for _, args := range [][]string{
		{"token", "create", "--uses", "0"},
		{"token", "create", "--uses", "101"},
		{"token", "create", "--ttl", "30s"},
		{"token", "create", "--ttl", "31d"},
		{"token", "create", "--ttl", "soon"},
		{"token", "revoke"},
		{"token", "frob"},
		{"token"},
	} {
		u.fail(exitUsage, nil, args...)
	}
}

func TestDevices(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)
	u, _ := loggedIn(t, r, "erin@example.com")

	res := u.must(nil, "devices")
	contains(t, "devices without devices", res.stdout, "No devices", "token create")
	if list := u.devices(nil); len(list) != 0 {
		t.Errorf("devices --json = %v, want []", list)
	}
	if res := u.must(nil, "devices", "--json"); strings.TrimSpace(res.stdout) != "[]" {
		t.Errorf("devices --json without devices = %q, want []", res.stdout)
	}

	tok := strings.TrimSpace(u.must(nil, "token", "create", "--uses", "2").stdout)
	garage, err := pairDevice(t, r, tok, "warp2-AbCd", "Garage")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pairDevice(t, r, tok, "warp2-EfGh", "Carport"); err != nil {
		t.Fatal(err)
	}

	// JSON: the fields, offline (the relay has no UDP side here), no names.
	list := u.devices(nil)
	if len(list) != 2 {
		t.Fatalf("devices --json = %v, want 2 devices", list)
	}
	var d map[string]any
	for _, x := range list {
		if x["id"] == garage.DeviceID {
			d = x
		}
	}
	if d == nil {
		t.Fatalf("device %s not in %v", garage.DeviceID, list)
	}
	for _, k := range []string{"id", "uid", "online", "firmware", "protocol_version", "role", "public_key", "created_at", "slots_total", "slots_busy"} {
		if _, ok := d[k]; !ok {
			t.Errorf("devices --json: no %q in %v", k, d)
		}
	}
	if d["uid"] != "warp2-AbCd" || d["online"] != false || d["firmware"] != "warp2 2.6.1 (test)" || d["role"] != "owner" ||
		d["protocol_version"] != 1.0 || d["slots_total"] != 2.0 || d["slots_busy"] != 0.0 {
		t.Errorf("devices --json entry = %v", d)
	}
	if _, ok := d["name"]; ok {
		t.Errorf("devices --json without --names has a name: %v", d)
	}
	if _, ok := d["last_seen_at"]; ok {
		t.Errorf("a device never seen has last_seen_at: %v", d)
	}
	res = u.must(nil, "devices")
	contains(t, "devices", res.stdout, "UID", "warp2-AbCd", "warp2-EfGh", garage.DeviceID, "offline", "never", "owner", "0/2")

	// --names opens the sealed names with the password.
	res = u.fail(exitError, nil, "devices", "--names")
	contains(t, "devices --names without a password", res.stderr, "stdin is not a terminal")
	names := map[string]any{}
	for _, x := range u.with(envPassword, "password-1").devices(nil, "--names") {
		names[x["uid"].(string)] = x["name"]
	}
	if names["warp2-AbCd"] != "Garage" || names["warp2-EfGh"] != "Carport" {
		t.Errorf("devices --json --names: names %v", names)
	}
	res = u.must(newFakeTerm("password-1"), "devices", "--names")
	contains(t, "devices --names", res.stdout, "NAME", "Garage", "Carport")

	// device remove: by UID (any case) or id, confirmed.
	res = u.fail(exitError, nil, "device", "remove", "warp2-abcd")
	contains(t, "device remove without --yes", res.stderr, "for everyone", "refusing", "--yes")
	res = u.fail(exitError, newFakeTerm("warp2-EfGh"), "device", "remove", "warp2-AbCd")
	contains(t, "device remove with the wrong UID typed", res.stderr, "not confirmed")
	if n := len(u.devices(nil)); n != 2 {
		t.Fatalf("a refused remove left %d devices", n)
	}
	res = u.must(newFakeTerm("WARP2-abcd"), "device", "remove", "warp2-abcd")
	contains(t, "device remove", res.stdout, "warp2-AbCd removed")
	list = u.devices(nil)
	if len(list) != 1 || list[0]["uid"] != "warp2-EfGh" {
		t.Fatalf("devices after remove = %v", list)
	}
	res = u.must(nil, "device", "remove", list[0]["id"].(string), "--yes")
	contains(t, "device remove by id", res.stdout, "warp2-EfGh removed")
	if list := u.devices(nil); len(list) != 0 {
		t.Errorf("devices after removing both = %v", list)
	}
	res = u.fail(exitError, nil, "device", "remove", "warp2-AbCd", "--yes")
	contains(t, "device remove again", res.stderr, "no device", "warp2-AbCd", "blindctl devices")

	u.fail(exitUsage, nil, "device", "remove")
	u.fail(exitUsage, nil, "device")
	u.fail(exitUsage, nil, "devices", "extra")
}

func TestConnectErrors(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)
	u, _ := loggedIn(t, r, "fred@example.com")
	tok := strings.TrimSpace(u.must(nil, "token", "create").stdout)
	if _, err := pairDevice(t, r, tok, "warp2-Conn", "Garage"); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"connect"}, "takes 1 argument"},
		{[]string{"connect", "a", "b"}, "takes 1 argument"},
		{[]string{"connect", "warp2-Conn", "--listen", "8080"}, "--listen"},
		{[]string{"connect", "warp2-Conn", "--listen", "127.0.0.1:http"}, "--listen"},
		{[]string{"connect", "warp2-Conn", "--listen", "127.0.0.1:70000"}, "--listen"},
		{[]string{"connect", "warp2-Conn", "--listen", "relay.example:8080"}, "--listen"},
		{[]string{"connect", "warp2-Conn", "--slot", "254"}, "--slot"},
		{[]string{"connect", "warp2-Conn", "--slot", "-2"}, "--slot"},
	} {
		res := u.fail(exitUsage, nil, tt.args...)
		contains(t, strings.Join(tt.args, " "), res.stderr, tt.want, "Usage: blindctl connect")
	}

	res := u.fail(exitError, nil, "connect", "warp2-Nope")
	contains(t, "connect to an unknown device", res.stderr, "no device", "warp2-Nope", "blindctl devices")

	// The relay has no UDP side here, so the device is offline: connect
	// says so before it asks for the password or binds the port.
	ft := newFakeTerm("password-1")
	res = u.fail(exitError, ft, "connect", "warp2-conn", "--listen", "127.0.0.1:0")
	contains(t, "connect to an offline device", res.stderr, "warp2-Conn is offline", "never seen", "blindctl devices")
	if len(ft.prompts) != 0 {
		t.Errorf("connect to an offline device asked %q", ft.prompts)
	}
}

func TestNeedsSession(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)
	u := newUser(t, r)
	for _, args := range [][]string{
		{"token", "create"}, {"token", "list"}, {"token", "revoke", "pt_x"},
		{"devices"}, {"device", "remove", "warp2-AbCd", "--yes"}, {"connect", "warp2-AbCd"},
	} {
		res := u.fail(exitError, nil, args...)
		contains(t, strings.Join(args, " "), res.stderr, "not logged in", "blindctl login")
	}
}

// TestStateKeysLifecycle checks where the state's verified keys come from
// and go: a log-in keeps them, a switch to another relay and a deletion
// drop them, a reset keeps the keys the account has afterwards.
func TestStateKeysLifecycle(t *testing.T) {
	t.Parallel()
	r := newTestRelay(t)
	const email = "gina@example.com"
	u, keys := loggedIn(t, r, email)
	id := u.loadState().Keys.UserID
	if id == "" {
		t.Fatal("no user id with the keys after login")
	}

	// Logging out keeps them (public, and the same at the next log-in).
	u.must(nil, "logout")
	if st := u.loadState(); st.Keys == nil || st.Keys.UserID != id {
		t.Errorf("keys after logout = %+v", st.Keys)
	}

	// A reset without the recovery file: the new keys.
	u.must(nil, "recovery", "request")
	link := r.link(t, email, account.MailResetPassword, "")
	u.with(envPassword, "password-2").must(nil, "recovery", "reset", "--token", link, "--yes")
	st := u.loadState()
	if st.Keys == nil || bytes.Equal(st.Keys.BoxPublicKey, keys.BoxPublic[:]) || st.Keys.UserID != id {
		t.Fatalf("keys after a reset without the recovery file = %+v, want new ones for %s", st.Keys, id)
	}
	newKeys := *st.Keys
	u.with(envPassword, "password-2").must(nil, "login")
	if st := u.loadState(); !bytes.Equal(st.Keys.BoxPublicKey, newKeys.BoxPublicKey) || !bytes.Equal(st.Keys.SignPublicKey, newKeys.SignPublicKey) {
		t.Errorf("login after the reset verified other keys: %+v, reset kept %+v", st.Keys, newKeys)
	}
	tok := strings.TrimSpace(u.must(nil, "token", "create").stdout)
	if p, err := apiclient.ParsePairingToken(tok); err != nil || !bytes.Equal(p.BoxPublicKey, newKeys.BoxPublicKey) {
		t.Errorf("token after the reset: %+v, %v", p, err)
	}

	// Another relay: the keys are not its account's.
	other := newTestRelay(t)
	u.with(envPassword, "password-2").must(nil, "register", "--server", other.url, "--email", email,
		"--recovery-file", filepath.Join(t.TempDir(), "other.json"))
	if st := u.loadState(); st.Keys != nil || st.Server != other.url {
		t.Errorf("state after switching relays = %+v", st)
	}

	// Deleting the account drops them.
	u.with(envPassword, "password-2").must(nil, "login", "--server", r.url)
	if st := u.loadState(); st.Keys == nil {
		t.Fatal("no keys after logging in again")
	}
	u.with(envPassword, "password-2").must(nil, "account", "delete", "--yes")
	if st := u.loadState(); st.Keys != nil {
		t.Errorf("keys after account delete = %+v", st.Keys)
	}
	if _, err := os.Stat(filepath.Join(u.stateDir, stateFileName)); err != nil {
		t.Fatal(err)
	}
}
