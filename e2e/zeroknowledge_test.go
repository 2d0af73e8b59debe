package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/mail/mailtest"
	"github.com/blindrelay/blindrelay/pkg/store/postgres/pgtest"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// TestZeroKnowledge runs the whole account life cycle with planted
// passwords, then searches the database, the logs, the mails and every
// request the relay received for the secrets: no password, secret key or
// private key may appear anywhere the relay can see, and no login key or
// token may be stored. It runs on SQLite with the outbox and on PostgreSQL
// with real SMTP (where the logs must not even carry mail links).
func TestZeroKnowledge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		postgres bool
		smtp     bool
	}{
		{name: "sqlite-outbox"},
		{name: "postgres-smtp", postgres: true, smtp: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var opts relayOptions
			if tt.postgres {
				opts.databaseURL = pgtest.URL(t)
			}
			if tt.smtp {
				opts.smtp = mailtest.NewServer(t, mailtest.Options{})
			}
			r := startRelay(t, opts)
			s := &secrets{}
			runLifeCycle(t, r, s)

			logs := r.logs.Bytes()
			seen := r.seen.bytes()
			var db []byte
			if tt.postgres {
				db = dumpPostgres(t, opts.databaseURL)
			}
			r.stop(t)
			if !tt.postgres {
				db = readSQLiteFiles(t, r.dataDir)
			}
			mails := readOutbox(t, r.dataDir)

			// The scans must be able to see: what is meant to be there is.
			for _, want := range s.expectedInDB {
				if !contains(db, want) {
					t.Fatalf("positive control: %x not found in the database dump; the scan sees nothing", want)
				}
			}

			s.check(t, "database", db, s.neverSeen, s.neverStored, s.tokens)
			s.check(t, "requests the relay received", seen, s.neverSeen)
			s.check(t, "outbox mails", mails, s.neverSeen, s.neverStored)
			if tt.smtp {
				s.check(t, "logs", logs, s.neverSeen, s.neverStored, s.tokens)
			} else {
				// With no SMTP the relay logs mail links on purpose, so that
				// a newcomer can confirm an account; nothing else.
				s.check(t, "logs", logs, s.neverSeen, s.neverStored)
			}
		})
	}
}

// secrets collects what the life cycle planted, by where it must not be.
type secrets struct {
	neverSeen    [][]byte // passwords, secret keys, private keys: nowhere the relay can see
	neverStored  [][]byte // login keys, session tokens: sent, but never stored or logged
	tokens       [][]byte // e-mail link tokens: mailed, never stored
	expectedInDB [][]byte // positive controls: the live login-key hash, an e-mail address, a public key
}

func (s *secrets) password(p string) []byte {
	b := []byte(p)
	s.neverSeen = append(s.neverSeen, b)
	return b
}

func (s *secrets) derived(dk *zkcrypto.DerivedKeys) {
	s.neverSeen = append(s.neverSeen, bytes.Clone(dk.SecretKey[:]))
	s.neverStored = append(s.neverStored, bytes.Clone(dk.LoginKey[:]))
}

func (s *secrets) userKeys(k *zkcrypto.UserKeys) {
	s.neverSeen = append(s.neverSeen, bytes.Clone(k.BoxPrivate[:]), bytes.Clone(k.SignPrivate.Seed()))
}

func (s *secrets) session(sess *apiclient.Session) {
	s.neverStored = append(s.neverStored, []byte(sess.Token))
	if raw, err := base64.RawURLEncoding.DecodeString(sess.Token); err == nil {
		s.neverStored = append(s.neverStored, raw)
	}
}

func (s *secrets) link(link string) string {
	tok := apiclient.ParseToken(link)
	s.tokens = append(s.tokens, []byte(tok))
	if raw, err := base64.RawURLEncoding.DecodeString(tok); err == nil {
		s.tokens = append(s.tokens, raw)
	}
	return tok
}

// check fails the test for every secret of the given sets found in data, in
// any of the encodings a program would write it in.
func (s *secrets) check(t *testing.T, where string, data []byte, sets ...[][]byte) {
	t.Helper()
	if len(data) == 0 {
		t.Fatalf("%s: nothing to scan", where)
	}
	for _, set := range sets {
		for _, secret := range set {
			if enc, ok := find(data, secret); ok {
				t.Errorf("%s contains a secret (%s, %d bytes)", where, enc, len(secret))
			}
		}
	}
}

// find reports whether data holds secret raw, in hex or in base64.
func find(data, secret []byte) (string, bool) {
	forms := map[string][]byte{
		"raw":           secret,
		"hex":           []byte(hex.EncodeToString(secret)),
		"HEX":           []byte(strings.ToUpper(hex.EncodeToString(secret))),
		"base64":        []byte(base64.StdEncoding.EncodeToString(secret)),
		"base64 raw":    []byte(base64.RawStdEncoding.EncodeToString(secret)),
		"base64url":     []byte(base64.URLEncoding.EncodeToString(secret)),
		"base64url raw": []byte(base64.RawURLEncoding.EncodeToString(secret)),
	}
	for name, form := range forms {
		if bytes.Contains(data, form) {
			return name, true
		}
	}
	return "", false
}

func contains(data, want []byte) bool {
	_, ok := find(data, want)
	return ok
}

