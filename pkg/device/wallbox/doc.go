// Package wallbox is the web UI of an emulated wallbox (an EV charger such
// as a Tinkerforge WARP), as cmd/devicesim serves it through pkg/device. It
// is realistic enough to exercise everything a browser session through the
// relay needs: an HTML status page whose values change, a JSON API, a
// WebSocket that pushes live values and echoes, large deterministic
// downloads with a checksum, streamed uploads of any size, and a settings
// page behind HTTP Digest authentication (RFC 7616, MD5 and SHA-256, qop=auth),
// the scheme WARP chargers use.
//
// Routes (all relative, so the UI works under any prefix a proxy adds):
//
//	GET  /                    HTML status page (UID, charging state, power, energy), live via /ws
//	GET  /api/status          Status as JSON
//	GET  /ws                  WebSocket: a Status text message every PushInterval; every message received is echoed verbatim
//	GET  /api/download?size=N N bytes of DownloadContent(N), with ChecksumHeader = DownloadSHA256(N)
//	POST /api/upload          streams the body into SHA-256 and answers UploadResult as JSON
//	GET  /settings            settings page (Digest auth)
//	POST /settings            changes the settings (Digest auth; form fields max_current_a, charging_enabled)
//
// It is not a real charger: the charging cycle is a function of the clock,
// and settings live in memory only. It holds no keys and knows nothing of
// WireGuard or the relay.
package wallbox
