package mail

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	netmail "net/mail"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/wneessen/go-mail/smtp"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/mail/mailtest"
)

const testFrom = "blindrelay <noreply@relay.example.com>"

func TestParseSMTPURL(t *testing.T) {
	t.Parallel()
	type parsed struct {
		Host        string
		Port        int
		ImplicitTLS bool
		StartTLS    string
		Insecure    bool
		User, Pass  string
		From        string
	}
	tests := []struct {
		name    string
		url     string
		from    string
		want    parsed
		wantErr string // substring of the error
	}{
		{name: "plain", url: "smtp://mail.example.com",
			want: parsed{Host: "mail.example.com", Port: 25, StartTLS: "TLSOpportunistic", From: "noreply@relay.example.com"}},
		{name: "submission with auth", url: "smtp://relay%40example.com:pa%3Ass%2Fw%40rd@mail.example.com:587",
			want: parsed{Host: "mail.example.com", Port: 587, StartTLS: "TLSOpportunistic", User: "relay@example.com", Pass: "pa:ss/w@rd", From: "noreply@relay.example.com"}},
		{name: "starttls required", url: "smtp://u:pw42@mail.example.com:587?starttls=required",
			want: parsed{Host: "mail.example.com", Port: 587, StartTLS: "TLSMandatory", User: "u", Pass: "pw42", From: "noreply@relay.example.com"}},
		{name: "starttls none", url: "smtp://127.0.0.1:2525?starttls=none",
			want: parsed{Host: "127.0.0.1", Port: 2525, StartTLS: "NoTLS", From: "noreply@relay.example.com"}},
		{name: "starttls opportunistic", url: "smtp://mail.example.com/?starttls=opportunistic",
			want: parsed{Host: "mail.example.com", Port: 25, StartTLS: "TLSOpportunistic", From: "noreply@relay.example.com"}},
		{name: "smtps", url: "smtps://mail.example.com",
			want: parsed{Host: "mail.example.com", Port: 465, ImplicitTLS: true, From: "noreply@relay.example.com"}},
		{name: "smtps insecure", url: "smtps://u:pw42@10.0.0.5:2465?insecure_skip_verify=true",
			want: parsed{Host: "10.0.0.5", Port: 2465, ImplicitTLS: true, Insecure: true, User: "u", Pass: "pw42", From: "noreply@relay.example.com"}},
		{name: "ipv6", url: "smtp://[::1]:25",
			want: parsed{Host: "::1", Port: 25, StartTLS: "TLSOpportunistic", From: "noreply@relay.example.com"}},
		{name: "from in url wins", url: "smtp://mail.example.com?from=Relay+%3Cother%40example.org%3E",
			want: parsed{Host: "mail.example.com", Port: 25, StartTLS: "TLSOpportunistic", From: "other@example.org"}},
		{name: "from only in url", url: "smtp://mail.example.com?from=other@example.org", from: "-",
			want: parsed{Host: "mail.example.com", Port: 25, StartTLS: "TLSOpportunistic", From: "other@example.org"}},

		{name: "scheme", url: "http://mail.example.com", wantErr: "scheme must be smtp or smtps"},
		{name: "no scheme", url: "mail.example.com:25", wantErr: "smtp url"},
		{name: "no host", url: "smtp://", wantErr: "no host"},
		{name: "no host with port", url: "smtp://:25", wantErr: "no host"},
		{name: "port zero", url: "smtp://mail.example.com:0", wantErr: "port must be"},
		{name: "port too big", url: "smtp://mail.example.com:65536", wantErr: "port must be"},
		{name: "starttls value", url: "smtp://mail.example.com?starttls=maybe", wantErr: "starttls must be"},
		{name: "starttls on smtps", url: "smtps://mail.example.com?starttls=required", wantErr: "not smtps"},
		{name: "insecure value", url: "smtps://mail.example.com?insecure_skip_verify=yes please", wantErr: "insecure_skip_verify must be"},
		{name: "unknown parameter", url: "smtp://mail.example.com?tls=on", wantErr: "unknown query parameter"},
		{name: "parameter twice", url: "smtp://mail.example.com?starttls=none&starttls=required", wantErr: "more than once"},
		{name: "user without password", url: "smtp://user@mail.example.com", wantErr: "both user name and password"},
		{name: "no from", url: "smtp://mail.example.com", from: "-", wantErr: "no from address"},
		{name: "bad from", url: "smtp://mail.example.com", from: "not an address", wantErr: "from address"},
		{name: "path", url: "smtp://mail.example.com/inbox", wantErr: "unexpected path"},
		{name: "opaque", url: "smtp:mail.example.com", wantErr: "the form is"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			from := testFrom
			if tt.from == "-" {
				from = ""
			} else if tt.from != "" {
				from = tt.from
			}
			cfg, err := parseSMTPURL(tt.url, from)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := parsed{
				Host: cfg.host, Port: cfg.port, ImplicitTLS: cfg.implicitTLS, Insecure: cfg.insecure,
				User: cfg.user, Pass: cfg.pass, From: cfg.from.Address,
			}
			if !cfg.implicitTLS {
				got.StartTLS = cfg.startTLS.String()
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("parsed (-want +got):\n%s", diff)
			}
			if tt.want.Pass != "" && strings.Contains(cfg.redacted, tt.want.Pass) {
				t.Errorf("redacted URL %q contains the password", cfg.redacted)
			}
		})
	}
}

