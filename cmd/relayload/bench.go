package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/mail"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// Timing of the steps around the measurement.
const (
	healthTimeout   = 60 * time.Second // relay start (PostgreSQL migrations included)
	mailTimeout     = 30 * time.Second // the confirmation mail reaching the outbox
	settleTime      = 3 * time.Second  // after pairing, before the idle sample
	controlGrace    = 20 * time.Second // control connections after all are online: give up after this long without progress
	pollCostCalls   = 10               // device-list calls timed to estimate what the polling cost
	pairConcurrent  = 4                // devicesim --pair-only processes at once
	simStopGrace    = 60 * time.Second // devicesim with thousands of devices takes a while to stop
	listInterval    = 30 * time.Second // GET /devices while waiting, when the log does not show all online
	listMinInterval = 5 * time.Second  // GET /devices while waiting, when it does
)

// Log messages of the relay (pkg/mgmt) that relayload counts.
const (
	msgDeviceOnline        = "mgmt: device online"
	msgControlConnected    = "mgmt: control connected"
	msgControlDisconnected = "mgmt: control disconnected"
	msgDeviceOffline       = "mgmt: device offline"
)

// bench is one measurement run.
type bench struct {
	o   *options
	log *slog.Logger
	dir string // work directory

	relayBin, simBin string
	relay            *child
	relayLog         *logCounter
	sims             []*child
	groups           []simGroup

	url        string // https://127.0.0.1:PORT
	udp        string // 127.0.0.1:PORT
	httpClient *http.Client
	client     *apiclient.Client // logged in
	keys       *zkcrypto.UserKeys
	dbName     string

	res *Result
}

// simGroup is one devicesim process's share of the devices.
type simGroup struct {
	dir   string
	count int
}

// measure runs the whole measurement. It returns the result so far also
// when it fails part-way, and nil only if nothing was measured.
func measure(ctx context.Context, o *options, logger *slog.Logger) (_ *Result, err error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("relayload reads /proc: Linux only")
	}
	b := &bench{o: o, log: logger, res: &Result{Devices: o.count, WindowSeconds: o.window.Seconds()}}
	defer func() {
		if cerr := b.cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	if err := b.prepare(ctx); err != nil {
		return nil, err
	}
	if err := b.startRelay(ctx); err != nil {
		return nil, err
	}
	if err := b.setUpUser(ctx); err != nil {
		return nil, err
	}
	if err := b.measureRun(ctx); err != nil {
		return b.res, err
	}
	return b.res, nil
}

// prepare makes the work directory and finds or builds the binaries.
func (b *bench) prepare(ctx context.Context) error {
	if b.o.workDir != "" {
		if err := os.MkdirAll(b.o.workDir, 0o700); err != nil {
			return fmt.Errorf("work directory: %w", err)
		}
		b.dir = b.o.workDir
	} else {
		dir, err := os.MkdirTemp("", "relayload-")
		if err != nil {
			return fmt.Errorf("work directory: %w", err)
		}
		b.dir = dir
	}
	b.log.Info("work directory", "dir", b.dir)
	var err error
	if b.relayBin, err = b.binary(ctx, b.o.relayBin, "relay"); err != nil {
		return err
	}
	if b.simBin, err = b.binary(ctx, b.o.devicesimBin, "devicesim"); err != nil {
		return err
	}
	for i, n := range split(b.o.count, b.o.perProcess) {
		b.groups = append(b.groups, simGroup{dir: filepath.Join(b.dir, fmt.Sprintf("devicesim-%02d", i)), count: n})
	}
	b.res.Processes = len(b.groups)
	return nil
}

// binary returns the absolute path of the given binary, or builds
// ./cmd/name of the module in the current directory into the work
// directory.
func (b *bench) binary(ctx context.Context, given, name string) (string, error) {
	if given != "" {
		path, err := exec.LookPath(given)
		if err != nil {
			return "", fmt.Errorf("--%s: %w", name, err)
		}
		return filepath.Abs(path)
	}
	out := filepath.Join(b.dir, "bin", name)
	b.log.Info("building", "package", "cmd/"+name, "to", out)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/blindrelay/blindrelay/cmd/"+name)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build cmd/%s (run relayload inside the blindrelay module, or give --%s): %w\n%s", name, name, err, msg)
	}
	return out, nil
}

// split divides count devices into processes of at most per each, as
// evenly as possible.
func split(count, per int) []int {
	n := (count + per - 1) / per
	out := make([]int, n)
	for i := range out {
		out[i] = count / n
		if i < count%n {
			out[i]++
		}
	}
	return out
}

