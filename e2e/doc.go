// Package e2e holds the end-to-end tests of blindrelay: a real relay
// (pkg/server on 127.0.0.1:0, SQLite or PostgreSQL, outbox or SMTP) driven
// by real clients. It has no code of its own outside tests.
package e2e
