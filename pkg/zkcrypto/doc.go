// Package zkcrypto is the client-side cryptography of blindrelay accounts:
// everything a client (blindctl, the browser's WASM, a device that is given
// e-mail and password) does with the user's password and keys before it talks
// to the relay. The relay itself uses only KDFParams.Validate (the parameters
// a client sends), HashLoginKey, and Verify with ResetMessage (a password
// reset that keeps the keys).
//
// # Key derivation
//
//	master     = Argon2id(password, salt, KDFParams)   32 bytes, salt 16 bytes
//	login_key  = HKDF-SHA256(master, salt nil, info "blindrelay login")   32 bytes
//	secret_key = HKDF-SHA256(master, salt nil, info "blindrelay secret")  32 bytes
//
// One Argon2id run gives both keys. The client sends login_key to log in and
// the relay stores only SHA-256(login_key) (HashLoginKey). secret_key never
// leaves the client: it encrypts the user's private keys.
//
// # User keys
//
// A user has an X25519 key pair (nacl/box) and an Ed25519 key pair. The
// public halves travel in clear. The private halves are stored at the relay
// as a secretbox under secret_key (UserKeys.Encrypt, DecryptUserKeys):
//
//	nonce (24, random) || secretbox( box private key (32) || Ed25519 seed (32) )
//	= 24 + 64 + 16 (tag) = 104 bytes
//
// Others send a user small secrets with SealTo (a nacl/box anonymous seal to
// the box public key); the user opens them with UserKeys.OpenSealed. Requests
// a device must trust (sharing, removal, a password reset that keeps the keys)
// are signed with the Ed25519 key (UserKeys.Sign, Verify, ResetMessage).
//
// # Recovery file
//
// UserKeys.RecoveryFile writes the private keys as indented JSON for the user
// to keep offline; ParseRecoveryFile reads it back and refuses damaged files
// (an 8-byte SHA-256 checksum over the keys) and files of a newer version:
//
//	{
//	  "format": "blindrelay-recovery",
//	  "version": 1,
//	  "comment": "Keep this file secret ...",
//	  "email": "user@example.com",
//	  "created": "2025-01-02T03:04:05Z",
//	  "box_public_key": base64(32),
//	  "sign_public_key": base64(32),
//	  "private_keys": base64(box private key (32) || Ed25519 seed (32)),
//	  "checksum": hex(SHA-256("blindrelay recovery v1\x00" || box_public_key ||
//	                          sign_public_key || private_keys)[:8])
//	}
//
// # Secrets in logs
//
// Key, DerivedKeys and UserKeys print, log and marshal to JSON without their
// secret bytes ("[redacted]"); UserKeys shows a short form of its public keys.
// Reach the bytes explicitly (key[:], k.BoxPrivate[:]).
//
// # What it is not
//
// It does no I/O besides reading crypto/rand, keeps no state, and knows
// nothing of HTTP, stores or the account life cycle (pkg/account). WireGuard
// keys and key slots are not here (pkg/wgkey, pkg/keystore). It imports only
// the standard library and golang.org/x/crypto, so it builds for
// GOOS=js GOARCH=wasm.
package zkcrypto
