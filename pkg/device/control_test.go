package device

import (
	"crypto/ed25519"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// testRelay is the relay's end of the management tunnel as the test plays
// it: a wireguard-go interface with the relay's key and the device as its
// peer, and a control protocol server on [RelayMgmtAddr]:ControlPort.
type testRelay struct {
	t     *testing.T
	hello wire.Hello // the relay's own Hello
	peer  *wgPeer
	ln    net.Listener
	conns chan *ctlConn
}

// ctlConn is one control connection the device opened. Pings from the
// device are answered at once and counted; other messages go to msgs.
type ctlConn struct {
	c     net.Conn
	hello wire.Hello
	msgs  chan wire.Control
	pings atomic.Int64
}

// startTestRelay brings the relay up on UDP port port (0: any) for the
// device of st.
func startTestRelay(t *testing.T, st *state, relayKey wgkey.Private, port int) *testRelay {
	t.Helper()
	p := newWGPeer(t, "relay", relayKey, []netip.Addr{wire.RelayMgmtAddr}, port,
		"public_key="+st.Private.Public().Hex()+"\nallowed_ip="+st.Relay.MgmtAddr.String()+"/128\n")
	ln, err := p.net.ListenTCPAddrPort(netip.AddrPortFrom(wire.RelayMgmtAddr, wire.ControlPort))
	if err != nil {
		t.Fatal(err)
	}
	r := &testRelay{t: t, peer: p, ln: ln, conns: make(chan *ctlConn, 10),
		hello: wire.Hello{Version: 1, MinVersion: 1, Capabilities: []string{wire.CapabilityOwnerCommands}}}
	t.Cleanup(r.stop)
	go r.accept(st.Relay.MgmtAddr)
	return r
}

func (r *testRelay) stop() {
	r.ln.Close()
	r.peer.dev.Close()
}

func (r *testRelay) accept(deviceAddr netip.Addr) {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		// The device dials from its management address (source address
		// selection must pick it; the relay's peer allows nothing else).
		if got := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr(); got != deviceAddr {
			r.t.Errorf("control connection from %v, want %v", got, deviceAddr)
		}
		m, err := wire.ReadMessage(c)
		hello, ok := m.(wire.Hello)
		if err != nil || !ok {
			r.t.Errorf("first control frame: %#v, %v", m, err)
			c.Close()
			continue
		}
		ack, _ := wire.Negotiate(r.hello, hello)
		if err := wire.WriteMessage(c, ack); err != nil {
			c.Close()
			continue
		}
		cc := &ctlConn{c: c, hello: hello, msgs: make(chan wire.Control, 100)}
		go cc.read()
		r.conns <- cc
	}
}

func (cc *ctlConn) read() {
	defer close(cc.msgs)
	for {
		m, err := wire.ReadMessage(cc.c)
		if err != nil {
			return
		}
		if p, ok := m.(wire.Ping); ok {
			cc.pings.Add(1)
			wire.WriteMessage(cc.c, wire.Pong{Seq: p.Seq})
			continue
		}
		cc.msgs <- m
	}
}

// next waits for the device's next control connection.
func (r *testRelay) next(t *testing.T) *ctlConn {
	t.Helper()
	select {
	case cc := <-r.conns:
		t.Cleanup(func() { cc.c.Close() })
		return cc
	case <-time.After(30 * time.Second):
		t.Fatal("the device did not open a control connection")
		return nil
	}
}

// recv waits for the next message from the device.
func (cc *ctlConn) recv(t *testing.T) wire.Control {
	t.Helper()
	select {
	case m, ok := <-cc.msgs:
		if !ok {
			t.Fatal("control connection closed")
		}
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no control message from the device")
		return nil
	}
}

