package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/device"
	"github.com/blindrelay/blindrelay/pkg/device/wallbox"
)

// TestConnect runs connect end to end: a real relay with its UDP side, a
// pkg/device wallbox paired with a token from 'token create', and HTTP
// through the forwarded port, before and after the relay restarts.
func TestConnect(t *testing.T) {
	t.Parallel()
	udp := freeUDPAddr(t)
	r := startRelayUDP(t, t.TempDir(), "127.0.0.1:0", udp)
	u, _ := loggedIn(t, r, "hana@example.com")
	tok := strings.TrimSpace(u.must(nil, "token", "create", "--name", "e2e").stdout)

	const uid = "warp2-E2e1"
	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	dev, err := device.Pair(t.Context(), device.Config{
		DataDir:  t.TempDir(),
		UID:      uid,
		Name:     "Garage",
		UI:       wallbox.New(wallbox.Config{UID: uid}),
		Insecure: true,
		Logger:   logger.With("side", "device"),
	}, tok)
	if err != nil {
		t.Fatalf("device.Pair: %v", err)
	}
	devCtx, stopDev := context.WithCancel(t.Context())
	devDone := make(chan error, 1)
	go func() { devDone <- dev.Run(devCtx) }()
	t.Cleanup(func() {
		stopDev()
		if err := <-devDone; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("device Run: %v", err)
		}
	})
	u.waitOnline(t, r, uid)

	c := u.startConnect(t, uid)
	base := "http://" + c.addr

	// The status page of the device, through the tunnel.
	var st struct{ UID string }
	getJSON(t, base+"/api/status", &st)
	if st.UID != uid {
		t.Errorf("status UID = %q, want %q", st.UID, uid)
	}
	// Many connections at once, each its own TCP connection.
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			resp, err := (&http.Client{Transport: tr, Timeout: 20 * time.Second}).Get(base + "/api/status")
			if err != nil {
				t.Errorf("parallel GET: %v", err)
				return
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != http.StatusOK {
				t.Errorf("parallel GET: %s, %v", resp.Status, err)
			}
		})
	}
	wg.Wait()
	// A download and an upload, checked end to end.
	const size = 4 << 20
	resp, err := http.Get(fmt.Sprintf("%s/api/download?size=%d", base, size))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.New()
	n, err := io.Copy(sum, resp.Body)
	resp.Body.Close()
	if err != nil || n != size || hex.EncodeToString(sum.Sum(nil)) != resp.Header.Get(wallbox.ChecksumHeader) {
		t.Errorf("download: %d bytes, %v, sha256 %x, header %s", n, err, sum.Sum(nil), resp.Header.Get(wallbox.ChecksumHeader))
	}
	up := make([]byte, 1<<20)
	rand.Read(up)
	resp, err = http.Post(base+"/api/upload", "application/octet-stream", bytes.NewReader(up))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	want := sha256.Sum256(up)
	if !strings.Contains(string(body), hex.EncodeToString(want[:])) {
		t.Errorf("upload answer %s does not hold the body's sha256 %x", body, want)
	}

	// The slot is in use: another connect takes the next one.
	second := u.startConnect(t, uid)
	if second.slot == c.slot {
		t.Errorf("two connects share key slot %d", c.slot)
	}
	second.stop(t)
	res := u.with(envPassword, "password-1").fail(exitError, nil, "connect", uid, "--slot", "9")
	contains(t, "connect --slot 9", res.stderr, "no key slot 9", "0, 1, 2 and 3")
	// A port in use fails before the password is asked for.
	ft := newFakeTerm("password-1")
	res = u.fail(exitError, ft, "connect", uid, "--listen", c.addr)
	contains(t, "connect on a port in use", res.stderr, "--listen", "address already in use")
	if len(ft.prompts) != 0 {
		t.Errorf("connect on a port in use asked %q", ft.prompts)
	}

	// The relay restarts (same addresses, same data): the same connect
	// serves again without anything done to it.
	r.stop()
	r = startRelayUDP(t, r.dataDir, r.addr, udp)
	restarted := time.Now()
	for {
		err := tryGet(base + "/api/status")
		if err == nil {
			break
		}
		if time.Since(restarted) > time.Minute {
			t.Fatalf("no answer through the tunnel a minute after the relay restarted: %v", err)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Logf("the tunnel answered again %s after the relay restarted", time.Since(restarted).Round(time.Millisecond))
	c.stop(t)
	contains(t, "connect stdout", c.stdout.String(), "Forwarding http://"+c.addr+" -> "+uid+" (end to end encrypted)", "Stopped forwarding")
}

// connectRun is a connect running in the background.
type connectRun struct {
	addr   string // the forwarded address
	slot   int
	stdout *lineWriter
	stderr *lineWriter
	cancel context.CancelFunc
	done   chan int
}

// startConnect starts 'connect uid' on 127.0.0.1:0 and waits until it
// forwards.
func (u *user) startConnect(t *testing.T, uid string) *connectRun {
	t.Helper()
	env := map[string]string{envPassword: "password-1"}
	for k, v := range u.env {
		env[k] = v
	}
	ctx, cancel := context.WithCancel(t.Context())
	c := &connectRun{stdout: newLineWriter(), stderr: newLineWriter(), cancel: cancel, done: make(chan int, 1)}
	go func() {
		c.done <- run(ctx, []string{"connect", uid, "--listen", "127.0.0.1:0"}, strings.NewReader(""), c.stdout, c.stderr, func(k string) string { return env[k] })
	}()
	t.Cleanup(func() {
		cancel()
		<-c.done
	})
	m := c.stdout.wait(t, c.done, regexp.MustCompile(`Forwarding http://(\S+) -> `))
	c.addr = m[1]
	m = c.stderr.wait(t, c.done, regexp.MustCompile(`Session on key slot (\d+) `))
	fmt.Sscan(m[1], &c.slot)
	return c
}

// stop ends the connect as Ctrl-C would and checks that it ends cleanly.
func (c *connectRun) stop(t *testing.T) {
	t.Helper()
	c.cancel()
	code := <-c.done
	t.Logf("connect -> %d\nstdout:\n%s\nstderr:\n%s", code, c.stdout.String(), c.stderr.String())
	if code != exitOK {
		t.Errorf("connect ended with %d", code)
	}
	c.done <- exitOK // for the cleanup
	if _, err := net.DialTimeout("tcp", c.addr, time.Second); err == nil {
		t.Errorf("%s still accepts connections after connect ended", c.addr)
	}
}

// waitOnline waits until the relay reports the device online.
func (u *user) waitOnline(t *testing.T, r *testRelay, uid string) {
	t.Helper()
	c, err := apiclient.New(r.url, apiclient.WithInsecureTLS(), apiclient.WithSessionToken(u.loadState().SessionToken))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		list, err := c.Devices(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range list {
			if d.UID == uid && d.Online {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s not online after 20 s: %+v", uid, list)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := (&http.Client{Timeout: 20 * time.Second}).Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// tryGet GETs url on a new connection, with a short time limit.
func tryGet(url string) error {
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr, Timeout: 3 * time.Second}).Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(resp.Status)
	}
	return nil
}

// freeUDPAddr returns a local UDP address nothing listens on.
func freeUDPAddr(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	return addr
}

// lineWriter collects output written by a run in the background and lets
// a test wait for a line.
type lineWriter struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{} // closed and replaced on every write
}

func newLineWriter() *lineWriter { return &lineWriter{changed: make(chan struct{})} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	close(w.changed)
	w.changed = make(chan struct{})
	return w.buf.Write(p)
}

func (w *lineWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// wait returns the submatches of the first line that re matches, waiting
// for it to be written; it fails the test if the run ends first.
func (w *lineWriter) wait(t *testing.T, done chan int, re *regexp.Regexp) []string {
	t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		sc := bufio.NewScanner(bytes.NewReader(w.buf.Bytes()))
		changed := w.changed
		w.mu.Unlock()
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				return m
			}
		}
		select {
		case <-changed:
		case code := <-done:
			done <- code
			t.Fatalf("connect ended with %d before printing %q\nstdout:\n%s", code, re, w.String())
		case <-timeout:
			t.Fatalf("no line %q after 30 s:\n%s", re, w.String())
		}
	}
}

