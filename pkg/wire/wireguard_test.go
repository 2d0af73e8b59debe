package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// This file runs two real wireguard-go devices against each other and keeps
// every datagram they send, so the other tests check this package against
// what WireGuard actually puts on the wire.

// testKey returns a fixed private key for name, so that fuzz seeds made from
// captured datagrams stay valid for the same responder key.
func testKey(name string) wgkey.Private {
	return wgkey.Private(sha256.Sum256([]byte("blindrelay wire test key " + name)))
}

// Keys of the two devices and a bystander.
var (
	initiatorKey = testKey("initiator") // device 0: sends the handshake initiation
	responderKey = testKey("responder") // device 1: answers it
	otherKey     = testKey("other")     // no device
)

// datagram is one UDP payload a device sent.
type datagram struct {
	from int // 0: initiator, 1: responder
	b    []byte
}

// recordingBind is a conn.Bind that keeps a copy of everything it sends.
type recordingBind struct {
	conn.Bind
	from int
	rec  *recorder
}

type recorder struct {
	mu        sync.Mutex
	datagrams []datagram // guarded by mu
}

func (r *recordingBind) Send(bufs [][]byte, ep conn.Endpoint) error {
	r.rec.mu.Lock()
	for _, b := range bufs {
		r.rec.datagrams = append(r.rec.datagrams, datagram{from: r.from, b: bytes.Clone(b)})
	}
	r.rec.mu.Unlock()
	return r.Bind.Send(bufs, ep)
}

// wgCapture is what two wireguard-go devices sent while they shook hands and
// exchanged one small and one large packet each way.
type wgCapture struct {
	datagrams []datagram
	cookie    []byte // a cookie reply made by wireguard-go's CookieChecker for the first initiation
}

// first returns the first datagram of type typ sent by from.
func (c *wgCapture) first(typ uint8, from int) []byte {
	for _, d := range c.datagrams {
		if d.from == from && len(d.b) > 0 && d.b[0] == typ {
			return d.b
		}
	}
	return nil
}

// all returns every captured datagram, the cookie reply included.
func (c *wgCapture) all() [][]byte {
	var out [][]byte
	for _, d := range c.datagrams {
		out = append(out, d.b)
	}
	return append(out, c.cookie)
}

// captureWireGuard runs the two devices once per test binary; the capture is
// shared by tests, fuzz seeds and benchmarks.
var captureWireGuard = sync.OnceValues(runWireGuard)

func mustCapture(tb testing.TB) *wgCapture {
	tb.Helper()
	c, err := captureWireGuard()
	if err != nil {
		tb.Fatalf("capture wireguard-go traffic: %v", err)
	}
	return c
}

// ipPacket returns an IPv4 packet of size bytes from src to dst. wireguard-go
// reads only the addresses and the length.
func ipPacket(src, dst netip.Addr, size int) []byte {
	p := make([]byte, size)
	p[0] = 0x45 // version 4, header 20 bytes
	binary.BigEndian.PutUint16(p[2:], uint16(size))
	p[8], p[9] = 64, 17 // TTL, UDP
	s, d := src.As4(), dst.As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	for i := 20; i < size; i++ {
		p[i] = byte(i)
	}
	return p
}

func runWireGuard() (*wgCapture, error) {
	keys := [2]wgkey.Private{initiatorKey, responderKey}
	addrs := [2]netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}
	binds := bindtest.NewChannelBinds()
	rec := &recorder{}
	var tuns [2]*tuntest.ChannelTUN
	var devs [2]*device.Device
	defer func() {
		for _, d := range devs {
			if d != nil {
				d.Close()
			}
		}
	}()
	var logMu sync.Mutex
	var errs []string
	logger := &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf: func(format string, args ...any) {
			logMu.Lock()
			errs = append(errs, fmt.Sprintf(format, args...))
			logMu.Unlock()
		},
	}
	for i := range devs {
		tuns[i] = tuntest.NewChannelTUN()
		devs[i] = device.NewDevice(tuns[i].TUN(), &recordingBind{Bind: binds[i], from: i, rec: rec}, logger)
		peer := keys[1-i].Public()
		// bindtest: endpoint port 1 is device 1 as bind 0 sees it, port 2 is
		// device 0 as bind 1 sees it.
		cfg := fmt.Sprintf("private_key=%s\nlisten_port=0\nreplace_peers=true\npublic_key=%s\nendpoint=127.0.0.1:%d\nreplace_allowed_ips=true\nallowed_ip=%s/32\n",
			keys[i].Hex(), peer.Hex(), i+1, addrs[1-i])
		if err := devs[i].IpcSet(cfg); err != nil {
			return nil, fmt.Errorf("configure device %d: %w", i, err)
		}
		if err := devs[i].Up(); err != nil {
			return nil, fmt.Errorf("up device %d: %w", i, err)
		}
	}
	// One small and one large packet each way; the first one starts the
	// handshake from device 0.
	for _, size := range []int{0, 1400} {
		for from := range 2 {
			pkt := tuntest.Ping(addrs[1-from], addrs[from])
			if size > 0 {
				pkt = ipPacket(addrs[from], addrs[1-from], size)
			}
			tuns[from].Outbound <- pkt
			select {
			case got := <-tuns[1-from].Inbound:
				if !bytes.Equal(got, pkt) {
					return nil, fmt.Errorf("packet from device %d arrived changed", from)
				}
			case <-time.After(10 * time.Second):
				logMu.Lock()
				defer logMu.Unlock()
				return nil, fmt.Errorf("packet from device %d did not arrive; wireguard-go errors: %q", from, errs)
			}
		}
	}
	for i := range devs {
		devs[i].Close()
		devs[i] = nil
	}
	c := &wgCapture{datagrams: rec.datagrams}

	// wireguard-go sends a cookie reply only under load; make one with its
	// own code for the first initiation.
	init := c.first(MessageInitiationType, 0)
	if init == nil {
		return nil, errors.New("no handshake initiation captured")
	}
	var cc device.CookieChecker
	cc.Init(device.NoisePublicKey(responderKey.Public()))
	reply, err := cc.CreateReply(init, binary.LittleEndian.Uint32(init[4:]), []byte{127, 0, 0, 1, 0x1f, 0x90})
	if err != nil {
		return nil, fmt.Errorf("create cookie reply: %w", err)
	}
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, reply); err != nil {
		return nil, err
	}
	c.cookie = buf.Bytes()
	return c, nil
}
