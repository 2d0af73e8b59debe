package sqlite

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/blindrelay/blindrelay/pkg/store/storetest"
)

func tempPath(t *testing.T) string { return filepath.Join(t.TempDir(), "relay.db") }

func mustOpen(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestOpenSettings(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := mustOpen(t, path)
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	pragmas := []struct {
		name, want string
	}{
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "5000"},
	}
	for _, p := range pragmas {
		var got string
		if err := s.db.QueryRowContext(t.Context(), "PRAGMA "+p.name).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", p.name, err)
		}
		if got != p.want {
			t.Errorf("PRAGMA %s = %q, want %q", p.name, got, p.want)
		}
	}
	if n := s.db.Stats().MaxOpenConnections; n != 1 {
		t.Errorf("MaxOpenConnections = %d, want 1", n)
	}

	// The database and SQLite's WAL files are the owner's only.
	if _, err := s.ServerSecret(t.Context(), "x", 32); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(name), perm)
		}
	}
}

func TestOpenRefusesNonFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, path := range []string{"", ":memory:", "file:" + dir + "/x.db", dir + "/x.db?mode=ro", dir + "/missing/x.db"} {
		s, err := Open(t.Context(), path)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded, want an error", path)
		}
	}
}

func TestMigrationsNumbered(t *testing.T) {
	t.Parallel()
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range ms {
		if m.Version != i+1 {
			t.Errorf("migration %d is %s", i+1, m.Name)
		}
		if strings.TrimSpace(m.SQL) == "" {
			t.Errorf("%s is empty", m.Name)
		}
	}

	s := mustOpen(t, tempPath(t))
	var n, max int
	err = s.db.QueryRowContext(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &max)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || max != len(ms) {
		t.Errorf("schema_migrations has %d rows up to %d, want %d", n, max, len(ms))
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	s := mustOpen(t, path)
	if _, err := s.db.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s2, err := Open(t.Context(), path)
	if err == nil {
		s2.Close()
		t.Fatal("Open succeeded on a database from a newer program")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

// loadDump creates a database at path from a .dump file.
func loadDump(t *testing.T, path, dump string) {
	t.Helper()
	script, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(t.Context(), string(script)); err != nil {
		t.Fatalf("load %s: %v", dump, err)
	}
}

// schemaOf returns every table, index and trigger definition of the database.
func schemaOf(t *testing.T, ctx context.Context, db *sql.DB) []string {
	t.Helper()
	rows, err := db.QueryContext(ctx, `SELECT type || ' ' || name || ': ' || coalesce(sql, '')
		FROM sqlite_schema ORDER BY type, name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var defs []string
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			t.Fatal(err)
		}
		defs = append(defs, d)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return defs
}

// TestSchema0001Unchanged checks that migration 0001 still makes the schema
// of the released dump: released migrations must not be edited.
func TestSchema0001Unchanged(t *testing.T) {
	t.Parallel()
	dumped := tempPath(t)
	loadDump(t, dumped, "testdata/schema-0001.sql")
	db, err := sql.Open("sqlite", dumped)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	migrated, err := open(t.Context(), tempPath(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer migrated.Close()

	if d := cmp.Diff(schemaOf(t, t.Context(), db), schemaOf(t, t.Context(), migrated.db)); d != "" {
		t.Errorf("migration 0001 no longer makes the released schema (-dump +migration):\n%s", d)
	}
}

// TestMigrateFromSchema0001 opens a database of the first released schema
// and checks that it migrates to the latest with its data intact.
func TestMigrateFromSchema0001(t *testing.T) {
	t.Parallel()
	path := tempPath(t)
	loadDump(t, path, "testdata/schema-0001.sql")
	storetest.CheckDump0001(t, mustOpen(t, path))
}
