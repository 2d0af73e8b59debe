-- 0001: users, sessions, single-use e-mail tokens and server secrets.
-- Released: never edit this file; add a new numbered one instead.
-- The tables go to the first schema of the connection's search_path.

CREATE TABLE users (
    id                     text        NOT NULL,
    email                  text        NOT NULL,
    email_verified         boolean     NOT NULL DEFAULT false,
    language               text        NOT NULL,
    salt                   bytea       NOT NULL,
    kdf_algorithm          text        NOT NULL,
    kdf_version            integer     NOT NULL,
    kdf_memory_kib         bigint      NOT NULL,
    kdf_iterations         bigint      NOT NULL,
    kdf_parallelism        smallint    NOT NULL,
    login_key_hash         bytea       NOT NULL,
    box_public_key         bytea       NOT NULL,
    sign_public_key        bytea       NOT NULL,
    encrypted_private_keys bytea       NOT NULL,
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_email_key UNIQUE (email),
    CONSTRAINT users_id_check CHECK (id <> ''),
    CONSTRAINT users_email_check CHECK (email <> '')
);

CREATE TABLE sessions (
    token_hash   bytea       NOT NULL,
    user_id      text        NOT NULL,
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,
    last_seen_at timestamptz NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (token_hash),
    CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE tokens (
    token_hash bytea       NOT NULL,
    user_id    text        NOT NULL,
    purpose    text        NOT NULL,
    new_email  text        NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT tokens_pkey PRIMARY KEY (token_hash),
    CONSTRAINT tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT tokens_purpose_check CHECK (purpose <> '')
);

CREATE INDEX tokens_user_id_purpose_idx ON tokens (user_id, purpose);
CREATE INDEX tokens_expires_at_idx ON tokens (expires_at);

CREATE TABLE server_secrets (
    name  text  NOT NULL,
    value bytea NOT NULL,
    CONSTRAINT server_secrets_pkey PRIMARY KEY (name),
    CONSTRAINT server_secrets_name_check CHECK (name <> '')
);
