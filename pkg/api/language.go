package api

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// requestLanguage is the language a body asked for, or else the best one
// of the request's Accept-Language that we have, or else "" (the service
// then decides).
func requestLanguage(r *http.Request, fromBody string) string {
	if fromBody != "" {
		return fromBody
	}
	return acceptLanguage(r.Header.Values("Accept-Language"))
}

// acceptLanguage picks the supported language with the highest weight in
// Accept-Language headers ("de-CH, fr;q=0.8, en;q=0.5"); "" if none. Ties
// go to the one listed first.
func acceptLanguage(headers []string) string {
	best, bestQ := "", 0.0
	for _, h := range headers {
		for part := range strings.SplitSeq(h, ",") {
			tag, params, _ := strings.Cut(part, ";")
			primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
			if !account.ValidLanguage(primary) {
				continue
			}
			q := 1.0
			if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
				var err error
				if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 || q > 1 {
					continue
				}
			}
			if q > bestQ {
				best, bestQ = primary, q
			}
		}
	}
	return best
}
