package server

import (
	"bytes"
	"context"
	"log"
	"log/slog"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// runJanitor deletes expired sessions and tokens every interval until ctx
// ends. Expired rows are already refused on lookup; this only keeps the
// tables small. A failed run is logged and retried at the next tick.
func runJanitor(ctx context.Context, store account.Store, interval time.Duration, now func() time.Time, logger *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := store.DeleteExpired(ctx, now()); err != nil && ctx.Err() == nil {
				logger.Error("delete expired sessions and tokens", "err", err)
			}
		}
	}
}

// newHTTPErrorLog routes net/http's own log lines into logger. Failed TLS
// handshakes go to debug: every browser that meets the self-signed
// certificate for the first time causes one, and they are not the
// operator's problem.
func newHTTPErrorLog(logger *slog.Logger) *log.Logger {
	return log.New(httpLogWriter{logger}, "", 0)
}

type httpLogWriter struct{ logger *slog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	msg := string(bytes.TrimRight(p, "\n"))
	level := slog.LevelWarn
	if bytes.Contains(p, []byte("TLS handshake error")) {
		level = slog.LevelDebug
	}
	w.logger.Log(context.Background(), level, msg, "source", "net/http")
	return len(p), nil
}
