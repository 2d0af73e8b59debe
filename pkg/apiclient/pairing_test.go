package apiclient_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
)

// testPairingToken is a valid token with fixed content.
func testPairingToken() apiclient.PairingToken {
	return apiclient.PairingToken{
		Version:       1,
		Relay:         "https://relay.example:8443",
		User:          "4b1d7c36-0f8e-4e8a-9d51-3f2a9c1e7b60",
		BoxPublicKey:  bytes.Repeat([]byte{0xb0}, 32),
		SignPublicKey: bytes.Repeat([]byte{0x51}, 32),
		Secret:        base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{0x5e}, 32)),
		Name:          "Garage <wallbox> & co",
	}
}

// tokenString builds a token string around any payload, with a correct
// checksum.
func tokenString(payload string) string {
	sum := sha256.Sum256([]byte(payload))
	return "BRP1." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "." + base64.RawURLEncoding.EncodeToString(sum[:6])
}

func TestPairingTokenRoundTrip(t *testing.T) {
	t.Parallel()
	p := testPairingToken()
	s := p.String()
	if !strings.HasPrefix(s, apiclient.PairingTokenPrefix) || strings.ContainsAny(s, "+/= \n") {
		t.Fatalf("token string %q", s)
	}
	got, err := apiclient.ParsePairingToken(s)
	if err != nil {
		t.Fatalf("ParsePairingToken: %v", err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	// The JSON inside is the contract's.
	enc := strings.Split(strings.TrimPrefix(s, "BRP1."), ".")[0]
	payload, _ := base64.RawURLEncoding.DecodeString(enc)
	for _, want := range []string{`"v":1`, `"relay":"https://relay.example:8443"`, `"box":"sLCw`, `"sign":"UVFR`, `"secret":"Xl5e`, `"name":"Garage`} {
		if !bytes.Contains(payload, []byte(want)) {
			t.Errorf("payload %s lacks %s", payload, want)
		}
	}

	// Wrapped, indented, lower-case prefix: still the same token.
	wrapped := "  " + strings.ToLower(s[:5]) + s[5:40] + "\n    " + s[40:] + "\n"
	if got, err := apiclient.ParsePairingToken(wrapped); err != nil || !cmp.Equal(p, got) {
		t.Errorf("wrapped token: %v", err)
	}

	// Version 0 is written as 1.
	p.Version = 0
	if got, err := apiclient.ParsePairingToken(p.String()); err != nil || got.Version != 1 {
		t.Errorf("version 0: %+v, %v", got, err)
	}
}

// TestPairingTokenTypos checks that any one changed, lost or added
// character makes the token fail, and that the error tells why.
func TestPairingTokenTypos(t *testing.T) {
	t.Parallel()
	s := testPairingToken().String()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
	for i := range len(s) {
		for _, c := range []byte{alphabet[(strings.IndexByte(alphabet, s[i])+1)%len(alphabet)], 'x'} {
			if c == s[i] {
				continue
			}
			typo := s[:i] + string(c) + s[i+1:]
			if _, err := apiclient.ParsePairingToken(typo); err == nil {
				t.Fatalf("character %d changed to %q: accepted", i, c)
			} else if i >= 5 && !errors.Is(err, apiclient.ErrPairingTokenMistyped) {
				t.Errorf("character %d changed to %q: %v, want ErrPairingTokenMistyped", i, c, err)
			}
		}
		if _, err := apiclient.ParsePairingToken(s[:i] + s[i+1:]); err == nil {
			t.Fatalf("character %d lost: accepted", i)
		}
		if _, err := apiclient.ParsePairingToken(s[:i] + "A" + s[i:]); err == nil {
			t.Fatalf("A added at %d: accepted", i)
		}
	}
	if _, err := apiclient.ParsePairingToken(s[:len(s)-10]); !errors.Is(err, apiclient.ErrPairingTokenMistyped) {
		t.Errorf("truncated token: %v", err)
	}
	if _, err := apiclient.ParsePairingToken(s[:len(s)-10]); !strings.Contains(err.Error(), "mistyped") {
		t.Errorf("the error does not say mistyped: %v", err)
	}
}

func TestParsePairingTokenErrors(t *testing.T) {
	t.Parallel()
	good := testPairingToken()
	with := func(mod func(p *apiclient.PairingToken)) string {
		p := good
		mod(&p)
		return p.String()
	}
	tests := []struct {
		name, in string
		want     error  // errors.Is, if set
		text     string // in the message, if set
	}{
		{"empty", "", apiclient.ErrNotPairingToken, ""},
		{"a URL", "https://relay.example/", apiclient.ErrNotPairingToken, ""},
		{"a session token", strings.Repeat("A", 43), apiclient.ErrNotPairingToken, ""},
		{"prefix only", "BRP1.", apiclient.ErrPairingTokenMistyped, ""},
		{"future version", "BRP2." + strings.TrimPrefix(good.String(), "BRP1."), nil, "version"},
		{"no checksum", strings.Join(strings.Split(good.String(), ".")[:2], "."), apiclient.ErrPairingTokenMistyped, ""},
		{"extra part", good.String() + ".AAAA", apiclient.ErrPairingTokenMistyped, ""},
		{"not JSON", tokenString("hello"), nil, "content"},
		{"JSON array", tokenString("[1]"), nil, "content"},
		{"version 2 inside", with(func(p *apiclient.PairingToken) { p.Version = 2 }), nil, "version"},
		{"relay not a URL", with(func(p *apiclient.PairingToken) { p.Relay = "relay.example" }), nil, "relay"},
		{"relay ftp", with(func(p *apiclient.PairingToken) { p.Relay = "ftp://relay.example" }), nil, "relay"},
		{"relay with user", with(func(p *apiclient.PairingToken) { p.Relay = "https://me@relay.example" }), nil, "relay"},
		{"no user", with(func(p *apiclient.PairingToken) { p.User = "" }), nil, "user"},
		{"short box key", with(func(p *apiclient.PairingToken) { p.BoxPublicKey = p.BoxPublicKey[:31] }), nil, "32 bytes"},
		{"no sign key", with(func(p *apiclient.PairingToken) { p.SignPublicKey = nil }), nil, "32 bytes"},
		{"short secret", with(func(p *apiclient.PairingToken) { p.Secret = "AAAA" }), nil, "secret"},
		{"secret std base64", with(func(p *apiclient.PairingToken) {
			p.Secret = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfb}, 32))
		}), nil, "secret"},
		{"name with a newline", with(func(p *apiclient.PairingToken) { p.Name = "a\nb" }), nil, "name"},
		{"long name", with(func(p *apiclient.PairingToken) { p.Name = strings.Repeat("n", 65) }), nil, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := apiclient.ParsePairingToken(tt.in)
			if err == nil {
				t.Fatal("accepted")
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if tt.text != "" && !strings.Contains(err.Error(), tt.text) {
				t.Errorf("error %q does not mention %q", err, tt.text)
			}
		})
	}
}

// FuzzParsePairingToken checks that no input panics the parser and that
// whatever it accepts survives a round trip.
func FuzzParsePairingToken(f *testing.F) {
	good := testPairingToken()
	f.Add(good.String())
	f.Add(good.String()[:30])
	f.Add("BRP1.e30.RBNvo1Wz")
	f.Add(tokenString(`{"v":1,"relay":"http://x","user":"u","box":"` + strings.Repeat("A", 43) + `=","sign":"` +
		strings.Repeat("A", 43) + `=","secret":"` + strings.Repeat("A", 43) + `","name":""}`))
	f.Add(tokenString(`{"v":1,"v":2}`))
	f.Add("brp1.\u00e9.\u00e9")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := apiclient.ParsePairingToken(s)
		if err != nil {
			return
		}
		again, err := apiclient.ParsePairingToken(p.String())
		if err != nil {
			t.Fatalf("accepted %q, but not its own String(): %v", s, err)
		}
		if !cmp.Equal(p, again) {
			t.Fatalf("round trip changed the token:\n%s", cmp.Diff(p, again))
		}
	})
}