// TestControl runs the control protocol against a test relay over a real
// management tunnel: Hello, Ping/Pong both ways, owner commands with the
// rules of docs/protocol.md §5.4, and a reconnect after the relay restarts.
func TestControl(t *testing.T) {
	t.Parallel()
	st, k := newTestState(t, "127.0.0.1:9") // the endpoint is set once the relay is up
	relay := startTestRelay(t, st, k.relay, 0)
	st.Relay.Endpoint = localEndpoint(relay.peer.port).String()
	d, _ := startDevice(t, st, nil, func(d *Device) {
		d.SetControlTimingForTest(100*time.Millisecond, 500*time.Millisecond, 50*time.Millisecond)
	})

	cc := relay.next(t)
	h := cc.hello
	if h.Version != wire.ProtocolVersion || h.MinVersion != wire.MinProtocolVersion || h.UID != "warp2-Test" ||
		h.Firmware != "test 1" || !slices.Contains(h.Capabilities, wire.CapabilityOwnerCommands) {
		t.Fatalf("Hello %+v", h)
	}
	if err := wire.WriteMessage(cc.c, wire.Ping{Seq: 42}); err != nil {
		t.Fatal(err)
	}
	if m := cc.recv(t); m != (wire.Pong{Seq: 42}) {
		t.Fatalf("answer to Ping 42: %#v", m)
	}
	// Unknown frame types and malformed payloads are skipped; the stream
	// stays in step.
	for _, f := range []wire.Frame{{Type: 99, Payload: []byte("from a future version")}, {Type: wire.FramePing, Payload: []byte("{not json")}} {
		if err := wire.WriteFrame(cc.c, f); err != nil {
			t.Fatal(err)
		}
	}
	if err := wire.WriteMessage(cc.c, wire.Ping{Seq: 43}); err != nil {
		t.Fatal(err)
	}
	if m := cc.recv(t); m != (wire.Pong{Seq: 43}) {
		t.Fatalf("answer to Ping 43 after skipped frames: %#v", m)
	}
	waitFor(t, 10*time.Second, "the device's own pings", func() bool { return cc.pings.Load() >= 2 })

	otherSigner := ed25519.NewKeyFromSeed(make([]byte, 32))
	future := time.Now().Add(time.Hour)
	removeOther := wire.Command{ID: "cmd-1", Kind: wire.CommandRemoveUser, DeviceID: "dev-1", UserID: "user-other", Counter: 5, Expires: future}
	for _, tc := range []struct {
		name   string
		signer ed25519.PrivateKey
		cmd    wire.Command
		mutate func(*wire.SignedCommand)
		want   string
	}{
		{"remove the other user", k.owner.SignPrivate, removeOther, nil, wire.AckOK},
		{"the same again (lost ack)", k.owner.SignPrivate, removeOther, nil, wire.AckOK},
		{"same counter, other id", k.owner.SignPrivate, with(removeOther, func(c *wire.Command) { c.ID = "cmd-2" }), nil, wire.AckRejected},
		{"lower counter", k.owner.SignPrivate, with(removeOther, func(c *wire.Command) { c.ID, c.Counter = "cmd-3", 4 }), nil, wire.AckRejected},
		{"another device", k.owner.SignPrivate, with(removeOther, func(c *wire.Command) { c.ID, c.Counter, c.DeviceID = "cmd-4", 10, "dev-2" }), nil, wire.AckRejected},
		{"not the owner's signature", otherSigner, with(removeOther, func(c *wire.Command) { c.ID, c.Counter = "cmd-5", 10 }), nil, wire.AckRejected},
		{"the relay changed it", k.owner.SignPrivate, with(removeOther, func(c *wire.Command) { c.ID, c.Counter = "cmd-6", 10 }),
			func(sc *wire.SignedCommand) { sc.Command.UserID = "user-owner" }, wire.AckRejected},
		{"expired", k.owner.SignPrivate, with(removeOther, func(c *wire.Command) { c.ID, c.Counter, c.Expires = "cmd-7", 10, time.Now().Add(-time.Second) }), nil, wire.AckRejected},
		{"format version 2", k.owner.SignPrivate, with(removeOther, func(c *wire.Command) { c.ID, c.Counter = "cmd-8", 10 }),
			func(sc *wire.SignedCommand) { sc.Version = 2 }, wire.AckUnsupported},
		{"unknown kind", k.owner.SignPrivate, with(removeOther, func(c *wire.Command) { c.ID, c.Counter, c.Kind = "cmd-9", 10, "reboot" }), nil, wire.AckUnsupported},
		{"remove the owner", k.owner.SignPrivate, with(removeOther, func(c *wire.Command) { c.ID, c.Counter, c.UserID = "cmd-10", 10, "user-owner" }), nil, wire.AckRejected},
		{"add a user (no upload path yet)", k.owner.SignPrivate, wire.Command{ID: "cmd-11", Kind: wire.CommandAddUser, DeviceID: "dev-1",
			UserID: "user-new", BoxPublicKey: k.other.BoxPublic[:], Slots: 2, Counter: 10, Expires: future}, nil, wire.AckFailed},
		{"remove a user without slots", k.owner.SignPrivate, with(removeOther, func(c *wire.Command) { c.ID, c.Counter, c.UserID = "cmd-12", 6, "user-nobody" }), nil, wire.AckOK},
		{"the first again, now below the counter", k.owner.SignPrivate, removeOther, nil, wire.AckOK},
	} {
		sc := wire.SignCommand(tc.signer, tc.cmd)
		if tc.mutate != nil {
			tc.mutate(&sc)
		}
		if err := wire.WriteMessage(cc.c, sc); err != nil {
			t.Fatal(err)
		}
		ack, ok := cc.recv(t).(wire.CommandAck)
		if !ok || ack.ID != tc.cmd.ID || ack.Status != tc.want {
			t.Errorf("%s: ack %+v, want %s", tc.name, ack, tc.want)
		}
		if tc.want != wire.AckOK && ack.Error == "" {
			t.Errorf("%s: no error text", tc.name)
		}
	}

	// The other user's slots are gone: from the state file, the Info and
	// the running interface. The owner's stay.
	saved, err := loadState(d.cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	if saved.Counter != 6 || len(saved.Slots) != 2 || len(d.Info().Slots) != 2 {
		t.Fatalf("after the commands: counter %d, slots %+v", saved.Counter, saved.Slots)
	}
	get, err := d.wgDevice(t).IpcGet()
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		has := strings.Contains(get, "public_key="+k.browsers[i].Public().Hex())
		if has != (i < 2) {
			t.Errorf("slot %d: peer present %v", i, has)
		}
	}

	// The relay restarts (a new process: no WireGuard session, no TCP
	// connection). The device notices the silence, handshakes again and
	// reconnects.
	port := relay.peer.port
	relay.stop()
	relay2 := startTestRelay(t, st, k.relay, port)
	cc2 := relay2.next(t)
	if cc2.hello.UID != "warp2-Test" {
		t.Fatalf("Hello after the restart: %+v", cc2.hello)
	}
}

