package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/device"
	"github.com/blindrelay/blindrelay/pkg/device/wallbox"
	"github.com/blindrelay/blindrelay/pkg/tunnel"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/wire"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// httpClient returns a client that trusts the relay's certificate (the
// same across restarts: it is kept in the data directory).
func (r *relay) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: r.srv.CertPool()}}}
}

// deviceURL is the device's web UI inside the tunnel.
var deviceURL = "http://" + netip.AddrPortFrom(wire.DeviceSessionAddr4, wire.DeviceUIPort).String()

// user is a registered, confirmed and logged-in account.
type user struct {
	c        *apiclient.Client
	keys     *zkcrypto.UserKeys
	password []byte
	token    string // the session token
}

// newUser signs up email on r, confirms it and logs in.
func newUser(t *testing.T, r *relay, email string) *user {
	t.Helper()
	ctx := t.Context()
	u := &user{c: r.client(t), password: []byte("device test Passw0rd " + rand8(t))}
	var err error
	u.keys, err = u.c.Register(ctx, email, u.password, "en", zkcrypto.TestKDFParams())
	must(t, "Register", err)
	_, err = u.c.Verify(ctx, r.mailbox.link(t, email, account.MailVerifyEmail))
	must(t, "Verify", err)
	sess, _, err := u.c.Login(ctx, email, u.password)
	must(t, "Login", err)
	u.token = sess.Token
	return u
}

// pairingToken makes a one-use pairing token as blindctl token create
// does: the relay issues the secret, the client adds the public keys it
// holds itself.
func (u *user) pairingToken(t *testing.T, name string) string {
	t.Helper()
	info, err := u.c.CreatePairingToken(t.Context(), name, 1, time.Hour)
	must(t, "CreatePairingToken", err)
	tok, err := u.c.NewPairingToken(t.Context(), info, u.keys.BoxPublic[:], u.keys.SignPublic)
	must(t, "NewPairingToken", err)
	return tok.String()
}

// device returns the user's device id, or nil if it is not listed.
func (u *user) device(t *testing.T, id string) *apiclient.Device {
	t.Helper()
	devs, err := u.c.Devices(t.Context())
	must(t, "Devices", err)
	for i := range devs {
		if devs[i].ID == id {
			return &devs[i]
		}
	}
	return nil
}

// waitOnline waits until GET /devices shows the device online and returns
// how long that took.
func (u *user) waitOnline(t *testing.T, id string, timeout time.Duration) time.Duration {
	t.Helper()
	return poll(t, "device "+id+" online", timeout, func() bool {
		d := u.device(t, id)
		return d != nil && d.Online
	})
}

// slot is a key slot's keys, as a client opens them.
type slot struct {
	index int
	priv  wgkey.Private
	psk   wgkey.Preshared
}

// openSlot fetches the device's key slots and opens the sealed keys of
// index with the user's box key, as blindctl connect does.
func (u *user) openSlot(t *testing.T, deviceID string, index int) slot {
	t.Helper()
	slots, err := u.c.DeviceSlots(t.Context(), deviceID)
	must(t, "DeviceSlots", err)
	for _, s := range slots {
		if s.Index != index {
			continue
		}
		plain, err := u.keys.OpenSealed(s.Sealed)
		must(t, "OpenSealed", err)
		if len(plain) != 2*wgkey.Size {
			t.Fatalf("sealed slot keys: %d bytes", len(plain))
		}
		var k slot
		k.index = s.Index
		copy(k.priv[:], plain[:wgkey.Size])
		copy(k.psk[:], plain[wgkey.Size:])
		if pub := k.priv.Public(); !bytes.Equal(pub[:], s.BrowserPublicKey) {
			t.Fatal("the opened slot key does not belong to the slot's public key")
		}
		return k
	}
	t.Fatalf("no key slot %d on device %s", index, deviceID)
	return slot{}
}

