package relay_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/blindrelay/blindrelay/pkg/relay"
)

// BenchmarkRelay measures the cost of one relayed datagram, browser to
// device and device to browser, for 128- and 1400-byte WireGuard transport
// messages, with 64 datagrams in flight. Each case runs twice in the same
// run: through relay.Server, and through the floor, a minimal
// WebSocket<->UDP forwarder that does only what any such forwarder must (one
// WebSocket message read and one UDP send per datagram, one UDP read and
// one WebSocket message write back), with no parsing, tables, queue or
// counters. It is written as tightly as the relay's own I/O: reused buffers
// and contexts that never end, so the library allocates nothing.
//
// The load (a WebSocket client and a UDP socket playing the device) runs in
// the same process and costs the same in both; ns/op and cpu-ns/op (user +
// system CPU of the whole process per datagram) therefore compare the two
// forwarders. pkts/s is the throughput, loss-% the datagrams that never
// arrived. A lost datagram is given up after 100 ms so the window moves on.
//
//	go test -run '^$' -bench Relay -benchmem ./pkg/relay
func BenchmarkRelay(b *testing.B) {
	for _, dir := range []string{"to_device", "to_browser"} {
		for _, size := range []int{128, 1400} {
			for _, impl := range []string{"floor", "relay"} {
				b.Run(fmt.Sprintf("%s/%dB/%s", dir, size, impl), func(b *testing.B) {
					benchPath(b, impl, dir == "to_device", size)
				})
			}
		}
	}
}

// inFlight is how many datagrams the load keeps in flight.
const inFlight = 64

func benchPath(b *testing.B, impl string, toDevice bool, size int) {
	dev := benchUDP(b)
	devAddr := dev.LocalAddr().(*net.UDPAddr).AddrPort()
	var (
		udpAddr netip.AddrPort
		wsURL   string
		idx     uint32 = 0x1234
	)
	deviceKey := newSlotKeys(b).pub
	switch impl {
	case "floor":
		udpAddr, wsURL = startFloor(b, devAddr)
	case "relay":
		udpAddr, wsURL = startRelay(b, devAddr, relay.Session{DeviceID: "dev", DeviceKey: deviceKey, SlotKey: newSlotKeys(b).pub})
	}
	ws, _, err := websocket.Dial(b.Context(), wsURL, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ws.CloseNow() })
	ws.SetReadLimit(-1)

	// The relay learns the session's index from a handshake; the floor
	// forwards it too. The device reads it, so both paths start warm.
	if err := ws.Write(b.Context(), websocket.MessageBinary, initiation(idx, deviceKey)); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 65536)
	_ = dev.SetReadDeadline(time.Now().Add(waitFor))
	if _, _, err := dev.ReadFromUDPAddrPort(buf); err != nil {
		b.Fatal(err)
	}
	_ = dev.SetReadDeadline(time.Time{})

	msg := transport(idx, size)
	var send func() error
	var recv func() error
	if toDevice {
		send = func() error { return ws.Write(context.Background(), websocket.MessageBinary, msg) }
		recv = func() error { _, _, err := dev.ReadFromUDPAddrPort(buf); return err }
	} else {
		send = func() error { _, err := dev.WriteToUDPAddrPort(msg, udpAddr); return err }
		recv = func() error {
			_, r, err := ws.Reader(context.Background())
			if err != nil {
				return err
			}
			for err == nil {
				_, err = r.Read(buf)
			}
			if err == io.EOF {
				err = nil
			}
			return err
		}
	}
	runLoad(b, send, recv)
}

// runLoad sends b.N datagrams with at most inFlight unanswered and reports
// the metrics.
func runLoad(b *testing.B, send, recv func() error) {
	tokens := make(chan struct{}, inFlight)
	for range inFlight {
		tokens <- struct{}{}
	}
	var received atomic.Int64
	go func() {
		for recv() == nil {
			received.Add(1)
			select {
			case tokens <- struct{}{}:
			default: // a datagram given up for lost arrived after all
			}
		}
	}()
	giveUp := time.NewTimer(time.Hour)
	giveUp.Stop()

	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		select {
		case <-tokens:
		default:
			giveUp.Reset(100 * time.Millisecond)
			select {
			case <-tokens:
			case <-giveUp.C:
			}
			giveUp.Stop()
		}
		if err := send(); err != nil {
			b.Fatal(err)
		}
	}
	// Wait for the stragglers.
	for last, quiet := received.Load(), 0; received.Load() < int64(b.N) && quiet < 20; quiet++ {
		time.Sleep(5 * time.Millisecond)
		if n := received.Load(); n != last {
			last, quiet = n, 0
		}
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cpu := cpuTime() - cpu0
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "pkts/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	b.ReportMetric(100*float64(int64(b.N)-received.Load())/float64(b.N), "loss-%")
}

// benchUDP is a loopback UDP socket with 4 MiB buffers (both forwarders
// and the device get the same).
func benchUDP(b *testing.B) *net.UDPConn {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	_ = c.SetReadBuffer(4 << 20)
	_ = c.SetWriteBuffer(4 << 20)
	b.Cleanup(func() { c.Close() })
	return c
}

func wsURL(s *httptest.Server) string { return strings.Replace(s.URL, "http://", "ws://", 1) }

// startRelay runs a relay.Server for one session of a device at devAddr.
func startRelay(b *testing.B, devAddr netip.AddrPort, sess relay.Session) (netip.AddrPort, string) {
	udp := benchUDP(b)
	srv, err := relay.New(relay.Config{Conn: udp, Mgmt: &recordingMgmt{}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Run(ctx) }()
	srv.SetDeviceEndpoint(sess.DeviceID, devAddr)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		_ = srv.Accept(ctx, ws, sess)
	}))
	b.Cleanup(func() { cancel(); hs.Close(); <-done })
	return udp.LocalAddr().(*net.UDPAddr).AddrPort(), wsURL(hs)
}

// startFloor runs the minimal forwarder: WebSocket messages to devAddr,
// and every datagram on its UDP socket to the (one) WebSocket.
func startFloor(b *testing.B, devAddr netip.AddrPort) (netip.AddrPort, string) {
	udp := benchUDP(b)
	ctx, cancel := context.WithCancel(context.Background())
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled})
		if err != nil {
			return
		}
		defer ws.CloseNow()
		context.AfterFunc(ctx, func() { ws.CloseNow() })
		go func() { // UDP -> WebSocket
			buf := make([]byte, 65536)
			for {
				n, _, err := udp.ReadFromUDPAddrPort(buf)
				if err != nil || ws.Write(context.Background(), websocket.MessageBinary, buf[:n]) != nil {
					return
				}
			}
		}()
		buf := make([]byte, 65536) // WebSocket -> UDP
		for {
			_, r, err := ws.Reader(context.Background())
			if err != nil {
				return
			}
			n := 0
			for err == nil {
				var m int
				m, err = r.Read(buf[n:])
				n += m
			}
			if err != io.EOF {
				return
			}
			if _, err := udp.WriteToUDPAddrPort(buf[:n], devAddr); err != nil {
				return
			}
		}
	}))
	b.Cleanup(func() { cancel(); hs.Close() })
	return udp.LocalAddr().(*net.UDPAddr).AddrPort(), wsURL(hs)
}