// with returns c changed by f.
func with(c wire.Command, f func(*wire.Command)) wire.Command {
	f(&c)
	return c
}

// wgDevice returns the running interface.
func (d *Device) wgDevice(t *testing.T) interface{ IpcGet() (string, error) } {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.wg == nil {
		t.Fatal("device not running")
	}
	return d.wg
}

// TestControlNoCommonVersion: a relay that speaks no version of the
// device's gets nothing after its HelloAck, and the device does not
// hammer it with reconnects; the tunnel (and so the device) stays up.
func TestControlNoCommonVersion(t *testing.T) {
	t.Parallel()
	st, k := newTestState(t, "127.0.0.1:9")
	relay := startTestRelay(t, st, k.relay, 0)
	relay.hello = wire.Hello{Version: 7, MinVersion: 5}
	st.Relay.Endpoint = localEndpoint(relay.peer.port).String()
	startDevice(t, st, nil, func(d *Device) {
		d.SetControlTimingForTest(50*time.Millisecond, 200*time.Millisecond, 20*time.Millisecond)
	})
	cc := relay.next(t)
	select {
	case m, ok := <-cc.msgs:
		if ok {
			t.Fatalf("the device sent %#v after a HelloAck without a common version", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the device kept the connection open")
	}
	if n := cc.pings.Load(); n != 0 {
		t.Fatalf("the device pinged %d times", n)
	}
	// The next attempt comes only after the long wait (4 backoffs here).
	select {
	case <-relay.conns:
		t.Fatal("the device reconnected at once")
	case <-time.After(40 * time.Millisecond):
	}
	relay.next(t)
}