// cleanup stops every child (devicesim first, then the relay), drops a
// fresh PostgreSQL schema and removes a temporary work directory.
func (b *bench) cleanup() error {
	var errs []error
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range b.sims {
		wg.Go(func() {
			if err := c.stop(simStopGrace); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if b.relay != nil {
		if err := b.relay.stop(stopGrace); err != nil {
			errs = append(errs, err)
		}
	}
	if b.dbName != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := dropSchema(ctx, b.o.databaseURL, b.dbName); err != nil {
			errs = append(errs, err)
		}
		cancel()
	}
	if b.o.workDir == "" && b.dir != "" {
		if err := os.RemoveAll(b.dir); err != nil {
			errs = append(errs, fmt.Errorf("remove work directory: %w", err))
		}
	} else if b.dir != "" {
		b.log.Info("kept the work directory (relay and devicesim logs are there)", "dir", b.dir)
	}
	return errors.Join(errs...)
}

// freePort returns a port that was free on 127.0.0.1 for network ("tcp"
// or "udp") a moment ago.
func freePort(network string) (int, error) {
	var addr net.Addr
	switch network {
	case "tcp":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		addr = l.Addr()
		l.Close()
	default:
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		addr = c.LocalAddr()
		c.Close()
	}
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(port)
}

// startRelay starts the relay and waits until it serves /healthz.
func (b *bench) startRelay(ctx context.Context) error {
	tcp, err := freePort("tcp")
	if err != nil {
		return fmt.Errorf("free TCP port: %w", err)
	}
	udp, err := freePort("udp")
	if err != nil {
		return fmt.Errorf("free UDP port: %w", err)
	}
	b.url = fmt.Sprintf("https://127.0.0.1:%d", tcp)
	b.udp = fmt.Sprintf("127.0.0.1:%d", udp)
	dataDir := filepath.Join(b.dir, "relay")
	env := scrubEnv(os.Environ())
	b.res.Database = "sqlite"
	if b.o.databaseURL != "" {
		b.res.Database = "postgres"
		dbURL := b.o.databaseURL
		if b.o.freshSchema {
			name := "relayload_" + strconv.FormatInt(time.Now().UnixNano(), 36)
			if dbURL, err = createSchema(ctx, b.o.databaseURL, name); err != nil {
				return err
			}
			b.dbName = name
		}
		env = append(env, "BLINDRELAY_DATABASE_URL="+dbURL) // not on the command line
	}
	logPath := filepath.Join(b.dir, "relay.log")
	b.relay, err = startChild("relay", logPath, env, b.relayBin, "serve",
		"--data-dir", dataDir,
		"--listen", fmt.Sprintf("127.0.0.1:%d", tcp),
		"--public-url", b.url,
		"--udp-listen", b.udp,
		"--public-udp", b.udp,
		// The pairing proxy (pairing.go) is a reverse proxy on loopback.
		"--trusted-proxy", "127.0.0.1",
		"--log-format", "json",
		"--log-level", b.o.relayLogLevel,
	)
	if err != nil {
		return err
	}
	b.relayLog = newLogCounter(logPath, msgDeviceOnline, msgDeviceOffline, msgControlConnected, msgControlDisconnected)
	b.log.Info("relay started", "pid", b.relay.pid(), "url", b.url, "udp", b.udp, "database", b.res.Database, "log", logPath)

	// The certificate is written before the relay listens.
	certPath := filepath.Join(dataDir, "tls", "cert.pem")
	deadline := time.Now().Add(healthTimeout)
	for {
		if b.client == nil {
			if pem, err := os.ReadFile(certPath); err == nil {
				if err := b.newClient(pem); err != nil {
					return err
				}
			}
		}
		if b.client != nil {
			hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := b.client.Health(hctx)
			cancel()
			if err == nil {
				break
			}
		}
		if err := b.wait(ctx, deadline, 100*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for the relay's /healthz: %w", err)
		}
	}
	b.log.Info("relay serves")
	return nil
}

// newClient makes the API client, trusting the relay's self-signed
// certificate (PEM).
func (b *bench) newClient(pem []byte) error {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return errors.New("the relay's TLS certificate: no PEM certificate in it")
	}
	b.httpClient = &http.Client{
		Timeout:   2 * time.Minute, // a device list of 100 000 is large
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
	}
	c, err := apiclient.New(b.url, apiclient.WithHTTPClient(b.httpClient), apiclient.WithUserAgent("relayload/1"))
	if err != nil {
		return err
	}
	b.client = c
	return nil
}

// wait sleeps for step, or returns an error if ctx ends, the deadline has
// passed or the relay has exited.
func (b *bench) wait(ctx context.Context, deadline time.Time, step time.Duration) error {
	if b.relay.exited() {
		return b.relay.exitError()
	}
	for _, c := range b.sims {
		if c.exited() {
			return c.exitError()
		}
	}
	if time.Now().After(deadline) {
		return errTimeout
	}
	t := time.NewTimer(step)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-b.relay.done:
		return b.relay.exitError()
	case <-t.C:
		return nil
	}
}

