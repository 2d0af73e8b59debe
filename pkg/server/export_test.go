package server

// DeviceOnlineForTest reports whether the management tunnel holds the
// device as online.
func (s *Server) DeviceOnlineForTest(deviceID string) bool { return s.udp.mgmt.Online(deviceID) }
