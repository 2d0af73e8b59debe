package e2e

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/store/postgres/pgtest"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// Sizes of the bulk transfers. The issue asks for 100 MB down; with -short
// the download is smaller (see TestDeviceSession).
const (
	downloadSize      = 100 << 20
	shortDownloadSize = 20 << 20
	uploadSize        = 20 << 20
	parallelRequests  = 16

	// recoverGoal is how fast the issue wants a session to serve again
	// after the relay or the device restarted, and a miss fails the test.
	// After a relay restart the tunnel's redial wakes the device at its
	// stored endpoint (pkg/mgmt Wake: about 1 s measured); after a device
	// reboot the tunnel's stall detector restarts the handshake (4-8 s
	// measured). BLINDRELAY_E2E_RECOVERY_GOAL=off only logs a miss, for a
	// machine too loaded to keep time.
	recoverGoal = 10 * time.Second
	// recoverBound is how long a poll waits at all before the test fails
	// for good, with slack for a loaded machine.
	recoverBound = 90 * time.Second
)

// TestDeviceSession is the whole of issue 3 on SQLite and on PostgreSQL:
// a user pairs a device (pkg/device with the emulated wallbox UI) with a
// pairing token, waits until it is online, opens a session exactly as
// blindctl connect does (pkg/tunnel with the slot keys opened by the
// user's key) and uses the device's web UI: pages, a large download and
// upload with checksums, the /ws echo, parallel requests. Then the relay
// restarts (once shutting down, once as if killed: the device hears
// nothing of it) and the device reboots, and each time the same tunnel
// serves again.
//
// All the while every UDP datagram the relay handles passes a recording
// proxy (the relay tells the device the proxy's address) and every tunnel
// WebSocket message a recording WebSocket proxy; at the end those, the
// database and the relay's logs are searched for the plaintext marker the
// device's pages carry and for every private and pre-shared key of the
// device and the session: the relay must have seen none of them.
func TestDeviceSession(t *testing.T) {
	t.Parallel()
	for _, db := range []string{"sqlite", "postgres"} {
		t.Run(db, func(t *testing.T) {
			t.Parallel()
			var opts relayOptions
			if db == "postgres" {
				opts.databaseURL = pgtest.URL(t)
			}
			size := int64(downloadSize)
			if testing.Short() {
				size = shortDownloadSize
			}
			runDeviceSession(t, opts, size)
		})
	}
}

