package relay

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// readBatch is how many datagrams one recvmmsg(2) takes at most. Each has
// a buffer of the largest datagram, so this costs 1 MiB per Server.
const readBatch = 16

// mmsgReader reads up to readBatch datagrams per recvmmsg(2) call, so a
// busy relay makes one system call for many datagrams. It allocates
// nothing per read.
type mmsgReader struct {
	rc    syscall.RawConn
	bufs  [readBatch][]byte
	iovs  [readBatch]unix.Iovec
	names [readBatch]unix.RawSockaddrInet6 // large enough for IPv4 too
	hdrs  [readBatch]unix.Mmsghdr
	recv  func(fd uintptr) bool // r.recvmmsg, bound once
	n     int                   // datagrams of the last read
	errno syscall.Errno         // error of the last recvmmsg
}

// newDatagramReader returns the recvmmsg reader, or the portable one if
// the socket has no file descriptor to use.
func newDatagramReader(conn *net.UDPConn) datagramReader {
	rc, err := conn.SyscallConn()
	if err != nil {
		return newSingleReader(conn)
	}
	r := &mmsgReader{rc: rc}
	for i := range r.hdrs {
		r.bufs[i] = make([]byte, maxDatagram+1)
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(len(r.bufs[i]))
		r.hdrs[i].Hdr.Iov = &r.iovs[i]
		r.hdrs[i].Hdr.SetIovlen(1)
		r.hdrs[i].Hdr.Name = (*byte)(unsafe.Pointer(&r.names[i]))
	}
	r.recv = r.recvmmsg
	return r
}

// recvmmsg is the function RawConn.Read calls when the socket is readable;
// it reports false to wait for readability again.
func (r *mmsgReader) recvmmsg(fd uintptr) bool {
	for i := range r.hdrs {
		r.hdrs[i].Hdr.Namelen = uint32(unsafe.Sizeof(r.names[i]))
	}
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&r.hdrs[0])),
			uintptr(len(r.hdrs)), 0, 0, 0)
		switch errno {
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		}
		r.n, r.errno = int(n), errno
		return true
	}
}

func (r *mmsgReader) read() (int, error) {
	if err := r.rc.Read(r.recv); err != nil {
		return 0, err
	}
	if r.errno != 0 {
		return 0, &net.OpError{Op: "recvmmsg", Net: "udp", Err: r.errno}
	}
	return r.n, nil
}

func (r *mmsgReader) datagram(i int) ([]byte, netip.AddrPort) {
	b := r.bufs[i][:r.hdrs[i].Len]
	sa := &r.names[i]
	p := (*[2]byte)(unsafe.Pointer(&sa.Port)) // network byte order
	port := uint16(p[0])<<8 | uint16(p[1])
	var addr netip.Addr
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		addr = netip.AddrFrom4(sa4.Addr)
	case unix.AF_INET6:
		addr = netip.AddrFrom16(sa.Addr).Unmap()
	}
	return b, netip.AddrPortFrom(addr, port)
}
