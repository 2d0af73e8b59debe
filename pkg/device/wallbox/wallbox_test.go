package wallbox

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// clock is a settable clock for NowFunc.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestWallbox(t *testing.T, cfg Config) (*Wallbox, *httptest.Server) {
	t.Helper()
	if cfg.UID == "" {
		cfg.UID = "warp2-Test"
	}
	cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	w := New(cfg)
	srv := httptest.NewServer(w)
	t.Cleanup(srv.Close)
	return w, srv
}

func getStatus(t *testing.T, base string) Status {
	t.Helper()
	res, err := http.Get(base + "/api/status")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /api/status: %s, %q", res.Status, res.Header.Get("Content-Type"))
	}
	var s Status
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// TestStatus follows one device through a charging cycle on a fake clock:
// the values change, energy only grows while charging.
func TestStatus(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)}
	w, srv := newTestWallbox(t, Config{UID: "warp2-AbCd", Firmware: "fw 1", NowFunc: clk.Now})
	// at moves the clock forward to position p of the device's cycle.
	start := clk.Now().Add(cycle - w.sim.pos(clk.Now()))
	at := func(p time.Duration) Status {
		t.Helper()
		clk.Add(start.Add(p).Sub(clk.Now()))
		return getStatus(t, srv.URL)
	}
	s := at(0)
	if s.UID != "warp2-AbCd" || s.Firmware != "fw 1" || s.State != StateReady || s.PowerW != 0 || s.MaxCurrentA != defaultCurrentA {
		t.Fatalf("at the cycle's start: %+v", s)
	}
	if s := at(connectAt); s.State != StateConnected || s.PowerW != 0 {
		t.Fatalf("at %v: %+v", connectAt, s)
	}
	charging := at(chargeAt + rampUp + time.Second)
	if charging.State != StateCharging || charging.PowerW < 10000 || charging.PowerW > 11500 || charging.CurrentA < 14 {
		t.Fatalf("charging: %+v", charging)
	}
	later := at(chargeAt + rampUp + time.Second + time.Minute)
	if later.State != StateCharging || later.EnergyKWh <= charging.EnergyKWh || later.SessionEnergyKWh <= charging.SessionEnergyKWh {
		t.Fatalf("a minute of charging later: %+v, before %+v", later, charging)
	}
	// About 11 kW for a minute: about 0.18 kWh.
	if got := later.SessionEnergyKWh - charging.SessionEnergyKWh; got < 0.15 || got > 0.2 {
		t.Errorf("a minute of charging added %v kWh", got)
	}
	if later.UptimeS <= charging.UptimeS || !later.Time.After(charging.Time) {
		t.Errorf("uptime or time did not advance: %+v", later)
	}
	finished := at(finishAt + time.Second)
	if finished.State != StateFinished || finished.PowerW != 0 || finished.SessionEnergyKWh < 0.3 { // two minutes at 11 kW, less the ramp
		t.Fatalf("finished: %+v", finished)
	}
	if s := at(cycle + time.Second); s.State != StateReady || s.SessionEnergyKWh != 0 || s.EnergyKWh != finished.EnergyKWh {
		t.Fatalf("next cycle: %+v", s)
	}
}

func TestStatusPage(t *testing.T) {
	t.Parallel()
	_, srv := newTestWallbox(t, Config{UID: "warp2-<b>"})
	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("GET /: %s %q", res.Status, res.Header.Get("Content-Type"))
	}
	for _, want := range []string{"warp2-&lt;b&gt;", `id="power_w"`, `id="energy_kwh"`, `id="state"`, `new URL("ws"`} {
		if !bytes.Contains(body, []byte(want)) {
			t.Errorf("status page lacks %q", want)
		}
	}
	res, err = http.Get(srv.URL + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %s", res.Status)
	}
}

