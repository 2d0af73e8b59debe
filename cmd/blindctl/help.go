package main

import (
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// printUsage writes `blindctl --help`.
func printUsage(w io.Writer) {
	fmt.Fprint(w, `blindctl is the command-line client of a blindrelay relay. It manages your
account, pairs and lists your devices and opens a device's web UI through the
relay, end to end encrypted. Keys are derived on this machine; the relay never
sees your password, your private keys or what you exchange with a device.

Usage:
  blindctl [global flags] <command> [flags] [arguments]

Commands:
`)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
	}
	fmt.Fprintf(tw, "  help [command]\tshow help for a command\n")
	tw.Flush()
	fmt.Fprint(w, `
Global flags (before or after the command):
`)
	printGlobalFlags(w)
	fmt.Fprintf(w, `
Passwords are asked for without echo. Without a terminal they come from
%s (passwd: the current one, and %s the new one), or with
--password-stdin from stdin (passwd: current on the first line, new on the second).
%s, %s, %s and %s set the
defaults of --server, --insecure, --ca-cert and --state-dir. The state directory
holds the relay URL, the e-mail address, the session token, the account's
public keys (checked at log-in) and the pinned certificates, never the password
or a private key.

TLS: a relay's certificate is trusted if it verifies against the system roots
and --ca-cert, or if it is the certificate pinned for the relay's host and
port. A relay started with 'relay serve' has a self-signed certificate; it logs
its fingerprint at start ("tls certificate sha256=..."). Trust it once with
'blindctl trust --fingerprint SHA256' or with a log-in (or register or verify)
with --insecure, which shows the fingerprint and pins it. If the relay's
certificate changes later, commands fail with "TLS certificate changed" until
you trust the new one the same way. --insecure turns every check off.

Examples:
  blindctl --server https://relay.example.com register --email me@example.com
  blindctl --server https://localhost:8443 trust --fingerprint 3f6c0d...e1
  blindctl verify 'https://relay.example.com/verify?token=...'
  blindctl login --email me@example.com
  blindctl whoami --json
  blindctl token create --name garage
  blindctl devices
  blindctl connect warp2-AbCd --listen 127.0.0.1:8080
  blindctl recovery request --email me@example.com
  blindctl recovery reset --token 'https://relay.example.com/reset?token=...' --recovery-file blindrelay-recovery.json

Exit status: 0 on success, 1 if the command failed, 2 for a wrong command line.
Run 'blindctl <command> --help' for the details of a command.
`, envPassword, envNewPassword, envServer, envInsecure, envCACert, envStateDir)
}

// printGlobalFlags lists the global flags.
func printGlobalFlags(w io.Writer) {
	printFlags(w, (&app{}).flagSet("blindctl"))
}

// printFlags lists fs's flags as "  --name VALUE  usage".
func printFlags(w io.Writer, fs *flag.FlagSet) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(tw, "  %s\t%s\n", flagSynopsis(f), usageOf(f))
	})
	tw.Flush()
}

// flagSynopsis is "--name" or "--name VALUE".
func flagSynopsis(f *flag.Flag) string {
	name, _ := flag.UnquoteUsage(f)
	if name == "" {
		return "--" + f.Name
	}
	return "--" + f.Name + " " + strings.ToUpper(name)
}

func usageOf(f *flag.Flag) string {
	_, usage := flag.UnquoteUsage(f)
	return usage
}

// commandFlags returns a flag set with only cmd's own flags.
func commandFlags(cmd *command) *flag.FlagSet {
	fs := flag.NewFlagSet(cmd.name, flag.ContinueOnError)
	cmd.setup(fs)
	return fs
}

// usageLine is the synopsis of cmd.
func usageLine(cmd *command) string { return "blindctl " + synopsis(cmd) }

// synopsis is cmd's name, flags and arguments.
func synopsis(cmd *command) string {
	parts := []string{cmd.name}
	if cmd.synopsis != "" {
		parts = append(parts, cmd.synopsis)
	} else {
		commandFlags(cmd).VisitAll(func(f *flag.Flag) { parts = append(parts, "["+flagSynopsis(f)+"]") })
	}
	if cmd.args != "" {
		parts = append(parts, cmd.args)
	}
	return strings.Join(parts, " ")
}

func hasFlags(cmd *command) bool {
	n := 0
	commandFlags(cmd).VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}

// printCommandHelp writes `blindctl <command> --help`.
func printCommandHelp(w io.Writer, cmd *command) {
	fmt.Fprintf(w, "Usage: %s\n\n%s\n", usageLine(cmd), cmd.help)
	if hasFlags(cmd) {
		fmt.Fprintf(w, "\nFlags:\n")
		printFlags(w, commandFlags(cmd))
	}
	fmt.Fprintf(w, "\nGlobal flags:\n")
	printGlobalFlags(w)
	if len(cmd.examples) > 0 {
		fmt.Fprintf(w, "\nExamples:\n")
		for _, e := range cmd.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
}

// runHelp is `blindctl help [command]`.
func runHelp(stdout, stderr io.Writer, args []string) int {
	if len(args) == 0 {
		printUsage(stdout)
		return exitOK
	}
	cmd, n := findCommand(args)
	if cmd == nil || n != len(args) {
		if groups[args[0]] && len(args) == 1 {
			return printGroupHelp(stdout, args[0])
		}
		return usageError(stderr, nil, unknownCommand(args))
	}
	printCommandHelp(stdout, cmd)
	return exitOK
}

// printGroupHelp lists the commands of a group such as "recovery".
func printGroupHelp(w io.Writer, group string) int {
	fmt.Fprintf(w, "Commands of 'blindctl %s':\n", group)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range commands {
		if strings.HasPrefix(c.name, group+" ") {
			fmt.Fprintf(tw, "  %s\t%s\n", strings.TrimSpace(c.name+" "+c.args), c.summary)
		}
	}
	tw.Flush()
	return exitOK
}