// errTimeout: a wait ran out of time.
var errTimeout = errors.New("timed out")

// setUpUser registers a user with the relay's production key-derivation
// parameters, confirms the address with the mailed link and logs in.
func (b *bench) setUpUser(ctx context.Context) error {
	email := "relayload-" + rand.Text()[:12] + "@example.com"
	password := []byte(rand.Text())
	keys, err := b.client.Register(ctx, email, password, "en", zkcrypto.DefaultKDFParams())
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	b.keys = keys
	outbox := filepath.Join(b.dir, "relay", "outbox")
	deadline := time.Now().Add(mailTimeout)
	var link string
	for {
		link, err = mail.LatestLink(outbox, email, account.MailVerifyEmail)
		if err == nil {
			break
		}
		if !errors.Is(err, mail.ErrNoMail) && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("confirmation mail: %w", err)
		}
		if err := b.wait(ctx, deadline, 50*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for the confirmation mail in %s: %w", outbox, err)
		}
	}
	if _, err := b.client.Verify(ctx, apiclient.ParseToken(link)); err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	if _, _, err := b.client.Login(ctx, email, password); err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	b.log.Info("user registered, confirmed and logged in", "email", email)
	return nil
}

// measureRun pairs the devices, connects them and takes the numbers.
func (b *bench) measureRun(ctx context.Context) error {
	r := b.res
	pid := b.relay.pid()
	start, err := readProc(pid)
	if err != nil {
		return err
	}
	r.RSSStartKiB = start.RSSKiB

	pairStart := time.Now()
	if err := b.pair(ctx); err != nil {
		return err
	}
	r.PairSeconds = time.Since(pairStart).Seconds()
	afterPair, err := readProc(pid)
	if err != nil {
		return err
	}
	r.PairCPUPerDeviceMs = ms(afterPair.CPU-start.CPU) / float64(b.o.count)
	b.log.Info("paired", "devices", b.o.count, "seconds", round(r.PairSeconds, 1))

	if err := sleep(ctx, settleTime); err != nil {
		return err
	}
	idle, err := readProc(pid)
	if err != nil {
		return err
	}
	r.RSSIdleKiB, r.ThreadsIdle, r.FDsIdle = idle.RSSKiB, idle.Threads, idle.FDs
	b.log.Info("relay idle", "rss_kib", idle.RSSKiB, "threads", idle.Threads)

	if err := b.startSims(ctx); err != nil {
		return err
	}
	simStart := time.Now()
	connectStart, err := readProc(pid)
	if err != nil {
		return err
	}
	waitErr := b.waitOnline(ctx, simStart)
	connected, err := readProc(pid)
	if err != nil {
		return err
	}
	// Per device: per device online, if not all came.
	n := float64(b.o.count)
	if waitErr != nil {
		n = float64(max(r.Online, 1))
	}
	connectCPU := connected.CPU - connectStart.CPU
	r.ConnectCPUSeconds = connectCPU.Seconds()
	r.ConnectCPUPerDeviceMs = ms(connectCPU) / n
	r.RSSOnlineKiB, r.ThreadsOnline, r.FDsOnline = connected.RSSKiB, connected.Threads, connected.FDs
	r.RSSPerDeviceKiB = float64(connected.RSSKiB-idle.RSSKiB) / n
	r.AnonPerDeviceKiB = float64(connected.AnonKiB-idle.AnonKiB) / n
	r.SimRSSKiB = b.simRSS()
	if waitErr != nil {
		return waitErr
	}

	// Steady state: keepalives, control pings, probes; nothing of ours.
	offlineBefore := b.relayLog.count(msgDeviceOffline)
	b.log.Info("steady-state window", "seconds", b.o.window.Seconds())
	s0, err := readProc(pid)
	if err != nil {
		return err
	}
	if err := sleep(ctx, b.o.window); err != nil {
		return err
	}
	s1, err := readProc(pid)
	if err != nil {
		return err
	}
	steady := s1.CPU - s0.CPU
	elapsed := s1.At.Sub(s0.At)
	r.SteadyCPUPercent = 100 * steady.Seconds() / elapsed.Seconds()
	r.SteadyCPUPerDeviceUsPerS = 1e6 * steady.Seconds() / elapsed.Seconds() / float64(b.o.count)
	r.RSSSteadyKiB, r.RSSPeakKiB = s1.RSSKiB, s1.HWMKiB
	r.RSSPerDeviceKiB = float64(s1.RSSKiB-idle.RSSKiB) / float64(b.o.count)
	r.AnonPerDeviceKiB = float64(s1.AnonKiB-idle.AnonKiB) / float64(b.o.count)
	r.OfflineInWindow = b.relayLog.count(msgDeviceOffline) - offlineBefore
	r.SimRSSKiB = b.simRSS()

	// What one device-list call costs the relay, to take the polling out
	// of the connect CPU.
	p0, err := readProc(pid)
	if err != nil {
		return err
	}
	var online int
	for range pollCostCalls {
		if online, err = b.online(ctx); err != nil {
			return err
		}
	}
	p1, err := readProc(pid)
	if err != nil {
		return err
	}
	r.OnlineAfterWindow = online
	perCall := (p1.CPU - p0.CPU).Seconds() - steady.Seconds()/elapsed.Seconds()*p1.At.Sub(p0.At).Seconds()
	r.ListCallCPUMs = max(0, 1000*perCall/pollCostCalls)
	r.ConnectCPUPerDeviceNetMs = max(0, r.ConnectCPUPerDeviceMs-r.ListCallCPUMs*float64(r.ListCalls)/float64(b.o.count))
	baselineMs := r.SteadyCPUPerDeviceUsPerS / 1000 * r.ConnectDeviceSeconds
	r.HandshakeCPUPerDeviceMs = max(0, r.ConnectCPUPerDeviceNetMs-baselineMs/float64(b.o.count))
	if online < b.o.count {
		return fmt.Errorf("only %d of %d devices online after the steady-state window (%d went offline during it)", online, b.o.count, r.OfflineInWindow)
	}
	return nil
}

