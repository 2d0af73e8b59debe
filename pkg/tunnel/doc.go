// Package tunnel is the client end of a blindrelay session: a userspace
// WireGuard interface (wireguard-go with a gVisor netstack TUN) whose only
// peer is one device, reached through the relay over a WebSocket.
//
// Dial brings the interface up and returns a *Tunnel; DialContext opens TCP
// connections to the device's tunnel addresses and HTTPClient returns an
// HTTP/1.1 client (keep-alive, several parallel connections) that dials only
// through the tunnel. Nothing here touches the host's network stack beyond
// the one WebSocket, so the package works unprivileged and builds for
// GOOS=js GOARCH=wasm, where the browser's own WebSocket carries the traffic.
//
// # Wire format
//
// The WebSocket carries WireGuard datagrams verbatim, both ways:
//
//	one binary message  =  one WireGuard datagram (handshake, cookie or transport message)
//
// The WebSocket subprotocol "blindrelay.v1" (Subprotocol) names this
// framing. There is no other framing and no compression (WireGuard
// ciphertext does not compress; permessage-deflate would only cost CPU).
// Text messages are not datagrams and are skipped and counted: the relay
// opens a session with a text hello (the leased slot and the device's key),
// which the tunnel does not need since the caller asked for the slot in the
// URL. Binary messages larger than a UDP datagram can be are dropped and
// counted too; nothing a relay sends is fatal. The relay stands for the device: every
// datagram the bind sends goes to the relay, and everything it receives is
// attributed to the device, so the bind has exactly one endpoint.
//
// # Recovery
//
// If the WebSocket drops, the Bind redials the same URL with the same
// headers, with bounded exponential backoff and jitter, for as long as the
// interface is up. Datagrams sent while it is down are dropped, as a UDP path
// would drop them; WireGuard's own retransmission and TCP's do the rest. After
// every successful redial the Tunnel starts a fresh WireGuard handshake at
// once, because a relay that restarted has forgotten the receiver indexes it
// learned from earlier handshakes and could not route the device's replies
// until the next one.
//
// One close is final: status 1008 (policy violation), which pkg/relay sends
// to a session replaced by a newer one for the same key slot. The tunnel
// then stops redialling and Done and Err report ErrSessionEnded.
//
// # What it is not
//
// The package does not log in, pick a key slot or open sealed keys: the
// caller hands Dial the URL (with whatever authenticates it, a cookie or a
// ticket), the slot's keys and addresses. It does not resolve names inside
// the tunnel and it does not accept inbound connections.
package tunnel
