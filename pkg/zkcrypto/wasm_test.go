package zkcrypto

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// goForWasm returns a go command for GOOS=js GOARCH=wasm, skipping the test
// where there is none.
func goForWasm(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("no go command inside wasm")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	cmd := exec.CommandContext(t.Context(), gobin, args...)
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	return cmd
}

// TestBuildsForWasm: the browser client uses this package, so it (and its
// tests) must compile for js/wasm.
func TestBuildsForWasm(t *testing.T) {
	t.Parallel()
	if out, err := goForWasm(t, "vet", ".").CombinedOutput(); err != nil {
		t.Fatalf("GOOS=js GOARCH=wasm go vet: %v\n%s", err, out)
	}
}

// TestWasmDeps: outside the standard library the package may pull in only
// golang.org/x/crypto (and x/sys, which x/crypto uses for CPU detection).
func TestWasmDeps(t *testing.T) {
	t.Parallel()
	out, err := goForWasm(t, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch {
		case dep == "github.com/blindrelay/blindrelay/pkg/zkcrypto",
			strings.HasPrefix(dep, "golang.org/x/crypto/"),
			strings.HasPrefix(dep, "golang.org/x/sys/"):
		default:
			t.Errorf("zkcrypto depends on %s", dep)
		}
	}
}
