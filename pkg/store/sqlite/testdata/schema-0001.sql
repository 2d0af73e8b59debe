-- The SQLite schema as migration 0001 left it, with a few rows: a verified
-- and an unverified user, a session, a verify and a change token and a
-- server secret. Written by `sqlite3 relay.db .dump`; the values are fake.
-- Never edit or regenerate this file: it stands for databases in the field.
-- TestMigrateFromSchema0001 migrates it to the latest schema.
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE schema_migrations (
		version    INTEGER NOT NULL PRIMARY KEY,
		name       TEXT    NOT NULL,
		applied_at TEXT    NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
	) STRICT;
INSERT INTO schema_migrations VALUES(1,'0001_accounts.sql','2025-06-01T12:00:00.000Z');
CREATE TABLE users (
    id                     TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    email                  TEXT    NOT NULL UNIQUE CHECK (email <> ''),
    email_verified         INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1)),
    language               TEXT    NOT NULL,
    salt                   BLOB    NOT NULL,
    kdf_algorithm          TEXT    NOT NULL,
    kdf_version            INTEGER NOT NULL,
    kdf_memory_kib         INTEGER NOT NULL,
    kdf_iterations         INTEGER NOT NULL,
    kdf_parallelism        INTEGER NOT NULL,
    login_key_hash         BLOB    NOT NULL,
    box_public_key         BLOB    NOT NULL,
    sign_public_key        BLOB    NOT NULL,
    encrypted_private_keys BLOB    NOT NULL,
    created_at             INTEGER NOT NULL,
    updated_at             INTEGER NOT NULL
) STRICT;
INSERT INTO users VALUES('u-alice','alice@example.com',1,'de',X'a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1','argon2id',19,65536,3,1,X'a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2',X'a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3',X'a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4',X'a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5',1748779200123456,1748782800123456);
INSERT INTO users VALUES('u-bob','bob@example.com',0,'en',X'b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1','argon2id',19,65536,3,1,X'b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2',X'b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3',X'b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4',X'b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5',1748779200123456,1748779200123456);
CREATE TABLE sessions (
    token_hash   BLOB    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) STRICT;
INSERT INTO sessions VALUES(X'd1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1','u-alice',1748779200123456,1751371200123456,1748782800123456);
CREATE TABLE tokens (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL CHECK (purpose <> ''),
    new_email  TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
INSERT INTO tokens VALUES(X'c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1','u-bob','verify_email','',1748779200123456,1748865600123456);
INSERT INTO tokens VALUES(X'c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2','u-alice','change_email','alice@example.org',1748779200123456,1748865600123456);
CREATE TABLE server_secrets (
    name  TEXT NOT NULL PRIMARY KEY CHECK (name <> ''),
    value BLOB NOT NULL
) STRICT;
INSERT INTO server_secrets VALUES('fake-salt',X'e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1');
CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX tokens_user_id_purpose ON tokens (user_id, purpose);
CREATE INDEX tokens_expires_at ON tokens (expires_at);
COMMIT;
