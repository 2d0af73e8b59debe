package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRelayLoad builds the relay and devicesim, runs relayload with five
// devices against a real relay process (SQLite, and PostgreSQL when
// BLINDRELAY_TEST_POSTGRES_URL is set) and checks that all came online and
// that the numbers are sane.
func TestRelayLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a relay and devicesim processes; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("relayload reads /proc")
	}
	tests := []struct {
		name string
		db   func(t *testing.T) string // --database-url, "" for SQLite
	}{
		{"sqlite", func(*testing.T) string { return "" }},
		{"postgres", func(t *testing.T) string {
			u := os.Getenv("BLINDRELAY_TEST_POSTGRES_URL")
			if u == "" {
				if os.Getenv("CI") != "" {
					t.Fatal("BLINDRELAY_TEST_POSTGRES_URL is not set; CI must run the PostgreSQL tests")
				}
				t.Skip("BLINDRELAY_TEST_POSTGRES_URL is not set; skipping PostgreSQL test")
			}
			return u
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dbURL := tt.db(t)
			const n = 5
			args := []string{
				"--count", "5", "--window", "3s", "--timeout", "2m", "--json",
				"--work-dir", t.TempDir(), "--devicesim-cpus", "",
			}
			if dbURL != "" {
				args = append(args, "--database-url", dbURL)
			}
			var stdout bytes.Buffer
			noEnv := func(string) string { return "" }
			if code := run(t.Context(), args, noEnv, &stdout, t.Output()); code != 0 {
				t.Fatalf("relayload exited with %d; stdout:\n%s", code, stdout.String())
			}
			var r Result
			if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
				t.Fatalf("result is not JSON: %v\n%s", err, stdout.String())
			}
			wantDB := "sqlite"
			if dbURL != "" {
				wantDB = "postgres"
			}
			checks := []struct {
				what string
				ok   bool
			}{
				{"devices = 5", r.Devices == n},
				{"database " + wantDB, r.Database == wantDB},
				{"one devicesim process", r.Processes == 1},
				{"all online", r.AllOnline && r.Online == n},
				{"all control connections", r.ControlConnected == n},
				{"none went offline while connecting", r.OfflineWhileConnecting == 0},
				{"all online after the window", r.OnlineAfterWindow == n && r.OfflineInWindow == 0},
				{"times in order", 0 < r.FirstOnlineSeconds && r.FirstOnlineSeconds <= r.AllOnlineSeconds && r.AllOnlineSeconds <= r.ControlSeconds && r.AllOnlineSeconds < 120},
				{"pairing took time", r.PairSeconds > 0},
				{"relay RSS between 1 MiB and 1 GiB", r.RSSIdleKiB > 1<<10 && r.RSSSteadyKiB > 1<<10 && r.RSSPeakKiB < 1<<20},
				{"peak ≥ steady", r.RSSPeakKiB >= r.RSSSteadyKiB},
				{"RSS per device under 10 MiB", r.RSSPerDeviceKiB > -10<<10 && r.RSSPerDeviceKiB < 10<<10},
				{"connect CPU under 1 s per device", r.ConnectCPUSeconds >= 0 && r.ConnectCPUPerDeviceMs < 1000},
				{"net connect CPU ≤ raw", r.ConnectCPUPerDeviceNetMs <= r.ConnectCPUPerDeviceMs},
				{"0 ≤ handshake CPU ≤ net connect CPU", 0 <= r.HandshakeCPUPerDeviceMs && r.HandshakeCPUPerDeviceMs <= r.ConnectCPUPerDeviceNetMs},
				{"device-seconds online while connecting", r.ConnectDeviceSeconds > 0 && r.ConnectDeviceSeconds <= n*r.ControlSeconds},
				{"at least one device list", r.ListCalls >= 1},
				{"steady CPU within the machine", r.SteadyCPUPercent >= 0 && r.SteadyCPUPercent <= 100*float64(runtime.NumCPU())},
				{"window", r.WindowSeconds == 3},
				{"threads", r.ThreadsIdle > 0 && r.ThreadsOnline > 0},
				{"devicesim RSS", r.SimRSSKiB > 0},
			}
			for _, c := range checks {
				if !c.ok {
					t.Errorf("not %s", c.what)
				}
			}
			if t.Failed() {
				t.Logf("result:\n%s", stdout.String())
			}
		})
	}
}

