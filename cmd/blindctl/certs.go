package main

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// How blindctl decides whether to trust the relay's TLS certificate:
//
//  1. A certificate that verifies against the system roots plus the
//     certificates of --ca-cert, for the relay's host name, is trusted.
//  2. Otherwise a leaf certificate whose SHA-256 fingerprint is pinned in the
//     state file for the relay's host and port is trusted (trust on first
//     use: a log-in, register or verify with --insecure pins it, and so does
//     'blindctl trust').
//  3. Otherwise the connection fails: "not trusted", or "certificate
//     changed" when another certificate is pinned.
//
// --insecure accepts every certificate, as before, but notes which one it
// was, so that a successful log-in can pin it.

// httpTimeout is the time limit of one request, as apiclient's default.
const httpTimeout = 60 * time.Second

// certTrust verifies the relay's certificate and records the leaf
// certificates the relay presented during this run.
type certTrust struct {
	host     string         // the relay URL's host name (or IP address)
	roots    *x509.CertPool // nil: the system roots
	pin      string         // fingerprint pinned for the relay, or ""
	insecure bool           // accept every certificate

	mu   sync.Mutex
	seen []seenCert // distinct leaves, in the order first seen
}

// seenCert is a leaf certificate the relay presented.
type seenCert struct {
	fingerprint string
	verified    bool // by the system roots or --ca-cert
}

// verifyConnection is the tls.Config's VerifyConnection. InsecureSkipVerify
// is set, so this is the only check of the certificate chain and host name;
// the TLS handshake itself still proves that the relay holds the leaf's
// private key.
func (t *certTrust) verifyConnection(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("tls: the relay presented no certificate")
	}
	// The client sends no SNI for an IP address; then the name is the
	// relay's (redirects to other hosts are refused, see newHTTPClient).
	name := cs.ServerName
	if name == "" {
		name = t.host
	}
	leaf := cs.PeerCertificates[0]
	opts := x509.VerifyOptions{DNSName: name, Roots: t.roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, verr := leaf.Verify(opts)
	fp := certFingerprint(leaf)
	ourHost := strings.EqualFold(name, t.host)
	if ourHost {
		t.record(seenCert{fingerprint: fp, verified: verr == nil})
	}
	switch {
	case verr == nil, t.insecure:
		return nil
	case t.pin == "" || !ourHost:
		return &tls.CertificateVerificationError{UnverifiedCertificates: cs.PeerCertificates, Err: verr}
	case fp == t.pin:
		return nil
	default:
		return &certChangedError{pinned: t.pin, presented: fp}
	}
}

func (t *certTrust) record(c seenCert) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !slices.ContainsFunc(t.seen, func(s seenCert) bool { return s.fingerprint == c.fingerprint }) {
		t.seen = append(t.seen, c)
	}
}

// presented returns the leaf certificates seen so far.
func (t *certTrust) presented() []seenCert {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.seen)
}

// certChangedError: the relay presents a certificate that neither verifies
// nor is the one pinned for it.
type certChangedError struct {
	pinned, presented string
}

func (e *certChangedError) Error() string {
	return fmt.Sprintf("TLS certificate changed: pinned sha256=%s, presented sha256=%s", e.pinned, e.presented)
}

// newHTTPClient returns the HTTP client for the relay at server, checking
// certificates with t.
func newHTTPClient(server string, t *certTrust) (*http.Client, error) {
	base, err := url.Parse(server)
	if err != nil {
		return nil, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Not insecure: verifyConnection checks the chain against the
		// system roots and --ca-cert, or the pinned certificate.
		InsecureSkipVerify: true, //nolint:gosec
		VerifyConnection:   t.verifyConnection,
	}
	return &http.Client{
		Timeout:   httpTimeout,
		Transport: tr,
		// A pin belongs to one host: never follow the relay elsewhere.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if !strings.EqualFold(req.URL.Host, base.Host) || req.URL.Scheme != base.Scheme {
				return fmt.Errorf("the relay redirected to %s://%s; blindctl only talks to %s", req.URL.Scheme, req.URL.Host, server)
			}
			if len(via) >= 10 {
				return errors.New("stopped after 10 redirects")
			}
			return nil
		},
	}, nil
}

