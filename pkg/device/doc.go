// Package device is the reference implementation of a blindrelay device:
// what firmware (or cmd/devicesim) runs to be reachable through a relay.
//
// A device pairs once (Pair with a pairing token, or PairWithPassword with
// the user's e-mail and password): it makes its WireGuard static key and K
// key slots (a browser key pair and a pre-shared key each), seals each
// slot's browser half to the user's box public key, registers with the
// relay and keeps its state in a directory (Open loads it again). The
// browser private keys leave the device only sealed; the device keeps the
// slots' public keys and pre-shared keys.
//
// Run then brings up one userspace WireGuard interface (wireguard-go on a
// gVisor netstack, one UDP socket) with the relay as management peer and one
// peer per key slot, all reached at the relay's UDP endpoint; serves the
// device's web UI on its session addresses inside the tunnel (10.77.0.1:80,
// [fdb1:d4e1:a7ff::1]:80), to key-slot peers only; and speaks the control
// protocol (docs/protocol.md §5) to the relay over the management tunnel,
// acting on owner commands only when the owner's Ed25519 signature verifies.
//
// WGQuick writes the same interface as a wg-quick(8) file, so that a device
// with stock WireGuard and no agent is reachable too (without the control
// protocol).
//
// The package does not serve a UI of its own (Config.UI is the device's),
// does not resolve a relay host name again while running, and imports no
// relay-side code: only pkg/apiclient, pkg/wire, pkg/wgkey, pkg/zkcrypto,
// wireguard-go and gVisor.
package device
