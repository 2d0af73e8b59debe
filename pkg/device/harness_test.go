package device

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: testLogLevel}))
}

// testKeys are the secrets around a hand-made device state: the owner's
// and a second user's keys, the relay's management key, and each slot's
// browser key as a browser gets it (by opening the sealed blob).
type testKeys struct {
	owner, other *zkcrypto.UserKeys
	relay        wgkey.Private
	browsers     map[int]wgkey.Private   // by slot index
	psks         map[int]wgkey.Preshared // from the sealed blobs
}

// newTestState makes a paired device's state without a relay: slots 0..1
// for the owner ("user-owner") and 2..3 for another user ("user-other"),
// made and sealed by newSlots as pairing does.
func newTestState(t testing.TB, endpoint string) (*state, *testKeys) {
	t.Helper()
	k := &testKeys{browsers: map[int]wgkey.Private{}, psks: map[int]wgkey.Preshared{}}
	var err error
	if k.owner, err = zkcrypto.GenerateUserKeys(); err != nil {
		t.Fatal(err)
	}
	if k.other, err = zkcrypto.GenerateUserKeys(); err != nil {
		t.Fatal(err)
	}
	if k.relay, err = wgkey.NewPrivate(); err != nil {
		t.Fatal(err)
	}
	priv, err := wgkey.NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	own := owner{UserID: "user-owner", BoxPublicKey: k.owner.BoxPublic[:], SignPublicKey: k.owner.SignPublic}
	other := owner{UserID: "user-other", BoxPublicKey: k.other.BoxPublic[:], SignPublicKey: k.other.SignPublic}
	st := &state{
		UID:      "warp2-Test",
		DeviceID: "dev-1",
		Private:  priv,
		PairedAt: time.Now().UTC().Truncate(time.Second),
		Relay: relayInfo{
			URL: "https://relay.invalid", PublicKey: k.relay.Public(), Endpoint: endpoint,
			MgmtAddr: wire.MgmtAddr(priv.Public()), RelayMgmtAddr: wire.RelayMgmtAddr, ControlPort: wire.ControlPort,
		},
		Owner: own,
	}
	for _, u := range []struct {
		o     owner
		keys  *zkcrypto.UserKeys
		first int
	}{{own, k.owner, 0}, {other, k.other, 2}} {
		slots, uploads, err := newSlots(u.o, u.first, 2)
		if err != nil {
			t.Fatal(err)
		}
		st.Slots = append(st.Slots, slots...)
		for _, up := range uploads {
			plain, err := u.keys.OpenSealed(up.Sealed)
			if err != nil || len(plain) != 64 {
				t.Fatalf("slot %d: open sealed: %v (%d bytes)", up.Index, err, len(plain))
			}
			k.browsers[up.Index] = wgkey.Private(plain[:32])
			k.psks[up.Index] = wgkey.Preshared(plain[32:])
		}
	}
	if err := st.check(); err != nil {
		t.Fatal(err)
	}
	return st, k
}

// wgPeer is a wireguard-go interface on a netstack with a real UDP socket:
// the test's relay or browser.
type wgPeer struct {
	dev  *device.Device
	net  *netstack.Net
	port int
}

// newWGPeer brings up an interface with key priv and addresses addrs on
// UDP port listenPort (0: any), configured with the UAPI lines peers.
func newWGPeer(t testing.TB, name string, priv wgkey.Private, addrs []netip.Addr, listenPort int, peers string) *wgPeer {
	t.Helper()
	tunDev, tnet, err := netstack.CreateNetTUN(addrs, nil, DefaultMTU)
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t).With("peer", name)
	dev := device.NewDevice(tunDev, conn.NewDefaultBind(), wgLogger(log))
	t.Cleanup(dev.Close)
	cfg := "private_key=" + priv.Hex() + "\nlisten_port=" + strconv.Itoa(listenPort) + "\n" + peers
	if err := dev.IpcSet(cfg); err != nil {
		t.Fatalf("%s: IpcSet: %v", name, err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	port, err := boundPort(dev)
	if err != nil {
		t.Fatal(err)
	}
	return &wgPeer{dev: dev, net: tnet, port: port}
}

// localEndpoint is the loopback address of UDP port port.
func localEndpoint(port int) netip.AddrPort {
	return netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(port))
}

// browserUAPI configures a browser of slot i: its one peer is the device.
func browserUAPI(dev wgkey.Public, psk wgkey.Preshared, devicePort int) string {
	return "public_key=" + dev.Hex() + "\npreshared_key=" + psk.Hex() +
		"\nendpoint=" + localEndpoint(devicePort).String() +
		"\npersistent_keepalive_interval=0\nreplace_allowed_ips=true" +
		"\nallowed_ip=" + wire.DeviceSessionAddr4.String() + "/32\nallowed_ip=" + wire.DeviceSessionAddr6.String() + "/128\n"
}

// newBrowser brings up slot i's browser end towards the device on port
// devicePort.
func newBrowser(t testing.TB, st *state, k *testKeys, i, devicePort int) *wgPeer {
	t.Helper()
	return newWGPeer(t, "browser", k.browsers[i], slotAddrs(i), 0, browserUAPI(st.Private.Public(), k.psks[i], devicePort))
}

// slotAddrs are the addresses of slot i's browser.
func slotAddrs(i int) []netip.Addr {
	a4, _ := wire.SlotAddr4(i)
	a6, _ := wire.SlotAddr6(i)
	return []netip.Addr{a4, a6}
}

// httpClient returns a client whose connections go through p's tunnel.
func (p *wgPeer) httpClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				ap, err := netip.ParseAddrPort(addr)
				if err != nil {
					return nil, err
				}
				return p.net.DialContextTCPAddrPort(ctx, ap)
			},
			DisableKeepAlives: true,
		},
	}
}

// get fetches url through p and returns the body.
func (p *wgPeer) get(t testing.TB, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.httpClient().Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, res.Status, err)
	}
	return string(b)
}

// startDevice saves st in a new data directory and runs the device with ui
// until the test ends. It returns once the interface is up.
func startDevice(t testing.TB, st *state, ui http.Handler, tweak func(*Device)) (*Device, <-chan error) {
	t.Helper()
	dir := t.TempDir()
	if err := saveState(dir, st); err != nil {
		t.Fatal(err)
	}
	d, err := Open(Config{DataDir: dir, UI: ui, Firmware: "test 1", Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if tweak != nil {
		tweak(d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	waitFor(t, 10*time.Second, "the device to come up", func() bool { return d.ListenPort() != 0 })
	return d, done
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// goroutinesWith returns the stacks of goroutines that run code of any of
// pkgs, other than the test's own.
func goroutinesWith(pkgs ...string) []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "testing.(*T).Run") {
			continue
		}
		for _, p := range pkgs {
			if strings.Contains(g, p) {
				out = append(out, g)
				break
			}
		}
	}
	return out
}

// testLogLevel is the level of the tests' logs; BLINDRELAY_TEST_DEBUG=1
// shows wireguard-go's.
var testLogLevel = func() slog.Level {
	if os.Getenv("BLINDRELAY_TEST_DEBUG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}()
