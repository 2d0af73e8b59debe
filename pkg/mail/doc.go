// Package mail renders and delivers the e-mails of the account life cycle
// (sign-up confirmation, password reset, notices).
//
// Render turns an account.Mail into a subject and a plain-text body, from
// the templates embedded under templates/ (English, German, French; English
// for any other language). Three account.Mailer implementations deliver the
// result:
//
//   - SMTP sends through a relay given as a URL (smtp:// or smtps://).
//   - Outbox writes each mail as an .eml file into a directory and logs its
//     link. It is the mailer for development and for relays without SMTP:
//     the operator, or a test, reads the link from the log or with
//     LatestLink.
//   - Queue wraps another Mailer and sends in the background, so that an API
//     call takes the same time whether or not it caused a mail (answer times
//     must not tell whether an account exists).
//
// Every message is a single text/plain UTF-8 part with From, To, Subject,
// Date, Message-ID and "Auto-Submitted: auto-generated" (RFC 3834, so that
// vacation responders stay quiet).
//
// The package knows nothing of users, tokens or HTTP: the caller
// (account.Service) decides who gets which mail and builds the links. It
// sends no HTML and keeps no delivery state beyond the Queue's memory.
package mail
