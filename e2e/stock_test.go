package e2e

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	wgdevice "golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// TestStockWireGuard pairs a device with pkg/device, takes only the
// wg-quick file pairing emits, and runs the device from it with plain
// wireguard-go and a netstack serving HTTP on 10.77.0.1:80: no agent, no
// control protocol. A session through the relay reaches its web UI.
func TestStockWireGuard(t *testing.T) {
	t.Parallel()
	r := startRelay(t, relayOptions{quiet: true})
	u := newUser(t, r, "stock-"+rand8(t)+"@example.test")
	uid := "stock-" + rand8(t)
	marker := randomMarker()
	d := pairDevice(t, r, u.pairingToken(t, "stock"), uid, nil) // paired, never run
	info := d.Info()
	file, err := d.WGQuick()
	must(t, "WGQuick", err)

	wq := parseWGQuick(t, file)
	tunDev, tnet, err := netstack.CreateNetTUN(wq.addresses, nil, wq.mtu)
	must(t, "netstack", err)
	logger := testLogger(t, slog.LevelInfo).With("side", "stock device")
	wg := wgdevice.NewDevice(tunDev, conn.NewDefaultBind(), &wgdevice.Logger{
		Verbosef: wgdevice.DiscardLogf,
		Errorf:   func(f string, args ...any) { logger.Warn(fmt.Sprintf(f, args...)) },
	})
	t.Cleanup(wg.Close)
	must(t, "IpcSet", wg.IpcSet(wq.uapi))
	must(t, "Up", wg.Up())
	ln, err := tnet.ListenTCPAddrPort(netip.AddrPortFrom(wire.DeviceSessionAddr4, wire.DeviceUIPort))
	must(t, "listen on the tunnel address", err)
	srv := &http.Server{Handler: markedUI(uid, marker), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	t.Logf("stock device online after %s", u.waitOnline(t, info.DeviceID, 20*time.Second).Round(time.Millisecond))
	k := u.openSlot(t, info.DeviceID, 0)
	url := "wss" + strings.TrimPrefix(r.srv.URL(), "https") + "/api/v1/devices/" + info.DeviceID + "/tunnel?slot=0"
	tun := u.dialSession(t, url, r.httpClient(), info.PublicKey, k)
	checkPages(t, tun, uid, marker)
	checkParallel(t, tun, marker, parallelRequests)
}

// wgQuick is a wg-quick(8) file turned into what wireguard-go and a
// netstack need.
type wgQuick struct {
	addresses []netip.Addr
	mtu       int
	uapi      string // wireguard-go's IpcSet configuration
}

// parseWGQuick reads the keys wg-quick and wg(8) understand that a device
// file uses: [Interface] PrivateKey, ListenPort, Address, MTU; [Peer]
// PublicKey, PresharedKey, AllowedIPs, Endpoint, PersistentKeepalive.
// Anything else fails the test, so that a new key in the file is noticed.
func parseWGQuick(t *testing.T, file string) wgQuick {
	t.Helper()
	wq := wgQuick{mtu: 1420}
	var b strings.Builder
	section := ""
	sc := bufio.NewScanner(strings.NewReader(file))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if line == "[Interface]" || line == "[Peer]" {
			section = line
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("wg-quick line %d: %q", n, line)
		}
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		bad := func(err error) { t.Fatalf("wg-quick line %d: %s: %v", n, k, err) }
		switch section + k {
		case "[Interface]PrivateKey":
			b.WriteString("private_key=" + keyHex(t, v) + "\nreplace_peers=true\n")
		case "[Interface]ListenPort":
			b.WriteString("listen_port=" + v + "\n")
		case "[Interface]MTU":
			mtu, err := strconv.Atoi(v)
			if err != nil {
				bad(err)
			}
			wq.mtu = mtu
		case "[Interface]Address":
			for a := range strings.SplitSeq(v, ",") {
				p, err := netip.ParsePrefix(strings.TrimSpace(a))
				if err != nil {
					bad(err)
				}
				wq.addresses = append(wq.addresses, p.Addr())
			}
		case "[Peer]PublicKey":
			b.WriteString("public_key=" + keyHex(t, v) + "\nreplace_allowed_ips=true\n")
		case "[Peer]PresharedKey":
			b.WriteString("preshared_key=" + keyHex(t, v) + "\n")
		case "[Peer]AllowedIPs":
			for a := range strings.SplitSeq(v, ",") {
				p, err := netip.ParsePrefix(strings.TrimSpace(a))
				if err != nil {
					bad(err)
				}
				b.WriteString("allowed_ip=" + p.String() + "\n")
			}
		case "[Peer]Endpoint":
			ua, err := net.ResolveUDPAddr("udp", v)
			if err != nil {
				bad(err)
			}
			ap := ua.AddrPort() // an IPv4 address comes IPv4-mapped
			b.WriteString("endpoint=" + netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String() + "\n")
		case "[Peer]PersistentKeepalive":
			b.WriteString("persistent_keepalive_interval=" + v + "\n")
		default:
			t.Fatalf("wg-quick line %d: unexpected %s in section %q", n, k, section)
		}
	}
	if len(wq.addresses) == 0 || !strings.Contains(b.String(), "private_key=") {
		t.Fatalf("wg-quick file without Address or PrivateKey:\n%s", file)
	}
	wq.uapi = b.String()
	return wq
}

// keyHex turns a base64 key into the hex IpcSet wants.
func keyHex(t *testing.T, b64 string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(b) != 32 {
		t.Fatalf("wg-quick key: %v", err)
	}
	return hex.EncodeToString(b)
}
