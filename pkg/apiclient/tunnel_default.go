//go:build !js

package apiclient

import (
	"context"
	"net/http"

	"github.com/coder/websocket"
)

// dialTunnel dials url through the client's http.Client with its session
// token, and turns a refusal before the upgrade into an *Error.
func (c *Client) dialTunnel(ctx context.Context, url string) (*websocket.Conn, error) {
	h := http.Header{}
	h.Set("User-Agent", c.userAgent)
	if tok := c.SessionToken(); tok != "" {
		h.Set("Authorization", "Bearer "+tok)
	}
	ws, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{
		HTTPClient:   c.hc,
		HTTPHeader:   h,
		Subprotocols: []string{TunnelSubprotocol},
		// Datagrams are WireGuard ciphertext: compression gains nothing.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, parseError(resp) // Dial kept the start of the body
		}
		return nil, err
	}
	return ws, nil
}
