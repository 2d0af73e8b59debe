package api

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

func TestSaltUnknownAddress(t *testing.T) {
	forEachStore(t, func(t *testing.T, ns newStoreFunc) {
		e := newEnv(t, envOptions{newStore: ns})
		known := e.newUser(t, "known@example.org")

		salt := func(email string) (saltResponse, []byte) {
			var sr saltResponse
			r := e.do("POST", "/api/v1/auth/salt", emailRequest{Email: email}).want(t, 200)
			r.decode(t, &sr)
			return sr, r.body
		}
		a, _ := salt("nobody@example.org")
		b, _ := salt(" NoBody@Example.org")
		c, _ := salt("other@example.org")
		k, _ := salt(known.email)
		if !bytes.Equal(a.Salt, b.Salt) {
			t.Error("fake salt differs between calls (or spellings) of one address")
		}
		if bytes.Equal(a.Salt, c.Salt) {
			t.Error("two unknown addresses have the same fake salt")
		}
		if len(a.Salt) != zkcrypto.SaltSize || len(k.Salt) != zkcrypto.SaltSize {
			t.Errorf("salt sizes %d (unknown) and %d (known)", len(a.Salt), len(k.Salt))
		}
		if a.KDF != zkcrypto.DefaultKDFParams() {
			t.Errorf("kdf for an unknown address %+v, want the default", a.KDF)
		}
		// Same shape: the same JSON keys.
		keys := func(body []byte) []string {
			var m map[string]any
			(&response{body: body}).decode(t, &m)
			var ks []string
			for k := range m {
				ks = append(ks, k)
			}
			return ks
		}
		_, unknownBody := salt("x@example.org")
		_, knownBody := salt(known.email)
		if diff := cmp.Diff(keys(unknownBody), keys(knownBody), cmpSorted); diff != "" {
			t.Errorf("salt answers differ in shape:\n%s", diff)
		}
	})
}

// TestNoEnumeration checks that the answers of the endpoints that may mail
// are byte-identical for known and unknown addresses.
func TestNoEnumeration(t *testing.T) {
	forEachStore(t, func(t *testing.T, ns newStoreFunc) {
		e := newEnv(t, envOptions{newStore: ns})
		verified := e.newUser(t, "verified@example.org")
		pending := newClient(t, "pending@example.org", "pw")
		e.do("POST", "/api/v1/auth/register", pending.registerRequest()).want(t, http.StatusAccepted)

		requests := []struct {
			name string
			path string
			body func(c *client) any
		}{
			{"register", "/api/v1/auth/register", func(c *client) any { return c.registerRequest() }},
			{"resend", "/api/v1/auth/resend", func(c *client) any { return emailRequest{Email: c.email} }},
			{"reset", "/api/v1/auth/reset/request", func(c *client) any { return emailLanguageRequest{Email: c.email} }},
		}
		for _, rq := range requests {
			var answers []*response
			unknown := newClient(t, "unknown-"+rq.name+"@example.org", "pw")
			for _, c := range []*client{unknown, verified, pending} {
				fresh := newClient(t, c.email, "attacker's password")
				answers = append(answers, e.do("POST", rq.path, rq.body(fresh)))
			}
			for i, r := range answers[1:] {
				if diff := cmp.Diff(comparable(answers[0]), comparable(r)); diff != "" {
					t.Errorf("%s: answer %d differs from the unknown address's (-unknown +known):\n%s", rq.name, i+1, diff)
				}
			}
			if answers[0].status != http.StatusAccepted {
				t.Errorf("%s: status %d", rq.name, answers[0].status)
			}
		}

		// What was mailed: the verified owner got a notice, not a link;
		// the pending account got a fresh link; nobody mailed the unknown.
		if n := e.mail.count(verified.email, account.MailAlreadyRegistered); n != 1 {
			t.Errorf("%d already-registered notices, want 1", n)
		}
		if n := e.mail.count(verified.email, account.MailVerifyEmail); n != 1 {
			t.Errorf("%d verify mails to the verified address, want 1 (its sign-up)", n)
		}
		for _, name := range []string{"resend", "reset"} {
			for _, m := range e.mail.all() {
				if m.To == "unknown-"+name+"@example.org" {
					t.Errorf("%s mailed an unknown address: %+v", name, m)
				}
			}
		}
		// The verified account's credentials are untouched.
		e.login(t, verified)
	})
}

// comparable is what of an answer must not differ: status, headers but
// Date, body.
func comparable(r *response) map[string]any {
	h := r.header.Clone()
	h.Del("Date")
	return map[string]any{"status": r.status, "header": h, "body": string(r.body)}
}

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

// TestRegisterReplacesPending checks that a second sign-up for an
// unverified address replaces the pending credentials and links.
func TestRegisterReplacesPending(t *testing.T) {
	forEachStore(t, func(t *testing.T, ns newStoreFunc) {
		e := newEnv(t, envOptions{newStore: ns})
		squatter := newClient(t, "victim@example.org", "squatter")
		e.do("POST", "/api/v1/auth/register", squatter.registerRequest()).want(t, http.StatusAccepted)
		oldLink := e.mail.last(t, "victim@example.org", account.MailVerifyEmail).Link

		victim := newClient(t, "victim@example.org", "victim")
		req := victim.registerRequest()
		req.Language = "fr"
		e.do("POST", "/api/v1/auth/register", req).want(t, http.StatusAccepted)
		m := e.mail.last(t, "victim@example.org", account.MailVerifyEmail)
		if m.Link == oldLink || m.Language != "fr" {
			t.Fatalf("second sign-up mail %+v", m)
		}
		e.do("POST", "/api/v1/auth/verify", tokenRequest{Token: linkToken(t, oldLink)}).wantError(t, 400, account.CodeTokenInvalid)
		e.do("POST", "/api/v1/auth/verify", tokenRequest{Token: linkToken(t, m.Link)}).want(t, 200)
		e.do("POST", "/api/v1/auth/login", loginRequest{Email: squatter.email, LoginKey: squatter.loginKey()}).
			wantError(t, 401, account.CodeInvalidCredentials)
		var lr loginResponse
		e.login(t, victim).decode(t, &lr)
		if lr.User.Language != "fr" {
			t.Errorf("language %q, want fr", lr.User.Language)
		}
	})
}
