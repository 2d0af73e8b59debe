-- 0003: find a device by its last endpoint (keystore.Store.DeviceByEndpoint),
-- for the management tunnel's re-handshake after a relay restart. Partial:
-- devices never seen have no endpoint.
-- Released: never edit this file; add a new numbered one instead.

CREATE INDEX devices_last_endpoint_idx ON devices (last_endpoint, last_seen_at) WHERE last_endpoint <> '';
