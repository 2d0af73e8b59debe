// Package repotest holds checks over the whole repository that no single
// package's tests would catch: every Go file is gofmt-formatted, and every
// package has a doc comment. It has no code of its own.
package repotest

import (
	"bytes"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// goFiles returns the module's Go files by directory, as slash-separated
// paths relative to the module root (fsys), skipping what the go command
// skips (testdata, dot and underscore directories) and node_modules.
func goFiles(t *testing.T) (fsys fs.FS, files map[string][]string) {
	t.Helper()
	fsys = os.DirFS(moduleRoot(t))
	files = map[string][]string{}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != "." && (name == "testdata" || name == "node_modules" || name == "vendor" ||
				strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return fs.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(name, ".go") {
			files[path.Dir(p)] = append(files[path.Dir(p)], p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Go files in the module")
	}
	return fsys, files
}

// moduleRoot is the nearest directory above the test's that holds go.mod.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

// TestGofmt fails on any Go file that gofmt would change.
func TestGofmt(t *testing.T) {
	t.Parallel()
	fsys, files := goFiles(t)
	for _, paths := range files {
		for _, path := range paths {
			src, err := fs.ReadFile(fsys, path)
			if err != nil {
				t.Fatal(err)
			}
			formatted, err := format.Source(src)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			if !bytes.Equal(src, formatted) {
				t.Errorf("%s is not gofmt-formatted; run gofmt -w %s", path, path)
			}
		}
	}
}

// TestPackageDoc fails on any package without a doc comment. A package's
// doc comment is the comment right above the package clause in one of its
// non-test files; for a library it begins "Package <name> ".
func TestPackageDoc(t *testing.T) {
	t.Parallel()
	fsys, files := goFiles(t)
	for dir, paths := range files {
		// Packages in dir (a directory may hold a package and files with
		// "//go:build ignore" that are programs of their own).
		docs := map[string]string{}
		for _, path := range paths {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			src, err := fs.ReadFile(fsys, path)
			if err != nil {
				t.Fatal(err)
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, src, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Errorf("%s: %v", path, err)
				continue
			}
			if ignored(f.Comments) {
				continue
			}
			name := f.Name.Name
			if _, seen := docs[name]; !seen {
				docs[name] = ""
			}
			if f.Doc != nil && docs[name] == "" {
				docs[name] = f.Doc.Text()
			}
		}
		for name, doc := range docs {
			switch {
			case doc == "":
				t.Errorf("package %s in %s has no doc comment: say what it is and what it is not", name, dir)
			case name != "main" && !strings.HasPrefix(doc, "Package "+name+" "):
				t.Errorf("doc comment of package %s in %s should begin %q", name, dir, "Package "+name+" ")
			}
		}
	}
}

// ignored reports whether a file's header has a "//go:build ignore"
// constraint.
func ignored(comments []*ast.CommentGroup) bool {
	for _, g := range comments {
		if slices.ContainsFunc(g.List, func(c *ast.Comment) bool { return c.Text == "//go:build ignore" }) {
			return true
		}
	}
	return false
}
