package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestResponderRedacts: a Responder holds a private key and never shows it.
func TestResponderRedacts(t *testing.T) {
	t.Parallel()
	r := NewResponder(responderKey)
	secret := []string{
		hex.EncodeToString(responderKey[:]),
		base64.StdEncoding.EncodeToString(responderKey[:])[:20],
		strings.Trim(fmt.Sprint(responderKey[:]), "[]")[:20],
	}
	for _, v := range []any{r, *r, struct{ R *Responder }{r}} {
		var outs []string
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%d"} {
			outs = append(outs, fmt.Sprintf(verb, v))
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("r", "r", v)
		js, _ := json.Marshal(v)
		outs = append(outs, buf.String(), string(js))
		for _, out := range outs {
			if !strings.Contains(out, "redacted") {
				t.Errorf("%q does not say redacted", out)
			}
			for _, s := range secret {
				if strings.Contains(out, s) {
					t.Errorf("%q shows the private key", out)
				}
			}
		}
	}
}

// TestKDFChaining: kdf with t1 aliasing the key gives what it gives
// without aliasing (InitiatorStatic relies on it).
func TestKDFChaining(t *testing.T) {
	t.Parallel()
	key := initialChainKey
	var a1, a2, b1, b2 [32]byte
	kdf(&a1, &a2, key[:], []byte("input"))
	b1 = key
	kdf(&b1, &b2, b1[:], []byte("input"))
	if a1 != b1 || a2 != b2 || a1 == a2 {
		t.Error("kdf depends on aliasing")
	}
	var c1 [32]byte
	kdf(&c1, nil, key[:], []byte("input"))
	if c1 != a1 {
		t.Error("KDF1 differs from the first output of KDF2")
	}
}
