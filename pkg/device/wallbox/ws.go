package wallbox

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// wsReadLimit is the largest message /ws echoes.
const wsReadLimit = 1 << 20

// handleWS serves the live WebSocket: it pushes the status as a text
// message at once and then every PushInterval, and echoes every message it
// receives verbatim (same type, same bytes), interleaved with the pushes.
// It ends when the client closes or the request's context ends.
func (w *Wallbox) handleWS(rw http.ResponseWriter, r *http.Request) {
	// The UI is reached through a tunnel and shown in a frame of another
	// origin than the device's own address, so the Origin header never
	// matches the Host: accept any, as embedded chargers do. /ws carries
	// nothing the open status page does not show.
	c, err := websocket.Accept(rw, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		w.log.Debug("websocket accept", "error", err)
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(wsReadLimit)

	ctx, cancel := context.WithCancel(r.Context())
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		w.push(ctx, c)
	})
	err = w.echo(ctx, c)
	cancel()
	wg.Wait()
	if s := websocket.CloseStatus(err); s == websocket.StatusNormalClosure || s == websocket.StatusGoingAway {
		c.Close(websocket.StatusNormalClosure, "")
		return
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		w.log.Debug("websocket ended", "error", err)
	}
}

// push writes the status until ctx ends or a write fails.
func (w *Wallbox) push(ctx context.Context, c *websocket.Conn) {
	t := time.NewTicker(w.cfg.PushInterval)
	defer t.Stop()
	for {
		b, _ := json.Marshal(w.Status())
		if err := c.Write(ctx, websocket.MessageText, b); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// echo writes back every message read, until reading fails.
func (w *Wallbox) echo(ctx context.Context, c *websocket.Conn) error {
	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return err
		}
		if err := c.Write(ctx, typ, b); err != nil {
			return err
		}
	}
}
