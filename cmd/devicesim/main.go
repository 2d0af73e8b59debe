// Command devicesim runs 1..N emulated wallboxes, each a blindrelay device
// (pkg/device) serving a realistic charger web UI (pkg/device/wallbox)
// inside its WireGuard tunnel. Devices pair on their first start (with a
// pairing token or the account's e-mail and password) and keep their state
// in a subdirectory of --data-dir, which later starts reuse. It stops on
// SIGINT or SIGTERM. See README.md beside this file, or run
// `devicesim --help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs devicesim with args and returns the exit status: 0 after a
// clean stop, 1 on failure, 2 for a usage error.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseOptions(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "devicesim: %v\nRun 'devicesim --help' for usage.\n", err)
		return 2
	}
	if o.email != "" && o.password == "" {
		pw, err := readPassword(stdin, stderr, o.email)
		if err != nil {
			fmt.Fprintf(stderr, "devicesim: %v\n", err)
			return 2
		}
		o.password = pw
	}
	logger := newLogger(stderr, o.logLevel)
	if err := simulate(ctx, o, logger, stdout); err != nil {
		logger.Error("devicesim failed", "error", err)
		return 1
	}
	return 0
}
