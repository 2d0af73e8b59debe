-- 0002: paired devices, the users they are shared with, the users' key
-- slots and pairing tokens (pkg/keystore).
-- Released: never edit this file; add a new numbered one instead.
-- The tables go to the first schema of the connection's search_path.

CREATE TABLE devices (
    id               text        NOT NULL,
    uid              text        NOT NULL,
    public_key       bytea       NOT NULL,
    mgmt_addr        inet        NOT NULL,
    firmware         text        NOT NULL DEFAULT '',
    protocol_version integer     NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL,
    last_endpoint    text        NOT NULL DEFAULT '', -- ip:port; only the latest, never a history
    last_seen_at     timestamptz,                     -- NULL: never seen
    online           boolean     NOT NULL DEFAULT false,
    node             text        NOT NULL DEFAULT '',
    CONSTRAINT devices_pkey PRIMARY KEY (id),
    CONSTRAINT devices_uid_key UNIQUE (uid),
    CONSTRAINT devices_public_key_key UNIQUE (public_key),
    CONSTRAINT devices_mgmt_addr_key UNIQUE (mgmt_addr),
    CONSTRAINT devices_id_check CHECK (id <> ''),
    CONSTRAINT devices_uid_check CHECK (uid <> ''),
    CONSTRAINT devices_public_key_check CHECK (octet_length(public_key) = 32)
);

CREATE INDEX devices_node_online_idx ON devices (node) WHERE online;

CREATE TABLE device_users (
    device_id   text        NOT NULL,
    user_id     text        NOT NULL,
    role        text        NOT NULL,
    sealed_name bytea       NOT NULL,
    sealed_note bytea       NOT NULL,
    created_at  timestamptz NOT NULL,
    CONSTRAINT device_users_pkey PRIMARY KEY (device_id, user_id),
    CONSTRAINT device_users_device_id_fkey FOREIGN KEY (device_id) REFERENCES devices (id) ON DELETE CASCADE,
    CONSTRAINT device_users_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT device_users_role_check CHECK (role IN ('owner', 'user'))
);

CREATE INDEX device_users_user_id_idx ON device_users (user_id);

-- A device is deleted with its last owner, however the owner goes (a
-- deleted user, a reset without recovery file, a removed share). The
-- device row is locked first, so that two transactions removing its last
-- two owners at once cannot both see the other still there.
CREATE FUNCTION device_users_last_owner() RETURNS trigger
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    PERFORM 1 FROM devices WHERE id = OLD.device_id FOR UPDATE;
    DELETE FROM devices
    WHERE id = OLD.device_id
      AND NOT EXISTS (SELECT 1 FROM device_users WHERE device_id = OLD.device_id AND role = 'owner');
    RETURN NULL;
END
$$;

CREATE TRIGGER device_users_last_owner AFTER DELETE ON device_users
FOR EACH ROW WHEN (OLD.role = 'owner')
EXECUTE FUNCTION device_users_last_owner();

-- Slot indexes are unique per device, across its users: slot i is the peer
-- with the browser address 10.77.1.(i+1) on the device's interface.
CREATE TABLE key_slots (
    device_id          text    NOT NULL,
    user_id            text    NOT NULL,
    idx                integer NOT NULL,
    browser_public_key bytea   NOT NULL,
    sealed             bytea   NOT NULL,
    CONSTRAINT key_slots_pkey PRIMARY KEY (device_id, idx),
    CONSTRAINT key_slots_browser_public_key_key UNIQUE (device_id, browser_public_key),
    CONSTRAINT key_slots_device_user_fkey FOREIGN KEY (device_id, user_id)
        REFERENCES device_users (device_id, user_id) ON DELETE CASCADE,
    CONSTRAINT key_slots_idx_check CHECK (idx BETWEEN 0 AND 253),
    CONSTRAINT key_slots_browser_public_key_check CHECK (octet_length(browser_public_key) = 32)
);

CREATE INDEX key_slots_device_id_user_id_idx ON key_slots (device_id, user_id);

CREATE TABLE pairing_tokens (
    id         text        NOT NULL,
    token_hash bytea       NOT NULL,
    user_id    text        NOT NULL,
    name       text        NOT NULL DEFAULT '',
    max_uses   integer     NOT NULL,
    uses       integer     NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz, -- NULL: not revoked
    CONSTRAINT pairing_tokens_pkey PRIMARY KEY (id),
    CONSTRAINT pairing_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT pairing_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    CONSTRAINT pairing_tokens_id_check CHECK (id <> ''),
    CONSTRAINT pairing_tokens_max_uses_check CHECK (max_uses >= 1),
    CONSTRAINT pairing_tokens_uses_check CHECK (uses >= 0 AND uses <= max_uses)
);

CREATE INDEX pairing_tokens_user_id_idx ON pairing_tokens (user_id, created_at);
