// Package pgtest gives tests a PostgreSQL database of their own: URL creates
// a fresh, empty schema in the test database named by
// BLINDRELAY_TEST_POSTGRES_URL and returns a connection URL whose
// search_path points at it. The store, API and end-to-end tests use it.
//
// Without the variable a test is skipped, unless the environment variable
// CI is set: then it fails, so that CI never passes by skipping.
//
// It is test support only; it never starts a PostgreSQL server.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the environment variable with the test database's URL,
// e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable.
const EnvURL = "BLINDRELAY_TEST_POSTGRES_URL"

// URL returns a connection URL for a new schema that is dropped, with
// everything in it, when tb and its subtests have finished. Each call makes
// another schema, so parallel tests do not see each other's tables.
func URL(tb testing.TB) string {
	tb.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		if os.Getenv("CI") != "" {
			tb.Fatalf("%s is not set; CI must run the PostgreSQL tests", EnvURL)
		}
		tb.Skipf("%s is not set; skipping PostgreSQL test", EnvURL)
	}

	schema := schemaName(tb.Name())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec(ctx, base, "CREATE SCHEMA "+schema); err != nil {
		tb.Fatalf("pgtest: %v", err)
	}
	tb.Cleanup(func() {
		// The test's context has ended by now; the drop gets its own.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := exec(ctx, base, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})

	u, err := withSearchPath(base, schema)
	if err != nil {
		tb.Fatalf("pgtest: %s: %v", EnvURL, err)
	}
	return u
}

// exec runs one statement on a connection of its own.
func exec(ctx context.Context, connString, sql string) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return fmt.Errorf("connect to %s: %w", EnvURL, err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, sql); err != nil {
		return fmt.Errorf("%s: %w", sql, err)
	}
	return nil
}

var unsafeChars = regexp.MustCompile(`[^a-z0-9]+`)

// schemaName makes a schema name from the test name and random bytes: a
// lower-case identifier that needs no quoting and fits PostgreSQL's 63
// bytes.
func schemaName(testName string) string {
	b := make([]byte, 6)
	rand.Read(b)
	name := strings.Trim(unsafeChars.ReplaceAllString(strings.ToLower(testName), "_"), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return "test_" + name + "_" + hex.EncodeToString(b)
}

// withSearchPath sets the search_path runtime parameter in a postgres://
// URL or a key=value connection string.
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
