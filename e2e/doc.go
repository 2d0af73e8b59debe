// Package e2e holds the end-to-end tests of blindrelay: a real relay
// (pkg/server on 127.0.0.1 with free ports, SQLite or PostgreSQL, outbox
// or SMTP) driven by real clients and real devices: pkg/device with the
// emulated wallbox UI, a stock wireguard-go device configured only from
// the wg-quick file pairing emits, and sessions opened with pkg/tunnel as
// blindctl connect opens them. Recording proxies on the UDP and WebSocket
// paths let the zero-knowledge tests see everything the relay handles.
// It has no code of its own outside tests.
package e2e
