// Package sqlite is the embedded SQLite implementation of account.Store, the
// relay's default database. It uses modernc.org/sqlite, a pure-Go SQLite, so
// the relay builds without cgo.
//
// A Store owns one database file. Open creates it (mode 0600), sets the
// pragmas (WAL, foreign keys, a busy timeout) and applies the embedded,
// numbered migrations in migrations/. All access goes through a single
// connection, so writes never contend inside the process; other processes on
// the same file wait up to the busy timeout.
//
// It is not a general database layer: it keeps only what the account.Store
// methods hand it (hashes, public keys and ciphertext, never a password, a
// login key or a session token), and nothing outside the store packages and
// their tests should import it; everything else sees account.Store.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// busyTimeout is how long a statement waits for another process's write lock
// before it fails with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// Store is an account.Store in one SQLite file. It is safe for concurrent use.
type Store struct {
	db *sql.DB // one connection: the single writer (and reader)
}

var _ account.Store = (*Store)(nil)

// Open opens the SQLite database at path, creating the file with mode 0600
// if it does not exist, and migrates it to the latest schema. path is a
// plain file name: SQLite URIs ("file:...") and ":memory:" are refused.
//
// ctx bounds the opening and the migration only.
func Open(ctx context.Context, path string) (*Store, error) {
	return open(ctx, path, -1)
}

// open is Open migrating up to version target (-1: the latest).
func open(ctx context.Context, path string, target int) (*Store, error) {
	db, err := openDB(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, db, target); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// openDB opens and configures the connection, without migrating.
func openDB(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" || strings.HasPrefix(path, ":") || strings.HasPrefix(path, "file:") || strings.Contains(path, "?") {
		return nil, fmt.Errorf("open sqlite %q: want a plain file name", path)
	}
	// SQLite would create the file with the umask's mode; create it first so
	// that it, and the -wal and -shm files SQLite gives the same mode, are
	// readable by the owner only.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open sqlite: %w", err)
	}

	// The pragmas run on every new connection. _txlock=immediate makes
	// BeginTx take the write lock at once: a deferred transaction that reads
	// and then writes would fail with SQLITE_BUSY_SNAPSHOT, without waiting,
	// if another process wrote in between.
	dsn := path + "?_pragma=busy_timeout(" + fmt.Sprint(busyTimeout.Milliseconds()) + ")" +
		"&_pragma=journal_mode(WAL)&_pragma=foreign_keys(ON)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and a single connection
	// serialises transactions in the process instead of making them wait
	// on the file lock. It is never closed while the Store lives.
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	if err := retryBusy(ctx, func() error { return checkPragmas(ctx, db) }); err != nil {
		db.Close()
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	return db, nil
}

// retryBusy runs fn until it does not fail with SQLITE_BUSY, for at most
// busyTimeout. Switching a new file to WAL takes an exclusive lock for which
// SQLite may answer SQLITE_BUSY at once, without its busy handler, when
// another process opens the same new file at the same moment.
func retryBusy(ctx context.Context, fn func() error) error {
	deadline := time.Now().Add(busyTimeout)
	for wait := time.Millisecond; ; wait = min(2*wait, 100*time.Millisecond) {
		err := fn()
		if !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// isBusy reports whether err is SQLITE_BUSY (any extended variant).
func isBusy(err error) bool {
	e, ok := errors.AsType[*sqlite.Error](err)
	return ok && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// checkPragmas makes sure the DSN pragmas took effect (a read-only file
// system, for one, leaves the journal mode as it was).
func checkPragmas(ctx context.Context, db *sql.DB) error {
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return err
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal_mode is %q, want wal", mode)
	}
	var fk int
	if err := db.QueryRowContext(ctx, "PRAGMA foreign_keys").Scan(&fk); err != nil {
		return err
	}
	if fk != 1 {
		return errors.New("foreign_keys is off")
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	if err := s.db.QueryRowContext(ctx, "SELECT 1").Scan(&one); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// querier is what *sql.DB and *sql.Tx have in common, for helpers that run
// both inside and outside a transaction.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// inTx runs fn in a transaction (BEGIN IMMEDIATE) and commits if fn returns
// nil; otherwise it rolls back and returns fn's error unchanged.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// wrap adds the operation to internal errors and passes the domain errors
// (*account.Error) through as they are.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*account.Error](err); ok {
		return err
	}
	return fmt.Errorf("sqlite: %s: %w", op, err)
}

// errorCode returns the extended SQLite result code of err, or 0.
func errorCode(err error) int {
	if e, ok := errors.AsType[*sqlite.Error](err); ok {
		return e.Code()
	}
	return 0
}

// isEmailTaken reports whether err is the unique constraint on users.email.
func isEmailTaken(err error) bool {
	return errorCode(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE && strings.Contains(err.Error(), "users.email")
}

// isForeignKey reports whether err is a foreign key violation: the
// referenced user does not exist.
func isForeignKey(err error) bool {
	return errorCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// Times are stored as Unix microseconds (UTC): the precision PostgreSQL
// keeps, so both stores round the same way.
func dbTime(t time.Time) int64 { return t.UnixMicro() }

func goTime(us int64) time.Time { return time.UnixMicro(us).UTC() }
