package wallbox

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"hash"
	"net/http"
	"strings"
	"time"
)

// HTTP Digest access authentication (RFC 7616) as embedded web servers such
// as the WARP charger's use it: qop=auth only, algorithms SHA-256 and MD5
// (and their -sess variants), no userhash. The server offers SHA-256 first
// and MD5 second, in two WWW-Authenticate headers, as RFC 7616 §3.7 asks.
//
// Nonces are stateless: 8 bytes of issue time and an HMAC over it, so any
// number of clients and parallel requests may share one; a nonce older than
// nonceLifetime is answered with stale=true, and the client retries with a
// fresh one without asking the user again. Nonce counts are not tracked
// (no replay protection within a nonce's lifetime), as on the chargers.

// nonceLifetime is how long a nonce is accepted.
const nonceLifetime = 5 * time.Minute

// digestAlgorithms maps the algorithm names a client may use to their hash.
var digestAlgorithms = map[string]func() hash.Hash{
	"MD5":          md5.New,
	"MD5-sess":     md5.New,
	"SHA-256":      sha256.New,
	"SHA-256-sess": sha256.New,
}

// digestAuth checks Digest credentials for one user.
type digestAuth struct {
	realm, user, password string
	key                   [32]byte // HMAC key of the nonces; random per process
	opaque                string
	now                   func() time.Time
}

func newDigestAuth(realm, user, password string, now func() time.Time) *digestAuth {
	d := &digestAuth{realm: realm, user: user, password: password, now: now}
	rand.Read(d.key[:])
	var o [12]byte
	rand.Read(o[:])
	d.opaque = base64.RawURLEncoding.EncodeToString(o[:])
	return d
}

// wrap returns next behind Digest authentication.
func (d *digestAuth) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		switch err := d.check(r); {
		case err == nil:
			next.ServeHTTP(rw, r)
		case errors.Is(err, errStaleNonce):
			d.challenge(rw, true)
		default:
			d.challenge(rw, false)
		}
	})
}

// challenge answers 401 with a challenge per algorithm.
func (d *digestAuth) challenge(rw http.ResponseWriter, stale bool) {
	nonce := d.newNonce()
	for _, alg := range []string{"SHA-256", "MD5"} {
		v := "Digest realm=" + quote(d.realm) + `, qop="auth", algorithm=` + alg +
			", nonce=" + quote(nonce) + ", opaque=" + quote(d.opaque)
		if stale {
			v += ", stale=true"
		}
		rw.Header().Add("WWW-Authenticate", v)
	}
	http.Error(rw, "401 Unauthorized", http.StatusUnauthorized)
}

var (
	errNoCredentials  = errors.New("digest: no credentials")
	errBadCredentials = errors.New("digest: bad credentials")
	errStaleNonce     = errors.New("digest: stale nonce")
)

// check verifies r's Authorization header.
func (d *digestAuth) check(r *http.Request) error {
	h := r.Header.Get("Authorization")
	scheme, rest, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Digest") {
		return errNoCredentials
	}
	p, err := parseDigestParams(rest)
	if err != nil {
		return errBadCredentials
	}
	alg := p["algorithm"]
	if alg == "" {
		alg = "MD5"
	}
	newHash, ok := digestAlgorithms[alg]
	if !ok || p["qop"] != "auth" || p["realm"] != d.realm || p["uri"] != r.RequestURI ||
		p["cnonce"] == "" || len(p["nc"]) != 8 || !isHex(p["nc"]) ||
		(p["opaque"] != "" && p["opaque"] != d.opaque) || p["userhash"] == "true" {
		return errBadCredentials
	}
	// Compute the expected response before looking at the nonce's age, so
	// that a stale nonce with a wrong password is not reported stale.
	H := func(s string) string {
		hh := newHash()
		hh.Write([]byte(s))
		return hex.EncodeToString(hh.Sum(nil))
	}
	ha1 := H(d.user + ":" + d.realm + ":" + d.password)
	if strings.HasSuffix(alg, "-sess") {
		ha1 = H(ha1 + ":" + p["nonce"] + ":" + p["cnonce"])
	}
	ha2 := H(r.Method + ":" + p["uri"])
	want := H(ha1 + ":" + p["nonce"] + ":" + p["nc"] + ":" + p["cnonce"] + ":auth:" + ha2)
	userOK := subtle.ConstantTimeCompare([]byte(p["username"]), []byte(d.user))
	respOK := subtle.ConstantTimeCompare([]byte(strings.ToLower(p["response"])), []byte(want))
	if userOK&respOK != 1 {
		return errBadCredentials
	}
	return d.checkNonce(p["nonce"])
}

// newNonce returns a nonce issued now.
func (d *digestAuth) newNonce() string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(d.now().UnixNano()))
	copy(b[8:], d.nonceMAC(b[:8]))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (d *digestAuth) nonceMAC(ts []byte) []byte {
	m := hmac.New(sha256.New, d.key[:])
	m.Write(ts)
	m.Write([]byte(d.realm))
	return m.Sum(nil)[:16]
}

// checkNonce reports whether nonce is one of ours (errBadCredentials if
// not) and still fresh (errStaleNonce if not).
func (d *digestAuth) checkNonce(nonce string) error {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 8+16 || !hmac.Equal(b[8:], d.nonceMAC(b[:8])) {
		return errBadCredentials
	}
	issued := time.Unix(0, int64(binary.BigEndian.Uint64(b[:8])))
	if age := d.now().Sub(issued); age < -time.Minute || age > nonceLifetime {
		return errStaleNonce
	}
	return nil
}

// parseDigestParams parses the comma-separated auth-params of a Digest
// Authorization header: name=token or name="quoted string" (with backslash
// escapes). Names are case-insensitive and returned in lower case.
func parseDigestParams(s string) (map[string]string, error) {
	p := make(map[string]string)
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return p, nil
		}
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, errors.New("digest: malformed parameter")
		}
		name := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var value string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			i := 1
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) {
					i++
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("digest: unterminated quoted string")
			}
			value, s = b.String(), s[i+1:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			value, s = s[:end], s[end:]
		}
		if _, dup := p[name]; dup {
			return nil, errors.New("digest: duplicate parameter")
		}
		p[name] = value
	}
}

// quote returns s as an HTTP quoted-string.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil
}
