package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/store/sqlite"
	"github.com/blindrelay/blindrelay/pkg/store/storetest"
)

// mustOpen opens a store on a new file in a temporary directory.
func mustOpen(t *testing.T) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "relay.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) account.Store { return mustOpen(t) })
}

// newDB returns an OpenFunc for a new database file.
func newDB(t *testing.T) storetest.OpenFunc {
	path := filepath.Join(t.TempDir(), "relay.db")
	return func(ctx context.Context) (account.Store, error) {
		s, err := sqlite.Open(ctx, path)
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
