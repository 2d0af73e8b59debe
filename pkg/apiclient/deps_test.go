package apiclient_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDeps checks that the client stays fit for the browser (GOOS=js) and
// for device firmware: it builds for js/wasm and pulls in no server-side
// code (router, stores, SQL drivers, mail).
func TestDeps(t *testing.T) {
	t.Parallel()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH")
	}
	cmd := exec.CommandContext(t.Context(), goTool, "list", "-deps", ".")
	cmd.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm", "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list for js/wasm: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/go-chi/", "github.com/jackc/", "modernc.org/sqlite", "github.com/wneessen/go-mail",
		"github.com/blindrelay/blindrelay/pkg/account", "github.com/blindrelay/blindrelay/pkg/api",
		"github.com/blindrelay/blindrelay/pkg/store", "github.com/blindrelay/blindrelay/pkg/server",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if dep == f || strings.HasPrefix(dep, f) && (strings.HasSuffix(f, "/") || strings.HasPrefix(dep[len(f):], "/")) {
				t.Errorf("apiclient depends on %s", dep)
			}
		}
	}
}
