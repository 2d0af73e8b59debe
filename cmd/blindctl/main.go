// Command blindctl is the command-line client of a blindrelay relay: it
// creates and manages an account (register, verify, login, password,
// e-mail, recovery, deletion), makes pairing tokens, lists and removes
// devices, and forwards a local port to a device's web UI through an end to
// end encrypted WireGuard tunnel (connect, with pkg/tunnel). Keys are
// derived on this machine with pkg/zkcrypto; the relay never sees the
// password, the private keys or the tunnel's plaintext.
//
// main only wires the process to run; the commands live in the files named
// after their flow. See README.md for the user's guide.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
