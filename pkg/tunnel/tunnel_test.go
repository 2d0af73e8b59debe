//go:build !js

package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	pageURL4 = "http://10.77.0.1/"
	pageURL6 = "http://[fdb1:d4e1:a7ff::1]/"
)

// waitFor polls cond until it holds or timeout passes.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %v", what, timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTunnelPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	start := time.Now()
	tun := h.dial(t)
	c := tun.HTTPClient()
	for _, u := range []string{pageURL4, pageURL6} {
		body, _ := get(t, t.Context(), c, u)
		if !strings.Contains(body, pageMarker) {
			t.Fatalf("GET %s: %q lacks the marker", u, body)
		}
	}
	// The device sees the slot's addresses: the traffic is really inside.
	body, _ := get(t, t.Context(), c, pageURL4)
	if !strings.Contains(body, "you are 10.77.1.1:") {
		t.Errorf("device saw %q, want the slot address 10.77.1.1", body)
	}
	st := tun.Stats()
	if !st.Connected || st.Reconnects != 0 || st.Dials != 1 {
		t.Errorf("stats %+v: want connected, 1 dial, no reconnects", st)
	}
	if st.TxPackets == 0 || st.RxPackets == 0 || st.TxBytes < st.TxPackets*32 || st.RxBytes < st.RxPackets*32 {
		t.Errorf("stats %+v: want packets both ways, each at least 32 bytes", st)
	}
	if st.LastHandshake.Before(start.Add(-time.Second)) || st.LastHandshake.After(time.Now()) {
		t.Errorf("last handshake %v, want after %v", st.LastHandshake, start)
	}
	if st.DroppedText != 1 {
		t.Errorf("stats %+v: want the relay's hello skipped as 1 text message", st)
	}
	if drops := st.DroppedOversize + st.DroppedEmpty + st.DroppedQueueFull + st.DroppedSendError; drops != 0 {
		t.Errorf("stats %+v: unexpected drops", st)
	}
}

func TestTunnelParallelRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tun := h.dial(t)
	c := tun.HTTPClient()
	const n, size = 16, 256 << 10
	want := patternSum(size)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			body, _, err := tryGet(t.Context(), c, pageURL4)
			if err == nil && !strings.Contains(body, pageMarker) {
				err = fmt.Errorf("request %d: page lacks the marker", i)
			}
			if err == nil {
				err = checkDownload(t.Context(), c, size, want)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if got := h.dev.clientCount(); got < 2 {
		t.Errorf("16 parallel requests used %d connection(s), want several", got)
	}
}

// checkDownload downloads size bytes and compares their SHA-256 with want
// and with the device's checksum header.
func checkDownload(ctx context.Context, c *http.Client, size int64, want string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("http://10.77.0.1/download?size=%d", size), nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("download: %s", resp.Status)
	}
	got, n, err := sha256Hex(resp.Body)
	if err != nil {
		return fmt.Errorf("download after %d bytes: %w", n, err)
	}
	if n != size || got != want || resp.Header.Get(sumHeader) != want {
		return fmt.Errorf("download: %d bytes, sha256 %s, header %s; want %d bytes, %s", n, got, resp.Header.Get(sumHeader), size, want)
	}
	return nil
}

// TestTunnelBulk moves 20 MB down and 5 MB up. It is not parallel: on a
// small machine under the race detector, other tests' traffic starves the
// forwarder and the burst losses at its UDP socket, not the tunnel, would
// set the pace.
func TestTunnelBulk(t *testing.T) {
	h := newHarness(t)
	tun := h.dial(t)
	c := tun.HTTPClient()

	const down = 20 << 20
	start := time.Now()
	if err := checkDownload(t.Context(), c, down, patternSum(down)); err != nil {
		t.Fatal(err)
	}
	t.Logf("20 MB download: %v %+v", time.Since(start).Round(time.Millisecond), tun.Stats())

	const up = 5 << 20
	start = time.Now()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://10.77.0.1/upload", pattern(up))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = up
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := patternSum(up); resp.StatusCode != http.StatusOK || string(body) != want {
		t.Fatalf("upload: %s %q, want 200 %s", resp.Status, body, want)
	}
	t.Logf("5 MB upload: %v", time.Since(start).Round(time.Millisecond))
}

// TestTunnelRecovers kills the relay (the forwarder) mid-session and starts
// a new one on the same address: the tunnel redials and re-handshakes by
// itself, and requests work again.
func TestTunnelRecovers(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tun := h.dial(t)
	c := tun.HTTPClient()
	get(t, t.Context(), c, pageURL4)

	addr := h.fwd.addr()
	h.fwd.kill()
	waitFor(t, 10*time.Second, "bind notices the lost WebSocket", func() bool { return !tun.Stats().Connected })
	if _, _, err := tryGet(ctxTimeout(t, 300*time.Millisecond), c, pageURL4); err == nil {
		t.Fatal("request succeeded with the relay down")
	}

	restarted := time.Now()
	h.fwd = startForwarder(t, addr, h.dev.udpAddr)
	const bound = 15 * time.Second
	var attempts int
	waitFor(t, bound, "requests work again", func() bool {
		attempts++
		body, _, err := tryGet(ctxTimeout(t, 2*time.Second), c, pageURL4)
		return err == nil && strings.Contains(body, pageMarker)
	})
	recovered := time.Since(restarted)
	st := tun.Stats()
	t.Logf("recovered %v after the relay restarted (%d attempts); stats %+v", recovered.Round(time.Millisecond), attempts, st)
	if st.Reconnects != 1 || !st.Connected || h.fwd.sessions.Load() != 1 {
		t.Errorf("reconnects %d, connected %v, sessions at the new relay %d: want 1, true, 1", st.Reconnects, st.Connected, h.fwd.sessions.Load())
	}
	if !st.LastHandshake.After(restarted) {
		t.Errorf("last handshake %v, want a new one after the restart at %v", st.LastHandshake, restarted)
	}
	if err := checkDownload(t.Context(), c, 1<<20, patternSum(1<<20)); err != nil {
		t.Fatal(err)
	}
}

