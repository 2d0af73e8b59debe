package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// minKDF is the weakest key derivation blindctl accepts from a relay (see
// apiclient.WithKDFLimits). Tests lower it to zkcrypto.TestKDFParams.
var minKDF = zkcrypto.MinKDFParams()

// app is one run of blindctl: its streams, the global flags and what they
// resolve to.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	env            func(string) string
	term           terminal      // nil when stdin is not a terminal
	lines          *bufio.Reader // stdin, for --password-stdin

	// Global flags.
	serverFlag    string
	insecure      bool
	caCert        string
	stateDir      string
	emailFlag     string
	passwordStdin bool

	server string // resolved relay URL
	state  *state
	trust  *certTrust   // checks the relay's certificate, records what it saw
	hc     *http.Client // every request of the run goes through it
	client *apiclient.Client
	pinned string // the fingerprint this run pinned, if any
}

// flagSet returns a flag set with the global flags on it.
func (a *app) flagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // run prints usage errors and help itself
	fs.StringVar(&a.serverFlag, "server", "", "relay `URL` (env "+envServer+"; default: the relay of the last log-in, else "+defaultServer+")")
	fs.BoolVar(&a.insecure, "insecure", false, "accept any TLS certificate and show its fingerprint; login, register and verify pin it (env "+envInsecure+"=1)")
	fs.StringVar(&a.caCert, "ca-cert", "", "also trust the PEM certificate(s) in `FILE`, e.g. <relay data dir>/tls/cert.pem (env "+envCACert+")")
	fs.StringVar(&a.stateDir, "state-dir", "", "directory `DIR` for the session state (env "+envStateDir+"; default: <user config dir>/blindrelay)")
	fs.StringVar(&a.emailFlag, "email", "", "the account's e-mail `ADDRESS` (default: asked, or the last one used)")
	fs.BoolVar(&a.passwordStdin, "password-stdin", false, "read the password from the first line of stdin")
	return fs
}

// init resolves the global flags, their environment variables and the state
// file, and makes the API client.
func (a *app) init(fs *flag.FlagSet) error {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["insecure"] {
		v, err := parseBool(envInsecure, a.env(envInsecure))
		if err != nil {
			return usageErrorf("%w", err)
		}
		a.insecure = v
	}
	if a.stateDir == "" {
		a.stateDir = a.env(envStateDir)
	}
	if a.stateDir == "" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return usageErrorf("no --state-dir and no user config directory: %w", err)
		}
		a.stateDir = filepath.Join(dir, "blindrelay")
	}
	st, err := loadState(a.stateDir)
	if err != nil {
		return err
	}
	a.state = st

	a.server = a.serverFlag
	if a.server == "" {
		a.server = a.env(envServer)
	}
	if a.server == "" {
		a.server = st.Server
	}
	if a.server == "" {
		a.server = defaultServer
	}
	// Only to check and normalise the URL.
	c, err := apiclient.New(a.server)
	if err != nil {
		return usageErrorf("--server: %w", err)
	}
	a.server = c.BaseURL()

	if a.caCert == "" {
		a.caCert = a.env(envCACert)
	}
	a.trust = &certTrust{host: hostOf(a.server), pin: st.TLSPins[pinKey(a.server)], insecure: a.insecure}
	if a.caCert != "" {
		if a.trust.roots, err = loadRoots(a.caCert); err != nil {
			return usageErrorf("--ca-cert: %w", err)
		}
	}
	if a.hc, err = newHTTPClient(a.server, a.trust); err != nil {
		return usageErrorf("--server: %w", err)
	}
	if a.client, err = a.newClient(); err != nil {
		return usageErrorf("--server: %w", err)
	}
	// The session belongs to the server it came from, and only goes there.
	if st.Server != a.server {
		st.forgetServer(a.server)
	}
	a.client.SetSessionToken(st.SessionToken)
	return nil
}

// hostOf is the host name (or IP address) of a URL.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// newClient returns a client for the relay; opts come on top of the global
// flags' (e.g. another session token).
func (a *app) newClient(opts ...apiclient.Option) (*apiclient.Client, error) {
	base := []apiclient.Option{
		apiclient.WithUserAgent("blindctl"),
		apiclient.WithKDFLimits(minKDF, zkcrypto.MaxKDFParams()),
		apiclient.WithHTTPClient(a.hc),
	}
	return apiclient.New(a.server, append(base, opts...)...)
}

// close releases the run's idle connections.
func (a *app) close() {
	if a.hc != nil {
		a.hc.CloseIdleConnections()
	}
}

// errNotLoggedIn is what commands that need a session say without one.
var errNotLoggedIn = errors.New("not logged in")

// requireSession fails early, with a hint, when there is no session.
func (a *app) requireSession() error {
	if a.state.SessionToken == "" {
		return hint(errNotLoggedIn, "Log in first: blindctl login")
	}
	return nil
}

// saveSession remembers (or with tok "" forgets) the session and e-mail.
func (a *app) saveSession(email, tok string) error {
	a.state.Server = a.server
	if email != "" {
		a.state.Email = email
	}
	a.state.SessionToken = tok
	return a.state.save(a.stateDir)
}

func (a *app) printf(format string, args ...any) { fmt.Fprintf(a.stdout, format, args...) }

func (a *app) warnf(format string, args ...any) { fmt.Fprintf(a.stderr, format, args...) }
