package wire

import (
	"crypto/ecdh"
	"crypto/hmac"
	"fmt"
	"hash"
	"io"
	"log/slog"

	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"

	"github.com/blindrelay/blindrelay/pkg/wgkey"
)

// Constants of the handshake (WireGuard paper §5.4).
const (
	// construction is CONSTRUCTION: the Noise protocol name.
	construction = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s"
	// identifier is IDENTIFIER, mixed into the initial hash.
	identifier = "WireGuard v1 zx2c4 Jason@zx2c4.com"
)

// initialChainKey is Ci = HASH(CONSTRUCTION) and initialHash is
// Hi = HASH(Ci || IDENTIFIER): the same for every handshake.
var initialChainKey, initialHash = func() ([blake2s.Size]byte, [blake2s.Size]byte) {
	c := blake2s.Sum256([]byte(construction))
	return c, mixHash(c, []byte(identifier))
}()

// Responder is the state the responder of a handshake keeps between
// initiations: its private key and the handshake hash after its public key
// is mixed in. It is safe for concurrent use (it is never written after
// NewResponder). It holds a private key, so it never shows it in fmt, slog
// or JSON output ("Responder{[redacted]}", "[redacted]").
//
// It holds the key as a crypto/ecdh key rather than calling
// golang.org/x/crypto/curve25519.X25519, which wraps crypto/ecdh but derives
// the public key again on every call: that doubled the cost of each
// initiation.
type Responder struct {
	private *ecdh.PrivateKey
	hash    [blake2s.Size]byte // HASH(initialHash || responder public key)
}

// NewResponder prepares to read initiations sent to private's public key.
func NewResponder(private wgkey.Private) *Responder {
	k, err := ecdh.X25519().NewPrivateKey(private[:])
	if err != nil {
		panic("wire: X25519 refused a 32-byte private key: " + err.Error())
	}
	return &Responder{private: k, hash: mixHash(initialHash, k.PublicKey().Bytes())}
}

// InitiatorStatic returns the static public key of the initiator of the
// handshake initiation msg, sent to responder. It is NewResponder(responder)
// followed by Responder.InitiatorStatic; keep a Responder where one key
// answers many initiations, as that saves a scalar multiplication.
func InitiatorStatic(msg []byte, responder wgkey.Private) (wgkey.Public, error) {
	return NewResponder(responder).InitiatorStatic(msg)
}

// InitiatorStatic returns the static public key of the initiator of the
// handshake initiation msg. It runs the responder's half of Noise_IKpsk2 up to
// the initiator's static key (WireGuard paper §5.4.2, as the responder
// computes it):
//
//	Ci := HASH(CONSTRUCTION);  Hi := HASH(Ci || IDENTIFIER)
//	Hi := HASH(Hi || Sr.pub)
//	Ci := KDF1(Ci, msg.ephemeral);  Hi := HASH(Hi || msg.ephemeral)
//	(Ci, k) := KDF2(Ci, DH(Sr.priv, msg.ephemeral))
//	Si.pub := AEAD-open(k, 0, msg.static, Hi)
//
// Errors are DropReason values: those of Parse for anything but a
// well-formed initiation, ErrBadHandshake when the static key does not
// decrypt (a message for another responder, a tampered one, or an ephemeral
// key of low order).
//
// The key is a claim, not a proof: anyone who knows the responder's public
// key can encrypt any static key, and only the next step (the timestamp,
// under DH(Sr.priv, Si.pub)) shows the initiator holds the private half. Use
// it to pick which peer to hand the message to, whose own handshake then
// authenticates it, never as an identity. It does not check mac1 (do that
// first: it is cheaper) nor anything after the static key.
func (r *Responder) InitiatorStatic(msg []byte) (wgkey.Public, error) {
	m, err := Parse(msg)
	if err != nil {
		return wgkey.Public{}, err
	}
	if m.Type != MessageInitiationType {
		return wgkey.Public{}, ErrBadType
	}
	ephemeral := msg[offsetEphemeral : offsetEphemeral+wgkey.Size]
	static := msg[offsetStatic : offsetStatic+sizeEncryptedStatic]

	var ck [blake2s.Size]byte
	kdf(&ck, nil, initialChainKey[:], ephemeral)
	h := mixHash(r.hash, ephemeral)
	epub, err := ecdh.X25519().NewPublicKey(ephemeral)
	if err != nil {
		panic("wire: X25519 refused a 32-byte public key: " + err.Error())
	}
	shared, err := r.private.ECDH(epub)
	if err != nil { // low-order point: the shared secret is zero
		return wgkey.Public{}, ErrBadHandshake
	}
	var key [chacha20poly1305.KeySize]byte
	kdf(&ck, &key, ck[:], shared)
	aead, err := chacha20poly1305.New(key[:])
	if err != nil {
		panic("wire: chacha20poly1305.New refused a 32-byte key: " + err.Error())
	}
	var nonce [chacha20poly1305.NonceSize]byte // counter 0
	var out [wgkey.Size]byte
	if _, err := aead.Open(out[:0], nonce[:], static, h[:]); err != nil {
		return wgkey.Public{}, ErrBadHandshake
	}
	return wgkey.Public(out), nil
}

// mixHash returns HASH(h || data), HASH being BLAKE2s-256.
func mixHash(h [blake2s.Size]byte, data []byte) [blake2s.Size]byte {
	d, _ := blake2s.New256(nil)
	d.Write(h[:])
	d.Write(data)
	var out [blake2s.Size]byte
	d.Sum(out[:0])
	return out
}

// newBlake2s is BLAKE2s-256 without a key, the hash under HMAC.
func newBlake2s() hash.Hash {
	d, _ := blake2s.New256(nil)
	return d
}

// hmacBlake2s returns HMAC-BLAKE2s-256(key, data...).
func hmacBlake2s(key []byte, data ...[]byte) [blake2s.Size]byte {
	m := hmac.New(newBlake2s, key)
	for _, d := range data {
		m.Write(d)
	}
	var out [blake2s.Size]byte
	m.Sum(out[:0])
	return out
}

// kdf is the paper's KDF1 (t2 == nil) or KDF2 of key and input:
//
//	t0 := HMAC(key, input);  t1 := HMAC(t0, 0x1);  t2 := HMAC(t0, t1 || 0x2)
//
// t1 may alias key.
func kdf(t1, t2 *[blake2s.Size]byte, key, input []byte) {
	t0 := hmacBlake2s(key, input)
	*t1 = hmacBlake2s(t0[:], []byte{1})
	if t2 != nil {
		*t2 = hmacBlake2s(t0[:], t1[:], []byte{2})
	}
}

const redactedResponder = "Responder{[redacted]}"

// String returns "Responder{[redacted]}".
func (Responder) String() string { return redactedResponder }

// GoString returns "Responder{[redacted]}".
func (Responder) GoString() string { return redactedResponder }

// Format writes "Responder{[redacted]}" whatever the verb.
func (Responder) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, redactedResponder) }

// LogValue returns "[redacted]".
func (Responder) LogValue() slog.Value { return slog.StringValue("[redacted]") }

// MarshalJSON returns the JSON string "[redacted]".
func (Responder) MarshalJSON() ([]byte, error) { return []byte(`"[redacted]"`), nil }
