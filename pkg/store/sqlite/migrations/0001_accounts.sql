-- 0001: users, sessions, single-use e-mail tokens and server secrets.
--
-- Times are INTEGER Unix microseconds in UTC (the precision PostgreSQL keeps),
-- so that comparisons in SQL are plain integer comparisons.
-- Released: never edit this file; add a new numbered one instead.

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

CREATE TABLE sessions (
    token_hash   BLOB    NOT NULL PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL
) STRICT;

CREATE INDEX sessions_user_id ON sessions (user_id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE tokens (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose    TEXT    NOT NULL CHECK (purpose <> ''),
    new_email  TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;

CREATE INDEX tokens_user_id_purpose ON tokens (user_id, purpose);
CREATE INDEX tokens_expires_at ON tokens (expires_at);

CREATE TABLE server_secrets (
    name  TEXT NOT NULL PRIMARY KEY CHECK (name <> ''),
    value BLOB NOT NULL
) STRICT;
