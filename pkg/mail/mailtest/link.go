package mailtest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	netmail "net/mail"
	"net/textproto"
	"strings"
)

// ErrNoLink is wrapped by Link's error when the message has no link.
var ErrNoLink = errors.New("no link in the message")

// Link returns the first line of m's body that is an https:// or http://
// URL and nothing else (the mails put their links on a line of their own),
// without surrounding white space. It undoes the Content-Transfer-Encoding
// (quoted-printable, base64) and, for a multipart message, looks through
// its parts in order.
func Link(m Message) (string, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return "", fmt.Errorf("mailtest: message does not parse: %w", err)
	}
	link, err := findLink(textproto.MIMEHeader(msg.Header), msg.Body, 0)
	if err != nil {
		return "", fmt.Errorf("mailtest: %w", err)
	}
	return link, nil
}

// findLink searches one entity with header h and (still encoded) body.
func findLink(h textproto.MIMEHeader, body io.Reader, depth int) (string, error) {
	mediaType, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mediaType = "text/plain" // RFC 2045's default, also for a missing header
	}
	if strings.HasPrefix(mediaType, "multipart/") {
		if depth >= 10 {
			return "", errors.New("multipart nested too deep")
		}
		r := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart: NextPart would undo quoted-printable itself
			// and drop the header, and decode would undo it twice.
			p, err := r.NextRawPart()
			if errors.Is(err, io.EOF) {
				return "", ErrNoLink
			}
			if err != nil {
				return "", fmt.Errorf("multipart: %w", err)
			}
			link, err := findLink(p.Header, p, depth+1)
			if !errors.Is(err, ErrNoLink) {
				return link, err
			}
		}
	}
	if !strings.HasPrefix(mediaType, "text/") {
		return "", ErrNoLink
	}
	text, err := decode(h.Get("Content-Transfer-Encoding"), body)
	if err != nil {
		return "", err
	}
	for line := range strings.Lines(string(text)) {
		line = strings.TrimSpace(line)
		if (strings.HasPrefix(line, "https://") || strings.HasPrefix(line, "http://")) && !strings.ContainsAny(line, " \t") {
			return line, nil
		}
	}
	return "", ErrNoLink
}

// decode undoes a Content-Transfer-Encoding.
func decode(cte string, body io.Reader) ([]byte, error) {
	var r io.Reader
	switch cte = strings.ToLower(strings.TrimSpace(cte)); cte {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	case "", "7bit", "8bit", "binary":
		r = body
	default:
		return nil, fmt.Errorf("unknown content transfer encoding %q", cte)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("body: %w", err)
	}
	return b, nil
}
