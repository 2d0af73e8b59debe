//go:build !js

package tunnel

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.zx2c4.com/wireguard/conn"
)

// wsServer is a scripted relay: each accepted WebSocket is handed to handle,
// and closed when handle returns.
func wsServer(t *testing.T, handle func(ctx context.Context, c *websocket.Conn)) (url string, accepts *atomic.Int32) {
	t.Helper()
	accepts = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		c.SetReadLimit(-1)
		accepts.Add(1)
		handle(t.Context(), c)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/tunnel", accepts
}

// openBind opens a Bind on url and closes it at cleanup.
func openBind(t *testing.T, cfg BindConfig) (*Bind, conn.ReceiveFunc) {
	t.Helper()
	cfg.Logger = testLogger(t)
	b := NewBind(cfg)
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if len(fns) != 1 {
		t.Fatalf("Open returned %d receive functions, want 1", len(fns))
	}
	t.Cleanup(func() { b.Close() })
	return b, fns[0]
}

// receive calls fn with a full batch of wireguard-go sized buffers.
func receive(fn conn.ReceiveFunc) ([][]byte, error) {
	bufs := make([][]byte, defaultBatchSize)
	for i := range bufs {
		bufs[i] = make([]byte, 65535)
	}
	sizes := make([]int, len(bufs))
	eps := make([]conn.Endpoint, len(bufs))
	n, err := fn(bufs, sizes, eps)
	var out [][]byte
	for i := range n {
		if eps[i] != (relayEndpoint{}) {
			return nil, errors.New("datagram not from the relay endpoint")
		}
		out = append(out, bufs[i][:sizes[i]])
	}
	return out, err
}

func TestBindDropsOddMessages(t *testing.T) {
	t.Parallel()
	valid := bytes.Repeat([]byte{4, 0, 0, 0}, 40)
	got := make(chan [][]byte, 1)
	url, _ := wsServer(t, func(ctx context.Context, c *websocket.Conn) {
		_ = c.Write(ctx, websocket.MessageText, []byte("not a datagram"))
		_ = c.Write(ctx, websocket.MessageBinary, make([]byte, maxDatagramSize+1))
		_ = c.Write(ctx, websocket.MessageBinary, nil)
		_ = c.Write(ctx, websocket.MessageBinary, valid)
		var in [][]byte
		for range 2 {
			typ, msg, err := c.Read(ctx)
			if err != nil || typ != websocket.MessageBinary {
				break
			}
			in = append(in, msg)
		}
		got <- in
		<-ctx.Done()
	})
	b, recv := openBind(t, BindConfig{URL: url})

	dgrams, err := receive(recv)
	if err != nil || len(dgrams) != 1 || !bytes.Equal(dgrams[0], valid) {
		t.Fatalf("receive: %d datagrams, %v; want just the valid one", len(dgrams), err)
	}
	st := b.Stats()
	if st.DroppedText != 1 || st.DroppedOversize != 1 || st.DroppedEmpty != 1 || st.RxPackets != 1 || st.RxBytes != uint64(len(valid)) {
		t.Errorf("stats %+v: want one drop each of text, oversize and empty, one datagram received", st)
	}
	if !st.Connected || st.Reconnects != 0 {
		t.Errorf("stats %+v: odd messages must not cost the connection", st)
	}

	out := [][]byte{[]byte("first datagram"), []byte("second")}
	if err := b.Send(out, relayEndpoint{}); err != nil {
		t.Fatal(err)
	}
	if in := <-got; len(in) != 2 || !bytes.Equal(in[0], out[0]) || !bytes.Equal(in[1], out[1]) {
		t.Errorf("relay received %q, want %q, one message each", in, out)
	}
	if st := b.Stats(); st.TxPackets != 2 || st.TxBytes != uint64(len(out[0])+len(out[1])) {
		t.Errorf("stats %+v: want 2 datagrams sent", st)
	}
}

func TestBindQueueFull(t *testing.T) {
	t.Parallel()
	url, _ := wsServer(t, func(ctx context.Context, c *websocket.Conn) {
		for i := range 10 {
			_ = c.Write(ctx, websocket.MessageBinary, []byte{byte(i)})
		}
		_ = c.Write(ctx, websocket.MessageText, []byte("end"))
		<-ctx.Done()
	})
	b, recv := openBind(t, BindConfig{URL: url, QueueLen: 4})
	waitFor(t, 5*time.Second, "all messages read", func() bool { return b.Stats().DroppedText == 1 })
	st := b.Stats()
	if st.RxPackets != 4 || st.DroppedQueueFull != 6 {
		t.Fatalf("stats %+v: want 4 queued, 6 dropped", st)
	}
	dgrams, err := receive(recv)
	if err != nil || len(dgrams) != 4 {
		t.Fatalf("receive: %d datagrams, %v; want the 4 queued in one batch", len(dgrams), err)
	}
	for i, d := range dgrams {
		if len(d) != 1 || d[0] != byte(i) {
			t.Errorf("datagram %d = %v, want [%d] (first come, first kept)", i, d, i)
		}
	}
}

