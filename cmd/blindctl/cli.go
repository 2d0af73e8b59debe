package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/term"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // the command line was wrong
)

// Environment variables blindctl reads (through run's env function).
const (
	envServer      = "BLINDRELAY_SERVER"
	envInsecure    = "BLINDRELAY_INSECURE"
	envCACert      = "BLINDRELAY_CA_CERT"
	envStateDir    = "BLINDRELAY_STATE_DIR"
	envPassword    = "BLINDRELAY_PASSWORD"
	envNewPassword = "BLINDRELAY_NEW_PASSWORD"
)

// defaultServer is the relay blindctl talks to when nothing else says: a
// relay started with `relay serve` on this machine.
const defaultServer = "https://127.0.0.1:8443"

// command is one blindctl command. setup registers the command's own flags
// on fs and returns the function that runs it with the positional
// arguments.
type command struct {
	name     string // "register", or "group sub" such as "email change"
	args     string // positional arguments in the usage line
	synopsis string // the command's flags in the usage line; default: each flag as [--name VALUE]
	nargs    int    // how many positional arguments it takes
	summary  string // one line for the command list
	help     string // what it does, for `blindctl help <command>`
	examples []string
	setup    func(fs *flag.FlagSet) runFunc
	// pins: after success with --insecure, pin the relay's certificate.
	pins bool
}

type runFunc func(ctx context.Context, a *app, args []string) error

// commands is every command in the order of the help text.
var commands = []*command{
	registerCommand,
	verifyCommand,
	resendCommand,
	loginCommand,
	whoamiCommand,
	passwdCommand,
	emailChangeCommand,
	logoutCommand,
	recoverySaveCommand,
	recoveryRequestCommand,
	recoveryResetCommand,
	accountDeleteCommand,
	tokenCreateCommand,
	tokenListCommand,
	tokenRevokeCommand,
	devicesCommand,
	deviceRemoveCommand,
	connectCommand,
	trustCommand,
}

// groups are the first words of two-word commands.
var groups = map[string]bool{"email": true, "recovery": true, "account": true, "token": true, "device": true}

// run is blindctl: it parses args (without the program name), runs the
// command and returns the exit code. It reads only stdin and env and writes
// only stdout and stderr (and the state and recovery files), so tests call it
// in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, env func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, env: env, term: terminalFor(ctx, stdin, stderr)}

	// First the global flags before the command, to find the command.
	pre := a.flagSet("blindctl")
	switch err := pre.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		printUsage(stdout)
		return exitOK
	case err != nil:
		return usageError(stderr, nil, err)
	}
	rest := pre.Args()
	globals := args[:len(args)-len(rest)] // parsed again with the command's flags
	globals = slices.DeleteFunc(slices.Clone(globals), func(s string) bool { return s == "--" })
	if len(rest) == 0 {
		return usageError(stderr, nil, errors.New("no command given"))
	}
	if rest[0] == "help" {
		return runHelp(stdout, stderr, rest[1:])
	}
	cmd, n := findCommand(rest)
	if cmd == nil {
		if groups[rest[0]] && len(rest) > 1 && isHelpFlag(rest[1]) {
			return printGroupHelp(stdout, rest[0])
		}
		code := usageError(stderr, nil, unknownCommand(rest))
		if groups[rest[0]] {
			printGroupHelp(stderr, rest[0])
		}
		return code
	}
	cmdArgs := slices.Concat(globals, rest[n:])

	fs := a.flagSet("blindctl " + cmd.name)
	runCmd := cmd.setup(fs)
	pos, err := parseInterleaved(fs, cmdArgs)
	switch {
	case errors.Is(err, flag.ErrHelp):
		printCommandHelp(stdout, cmd)
		return exitOK
	case err != nil:
		return usageError(stderr, cmd, err)
	case len(pos) != cmd.nargs:
		return usageError(stderr, cmd, fmt.Errorf("%s takes %d argument(s), got %d", cmd.name, cmd.nargs, len(pos)))
	}
	err = a.init(fs)
	if err == nil {
		err = runCmd(ctx, a, pos)
		if err == nil && cmd.pins {
			err = a.pinCertificate()
		}
		a.noteInsecure()
	}
	a.close()
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errUsage):
		return usageError(stderr, cmd, err)
	case ctx.Err() != nil:
		fmt.Fprintln(stderr, "blindctl: interrupted")
	default:
		a.report(err)
	}
	return exitError
}

// terminalFor returns the terminal on stdin, with prompts going to
// prompts, or nil if stdin is not a terminal. Tests replace it.
var terminalFor = func(ctx context.Context, stdin io.Reader, prompts io.Writer) terminal {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return newTTY(ctx, f, prompts)
	}
	return nil
}

// findCommand returns the command named by the first one or two words of
// args and how many words that took.
func findCommand(args []string) (*command, int) {
	for _, c := range commands {
		words := strings.Fields(c.name)
		if len(args) >= len(words) && slices.Equal(args[:len(words)], words) {
			return c, len(words)
		}
	}
	return nil, 0
}

func unknownCommand(args []string) error {
	if groups[args[0]] {
		if len(args) < 2 {
			return fmt.Errorf("%q needs a subcommand", args[0])
		}
		return fmt.Errorf("unknown command %q", args[0]+" "+args[1])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// parseInterleaved parses flags anywhere among the positional arguments,
// which it returns in order; everything after "--" is positional.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func isHelpFlag(s string) bool {
	return s == "-h" || s == "--help" || s == "-help" || s == "--h"
}

// errUsage marks an error in how a command was called.
var errUsage = errors.New("usage")

func usageErrorf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, args...)...)
}

// usageError prints err and where to find help, and returns exitUsage.
func usageError(w io.Writer, cmd *command, err error) int {
	msg := strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
	fmt.Fprintf(w, "blindctl: %s\n", msg)
	if cmd != nil {
		fmt.Fprintf(w, "Usage: %s\nRun 'blindctl %s --help' for details.\n", usageLine(cmd), cmd.name)
	} else {
		fmt.Fprintf(w, "Usage: blindctl [global flags] <command> [flags] [arguments]\nRun 'blindctl --help' for the list of commands.\n")
	}
	return exitUsage
}

// parseBool reads a boolean environment variable; "" is false.
func parseBool(name, v string) (bool, error) {
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want 1/true or 0/false", name, v)
	}
	return b, nil
}
