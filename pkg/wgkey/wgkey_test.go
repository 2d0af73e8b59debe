package wgkey

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// RFC 7748 §6.1: Alice's X25519 key pair.
const (
	rfcPrivateHex = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	rfcPublicHex  = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
)

func mustHex32(t *testing.T, s string) [Size]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != Size {
		t.Fatalf("bad test hex %q", s)
	}
	return [Size]byte(b)
}

func TestPublicFromPrivateRFC7748(t *testing.T) {
	t.Parallel()
	priv := Private(mustHex32(t, rfcPrivateHex))
	if got := priv.Public().Hex(); got != rfcPublicHex {
		t.Fatalf("Public() = %s, want %s", got, rfcPublicHex)
	}
}

func TestNewPrivate(t *testing.T) {
	t.Parallel()
	a, err := NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	if a.Equal(b) || a.IsZero() {
		t.Fatal("two new private keys are equal or zero")
	}
	if a[0]&7 != 0 || a[31]&128 != 0 || a[31]&64 == 0 {
		t.Errorf("private key not clamped: first %08b last %08b", a[0], a[31])
	}
	if a.Public().Equal(b.Public()) || a.Public().IsZero() {
		t.Error("public keys of different private keys are equal or zero")
	}
	// Clamping does not change the public key (X25519 clamps on use).
	unclamped := a
	unclamped[0] |= 7
	if !unclamped.Public().Equal(a.Public()) {
		t.Error("clamping changed the public key")
	}
	p, err := NewPreshared()
	if err != nil {
		t.Fatal(err)
	}
	if p.IsZero() {
		t.Error("new preshared key is zero")
	}
}

func TestPublicText(t *testing.T) {
	t.Parallel()
	pub := Public(mustHex32(t, rfcPublicHex))
	const text = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
	if got := pub.String(); got != text {
		t.Fatalf("String() = %q, want %q", got, text)
	}
	if got := pub.ShortString(); got != "[hSDwC]" {
		t.Errorf("ShortString() = %q", got)
	}
	if got := pub.Hex(); got != rfcPublicHex {
		t.Errorf("Hex() = %q", got)
	}
	parsed, err := ParsePublic(text)
	if err != nil || parsed != pub {
		t.Fatalf("ParsePublic(%q) = %v, %v", text, parsed, err)
	}
	type doc struct {
		Key  Public   `json:"key"`
		Keys []Public `json:"keys"`
	}
	js, err := json.Marshal(doc{Key: pub, Keys: []Public{pub}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"key":"` + text + `","keys":["` + text + `"]}`; string(js) != want {
		t.Errorf("JSON = %s, want %s", js, want)
	}
	var back doc
	if err := json.Unmarshal(js, &back); err != nil || back.Key != pub || len(back.Keys) != 1 || back.Keys[0] != pub {
		t.Errorf("JSON round trip = %+v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"key":"nope"}`), &back); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("unmarshal of a bad key: %v, want ErrInvalidKey", err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("peer", "peer", pub)
	if !strings.Contains(buf.String(), "peer=[hSDwC]") {
		t.Errorf("slog shows %q, want the short form", buf.String())
	}
}

func TestPublicFromBytes(t *testing.T) {
	t.Parallel()
	want := Public(mustHex32(t, rfcPublicHex))
	if got, err := PublicFromBytes(want[:]); err != nil || got != want {
		t.Errorf("PublicFromBytes = %v, %v", got, err)
	}
	for _, n := range []int{0, 31, 33} {
		if _, err := PublicFromBytes(make([]byte, n)); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("PublicFromBytes(%d bytes): %v, want ErrInvalidKey", n, err)
		}
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	good := "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
	tests := []struct{ name, in string }{
		{"empty", ""},
		{"short", good[:40]},
		{"unpadded", strings.TrimSuffix(good, "=")},
		{"long", good + "AAAA"},
		{"trailing newline", good[:43] + "\n"},
		{"leading space", " " + good[:43]},
		{"url alphabet", strings.ReplaceAll(good, "/", "_")},
		{"bad character", "!" + good[1:]},
		{"non-canonical trailing bits", good[:42] + "p="},
		{"double padding", good[:42] + "=="},
		{"hex", rfcPublicHex},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ParsePublic(tt.in); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("ParsePublic: %v, want ErrInvalidKey", err)
			}
			if _, err := ParsePrivate(tt.in); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("ParsePrivate: %v, want ErrInvalidKey", err)
			} else if tt.in != "" && strings.Contains(err.Error(), tt.in) {
				t.Errorf("ParsePrivate error %q quotes its input", err)
			}
			if _, err := ParsePreshared(tt.in); !errors.Is(err, ErrInvalidKey) {
				t.Errorf("ParsePreshared: %v, want ErrInvalidKey", err)
			}
		})
	}
	var k Public
	if err := k.UnmarshalText([]byte("x")); !errors.Is(err, ErrInvalidKey) || !k.IsZero() {
		t.Errorf("UnmarshalText of garbage: %v, key %v", err, k)
	}
}