func TestParseOptions(t *testing.T) {
	t.Parallel()
	env := func(k string) string {
		if k == "BLINDRELAY_DATABASE_URL" {
			return "postgres://from-env"
		}
		return ""
	}
	o, err := parseOptions(nil, env)
	if err != nil {
		t.Fatal(err)
	}
	if o.count != 100 || o.window != 30*time.Second || o.timeout != defaultTimeout(100) || o.databaseURL != "postgres://from-env" || o.simCPUs != "auto" {
		t.Errorf("defaults: %+v", o)
	}
	if o, _ := parseOptions([]string{"--database-url", "postgres://flag"}, env); o.databaseURL != "postgres://flag" {
		t.Errorf("--database-url does not win over the environment: %q", o.databaseURL)
	}
	if _, err := parseOptions([]string{"--help"}, env); err != flag.ErrHelp {
		t.Errorf("--help: %v", err)
	}
	for _, args := range [][]string{
		{"--count", "0"}, {"--count", "100001"}, {"--per-process", "0"}, {"--window", "0s"},
		{"--timeout", "-1s"}, {"--devicesim-gomaxprocs", "-1"}, {"extra"},
	} {
		if _, err := parseOptions(args, env); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
	var out bytes.Buffer
	printUsage(&out)
	if strings.Contains(out.String(), "from-env") || !strings.Contains(out.String(), "-count") {
		t.Errorf("usage:\n%s", out.String())
	}
}

func TestParseStatCPU(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, stat string
		user, sys  time.Duration
		wantErr    bool
	}{
		{"plain", "1234 (relay) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 31 0 0 20 0 9 0 100 0 0",
			2500 * time.Millisecond, 310 * time.Millisecond, false},
		{"name with spaces and parens", "7 (a) b (c)) R 1 7 7 0 -1 0 0 0 0 0 3 4 0 0 20 0 1 0 1 0 0",
			30 * time.Millisecond, 40 * time.Millisecond, false},
		{"no name", "1234 relay S 1", 0, 0, true},
		{"short", "1234 (relay) S 1 2 3", 0, 0, true},
		{"not a number", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 4 0 0", 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, sys, err := parseStatCPU([]byte(tt.stat))
			if (err != nil) != tt.wantErr || user != tt.user || sys != tt.sys {
				t.Errorf("parseStatCPU = %v, %v, %v; want %v, %v, error %v", user, sys, err, tt.user, tt.sys, tt.wantErr)
			}
		})
	}
}

func TestReadProcSelf(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	s, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !s.Exists || s.RSSKiB <= 0 || s.HWMKiB < s.RSSKiB || s.Threads <= 0 || s.FDs <= 0 || s.CPU < 0 {
		t.Errorf("readProc(self) = %+v", s)
	}
	if _, err := readProc(-1); err == nil {
		t.Error("readProc(-1): no error")
	}
}

func TestSplit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		count, per int
		want       []int
	}{
		{5, 2000, []int{5}},
		{2000, 2000, []int{2000}},
		{2001, 2000, []int{1001, 1000}},
		{10000, 2000, []int{2000, 2000, 2000, 2000, 2000}},
		{7, 3, []int{3, 2, 2}},
	}
	for _, tt := range tests {
		got := split(tt.count, tt.per)
		if !slices.Equal(got, tt.want) {
			t.Errorf("split(%d, %d) = %v, want %v", tt.count, tt.per, got, tt.want)
		}
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		i    uint64
		want string
	}{
		{0, "198.18.0.0"},
		{pairsPerClient - 1, "198.18.0.0"},
		{pairsPerClient, "198.18.0.1"},
		{256 * pairsPerClient, "198.18.1.0"},
		{65536 * pairsPerClient, "198.19.0.0"},
		{(1<<17 - 1) * pairsPerClient, "198.19.255.255"},
		{(1 << 17) * pairsPerClient, "198.18.0.0"}, // wraps within 198.18.0.0/15
	}
	for _, tt := range tests {
		if got := clientAddr(tt.i).String(); got != tt.want {
			t.Errorf("clientAddr(%d) = %s, want %s", tt.i, got, tt.want)
		}
	}
}

func TestLogCounter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "relay.log")
	c := newLogCounter(path, msgDeviceOnline, msgControlConnected)
	if got := c.count(msgDeviceOnline); got != 0 {
		t.Errorf("no log yet: %d", got)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func(s string) {
		t.Helper()
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	write(`{"time":"x","level":"INFO","msg":"mgmt: device online","device_id":"a"}` + "\n")
	write(`{"time":"x","level":"INFO","msg":"mgmt: device online is not this"}` + "\n")
	write(`not json mgmt: device online` + "\n")
	write(`{"time":"x","level":"INFO","msg":"mgmt: control connected","device_id":"a"}` + "\n")
	write(`{"time":"x","level":"INFO","msg":"mgmt: dev`) // half a line
	if got := c.count(msgDeviceOnline); got != 1 {
		t.Errorf("device online = %d, want 1", got)
	}
	write(`ice online","device_id":"b"}` + "\n")
	if got := c.count(msgDeviceOnline); got != 2 {
		t.Errorf("device online after the rest of the line = %d, want 2", got)
	}
	if got := c.count(msgControlConnected); got != 1 {
		t.Errorf("control connected = %d, want 1", got)
	}
}

func TestPrintResult(t *testing.T) {
	t.Parallel()
	r := &Result{Devices: 10, Processes: 1, Database: "sqlite", Online: 10, AllOnline: true, RSSIdleKiB: 30000, RSSSteadyKiB: 31000, RSSPerDeviceKiB: 100}
	var table, js bytes.Buffer
	if err := printResult(&table, r, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"relay RSS per device", "100.0 KiB", "10 of 10", "connect CPU", "steady-state CPU", "not pinned"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	if err := printResult(&js, r, true); err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || back != *r {
		t.Errorf("JSON round trip: %v\n%s", err, js.String())
	}
}

func TestScrubEnv(t *testing.T) {
	t.Parallel()
	got := scrubEnv([]string{"PATH=/bin", "BLINDRELAY_DATABASE_URL=x", "GOMAXPROCS=8", "GODEBUG=gctrace=1", "HOME=/root"})
	want := []string{"PATH=/bin", "GODEBUG=gctrace=1", "HOME=/root"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("scrubEnv = %q, want %q", got, want)
	}
}