// TestParseSMTPURLHidesPassword feeds URLs whose (unencoded) password
// breaks the URL in different ways, and checks that no error quotes any
// piece of it.
func TestParseSMTPURLHidesPassword(t *testing.T) {
	t.Parallel()
	const a, b = "Xyzzy42", "Plugh7" // the password is a + special + b
	tests := []struct{ name, url string }{
		{"hash", "smtp://user:" + a + "#" + b + "@mail.example.com:587"},
		{"hash digits", "smtp://user:4242#" + b + "@mail.example.com"},
		{"slash", "smtp://user:" + a + "/" + b + "@mail.example.com"},
		{"slash digits", "smtp://user:4242/" + b + "@mail.example.com"},
		{"question mark", "smtp://user:" + a + "?" + b + "@mail.example.com"},
		{"question mark digits", "smtp://user:4242?" + b + "=1@mail.example.com"},
		{"bad escape", "smtp://user:" + a + "%zz" + b + "@mail.example.com"},
		{"percent at end", "smtp://user:" + a + "%@mail.example.com"},
		{"space", "smtp://user:" + a + " " + b + "@mail.example.com"},
		{"control", "smtp://user:" + a + "\x01" + b + "@mail.example.com"},
		{"bad port", "smtp://user:" + a + "@mail.example.com:" + b},
		{"bad scheme", "smtpx://user:" + a + "@mail.example.com"},
		{"bad query", "smtp://user:" + a + "@mail.example.com?" + b + "=1"},
		{"bad query value", "smtp://user:" + a + "@mail.example.com?starttls=" + b},
		{"bad query escape", "smtp://user:" + a + "@mail.example.com?from=%zz" + b},
		{"no host", "smtp://user:" + a + "@"},
		{"user only", "smtp://" + a + "@mail.example.com"},
		{"bad from", "smtp://user:" + a + "@mail.example.com?from=" + b},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseSMTPURL(tt.url, testFrom)
			if tt.name == "bad from" {
				// The from address is no secret and is quoted; the password is not.
				if err == nil || strings.Contains(err.Error(), a) {
					t.Fatalf("error = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			for _, piece := range []string{a, b, "4242"} {
				if strings.Contains(err.Error(), piece) {
					t.Errorf("error %q contains %q", err, piece)
				}
			}
		})
	}
}

