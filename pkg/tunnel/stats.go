package tunnel

import (
	"sync/atomic"
	"time"
)

// Stats are the counters of a Bind or a Tunnel. Bytes and packets count
// WireGuard datagrams on the WebSocket (ciphertext with WireGuard's headers,
// without WebSocket framing); counters only grow, across reconnects.
type Stats struct {
	TxBytes, TxPackets uint64 // datagrams written to the WebSocket
	RxBytes, RxPackets uint64 // datagrams read from the WebSocket and queued for WireGuard

	// Drops, by reason. Nothing dropped is ever fatal to the connection.
	DroppedText         uint64 // text messages received: not datagrams (the relay's hello is one)
	DroppedOversize     uint64 // binary messages larger than a UDP datagram can be
	DroppedEmpty        uint64 // empty binary messages
	DroppedQueueFull    uint64 // received while the receive queue was full
	DroppedDisconnected uint64 // to send while the WebSocket was being redialled
	DroppedSendError    uint64 // to send when the WebSocket write failed

	Dials      uint64 // WebSocket dial attempts, the first one included
	Reconnects uint64 // successful redials after a lost connection
	Connected  bool   // whether a WebSocket is up right now

	// LastHandshake is when the last WireGuard handshake with the device
	// completed; zero if none has yet. Set by Tunnel.Stats only.
	LastHandshake time.Time
}

// counters are the live values behind Stats.
type counters struct {
	txBytes, txPackets, rxBytes, rxPackets atomic.Uint64
	dropText, dropOversize, dropEmpty      atomic.Uint64
	dropQueueFull, dropDisconnected        atomic.Uint64
	dropSendError                          atomic.Uint64
	dials, reconnects                      atomic.Uint64
	connected                              atomic.Bool
}

func (c *counters) snapshot() Stats {
	return Stats{
		TxBytes:             c.txBytes.Load(),
		TxPackets:           c.txPackets.Load(),
		RxBytes:             c.rxBytes.Load(),
		RxPackets:           c.rxPackets.Load(),
		DroppedText:         c.dropText.Load(),
		DroppedOversize:     c.dropOversize.Load(),
		DroppedEmpty:        c.dropEmpty.Load(),
		DroppedQueueFull:    c.dropQueueFull.Load(),
		DroppedDisconnected: c.dropDisconnected.Load(),
		DroppedSendError:    c.dropSendError.Load(),
		Dials:               c.dials.Load(),
		Reconnects:          c.reconnects.Load(),
		Connected:           c.connected.Load(),
	}
}
