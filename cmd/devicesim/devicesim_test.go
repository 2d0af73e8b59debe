package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/device"
	"github.com/blindrelay/blindrelay/pkg/device/devicetest"
	"github.com/blindrelay/blindrelay/pkg/device/wallbox"
)

func TestMain(m *testing.M) {
	clientOptions = devicetest.KDFOptions()
	os.Exit(m.Run())
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type result struct {
	code           int
	stdout, stderr string
}

// runSim runs devicesim with args and env until it returns.
func runSim(ctx context.Context, env map[string]string, args ...string) result {
	var stdout, stderr syncBuffer
	code := run(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}} {
		r := runSim(t.Context(), nil, args...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d", args, r.code)
		}
		fs := newFlagSet(&options{})
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(r.stdout, "-"+f.Name) {
				t.Errorf("--help lacks -%s", f.Name)
			}
		})
		for _, env := range []string{envPassword, envToken, envUIPassword, "/api/download?size=N", "Digest"} {
			if !strings.Contains(r.stdout, env) {
				t.Errorf("--help lacks %s", env)
			}
		}
	}
	// The README documents every flag too.
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	newFlagSet(&options{}).VisitAll(func(f *flag.Flag) {
		if !bytes.Contains(readme, []byte("--"+f.Name)) {
			t.Errorf("README.md lacks --%s", f.Name)
		}
	})
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no data dir", []string{"--token", "x"}, "--data-dir is required"},
		{"token and email", []string{"--data-dir", dir, "--token", "x", "--email", "a@b.c", "--server", "https://x"}, "exclude each other"},
		{"email without server", []string{"--data-dir", dir, "--email", "a@b.c"}, "--email needs --server"},
		{"count 0", []string{"--data-dir", dir, "--count", "0"}, "--count 0"},
		{"slots 17", []string{"--data-dir", dir, "--slots", "17"}, "--slots 17"},
		{"bad prefix", []string{"--data-dir", dir, "--uid-prefix", "a b"}, "--uid-prefix"},
		{"bad server", []string{"--data-dir", dir, "--server", "relay.example"}, "--server"},
		{"bad ui-listen", []string{"--data-dir", dir, "--ui-listen", "8080"}, "--ui-listen"},
		{"stray argument", []string{"--data-dir", dir, "extra"}, "unexpected argument"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
		{"email without password", []string{"--data-dir", dir, "--email", "a@b.c", "--server", "https://x"}, "BLINDRELAY_PASSWORD"},
	} {
		r := runSim(t.Context(), nil, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tc.name, r.code, r.stderr, tc.want)
		}
	}
	// Not paired and nothing to pair with: a runtime failure.
	r := runSim(t.Context(), nil, "--data-dir", dir)
	if r.code != 1 || !strings.Contains(r.stderr, "give --token or --email") {
		t.Errorf("unpaired without a token: exit %d, %q", r.code, r.stderr)
	}
}

