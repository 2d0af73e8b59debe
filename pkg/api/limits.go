package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/ratelimit"
)

// Limit is a pair of rate limits for one kind of request: per client IP
// (an IPv6 client counts by its /64) and per account (the normalised
// e-mail address, whether it has an account or not).
type Limit struct {
	PerIP      ratelimit.Rate
	PerAccount ratelimit.Rate
}

// RateLimits are the API's rate limits. A zero Rate takes the default;
// ratelimit.NoLimit switches one off.
type RateLimits struct {
	Salt     Limit // POST /auth/salt
	Login    Limit // POST /auth/login, and the routes that check a login key: /me/password, DELETE /me
	Register Limit // POST /auth/register
	Resend   Limit // POST /auth/resend
	Reset    Limit // POST /auth/reset/request
	// EmailChange limits POST /me/email, which mails an address of the
	// user's choosing.
	EmailChange Limit
	// Pair limits device registration: POST /devices/pair (PerAccount
	// counts per pairing token) and POST /devices (per user).
	Pair Limit
	// MaxKeys bounds the keys each limiter tracks (ratelimit.DefaultMaxKeys
	// if zero).
	MaxKeys int
}

// DefaultRateLimits are generous for people and tight for scripts.
func DefaultRateLimits() RateLimits {
	perMin := func(n int) ratelimit.Rate { return ratelimit.Rate{N: n, Per: time.Minute} }
	perHour := func(n int) ratelimit.Rate { return ratelimit.Rate{N: n, Per: time.Hour} }
	return RateLimits{
		Salt:        Limit{PerIP: perMin(60), PerAccount: perMin(30)},
		Login:       Limit{PerIP: perMin(30), PerAccount: ratelimit.Rate{N: 10, Per: 10 * time.Minute}},
		Register:    Limit{PerIP: perHour(30), PerAccount: perHour(5)},
		Resend:      Limit{PerIP: perHour(30), PerAccount: perHour(3)},
		Reset:       Limit{PerIP: perHour(30), PerAccount: perHour(3)},
		EmailChange: Limit{PerIP: perHour(30), PerAccount: perHour(5)},
		// A multi-use token (up to 100 uses) may commission a whole batch
		// of devices from one installer's network.
		Pair:    Limit{PerIP: perHour(100), PerAccount: perHour(100)},
		MaxKeys: ratelimit.DefaultMaxKeys,
	}
}

// fields lists the limits with their names, for defaults and validation.
func (l *RateLimits) fields() []struct {
	name string
	rate *ratelimit.Rate
} {
	type field = struct {
		name string
		rate *ratelimit.Rate
	}
	var out []field
	for _, g := range []struct {
		name string
		l    *Limit
	}{
		{"salt", &l.Salt}, {"login", &l.Login}, {"register", &l.Register},
		{"resend", &l.Resend}, {"reset", &l.Reset}, {"email_change", &l.EmailChange}, {"pair", &l.Pair},
	} {
		out = append(out, field{g.name + " per ip", &g.l.PerIP}, field{g.name + " per account", &g.l.PerAccount})
	}
	return out
}

// withDefaults fills zero rates from DefaultRateLimits.
func (l RateLimits) withDefaults() RateLimits {
	def := DefaultRateLimits()
	defs := def.fields()
	for i, f := range l.fields() {
		if *f.rate == (ratelimit.Rate{}) {
			*f.rate = *defs[i].rate
		}
	}
	if l.MaxKeys == 0 {
		l.MaxKeys = def.MaxKeys
	}
	return l
}

func (l RateLimits) validate() error {
	for _, f := range l.fields() {
		if err := f.rate.Validate(); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	return nil
}

// limiter is one Limit made real.
type limiter struct {
	ip, account *ratelimit.Limiter
}

type limiters struct {
	salt, login, register, resend, reset, emailChange, pair limiter
}

func newLimiters(l RateLimits, now func() time.Time) limiters {
	mk := func(r ratelimit.Rate) *ratelimit.Limiter {
		lim, err := ratelimit.New(ratelimit.Config{Rate: r, MaxKeys: l.MaxKeys, NowFunc: now})
		if err != nil {
			panic(err) // validated in New
		}
		return lim
	}
	pair := func(x Limit) limiter { return limiter{ip: mk(x.PerIP), account: mk(x.PerAccount)} }
	return limiters{
		salt: pair(l.Salt), login: pair(l.Login), register: pair(l.Register),
		resend: pair(l.Resend), reset: pair(l.Reset), emailChange: pair(l.EmailChange),
		pair: pair(l.Pair),
	}
}

// errRateLimited is answered with 429 and a Retry-After header.
type errRateLimited struct{ retryAfter time.Duration }

func (e *errRateLimited) Error() string { return "rate limited" }

// Unwrap gives the domain error, so that the code table applies.
func (e *errRateLimited) Unwrap() error {
	return account.Errorf(account.CodeRateLimited, "Too many attempts. Please try again later.")
}

// retryAfterSeconds is the Retry-After value: whole seconds, at least 1.
func (e *errRateLimited) retryAfterSeconds() int {
	return max(1, int(math.Ceil(e.retryAfter.Seconds())))
}

// perIP is middleware that spends one event of the client IP's bucket.
func (l limiter) perIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := l.ip.Allow(ipKey(clientIPFrom(r.Context()))); !ok {
			writeError(w, r, &errRateLimited{wait}, nil)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// allowAccount spends one event of the account's bucket. email is the
// address as the client sent it; one that does not normalise is left to
// the service to refuse.
func (l limiter) allowAccount(email string) error {
	norm, err := account.NormalizeEmail(email)
	if err != nil {
		return nil
	}
	if ok, wait := l.account.Allow(norm); !ok {
		return &errRateLimited{wait}
	}
	return nil
}

// allowKey spends one event of the per-account bucket of key, for limits
// whose "account" is not an e-mail address (a pairing token, a user id).
func (l limiter) allowKey(key string) error {
	if ok, wait := l.account.Allow(key); !ok {
		return &errRateLimited{wait}
	}
	return nil
}

// isRateLimited reports whether err is a rate-limit answer.
func isRateLimited(err error) (*errRateLimited, bool) {
	return errors.AsType[*errRateLimited](err)
}
