package tunnel

import (
	"net/http"

	"github.com/coder/websocket"
)

// dialOptions returns the WebSocket dial options for cfg. In a browser the
// WebSocket API offers no headers, no TLS settings and no compression
// choice: the browser sends the relay origin's cookies itself, so
// cfg.Header and cfg.HTTPClient are ignored.
func dialOptions(*BindConfig) *websocket.DialOptions {
	return &websocket.DialOptions{Subprotocols: []string{Subprotocol}}
}

// newDialError wraps a failed dial. Browsers do not tell scripts why a
// WebSocket handshake failed, so there is never a status code.
func newDialError(_ *http.Response, err error) *DialError {
	return &DialError{Err: err}
}
