package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"text/tabwriter"
)

// Result is what one run measured. Memory is in KiB (the unit of
// /proc/PID/status), CPU is user + system time of the relay process.
type Result struct {
	Devices   int    `json:"devices"`
	Processes int    `json:"devicesim_processes"`
	SimCPUs   string `json:"devicesim_cpus,omitempty"` // taskset list, "" if not pinned
	Database  string `json:"database"`                 // sqlite or postgres

	// Pairing (before the measurement; HTTPS API and database work).
	PairSeconds        float64 `json:"pair_seconds"`
	PairCPUPerDeviceMs float64 `json:"pair_cpu_per_device_ms"`

	// Coming online, counted from the start of the devicesim processes.
	Online           int  `json:"online"`
	AllOnline        bool `json:"all_online"`
	ControlConnected int  `json:"control_connected"` // open, from the relay's log
	// OfflineWhileConnecting counts "device offline" in the relay's log
	// while the devices came online: devices that lost their tunnel and
	// had to connect again.
	OfflineWhileConnecting int     `json:"offline_while_connecting"`
	FirstOnlineSeconds     float64 `json:"first_online_seconds"`
	AllOnlineSeconds       float64 `json:"all_online_seconds"`
	ControlSeconds         float64 `json:"control_connected_seconds"`
	// ConnectCPUSeconds is the relay's CPU time from the start of devicesim
	// to all devices online with their control connections, and
	// ConnectCPUPerDeviceMs that divided by the devices. The Net value
	// leaves out what relayload's own ListCalls of GET /devices cost,
	// ListCallCPUMs each. HandshakeCPUPerDeviceMs also leaves out the
	// steady-state traffic of the devices already online while others
	// connect (ConnectDeviceSeconds, the integral of the devices online over
	// the connect time, at the steady-state rate): the CPU of connecting
	// itself, per device (WireGuard handshake, lazy peer load, control
	// connection and hello, going online in the store).
	ConnectCPUSeconds        float64 `json:"connect_cpu_seconds"`
	ConnectCPUPerDeviceMs    float64 `json:"connect_cpu_per_device_ms"`
	ListCalls                int     `json:"list_calls"`
	ListCallCPUMs            float64 `json:"list_call_cpu_ms"`
	ConnectCPUPerDeviceNetMs float64 `json:"connect_cpu_per_device_net_ms"`
	ConnectDeviceSeconds     float64 `json:"connect_device_seconds"`
	HandshakeCPUPerDeviceMs  float64 `json:"handshake_cpu_per_device_ms"`

	// Relay memory: fresh (a user, no devices), idle (all paired, none
	// connected), online (all online), steady (end of the window), peak
	// (VmHWM at the end of the window).
	RSSStartKiB  int64 `json:"relay_rss_start_kib"`
	RSSIdleKiB   int64 `json:"relay_rss_idle_kib"`
	RSSOnlineKiB int64 `json:"relay_rss_online_kib"`
	RSSSteadyKiB int64 `json:"relay_rss_steady_kib"`
	RSSPeakKiB   int64 `json:"relay_rss_peak_kib"`
	// RSSPerDeviceKiB is (steady - idle) / devices; if not all came online,
	// (online - idle) / the devices listed online at the last check.
	// AnonPerDeviceKiB is the same for RssAnon, the heap and stacks
	// without file-backed pages.
	RSSPerDeviceKiB  float64 `json:"relay_rss_per_device_kib"`
	AnonPerDeviceKiB float64 `json:"relay_anon_per_device_kib"`
	ThreadsIdle      int     `json:"relay_threads_idle"`
	ThreadsOnline    int     `json:"relay_threads_online"`
	FDsIdle          int     `json:"relay_fds_idle"`
	FDsOnline        int     `json:"relay_fds_online"`

	// Steady state: the window after all are online.
	WindowSeconds            float64 `json:"window_seconds"`
	SteadyCPUPercent         float64 `json:"steady_cpu_percent"` // of one core
	SteadyCPUPerDeviceUsPerS float64 `json:"steady_cpu_per_device_us_per_s"`
	OfflineInWindow          int     `json:"offline_in_window"` // "device offline" log lines during the window
	OnlineAfterWindow        int     `json:"online_after_window"`

	SimRSSKiB int64 `json:"devicesim_rss_kib"` // all devicesim processes together
}

// printResult writes r as a table or as indented JSON.
func printResult(w io.Writer, r *Result, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
	}
	pinned := r.SimCPUs
	if pinned == "" {
		pinned = "not pinned"
	}
	row("devices", "%d in %d devicesim process(es), devicesim CPUs %s, %s", r.Devices, r.Processes, pinned, r.Database)
	row("pairing", "%.1f s, relay CPU %.2f ms/device", r.PairSeconds, r.PairCPUPerDeviceMs)
	row("online", "%d of %d (control connections: %d; went offline while connecting: %d)", r.Online, r.Devices, r.ControlConnected, r.OfflineWhileConnecting)
	row("time to first / all online", "%.1f s / %s", r.FirstOnlineSeconds, secondsOrDash(r.AllOnline, r.AllOnlineSeconds))
	row("relay RSS start/idle/online/steady", "%s / %s / %s / %s (peak %s)",
		mib(r.RSSStartKiB), mib(r.RSSIdleKiB), mib(r.RSSOnlineKiB), mib(r.RSSSteadyKiB), mib(r.RSSPeakKiB))
	row("relay RSS per device", "%.1f KiB (anon %.1f KiB)", r.RSSPerDeviceKiB, r.AnonPerDeviceKiB)
	row("relay threads idle/online", "%d / %d", r.ThreadsIdle, r.ThreadsOnline)
	row("connect CPU", "%.2f s = %.2f ms/device; %.2f ms without %d device-list polls of %.1f ms",
		r.ConnectCPUSeconds, r.ConnectCPUPerDeviceMs, r.ConnectCPUPerDeviceNetMs, r.ListCalls, r.ListCallCPUMs)
	row("handshake CPU per device", "%.2f ms (connect CPU without the polls and the steady-state traffic of %.0f device-seconds online)",
		r.HandshakeCPUPerDeviceMs, r.ConnectDeviceSeconds)
	row("steady-state CPU", "%.2f%% of a core over %.0f s = %.2f µs/s per device", r.SteadyCPUPercent, r.WindowSeconds, r.SteadyCPUPerDeviceUsPerS)
	row("offline in window / online after", "%d / %d", r.OfflineInWindow, r.OnlineAfterWindow)
	row("devicesim RSS", "%s (%.0f KiB/device)", mib(r.SimRSSKiB), float64(r.SimRSSKiB)/float64(max(r.Devices, 1)))
	return tw.Flush()
}

// mib formats KiB as MiB.
func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

// secondsOrDash formats seconds, or "-" if not reached.
func secondsOrDash(ok bool, s float64) string {
	if !ok {
		return "-"
	}
	return fmt.Sprintf("%.1f s", s)
}

// round rounds x to digits decimals, for logs.
func round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}
