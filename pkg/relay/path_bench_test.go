package relay

import (
	"fmt"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/wire"
)

// BenchmarkPathOverhead isolates what the relay adds per datagram on one
// goroutine, where BenchmarkRelay's end-to-end numbers are dominated by
// syscalls and scheduling (and by noise on a busy machine):
//
//   - to_browser: demux of a transport message from the device's address
//     (parse, table lookup under the read lock, copy into a pooled packet,
//     queue) plus taking it off the queue, as the writer does; no syscall.
//   - to_device: the whole browser→device path including the UDP send,
//     against the bare UDP send the floor does.
func BenchmarkPathOverhead(b *testing.B) {
	for _, size := range []int{128, 1400} {
		b.Run(fmt.Sprintf("to_browser/%dB", size), func(b *testing.B) {
			s := newFuzzSetup(b)
			s.srv.fromBrowser(s.ss, seedMessage(wire.MessageInitiationType, wire.MessageInitiationSize, 4, s.deviceKey))
			msg := seedMessage(wire.MessageTransportType, size, 4, s.deviceKey)
			b.ReportAllocs()
			for b.Loop() {
				s.srv.fromUDP(msg, s.device)
				(<-s.ss.queue).free()
			}
		})
		b.Run(fmt.Sprintf("to_device/%dB/floor", size), func(b *testing.B) {
			s := newFuzzSetup(b)
			msg := seedMessage(wire.MessageTransportType, size, 4, s.deviceKey)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.srv.conn.WriteToUDPAddrPort(msg, s.device); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("to_device/%dB/relay", size), func(b *testing.B) {
			s := newFuzzSetup(b)
			msg := seedMessage(wire.MessageTransportType, size, 4, s.deviceKey)
			b.ReportAllocs()
			for b.Loop() {
				s.srv.fromBrowser(s.ss, msg)
			}
			if s.srv.toDevice.packets.Load() == 0 {
				b.Fatal("nothing sent")
			}
		})
	}
}
