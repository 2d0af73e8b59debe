package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/blindrelay/blindrelay/pkg/device"
	"github.com/blindrelay/blindrelay/pkg/device/wallbox"
	"golang.org/x/term"
)

// Environment variables devicesim reads.
const (
	envPassword   = "BLINDRELAY_PASSWORD"      // the account password for --email
	envToken      = "BLINDRELAY_PAIRING_TOKEN" // instead of --token, out of the process list
	envUIPassword = "BLINDRELAY_UI_PASSWORD"   // instead of --ui-password
)

// maxCount bounds --count.
const maxCount = 100000

// options are devicesim's settings.
type options struct {
	server     string
	insecure   bool
	token      string
	email      string
	password   string
	dataDir    string
	count      int
	uiListen   string
	uidPrefix  string
	wgQuick    string
	pairOnly   bool
	slots      int
	firmware   string
	uiUser     string
	uiPassword string
	logLevel   slog.Level
}

// newFlagSet declares the flags into o.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("devicesim", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.server, "server", "", "relay URL, e.g. https://relay.example:8443 (required with --email; with --token it overrides the token's relay URL)")
	fs.BoolVar(&o.insecure, "insecure", false, "accept the relay's TLS certificate without checking it (self-signed test relays)")
	fs.StringVar(&o.token, "token", "", "pairing token (BRP1.…) to pair new devices with; or set "+envToken)
	fs.StringVar(&o.email, "email", "", "pair new devices into this account instead of with a token; the password comes from "+envPassword+" or is asked for")
	fs.StringVar(&o.dataDir, "data-dir", "", "directory for the devices' state, one subdirectory each (device-0000, ...); required")
	fs.IntVar(&o.count, "count", 1, "number of emulated wallboxes")
	fs.StringVar(&o.uiListen, "ui-listen", "", "also serve device #0's web UI on this TCP address, e.g. 127.0.0.1:8080, for local testing")
	fs.StringVar(&o.uidPrefix, "uid-prefix", "warp2", "UID prefix of new devices: PREFIX-XXXX with 4 random letters and digits")
	fs.StringVar(&o.wgQuick, "wg-quick", "", "write each device's wg-quick(8) file (with its private key, mode 0600) here; with --count > 1 the index goes before the extension (wg-0.conf, wg-1.conf, ...)")
	fs.BoolVar(&o.pairOnly, "pair-only", false, "pair the devices that are not paired yet, write --wg-quick files and exit without running them")
	fs.IntVar(&o.slots, "slots", device.DefaultSlots, fmt.Sprintf("key slots (concurrent sessions) a new device makes for its owner, 1..%d", device.MaxSlots))
	fs.StringVar(&o.firmware, "firmware", wallbox.DefaultFirmware, "firmware version the devices report")
	fs.StringVar(&o.uiUser, "ui-user", wallbox.DefaultUser, "user name of the wallbox settings page (HTTP Digest auth)")
	fs.StringVar(&o.uiPassword, "ui-password", wallbox.DefaultPassword, "password of the wallbox settings page; or set "+envUIPassword)
	fs.TextVar(&o.logLevel, "log-level", slog.LevelInfo, "debug, info, warn or error")
	return fs
}

// parseOptions parses args, with the environment through getenv. It
// returns flag.ErrHelp for -h/--help.
func parseOptions(args []string, getenv func(string) string) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.token == "" {
		o.token = strings.TrimSpace(getenv(envToken))
	}
	if !set["ui-password"] && getenv(envUIPassword) != "" {
		o.uiPassword = getenv(envUIPassword)
	}
	o.password = getenv(envPassword)

	switch {
	case o.dataDir == "":
		return nil, errors.New("--data-dir is required")
	case o.token != "" && o.email != "":
		return nil, errors.New("--token and --email exclude each other")
	case o.email != "" && o.server == "":
		return nil, errors.New("--email needs --server")
	case o.count < 1 || o.count > maxCount:
		return nil, fmt.Errorf("--count %d: want 1..%d", o.count, maxCount)
	case o.slots < 1 || o.slots > device.MaxSlots:
		return nil, fmt.Errorf("--slots %d: want 1..%d", o.slots, device.MaxSlots)
	case device.ValidateUID(o.uidPrefix+"-XXXX") != nil:
		return nil, fmt.Errorf("--uid-prefix %q: %w", o.uidPrefix, device.ValidateUID(o.uidPrefix+"-XXXX"))
	case o.uiUser == "" || o.uiPassword == "":
		return nil, errors.New("--ui-user and --ui-password must not be empty")
	}
	if o.server != "" {
		u, err := url.Parse(o.server)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("--server %q: want an http(s) URL", o.server)
		}
	}
	if o.uiListen != "" {
		if _, _, err := net.SplitHostPort(o.uiListen); err != nil {
			return nil, fmt.Errorf("--ui-listen: %w", err)
		}
	}
	return o, nil
}

// printUsage writes the help text.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: devicesim --data-dir DIR [--server URL] [--insecure]
                 (--token TOKEN | --email EMAIL) [--count N] [--ui-listen ADDR] [options]

Runs N emulated wallboxes as blindrelay devices. Each pairs on its first start
(state in DIR/device-NNNN), reuses that state on later starts, and serves a
wallbox web UI inside its WireGuard tunnel at 10.77.0.1:80. Stop with Ctrl-C
(SIGINT) or SIGTERM. A pairing token or e-mail is needed only while some
device is not paired yet.

Options:
`)
	o := &options{}
	fs := newFlagSet(o)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, `
Environment:
  %s    account password for --email (else it is asked for on a terminal)
  %s   pairing token, instead of --token
  %s     password of the settings page, instead of --ui-password

Wallbox UI: / (status page), /api/status (JSON), /ws (WebSocket: pushes the
status every second, echoes what it receives), /api/download?size=N (N bytes,
SHA-256 in X-Content-SHA256), POST /api/upload (answers the body's SHA-256),
/settings (HTTP Digest auth, MD5 or SHA-256).
`, envPassword, envToken, envUIPassword)
}

// readPassword asks for the account password on a terminal.
func readPassword(stdin io.Reader, stderr io.Writer, email string) (string, error) {
	f, ok := stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", fmt.Errorf("--email needs the password in %s (stdin is not a terminal)", envPassword)
	}
	fmt.Fprintf(stderr, "Password for %s: ", email)
	pw, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(stderr)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if len(pw) == 0 {
		return "", errors.New("empty password")
	}
	return string(pw), nil
}

// newLogger logs text to w.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