func TestBindClose(t *testing.T) {
	t.Parallel()
	closed := make(chan websocket.StatusCode, 1)
	url, accepts := wsServer(t, func(ctx context.Context, c *websocket.Conn) {
		_, _, err := c.Read(ctx)
		closed <- websocket.CloseStatus(err)
	})
	b, recv := openBind(t, BindConfig{URL: url})

	errc := make(chan error, 1)
	go func() {
		_, err := receive(recv)
		errc <- err
	}()
	start := time.Now()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > closeGrace {
		t.Errorf("Close took %v", d)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Errorf("blocked receive after Close: %v, want net.ErrClosed", err)
	}
	if _, err := receive(recv); !errors.Is(err, net.ErrClosed) {
		t.Errorf("receive after Close: %v, want net.ErrClosed", err)
	}
	if err := b.Send([][]byte{{1}}, relayEndpoint{}); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Send after Close: %v, want net.ErrClosed", err)
	}
	if code := <-closed; code != websocket.StatusNormalClosure {
		t.Errorf("the relay saw close status %v, want a normal closure", code)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	// wireguard-go reopens a Bind when an interface goes down and up.
	fns, _, err := b.Open(0)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Open(0); !errors.Is(err, conn.ErrBindAlreadyOpen) {
		t.Errorf("Open of an open Bind: %v, want conn.ErrBindAlreadyOpen", err)
	}
	waitFor(t, 5*time.Second, "a second WebSocket", func() bool { return accepts.Load() == 2 })
	b.Close()
	if _, err := receive(fns[0]); !errors.Is(err, net.ErrClosed) {
		t.Errorf("receive after the second Close: %v", err)
	}
}

// TestBindRedials: the relay drops the WebSocket; the Bind drops datagrams
// while it redials, then reconnects by itself and tells ReconnectFunc.
func TestBindRedials(t *testing.T) {
	t.Parallel()
	var requests atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := requests.Add(1)
		if n == 2 {
			<-release // hold the first redial until the test has sent
		}
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		if n == 1 {
			return // drop the first connection at once
		}
		_ = c.Write(r.Context(), websocket.MessageBinary, []byte("after redial"))
		_, _, _ = c.Read(t.Context())
	}))
	t.Cleanup(srv.Close)
	reconnected := make(chan struct{}, 1)
	b, recv := openBind(t, BindConfig{
		URL:           srv.URL,
		MinBackoff:    10 * time.Millisecond,
		ReconnectFunc: func() { reconnected <- struct{}{} },
	})
	waitFor(t, 5*time.Second, "the redial is under way", func() bool { return requests.Load() == 2 })
	if st := b.Stats(); st.Connected {
		t.Errorf("stats %+v: connected while redialling", st)
	}
	if err := b.Send([][]byte{{1}, {2}}, relayEndpoint{}); err != nil {
		t.Errorf("Send while redialling: %v, want nil (dropped as UDP drops)", err)
	}
	close(release)
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("no reconnect")
	}
	dgrams, err := receive(recv)
	if err != nil || len(dgrams) != 1 || string(dgrams[0]) != "after redial" {
		t.Fatalf("receive after redial: %q, %v", dgrams, err)
	}
	st := b.Stats()
	if st.Reconnects != 1 || !st.Connected || st.Dials != 2 || st.DroppedDisconnected != 2 || st.TxPackets != 0 {
		t.Errorf("stats %+v: want 2 dials, 1 reconnect, connected, 2 datagrams dropped while down", st)
	}
}

// TestBindPing: a relay that stops answering (no pongs, no reads) is
// noticed by the ping and redialled.
func TestBindPing(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	url, _ := wsServer(t, func(ctx context.Context, c *websocket.Conn) {
		if conns.Add(1) == 1 {
			<-ctx.Done() // never read: pings go unanswered
			return
		}
		_, _, _ = c.Read(ctx)
	})
	b, _ := openBind(t, BindConfig{URL: url, PingInterval: 20 * time.Millisecond, PingTimeout: 50 * time.Millisecond, MinBackoff: time.Millisecond})
	waitFor(t, 5*time.Second, "a redial after missing pongs", func() bool { return b.Stats().Reconnects == 1 })
}

// TestBindSessionEnded: close status 1008 ends the session; no redial.
func TestBindSessionEnded(t *testing.T) {
	t.Parallel()
	url, accepts := wsServer(t, func(ctx context.Context, c *websocket.Conn) {
		_ = c.Close(websocket.StatusPolicyViolation, "replaced by a newer session")
	})
	ended := make(chan error, 1)
	b, recv := openBind(t, BindConfig{URL: url, MinBackoff: time.Millisecond, EndFunc: func(err error) { ended <- err }})
	select {
	case err := <-ended:
		if !errors.Is(err, ErrSessionEnded) {
			t.Errorf("EndFunc(%v), want ErrSessionEnded", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("EndFunc not called")
	}
	// EndFunc runs after the decision not to redial: no dial can follow.
	if st := b.Stats(); st.Dials != 1 || st.Connected || accepts.Load() != 1 {
		t.Errorf("stats %+v, %d accepted: want one dial, disconnected", st, accepts.Load())
	}
	if err := b.Send([][]byte{{1}}, relayEndpoint{}); err != nil || b.Stats().DroppedDisconnected != 1 {
		t.Errorf("Send after the end: %v, %+v; want nil and a drop", err, b.Stats())
	}
	b.Close()
	if _, err := receive(recv); !errors.Is(err, net.ErrClosed) {
		t.Errorf("receive after Close: %v", err)
	}
}
