package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
)

var trustCommand = &command{
	name:     "trust",
	synopsis: "[--fingerprint SHA256 | --forget]",
	summary:  "pin the relay's self-signed TLS certificate",
	help: `Pins the TLS certificate the relay presents now, so that later commands to
this relay (its host and port) accept exactly that certificate without
--insecure. Use it for a relay with a self-signed certificate, the first time
or after the relay made a new one ("TLS certificate changed").

The relay logs its certificate's fingerprint when it starts:
  tls certificate sha256=<64 hex digits> ...
Pass that value with --fingerprint: blindctl pins the certificate only if the
relay presents exactly that one. Without --fingerprint, blindctl shows the
fingerprint and asks you to confirm that it matches (a terminal is needed).

A certificate that verifies against the system roots or --ca-cert needs no
pin. --forget removes the pin of this relay. A log-in, register or verify
with --insecure pins the certificate too.`,
	examples: []string{
		"blindctl trust --fingerprint 3f6c0d...e1  # from the relay's log: tls certificate sha256=3f6c0d...e1",
		"blindctl --server https://relay.example.com:8443 trust",
		"blindctl trust --forget",
	},
	setup: func(fs *flag.FlagSet) runFunc {
		fp := fs.String("fingerprint", "", "the certificate's `SHA256` fingerprint from the relay's log (64 hex digits)")
		forget := fs.Bool("forget", false, "remove the pin of this relay")
		return func(ctx context.Context, a *app, _ []string) error {
			if *forget {
				if *fp != "" {
					return usageErrorf("--forget and --fingerprint cannot be combined")
				}
				return a.untrust()
			}
			return a.trustCert(ctx, *fp)
		}
	},
}

func (a *app) trustCert(ctx context.Context, want string) error {
	if want != "" {
		var err error
		if want, err = parseFingerprint(want); err != nil {
			return usageErrorf("%w", err)
		}
	}
	key := pinKey(a.server)
	pinned := a.state.TLSPins[key]

	// Look at the certificate without judging it: the user decides.
	probe := &certTrust{host: a.trust.host, roots: a.trust.roots, insecure: true}
	hc, err := newHTTPClient(a.server, probe)
	if err != nil {
		return err
	}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, strings.TrimRight(a.server, "/")+"/", nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	seen := probe.presented()
	switch {
	case len(seen) == 0:
		return fmt.Errorf("%s does not use TLS: there is no certificate to trust", a.server)
	case len(seen) > 1:
		return errors.New("the relay presented more than one certificate; someone may be intercepting the connection")
	}
	got := seen[0].fingerprint
	if want != "" && want != got {
		return hint(fmt.Errorf("the relay at %s presents sha256=%s, not the fingerprint given (%s); nothing was trusted", a.server, got, want),
			"Compare with the relay's start-up log line 'tls certificate sha256=...'. If it really differs, someone may be intercepting the connection.")
	}
	if seen[0].verified {
		a.printf("The certificate of %s (sha256=%s) is verified by the system roots or --ca-cert; it needs no pin.\n", a.server, got)
		return nil
	}
	if got == pinned {
		a.printf("The certificate of %s (sha256=%s) is already trusted.\n", a.server, got)
		return nil
	}
	if want == "" {
		if a.term == nil {
			return hint(fmt.Errorf("the relay at %s presents sha256=%s; without a terminal, confirm it with --fingerprint", a.server, got),
				"Compare it with the relay's start-up log line 'tls certificate sha256=...'. If they match, run:\n  blindctl trust --fingerprint "+got)
		}
		a.warnf("The relay at %s presents the TLS certificate\n  sha256=%s\n", a.server, got)
		if pinned != "" {
			a.warnf("It is NOT the certificate trusted for it until now (sha256=%s).\n", pinned)
		}
		a.warnf("Compare it with the relay's start-up log line 'tls certificate sha256=...'.\n")
		if err := a.confirm("Type yes if they match: ", "yes", false); err != nil {
			return err
		}
	}
	if err := a.savePin(got); err != nil {
		return err
	}
	a.printf("Trusted sha256=%s for %s: later commands accept this certificate without --insecure.\n", got, key)
	return nil
}

func (a *app) untrust() error {
	key := pinKey(a.server)
	if a.state.TLSPins[key] == "" {
		a.printf("No certificate is pinned for %s.\n", key)
		return nil
	}
	if err := a.savePin(""); err != nil {
		return err
	}
	a.printf("Forgot the certificate pinned for %s.\n", key)
	return nil
}
