//go:build js

package apiclient

import (
	"context"

	"github.com/coder/websocket"
)

// dialTunnel lets the browser dial url. It sends the relay's session
// cookie (the page must be the relay's own origin) and no Authorization
// header, which browsers cannot set on a WebSocket; a refusal shows only as
// a failed dial.
func (c *Client) dialTunnel(ctx context.Context, url string) (*websocket.Conn, error) {
	ws, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{TunnelSubprotocol}})
	return ws, err
}
