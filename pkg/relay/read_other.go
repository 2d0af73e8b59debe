//go:build !linux

package relay

import "net"

// newDatagramReader returns the portable reader: one datagram per call.
func newDatagramReader(conn *net.UDPConn) datagramReader { return newSingleReader(conn) }
