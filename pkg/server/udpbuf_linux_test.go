package server

import (
	"bytes"
	"log/slog"
	"net"
	"syscall"
	"testing"
)

// TestSizeBuffers checks that the UDP socket gets the buffers asked for,
// or that the operator is told how to allow them.
func TestSizeBuffers(t *testing.T) {
	t.Parallel()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var logs bytes.Buffer
	sizeBuffers(conn, udpBufferSize, slog.New(slog.NewTextHandler(&logs, nil)))
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	for _, opt := range []int{syscall.SO_RCVBUF, syscall.SO_SNDBUF} {
		var got int
		rc.Control(func(fd uintptr) { got, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, opt) })
		if got/2 < udpBufferSize && !bytes.Contains(logs.Bytes(), []byte("udp socket buffer smaller than wanted")) {
			t.Errorf("socket option %d: %d bytes, want %d, and no warning logged", opt, got/2, udpBufferSize)
		}
		t.Logf("socket option %d: %d bytes", opt, got/2)
	}
}