// TestTunnelSessionEnded: a relay that ends the session for good (close
// status 1008, "replaced") is not redialled, and Done and Err say so.
func TestTunnelSessionEnded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tun := h.dial(t)
	get(t, t.Context(), tun.HTTPClient(), pageURL4)
	if err := tun.Err(); err != nil {
		t.Fatalf("Err of a live tunnel: %v", err)
	}
	h.fwd.endSessions()
	select {
	case <-tun.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done not closed after the relay ended the session")
	}
	if err := tun.Err(); !errors.Is(err, ErrSessionEnded) || !strings.Contains(err.Error(), "replaced") {
		t.Errorf("Err = %v, want ErrSessionEnded with the relay's reason", err)
	}
	if st := tun.Stats(); st.Connected || st.Dials != 1 || st.Reconnects != 0 {
		t.Errorf("stats %+v: want disconnected and no redial", st)
	}
	tun.Close()
	if err := tun.Err(); !errors.Is(err, ErrSessionEnded) {
		t.Errorf("Err after Close = %v, want still ErrSessionEnded", err)
	}
}

// ctxTimeout is a child of tb's context that ends after d.
func ctxTimeout(tb testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(tb.Context(), d)
	tb.Cleanup(cancel)
	return ctx
}

func TestDialRefused(t *testing.T) {
	t.Parallel()
	h := newHarness(t)

	cfg := h.config(t)
	cfg.Header = http.Header{"Cookie": {"session=wrong"}}
	_, err := Dial(t.Context(), cfg)
	de, ok := errors.AsType[*DialError](err)
	if !ok || de.StatusCode != http.StatusUnauthorized || !strings.Contains(de.Body, "unauthorized") {
		t.Fatalf("Dial with a wrong cookie: %v, want a *DialError with 401 and the body", err)
	}

	// A relay that accepts TCP and never answers: ctx bounds the dial.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg.URL = "ws://" + ln.Addr().String() + "/tunnel"
	start := time.Now()
	_, err = Dial(ctxTimeout(t, 200*time.Millisecond), cfg)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Dial to a silent relay: %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Dial took %v despite a 200ms context", d)
	}
}

func TestDialContext(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tun := h.dial(t)

	c, err := tun.DialContext(t.Context(), "tcp6", "[fdb1:d4e1:a7ff::1]:80")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET / HTTP/1.0\r\n\r\n")
	b, _ := io.ReadAll(c)
	c.Close()
	if !strings.Contains(string(b), pageMarker) {
		t.Fatalf("raw HTTP/1.0 over tcp6: %q", b)
	}

	for _, tc := range []struct{ name, network, addr string }{
		{"hostname", "tcp", "device.example:80"},
		{"udp", "udp", "10.77.0.1:53"},
		{"family mismatch", "tcp4", "[fdb1:d4e1:a7ff::1]:80"},
		{"no port", "tcp", "10.77.0.1"},
	} {
		if _, err := tun.DialContext(t.Context(), tc.network, tc.addr); err == nil {
			t.Errorf("%s: DialContext(%q, %q) succeeded", tc.name, tc.network, tc.addr)
		}
	}

	tun.Close()
	<-tun.Done()
	if err := tun.Err(); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Err after Close = %v, want net.ErrClosed", err)
	}
	if _, err := tun.DialContext(t.Context(), "tcp", "10.77.0.1:80"); !errors.Is(err, net.ErrClosed) {
		t.Errorf("DialContext after Close: %v, want net.ErrClosed", err)
	}
	if st := tun.Stats(); st.Connected {
		t.Errorf("stats after Close %+v: still connected", st)
	}
}

// TestCloseLeavesNoGoroutines runs a session and closes it: no goroutine of
// the tunnel, its Bind, its WireGuard device or its netstack may remain. It
// is not parallel, so that the goroutine count means something.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	session := func(t *testing.T) {
		h := newHarness(t)
		tun, err := Dial(t.Context(), h.config(t))
		if err != nil {
			t.Fatal(err)
		}
		c := tun.HTTPClient()
		get(t, t.Context(), c, pageURL4)
		// Leave a connection busy (a download half read) and one idle.
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://10.77.0.1/download?size=10000000", nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 100000)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		tun.Close()
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Close took %v", d)
		}
		if _, err := io.ReadAll(resp.Body); err == nil {
			t.Error("a download continued after Close")
		}
		resp.Body.Close()
		waitFor(t, 5*time.Second, "the tunnel's goroutines end", func() bool {
			g := goroutines()
			return !strings.Contains(g, "pkg/tunnel.(*Bind)") && !strings.Contains(g, "pkg/tunnel.(*Tunnel)")
		})
	}
	// The first run may start lazily created background goroutines of the
	// libraries; count from the second.
	t.Run("warm-up", session)
	before := runtime.NumGoroutine()
	t.Run("session", session)
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), goroutines())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// goroutines returns the stacks of all goroutines.
func goroutines() string {
	buf := make([]byte, 1<<20)
	return string(buf[:runtime.Stack(buf, true)])
}
