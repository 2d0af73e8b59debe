-- 0002: paired devices, the users they are shared with, the users' key
-- slots and pairing tokens (pkg/keystore).
--
-- Times are INTEGER Unix microseconds in UTC, as in 0001. Keys and sealed
-- blobs are BLOBs; addresses are TEXT in Go's netip form.
-- Released: never edit this file; add a new numbered one instead.

CREATE TABLE devices (
    id               TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    uid              TEXT    NOT NULL UNIQUE CHECK (uid <> ''),
    public_key       BLOB    NOT NULL UNIQUE CHECK (length(public_key) = 32),
    mgmt_addr        TEXT    NOT NULL UNIQUE CHECK (mgmt_addr <> ''),
    firmware         TEXT    NOT NULL DEFAULT '',
    protocol_version INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    last_endpoint    TEXT    NOT NULL DEFAULT '', -- ip:port; only the latest, never a history
    last_seen_at     INTEGER,                     -- NULL: never seen
    online           INTEGER NOT NULL DEFAULT 0 CHECK (online IN (0, 1)),
    node             TEXT    NOT NULL DEFAULT ''
) STRICT;

CREATE INDEX devices_node_online ON devices (node) WHERE online = 1;

CREATE TABLE device_users (
    device_id   TEXT    NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role        TEXT    NOT NULL CHECK (role IN ('owner', 'user')),
    sealed_name BLOB    NOT NULL,
    sealed_note BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (device_id, user_id)
) STRICT;

CREATE INDEX device_users_user_id ON device_users (user_id);

-- A device is deleted with its last owner, however the owner goes (a
-- deleted user, a reset without recovery file, a removed share). When the
-- device itself is deleted, its rows here cascade and the trigger finds
-- nothing left to delete.
CREATE TRIGGER device_users_last_owner AFTER DELETE ON device_users
WHEN OLD.role = 'owner'
BEGIN
    DELETE FROM devices
    WHERE id = OLD.device_id
      AND NOT EXISTS (SELECT 1 FROM device_users WHERE device_id = OLD.device_id AND role = 'owner');
END;

-- Slot indexes are unique per device, across its users: slot i is the peer
-- with the browser address 10.77.1.(i+1) on the device's interface.
CREATE TABLE key_slots (
    device_id          TEXT    NOT NULL,
    user_id            TEXT    NOT NULL,
    idx                INTEGER NOT NULL CHECK (idx BETWEEN 0 AND 253),
    browser_public_key BLOB    NOT NULL CHECK (length(browser_public_key) = 32),
    sealed             BLOB    NOT NULL,
    PRIMARY KEY (device_id, idx),
    UNIQUE (device_id, browser_public_key),
    FOREIGN KEY (device_id, user_id) REFERENCES device_users (device_id, user_id) ON DELETE CASCADE
) STRICT;

CREATE INDEX key_slots_device_id_user_id ON key_slots (device_id, user_id);

CREATE TABLE pairing_tokens (
    id         TEXT    NOT NULL PRIMARY KEY CHECK (id <> ''),
    token_hash BLOB    NOT NULL UNIQUE,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name       TEXT    NOT NULL DEFAULT '',
    max_uses   INTEGER NOT NULL CHECK (max_uses >= 1),
    uses       INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0 AND uses <= max_uses),
    expires_at INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER -- NULL: not revoked
) STRICT;

CREATE INDEX pairing_tokens_user_id ON pairing_tokens (user_id, created_at);
