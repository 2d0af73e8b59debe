package tunnel_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/netip"

	"github.com/blindrelay/blindrelay/pkg/tunnel"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// A session to a device's web UI through the relay, with key slot 0.
func Example() {
	var slotKey wgkey.Private  // the slot's browser key, opened from its sealed blob
	var deviceKey wgkey.Public // the device's WireGuard public key
	var psk wgkey.Preshared    // the slot's pre-shared key

	ctx := context.Background()
	tun, err := tunnel.Dial(ctx, tunnel.Config{
		URL:           "wss://relay.example/api/v1/devices/DEVICE/tunnel?slot=0",
		Header:        http.Header{"Cookie": {"session=..."}},
		PrivateKey:    slotKey,
		PeerPublicKey: deviceKey,
		PresharedKey:  psk,
		LocalAddrs:    []netip.Addr{netip.MustParseAddr("10.77.1.1"), netip.MustParseAddr("fdb1:d4e1:a7ff::1:1")},
		PeerAddrs:     []netip.Prefix{netip.MustParsePrefix("10.77.0.1/32"), netip.MustParsePrefix("fdb1:d4e1:a7ff::1/128")},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer tun.Close()

	resp, err := tun.HTTPClient().Get("http://10.77.0.1/")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d bytes of the device's page; %+v\n", len(page), tun.Stats())
}
