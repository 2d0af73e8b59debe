package api

import (
	"testing"

	"github.com/blindrelay/blindrelay/pkg/store/postgres"
	"github.com/blindrelay/blindrelay/pkg/store/postgres/pgtest"
)

func init() { stores["postgres"] = newPostgres }

// newPostgres opens a store on a fresh schema of the test database
// (skipped without BLINDRELAY_TEST_POSTGRES_URL unless CI is set).
func newPostgres(t testing.TB) testStore {
	t.Helper()
	st, err := postgres.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}
