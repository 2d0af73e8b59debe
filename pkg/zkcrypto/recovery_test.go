package zkcrypto

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

// goldenRecovery is testdata/recovery_v1.json: fixedUserKeys for
// alice@example.com, created 2025-01-02T03:04:05Z. Its checksum was checked
// against an independent SHA-256 (Python hashlib).
const goldenRecovery = "testdata/recovery_v1.json"

var goldenCreated = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func readGolden(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(goldenRecovery)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRecoveryFileGolden pins the file format: the fixed keys write exactly
// the golden file, and it parses back to them.
func TestRecoveryFileGolden(t *testing.T) {
	t.Parallel()
	golden := readGolden(t)
	k := fixedUserKeys(t)
	got, err := k.RecoveryFile("alice@example.com", goldenCreated)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, golden) {
		t.Errorf("RecoveryFile =\n%s\nwant (%s)\n%s", got, goldenRecovery, golden)
	}
	if !bytes.HasSuffix(got, []byte("}\n")) || !bytes.Contains(got, []byte("\n  \"version\": 1,\n")) {
		t.Error("file is not indented JSON ending in a newline")
	}
	parsed, info, err := ParseRecoveryFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !equalUserKeys(parsed, k) {
		t.Error("golden file parses to other keys")
	}
	if info.Email != "alice@example.com" || !info.Created.Equal(goldenCreated) || info.Created.Location() != time.UTC {
		t.Errorf("info = %+v", info)
	}
}

