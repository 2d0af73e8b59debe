package mgmt

import (
	"bytes"
	"context"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// oneDeviceStore knows one device.
type oneDeviceStore struct {
	fakeStore
	dev *keystore.Device
}

func (s *oneDeviceStore) DeviceByPublicKey(_ context.Context, key [32]byte) (*keystore.Device, error) {
	if key == s.dev.PublicKey {
		return s.dev, nil
	}
	return nil, keystore.ErrDeviceNotFound
}

// strictRelay fails the test if the management side learns an endpoint.
type strictRelay struct {
	fakeRelay
	learned atomic.Int64
}

func (r *strictRelay) SetDeviceEndpoint(string, netip.AddrPort) { r.learned.Add(1) }

// FuzzHandleMgmt feeds arbitrary datagrams from arbitrary sources to a
// running management side whose store knows one device. Nothing may panic,
// and nothing the fuzzer can make without the device's private key may
// teach the relay an endpoint. Seeds: an initiation from a stranger's key,
// a forged one naming the registered device (it gets the peer loaded), a
// response, a cookie reply, transports and junk.
func FuzzHandleMgmt(f *testing.F) {
	relayKey := newKey(f)
	devKey := newKey(f)
	stranger := captureInitiation(f, newKey(f), relayKey.Public())
	forged := tamperedInitiation(captureInitiation(f, devKey, relayKey.Public()), relayKey.Public())

	store := &oneDeviceStore{dev: &keystore.Device{ID: "d-fuzz", PublicKey: devKey.Public(), MgmtAddr: wire.MgmtAddr(devKey.Public())}}
	r := &strictRelay{}
	m, err := New(Config{Private: relayKey, Store: store, Sender: r, Endpoints: r, Node: "fuzz",
		OfflineAfter: time.Second, IdlePeerTimeout: 200 * time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	var sawForged atomic.Bool
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	f.Cleanup(func() {
		// The forged seed named a registered device: its peer was loaded
		// lazily, and wireguard-go rejected the handshake. (A fuzzing
		// coordinator runs no input itself.)
		if sawForged.Load() {
			eventually(f, "the forged seed's peer loaded", func() bool { return m.Stats().PeerLoads > 0 })
		}
		cancel()
		if err := <-done; err != nil {
			f.Errorf("Run: %v", err)
		}
		if n := r.learned.Load(); n != 0 {
			f.Errorf("SetDeviceEndpoint called %d times", n)
		}
	})
	eventually(f, "running", m.running.Load)

	response := make([]byte, wire.MessageResponseSize)
	response[0] = wire.MessageResponseType
	cookie := make([]byte, wire.MessageCookieReplySize)
	cookie[0] = wire.MessageCookieReplyType
	for _, seed := range [][]byte{stranger, forged, withMac1(response, relayKey.Public()), cookie,
		transport(0), transport(1), {4, 0, 0, 0}, {1}, nil} {
		f.Add(seed, []byte{127, 0, 0, 1}, uint16(51820))
	}
	f.Add(forged, []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(1))

	f.Fuzz(func(t *testing.T, b, ip []byte, port uint16) {
		addr, ok := netip.AddrFromSlice(ip)
		if !ok {
			addr = netip.IPv4Unspecified()
		}
		m.HandleMgmt(b, netip.AddrPortFrom(addr, port))
		if bytes.Equal(b, forged) {
			sawForged.Store(true)
		}
		if n := r.learned.Load(); n != 0 {
			t.Fatalf("SetDeviceEndpoint called %d times", n)
		}
	})
}
