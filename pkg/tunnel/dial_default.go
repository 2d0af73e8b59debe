//go:build !js

package tunnel

import (
	"io"
	"net/http"

	"github.com/coder/websocket"
)

// dialOptions returns the WebSocket dial options for cfg: the subprotocol,
// its headers and HTTP client, and no compression (WireGuard ciphertext
// does not compress).
func dialOptions(cfg *BindConfig) *websocket.DialOptions {
	return &websocket.DialOptions{
		Subprotocols:    []string{Subprotocol},
		HTTPClient:      cfg.HTTPClient,
		HTTPHeader:      cfg.Header,
		CompressionMode: websocket.CompressionDisabled,
	}
}

// newDialError wraps a failed dial, keeping the relay's answer if there was
// one (the library leaves up to 1024 bytes of its body readable).
func newDialError(resp *http.Response, err error) *DialError {
	e := &DialError{Err: err}
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		e.StatusCode = resp.StatusCode
		if resp.Body != nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			e.Body = string(b)
		}
	}
	return e
}
