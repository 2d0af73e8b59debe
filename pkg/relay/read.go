package relay

import (
	"net"
	"net/netip"
)

// datagramReader reads datagrams from the UDP socket for Run, possibly
// several per system call. Datagram i of the last read stays valid until
// the next read.
type datagramReader interface {
	// read blocks until at least one datagram arrived and returns how
	// many did.
	read() (int, error)
	// datagram returns datagram i (i < the count read returned) and its
	// source address, unmapped (an IPv4 source is an IPv4 address).
	datagram(i int) ([]byte, netip.AddrPort)
}

// singleReader reads one datagram per call with ReadFromUDPAddrPort: the
// portable fallback.
type singleReader struct {
	conn *net.UDPConn
	buf  []byte
	n    int
	from netip.AddrPort
}

func newSingleReader(conn *net.UDPConn) *singleReader {
	return &singleReader{conn: conn, buf: make([]byte, maxDatagram+1)}
}

func (r *singleReader) read() (int, error) {
	n, from, err := r.conn.ReadFromUDPAddrPort(r.buf)
	if err != nil {
		return 0, err
	}
	r.n, r.from = n, netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	return 1, nil
}

func (r *singleReader) datagram(int) ([]byte, netip.AddrPort) { return r.buf[:r.n], r.from }
