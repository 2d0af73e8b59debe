package server_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/device"
	"github.com/blindrelay/blindrelay/pkg/mail"
	"github.com/blindrelay/blindrelay/pkg/server"
	"github.com/blindrelay/blindrelay/pkg/store/sqlite"
	"github.com/blindrelay/blindrelay/pkg/tunnel"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// TestUDPSide runs real devices (pkg/device) against the assembled relay:
// they come online over the bound UDP port, a session (pkg/tunnel) reaches
// a device's UI through the API's tunnel route, an owner's DELETE makes
// the management tunnel forget the device at once, a shutdown with a live
// session ends it and returns promptly, and presence a crashed run left
// behind is cleared when the next run starts.
func TestUDPSide(t *testing.T) {
	t.Parallel()
	cfg := newTestConfig(t)
	cfg.Node = "node-a"
	cfg.Account.MinKDF = zkcrypto.TestKDFParams()
	cfg.Account.DefaultKDF = zkcrypto.TestKDFParams()
	s, stop := startStoppable(t, cfg)
	t.Cleanup(func() { stop() })
	if s.UDPAddr().Port() == 0 || !s.UDPAddr().Addr().IsLoopback() || s.PublicUDP() != s.UDPAddr().String() {
		t.Fatalf("UDPAddr %s, PublicUDP %s: want a bound loopback port, told as it is", s.UDPAddr(), s.PublicUDP())
	}
	u := newUDPTestUser(t, s, cfg, "owner@example.com")

	// Two devices come online; a session reaches the first one's UI.
	kept := runTestDevice(t, s, u, "warp2-Keep")
	gone := runTestDevice(t, s, u, "warp2-Gone")
	for _, d := range []*device.Device{kept.d, gone.d} {
		waitOnline(t, u.c, d.Info().DeviceID, true)
		if !s.DeviceOnlineForTest(d.Info().DeviceID) {
			t.Fatalf("the API lists %s online, the management tunnel does not", d.Info().UID)
		}
	}
	tun := u.dial(t, s, kept.d.Info())
	if b := getPage(t, tun); b != "hello from warp2-Keep" {
		t.Fatalf("device page %q", b)
	}

	// The owner deletes the other: the management tunnel forgets it at
	// once, although the device keeps its tunnel up.
	goneID := gone.d.Info().DeviceID
	if err := u.c.DeleteDevice(t.Context(), goneID); err != nil {
		t.Fatal(err)
	}
	if s.DeviceOnlineForTest(goneID) {
		t.Error("a deleted device is still online in the management tunnel")
	}
	if s.DeviceOnlineForTest(goneID) || !s.DeviceOnlineForTest(kept.d.Info().DeviceID) {
		t.Error("online state wrong after the delete")
	}
	gone.stop()

	// Shutdown with a live session: Serve ends it and returns promptly.
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("shutdown with a live session took %s", d)
	}
	kept.stop()
	deadline := time.Now().Add(10 * time.Second)
	for tun.Stats().Connected {
		if time.Now().After(deadline) {
			t.Fatal("the session's WebSocket is still up after the relay stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	tun.Close()

	// A crash leaves the device online at this node in the store; the
	// next run clears that before it serves anything.
	st, err := sqlite.Open(t.Context(), filepath.Join(cfg.DataDir, "blindrelay.db"))
	if err != nil {
		t.Fatal(err)
	}
	id := kept.d.Info().DeviceID
	if err := st.SetPresence(t.Context(), id, netip.MustParseAddrPort("127.0.0.1:9"), true, cfg.Node, time.Now()); err != nil {
		t.Fatal(err)
	}
	st.Close()
	s, stop = startStoppable(t, cfg)
	c := apiClient(t, s)
	if _, _, err := c.Login(t.Context(), u.email, u.password); err != nil {
		t.Fatal(err)
	}
	devs, err := c.Devices(t.Context())
	if err != nil || len(devs) != 1 || devs[0].ID != id || devs[0].Online {
		t.Errorf("devices after a restart: %+v, %v; want %s offline", devs, err, id)
	}
}

// udpTestUser is a logged-in user of a test relay with their keys.
type udpTestUser struct {
	c        *apiclient.Client
	keys     *zkcrypto.UserKeys
	email    string
	password []byte
}

func newUDPTestUser(t *testing.T, s *server.Server, cfg server.Config, email string) *udpTestUser {
	t.Helper()
	ctx := t.Context()
	u := &udpTestUser{c: apiClient(t, s), email: email, password: []byte("correct horse battery staple")}
	var err error
	if u.keys, err = u.c.Register(ctx, email, u.password, "en", zkcrypto.KDFParams{}); err != nil {
		t.Fatal(err)
	}
	var link string
	deadline := time.Now().Add(10 * time.Second)
	for link == "" {
		link, _ = mail.LatestLink(filepath.Join(cfg.DataDir, "outbox"), email, account.MailVerifyEmail)
		if time.Now().After(deadline) {
			t.Fatal("no verification mail")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := u.c.Verify(ctx, apiclient.ParseToken(link)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := u.c.Login(ctx, email, u.password); err != nil {
		t.Fatal(err)
	}
	return u
}

// testDevice is a paired device running until stop.
type testDevice struct {
	d    *device.Device
	stop func()
}

// runTestDevice pairs a device with a token of u and runs it with a UI
// that greets with its UID.
func runTestDevice(t *testing.T, s *server.Server, u *udpTestUser, uid string) *testDevice {
	t.Helper()
	ctx := t.Context()
	info, err := u.c.CreatePairingToken(ctx, uid, 1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := u.c.NewPairingToken(ctx, info, u.keys.BoxPublic[:], u.keys.SignPublic)
	if err != nil {
		t.Fatal(err)
	}
	ui := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "hello from "+uid) })
	d, err := device.Pair(ctx, device.Config{DataDir: t.TempDir(), UID: uid, UI: ui, HTTPClient: client(s)}, tok.String())
	if err != nil {
		t.Fatalf("pair %s: %v", uid, err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	td := &testDevice{d: d}
	stopped := false
	td.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("device %s: %v", uid, err)
		}
	}
	t.Cleanup(td.stop)
	return td
}

// waitOnline waits until the device list shows the device online (or
// offline).
func waitOnline(t *testing.T, c *apiclient.Client, id string, online bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		devs, err := c.Devices(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devs {
			if d.ID == id && d.Online == online {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s never online=%v: %+v", id, online, devs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dial opens a session with the device on its first key slot.
func (u *udpTestUser) dial(t *testing.T, s *server.Server, info device.Info) *tunnel.Tunnel {
	t.Helper()
	slots, err := u.c.DeviceSlots(t.Context(), info.DeviceID)
	if err != nil || len(slots) == 0 {
		t.Fatalf("slots: %v %v", slots, err)
	}
	plain, err := u.keys.OpenSealed(slots[0].Sealed)
	if err != nil || len(plain) != 64 {
		t.Fatalf("open the slot's keys: %v", err)
	}
	var priv wgkey.Private
	var psk wgkey.Preshared
	copy(priv[:], plain[:32])
	copy(psk[:], plain[32:])
	v4, _ := wire.SlotAddr4(slots[0].Index)
	url := "wss" + strings.TrimPrefix(s.URL(), "https") + "/api/v1/devices/" + info.DeviceID + "/tunnel?slot=0"
	tun, err := tunnel.Dial(t.Context(), tunnel.Config{
		URL:           url,
		Header:        http.Header{"Authorization": {"Bearer " + u.c.SessionToken()}},
		HTTPClient:    client(s),
		PrivateKey:    priv,
		PresharedKey:  psk,
		PeerPublicKey: info.PublicKey,
		LocalAddrs:    []netip.Addr{v4},
		PeerAddrs:     []netip.Prefix{netip.PrefixFrom(wire.DeviceSessionAddr4, 32)},
	})
	if err != nil {
		t.Fatalf("tunnel.Dial: %v", err)
	}
	t.Cleanup(func() { tun.Close() })
	return tun
}

// getPage fetches the device's UI through tun.
func getPage(t *testing.T, tun *tunnel.Tunnel) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+wire.DeviceSessionAddr4.String()+"/", nil)
	resp, err := tun.HTTPClient().Do(req)
	if err != nil {
		t.Fatalf("GET through the tunnel: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestUDPListen checks that New binds --udp-listen (and says so when it
// cannot) and that Close releases the port of a relay that never served.
func TestUDPListen(t *testing.T) {
	t.Parallel()
	taken, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := newTestConfig(t)
	cfg.UDP.Listen = taken.LocalAddr().String()
	if _, err := server.New(t.Context(), cfg, testLogger(t)); err == nil || !strings.Contains(err.Error(), "--udp-listen") {
		t.Fatalf("New on a taken UDP port: %v, want a --udp-listen error", err)
	}

	cfg.UDP.Listen = "127.0.0.1:0"
	s, err := server.New(t.Context(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	addr := s.UDPAddr()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
	if err != nil {
		t.Fatalf("the UDP port is still bound after Close: %v", err)
	}
	again.Close()
}
