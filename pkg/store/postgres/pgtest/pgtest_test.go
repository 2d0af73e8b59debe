package pgtest_test

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/blindrelay/blindrelay/pkg/store/postgres/pgtest"
)

// TestURL checks that the URL leads to an empty schema of its own, and that
// the schema is gone after the test.
func TestURL(t *testing.T) {
	var schema string
	t.Run("use", func(t *testing.T) {
		u := pgtest.URL(t)
		conn, err := pgx.Connect(t.Context(), u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(t.Context())
		if err := conn.QueryRow(t.Context(), "SELECT current_schema()").Scan(&schema); err != nil {
			t.Fatal(err)
		}
		var n int
		err = conn.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = $1", schema).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("schema %s has %d tables, want 0", schema, n)
		}
		if _, err := conn.Exec(t.Context(), "CREATE TABLE t (x int)"); err != nil {
			t.Fatalf("create a table in the test schema: %v", err)
		}
		if other := pgtest.URL(t); other == u {
			t.Errorf("two calls returned the same URL %s", u)
		}
	})
	if t.Skipped() || schema == "" {
		return
	}

	// The subtest's cleanup dropped the schema.
	conn, err := pgx.Connect(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var exists bool
	err = conn.QueryRow(t.Context(), "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&exists)
	if err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Errorf("schema %s still exists after the test", schema)
	}
}
