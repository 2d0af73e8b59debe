// Package relay is the blind packet path of the relay server: it owns the
// demultiplexing of the one UDP port and bridges browser sessions, each a
// WebSocket carrying one WireGuard datagram per binary message, to devices.
// It forwards WireGuard ciphertext verbatim and never decrypts anything.
//
// # The parts
//
// A Server is built around one UDP socket that its caller owns (New). Run is
// the only reader of that socket (on Linux with recvmmsg(2), several
// datagrams per system call; nothing is allocated per datagram on either
// path). Accept serves one browser session: it is handed an accepted
// WebSocket and a Session (device, key slot, user) that the caller has
// already authorised, and blocks until the session ends.
// SetDeviceEndpoint and ClearDevice are called by the management side when an
// authenticated management packet proves where a device is (or that it is
// gone); WriteTo lets the management side send through the same socket.
//
// # Demultiplexing (docs/protocol.md, DESIGN §3)
//
// A datagram from UDP address A:
//
//  1. wire.Parse; a malformed datagram is dropped and counted by its
//     wire.DropReason.
//  2. If A is the current endpoint of a device that has sessions:
//     a type 2, 3 or 4 message whose receiver index the relay learned from
//     one of that device's sessions goes to that session; a type 1
//     (device-initiated handshake) whose mac1 is valid for the key slot
//     public key of one of that device's sessions goes to that session.
//  3. Everything else is handed to MgmtHandler.HandleMgmt: the management
//     tunnel decides what it is and counts its own drops.
//
// A datagram from a browser session (a binary WebSocket message):
//
//  1. wire.Parse; malformed → dropped and counted.
//  2. Types 1 and 2 are limited to a burst of 16 and 4 a second per
//     session (handshake_rate; a WireGuard peer sends one every 5 s at
//     most), must carry a mac1 valid for the device's public key (a
//     handshake the device would reject anyway is not sent), and their
//     sender index is learned for the session. An index already held by another
//     session of the same device is refused (index_in_use), so one session
//     cannot divert another's traffic; the browser's next handshake picks a
//     fresh random index.
//  3. The datagram goes, verbatim, to the device's endpoint. With no
//     endpoint it is dropped (device_offline).
//
// The relay sends UDP only to endpoints given to SetDeviceEndpoint and, for
// the management side, to the addresses it passes to WriteTo. A source the
// relay has not learned never gets a byte back from the session path.
//
// # Queues and drop policy
//
// Datagrams toward a browser go through a bounded per-session queue
// (Config.SessionQueue, default 256 datagrams) drained by the session's own
// writer goroutine. When the queue is full the new datagram is dropped (tail
// drop, counted as queue_full): the UDP read loop never blocks on a browser,
// so a slow or stalled browser costs only its own session packets. WireGuard
// and the TCP inside it recover from the loss. Datagrams toward the device
// are written to the UDP socket directly by the session's reader goroutine.
//
// Each session learns at most a few receiver indices (the newest ones; older
// ones are forgotten), and all of them are removed when the session ends. A
// second session with the same key slot on the same device replaces the
// first (its Accept returns ErrReplaced): a reconnecting browser must not
// wait for the old WebSocket to time out.
//
// # What it is not
//
// It knows nothing of HTTP routing, accounts, slot leases or stores: the
// caller authorises the WebSocket and says which Session it is. It does not
// terminate the management tunnel (pkg/mgmt does, through MgmtHandler and
// WriteTo) and does not decide where a device is (SetDeviceEndpoint).
// It does not log per packet; Stats and Sessions expose counters.
package relay
