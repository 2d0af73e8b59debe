package apiclient

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// The unauthenticated endpoints under /api/v1/auth, one method each.

// Salt asks for the salt and KDF parameters of email (POST /auth/salt). For
// an unknown address the server answers with a fake salt of the same shape.
func (c *Client) Salt(ctx context.Context, email string) (*SaltResponse, error) {
	var out SaltResponse
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/auth/salt", map[string]string{"email": email}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SubmitRegistration sends prepared credentials (POST /auth/register). Most
// callers want Register, which prepares them.
func (c *Client) SubmitRegistration(ctx context.Context, r *RegisterRequest) (*Status, error) {
	var out Status
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/auth/register", r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Verify confirms an e-mail address with the token of a mailed link
// (POST /auth/verify). token may also be the whole link (see ParseToken).
func (c *Client) Verify(ctx context.Context, token string) (*Verification, error) {
	var out Verification
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/auth/verify", map[string]string{"token": ParseToken(token)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Resend asks for a fresh confirmation link for an unverified account
// (POST /auth/resend). The answer is the same whether or not one was sent.
func (c *Client) Resend(ctx context.Context, email string) (*Status, error) {
	var out Status
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/auth/resend", map[string]string{"email": email}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// LoginWithKey logs in with a derived login key (POST /auth/login) and, on
// success, makes the new session the client's. Most callers want Login,
// which derives the key.
func (c *Client) LoginWithKey(ctx context.Context, email string, loginKey []byte) (*Session, error) {
	in := struct {
		Email    string `json:"email"`
		LoginKey []byte `json:"login_key"`
	}{email, loginKey}
	var out Session
	resp, err := c.do(ctx, http.MethodPost, "/api/v1/auth/login", in, &out)
	if err != nil {
		return nil, err
	}
	if out.Token = sessionCookie(resp); out.Token == "" {
		return nil, fmt.Errorf("POST /api/v1/auth/login: %w", ErrNoSessionCookie)
	}
	c.SetSessionToken(out.Token)
	return &out, nil
}

// Logout ends the client's session (POST /auth/logout) and forgets its
// token, also when the server no longer knew the session.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodPost, "/api/v1/auth/logout", nil, nil)
	if err == nil || ErrorCode(err) == "unauthorized" {
		c.SetSessionToken("")
	}
	return err
}

// LogoutAll ends every session of the user, this one included
// (POST /auth/logout-all), forgets the token and returns how many ended.
func (c *Client) LogoutAll(ctx context.Context) (int, error) {
	var out struct {
		SessionsEnded int `json:"sessions_ended"`
	}
	_, err := c.do(ctx, http.MethodPost, "/api/v1/auth/logout-all", nil, &out)
	if err == nil || ErrorCode(err) == "unauthorized" {
		c.SetSessionToken("")
	}
	if err != nil {
		return 0, err
	}
	return out.SessionsEnded, nil
}

// RequestReset asks for a password-reset link for email
// (POST /auth/reset/request); lang may be "". The answer is the same
// whether or not the account exists.
func (c *Client) RequestReset(ctx context.Context, email, lang string) (*Status, error) {
	in := struct {
		Email    string `json:"email"`
		Language string `json:"language,omitempty"`
	}{email, lang}
	var out Status
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/auth/reset/request", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ResetInfo checks a reset token without using it up (POST /auth/reset/info)
// and returns the account's e-mail and public keys. token may be the whole
// link.
func (c *Client) ResetInfo(ctx context.Context, token string) (*ResetInfo, error) {
	var out ResetInfo
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/auth/reset/info", map[string]string{"token": ParseToken(token)}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// CompleteReset sends prepared reset credentials
// (POST /auth/reset/complete). Most callers want ResetWithRecovery or
// ResetWithoutRecovery.
func (c *Client) CompleteReset(ctx context.Context, r *ResetCompleteRequest) (*ResetResult, error) {
	var out ResetResult
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/auth/reset/complete", r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ParseToken returns the token of a mailed link ("https://relay/verify?token=T"
// or ".../reset?token=T") or, for anything that is not such a link, s itself
// without surrounding space.
func ParseToken(s string) string {
	s = strings.TrimSpace(s)
	if !strings.Contains(s, "?") {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		return s
	}
	if tok := u.Query().Get("token"); tok != "" {
		return tok
	}
	return s
}