func TestDownload(t *testing.T) {
	t.Parallel()
	_, srv := newTestWallbox(t, Config{})
	get := func(size string) (*http.Response, []byte) {
		t.Helper()
		res, err := http.Get(srv.URL + "/api/download?size=" + size)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
	}
	var prev []byte
	for _, n := range []int{0, 1, 1000, 64<<10 + 3, 5 << 20} {
		res, body := get(fmt.Sprint(n))
		if res.StatusCode != http.StatusOK || len(body) != n || res.ContentLength != int64(n) {
			t.Fatalf("size %d: %s, %d bytes, Content-Length %d", n, res.Status, len(body), res.ContentLength)
		}
		sum := sha256.Sum256(body)
		if got := res.Header.Get(ChecksumHeader); got != hex.EncodeToString(sum[:]) || got != DownloadSHA256(int64(n)) {
			t.Fatalf("size %d: checksum header %q, body's %x", n, got, sum)
		}
		if !bytes.HasPrefix(body, prev) {
			t.Fatalf("size %d: not an extension of the shorter download", n)
		}
		_, again := get(fmt.Sprint(n))
		if !bytes.Equal(again, body) {
			t.Fatalf("size %d: two downloads differ", n)
		}
		prev = body
	}
	if got := DownloadSHA256(0); got != "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" {
		t.Errorf("empty download checksum %s", got)
	}
	for _, bad := range []string{"", "-1", "x", "1e3", fmt.Sprint(int64(MaxDownloadSize) + 1)} {
		if res, _ := get(url.QueryEscape(bad)); res.StatusCode != http.StatusBadRequest {
			t.Errorf("size %q: %s", bad, res.Status)
		}
	}
}

// TestUpload streams 20 MB that exist nowhere in one piece.
func TestUpload(t *testing.T) {
	t.Parallel()
	_, srv := newTestWallbox(t, Config{})
	const size = 20 << 20
	src := io.LimitReader(rand.NewChaCha8([32]byte{1}), size)
	want := sha256.New()
	res, err := http.Post(srv.URL+"/api/upload", "application/octet-stream", io.TeeReader(src, want))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var got UploadResult
	if err := json.NewDecoder(res.Body).Decode(&got); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || got.Size != size || got.SHA256 != hex.EncodeToString(want.Sum(nil)) {
		t.Fatalf("upload: %s %+v, want %d bytes %x", res.Status, got, size, want.Sum(nil))
	}
	res, err = http.Get(srv.URL + "/api/upload")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/upload: %s", res.Status)
	}
}

