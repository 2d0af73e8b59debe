package zkcrypto

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
)

// seq returns n bytes start, start+1, ...
func seq(start byte, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = start + byte(i)
	}
	return b
}

// fixedUserKeys are the keys of the pinned vectors: box private key
// 20 21 .. 3f, Ed25519 seed 40 41 .. 5f.
func fixedUserKeys(t testing.TB) *UserKeys {
	t.Helper()
	k, err := newUserKeys(seq(0x20, 32), seq(0x40, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustGenerate(t testing.TB) *UserKeys {
	t.Helper()
	k, err := GenerateUserKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustDerive(t testing.TB) *DerivedKeys {
	t.Helper()
	dk, err := DeriveKeys(vectorPassword, vectorSalt, TestKDFParams())
	if err != nil {
		t.Fatal(err)
	}
	return dk
}

func equalUserKeys(a, b *UserKeys) bool {
	return a.BoxPublic == b.BoxPublic && a.BoxPrivate == b.BoxPrivate &&
		bytes.Equal(a.SignPublic, b.SignPublic) && bytes.Equal(a.SignPrivate, b.SignPrivate)
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Public keys of fixedUserKeys, checked against pyca/cryptography.
const (
	fixedBoxPublic  = "358072d6365880d1aeea329adf9121383851ed21a28e3b75e965d0d2cd166254"
	fixedSignPublic = "2543b92ff1095511476adc8369db6ddc933665a11978dda1404ee1066ca9559d"
)

func TestFixedUserKeys(t *testing.T) {
	t.Parallel()
	k := fixedUserKeys(t)
	if got := hex.EncodeToString(k.BoxPublic[:]); got != fixedBoxPublic {
		t.Errorf("BoxPublic = %s, want %s", got, fixedBoxPublic)
	}
	if got := hex.EncodeToString(k.SignPublic); got != fixedSignPublic {
		t.Errorf("SignPublic = %s, want %s", got, fixedSignPublic)
	}
}

func TestGenerateUserKeys(t *testing.T) {
	t.Parallel()
	a, b := mustGenerate(t), mustGenerate(t)
	if a.BoxPrivate == b.BoxPrivate || bytes.Equal(a.SignPrivate, b.SignPrivate) {
		t.Fatal("two generated key sets share a private key")
	}
	// The public keys are the ones the private keys imply.
	again, err := newUserKeys(a.BoxPrivate[:], a.SignPrivate.Seed())
	if err != nil {
		t.Fatal(err)
	}
	if !equalUserKeys(a, again) {
		t.Error("generated public keys do not match the private keys")
	}
	if len(a.SignPublic) != ed25519.PublicKeySize || len(a.SignPrivate) != ed25519.PrivateKeySize {
		t.Errorf("ed25519 key sizes %d, %d", len(a.SignPublic), len(a.SignPrivate))
	}
}

// TestDecryptUserKeysVector pins the blob layout: nonce 60 61 .. 77, then the
// secretbox of fixedUserKeys' box private key || seed under the secret key of
// the test-params vector.
func TestDecryptUserKeysVector(t *testing.T) {
	t.Parallel()
	blob := unhex(t, "606162636465666768696a6b6c6d6e6f7071727374757677"+
		"039b624c6898a8ddacdc0d8a31da71df067196368d143e8a5834025941c75d9b1d3a675f20fcf4a8b886b096d50c042d"+
		"07487cc55612dba56345d0dc7fb27c3a780476d43bab685f615e3f1e8e3655df")
	want := fixedUserKeys(t)
	got, err := DecryptUserKeys(mustDerive(t).SecretKey, blob, want.BoxPublic[:], want.SignPublic)
	if err != nil {
		t.Fatal(err)
	}
	if !equalUserKeys(got, want) {
		t.Errorf("decrypted %v, want %v", got, want)
	}
}

func TestEncryptDecrypt(t *testing.T) {
	t.Parallel()
	dk := mustDerive(t)
	k := mustGenerate(t)
	blob, err := k.Encrypt(dk.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	if len(blob) != 104 {
		t.Fatalf("blob is %d bytes, want 104", len(blob))
	}
	got, err := DecryptUserKeys(dk.SecretKey, blob, k.BoxPublic[:], k.SignPublic)
	if err != nil {
		t.Fatal(err)
	}
	if !equalUserKeys(got, k) {
		t.Error("round trip changed the keys")
	}
	again, err := k.Encrypt(dk.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(blob, again) {
		t.Error("two encryptions are equal: nonce not random")
	}
}

func TestDecryptUserKeysErrors(t *testing.T) {
	t.Parallel()
	dk := mustDerive(t)
	k, other := mustGenerate(t), mustGenerate(t)
	blob, err := k.Encrypt(dk.SecretKey)
	if err != nil {
		t.Fatal(err)
	}
	wrongKey := dk.SecretKey
	wrongKey[0] ^= 1

	type decryptCase struct {
		name                  string
		key                   Key
		blob                  []byte
		boxPublic, signPublic []byte
		want                  error
	}
	tests := []decryptCase{
		{"wrong secret key", wrongKey, blob, k.BoxPublic[:], k.SignPublic, ErrWrongKey},
		{"login key instead of secret key", dk.LoginKey, blob, k.BoxPublic[:], k.SignPublic, ErrWrongKey},
		{"other box public key", dk.SecretKey, blob, other.BoxPublic[:], k.SignPublic, ErrWrongKey},
		{"other sign public key", dk.SecretKey, blob, k.BoxPublic[:], other.SignPublic, ErrWrongKey},
		{"public keys swapped", dk.SecretKey, blob, k.SignPublic, k.BoxPublic[:], ErrWrongKey},
		{"short blob", dk.SecretKey, blob[:103], k.BoxPublic[:], k.SignPublic, ErrMalformed},
		{"long blob", dk.SecretKey, append(bytes.Clone(blob), 0), k.BoxPublic[:], k.SignPublic, ErrMalformed},
		{"empty blob", dk.SecretKey, nil, k.BoxPublic[:], k.SignPublic, ErrMalformed},
		{"short box public key", dk.SecretKey, blob, k.BoxPublic[:31], k.SignPublic, ErrMalformed},
		{"short sign public key", dk.SecretKey, blob, k.BoxPublic[:], k.SignPublic[:31], ErrMalformed},
	}
	for i := range blob {
		tampered := bytes.Clone(blob)
		tampered[i] ^= 0x80
		tests = append(tests, decryptCase{fmt.Sprintf("tampered byte %d", i),
			dk.SecretKey, tampered, k.BoxPublic[:], k.SignPublic, ErrWrongKey})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := DecryptUserKeys(tt.key, tt.blob, tt.boxPublic, tt.signPublic)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DecryptUserKeys error = %v, want %v", err, tt.want)
			}
			if got != nil {
				t.Error("keys returned with an error")
			}
		})
	}
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	k, other := mustGenerate(t), mustGenerate(t)
	for _, msg := range [][]byte{nil, []byte("x"), seq(0, 200)} {
		ct, err := SealTo(k.BoxPublic[:], msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(msg)+48 {
			t.Errorf("sealed %d bytes into %d, want %d", len(msg), len(ct), len(msg)+48)
		}
		got, err := k.OpenSealed(ct)
		if err != nil {
			t.Fatalf("OpenSealed: %v", err)
		}
		if !bytes.Equal(got, msg) {
			t.Errorf("OpenSealed = %x, want %x", got, msg)
		}
		if _, err := other.OpenSealed(ct); !errors.Is(err, ErrWrongKey) {
			t.Errorf("OpenSealed by another key: error = %v, want ErrWrongKey", err)
		}
		for i := range ct {
			tampered := bytes.Clone(ct)
			tampered[i] ^= 1
			if got, err := k.OpenSealed(tampered); !errors.Is(err, ErrWrongKey) || got != nil {
				t.Fatalf("tampered byte %d: OpenSealed = %x, %v, want ErrWrongKey", i, got, err)
			}
		}
		if _, err := k.OpenSealed(ct[:len(ct)-1]); !errors.Is(err, ErrWrongKey) {
			t.Errorf("truncated: error = %v, want ErrWrongKey", err)
		}
	}
	if _, err := k.OpenSealed(nil); !errors.Is(err, ErrWrongKey) {
		t.Errorf("OpenSealed(nil) error = %v, want ErrWrongKey", err)
	}
	if _, err := SealTo(k.BoxPublic[:31], []byte("x")); !errors.Is(err, ErrMalformed) {
		t.Errorf("SealTo short key: error = %v, want ErrMalformed", err)
	}
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	k, other := mustGenerate(t), mustGenerate(t)
	msg := []byte("add user 42 to device 7")
	sig := k.Sign(msg)
	if !Verify(k.SignPublic, msg, sig) {
		t.Fatal("Verify = false for a good signature")
	}
	bad := bytes.Clone(sig)
	bad[0] ^= 1
	tests := []struct {
		name          string
		pub, msg, sig []byte
	}{
		{"other key", other.SignPublic, msg, sig},
		{"other message", k.SignPublic, []byte("add user 43 to device 7"), sig},
		{"tampered signature", k.SignPublic, msg, bad},
		{"short signature", k.SignPublic, msg, sig[:63]},
		{"nil signature", k.SignPublic, msg, nil},
		{"short public key", k.SignPublic[:31], msg, sig},
		{"nil public key", nil, msg, sig},
		{"box key as sign key", k.BoxPublic[:], msg, sig},
	}
	for _, tt := range tests {
		if Verify(tt.pub, tt.msg, tt.sig) {
			t.Errorf("%s: Verify = true", tt.name)
		}
	}
	// Ed25519 is deterministic: the fixed keys give a fixed signature.
	fixed := fixedUserKeys(t)
	if !bytes.Equal(fixed.Sign(msg), fixed.Sign(msg)) {
		t.Error("signatures of the same message differ")
	}
}

func TestResetMessage(t *testing.T) {
	t.Parallel()
	got := ResetMessage("tok", seq(0xa0, 32))
	want := unhex(t, "626c696e6472656c617920726573657420763100"+ // "blindrelay reset v1\x00"
		"746f6b00"+ // "tok\x00"
		"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf")
	if !bytes.Equal(got, want) {
		t.Fatalf("ResetMessage = %x, want %x", got, want)
	}
	if string(got[:20]) != "blindrelay reset v1\x00" {
		t.Errorf("prefix %q", got[:20])
	}
	// A signature over one reset does not verify for another token or hash.
	k := mustGenerate(t)
	sig := k.Sign(got)
	if Verify(k.SignPublic, ResetMessage("tok2", seq(0xa0, 32)), sig) {
		t.Error("signature valid for another token")
	}
	if Verify(k.SignPublic, ResetMessage("tok", seq(0xa1, 32)), sig) {
		t.Error("signature valid for another login key hash")
	}
}
