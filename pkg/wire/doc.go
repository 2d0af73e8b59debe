// Package wire holds the byte formats the relay reads from the network: the
// header fields of WireGuard messages that its UDP demultiplexer looks at,
// the first half of the Noise handshake that tells a management peer's key,
// and the control protocol spoken over the management tunnel. It is the
// fuzzed surface of the relay: every function here takes bytes from the
// network, never panics on them, and reports malformed input as an error.
//
// # WireGuard messages
//
// Parse checks a datagram's type, reserved bytes and size and returns the
// sender and receiver indices (Message); anything else is a DropReason, a
// small closed set of metric labels. Mac1Valid (or a precomputed Mac1Key)
// checks a handshake message's mac1 against a receiver public key, which is
// how the relay tells which key slot a device-initiated handshake is for.
// InitiatorStatic (or a precomputed Responder) decrypts the initiator's
// static public key from a handshake initiation sent to a key the relay
// holds, which is how it loads a management peer lazily. Nothing here
// decrypts transport data or completes a handshake: that is wireguard-go's.
//
// The message layouts are those of the WireGuard paper (§5.4); they are
// drawn beside the constants in message.go and in docs/protocol.md.
//
// # Control protocol
//
// Over TCP inside the management tunnel, device and relay exchange frames
// (ReadFrame, WriteFrame): a 4-byte big-endian payload length, a 1-byte
// frame type and a JSON payload. Hello and HelloAck negotiate a version
// (Negotiate); owner commands travel as a SignedCommand that the device
// verifies with the owner's Ed25519 key (SignCommand, VerifyCommand);
// CommandAck, Ping and Pong complete it. Unknown frame types, JSON fields and
// capabilities are skipped, so old and new firmware keep working together.
// docs/protocol.md is the full description.
//
// # Addresses
//
// The fixed tunnel addresses (management ULA, session addresses of a device
// and its key slots) are computed by MgmtAddr, SlotAddr4 and friends, so that
// relay, device and client agree on them.
//
// # What it is not
//
// It does no I/O of its own beyond the io.Reader and io.Writer it is handed,
// keeps no state, and knows nothing of sockets, peers, stores or sessions
// (pkg/relay, pkg/mgmt, pkg/device). It imports only the standard library,
// golang.org/x/crypto and pkg/wgkey, and builds for GOOS=js GOARCH=wasm.
package wire