func TestNewSMTPRedacts(t *testing.T) {
	t.Parallel()
	logger, _ := testLogger(t)
	s, err := NewSMTP("smtp://user:Xyzzy42@mail.example.com:587", testFrom, logger)
	if err != nil {
		t.Fatal(err)
	}
	for _, out := range []string{s.String(), fmt.Sprint(s), s.LogValue().String()} {
		if strings.Contains(out, "Xyzzy42") || !strings.Contains(out, "mail.example.com") {
			t.Errorf("%q: want the URL without its password", out)
		}
	}
}

func TestAutoAuth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		server   smtp.ServerInfo
		wantMech string // "" for an error
	}{
		{"plain over tls", smtp.ServerInfo{Name: "mail.example.com", TLS: true, Auth: []string{"LOGIN", "PLAIN", "CRAM-MD5"}}, "PLAIN"},
		{"login over tls", smtp.ServerInfo{Name: "mail.example.com", TLS: true, Auth: []string{"LOGIN"}}, "LOGIN"},
		{"plain on loopback", smtp.ServerInfo{Name: "127.0.0.1", Auth: []string{"PLAIN"}}, "PLAIN"},
		{"plain on localhost", smtp.ServerInfo{Name: "localhost", Auth: []string{"plain"}}, "PLAIN"},
		{"plain on ipv6 loopback", smtp.ServerInfo{Name: "::1", Auth: []string{"PLAIN"}}, "PLAIN"},
		{"no plain in clear", smtp.ServerInfo{Name: "mail.example.com", Auth: []string{"PLAIN", "LOGIN"}}, ""},
		{"cram-md5 in clear", smtp.ServerInfo{Name: "mail.example.com", Auth: []string{"PLAIN", "CRAM-MD5"}}, "CRAM-MD5"},
		{"scram in clear", smtp.ServerInfo{Name: "mail.example.com", Auth: []string{"PLAIN", "CRAM-MD5", "SCRAM-SHA-256"}}, "SCRAM-SHA-256"},
		{"nothing offered", smtp.ServerInfo{Name: "mail.example.com", TLS: true}, ""},
		{"only unknown", smtp.ServerInfo{Name: "mail.example.com", TLS: true, Auth: []string{"GSSAPI"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &autoAuth{user: "user", pass: "Xyzzy42"}
			mech, _, err := a.Start(&tt.server)
			if tt.wantMech == "" {
				if err == nil {
					t.Fatalf("chose %s, want an error", mech)
				}
				if strings.Contains(err.Error(), "Xyzzy42") {
					t.Errorf("error %q contains the password", err)
				}
				return
			}
			if err != nil || mech != tt.wantMech {
				t.Fatalf("Start = %q, %v; want %q", mech, err, tt.wantMech)
			}
		})
	}
}

