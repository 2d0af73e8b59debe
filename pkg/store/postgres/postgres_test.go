package postgres

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/blindrelay/blindrelay/pkg/store/postgres/pgtest"
	"github.com/blindrelay/blindrelay/pkg/store/storetest"
)

func mustOpen(t *testing.T, url string) *Store {
	t.Helper()
	s, err := Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
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

	s := mustOpen(t, pgtest.URL(t))
	var n, max int
	err = s.pool.QueryRow(t.Context(), `SELECT count(*), max(version) FROM schema_migrations`).Scan(&n, &max)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(ms) || max != len(ms) {
		t.Errorf("schema_migrations has %d rows up to %d, want %d", n, max, len(ms))
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	s := mustOpen(t, url)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO schema_migrations (version, name) VALUES (9999, '9999_future.sql')`); err != nil {
		t.Fatal(err)
	}
	s2, err := Open(t.Context(), url)
	if err == nil {
		s2.Close()
		t.Fatal("Open succeeded on a database from a newer program")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Errorf("error %q does not say the schema is newer", err)
	}
}

func TestOpenBadURL(t *testing.T) {
	t.Parallel()
	for _, url := range []string{"postgres://user:hunter2@[::1", "postgres://127.0.0.1:1/test?sslmode=disable&connect_timeout=1"} {
		s, err := Open(t.Context(), url)
		if err == nil {
			s.Close()
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Open error shows the password: %v", err)
		}
	}
}

// loadDump runs a dump file in the schema of url.
func loadDump(t *testing.T, url, dump string) {
	t.Helper()
	script, err := os.ReadFile(dump)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), string(script)); err != nil {
		t.Fatalf("load %s: %v", dump, err)
	}
}

// schemaOf describes every column, constraint and index of the store's
// schema, without the schema's name.
func schemaOf(t *testing.T, s *Store) []string {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `
		SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' ||
			is_nullable || ' ' || coalesce(column_default, '')
		FROM information_schema.columns WHERE table_schema = current_schema()
		UNION ALL
		SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
		FROM pg_constraint WHERE connamespace = current_schema()::regnamespace
		UNION ALL
		SELECT 'index ' || indexname || ' ' || regexp_replace(indexdef, ' ON \S+\.', ' ON ')
		FROM pg_indexes WHERE schemaname = current_schema()
		ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	defs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return defs
}

// TestSchema0001Unchanged checks that migration 0001 still makes the schema
// of the released dump: released migrations must not be edited.
func TestSchema0001Unchanged(t *testing.T) {
	t.Parallel()
	dumped := pgtest.URL(t)
	loadDump(t, dumped, "testdata/schema-0001.sql")
	fromDump, err := open(t.Context(), dumped, 1) // already at 1: nothing to do
	if err != nil {
		t.Fatal(err)
	}
	defer fromDump.Close()
	migrated, err := open(t.Context(), pgtest.URL(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer migrated.Close()

	want, got := schemaOf(t, migrated), schemaOf(t, fromDump)
	if len(want) < 20 {
		t.Fatalf("schema description too short to mean anything: %q", want)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("migration 0001 no longer makes the released schema (-migration +dump):\n%s", d)
	}
}

// TestMigrateFromSchema0001 loads the first released schema and checks
// that it migrates to the latest with its data intact.
func TestMigrateFromSchema0001(t *testing.T) {
	t.Parallel()
	url := pgtest.URL(t)
	loadDump(t, url, "testdata/schema-0001.sql")
	storetest.CheckDump0001(t, mustOpen(t, url))
}
