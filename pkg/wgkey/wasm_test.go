package wgkey

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// TestWasm: the browser client uses this package, so it and its tests must
// compile for js/wasm, and it may pull in nothing outside the standard
// library but golang.org/x/crypto (and x/sys, which x/crypto uses for CPU
// detection).
func TestWasm(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("no go command inside wasm")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	run := func(args ...string) []byte {
		cmd := exec.CommandContext(t.Context(), gobin, args...)
		cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("GOOS=js GOARCH=wasm go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	run("vet", ".")
	for _, dep := range strings.Fields(string(run("list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", "."))) {
		switch {
		case dep == "github.com/blindrelay/blindrelay/pkg/wgkey",
			strings.HasPrefix(dep, "golang.org/x/crypto/"),
			strings.HasPrefix(dep, "golang.org/x/sys/"):
		default:
			t.Errorf("wgkey depends on %s", dep)
		}
	}
}