func TestWebSocket(t *testing.T) {
	t.Parallel()
	_, srv := newTestWallbox(t, Config{UID: "warp2-WS", PushInterval: 20 * time.Millisecond})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Origin": {"https://portal.example"}}, // another origin, as from the portal's frame
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.SetReadLimit(wsReadLimit)

	// Pushes arrive by themselves, with changing uptime or time eventually;
	// two at least.
	for i := range 2 {
		typ, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var s Status
		if typ != websocket.MessageText || json.Unmarshal(b, &s) != nil || s.UID != "warp2-WS" {
			t.Fatalf("push %d: %v %q", i, typ, b)
		}
	}
	// Echoes come back verbatim, between pushes.
	msgs := []struct {
		typ websocket.MessageType
		b   []byte
	}{
		{websocket.MessageText, []byte("hello wallbox")},
		{websocket.MessageBinary, bytes.Repeat([]byte{0, 1, 2, 0xff}, 10000)},
		{websocket.MessageText, []byte(`{"uid":"not a status push"}`)},
	}
	for _, m := range msgs {
		if err := c.Write(ctx, m.typ, m.b); err != nil {
			t.Fatal(err)
		}
		for {
			typ, b, err := c.Read(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if typ == m.typ && bytes.Equal(b, m.b) {
				break
			}
			if typ != websocket.MessageText || !bytes.Contains(b, []byte(`"uid":"warp2-WS"`)) {
				t.Fatalf("neither the echo nor a push: %v %q", typ, b)
			}
		}
	}
	if err := c.Close(websocket.StatusNormalClosure, ""); err != nil {
		t.Fatalf("close: %v", err)
	}
}

// digestClient answers Digest challenges as a browser or curl would,
// computed here independently of the server's code.
type digestClient struct {
	user, password string
	alg            string // "SHA-256", "MD5", "MD5-sess", ...
	nc             int
}

// authorize returns the Authorization header for method and uri answering
// the challenge for c.alg in res.
func (c *digestClient) authorize(t *testing.T, res *http.Response, method, uri string) string {
	t.Helper()
	var ch map[string]string
	for _, h := range res.Header.Values("WWW-Authenticate") {
		p := parseChallenge(t, h)
		if p["algorithm"] == strings.TrimSuffix(c.alg, "-sess") {
			ch = p
		}
	}
	if ch == nil {
		t.Fatalf("no %s challenge in %q", c.alg, res.Header.Values("WWW-Authenticate"))
	}
	var newHash func() hash.Hash = md5.New
	if strings.HasPrefix(c.alg, "SHA-256") {
		newHash = sha256.New
	}
	h := func(s string) string {
		x := newHash()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	c.nc++
	nc := fmt.Sprintf("%08x", c.nc)
	cnonce := fmt.Sprintf("c%dn", c.nc)
	ha1 := h(c.user + ":" + ch["realm"] + ":" + c.password)
	if strings.HasSuffix(c.alg, "-sess") {
		ha1 = h(ha1 + ":" + ch["nonce"] + ":" + cnonce)
	}
	ha2 := h(method + ":" + uri)
	resp := h(ha1 + ":" + ch["nonce"] + ":" + nc + ":" + cnonce + ":auth:" + ha2)
	return fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", algorithm=%s, qop=auth, nc=%s, cnonce="%s", response="%s", opaque="%s"`,
		c.user, ch["realm"], ch["nonce"], uri, c.alg, nc, cnonce, resp, ch["opaque"])
}

// parseChallenge parses a WWW-Authenticate: Digest header simply (the
// server's values have no escapes).
func parseChallenge(t *testing.T, h string) map[string]string {
	t.Helper()
	rest, ok := strings.CutPrefix(h, "Digest ")
	if !ok {
		t.Fatalf("not a Digest challenge: %q", h)
	}
	p := map[string]string{}
	for _, part := range strings.Split(rest, ", ") {
		k, v, _ := strings.Cut(part, "=")
		p[k] = strings.Trim(v, `"`)
	}
	return p
}

func TestDigestAuth(t *testing.T) {
	t.Parallel()
	clk := &clock{now: time.Now()}
	w, srv := newTestWallbox(t, Config{UID: "warp2-Dig", User: "admin", Password: "s3cret", NowFunc: clk.Now})

	do := func(method, uri, auth string, body io.Reader) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+uri, body)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		return res
	}
	challenge := do("GET", "/settings", "", nil)
	if challenge.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no credentials: %s", challenge.Status)
	}
	hs := challenge.Header.Values("WWW-Authenticate")
	if len(hs) != 2 || !strings.Contains(hs[0], "algorithm=SHA-256") || !strings.Contains(hs[1], "algorithm=MD5") ||
		!strings.Contains(hs[0], `qop="auth"`) || !strings.Contains(hs[0], `realm="warp2-Dig"`) {
		t.Fatalf("challenges %q", hs)
	}

	for _, tc := range []struct {
		name           string
		user, password string
		alg            string
		method, uri    string // the request; the digest is over uri too unless digestURI is set
		digestURI      string
		want           int
	}{
		{"sha-256", "admin", "s3cret", "SHA-256", "GET", "/settings", "", 200},
		{"md5", "admin", "s3cret", "MD5", "GET", "/settings", "", 200},
		{"md5-sess", "admin", "s3cret", "MD5-sess", "GET", "/settings", "", 200},
		{"sha-256-sess", "admin", "s3cret", "SHA-256-sess", "GET", "/settings", "", 200},
		{"wrong password", "admin", "secret", "SHA-256", "GET", "/settings", "", 401},
		{"wrong user", "root", "s3cret", "MD5", "GET", "/settings", "", 401},
		{"digest for another uri", "admin", "s3cret", "SHA-256", "GET", "/settings", "/api/status", 401},
		{"no realm protection elsewhere", "admin", "s3cret", "SHA-256", "GET", "/api/status", "", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &digestClient{user: tc.user, password: tc.password, alg: tc.alg}
			uri := tc.uri
			if tc.digestURI != "" {
				uri = tc.digestURI
			}
			res := do(tc.method, tc.uri, c.authorize(t, challenge, tc.method, uri), nil)
			if res.StatusCode != tc.want {
				t.Fatalf("%s: %s, want %d", tc.name, res.Status, tc.want)
			}
			if tc.want == 401 && strings.Contains(res.Header.Get("WWW-Authenticate"), "stale=true") {
				t.Errorf("bad credentials reported as a stale nonce")
			}
		})
	}

	// A changed setting shows in the status.
	c := &digestClient{user: "admin", password: "s3cret", alg: "SHA-256"}
	res := do("POST", "/settings", c.authorize(t, challenge, "POST", "/settings"), strings.NewReader("max_current_a=10&charging_enabled=1"))
	if res.StatusCode != http.StatusOK || w.Status().MaxCurrentA != 10 || !w.Status().ChargingEnabled {
		t.Fatalf("POST /settings: %s, status %+v", res.Status, w.Status())
	}
	res = do("POST", "/settings", c.authorize(t, challenge, "POST", "/settings"), strings.NewReader("max_current_a=99"))
	if res.StatusCode != http.StatusBadRequest || w.Status().MaxCurrentA != 10 {
		t.Fatalf("POST /settings with 99 A: %s, status %+v", res.Status, w.Status())
	}

	// A tampered nonce is refused; an old one is stale, and the client
	// gets a fresh one.
	auth := c.authorize(t, challenge, "GET", "/settings")
	p := parseChallenge(t, hs[0])
	tampered := strings.Replace(auth, p["nonce"], "A"+p["nonce"][1:], 1)
	if res := do("GET", "/settings", tampered, nil); res.StatusCode != 401 || strings.Contains(res.Header.Get("WWW-Authenticate"), "stale=true") {
		t.Errorf("tampered nonce: %s %q", res.Status, res.Header.Values("WWW-Authenticate"))
	}
	clk.Add(nonceLifetime + time.Second)
	stale := do("GET", "/settings", c.authorize(t, challenge, "GET", "/settings"), nil)
	if stale.StatusCode != 401 || !strings.Contains(stale.Header.Get("WWW-Authenticate"), "stale=true") {
		t.Fatalf("old nonce: %s %q", stale.Status, stale.Header.Values("WWW-Authenticate"))
	}
	if res := do("GET", "/settings", c.authorize(t, stale, "GET", "/settings"), nil); res.StatusCode != 200 {
		t.Fatalf("fresh nonce after stale: %s", res.Status)
	}
}

func TestParseDigestParams(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   string
		want map[string]string
		ok   bool
	}{
		{`username="a", Realm="r\"x", nc=00000001, qop=auth`, map[string]string{"username": "a", "realm": `r"x`, "nc": "00000001", "qop": "auth"}, true},
		{`  a=1,,b="2"  `, map[string]string{"a": "1", "b": "2"}, true},
		{`a="unterminated`, nil, false},
		{`=x`, nil, false},
		{`a=1, a=2`, nil, false},
		{`novalue`, nil, false},
	} {
		got, err := parseDigestParams(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("%q: error %v", tc.in, err)
			continue
		}
		if tc.ok && fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseDigestParams(f *testing.F) {
	f.Add(`username="admin", realm="warp2-AbCd", nonce="abc", uri="/settings", algorithm=SHA-256, qop=auth, nc=00000001, cnonce="x", response="00"`)
	f.Add(`a="\\\"", b=`)
	f.Fuzz(func(t *testing.T, s string) {
		parseDigestParams(s) // must not panic
	})
}
