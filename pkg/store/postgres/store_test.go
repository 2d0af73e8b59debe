package postgres_test

import (
	"context"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/store/postgres"
	"github.com/blindrelay/blindrelay/pkg/store/postgres/pgtest"
	"github.com/blindrelay/blindrelay/pkg/store/storetest"
)

// mustOpen opens a store on a new schema.
func mustOpen(t *testing.T) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) account.Store { return mustOpen(t) })
}

// newDB returns an OpenFunc for a new schema.
func newDB(t *testing.T) storetest.OpenFunc {
	url := pgtest.URL(t)
	return func(ctx context.Context) (account.Store, error) {
		s, err := postgres.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
}

func TestStoreShared(t *testing.T) {
	t.Parallel()
	storetest.RunShared(t, newDB)
}

func TestKeystore(t *testing.T) {
	t.Parallel()
	storetest.RunKeystore(t, func(t *testing.T) storetest.Store { return mustOpen(t) })
}

func TestKeystoreShared(t *testing.T) {
	t.Parallel()
	storetest.RunKeystoreShared(t, newDB)
}

func TestPing(t *testing.T) {
	t.Parallel()
	if err := mustOpen(t).Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
}