// waitOnline waits until the relay lists all devices as online, then for
// their control connections; it fills in the result's online numbers.
//
// A device list costs the relay CPU in proportion to the devices (about
// 0.1 ms each) and holds its database for as many queries, so it is asked
// sparingly: progress is followed in the relay's log (devices online minus
// offline, control connections minus disconnections, read incrementally),
// and GET /devices, which decides, is called when the log says all are
// online (at most every listMinInterval) and every listInterval otherwise.
func (b *bench) waitOnline(ctx context.Context, simStart time.Time) error {
	r := b.res
	deadline := simStart.Add(b.o.timeout)
	offlineBefore := b.relayLog.count(msgDeviceOffline)
	lastLog, lastList := time.Now(), time.Now()
	// ∫ online dt, for the steady-state traffic of the devices online
	// while others still connect; from the log, within 0..N.
	lastOnline, lastAt := 0, simStart
	integrate := func(online int) {
		now := time.Now()
		r.ConnectDeviceSeconds += float64(lastOnline) * now.Sub(lastAt).Seconds()
		lastOnline, lastAt = min(max(online, 0), b.o.count), now
	}
	for {
		if err := b.wait(ctx, deadline, 250*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for %d devices to come online (%d are, %d control connections): %w",
				b.o.count, r.Online, r.ControlConnected, err)
		}
		offline := b.relayLog.count(msgDeviceOffline) - offlineBefore
		logOnline := b.relayLog.count(msgDeviceOnline) - offline
		integrate(logOnline)
		r.OfflineWhileConnecting = offline
		r.ControlConnected = b.controlConnected()
		if logOnline > 0 && r.FirstOnlineSeconds == 0 {
			r.FirstOnlineSeconds = time.Since(simStart).Seconds()
		}
		sinceList := time.Since(lastList)
		if (logOnline >= b.o.count && sinceList >= listMinInterval) || sinceList >= listInterval {
			online, err := b.online(ctx)
			if err != nil {
				return err
			}
			r.ListCalls++
			r.Online, lastList = online, time.Now()
			if online > 0 && r.FirstOnlineSeconds == 0 {
				r.FirstOnlineSeconds = time.Since(simStart).Seconds()
			}
			if online >= b.o.count {
				break
			}
		}
		if time.Since(lastLog) >= 10*time.Second {
			b.log.Info("coming online", "online_in_log", logOnline, "of", b.o.count, "control_connected", r.ControlConnected,
				"went_offline", offline, "seconds", round(time.Since(simStart).Seconds(), 0))
			lastLog = time.Now()
		}
	}
	r.AllOnline = true
	r.AllOnlineSeconds = time.Since(simStart).Seconds()
	b.log.Info("all devices online", "seconds", round(r.AllOnlineSeconds, 1))

	// The control connection follows the tunnel; the connect CPU should
	// include it. The count comes from the relay's log (info level).
	last, lastChange := r.ControlConnected, time.Now()
	for r.ControlConnected < b.o.count && time.Since(lastChange) < controlGrace {
		if err := b.wait(ctx, deadline, 200*time.Millisecond); err != nil {
			break
		}
		integrate(b.o.count)
		if r.ControlConnected = b.controlConnected(); r.ControlConnected != last {
			last, lastChange = r.ControlConnected, time.Now()
		}
	}
	integrate(b.o.count)
	r.ControlSeconds = time.Since(simStart).Seconds()
	return nil
}

