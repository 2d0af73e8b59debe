package mailtest_test

import (
	"crypto/tls"
	"errors"
	"net/smtp"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/blindrelay/blindrelay/pkg/mail/mailtest"
)

const testData = "From: a@example.com\r\nTo: b@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"

func TestServerNetSMTP(t *testing.T) {
	t.Parallel()
	srv := mailtest.NewServer(t, mailtest.Options{User: "relay", Pass: "s3cret p@ss:/"})
	srv.None(t)
	// net/smtp sends PLAIN in the clear only to localhost, which this is.
	auth := smtp.PlainAuth("", "relay", "s3cret p@ss:/", "127.0.0.1")
	if err := smtp.SendMail(srv.Addr().String(), auth, "a@example.com", []string{"b@example.com", "C@example.com"}, []byte(testData)); err != nil {
		t.Fatal(err)
	}
	got := srv.Next(t)
	if got.From != "a@example.com" || !slices.Equal(got.To, []string{"b@example.com", "C@example.com"}) {
		t.Errorf("envelope from %q to %q", got.From, got.To)
	}
	if got.AuthUser != "relay" || got.TLS {
		t.Errorf("AuthUser %q, TLS %v", got.AuthUser, got.TLS)
	}
	if string(got.Data) != testData {
		t.Errorf("Data = %q, want %q", got.Data, testData)
	}
	srv.None(t)

	// Wrong password, and no AUTH at all: nothing is accepted.
	bad := smtp.PlainAuth("", "relay", "wrong", "127.0.0.1")
	if err := smtp.SendMail(srv.Addr().String(), bad, "a@example.com", []string{"b@example.com"}, []byte(testData)); err == nil {
		t.Error("wrong password accepted")
	}
	if err := smtp.SendMail(srv.Addr().String(), nil, "a@example.com", []string{"b@example.com"}, []byte(testData)); err == nil {
		t.Error("mail without AUTH accepted")
	}
	srv.None(t)
}

func TestServerURL(t *testing.T) {
	t.Parallel()
	tlsConfig := mailtest.SelfSignedTLS(t)
	tests := []struct {
		opts       mailtest.Options
		wantScheme string
		wantUser   *url.Userinfo
	}{
		{mailtest.Options{}, "smtp", nil},
		{mailtest.Options{User: "relay", Pass: "s3cret p@ss:/"}, "smtp", url.UserPassword("relay", "s3cret p@ss:/")},
		{mailtest.Options{TLSConfig: tlsConfig, ImplicitTLS: true, User: "relay"}, "smtps", url.UserPassword("relay", "")},
	}
	for _, tt := range tests {
		srv := mailtest.NewServer(t, tt.opts)
		raw := srv.URL()
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("URL %q: %v", raw, err)
		}
		if u.Scheme != tt.wantScheme || u.Host != srv.Addr().String() || !strings.HasPrefix(u.Host, "127.0.0.1:") || u.Path != "" || u.RawQuery != "" {
			t.Errorf("URL %q: want %s://%s", raw, tt.wantScheme, srv.Addr())
		}
		if u.User.String() != tt.wantUser.String() {
			t.Errorf("URL %q: user %q, want %q", raw, u.User, tt.wantUser)
		}
	}
}

func TestServerTLS(t *testing.T) {
	t.Parallel()
	tlsConfig := mailtest.SelfSignedTLS(t)
	client := &tls.Config{InsecureSkipVerify: true}
	for _, implicit := range []bool{false, true} {
		srv := mailtest.NewServer(t, mailtest.Options{TLSConfig: tlsConfig, ImplicitTLS: implicit, User: "relay", Pass: "pw", RejectRcpt: "Nobody@example.com"})
		dial := gosmtp.DialStartTLS
		if implicit {
			dial = gosmtp.DialTLS
		}
		c, err := dial(srv.Addr().String(), client)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Auth(sasl.NewPlainClient("", "relay", "pw")); err != nil {
			t.Fatal(err)
		}
		err = c.SendMail("a@example.com", []string{"nobody@example.com"}, strings.NewReader(testData))
		if smtpErr, ok := errors.AsType[*gosmtp.SMTPError](err); !ok || smtpErr.Code != 550 {
			t.Errorf("rejected recipient: %v, want 550", err)
		}
		if err := c.Reset(); err != nil {
			t.Fatal(err)
		}
		if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(testData)); err != nil {
			t.Fatal(err)
		}
		if err := c.Quit(); err != nil {
			t.Error(err)
		}
		select {
		case got := <-srv.Messages():
			if !got.TLS || got.AuthUser != "relay" || !slices.Equal(got.To, []string{"b@example.com"}) {
				t.Errorf("implicit %v: got TLS %v, AuthUser %q, To %q", implicit, got.TLS, got.AuthUser, got.To)
			}
		case <-t.Context().Done():
		}
		srv.None(t)
	}
}

func TestLink(t *testing.T) {
	t.Parallel()
	const link = "https://relay.example.com/account/verify?token=0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz&lang=de"
	tests := []struct {
		name, data, want string
	}{
		{"quoted-printable", "From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"Bitte =C3=B6ffnen Sie diesen Link, siehe https://example.com/not-this:\r\n\r\n" +
			"https://relay.example.com/account/verify?token=3D0123456789abcdefghijklmnop=\r\n" +
			"qrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz&lang=3Dde\r\n\r\nhttps://example.com/second\r\n", link},
		{"base64", "From: a@example.com\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			"SGFsbG8sCgogIGh0dHBzOi8vcmVsYXkuZXhhbXBsZS5jb20vYWNjb3VudC92ZXJpZnk/dG9rZW49\r\nMDEyMzQ1Njc4OWFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6MDEyMzQ1Njc4OWFiY2RlZmdoaWpr\r\nbG1ub3BxcnN0dXZ3eHl6Jmxhbmc9ZGUgIAoKYnllCg==\r\n", link},
		{"plain http", "Subject: x\r\n\r\nopen\r\nhttp://127.0.0.1:8080/r?t=1\r\n", "http://127.0.0.1:8080/r?t=1"},
		{"multipart", "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/html\r\n\r\n" +
			"<a href=3D\"x\">\r\nhttps://example.com/html\r\n--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
			"https://relay.example.com/account/verify?token=3D0123456789abcdefghijklmnop=\r\n" +
			"qrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz&lang=3Dde\r\n--b--\r\n", "https://example.com/html"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mailtest.Link(mailtest.Message{Data: []byte(tt.data)})
			if err != nil || got != tt.want {
				t.Errorf("Link = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	for _, data := range []string{
		"Subject: x\r\n\r\nsee https://example.com/inline here\r\n",
		"Subject: x\r\nContent-Type: image/png\r\n\r\nhttps://example.com/\r\n",
	} {
		if got, err := mailtest.Link(mailtest.Message{Data: []byte(data)}); !errors.Is(err, mailtest.ErrNoLink) {
			t.Errorf("Link(%q) = %q, %v; want ErrNoLink", data, got, err)
		}
	}
	if _, err := mailtest.Link(mailtest.Message{Data: []byte("not a message")}); err == nil || errors.Is(err, mailtest.ErrNoLink) {
		t.Errorf("Link(garbage) = %v, want a parse error", err)
	}
}
