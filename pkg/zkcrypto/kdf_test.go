package zkcrypto

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/hkdf"
)

// vectorPassword and vectorSalt are the inputs of the pinned vectors.
var (
	vectorPassword = []byte("correct horse battery staple")
	vectorSalt     = seq(0x00, SaltSize) // 00 01 .. 0f
)

// The vectors were computed once with this package and checked against an
// independent implementation (pyca/cryptography 48: Argon2id, HKDF-SHA256).
// If they change, every user's keys change: that is a new derivation
// version, not a test to update.
func TestDeriveKeysVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		params         KDFParams
		login, secret  string
		loginKeyHashed string
	}{
		{
			name:           "test params",
			params:         TestKDFParams(),
			login:          "f362ebbfd474fab437a8eb2b0c49768f01c91c0725e5f7dea321570689abae18",
			secret:         "ec5d75b6bea88120b6044013e1640b43a0950b38e11e38f05b211010a511503d",
			loginKeyHashed: "f4114cef149046e1943c709fc251528f5bbc9fb819458f4082780c6fbdfdc008",
		},
		{
			name:           "default params",
			params:         DefaultKDFParams(),
			login:          "86b217ffac0754b6b4c71e94807a26300072988e2d54d073b3684fb610e956c6",
			secret:         "450a959882804c291f389aa929d9fd7af3ca44e64fdd0209aff3759e9eaf7e51",
			loginKeyHashed: "a09c73c7540c7fb745785b769c6c36208df3c07b022f82d7f4075d216d9c66dd",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dk, err := DeriveKeys(vectorPassword, vectorSalt, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(dk.LoginKey[:]); got != tt.login {
				t.Errorf("LoginKey = %s, want %s", got, tt.login)
			}
			if got := hex.EncodeToString(dk.SecretKey[:]); got != tt.secret {
				t.Errorf("SecretKey = %s, want %s", got, tt.secret)
			}
			if got := hex.EncodeToString(HashLoginKey(dk.LoginKey[:])); got != tt.loginKeyHashed {
				t.Errorf("HashLoginKey = %s, want %s", got, tt.loginKeyHashed)
			}
		})
	}
}

// TestDeriveKeysIndependent recomputes the derivation from its definition
// with argon2.IDKey and x/crypto/hkdf (the package uses crypto/hkdf).
func TestDeriveKeysIndependent(t *testing.T) {
	t.Parallel()
	p := TestKDFParams()
	master := argon2.IDKey(vectorPassword, vectorSalt, p.Iterations, p.MemoryKiB, p.Parallelism, 32)
	expand := func(info string) []byte {
		out := make([]byte, 32)
		if _, err := io.ReadFull(hkdf.New(sha256.New, master, nil, []byte(info)), out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	wantLogin, wantSecret := expand("blindrelay login"), expand("blindrelay secret")

	dk, err := DeriveKeys(vectorPassword, vectorSalt, p)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(dk.LoginKey[:]) != hex.EncodeToString(wantLogin) {
		t.Errorf("LoginKey = %x, want %x", dk.LoginKey[:], wantLogin)
	}
	if hex.EncodeToString(dk.SecretKey[:]) != hex.EncodeToString(wantSecret) {
		t.Errorf("SecretKey = %x, want %x", dk.SecretKey[:], wantSecret)
	}
	if dk.LoginKey == dk.SecretKey {
		t.Error("LoginKey == SecretKey")
	}
	wantHash := sha256.Sum256(wantLogin)
	if got := HashLoginKey(dk.LoginKey[:]); hex.EncodeToString(got) != hex.EncodeToString(wantHash[:]) {
		t.Errorf("HashLoginKey = %x, want %x", got, wantHash)
	}
}

func TestDeriveKeysInputs(t *testing.T) {
	t.Parallel()
	base, err := DeriveKeys(vectorPassword, vectorSalt, TestKDFParams())
	if err != nil {
		t.Fatal(err)
	}
	otherSalt := seq(0x01, SaltSize)
	more := TestKDFParams()
	more.Iterations = 2
	for name, dk := range map[string]func() (*DerivedKeys, error){
		"other password": func() (*DerivedKeys, error) {
			return DeriveKeys([]byte("correct horse battery stapler"), vectorSalt, TestKDFParams())
		},
		"other salt":   func() (*DerivedKeys, error) { return DeriveKeys(vectorPassword, otherSalt, TestKDFParams()) },
		"other params": func() (*DerivedKeys, error) { return DeriveKeys(vectorPassword, vectorSalt, more) },
	} {
		got, err := dk()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.LoginKey == base.LoginKey || got.SecretKey == base.SecretKey {
			t.Errorf("%s: same keys as the base vector", name)
		}
	}
}

func TestDeriveKeysErrors(t *testing.T) {
	t.Parallel()
	huge := MaxKDFParams()
	huge.MemoryKiB++
	zeroIter := TestKDFParams()
	zeroIter.Iterations = 0
	tests := []struct {
		name   string
		salt   []byte
		params KDFParams
		want   error
	}{
		{"short salt", seq(0, SaltSize-1), TestKDFParams(), ErrMalformed},
		{"long salt", seq(0, SaltSize+1), TestKDFParams(), ErrMalformed},
		{"nil salt", nil, TestKDFParams(), ErrMalformed},
		{"zero params", vectorSalt, KDFParams{}, ErrInvalidKDFParams},
		{"zero iterations", vectorSalt, zeroIter, ErrInvalidKDFParams},
		{"above max memory", vectorSalt, huge, ErrInvalidKDFParams},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dk, err := DeriveKeys(vectorPassword, tt.salt, tt.params)
			if !errors.Is(err, tt.want) {
				t.Fatalf("DeriveKeys error = %v, want %v", err, tt.want)
			}
			if dk != nil {
				t.Error("DeriveKeys returned keys with an error")
			}
		})
	}
}

