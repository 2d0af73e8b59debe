package relay

import (
	"bytes"
	"net"
	"testing"
)

// TestDatagramReaders: the platform reader and the portable one return
// the same datagrams and sources.
func TestDatagramReaders(t *testing.T) {
	t.Parallel()
	for name, newReader := range map[string]func(*net.UDPConn) datagramReader{
		"platform": newDatagramReader,
		"portable": func(c *net.UDPConn) datagramReader { return newSingleReader(c) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			conn := listenLoopback(t)
			peer := listenLoopback(t)
			to := conn.LocalAddr().(*net.UDPAddr).AddrPort()
			var sent [][]byte
			for i := range 20 {
				m := bytes.Repeat([]byte{byte(i)}, 1+i*100)
				sent = append(sent, m)
				if _, err := peer.WriteToUDPAddrPort(m, to); err != nil {
					t.Fatal(err)
				}
			}
			r := newReader(conn)
			want := peer.LocalAddr().(*net.UDPAddr).AddrPort()
			for len(sent) > 0 {
				n, err := r.read()
				if err != nil {
					t.Fatal(err)
				}
				for i := range n {
					b, from := r.datagram(i)
					if !bytes.Equal(b, sent[0]) || from != want {
						t.Fatalf("got %d bytes from %v, want %d from %v", len(b), from, len(sent[0]), want)
					}
					sent = sent[1:]
				}
			}
		})
	}
}
