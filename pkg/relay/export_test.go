package relay

import "net/netip"

// IndicesForTest returns the receiver indices learned for the device's
// sessions.
func (s *Server) IndicesForTest(deviceID string) []uint32 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d := s.devices[deviceID]
	if d == nil {
		return nil
	}
	var out []uint32
	for idx := range d.index {
		out = append(out, idx)
	}
	return out
}

// EndpointForTest returns the device's endpoint, zero if none.
func (s *Server) EndpointForTest(deviceID string) netip.AddrPort {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if d := s.devices[deviceID]; d != nil {
		return d.ep
	}
	return netip.AddrPort{}
}

// DeviceKnownForTest reports whether the relay tracks the device at all.
func (s *Server) DeviceKnownForTest(deviceID string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.devices[deviceID] != nil
}

// MaxIndices is maxIndices.
const MaxIndices = maxIndices