// controlConnected is the number of control connections the relay's log
// shows open: connected minus disconnected.
func (b *bench) controlConnected() int {
	return b.relayLog.count(msgControlConnected) - b.relayLog.count(msgControlDisconnected)
}

// online counts the devices the relay lists as online (GET
// /api/v1/devices). It does not use apiclient.Client.Devices, which reads
// at most 1 MiB of an answer: about 2500 devices.
func (b *bench) online(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.url+"/api/v1/devices", nil)
	if err != nil {
		return 0, fmt.Errorf("list devices: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+b.client.SessionToken())
	resp, err := b.httpClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("list devices: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return 0, fmt.Errorf("list devices: %s: %s", resp.Status, msg)
	}
	var devs []struct {
		Online bool `json:"online"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&devs); err != nil {
		return 0, fmt.Errorf("list devices: %w", err)
	}
	n := 0
	for _, d := range devs {
		if d.Online {
			n++
		}
	}
	return n, nil
}

// startSims starts one devicesim process per group, its devices already
// paired.
func (b *bench) startSims(ctx context.Context) error {
	cpus, err := simCPUs(b.o.simCPUs)
	if err != nil {
		return err
	}
	b.res.SimCPUs = cpus
	env := scrubEnv(os.Environ())
	if b.o.simGOMAXPROCS > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(b.o.simGOMAXPROCS))
	}
	for i, g := range b.groups {
		var argv []string
		if cpus != "" {
			argv = append(argv, "taskset", "-c", cpus)
		}
		argv = append(argv, b.simBin, "--data-dir", g.dir, "--server", b.url, "--insecure",
			"--count", strconv.Itoa(g.count), "--log-level", "warn")
		c, err := startChild(fmt.Sprintf("devicesim %d", i), filepath.Join(b.dir, fmt.Sprintf("devicesim-%02d.log", i)), env, argv...)
		if err != nil {
			return err
		}
		b.sims = append(b.sims, c)
	}
	b.log.Info("devicesim started", "processes", len(b.sims), "devices", b.o.count, "cpus", cpus, "gomaxprocs", b.o.simGOMAXPROCS)
	return ctx.Err()
}

// simCPUs resolves --devicesim-cpus.
func simCPUs(flagValue string) (string, error) {
	if flagValue != "auto" {
		if flagValue != "" {
			if _, err := exec.LookPath("taskset"); err != nil {
				return "", fmt.Errorf("--devicesim-cpus %s: %w", flagValue, err)
			}
		}
		return flagValue, nil
	}
	n := runtime.NumCPU()
	if _, err := exec.LookPath("taskset"); err != nil || n < 2 {
		return "", nil
	}
	if n/2 == 1 {
		return "0", nil
	}
	return fmt.Sprintf("0-%d", n/2-1), nil
}

// simRSS is the resident memory of all devicesim processes together.
func (b *bench) simRSS() int64 {
	var total int64
	for _, c := range b.sims {
		if s, err := readProc(c.pid()); err == nil {
			total += s.RSSKiB
		}
	}
	return total
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-t.C:
		return nil
	}
}

// ms converts d to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