// loadRoots returns the system roots plus the PEM certificates in path.
func loadRoots(path string) (*x509.CertPool, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool() // no system roots here: the file alone
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// pinKey is the host and port whose certificate a pin is for, e.g.
// "relay.example.com:443".
func pinKey(server string) string {
	u, err := url.Parse(server)
	if err != nil {
		return server
	}
	port := u.Port()
	if port == "" {
		port = "443"
		if u.Scheme == "http" {
			port = "80"
		}
	}
	return net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

// certFingerprint is the SHA-256 of the certificate's DER encoding in hex,
// as the relay logs it at start ("tls certificate sha256=...").
func certFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// parseFingerprint accepts a SHA-256 fingerprint as the relay logs it, with
// or without a "sha256=" or "SHA256:" prefix, colons or spaces, in either
// case, and returns it in the relay's form.
func parseFingerprint(s string) (string, error) {
	fp := strings.ToLower(strings.TrimSpace(s))
	for _, p := range []string{"sha256=", "sha256:", "sha256 "} {
		fp = strings.TrimPrefix(fp, p)
	}
	fp = strings.NewReplacer(":", "", " ", "", "-", "").Replace(fp)
	if b, err := hex.DecodeString(fp); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("--fingerprint %q: want the 64 hex digits of a SHA-256 fingerprint, as in the relay's log line 'tls certificate sha256=...'", s)
	}
	return fp, nil
}

// pinCertificate pins the relay's certificate after a command that pins
// (login, register, verify) succeeded with --insecure: the one leaf the
// relay presented, if it did not verify otherwise.
func (a *app) pinCertificate() error {
	if !a.insecure || a.trust == nil {
		return nil
	}
	seen := a.trust.presented()
	if len(seen) != 1 || seen[0].verified || seen[0].fingerprint == a.trust.pin {
		return nil
	}
	if err := a.savePin(seen[0].fingerprint); err != nil {
		return err
	}
	a.pinned = seen[0].fingerprint
	return nil
}

// savePin records fp (or with "" forgets the pin) for the relay in the
// state file. Only the pins are changed on disk: a command for another
// relay does not make blindctl forget the session it has with this one.
func (a *app) savePin(fp string) error {
	st, err := loadState(a.stateDir)
	if err != nil {
		return err
	}
	st.setPin(pinKey(a.server), fp)
	a.state.setPin(pinKey(a.server), fp)
	return st.save(a.stateDir)
}

// noteInsecure tells a user of --insecure which certificate the relay
// presented, so that they can compare it with the relay's log, and whether
// it is pinned now.
func (a *app) noteInsecure() {
	if !a.insecure || a.trust == nil {
		return
	}
	var unverified []string
	for _, c := range a.trust.presented() {
		if !c.verified {
			unverified = append(unverified, c.fingerprint)
		}
	}
	pin := a.trust.pin
	switch {
	case len(unverified) == 0:
		return
	case len(unverified) > 1:
		a.warnf("blindctl: WARNING: the relay at %s presented %d different TLS certificates:\n", a.server, len(unverified))
		for _, fp := range unverified {
			a.warnf("  sha256=%s\n", fp)
		}
		a.warnf("None was pinned. Someone may be intercepting the connection.\n")
		return
	case unverified[0] == pin:
		return // the pinned certificate: nothing new to say
	}
	fp := unverified[0]
	a.warnf("blindctl: --insecure: the TLS certificate of %s is not verified.\n  sha256=%s\n"+
		"Compare this with the relay's start-up log line 'tls certificate sha256=...'.\n", a.server, fp)
	if pin != "" {
		a.warnf("WARNING: it is not the certificate pinned for %s (sha256=%s).\n", pinKey(a.server), pin)
	}
	if a.pinned == fp {
		a.warnf("It is now pinned for %s: later commands trust exactly this certificate without --insecure.\n", pinKey(a.server))
		return
	}
	a.warnf("If they match, trust it so that --insecure is not needed: blindctl trust --fingerprint %s\n", fp)
}

// describeCertError explains an untrusted or changed certificate, or
// returns "" if err is neither.
func (a *app) describeCertError(err error) string {
	if changed, ok := errors.AsType[*certChangedError](err); ok {
		return fmt.Sprintf("TLS certificate changed: %s presents another certificate than the one pinned for it.\n"+
			"  pinned:    sha256=%s\n"+
			"  presented: sha256=%s\n"+
			"If the relay made a new certificate, compare the presented fingerprint with its start-up log\n"+
			"line 'tls certificate sha256=...'. If they match, trust the new certificate with:\n"+
			"  blindctl trust --fingerprint %s\n"+
			"(or run one log-in with --insecure). If they differ, someone may be intercepting the connection.",
			a.server, changed.pinned, changed.presented, changed.presented)
	}
	var unknownCA x509.UnknownAuthorityError
	verify, isVerify := errors.AsType[*tls.CertificateVerificationError](err)
	if !isVerify && !errors.As(err, &unknownCA) {
		return ""
	}
	msg := fmt.Sprintf("the TLS certificate of %s is not trusted: %v\n", a.server, err)
	if isVerify && len(verify.UnverifiedCertificates) > 0 {
		fp := certFingerprint(verify.UnverifiedCertificates[0])
		msg += fmt.Sprintf("It presents sha256=%s.\n"+
			"If this is your own relay with its self-signed certificate, compare that with the relay's\n"+
			"start-up log line 'tls certificate sha256=...'. If they match, trust it with:\n"+
			"  blindctl trust --fingerprint %s\n", fp, fp)
	} else {
		msg += "If this is your own relay with its self-signed certificate, trust it with 'blindctl trust'.\n"
	}
	return msg + fmt.Sprintf("Or pass --ca-cert <relay data dir>/tls/cert.pem (or set %s), or add --insecure (or set %s=1);\n"+
		"a log-in with --insecure pins the certificate.", envCACert, envInsecure)
}