// dialSession brings a tunnel up to the device as blindctl connect does,
// with the WebSocket at url (the relay's tunnel route, or a proxy of it).
func (u *user) dialSession(t *testing.T, url string, hc *http.Client, devKey wgkey.Public, k slot) *tunnel.Tunnel {
	t.Helper()
	v4, _ := wire.SlotAddr4(k.index)
	v6, _ := wire.SlotAddr6(k.index)
	tun, err := tunnel.Dial(t.Context(), tunnel.Config{
		URL:           url,
		Header:        http.Header{"Authorization": {"Bearer " + u.token}},
		HTTPClient:    hc,
		PrivateKey:    k.priv,
		PeerPublicKey: devKey,
		PresharedKey:  k.psk,
		LocalAddrs:    []netip.Addr{v4, v6},
		PeerAddrs: []netip.Prefix{
			netip.PrefixFrom(wire.DeviceSessionAddr4, 32),
			netip.PrefixFrom(wire.DeviceSessionAddr6, 128),
		},
		Logger: testLogger(t, slog.LevelInfo).With("side", "tunnel"),
	})
	must(t, "tunnel.Dial", err)
	t.Cleanup(func() { tun.Close() })
	return tun
}

// runner runs a device until stopped (or the test ends) and can run it
// again, as a rebooting device does.
type runner struct {
	d      *device.Device
	cancel context.CancelFunc
	done   chan error
}

// run starts the device.
func (r *runner) run(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.d.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
}

// stop ends Run and waits for it; a stopped runner stays stopped.
func (r *runner) stop(t *testing.T) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("device Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Error("device Run did not return within 30 s of its context's end")
	}
}

// pairDevice pairs a device with the token and the UI, its data in a new
// directory.
func pairDevice(t *testing.T, r *relay, token, uid string, ui http.Handler) *device.Device {
	t.Helper()
	hc := r.httpClient()
	d, err := device.Pair(t.Context(), device.Config{
		DataDir:    t.TempDir(),
		UID:        uid,
		Firmware:   "e2e-1.0",
		UI:         ui,
		HTTPClient: hc,
		Logger:     testLogger(t, slog.LevelInfo).With("side", "device", "uid", uid),
	}, token)
	must(t, "device.Pair", err)
	return d
}

// markedUI is the emulated wallbox's UI with one more page, /marker, whose
// body carries marker: plaintext that must never be seen by the relay.
func markedUI(uid, marker string) http.Handler {
	wb := wallbox.New(wallbox.Config{UID: uid})
	mux := http.NewServeMux()
	mux.Handle("/", wb)
	mux.HandleFunc("GET /marker", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><title>%s</title><p>%s</p>\n", marker, marker)
	})
	return mux
}

// get fetches path from the device through tun, bounded by timeout, and
// returns the body of a 200 answer.
func get(ctx context.Context, tun *tunnel.Tunnel, path string, timeout time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, deviceURL+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := tun.HTTPClient().Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return b, nil
}

// checkPages checks the status page, the marker page and the status JSON.
func checkPages(t *testing.T, tun *tunnel.Tunnel, uid, marker string) {
	t.Helper()
	b, err := get(t.Context(), tun, "/", 30*time.Second)
	must(t, "GET /", err)
	if !bytes.Contains(b, []byte(uid)) {
		t.Errorf("status page without the UID %s:\n%s", uid, b)
	}
	b, err = get(t.Context(), tun, "/marker", 30*time.Second)
	must(t, "GET /marker", err)
	if !bytes.Contains(b, []byte(marker)) {
		t.Errorf("marker page without the marker: %s", b)
	}
	b, err = get(t.Context(), tun, "/api/status", 30*time.Second)
	must(t, "GET /api/status", err)
	var st wallbox.Status
	if err := json.Unmarshal(b, &st); err != nil || st.UID != uid {
		t.Errorf("status %s: %v", b, err)
	}
}

