package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
)

// createSchema creates the schema name in the database at connString and
// returns a connection string whose search_path is that schema, so that the
// relay's tables of this run are its own and dropSchema removes them.
func createSchema(ctx context.Context, connString, name string) (string, error) {
	u, err := withSearchPath(connString, name)
	if err != nil {
		return "", fmt.Errorf("--database-url: %w", err)
	}
	if err := execSQL(ctx, connString, "CREATE SCHEMA "+name); err != nil {
		return "", err
	}
	return u, nil
}

// dropSchema drops the schema name and everything in it.
func dropSchema(ctx context.Context, connString, name string) error {
	return execSQL(ctx, connString, "DROP SCHEMA "+name+" CASCADE")
}

// execSQL runs one statement on a connection of its own. name in the
// statements above is relayload's own identifier (letters, digits and _).
func execSQL(ctx context.Context, connString, sql string) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return fmt.Errorf("--database-url: connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("--database-url: %s: %w", sql, err)
	}
	return nil
}

// withSearchPath sets the search_path parameter of a postgres:// URL or a
// key=value connection string.
func withSearchPath(connString, schema string) (string, error) {
	if strings.HasPrefix(connString, "postgres://") || strings.HasPrefix(connString, "postgresql://") {
		u, err := url.Parse(connString)
		if err != nil {
			// Not err: it quotes the URL, password and all.
			return "", errors.New("not a valid URL")
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return connString + " search_path=" + schema, nil
}
