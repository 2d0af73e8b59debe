package device

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func wantMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %o, want %o", path, got, want)
	}
}

// TestStateFile writes a state, checks the modes and what the file holds
// (and does not), and reads it back, directly and through Open.
func TestStateFile(t *testing.T) {
	t.Parallel()
	st, k := newTestState(t, "relay.example:51820")
	st.Counter = 7
	st.Recent = []recentCommand{{ID: "cmd-7", Counter: 7}}
	dir := filepath.Join(t.TempDir(), "dev")
	if err := prepareDir(dir); err != nil {
		t.Fatal(err)
	}
	if err := saveState(dir, st); err != nil {
		t.Fatal(err)
	}
	wantMode(t, dir, 0o700)
	wantMode(t, statePath(dir), 0o600)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data directory holds %d entries, want only the state file", len(entries))
	}

	raw, err := os.ReadFile(statePath(dir))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(raw, []byte(st.Private.Base64())) {
		t.Error("the state file lacks the device's private key")
	}
	for i, b := range k.browsers {
		if bytes.Contains(raw, []byte(b.Base64())) {
			t.Errorf("the state file holds slot %d's browser private key", i)
		}
		if !bytes.Contains(raw, []byte(k.psks[i].Base64())) {
			t.Errorf("the state file lacks slot %d's pre-shared key", i)
		}
	}

	got, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, got, cmpopts.EquateComparable(netip.Addr{})); diff != "" {
		t.Fatalf("reloaded state differs (-saved +loaded):\n%s", diff)
	}

	var logs bytes.Buffer
	d, err := Open(Config{DataDir: dir, UID: "ignored", Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	info := d.Info()
	if info.UID != "warp2-Test" || info.DeviceID != "dev-1" || info.PublicKey != st.Private.Public() ||
		len(info.Slots) != 4 || info.Slots[3].UserID != "user-other" || info.RelayEndpoint != "relay.example:51820" {
		t.Fatalf("Info %+v", info)
	}
	d.log.Info("test", "device", d, "info", info)
	for _, secret := range []string{st.Private.Base64(), k.psks[0].Base64(), st.Private.Hex()} {
		if strings.Contains(logs.String(), secret) {
			t.Fatalf("a secret in the logs: %s", logs.String())
		}
	}

	// A directory others can read is tightened.
	loose := filepath.Join(t.TempDir(), "loose")
	os.Mkdir(loose, 0o755)
	if err := prepareDir(loose); err != nil {
		t.Fatal(err)
	}
	wantMode(t, loose, 0o700)
}

func TestStateErrors(t *testing.T) {
	t.Parallel()
	st, _ := newTestState(t, "127.0.0.1:51820")
	good, err := st.marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(Config{DataDir: t.TempDir()}); !errors.Is(err, ErrNotPaired) {
		t.Errorf("Open of an empty directory: %v", err)
	}
	if _, err := Open(Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Open without a directory: %v", err)
	}
	replace := func(old, new string) string { return strings.Replace(string(good), old, new, 1) }
	other, _ := newTestState(t, "127.0.0.1:51820")
	for _, tc := range []struct{ name, file string }{
		{"not JSON", "{"},
		{"another format", replace(`"format": "blindrelay-device"`, `"format": "something"`)},
		{"a newer version", replace(`"version": 1`, `"version": 2`)},
		{"bad private key", replace(st.Private.Base64(), "AAAA")},
		{"public key of another device", replace(st.Private.Public().String(), other.Private.Public().String())},
		{"no device id", replace(`"device_id": "dev-1"`, `"device_id": ""`)},
		{"slot index out of range", replace(`"index": 3`, `"index": 300`)},
		{"slot index twice", replace(`"index": 3`, `"index": 2`)},
		{"bad pre-shared key", replace(st.Slots[0].Preshared.Base64(), "short")},
		{"owner key missing", replace(`"sign_public_key": "`, `"sign_public_key": "", "x": "`)},
	} {
		dir := t.TempDir()
		os.WriteFile(statePath(dir), []byte(tc.file), 0o600)
		if _, err := Open(Config{DataDir: dir}); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: %v, want ErrBadState", tc.name, err)
		}
	}
}
