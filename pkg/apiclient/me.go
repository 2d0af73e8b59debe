package apiclient

import (
	"context"
	"encoding/json"
	"net/http"
)

// The endpoints that need a session (under /api/v1/me), and the two outside
// the API proper.

// Me returns the logged-in user (GET /me).
func (c *Client) Me(ctx context.Context) (*User, error) {
	var out User
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/me", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// MyKeys returns the user's salt, KDF parameters, public keys and encrypted
// private keys (GET /me/keys).
func (c *Client) MyKeys(ctx context.Context) (*Keys, error) {
	var out Keys
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/me/keys", nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SetLanguage sets the language of the user's mails (POST /me/language).
func (c *Client) SetLanguage(ctx context.Context, lang string) (*User, error) {
	var out User
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/me/language", map[string]string{"language": lang}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SubmitPasswordChange sends prepared credentials (POST /me/password). Most
// callers want ChangePassword, which prepares them.
func (c *Client) SubmitPasswordChange(ctx context.Context, r *PasswordChangeRequest) (*Status, error) {
	var out Status
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/me/password", r, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// SubmitEmailChange asks to move the account to newEmail (POST /me/email),
// proven by the current login key. The server mails a confirmation link to
// newEmail. Most callers want ChangeEmail, which derives the key.
func (c *Client) SubmitEmailChange(ctx context.Context, newEmail string, loginKey []byte) (*Status, error) {
	in := struct {
		NewEmail string `json:"new_email"`
		LoginKey []byte `json:"login_key"`
	}{newEmail, loginKey}
	var out Status
	if _, err := c.do(ctx, http.MethodPost, "/api/v1/me/email", in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteWithKey deletes the account (DELETE /me), proven by the current
// login key, and forgets the session token. Most callers want DeleteAccount,
// which derives the key.
func (c *Client) DeleteWithKey(ctx context.Context, loginKey []byte) error {
	in := struct {
		LoginKey []byte `json:"login_key"`
	}{loginKey}
	if _, err := c.do(ctx, http.MethodDelete, "/api/v1/me", in, nil); err != nil {
		return err
	}
	c.SetSessionToken("")
	return nil
}

// OpenAPI returns the relay's OpenAPI document (GET /api/v1/openapi.json).
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	if _, err := c.do(ctx, http.MethodGet, "/api/v1/openapi.json", nil, &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Health checks that the relay serves (GET /healthz answers 200).
func (c *Client) Health(ctx context.Context) error {
	_, err := c.do(ctx, http.MethodGet, "/healthz", nil, nil)
	return err
}
