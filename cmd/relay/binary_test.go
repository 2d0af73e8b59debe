package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestBinaryNoFlags builds the relay and runs it the way the README's quick
// start does, with no flags, in a fresh home directory: it must create its
// data directory, answer /healthz over HTTPS, and exit 0 on SIGTERM.
func TestBinaryNoFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to build the binary with")
	}
	bin := filepath.Join(t.TempDir(), "relay")
	build := exec.CommandContext(t.Context(), goTool, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	home := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH")}
	// The default port may be taken on a developer's machine (a relay
	// running, another test run); then only the port is overridden.
	if ln, err := net.Listen("tcp", "127.0.0.1:8443"); err != nil {
		t.Logf("127.0.0.1:8443 is in use (%v); running on a free port instead", err)
		cmd.Env = append(cmd.Env, "BLINDRELAY_LISTEN=127.0.0.1:0")
	} else {
		ln.Close()
	}
	logs := &logWatcher{t: t, want: regexp.MustCompile(`msg=listening url=(\S+)`), found: make(chan string, 1)}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var waitErr error
	exited := make(chan struct{}) // closed when Wait has returned waitErr
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill() // no-op after an exit
		<-exited
	})

	var url string
	select {
	case url = <-logs.found:
	case <-exited:
		t.Fatalf("relay exited before listening: %v", waitErr)
	case <-time.After(time.Minute):
		t.Fatal("no 'listening' log line within a minute")
	}

	dataDir := filepath.Join(home, ".local", "share", "blindrelay")
	certPEM, err := os.ReadFile(filepath.Join(dataDir, "tls", "cert.pem"))
	if err != nil {
		t.Fatalf("default data directory has no certificate: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(certPEM)
	client := &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		Timeout:   10 * time.Second,
	}
	resp, err := client.Get(url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /healthz: %s", resp.Status)
	}
	client.CloseIdleConnections()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if exitErr, ok := errors.AsType[*exec.ExitError](waitErr); ok {
			t.Fatalf("exit status %d after SIGTERM, want 0", exitErr.ExitCode())
		} else if waitErr != nil {
			t.Fatal(waitErr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("relay did not exit within 30s of SIGTERM")
	}
	if !logs.contains("msg=stopped") {
		t.Error("no 'stopped' log line")
	}
}

// logWatcher copies the relay's log to the test output and reports the
// first capture of want.
type logWatcher struct {
	t     *testing.T
	want  *regexp.Regexp
	found chan string

	mu  sync.Mutex
	buf bytes.Buffer // everything written so far
}

func (w *logWatcher) Write(p []byte) (int, error) {
	w.t.Output().Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.want != nil {
		if m := w.want.FindSubmatch(w.buf.Bytes()); m != nil {
			w.found <- string(m[1])
			w.want = nil
		}
	}
	return len(p), nil
}

func (w *logWatcher) contains(s string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return bytes.Contains(w.buf.Bytes(), []byte(s))
}