// checkDownload streams a download of size bytes and checks its SHA-256
// against the wallbox's.
func checkDownload(t *testing.T, tun *tunnel.Tunnel, size int64) {
	t.Helper()
	start := time.Now()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, deviceURL+"/api/download?size="+strconv.FormatInt(size, 10), nil)
	must(t, "download request", err)
	resp, err := tun.HTTPClient().Do(req)
	must(t, "download", err)
	defer resp.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	must(t, "download body", err)
	got := hex.EncodeToString(h.Sum(nil))
	want := wallbox.DownloadSHA256(size)
	if n != size || got != want || resp.Header.Get(wallbox.ChecksumHeader) != want {
		t.Fatalf("download: %d bytes, sha256 %s (header %s), want %d bytes, %s", n, got, resp.Header.Get(wallbox.ChecksumHeader), size, want)
	}
	d := time.Since(start)
	t.Logf("download of %d MB: %s, %.1f MB/s", size>>20, d.Round(time.Millisecond), float64(size)/(1<<20)/d.Seconds())
}

// markerReader returns size bytes made of marker lines, so that uploads
// carry the marker too.
func markerReader(marker string, size int64) io.Reader {
	line := []byte(marker + "\n")
	return io.LimitReader(&repeatReader{b: line}, size)
}

type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], r.b[r.off:])
		n += c
		r.off = (r.off + c) % len(r.b)
	}
	return n, nil
}

// checkUpload streams size bytes to the device and checks the SHA-256 it
// answers.
func checkUpload(t *testing.T, tun *tunnel.Tunnel, marker string, size int64) {
	t.Helper()
	start := time.Now()
	h := sha256.New()
	io.Copy(h, markerReader(marker, size))
	want := hex.EncodeToString(h.Sum(nil))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, deviceURL+"/api/upload", markerReader(marker, size))
	must(t, "upload request", err)
	req.ContentLength = size
	resp, err := tun.HTTPClient().Do(req)
	must(t, "upload", err)
	defer resp.Body.Close()
	var res wallbox.UploadResult
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("upload answer %s: %v", resp.Status, err)
	}
	if res.Size != size || res.SHA256 != want {
		t.Fatalf("upload: device saw %d bytes, sha256 %s; want %d, %s", res.Size, res.SHA256, size, want)
	}
	d := time.Since(start)
	t.Logf("upload of %d MB: %s, %.1f MB/s", size>>20, d.Round(time.Millisecond), float64(size)/(1<<20)/d.Seconds())
}

// checkWebSocket opens the device's /ws through the tunnel and checks that
// a message carrying the marker comes back.
func checkWebSocket(t *testing.T, tun *tunnel.Tunnel, marker string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(deviceURL, "http")+"/ws", &websocket.DialOptions{HTTPClient: tun.HTTPClient()})
	must(t, "dial /ws", err)
	defer ws.CloseNow()
	msg := "echo " + marker
	must(t, "write /ws", ws.Write(ctx, websocket.MessageText, []byte(msg)))
	for pushes := 0; ; pushes++ {
		_, b, err := ws.Read(ctx)
		must(t, "read /ws", err)
		if string(b) == msg {
			break
		}
		var st wallbox.Status
		if err := json.Unmarshal(b, &st); err != nil || pushes > 100 {
			t.Fatalf("unexpected /ws message %q", b)
		}
	}
	ws.Close(websocket.StatusNormalClosure, "")
}

// checkParallel makes n requests at once, each on a connection of its own.
func checkParallel(t *testing.T, tun *tunnel.Tunnel, marker string, n int) {
	t.Helper()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			path := "/marker"
			if i%2 == 1 {
				path = "/api/download?size=" + strconv.Itoa(256<<10)
			}
			b, err := get(t.Context(), tun, path, 60*time.Second)
			if err == nil && i%2 == 0 && !bytes.Contains(b, []byte(marker)) {
				err = errors.New("marker page without the marker")
			}
			if err == nil && i%2 == 1 && len(b) != 256<<10 {
				err = fmt.Errorf("download: %d bytes", len(b))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("parallel request: %v", err)
		}
	}
	t.Logf("%d parallel requests: %s", n, time.Since(start).Round(time.Millisecond))
}

// poll calls cond every 50 ms until it holds and returns how long that
// took; it fails the test after timeout.
func poll(t *testing.T, what string, timeout time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > timeout {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		select {
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return time.Since(start)
}

// testLogger logs to the test at level.
func testLogger(t *testing.T, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: level}))
}

// randomMarker returns a unique plaintext marker.
func randomMarker() string { return "BLINDRELAY-PLAINTEXT-MARKER-" + rand.Text() }
