// Command relayload measures what connected devices cost a real relay: it
// starts cmd/relay as a child process (127.0.0.1 only, a temporary data
// directory, SQLite or PostgreSQL, mail to the outbox), plays a user of it
// (register, confirm the mailed link, log in, make pairing tokens), pairs N
// devices with cmd/devicesim, then starts them and reads the relay's
// resident memory and CPU time from /proc before, while and after they come
// online and through a steady-state window of keepalives. It prints a table,
// or JSON with --json. See README.md beside this file, or run
// `relayload --help`.
//
// It is a benchmark tool for Linux (it reads /proc), not a test of
// correctness and not something to point at a production relay: it always
// starts its own.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// maxCount bounds --count (devicesim's own bound).
const maxCount = 100000

// options are relayload's settings.
type options struct {
	count         int           // devices
	perProcess    int           // devices per devicesim process
	relayBin      string        // relay binary; "" builds cmd/relay
	devicesimBin  string        // devicesim binary; "" builds cmd/devicesim
	databaseURL   string        // PostgreSQL; "" for SQLite in the data directory
	freshSchema   bool          // with databaseURL: run in a new schema, dropped at the end
	window        time.Duration // steady-state window
	timeout       time.Duration // for all devices to come online; 0 scales with count
	simCPUs       string        // taskset CPU list for devicesim, "auto" or "" (none)
	simGOMAXPROCS int           // GOMAXPROCS of each devicesim process
	relayLogLevel string        // the relay's --log-level
	workDir       string        // kept if given; else a temporary directory, removed
	jsonOut       bool
}

// newFlagSet declares the flags into o.
func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("relayload", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.IntVar(&o.count, "count", 100, "number of devices to connect")
	fs.IntVar(&o.perProcess, "per-process", 2000, "devices per devicesim process (each device holds two UDP sockets; a process's open-file limit bounds this)")
	fs.StringVar(&o.relayBin, "relay", "", "relay binary to measure; default: go build ./cmd/relay of the module in the current directory")
	fs.StringVar(&o.devicesimBin, "devicesim", "", "devicesim binary; default: go build ./cmd/devicesim")
	fs.StringVar(&o.databaseURL, "database-url", "", "PostgreSQL URL for the relay, or set $BLINDRELAY_DATABASE_URL (kept out of the process list); neither: SQLite in the relay's data directory")
	fs.BoolVar(&o.freshSchema, "fresh-schema", true, "with --database-url: create a new schema for the run (search_path) and drop it afterwards")
	fs.DurationVar(&o.window, "window", 30*time.Second, "steady-state window, after all devices are online, over which the relay's CPU use is measured")
	fs.DurationVar(&o.timeout, "timeout", 0, "how long to wait for all devices to come online (default: 60s + 150ms per device)")
	fs.StringVar(&o.simCPUs, "devicesim-cpus", "auto", "run devicesim under taskset -c with this CPU list; auto: the first half of the CPUs when there are two or more and taskset exists; empty: no pinning")
	fs.IntVar(&o.simGOMAXPROCS, "devicesim-gomaxprocs", 1, "GOMAXPROCS of each devicesim process (0: Go's default)")
	fs.StringVar(&o.relayLogLevel, "relay-log-level", "info", "the relay's --log-level; info is needed to count control connections")
	fs.StringVar(&o.workDir, "work-dir", "", "directory for the relay's data, the devices' state and the logs, kept afterwards; default: a temporary directory, removed")
	fs.BoolVar(&o.jsonOut, "json", false, "print the result as JSON instead of a table")
	return fs
}

// parseOptions parses args. It returns flag.ErrHelp for -h/--help.
func parseOptions(args []string, getenv func(string) string) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.count < 1 || o.count > maxCount:
		return nil, fmt.Errorf("--count %d: want 1..%d", o.count, maxCount)
	case o.perProcess < 1:
		return nil, fmt.Errorf("--per-process %d: want at least 1", o.perProcess)
	case o.window <= 0:
		return nil, fmt.Errorf("--window %v: want a positive duration", o.window)
	case o.timeout < 0:
		return nil, fmt.Errorf("--timeout %v: want a positive duration (or 0 for the default)", o.timeout)
	case o.simGOMAXPROCS < 0:
		return nil, fmt.Errorf("--devicesim-gomaxprocs %d: want 0 or more", o.simGOMAXPROCS)
	}
	if o.timeout == 0 {
		o.timeout = defaultTimeout(o.count)
	}
	if o.databaseURL == "" {
		o.databaseURL = getenv("BLINDRELAY_DATABASE_URL")
	}
	return o, nil
}

// defaultTimeout is how long count devices may take to come online. The
// relay admits 20 handshake initiations per second from one source address
// (pkg/mgmt), and on loopback every device has the same one, so N devices
// need at least N/20 seconds; retries come in steps of WireGuard's 5-second
// REKEY_TIMEOUT.
func defaultTimeout(count int) time.Duration {
	return time.Minute + time.Duration(count)*150*time.Millisecond
}

// run runs relayload with args and returns the exit status: 0 when every
// device came online and the numbers were taken, 1 otherwise (the numbers
// taken so far are still printed), 2 for a usage error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "relayload: %v\nRun 'relayload --help' for usage.\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, nil))
	res, err := measure(ctx, o, logger)
	if res != nil {
		if perr := printResult(stdout, res, o.jsonOut); perr != nil {
			logger.Error("relayload: printing the result", "error", perr)
			return 1
		}
	}
	if err != nil {
		logger.Error("relayload failed", "error", err)
		return 1
	}
	return 0
}

// printUsage writes the help text.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `Usage: relayload [--count N] [--json] [options]

Measures a real relay process with N real devices: starts the relay (127.0.0.1,
a temporary data directory, SQLite unless --database-url), registers and logs
in a user, pairs N devicesim devices, starts them, waits until the relay lists
all N online, and reports the relay's resident memory per device, its CPU time
per device for connecting (WireGuard handshake, control connection, going
online) and its CPU use per second in steady state (keepalives, pings).

Options:
`)
	fs := newFlagSet(&options{})
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, `
Progress goes to stderr, the result to stdout. Exit status: 0 when all devices
came online, 1 otherwise (the numbers taken so far are still printed), 2 for a
usage error. Linux only (it reads /proc).
`)
}

// scrubEnv returns env without the variables that would change what a
// child does behind relayload's back: the relay's and devicesim's own
// BLINDRELAY_* settings and GOMAXPROCS. relayload sets what it means.
func scrubEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if strings.HasPrefix(kv, "BLINDRELAY_") || strings.HasPrefix(kv, "GOMAXPROCS=") {
			continue
		}
		out = append(out, kv)
	}
	return out
}
