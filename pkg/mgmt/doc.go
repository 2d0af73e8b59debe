// Package mgmt is the relay's end of the management tunnel: one wireguard-go
// device with the relay's management key, to which every paired device keeps
// a WireGuard session (DESIGN §3, docs/protocol.md §3–§5). The tunnel proves
// that a device is online and where it is, and carries the control protocol.
//
// # Datagrams
//
// The relay's UDP read loop (pkg/relay) hands every datagram no browser
// session claims to HandleMgmt. There is no socket of the package's own:
// a conn.Bind feeds wireguard-go from a bounded queue of pooled buffers (a
// full queue drops, the relay's read loop never waits) and sends through the
// relay's socket (Config.Sender).
//
//	relay read loop ──HandleMgmt──▶ initiation? ─mac1, rate─▶ intake queue ─▶ worker:
//	                     │                          static key (claim) → peer, loaded lazily
//	                     └─ type 2/3/4: receiver index is one of ours ──────▶ queue ─▶ wireguard-go
//	wireguard-go ──Bind.Send──▶ rules (allowSend) ──▶ relay socket
//	                               └─ learn: endpoint, online, our new indices
//
// # Lazy peers
//
// Devices are wireguard-go peers only while they use the tunnel. A
// handshake initiation whose mac1 is for the relay's key is decrypted as far
// as the initiator's static key (wire.Responder); that key is only a claim,
// used to look the device up (Store.DeviceByPublicKey, unknown keys cached
// briefly) and to add it as a peer (IpcSet: its key and its management
// address as the only allowed IP, no endpoint). wireguard-go then checks the
// handshake. A peer with no authenticated traffic for IdlePeerTimeout is
// removed again, as is the peer of a device that goes offline.
//
// # Endpoints only from authenticated packets
//
// The relay never learns an address from a packet it has not authenticated.
// Each datagram reaches wireguard-go with its own endpoint value, tagged with
// the peer it was for (from the claim or from the relay's receiver index).
// wireguard-go keeps as a peer's endpoint the one of the last datagram it
// authenticated for that peer, and sends to that peer through it. So when the
// Bind is asked to send a handshake response (which wireguard-go sends only
// after verifying the initiation, to where it came from) or a transport
// message (sent to where the last verified packet came from), the endpoint
// proves where the device is: that, and nothing else, moves the device's
// endpoint in the relay (Endpoints.SetDeviceEndpoint) and the store. The one
// datagram wireguard-go sends to an unverified address, a cookie reply under
// load, is sent only to the address the device is already known at. The
// initiation of a re-handshake (below) goes to an address authenticated
// before the relay restarted, as the store recorded it.
//
// # Online and offline
//
// A device is online from its first authenticated handshake until
// OfflineAfter passes with no authenticated traffic: a datagram wireguard-go
// verified (seen when the relay sends to the device) or an IP packet out of
// the tunnel. A device quiet for a while is probed with an ICMPv6 echo
// request to its management address, which any WireGuard interface holding
// that address answers, stock ones included. Going offline clears the
// device's endpoint in the relay and is written to the store (off the
// packet path, coalesced per device).
//
// # Re-handshake after a restart
//
// A relay that restarted (or a node that took over a device's traffic)
// knows none of the devices' sessions, but the devices go on sending in
// them: their transport messages name receiver indices the relay never
// made, and a device starts a new handshake only when its own timers say
// so (15 s after data that got no answer; up to two minutes for a device
// that only sends keepalives). So the relay starts the handshake itself.
//
// A type 2, 3 or 4 datagram whose receiver index names no handshake of the
// relay's is still dropped, but its source S is looked up among the
// devices' stored endpoints (Store.DeviceByEndpoint). If S is the last
// endpoint of a device seen there within RehandshakeMaxAge, which is not
// online and has no re-handshake pending, the device's peer is loaded with
// S as a provisional endpoint and wireguard-go sends it a handshake
// initiation. The device answers it like any handshake, and its response,
// once wireguard-go authenticated it, is what brings the device online and
// moves its endpoint (see above): the provisional endpoint itself proves
// nothing and carries that one initiation only (no retry, no cookie reply,
// no transport message). A re-handshake left unanswered expires after
// five seconds (REKEY_TIMEOUT) and its peer, still offline, is removed.
//
// This keeps DESIGN §3's rule that the relay sends UDP only to addresses it
// learned from authenticated management packets: S was written to the
// store only from such packets (by this node before the restart, or by
// another), and must have been written recently; a datagram from any other
// source makes the relay send nothing (RehandshakeStats.NotStored, Stale).
// It is not an amplifier: an initiation is 148 bytes and needs a datagram
// of at least 32 bytes from (or forged as from) the endpoint it goes to,
// each stored endpoint gets at most one initiation per five seconds (a
// source is looked up once per five seconds, a device has at most one
// re-handshake pending, which sends once), and all of them together at
// most 500 a second (after a burst of 1000). All of it is bounded: lookups per source (IPv4 address or
// IPv6 /64) and for all sources together are rate-limited, sources known
// not to be usable endpoints are cached for half a minute, and the tables
// of sources and pending re-handshakes have fixed sizes.
//
// A device that sends nothing (an idle device between keepalives, 25 s
// apart) starts no re-handshake this way. Wake starts the same one on
// request, when someone wants the device (pkg/server's tunnel requests):
// the device is looked up by id (Store.DeviceByID) instead of by endpoint,
// under the same rules, with at most one wake per device and five seconds.
//
// LastSeenAt must stay recent for a device that has been online for days,
// so the presence of an online device with recent authenticated traffic is
// written again every five minutes or so (a store write per online device
// and five minutes).
//
// # Control protocol
//
// Run serves TCP on [wire.RelayMgmtAddr]:wire.ControlPort inside the tunnel.
// A connection's source address is the device's management address, which
// wireguard-go accepts only from that device's peer, so it names the device
// with no further authentication. The relay answers the Hello with the
// negotiated version (wire.Negotiate), records the firmware, pings the
// device and carries owner-signed commands (SendCommand).
//
// # Wiring
//
// The relay (pkg/relay) owns the one UDP socket and is the Sender and the
// Endpoints; the Mgmt is the relay's MgmtHandler. Each needs the other at
// construction, so the caller hands New a small forwarder to the relay
// server that it fills in once relay.New returned. Run the relay and Run
// the Mgmt side by side on one context; both return when it ends, the Mgmt
// after taking its devices offline.
//
// # What it is not
//
// It does not demultiplex browser sessions or forward their traffic
// (pkg/relay), decides nothing about users or access, and never decrypts
// anything but its own tunnel.
package mgmt
