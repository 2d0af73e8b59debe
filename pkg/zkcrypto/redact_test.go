package zkcrypto

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

// encodings are the ways secret bytes could show up in text.
func encodings(b []byte) []string {
	return []string{
		hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b),
		base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b),
		base64.RawURLEncoding.EncodeToString(b),
		fmt.Sprint(b), // [32 33 34 ...]
		fmt.Sprintf("%q", b),
		strings.Trim(fmt.Sprint(b), "[]"),
	}
}

// render formats v every way a program might print or log it.
func render(t *testing.T, v any) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, verb := range []string{"%v", "%s", "%+v", "%#v", "%x", "%X", "%q", "%d"} {
		out["fmt "+verb] = fmt.Sprintf(verb, v)
		out["fmt "+verb+" in struct"] = fmt.Sprintf(verb, struct{ V any }{v})
	}
	out["fmt Sprint"] = fmt.Sprint(v)
	out["fmt Sprint slice"] = fmt.Sprint([]any{v})
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("keys", "v", v, slog.Group("g", "v", v))
	slog.New(slog.NewJSONHandler(&js, nil)).Info("keys", "v", v, slog.Group("g", "v", v))
	out["slog text"], out["slog json"] = text.String(), js.String()
	if b, err := json.Marshal(v); err == nil {
		out["json"] = string(b)
	} else {
		out["json"] = "error: " + err.Error()
	}
	return out
}

func TestRedaction(t *testing.T) {
	t.Parallel()
	dk := mustDerive(t)
	uk := mustGenerate(t)
	secrets := map[string][]byte{
		"login key":          dk.LoginKey[:],
		"secret key":         dk.SecretKey[:],
		"box private key":    uk.BoxPrivate[:],
		"ed25519 seed":       uk.SignPrivate.Seed(),
		"ed25519 private":    uk.SignPrivate,
		"ed25519 seed first": uk.SignPrivate.Seed()[:12],
		"box private first":  uk.BoxPrivate[:12],
	}
	values := map[string]any{
		"Key":          dk.LoginKey,
		"*Key":         &dk.SecretKey,
		"DerivedKeys":  *dk,
		"*DerivedKeys": dk,
		"UserKeys":     *uk,
		"*UserKeys":    uk,
	}
	for vname, v := range values {
		for how, s := range render(t, v) {
			if how != "json" && !strings.Contains(s, redacted) && !strings.Contains(s, "box_public_key") {
				t.Errorf("%s, %s: %q shows neither %q nor public keys", vname, how, s, redacted)
			}
			for sname, secret := range secrets {
				for _, enc := range encodings(secret) {
					if strings.Contains(s, enc) {
						t.Errorf("%s, %s: output contains the %s (%q):\n%s", vname, how, sname, enc, s)
					}
				}
			}
		}
	}
}

// TestUserKeysShowPublic: the redacted forms still tell key sets apart.
func TestUserKeysShowPublic(t *testing.T) {
	t.Parallel()
	k := fixedUserKeys(t)
	want := "UserKeys{box_public_key:358072d6 sign_public_key:2543b92f private:[redacted]}"
	if got := fmt.Sprintf("%v", k); got != want {
		t.Errorf("%%v = %q, want %q", got, want)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "keys", k)
	if !strings.Contains(buf.String(), "keys.box_public_key=358072d6 keys.sign_public_key=2543b92f") {
		t.Errorf("slog = %q", buf.String())
	}
	b, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := `{"box_public_key":"NYBy1jZYgNGu6jKa35EhODhR7SGijjt16WXQ0s0WYlQ=","sign_public_key":"JUO5L/EJVRFHatyDadtt3JM2ZaEZeN2hQE7hBmypVZ0="}`
	if string(b) != wantJSON {
		t.Errorf("json = %s, want %s", b, wantJSON)
	}
}