func TestRecoveryFileRoundTrip(t *testing.T) {
	t.Parallel()
	k := mustGenerate(t)
	created := time.Date(2025, 6, 7, 10, 11, 12, 999_000_000, time.FixedZone("CEST", 2*3600))
	data, err := k.RecoveryFile("bob@example.org", created)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"created": "2025-06-07T08:11:12Z"`)) {
		t.Errorf("created not written in UTC to the second:\n%s", data)
	}
	got, info, err := ParseRecoveryFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if !equalUserKeys(got, k) {
		t.Error("round trip changed the keys")
	}
	want := RecoveryInfo{Email: "bob@example.org", Created: created.UTC().Truncate(time.Second)}
	if *info != want {
		t.Errorf("info = %+v, want %+v", *info, want)
	}
}

func TestRecoveryFileComment(t *testing.T) {
	t.Parallel()
	k := mustGenerate(t)
	data, err := k.RecoveryFile("carol@example.net", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var f map[string]any
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	comment, _ := f["comment"].(string)
	if !strings.Contains(comment, "Keep this file secret") {
		t.Errorf("comment = %q", comment)
	}
	for _, b := range [][]byte{k.BoxPrivate[:], k.SignPrivate.Seed(), k.SignPrivate, k.BoxPublic[:], k.SignPublic} {
		for _, enc := range encodings(b) {
			if strings.Contains(comment, enc) {
				t.Errorf("comment contains key material %q", enc)
			}
		}
	}
}

// mutate returns the golden file with edit applied to its JSON object.
func mutate(t testing.TB, edit func(f map[string]any)) []byte {
	t.Helper()
	var f map[string]any
	if err := json.Unmarshal(readGolden(t), &f); err != nil {
		t.Fatal(err)
	}
	edit(f)
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// flipKeyByte flips one bit of a base64 field's decoded bytes.
func flipKeyByte(t testing.TB, f map[string]any, field string, i int) {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(f[field].(string))
	if err != nil {
		t.Fatal(err)
	}
	b[i] ^= 1
	f[field] = base64.StdEncoding.EncodeToString(b)
}

func TestParseRecoveryFileErrors(t *testing.T) {
	t.Parallel()
	other := mustGenerate(t)
	tests := []struct {
		name    string
		data    []byte
		want    error
		wantMsg string // substring of the message
	}{
		{"empty", nil, ErrNotRecoveryFile, "not JSON"},
		{"text", []byte("my recovery words: apple banana"), ErrNotRecoveryFile, "not JSON"},
		{"truncated", readGolden(t)[:100], ErrNotRecoveryFile, "not JSON"},
		{"trailing garbage", append(readGolden(t), "x"...), ErrNotRecoveryFile, "not JSON"},
		{"JSON array", []byte(`[1, 2]`), ErrNotRecoveryFile, "not a blindrelay recovery file"},
		{"JSON null", []byte(`null`), ErrNotRecoveryFile, `format is ""`},
		{"empty object", []byte(`{}`), ErrNotRecoveryFile, `format is ""`},
		{"other format", mutate(t, func(f map[string]any) { f["format"] = "age-encryption.org/v1" }), ErrNotRecoveryFile, `format is "age-encryption.org/v1"`},
		{"version as string", mutate(t, func(f map[string]any) { f["version"] = "1" }), ErrNotRecoveryFile, "version"},
		{"version 2", mutate(t, func(f map[string]any) { f["version"] = 2 }), ErrUnsupportedRecoveryVersion, "unsupported recovery file version: version 2; this program reads version 1"},
		{"version 2 other fields", []byte(`{"format":"blindrelay-recovery","version":2,"keys":"..."}`), ErrUnsupportedRecoveryVersion, "version 2"},
		{"version 0", mutate(t, func(f map[string]any) { f["version"] = 0 }), ErrUnsupportedRecoveryVersion, "version 0"},
		{"no private_keys", mutate(t, func(f map[string]any) { delete(f, "private_keys") }), ErrNotRecoveryFile, "private_keys is 0 bytes, want 64"},
		{"short private_keys", mutate(t, func(f map[string]any) { f["private_keys"] = base64.StdEncoding.EncodeToString(seq(0, 63)) }), ErrNotRecoveryFile, "private_keys is 63 bytes"},
		{"bad base64", mutate(t, func(f map[string]any) { f["box_public_key"] = "not base64!" }), ErrNotRecoveryFile, "base64"},
		{"short box_public_key", mutate(t, func(f map[string]any) { f["box_public_key"] = base64.StdEncoding.EncodeToString(seq(0, 31)) }), ErrNotRecoveryFile, "box_public_key is 31 bytes"},
		{"no sign_public_key", mutate(t, func(f map[string]any) { delete(f, "sign_public_key") }), ErrNotRecoveryFile, "sign_public_key is 0 bytes"},
		{"bad created", mutate(t, func(f map[string]any) { f["created"] = "2 January 2025" }), ErrNotRecoveryFile, "created"},
		{"no checksum", mutate(t, func(f map[string]any) { delete(f, "checksum") }), ErrNotRecoveryFile, "checksum"},
		{"checksum not hex", mutate(t, func(f map[string]any) { f["checksum"] = "zzzzzzzzzzzzzzzz" }), ErrNotRecoveryFile, "checksum"},
		{"checksum full length", mutate(t, func(f map[string]any) { f["checksum"] = f["checksum"].(string) + "0000" }), ErrNotRecoveryFile, "16 hex digits"},
		{"checksum changed", mutate(t, func(f map[string]any) { f["checksum"] = "0000000000000000" }), ErrRecoveryChecksum, "damaged"},
		{"private key byte flipped", mutate(t, func(f map[string]any) { flipKeyByte(t, f, "private_keys", 5) }), ErrRecoveryChecksum, "damaged"},
		{"seed byte flipped", mutate(t, func(f map[string]any) { flipKeyByte(t, f, "private_keys", 63) }), ErrRecoveryChecksum, "damaged"},
		{"box public key byte flipped", mutate(t, func(f map[string]any) { flipKeyByte(t, f, "box_public_key", 0) }), ErrRecoveryChecksum, "damaged"},
		{"sign public key byte flipped", mutate(t, func(f map[string]any) { flipKeyByte(t, f, "sign_public_key", 31) }), ErrRecoveryChecksum, "damaged"},
		{"foreign public key, checksum fixed", mutate(t, func(f map[string]any) {
			// An edit that also recomputes the checksum still fails: the
			// private keys must belong to the public keys.
			f["box_public_key"] = base64.StdEncoding.EncodeToString(other.BoxPublic[:])
			fixed := fixedUserKeys(t)
			priv, _ := fixed.privateKeys()
			f["checksum"] = hex.EncodeToString(recoverySum(other.BoxPublic[:], fixed.SignPublic, priv))
		}), ErrRecoveryChecksum, "do not belong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, info, err := ParseRecoveryFile(tt.data)
			if !errors.Is(err, tt.want) {
				t.Fatalf("ParseRecoveryFile error = %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if k != nil || info != nil {
				t.Error("keys or info returned with an error")
			}
		})
	}
}

// TestParseRecoveryFileLenient: what a person or another tool may change
// without harm still parses to the same keys.
func TestParseRecoveryFileLenient(t *testing.T) {
	t.Parallel()
	want := fixedUserKeys(t)
	tests := []struct {
		name string
		edit func(f map[string]any)
	}{
		{"unknown field", func(f map[string]any) { f["note"] = "printed 2025" }},
		{"comment edited", func(f map[string]any) { f["comment"] = "in the safe" }},
		{"upper-case checksum", func(f map[string]any) { f["checksum"] = strings.ToUpper(f["checksum"].(string)) }},
		{"created with offset", func(f map[string]any) { f["created"] = "2025-01-02T04:04:05+01:00" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			k, info, err := ParseRecoveryFile(mutate(t, tt.edit))
			if err != nil {
				t.Fatal(err)
			}
			if !equalUserKeys(k, want) || !info.Created.Equal(goldenCreated) {
				t.Errorf("parsed %v %+v", k, info)
			}
		})
	}
}

func TestRecoveryFileErrors(t *testing.T) {
	t.Parallel()
	k := fixedUserKeys(t)
	if _, err := k.RecoveryFile("a@example.com", time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("year 10000 accepted")
	}
	broken := *k
	broken.SignPrivate = nil
	if _, err := broken.RecoveryFile("a@example.com", goldenCreated); !errors.Is(err, ErrMalformed) {
		t.Errorf("no signing key: error = %v, want ErrMalformed", err)
	}
}

// checksumOf is the spec's checksum, written independently of recoverySum.
func checksumOf(boxPub, signPub, priv []byte) string {
	sum := sha256.Sum256(append(append(append([]byte("blindrelay recovery v1\x00"), boxPub...), signPub...), priv...))
	return hex.EncodeToString(sum[:8])
}

func TestRecoveryChecksumSpec(t *testing.T) {
	t.Parallel()
	k := fixedUserKeys(t)
	priv, err := k.privateKeys()
	if err != nil {
		t.Fatal(err)
	}
	want := checksumOf(k.BoxPublic[:], k.SignPublic, priv)
	if want != "f580cd469d7bbabd" {
		t.Fatalf("spec checksum of the fixed keys = %s", want)
	}
	if got := hex.EncodeToString(recoverySum(k.BoxPublic[:], k.SignPublic, priv)); got != want {
		t.Errorf("recoverySum = %s, want %s", got, want)
	}
}

func FuzzParseRecoveryFile(f *testing.F) {
	golden, err := os.ReadFile(goldenRecovery)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte("garbage"))
	f.Add([]byte{})
	f.Add([]byte(`{"format":"blindrelay-recovery","version":2}`))
	f.Add(bytes.Replace(golden, []byte(`"2025-01-02T03:04:05Z"`), []byte(`"0001-01-01T00:30:00+01:00"`), 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		k, info, err := ParseRecoveryFile(data)
		if err != nil {
			if k != nil || info != nil {
				t.Fatal("keys or info returned with an error")
			}
			if !errors.Is(err, ErrNotRecoveryFile) && !errors.Is(err, ErrRecoveryChecksum) && !errors.Is(err, ErrUnsupportedRecoveryVersion) {
				t.Fatalf("error %v is none of the sentinels", err)
			}
			return
		}
		// An accepted file round-trips: written again it parses to the same
		// keys and info, and writing is then stable.
		out, err := k.RecoveryFile(info.Email, info.Created)
		if err != nil {
			t.Fatalf("accepted file cannot be written again: %v", err)
		}
		k2, info2, err := ParseRecoveryFile(out)
		if err != nil {
			t.Fatalf("rewritten file does not parse: %v\n%s", err, out)
		}
		if !equalUserKeys(k, k2) || *info != *info2 {
			t.Fatalf("round trip changed the file: %v %+v -> %v %+v", k, info, k2, info2)
		}
		out2, err := k2.RecoveryFile(info2.Email, info2.Created)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("writing is not stable:\n%s\n%s", out, out2)
		}
	})
}
