// Package postgres is the PostgreSQL implementation of account.Store, for
// relays that keep their accounts in a shared database (several relay nodes
// behind one name). It uses github.com/jackc/pgx/v5 with a pgxpool.
//
// Open applies the embedded, numbered migrations in migrations/ under a
// transaction-scoped advisory lock, so nodes that start at the same time
// migrate once. The tables live in the first schema of the connection's
// search_path, which may be set in the URL (?search_path=relay).
//
// It is not a general database layer: it keeps only what the account.Store
// methods hand it (hashes, public keys and ciphertext, never a password, a
// login key or a session token), and nothing outside the store packages and
// their tests should import it; everything else sees account.Store.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// Store is an account.Store in a PostgreSQL database. It is safe for
// concurrent use, also by several processes on one database.
type Store struct {
	pool *pgxpool.Pool
}

var _ account.Store = (*Store)(nil)

// Open connects to the database at url (a postgres:// URL or a key=value
// connection string, as pgx takes them) and migrates it to the latest
// schema. Runtime parameters in the URL, search_path among them, apply to
// every connection; pgxpool's own (pool_max_conns, ...) size the pool.
//
// ctx bounds the connecting and the migration only.
func Open(ctx context.Context, url string) (*Store, error) {
	return open(ctx, url, -1)
}

// open is Open migrating up to version target (-1: the latest).
func open(ctx context.Context, url string, target int) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgx redacts the password in its parse errors.
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	where := fmt.Sprintf("%s/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Database)
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	if err := migrate(ctx, pool, target); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres %s: %w", where, err)
	}
	return &Store{pool: pool}, nil
}

// Close closes every connection of the pool, waiting for the ones in use.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// querier is what *pgxpool.Pool and pgx.Tx have in common, for helpers
// that run both inside and outside a transaction.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// inTx runs fn in a transaction (READ COMMITTED; the methods lock the rows
// they decide on) and commits if fn returns nil; otherwise it rolls back
// and returns fn's error unchanged.
func (s *Store) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
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
	return fmt.Errorf("postgres: %s: %w", op, err)
}

// SQLSTATE codes the store translates.
const (
	foreignKeyViolation = "23503"
	uniqueViolation     = "23505"
)

// isEmailTaken reports whether err is the unique constraint on users.email.
func isEmailTaken(err error) bool {
	e, ok := errors.AsType[*pgconn.PgError](err)
	return ok && e.Code == uniqueViolation && e.ConstraintName == "users_email_key"
}

// isForeignKey reports whether err is a foreign key violation: the
// referenced user does not exist.
func isForeignKey(err error) bool {
	e, ok := errors.AsType[*pgconn.PgError](err)
	return ok && e.Code == foreignKeyViolation
}

// mustAffect turns a statement that changed no row into notFound.
func mustAffect(tag pgconn.CommandTag, err error, notFound error) error {
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return notFound
	}
	return nil
}

// utc puts times read back into UTC (pgx returns the local zone). Times go
// in as they are: PostgreSQL keeps microseconds and pgx truncates the rest,
// as the SQLite store does.
func utc(ts ...*time.Time) {
	for _, t := range ts {
		*t = t.UTC()
	}
}
