package server

import (
	"log/slog"
	"net"
	"strconv"
	"syscall"
)

// sizeBuffers asks for size bytes of receive and send buffer on conn.
// Linux caps SO_RCVBUF and SO_SNDBUF at net.core.rmem_max and wmem_max; a
// process with CAP_NET_ADMIN may exceed them (SO_*BUFFORCE), which is
// tried next. A buffer still smaller than asked is logged with the sysctl
// that raises it: the relay works, but loses datagrams in bursts.
func sizeBuffers(conn *net.UDPConn, size int, logger *slog.Logger) {
	_ = conn.SetReadBuffer(size)
	_ = conn.SetWriteBuffer(size)
	rc, err := conn.SyscallConn()
	if err != nil {
		return
	}
	for _, b := range []struct {
		name, sysctl string
		opt, force   int
	}{
		{"receive", "net.core.rmem_max", syscall.SO_RCVBUF, syscall.SO_RCVBUFFORCE},
		{"send", "net.core.wmem_max", syscall.SO_SNDBUF, syscall.SO_SNDBUFFORCE},
	} {
		var got int
		_ = rc.Control(func(fd uintptr) {
			// Linux reports twice the size set (the doubling covers its
			// bookkeeping).
			if got, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, b.opt); got/2 >= size {
				return
			}
			if syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, b.force, size) == nil {
				got, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, b.opt)
			}
		})
		if got/2 < size {
			logger.Warn("udp socket buffer smaller than wanted: datagrams may be lost in bursts",
				"buffer", b.name, "bytes", got/2, "want", size, "raise", b.sysctl+"="+strconv.Itoa(size))
		}
	}
}