func TestKDFParamsValidate(t *testing.T) {
	t.Parallel()
	with := func(f func(*KDFParams)) KDFParams {
		p := DefaultKDFParams()
		f(&p)
		return p
	}
	tests := []struct {
		name     string
		p        KDFParams
		min, max KDFParams
		wantErr  string // substring; "" = valid
	}{
		{"default", DefaultKDFParams(), MinKDFParams(), MaxKDFParams(), ""},
		{"min itself", MinKDFParams(), MinKDFParams(), MaxKDFParams(), ""},
		{"max itself", MaxKDFParams(), MinKDFParams(), MaxKDFParams(), ""},
		{"test params, lowered min", TestKDFParams(), TestKDFParams(), MaxKDFParams(), ""},
		{"test params, default min", TestKDFParams(), MinKDFParams(), MaxKDFParams(), "memory_kib 8 is below the minimum 19456"},
		{"algorithm argon2i", with(func(p *KDFParams) { p.Algorithm = "argon2i" }), MinKDFParams(), MaxKDFParams(), `algorithm "argon2i"`},
		{"algorithm case", with(func(p *KDFParams) { p.Algorithm = "Argon2id" }), MinKDFParams(), MaxKDFParams(), "algorithm"},
		{"algorithm empty", with(func(p *KDFParams) { p.Algorithm = "" }), MinKDFParams(), MaxKDFParams(), "algorithm"},
		{"version 16", with(func(p *KDFParams) { p.Version = 16 }), MinKDFParams(), MaxKDFParams(), "version 16 is not 19"},
		{"memory below", with(func(p *KDFParams) { p.MemoryKiB = 19455 }), MinKDFParams(), MaxKDFParams(), "memory_kib 19455 is below"},
		{"memory above", with(func(p *KDFParams) { p.MemoryKiB = 1<<20 + 1 }), MinKDFParams(), MaxKDFParams(), "memory_kib 1048577 is above the maximum 1048576"},
		{"iterations below", with(func(p *KDFParams) { p.Iterations = 1 }), MinKDFParams(), MaxKDFParams(), "iterations 1 is below the minimum 2"},
		{"iterations above", with(func(p *KDFParams) { p.Iterations = 11 }), MinKDFParams(), MaxKDFParams(), "iterations 11 is above"},
		{"parallelism zero", with(func(p *KDFParams) { p.Parallelism = 0 }), MinKDFParams(), MaxKDFParams(), "parallelism 0 is below"},
		{"parallelism above", with(func(p *KDFParams) { p.Parallelism = 9 }), MinKDFParams(), MaxKDFParams(), "parallelism 9 is above"},
		{"zero iterations, zero min", with(func(p *KDFParams) { p.Iterations = 0 }), KDFParams{}, MaxKDFParams(), "iterations must be at least 1"},
		{"zero lanes, zero min", with(func(p *KDFParams) { p.Parallelism = 0 }), KDFParams{}, MaxKDFParams(), "parallelism must be at least 1"},
		{"under 8 KiB per lane", KDFParams{Algorithm: "argon2id", Version: 19, MemoryKiB: 16, Iterations: 1, Parallelism: 4}, TestKDFParams(), MaxKDFParams(), "below 8 KiB per lane"},
		{"zero value", KDFParams{}, MinKDFParams(), MaxKDFParams(), "algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.p.Validate(tt.min, tt.max)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidKDFParams) {
				t.Fatalf("Validate = %v, want ErrInvalidKDFParams", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestNewSalt(t *testing.T) {
	t.Parallel()
	a, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewSalt()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != SaltSize || len(b) != SaltSize {
		t.Fatalf("salt sizes %d, %d, want %d", len(a), len(b), SaltSize)
	}
	if string(a) == string(b) {
		t.Error("two salts are equal")
	}
}

func BenchmarkDeriveKeys(b *testing.B) {
	p := DefaultKDFParams()
	for b.Loop() {
		if _, err := DeriveKeys(vectorPassword, vectorSalt, p); err != nil {
			b.Fatal(err)
		}
	}
}
