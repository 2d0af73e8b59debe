//go:build !linux

package server

import (
	"log/slog"
	"net"
)

// sizeBuffers asks for size bytes of receive and send buffer on conn; the
// system may grant less.
func sizeBuffers(conn *net.UDPConn, size int, _ *slog.Logger) {
	_ = conn.SetReadBuffer(size)
	_ = conn.SetWriteBuffer(size)
}
