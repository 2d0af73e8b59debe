//go:build !js

package tunnel

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/netstack"
)

const benchDownloadSize = 16 << 20

// download fetches size bytes and discards them.
func download(b *testing.B, c *http.Client, size int) {
	resp, err := c.Get(fmt.Sprintf("http://10.77.0.1/download?nosum&size=%d", size))
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || n != int64(size) {
		b.Fatalf("download: %d bytes, %v", n, err)
	}
}

// BenchmarkDownload measures bulk throughput device -> client through the
// whole chain on loopback: device netstack, WireGuard, UDP, the test
// forwarder, WebSocket over TLS, the Bind, WireGuard, client netstack.
func BenchmarkDownload(b *testing.B) {
	h := newHarness(b)
	tun := h.dial(b)
	c := tun.HTTPClient()
	download(b, c, 1<<20)
	b.SetBytes(benchDownloadSize)
	for b.Loop() {
		download(b, c, benchDownloadSize)
	}
}

// BenchmarkDownloadDirectUDP is the floor for BenchmarkDownload: the same
// client, WireGuard and netstack, but over wireguard-go's own UDP bind
// straight to the device, with no relay and no WebSocket.
func BenchmarkDownloadDirectUDP(b *testing.B) {
	h := newHarness(b)
	cfg, err := h.config(b).withDefaults()
	if err != nil {
		b.Fatal(err)
	}
	tunDev, tnet, err := netstack.CreateNetTUN(cfg.LocalAddrs, nil, cfg.MTU)
	if err != nil {
		b.Fatal(err)
	}
	dev := device.NewDevice(tunDev, conn.NewDefaultBind(), newWireGuardLogger(cfg.Logger))
	b.Cleanup(dev.Close)
	uapi := "private_key=" + cfg.PrivateKey.Hex() + "\npublic_key=" + cfg.PeerPublicKey.Hex() +
		"\npreshared_key=" + cfg.PresharedKey.Hex() + "\nendpoint=" + h.dev.udpAddr.String() +
		"\nallowed_ip=10.77.0.1/32\n"
	if err := dev.IpcSet(uapi); err != nil {
		b.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		b.Fatal(err)
	}
	tr := &http.Transport{DialContext: tnet.DialContext}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	download(b, c, 1<<20)
	b.SetBytes(benchDownloadSize)
	for b.Loop() {
		download(b, c, benchDownloadSize)
	}
}

// BenchmarkDialToFirstByte measures Dial -> first byte of the device's page:
// WebSocket (TLS) dial, WireGuard up, handshake, TCP connect and one HTTP
// exchange. Close is not timed.
func BenchmarkDialToFirstByte(b *testing.B) {
	h := newHarness(b)
	cfg := h.config(b)
	cfg.Logger = nil
	var took []time.Duration
	for b.Loop() {
		start := time.Now()
		tun, err := Dial(b.Context(), cfg)
		if err != nil {
			b.Fatal(err)
		}
		resp, err := tun.HTTPClient().Get("http://10.77.0.1/")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := resp.Body.Read(make([]byte, 1)); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
		b.StopTimer()
		resp.Body.Close()
		tun.Close()
		// The device accepts one handshake initiation per peer every 20 ms
		// (wireguard-go's HandshakeInitationRate, a flood guard) and drops
		// the rest, which would cost the next Dial a 5 s retry; the slot's
		// key is the same each time.
		time.Sleep(25 * time.Millisecond)
		b.StartTimer()
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "ms-p50")
	b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "ms-p99")
}