func newTestSMTP(t *testing.T, url string) *SMTP {
	t.Helper()
	logger, _ := testLogger(t)
	s, err := NewSMTP(url, testFrom, logger)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMTPSend(t *testing.T) {
	t.Parallel()
	tlsConfig := mailtest.SelfSignedTLS(t)
	tests := []struct {
		name     string
		opts     mailtest.Options
		url      string // %s is the server's address
		wantTLS  bool
		wantUser string
	}{
		{name: "plain", url: "smtp://%s"},
		{name: "auth plain", opts: mailtest.Options{User: "relay", Pass: "s3cret p@ss:/"},
			url: "smtp://relay:s3cret%%20p%%40ss%%3A%%2F@%s", wantUser: "relay"},
		{name: "starttls", opts: mailtest.Options{TLSConfig: tlsConfig},
			url: "smtp://%s?insecure_skip_verify=true", wantTLS: true},
		{name: "starttls required with auth", opts: mailtest.Options{TLSConfig: tlsConfig, User: "relay", Pass: "pw"},
			url: "smtp://relay:pw@%s?starttls=required&insecure_skip_verify=true", wantTLS: true, wantUser: "relay"},
		{name: "starttls none", opts: mailtest.Options{TLSConfig: tlsConfig},
			url: "smtp://%s?starttls=none"},
		{name: "smtps with auth", opts: mailtest.Options{TLSConfig: tlsConfig, ImplicitTLS: true, User: "relay", Pass: "pw"},
			url: "smtps://relay:pw@%s?insecure_skip_verify=true", wantTLS: true, wantUser: "relay"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := mailtest.NewServer(t, tt.opts)
			s := newTestSMTP(t, fmt.Sprintf(tt.url, srv.Addr()))
			m := account.Mail{Kind: account.MailVerifyEmail, To: "Ada@Example.com", Language: "de", Link: testLink}
			if err := s.Send(t.Context(), m); err != nil {
				t.Fatal(err)
			}
			got := srv.Next(t)
			if got.TLS != tt.wantTLS || got.AuthUser != tt.wantUser {
				t.Errorf("server saw tls=%v user=%q, want tls=%v user=%q", got.TLS, got.AuthUser, tt.wantTLS, tt.wantUser)
			}
			if got.From != "noreply@relay.example.com" || !slices.Equal(got.To, []string{"Ada@Example.com"}) {
				t.Errorf("envelope from %q to %q", got.From, got.To)
			}
			checkMessage(t, got.Data, m, time.Now())
		})
	}
}

// TestSMTPSendServerURL checks that NewSMTP takes mailtest's URL as it is,
// escaped password and all, and that the mailed link is the one rendered.
func TestSMTPSendServerURL(t *testing.T) {
	t.Parallel()
	srv := mailtest.NewServer(t, mailtest.Options{User: "relay", Pass: "s3cret p@ss:/?#", TLSConfig: mailtest.SelfSignedTLS(t), ImplicitTLS: true})
	s := newTestSMTP(t, srv.URL()+"?insecure_skip_verify=true")
	// Long enough for quoted-printable to break its line.
	link := testLink + "&state=" + strings.Repeat("0123456789", 10)
	m := account.Mail{Kind: account.MailResetPassword, To: "ada@example.com", Language: "fr", Link: link}
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.Next(t)
	if !got.TLS || got.AuthUser != "relay" {
		t.Errorf("server saw tls=%v user=%q", got.TLS, got.AuthUser)
	}
	checkMessage(t, got.Data, m, time.Now())
	if got, err := mailtest.Link(got); err != nil || got != link {
		t.Errorf("Link = %q, %v; want %q", got, err, link)
	}
}

// checkMessage parses a message as SMTP delivers it or Outbox stores it
// and checks its headers and body against m.
func checkMessage(t *testing.T, data []byte, m account.Mail, sent time.Time) {
	t.Helper()
	msg, err := netmail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("message does not parse: %v\n%s", err, data)
	}
	h := msg.Header
	wantSubject, wantText, err := Render(m)
	if err != nil {
		t.Fatal(err)
	}
	if from, err := netmail.ParseAddress(h.Get("From")); err != nil || from.Address != "noreply@relay.example.com" && from.Address != "blindrelay@localhost" {
		t.Errorf("From: %q (%v)", h.Get("From"), err)
	}
	if to, err := h.AddressList("To"); err != nil || len(to) != 1 || to[0].Address != m.To {
		t.Errorf("To: %q (%v)", h.Get("To"), err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != wantSubject {
		t.Errorf("Subject: %q (%v), want %q", subject, err, wantSubject)
	}
	if date, err := h.Date(); err != nil || date.Sub(sent).Abs() > time.Minute {
		t.Errorf("Date: %q (%v)", h.Get("Date"), err)
	}
	id := h.Get("Message-ID")
	if !strings.HasPrefix(id, "<") || !strings.HasSuffix(id, ">") || !strings.Contains(id, "@") {
		t.Errorf("Message-ID: %q", id)
	}
	if got := h.Get("Auto-Submitted"); got != "auto-generated" {
		t.Errorf("Auto-Submitted: %q", got)
	}
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil || mediaType != "text/plain" || !strings.EqualFold(params["charset"], "utf-8") {
		t.Errorf("Content-Type: %q (%v)", h.Get("Content-Type"), err)
	}
	for _, name := range []string{"User-Agent", "X-Mailer"} {
		if v := h.Get(name); v != "" {
			t.Errorf("%s: %q, want none", name, v)
		}
	}
	body, err := decodeBody(msg)
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(body), "\r\n", "\n")
	if strings.TrimSpace(text) != strings.TrimSpace(wantText) {
		t.Errorf("body differs from Render:\n%s\n---- want\n%s", text, wantText)
	}
}