func runDeviceSession(t *testing.T, opts relayOptions, downloadSize int64) {
	udpRec, wsRec := &capture{}, &capture{}
	udp := newUDPProxy(t, udpRec)
	opts.publicUDP = udp.addr().String()
	opts.quiet = true
	r := startRelay(t, opts)
	udp.setTarget(r.srv.UDPAddr())
	wsp := newWSProxy(t, r.srv.URL(), r.httpClient(), wsRec)

	u := newUser(t, r, "owner-"+rand8(t)+"@example.test")
	marker := randomMarker()
	uid := "warp2-" + rand8(t)
	d := pairDevice(t, r, u.pairingToken(t, "garage"), uid, markedUI(uid, marker))
	info := d.Info()
	dev := &runner{d: d}
	dev.run(t)
	t.Logf("device online after %s", u.waitOnline(t, info.DeviceID, 20*time.Second).Round(time.Millisecond))

	k := u.openSlot(t, info.DeviceID, 0)
	tunnelPath := "/api/v1/devices/" + info.DeviceID + "/tunnel?slot=0"
	start := time.Now()
	tun := u.dialSession(t, wsp.url(tunnelPath), nil, info.PublicKey, k)
	checkPages(t, tun, uid, marker)
	t.Logf("first page %s after Dial", time.Since(start).Round(time.Millisecond))
	checkDownload(t, tun, downloadSize)
	checkUpload(t, tun, marker, uploadSize)
	checkWebSocket(t, tun, marker)
	checkParallel(t, tun, marker, parallelRequests)

	serves := func() bool {
		b, err := get(t.Context(), tun, "/marker", 2*time.Second)
		return err == nil && bytes.Contains(b, []byte(marker))
	}

	// The relay restarts: the same tunnel serves again.
	r = r.restart(t)
	checkRecovery(t, "the relay restarted", poll(t, "the session after a relay restart", recoverBound, serves))
	u.waitOnline(t, info.DeviceID, 10*time.Second)

	// The relay crashes (SIGKILL) and comes back: the device hears no
	// goodbye. The UDP path is cut while the relay goes down, so that
	// nothing the stopping relay sends (its control connections' ends)
	// reaches the device.
	udp.setDown(true)
	r = r.restart(t)
	udp.setDown(false)
	checkRecovery(t, "the relay crashed and restarted", poll(t, "the session after a relay crash", recoverBound, serves))
	u.waitOnline(t, info.DeviceID, 10*time.Second)

	// The device reboots: the same.
	dev.stop(t)
	dev = &runner{d: d}
	dev.run(t)
	checkRecovery(t, "the device rebooted", poll(t, "the session after a device reboot", recoverBound, serves))
	checkPages(t, tun, uid, marker)

	// Zero knowledge.
	conf, err := d.WGQuick()
	must(t, "WGQuick", err)
	secrets := append(wgQuickSecrets(t, conf), []byte(marker),
		u.keys.BoxPrivate[:], u.keys.SignPrivate.Seed(), u.password)
	for _, s := range info.Slots { // every slot's browser keys, as a client opens them
		k := u.openSlot(t, info.DeviceID, s.Index)
		secrets = append(secrets, k.priv[:], k.psk[:])
	}
	if want := 1 + 2*len(info.Slots) + 4 + len(info.Slots); len(secrets) != want {
		t.Fatalf("%d secrets to look for, want %d", len(secrets), want)
	}
	tun.Close()
	dev.stop(t)
	logs := r.logs.Bytes()
	var db []byte
	if opts.databaseURL != "" {
		db = dumpPostgres(t, opts.databaseURL)
	}
	r.stop(t)
	if opts.databaseURL == "" {
		db = readSQLiteFiles(t, r.dataDir)
	}
	pub := info.PublicKey
	if !contains(db, pub[:]) {
		t.Fatal("positive control: the device's public key is not in the database dump; the scan sees nothing")
	}
	udpBytes, datagrams := udpRec.bytes()
	wsBytes, messages := wsRec.bytes()
	t.Logf("scanning %d datagrams (%d MB), %d WebSocket messages (%d MB), %d kB database, %d kB logs",
		datagrams, len(udpBytes)>>20, messages, len(wsBytes)>>20, len(db)>>10, len(logs)>>10)
	if int64(len(udpBytes)) < downloadSize || int64(len(wsBytes)) < downloadSize {
		t.Fatal("positive control: the captures hold less than the download; the proxies saw nothing")
	}
	scan := time.Now()
	var wg sync.WaitGroup
	for _, c := range []struct {
		where string
		data  []byte
	}{
		{"UDP datagrams", udpBytes},
		{"tunnel WebSocket messages", wsBytes},
		{"database", db},
		{"relay logs", logs},
		{"requests the relay received", r.seen.bytes()},
	} {
		wg.Go(func() {
			for i, s := range secrets {
				if enc, ok := find(c.data, s); ok {
					t.Errorf("%s contain secret %d (%s, %d bytes)", c.where, i, enc, len(s))
				}
			}
		})
	}
	wg.Wait()
	t.Logf("scanned in %s", time.Since(scan).Round(time.Millisecond))
}

// checkRecovery logs how long a session took to serve again after what
// happened, and fails the test if that missed recoverGoal while
// BLINDRELAY_E2E_RECOVERY_GOAL is set.
func checkRecovery(t *testing.T, what string, took time.Duration) {
	t.Helper()
	took = took.Round(time.Millisecond)
	if took <= recoverGoal {
		t.Logf("%s: the session serves again after %s", what, took)
		return
	}
	if os.Getenv("BLINDRELAY_E2E_RECOVERY_GOAL") != "off" {
		t.Errorf("%s: the session served again after %s, want within %s", what, took, recoverGoal)
		return
	}
	t.Logf("%s: the session serves again after %s, MISSING THE GOAL of %s (see recoverGoal)", what, took, recoverGoal)
}

// wgQuickSecrets returns the private and pre-shared keys of a wg-quick
// file.
func wgQuickSecrets(t *testing.T, conf string) [][]byte {
	t.Helper()
	var out [][]byte
	sc := bufio.NewScanner(strings.NewReader(conf))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch strings.TrimSpace(k) {
		case "PrivateKey", "PresharedKey":
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
			if err != nil || len(b) != wgkey.Size {
				t.Fatalf("wg-quick %s: %v", k, err)
			}
			out = append(out, b)
		}
	}
	return out
}
