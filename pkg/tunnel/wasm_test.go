//go:build !js

package tunnel

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestWasm: the browser runs this package, so it must build and vet for
// js/wasm and pull in nothing but WireGuard, gVisor, the WebSocket library
// and golang.org/x (no database, router or server code). With Node on PATH
// the package's portable tests also run under js/wasm.
func TestWasm(t *testing.T) {
	t.Parallel()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	goroot, err := exec.CommandContext(t.Context(), gobin, "env", "GOROOT").Output()
	if err != nil {
		t.Fatal(err)
	}
	wasmExecDir := filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm")
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), gobin, args...)
		cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0",
			"PATH="+os.Getenv("PATH")+string(os.PathListSeparator)+wasmExecDir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GOOS=js GOARCH=wasm go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("vet", ".")
	run("build", "-o", os.DevNull, ".")

	allowed := []string{
		"github.com/blindrelay/blindrelay/pkg/tunnel",
		"github.com/blindrelay/blindrelay/pkg/wgkey",
		"github.com/coder/websocket",
		"golang.zx2c4.com/wireguard/",
		"gvisor.dev/gvisor/",
		"github.com/google/btree", // gVisor's
		"golang.org/x/crypto/",
		"golang.org/x/net/",
		"golang.org/x/sys/",
		"golang.org/x/time/",
	}
deps:
	for _, dep := range strings.Fields(run("list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".")) {
		for _, a := range allowed {
			if dep == a || strings.HasPrefix(dep, a+"/") || strings.HasSuffix(a, "/") && strings.HasPrefix(dep, a) {
				continue deps
			}
		}
		t.Errorf("under js/wasm, pkg/tunnel depends on %s", dep)
	}

	if _, err := exec.LookPath("node"); err != nil {
		t.Log("node not on PATH: js/wasm tests not run")
		return
	}
	t.Log(strings.TrimSpace(run("test", "-count=1", ".")))
}
