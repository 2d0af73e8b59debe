// Command relay runs the blindrelay relay server. It only turns flags and
// environment variables into a server.Config (the option table is in
// options.go) and runs pkg/server until SIGINT or SIGTERM. See README.md
// beside this file, or run `relay help`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/blindrelay/blindrelay/pkg/server"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version from the build info is reported.
var version string

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs one command and returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "help":
		printUsage(stdout)
		return 0
	case "version":
		fmt.Fprintln(stdout, versionString())
		return 0
	}
	fmt.Fprintf(stderr, "relay: unknown command %q\nRun 'relay help' for usage.\n", cmd)
	return 2
}

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	s, err := parseSettings(args, getenv)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "relay: %v\nRun 'relay help' for usage.\n", err)
		return 2
	}
	logger := newLogger(stderr, s)
	logger.Info("relay version", "version", versionString(), "log_level", s.logLevel.String())
	if err := server.Run(ctx, s.server, logger); err != nil {
		logger.Error("relay failed", "err", err)
		return 1
	}
	return 0
}

// versionString reads like "relay v1.2.3 (abc123def456, go1.26.8)".
func versionString() string {
	v, details := version, []string{}
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch {
			case s.Key == "vcs.revision":
				details = append(details, s.Value[:min(len(s.Value), 12)])
			case s.Key == "vcs.modified" && s.Value == "true":
				details = append(details, "modified")
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	details = append(details, runtime.Version())
	return fmt.Sprintf("relay %s (%s)", v, strings.Join(details, ", "))
}
