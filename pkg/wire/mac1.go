package wire

import (
	"crypto/subtle"

	"golang.org/x/crypto/blake2s"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// labelMac1 is LABEL-MAC1 of the WireGuard paper (§5.4.4).
const labelMac1 = "mac1----"

// Mac1Key is the key of the mac1 field of handshake messages sent to one
// receiver: HASH(LABEL-MAC1 || receiver public key), where HASH is
// BLAKE2s-256. It is derived from a public key, so it is no secret; keeping
// it saves one hash per check where the same receiver is checked often.
type Mac1Key [blake2s.Size]byte

// NewMac1Key returns the mac1 key of handshake messages sent to receiver.
func NewMac1Key(receiver wgkey.Public) Mac1Key {
	var in [len(labelMac1) + wgkey.Size]byte
	copy(in[:], labelMac1)
	copy(in[len(labelMac1):], receiver[:])
	return Mac1Key(blake2s.Sum256(in[:]))
}

// Valid reports whether msg is a well-formed handshake initiation or
// response (see Parse) whose mac1 is
//
//	MAC(key, msg[:offset of mac1])
//
// with MAC the keyed BLAKE2s-128 of the paper (§5.4.4). It does not look at
// mac2 (the cookie, which only the receiver can check) and compares in
// constant time.
func (k *Mac1Key) Valid(msg []byte) bool {
	if !isHandshake(msg) {
		return false
	}
	end := len(msg) - sizeMAC // mac2 starts here
	start := end - sizeMAC    // mac1 starts here
	h, err := blake2s.New128(k[:])
	if err != nil {
		panic("wire: blake2s.New128 refused a 32-byte key: " + err.Error())
	}
	h.Write(msg[:start])
	var sum [blake2s.Size]byte
	mac := h.Sum(sum[:0])
	return subtle.ConstantTimeCompare(mac, msg[start:end]) == 1
}

// Mac1Valid reports whether msg is a well-formed handshake initiation or
// response whose mac1 was made for receiver: only a sender that knows the
// receiver's public key can make it, so for a slot key that only the browser
// and the device know, a valid mac1 names the slot. It is
// NewMac1Key(receiver).Valid(msg).
func Mac1Valid(msg []byte, receiver wgkey.Public) bool {
	k := NewMac1Key(receiver)
	return k.Valid(msg)
}