func TestSMTPErrors(t *testing.T) {
	t.Parallel()
	tlsConfig := mailtest.SelfSignedTLS(t)
	m := account.Mail{Kind: account.MailPasswordChanged, To: "ada@example.com", Language: "en"}
	tests := []struct {
		name          string
		opts          mailtest.Options
		url           string
		to            string
		wantPermanent bool
	}{
		{name: "rcpt rejected", opts: mailtest.Options{RejectRcpt: "nobody@example.com"},
			url: "smtp://%s", to: "nobody@example.com", wantPermanent: true},
		{name: "wrong password", opts: mailtest.Options{User: "relay", Pass: "right"},
			url: "smtp://relay:Xyzzy42@%s", wantPermanent: true},
		{name: "auth required", opts: mailtest.Options{User: "relay", Pass: "right"},
			url: "smtp://%s", wantPermanent: true},
		{name: "starttls required but not offered",
			url: "smtp://%s?starttls=required"},
		{name: "self-signed certificate", opts: mailtest.Options{TLSConfig: tlsConfig},
			url: "smtp://%s"},
		{name: "smtps self-signed certificate", opts: mailtest.Options{TLSConfig: tlsConfig, ImplicitTLS: true},
			url: "smtps://%s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := mailtest.NewServer(t, tt.opts)
			s := newTestSMTP(t, fmt.Sprintf(tt.url, srv.Addr()))
			m := m
			if tt.to != "" {
				m.To = tt.to
			}
			err := s.Send(t.Context(), m)
			if err == nil {
				t.Fatal("Send succeeded")
			}
			t.Log(err)
			if got := permanent(err); got != tt.wantPermanent {
				t.Errorf("permanent = %v, want %v", got, tt.wantPermanent)
			}
			if strings.Contains(err.Error(), "Xyzzy42") {
				t.Error("error contains the password")
			}
			srv.None(t)
		})
	}
}

func TestSMTPSendInvalidMail(t *testing.T) {
	t.Parallel()
	srv := mailtest.NewServer(t, mailtest.Options{})
	s := newTestSMTP(t, fmt.Sprintf("smtp://%s", srv.Addr()))
	for _, m := range []account.Mail{
		{Kind: "nonsense", To: "ada@example.com"},
		{Kind: account.MailAccountDeleted, To: "not-an-address"},
	} {
		err := s.Send(t.Context(), m)
		if !errors.Is(err, ErrInvalidMail) && !errors.Is(err, ErrUnknownKind) {
			t.Errorf("Send(%v) = %v, want an invalid-mail error", m, err)
		}
		if !permanent(err) {
			t.Errorf("permanent(%v) = false", err)
		}
	}
	srv.None(t)
}

// TestSMTPSendContext checks that a relay that never answers holds Send
// only as long as its context.
func TestSMTPSendContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			// Read and never answer, not even the greeting.
			go func() { io.Copy(io.Discard, conn); conn.Close() }()
		}
	}()
	s := newTestSMTP(t, "smtp://"+ln.Addr().String())
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err = s.Send(ctx, account.Mail{Kind: account.MailAccountDeleted, To: "ada@example.com"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send = %v, want a deadline error", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Send took %v after its context ended", d)
	}
	if permanent(err) {
		t.Error("a timeout counts as permanent")
	}
}
