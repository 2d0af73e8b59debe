package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// fuzzSeeds are real request bodies and near misses.
func fuzzSeeds(f *testing.F) {
	c := &client{email: "seed@example.org", salt: make([]byte, 16), kdf: zkcrypto.TestKDFParams(),
		derived: &zkcrypto.DerivedKeys{}, keys: &zkcrypto.UserKeys{SignPublic: make([]byte, 32)}, sealed: make([]byte, 104)}
	for _, v := range []any{
		c.registerRequest(), emailRequest{Email: c.email}, loginRequest{Email: c.email, LoginKey: make([]byte, 32)},
		completeResetRequest{Token: "AAAA", KeepKeys: true, Signature: make([]byte, 64), credentialsJSON: c.credentials()},
		passwordRequest{}, emailChangeRequest{NewEmail: "x@y.z"},
		createPairingTokenRequest{Name: "garage", MaxUses: 3, TTLSeconds: 3600},
		pairRequest{Secret: strings.Repeat("A", 43), deviceRequest: deviceRequest{UID: "warp2-AbCd", PublicKey: make([]byte, 32),
			Firmware: "1.0", ProtocolVersion: 1, SealedName: make([]byte, 60),
			Slots: []slotRequest{{Index: 0, BrowserPublicKey: bytes.Repeat([]byte{1}, 32), Sealed: make([]byte, 112)}}}},
	} {
		b, _ := json.Marshal(v)
		f.Add(b)
	}
	for _, s := range []string{``, `null`, `[]`, `{}`, `{"email":`, `{"kdf":{"memory_kib":1e99}}`, `{"salt":"=="}`,
		`{"email":"a@b.c"}{}`, "{\"email\":\"\xff\"}", `{"EMAIL":"a@b.c"}`, `{"email":"a@b.c","email":"d@e.f"}`} {
		f.Add([]byte(s))
	}
}

// FuzzDecode checks that decoding any body into any request type never
// panics and fails only with a JSON, size or (later) input error.
func FuzzDecode(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		check := func(err error) {
			if err == nil {
				return
			}
			switch code := account.ErrorCode(err); code {
			case account.CodeInvalidJSON, account.CodeBodyTooLarge:
			default:
				t.Fatalf("decode error with code %s: %v", code, err)
			}
		}
		rd := func() io.Reader { return http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(body)), maxBodyBytes) }
		const ct = "application/json"
		_, err := decodeBody[registerRequest](ct, rd())
		check(err)
		_, err = decodeBody[completeResetRequest](ct, rd())
		check(err)
		_, err = decodeBody[passwordRequest](ct, rd())
		check(err)
		_, err = decodeBody[loginRequest](ct, rd())
		check(err)
		_, err = decodeBody[emailChangeRequest](ct, rd())
		check(err)
		_, err = decodeBody[createPairingTokenRequest](ct, rd())
		check(err)
		_, err = decodeBody[deviceRequest](ct, rd())
		check(err)
		_, err = decodeBody[pairRequest](ct, rd())
		check(err)
	})
}

// FuzzHandlers sends any body to the endpoints that take one and checks
// that the answer is JSON: success or an error object, never a 500.
func FuzzHandlers(f *testing.F) {
	fuzzSeeds(f)
	paths := []string{
		"/api/v1/auth/salt", "/api/v1/auth/register", "/api/v1/auth/verify", "/api/v1/auth/resend",
		"/api/v1/auth/login", "/api/v1/auth/reset/request", "/api/v1/auth/reset/info", "/api/v1/auth/reset/complete",
		"/api/v1/devices/pair",
	}
	// One relay (SQLite) for all inputs, called without the network.
	h := newEnv(f, envOptions{}).srv.Config.Handler
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, p := range paths {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("POST", p, bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			h.ServeHTTP(rec, req)
			if rec.Code >= 500 {
				t.Fatalf("%s: status %d: %s", p, rec.Code, rec.Body)
			}
			var v map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &v); err != nil {
				t.Fatalf("%s: answer is not JSON: %q", p, rec.Body)
			}
			if rec.Code >= 400 {
				var eb errorBody
				if json.Unmarshal(rec.Body.Bytes(), &eb); eb.Error.Code == "" || eb.Error.Message == "" {
					t.Fatalf("%s: error answer without code/message: %s", p, rec.Body)
				}
			}
		}
	})
}