// runLifeCycle drives two accounts through every step of issue 2 and plants
// what it learns in s.
func runLifeCycle(t *testing.T, r *relay, s *secrets) {
	ctx := t.Context()
	kdf := zkcrypto.TestKDFParams()
	c := r.client(t)
	alice, alice2 := "alice@example.test", "alice.new@example.test"
	s.expectedInDB = append(s.expectedInDB, []byte(alice2))

	// Sign up and confirm.
	p1 := s.password("first Passw0rd ✓ " + rand8(t))
	keys, err := c.Register(ctx, alice, p1, "de", kdf)
	must(t, "Register", err)
	s.userKeys(keys)
	_, err = c.Verify(ctx, s.link(r.mailbox.link(t, alice, account.MailVerifyEmail)))
	must(t, "Verify", err)

	// Log in, see who we are, change the password.
	sess, dk, err := c.Login(ctx, alice, p1)
	must(t, "Login", err)
	s.session(sess)
	s.derived(dk)
	me, err := c.Me(ctx)
	must(t, "Me", err)
	if me.Email != alice || !me.Verified {
		t.Fatalf("Me = %+v", me)
	}
	p2 := s.password("second Passw0rd " + rand8(t))
	must(t, "ChangePassword", c.ChangePassword(ctx, p1, p2, kdf))
	sess, dk, err = c.Login(ctx, alice, p2)
	must(t, "Login p2", err)
	s.session(sess)
	s.derived(dk)

	// Change the e-mail address.
	must(t, "ChangeEmail", c.ChangeEmail(ctx, p2, alice2))
	v, err := c.Verify(ctx, s.link(r.mailbox.link(t, alice2, account.MailChangeEmailConfirm)))
	must(t, "Verify change", err)
	if v.Email != alice2 {
		t.Fatalf("Verify change = %+v", v)
	}

	// Save the recovery file, log out, reset the password with it.
	file, err := c.RecoveryFile(ctx, p2)
	must(t, "RecoveryFile", err)
	must(t, "Logout", c.Logout(ctx))
	_, err = c.RequestReset(ctx, alice2, "")
	must(t, "RequestReset", err)
	p3 := s.password("third Passw0rd " + rand8(t))
	res, err := c.ResetWithRecovery(ctx, s.link(r.mailbox.link(t, alice2, account.MailResetPassword)), file, p3, kdf)
	must(t, "ResetWithRecovery", err)
	if !res.KeysKept {
		t.Fatal("reset with the recovery file did not keep the keys")
	}
	sess, dk, err = c.Login(ctx, alice2, p3)
	must(t, "Login p3", err)
	s.session(sess)
	s.derived(dk)
	mk, err := c.MyKeys(ctx)
	must(t, "MyKeys", err)
	if !bytes.Equal(mk.BoxPublicKey, keys.BoxPublic[:]) || !bytes.Equal(mk.SignPublicKey, keys.SignPublic) {
		t.Fatal("public keys changed across a reset with the recovery file")
	}

	// Log out everywhere, reset without the recovery file.
	_, err = c.LogoutAll(ctx)
	must(t, "LogoutAll", err)
	_, err = c.RequestReset(ctx, alice2, "")
	must(t, "RequestReset 2", err)
	p4 := s.password("fourth Passw0rd " + rand8(t))
	newKeys, _, err := c.ResetWithoutRecovery(ctx, s.link(r.mailbox.link(t, alice2, account.MailResetPassword)), p4, kdf)
	must(t, "ResetWithoutRecovery", err)
	s.userKeys(newKeys)
	sess, dk, err = c.Login(ctx, alice2, p4)
	must(t, "Login p4", err)
	s.session(sess)
	s.derived(dk)
	s.expectedInDB = append(s.expectedInDB, zkcrypto.HashLoginKey(dk.LoginKey[:]), newKeys.BoxPublic[:])

	// A second account that signs up and deletes itself.
	b := r.client(t)
	bob := "bob@example.test"
	pb := s.password("bob's Passw0rd " + rand8(t))
	bobKeys, err := b.Register(ctx, bob, pb, "fr", kdf)
	must(t, "Register bob", err)
	s.userKeys(bobKeys)
	_, err = b.Verify(ctx, s.link(r.mailbox.link(t, bob, account.MailVerifyEmail)))
	must(t, "Verify bob", err)
	sess, dk, err = b.Login(ctx, bob, pb)
	must(t, "Login bob", err)
	s.session(sess)
	s.derived(dk)
	must(t, "DeleteAccount bob", b.DeleteAccount(ctx, pb))
}

// readSQLiteFiles returns the SQLite database with its WAL and shared-memory
// files, raw.
func readSQLiteFiles(t *testing.T, dataDir string) []byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dataDir, "*.db*"))
	must(t, "glob", err)
	if len(files) == 0 {
		t.Fatalf("no SQLite files in %s", dataDir)
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, "read "+f, err)
		all = append(all, b...)
	}
	return all
}

// readOutbox returns every mail in the outbox (none with SMTP).
func readOutbox(t *testing.T, dataDir string) []byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dataDir, "outbox", "*.eml"))
	all := []byte("outbox:\n")
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, "read "+f, err)
		all = append(all, b...)
	}
	return all
}

// dumpPostgres returns every row of every table in the test schema as text
// (bytea as \x hex).
func dumpPostgres(t *testing.T, url string) []byte {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	must(t, "connect", err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables
		WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`)
	must(t, "list tables", err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	must(t, "list tables", err)
	if len(tables) == 0 {
		t.Fatal("no tables in the test schema")
	}
	var buf bytes.Buffer
	for _, table := range tables {
		rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT t::text FROM %s t`, pgx.Identifier{table}.Sanitize()))
		must(t, "dump "+table, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		must(t, "dump "+table, err)
		for _, l := range lines {
			// bytea comes as \x followed by hex: make it findable as hex.
			buf.WriteString(strings.ReplaceAll(l, `\\x`, " "))
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes()
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// rand8 returns 8 random hex digits, so that planted passwords are unique.
func rand8(t *testing.T) string {
	salt, err := zkcrypto.NewSalt()
	must(t, "rand", err)
	return hex.EncodeToString(salt[:4])
}