func TestSecretRoundTrip(t *testing.T) {
	t.Parallel()
	priv := Private(mustHex32(t, rfcPrivateHex))
	if got := priv.Hex(); got != rfcPrivateHex {
		t.Errorf("Private.Hex() = %s", got)
	}
	back, err := ParsePrivate(priv.Base64())
	if err != nil || !back.Equal(priv) {
		t.Errorf("ParsePrivate(Base64()) = %v", err)
	}
	psk, err := NewPreshared()
	if err != nil {
		t.Fatal(err)
	}
	pback, err := ParsePreshared(psk.Base64())
	if err != nil || !pback.Equal(psk) || pback.Hex() != hex.EncodeToString(psk[:]) {
		t.Errorf("ParsePreshared(Base64()) = %v", err)
	}
}

func TestEqualAndZero(t *testing.T) {
	t.Parallel()
	var zp Public
	var zk Private
	var zs Preshared
	if !zp.IsZero() || !zk.IsZero() || !zs.IsZero() {
		t.Error("zero keys are not IsZero")
	}
	a := Public(mustHex32(t, rfcPublicHex))
	b := a
	b[31] ^= 1
	if !a.Equal(a) || a.Equal(b) || a.IsZero() {
		t.Error("Public.Equal is wrong")
	}
	pa := Private(mustHex32(t, rfcPrivateHex))
	pb := pa
	pb[0] ^= 1
	if !pa.Equal(pa) || pa.Equal(pb) || pa.IsZero() {
		t.Error("Private.Equal is wrong")
	}
	sa := Preshared(mustHex32(t, rfcPrivateHex))
	sb := sa
	sb[5] ^= 1
	if !sa.Equal(sa) || sa.Equal(sb) || sa.IsZero() {
		t.Error("Preshared.Equal is wrong")
	}
}

// encodings are the ways secret bytes could show up in text.
func encodings(b []byte) []string {
	return []string{
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b)[:20],
		base64.URLEncoding.EncodeToString(b)[:20],
		fmt.Sprint(b),
		strings.Trim(fmt.Sprint(b), "[]")[:30],
		fmt.Sprintf("%q", b),
	}
}

// render formats v every way a program might print, log or marshal it.
func render(v any) map[string]string {
	out := map[string]string{}
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%x", "%X", "%q", "%d"} {
		out["fmt "+verb] = fmt.Sprintf(verb, v)
		out["fmt "+verb+" in struct"] = fmt.Sprintf(verb, struct{ V any }{v})
		out["fmt "+verb+" in slice"] = fmt.Sprintf(verb, []any{v})
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("keys", "v", v, slog.Group("g", "v", v), slog.Any("a", v))
	slog.New(slog.NewJSONHandler(&js, nil)).Info("keys", "v", v, slog.Group("g", "v", v), slog.Any("a", v))
	out["slog text"], out["slog json"] = text.String(), js.String()
	if b, err := json.Marshal(v); err == nil {
		out["json"] = string(b)
	} else {
		out["json"] = "error: " + err.Error()
	}
	if b, err := json.Marshal(struct{ K any }{v}); err == nil {
		out["json in struct"] = string(b)
	}
	return out
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	priv, err := NewPrivate()
	if err != nil {
		t.Fatal(err)
	}
	psk, err := NewPreshared()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]struct {
		v      any
		secret []byte
	}{
		"Private":    {priv, priv[:]},
		"*Private":   {&priv, priv[:]},
		"Preshared":  {psk, psk[:]},
		"*Preshared": {&psk, psk[:]},
	}
	for name, tc := range values {
		for how, s := range render(tc.v) {
			if !strings.Contains(s, redacted) {
				t.Errorf("%s, %s: %q does not show %q", name, how, s, redacted)
			}
			for _, enc := range encodings(tc.secret) {
				if strings.Contains(s, enc) {
					t.Errorf("%s, %s: output contains the secret (%q):\n%s", name, how, enc, s)
				}
			}
		}
	}
	// The explicit accessors do show the key.
	if priv.Base64() != base64.StdEncoding.EncodeToString(priv[:]) || psk.Hex() != hex.EncodeToString(psk[:]) {
		t.Error("explicit accessors do not return the key")
	}
}

// FuzzParsePublic: no panic; every accepted string is the canonical form of
// the key it parses to, and every error is ErrInvalidKey.
func FuzzParsePublic(f *testing.F) {
	for _, s := range []string{
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=",
		"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmp=",
		"", "=", strings.Repeat("A", 44), strings.Repeat("/", 43) + "=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParsePublic(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("error %v is not ErrInvalidKey", err)
			}
			if !k.IsZero() {
				t.Fatal("a failed parse returned a key")
			}
			return
		}
		if k.String() != s {
			t.Fatalf("ParsePublic(%q).String() = %q", s, k.String())
		}
		var u Public
		if err := u.UnmarshalText([]byte(s)); err != nil || u != k {
			t.Fatalf("UnmarshalText disagrees with ParsePublic: %v", err)
		}
	})
}
