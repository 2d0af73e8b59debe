package device

import (
	"bufio"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/wire"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

// section is one [Interface] or [Peer] of a wg-quick file, keys as written.
type section struct {
	name   string
	fields map[string]string
}

// parseWGQuick reads a wg-quick file as wg-quick does: sections, "Key =
// Value" lines, # comments.
func parseWGQuick(t *testing.T, conf string) []section {
	t.Helper()
	var out []section
	sc := bufio.NewScanner(strings.NewReader(conf))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			out = append(out, section{name: strings.Trim(line, "[]"), fields: map[string]string{}})
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || len(out) == 0 {
				t.Fatalf("wg-quick line %q", line)
			}
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if _, dup := out[len(out)-1].fields[k]; dup {
				t.Fatalf("wg-quick: %s twice in a section", k)
			}
			out[len(out)-1].fields[k] = v
		}
	}
	return out
}

// uapiFromWGQuick translates wg-quick sections into wireguard-go's UAPI, as
// `wg setconf` would (wg-quick's own keys, Address and MTU, are for the
// interface, not for WireGuard).
func uapiFromWGQuick(t *testing.T, secs []section, endpoint string) string {
	t.Helper()
	hexKey := func(b64 string) string {
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil || len(b) != 32 {
			t.Fatalf("key %q: %v", b64, err)
		}
		return hex.EncodeToString(b)
	}
	var b strings.Builder
	for _, s := range secs {
		f := s.fields
		switch s.name {
		case "Interface":
			b.WriteString("private_key=" + hexKey(f["PrivateKey"]) + "\nreplace_peers=true\n")
		case "Peer":
			b.WriteString("public_key=" + hexKey(f["PublicKey"]) + "\n")
			if psk := f["PresharedKey"]; psk != "" {
				b.WriteString("preshared_key=" + hexKey(psk) + "\n")
			}
			b.WriteString("endpoint=" + endpoint + "\n")
			if ka := f["PersistentKeepalive"]; ka != "" {
				b.WriteString("persistent_keepalive_interval=" + ka + "\n")
			}
			b.WriteString("replace_allowed_ips=true\n")
			for _, ip := range strings.Split(f["AllowedIPs"], ",") {
				b.WriteString("allowed_ip=" + strings.TrimSpace(ip) + "\n")
			}
		default:
			t.Fatalf("unknown section [%s]", s.name)
		}
	}
	return b.String()
}

// TestWGQuick checks the wg-quick file field by field, then loads it into
// wireguard-go and compares the result with the configuration Run uses.
func TestWGQuick(t *testing.T) {
	t.Parallel()
	st, k := newTestState(t, "relay.example:51820")
	dir := t.TempDir()
	if err := saveState(dir, st); err != nil {
		t.Fatal(err)
	}
	d, err := Open(Config{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := d.WGQuick()
	if err != nil {
		t.Fatal(err)
	}
	secs := parseWGQuick(t, conf)
	if len(secs) != 6 || secs[0].name != "Interface" {
		t.Fatalf("sections %+v", secs)
	}
	ifc := secs[0].fields
	wantAddr := fmt.Sprintf("10.77.0.1/32, fdb1:d4e1:a7ff::1/128, %s/128", wire.MgmtAddr(st.Private.Public()))
	if ifc["PrivateKey"] != st.Private.Base64() || ifc["Address"] != wantAddr || ifc["MTU"] != "1280" || len(ifc) != 3 {
		t.Errorf("[Interface] %v", ifc)
	}
	relay := secs[1].fields
	if relay["PublicKey"] != k.relay.Public().String() || relay["AllowedIPs"] != "fdb1:d4e1:a700::1/128" ||
		relay["Endpoint"] != "relay.example:51820" || relay["PersistentKeepalive"] != "25" || relay["PresharedKey"] != "" {
		t.Errorf("relay [Peer] %v", relay)
	}
	for i := range 4 {
		p := secs[2+i].fields
		a4, _ := wire.SlotAddr4(i)
		a6, _ := wire.SlotAddr6(i)
		if p["PublicKey"] != k.browsers[i].Public().String() || p["PresharedKey"] != k.psks[i].Base64() ||
			p["AllowedIPs"] != fmt.Sprintf("%s/32, %s/128", a4, a6) || p["Endpoint"] != "relay.example:51820" ||
			p["PersistentKeepalive"] != "" {
			t.Errorf("slot %d [Peer] %v", i, p)
		}
	}

	// The same interface in wireguard-go, once from the file and once as
	// Run configures it.
	endpoint := netip.MustParseAddrPort("192.0.2.1:51820")
	f, err := st.iface(DefaultMTU)
	if err != nil {
		t.Fatal(err)
	}
	fromFile := uapiGet(t, uapiFromWGQuick(t, secs, endpoint.String()))
	fromRun := uapiGet(t, f.uapi(0, endpoint))
	if !slices.Equal(fromFile, fromRun) {
		t.Fatalf("wg-quick file and Run configure different interfaces:\nfile: %q\nrun:  %q", fromFile, fromRun)
	}
	if len(fromRun) < 5 {
		t.Fatalf("suspiciously little configuration: %q", fromRun)
	}
}

// uapiGet configures a fresh wireguard-go device with uapi and returns its
// configuration as it reports it (sorted, without counters and the port).
func uapiGet(t *testing.T, uapi string) []string {
	t.Helper()
	tunDev, _, err := netstack.CreateNetTUN([]netip.Addr{wire.DeviceSessionAddr4}, nil, DefaultMTU)
	if err != nil {
		t.Fatal(err)
	}
	dev := device.NewDevice(tunDev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelSilent, ""))
	defer dev.Close()
	if err := dev.IpcSet(uapi); err != nil {
		t.Fatalf("IpcSet: %v\n%s", err, uapi)
	}
	get, err := dev.IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	// Group the lines per peer, so that the order of peers (a map in
	// wireguard-go) does not matter.
	var out []string
	cur := ""
	for _, line := range strings.Split(strings.TrimSpace(get), "\n") {
		key, _, _ := strings.Cut(line, "=")
		switch key {
		case "listen_port", "rx_bytes", "tx_bytes", "last_handshake_time_sec", "last_handshake_time_nsec", "protocol_version":
			continue
		case "public_key":
			if cur != "" {
				out = append(out, cur)
			}
			cur = ""
		}
		cur += line + "\n"
	}
	out = append(out, cur)
	slices.Sort(out)
	return out
}
