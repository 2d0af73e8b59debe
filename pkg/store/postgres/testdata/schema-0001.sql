-- The PostgreSQL schema as migration 0001 left it, with a few rows: a
-- verified and an unverified user, a session, a verify and a change token
-- and a server secret. Written by pg_dump --schema=... --no-owner
-- --no-privileges --inserts, without the SET lines and with the schema
-- name removed, so that it loads into whatever search_path names. The
-- values are fake. Never edit or regenerate this file: it stands for
-- databases in the field. TestMigrateFromSchema0001 migrates it.


CREATE TABLE schema_migrations (
    version integer NOT NULL,
    name text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE server_secrets (
    name text NOT NULL,
    value bytea NOT NULL,
    CONSTRAINT server_secrets_name_check CHECK ((name <> ''::text))
);

CREATE TABLE sessions (
    token_hash bytea NOT NULL,
    user_id text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    last_seen_at timestamp with time zone NOT NULL
);

CREATE TABLE tokens (
    token_hash bytea NOT NULL,
    user_id text NOT NULL,
    purpose text NOT NULL,
    new_email text DEFAULT ''::text NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    CONSTRAINT tokens_purpose_check CHECK ((purpose <> ''::text))
);

CREATE TABLE users (
    id text NOT NULL,
    email text NOT NULL,
    email_verified boolean DEFAULT false NOT NULL,
    language text NOT NULL,
    salt bytea NOT NULL,
    kdf_algorithm text NOT NULL,
    kdf_version integer NOT NULL,
    kdf_memory_kib bigint NOT NULL,
    kdf_iterations bigint NOT NULL,
    kdf_parallelism smallint NOT NULL,
    login_key_hash bytea NOT NULL,
    box_public_key bytea NOT NULL,
    sign_public_key bytea NOT NULL,
    encrypted_private_keys bytea NOT NULL,
    created_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT users_email_check CHECK ((email <> ''::text)),
    CONSTRAINT users_id_check CHECK ((id <> ''::text))
);

INSERT INTO schema_migrations VALUES
	(1, '0001_accounts.sql', '2025-06-01 12:00:00+00');

INSERT INTO server_secrets VALUES
	('fake-salt', '\xe1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1');

INSERT INTO sessions VALUES
	('\xd1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1', 'u-alice', '2025-06-01 12:00:00.123456+00', '2025-07-01 12:00:00.123456+00', '2025-06-01 13:00:00.123456+00');

INSERT INTO tokens VALUES
	('\xc1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1', 'u-bob', 'verify_email', '', '2025-06-01 12:00:00.123456+00', '2025-06-02 12:00:00.123456+00'),
	('\xc2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2', 'u-alice', 'change_email', 'alice@example.org', '2025-06-01 12:00:00.123456+00', '2025-06-02 12:00:00.123456+00');

INSERT INTO users VALUES
	('u-alice', 'alice@example.com', true, 'de', '\xa1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1', 'argon2id', 19, 65536, 3, 1, '\xa2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2', '\xa3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3a3', '\xa4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4a4', '\xa5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5', '2025-06-01 12:00:00.123456+00', '2025-06-01 13:00:00.123456+00'),
	('u-bob', 'bob@example.com', false, 'en', '\xb1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1', 'argon2id', 19, 65536, 3, 1, '\xb2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2', '\xb3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3b3', '\xb4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4', '\xb5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5', '2025-06-01 12:00:00.123456+00', '2025-06-01 12:00:00.123456+00');

ALTER TABLE ONLY schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);

ALTER TABLE ONLY server_secrets
    ADD CONSTRAINT server_secrets_pkey PRIMARY KEY (name);

ALTER TABLE ONLY sessions
    ADD CONSTRAINT sessions_pkey PRIMARY KEY (token_hash);

ALTER TABLE ONLY tokens
    ADD CONSTRAINT tokens_pkey PRIMARY KEY (token_hash);

ALTER TABLE ONLY users
    ADD CONSTRAINT users_email_key UNIQUE (email);

ALTER TABLE ONLY users
    ADD CONSTRAINT users_pkey PRIMARY KEY (id);

CREATE INDEX sessions_expires_at_idx ON sessions USING btree (expires_at);

CREATE INDEX sessions_user_id_idx ON sessions USING btree (user_id);

CREATE INDEX tokens_expires_at_idx ON tokens USING btree (expires_at);

CREATE INDEX tokens_user_id_purpose_idx ON tokens USING btree (user_id, purpose);

ALTER TABLE ONLY sessions
    ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;

ALTER TABLE ONLY tokens
    ADD CONSTRAINT tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users(id) ON DELETE CASCADE;