// TestForward checks the port forwarding on its own, with a plain TCP
// echo server as the device: parallel connections, half-closes, a failing
// dial and the shutdown.
func TestForward(t *testing.T) {
	t.Parallel()
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var failDial atomic.Bool
	var logs lockedWriter
	logs.w = &bytes.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- forward(ctx, ln, func(ctx context.Context) (net.Conn, error) {
			if failDial.Load() {
				return nil, errors.New("no route to the device")
			}
			return (&net.Dialer{}).DialContext(ctx, "tcp", echo.Addr().String())
		}, func(format string, args ...any) { fmt.Fprintf(&logs, format+"\n", args...) })
	}()

	// Parallel connections, each sending, half-closing and reading back.
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			msg := bytes.Repeat([]byte{byte(i)}, 64<<10+i)
			go func() {
				c.Write(msg)
				c.(*net.TCPConn).CloseWrite()
			}()
			got, err := io.ReadAll(c)
			if err != nil || !bytes.Equal(got, msg) {
				t.Errorf("connection %d: %d bytes back, %v", i, len(got), err)
			}
		})
	}
	wg.Wait()

	// A connection whose dial fails is closed at once.
	failDial.Store(true)
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("read %d bytes from a connection whose dial failed", n)
	}
	c.Close()
	failDial.Store(false)

	// An open connection ends with the forwarding.
	open, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := open.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(open, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("forward = %v", err)
	}
	if _, err := open.Read(make([]byte, 1)); err == nil {
		t.Error("a connection stayed open after forward returned")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("the listener accepts after forward returned")
	}
	logs.mu.Lock()
	contains(t, "forward's log", logs.w.(*bytes.Buffer).String(), "cannot reach the device", "no route to the device")
	logs.mu.Unlock()
}

func TestParseTTL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{"90m": 90 * time.Minute, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "1h30m": 90 * time.Minute, "0d": 0} {
		if got, err := parseTTL(in); got != want || err != nil {
			t.Errorf("parseTTL(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "7", "1.5d", "-1d", "soon", "7days"} {
		if got, err := parseTTL(in); err == nil {
			t.Errorf("parseTTL(%q) = %v, want an error", in, got)
		}
	}
}

func TestParseListen(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"127.0.0.1:8080", "127.0.0.1:0", "[::1]:8080", "localhost:8080", ":8080", "0.0.0.0:80"} {
		if _, err := parseListen(in); err != nil {
			t.Errorf("parseListen(%q): %v", in, err)
		}
	}
	for _, in := range []string{"8080", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:65536", "relay.example:80", "[::1]"} {
		if _, err := parseListen(in); err == nil {
			t.Errorf("parseListen(%q): no error", in)
		}
	}
}
