package api

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestLogsKeepSecrets runs the flows that handle tokens, keys and
// ciphertext and checks that none of them reaches the logs.
func TestLogsKeepSecrets(t *testing.T) {
	t.Parallel()
	logs := &lockedBuffer{}
	e := newEnv(t, envOptions{logs: logs})
	c := e.newUser(t, "secret@example.org")
	secrets := [][]byte{c.loginKey(), zkcrypto.HashLoginKey(c.loginKey()), c.sealed, c.salt}
	tokens := []string{c.token}

	e.do("POST", "/api/v1/me/email", emailChangeRequest{NewEmail: "secret2@example.org", LoginKey: c.loginKey()}, bearer(c.token)).want(t, 202)
	tokens = append(tokens, linkToken(t, e.mail.last(t, "secret2@example.org", account.MailChangeEmailConfirm).Link))
	e.do("POST", "/api/v1/auth/reset/request", emailLanguageRequest{Email: c.email}).want(t, 202)
	resetToken := linkToken(t, e.mail.last(t, c.email, account.MailResetPassword).Link)
	tokens = append(tokens, resetToken)
	n := newClient(t, c.email, "new")
	e.do("POST", "/api/v1/auth/reset/complete", completeResetRequest{Token: resetToken, credentialsJSON: n.credentials()}).want(t, 200)
	secrets = append(secrets, n.loginKey(), n.sealed)
	e.login(t, n)
	tokens = append(tokens, n.token)
	e.do("GET", "/api/v1/me/keys", nil, bearer(n.token)).want(t, 200)
	e.do("POST", "/api/v1/auth/verify", tokenRequest{Token: tokens[1]}).want(t, 200)

	// Pairing, devices and a tunnel: the token secret and the sealed
	// blobs stay out of the logs.
	pt := e.createToken(t, n, createPairingTokenRequest{Name: "secret label"})
	tokens = append(tokens, pt.Secret)
	d := newTestDevice(t, "warp2-Logs", n, 2)
	var pr pairResponse
	e.pair(pt.Secret, d).want(t, 201).decode(t, &pr)
	secrets = append(secrets, d.req.SealedName, []byte("secret label"))
	for _, sl := range d.req.Slots {
		secrets = append(secrets, sl.Sealed)
	}
	for _, sl := range d.slots {
		secrets = append(secrets, sl.browser[:], sl.psk[:])
	}
	e.pair(pt.Secret, d).wantError(t, 410, account.CodeTokenUsedUp)
	e.do("GET", "/api/v1/devices/"+pr.DeviceID+"/slots", nil, bearer(n.token)).want(t, 200)
	ws, _ := e.openTunnel(t, n.token, pr.DeviceID, "")
	ws.CloseNow()
	e.do("DELETE", "/api/v1/devices/"+pr.DeviceID, nil, bearer(n.token)).want(t, 204)

	for _, tok := range tokens {
		raw, err := base64.RawURLEncoding.DecodeString(tok)
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, raw, hashForTest(raw))
	}
	out := logs.String()
	if !strings.Contains(out, "logged in") {
		t.Fatalf("no logs captured")
	}
	for _, s := range secrets {
		if strings.Contains(out, string(s)) && len(s) > 8 {
			t.Errorf("logs contain a secret (%.8q...)", s)
		}
		for _, enc := range []string{
			base64.StdEncoding.EncodeToString(s), base64.RawURLEncoding.EncodeToString(s),
			base64.RawStdEncoding.EncodeToString(s), hex.EncodeToString(s),
		} {
			if strings.Contains(out, enc) {
				t.Errorf("logs contain a secret (%s...)", enc[:8])
			}
		}
	}
}

func hashForTest(b []byte) []byte { return zkcrypto.HashLoginKey(b) } // SHA-256, as the store keeps tokens