// freeAddr returns a loopback TCP address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestPairAndRun pairs two wallboxes with a token against a real relay,
// writes their wg-quick files, starts again from the state alone and
// serves device 0's UI locally until interrupted.
func TestPairAndRun(t *testing.T) {
	t.Parallel()
	r := devicetest.NewRelay(t)
	u := r.NewUser(t)
	dir := filepath.Join(t.TempDir(), "sim")
	wg := filepath.Join(t.TempDir(), "wg.conf")
	env := map[string]string{envToken: u.Token(t, "sim", 2)}

	first := runSim(t.Context(), env, "--server", r.URL, "--insecure", "--data-dir", dir, "--count", "2",
		"--uid-prefix", "warp3", "--slots", "2", "--wg-quick", wg, "--pair-only")
	if first.code != 0 {
		t.Fatalf("pairing: exit %d\n%s", first.code, first.stderr)
	}
	devs, err := u.Client.Devices(t.Context())
	if err != nil || len(devs) != 2 {
		t.Fatalf("the relay lists %d devices (%v)", len(devs), err)
	}
	var uids []string
	for i, dev := range devs {
		if !strings.HasPrefix(dev.UID, "warp3-") || len(dev.UID) != len("warp3-AbCd") || dev.SlotsTotal != 2 || dev.Firmware != wallbox.DefaultFirmware {
			t.Errorf("device %d at the relay: %+v", i, dev)
		}
		if !strings.Contains(first.stdout, dev.UID) || !strings.Contains(first.stdout, dev.ID) {
			t.Errorf("the output lacks %s: %s", dev.UID, first.stdout)
		}
		uids = append(uids, dev.UID)
	}
	for i := range 2 {
		sub := filepath.Join(dir, fmt.Sprintf("device-%04d", i))
		if _, err := device.Open(device.Config{DataDir: sub}); err != nil {
			t.Errorf("device %d: %v", i, err)
		}
		conf := filepath.Join(filepath.Dir(wg), fmt.Sprintf("wg-%d.conf", i))
		fi, err := os.Stat(conf)
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", conf, fi, err)
		}
		b, _ := os.ReadFile(conf)
		if !bytes.Contains(b, []byte("[Interface]")) || bytes.Count(b, []byte("[Peer]")) != 3 {
			t.Errorf("%s:\n%s", conf, b)
		}
	}

	// Started again without a token: the same devices, run until
	// interrupted, device 0's UI also on a local port.
	ui := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan result, 1)
	go func() {
		done <- runSim(ctx, nil, "--server", r.URL, "--insecure", "--data-dir", dir, "--count", "2", "--ui-listen", ui)
	}()
	var st wallbox.Status
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := http.Get("http://" + ui + "/api/status")
		if err == nil {
			err = json.NewDecoder(res.Body).Decode(&st)
			res.Body.Close()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("device 0's UI never answered: %v\n%s", err, (<-done).stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !slices.Contains(uids, st.UID) || st.Firmware != wallbox.DefaultFirmware {
		t.Errorf("device 0's status %+v, want one of %v", st, uids)
	}
	cancel()
	select {
	case r := <-done:
		if r.code != 0 {
			t.Fatalf("after the interrupt: exit %d\n%s", r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, "devices stopped") {
			t.Errorf("no clean stop in the log:\n%s", r.stderr)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("devicesim did not stop")
	}
	after, _ := u.Client.Devices(t.Context())
	if len(after) != 2 {
		t.Errorf("the relay lists %d devices after the restart, want the same 2", len(after))
	}
}

// TestPairWithEmail pairs three devices with one log-in.
func TestPairWithEmail(t *testing.T) {
	t.Parallel()
	r := devicetest.NewRelay(t)
	u := r.NewUser(t)
	dir := t.TempDir()
	res := runSim(t.Context(), map[string]string{envPassword: u.Password},
		"--server", r.URL, "--insecure", "--email", u.Email, "--data-dir", dir, "--count", "3", "--pair-only")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s", res.code, res.stderr)
	}
	devs, err := u.Client.Devices(t.Context())
	if err != nil || len(devs) != 3 {
		t.Fatalf("the relay lists %d devices (%v)", len(devs), err)
	}
	wrong := runSim(t.Context(), map[string]string{envPassword: "wrong"},
		"--server", r.URL, "--insecure", "--email", u.Email, "--data-dir", t.TempDir(), "--pair-only")
	if wrong.code != 1 || !strings.Contains(wrong.stderr, "invalid_credentials") {
		t.Errorf("wrong password: exit %d\n%s", wrong.code, wrong.stderr)
	}
}

func TestWGQuickPath(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		path string
		i, n int
		want string
	}{
		{"wg.conf", 0, 1, "wg.conf"},
		{"wg.conf", 3, 5, "wg-3.conf"},
		{"/x/y/wg0", 1, 2, "/x/y/wg0-1"},
	} {
		if got := wgQuickPath(tc.path, tc.i, tc.n); got != tc.want {
			t.Errorf("wgQuickPath(%q, %d, %d) = %q, want %q", tc.path, tc.i, tc.n, got, tc.want)
		}
	}
}
