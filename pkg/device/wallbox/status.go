package wallbox

import (
	"hash/fnv"
	"math"
	"sync"
	"time"
)

// Charging states, as Status.State reports them.
const (
	StateReady     = "ready"     // no vehicle
	StateConnected = "connected" // vehicle plugged in, not charging (yet, or charging disabled)
	StateCharging  = "charging"
	StateFinished  = "finished" // vehicle full, still plugged in
)

// The simulated charging cycle: every device runs it with its own phase
// offset (from its UID), so that a fleet does not change state in step.
const (
	cycle           = 180 * time.Second
	connectAt       = 20 * time.Second  // a vehicle arrives
	chargeAt        = 30 * time.Second  // charging starts
	finishAt        = 150 * time.Second // the vehicle is full
	rampUp          = 5 * time.Second   // power rises over this much after chargeAt
	lineVoltage     = 230.0             // volts per phase
	phases          = 3
	maxStepsAtATime = 3600 // energy integration steps per advance; longer gaps are skipped
)

// Status is the wallbox's live state, as GET /api/status and the /ws push
// carry it.
type Status struct {
	UID              string    `json:"uid"`
	Firmware         string    `json:"firmware"`
	State            string    `json:"state"`              // StateReady, StateConnected, StateCharging or StateFinished
	ChargingEnabled  bool      `json:"charging_enabled"`   // a setting: false keeps a plugged-in vehicle at StateConnected
	MaxCurrentA      int       `json:"max_current_a"`      // a setting, 6..32 A per phase
	CurrentA         float64   `json:"current_a"`          // per phase
	PowerW           int       `json:"power_w"`            // total over three phases
	SessionEnergyKWh float64   `json:"session_energy_kwh"` // charged since the vehicle arrived
	EnergyKWh        float64   `json:"energy_kwh"`         // the meter: everything ever charged
	UptimeS          int64     `json:"uptime_s"`
	Time             time.Time `json:"time"`
}

// Settings are what the Digest-protected settings page changes.
type Settings struct {
	MaxCurrentA     int // 6..32
	ChargingEnabled bool
}

// Settings limits.
const (
	MinCurrentA     = 6
	MaxCurrentA     = 32
	defaultCurrentA = 16
)

// sim is the simulated charger. Its values are a function of the clock and
// the settings; energy is integrated lazily whenever someone looks.
type sim struct {
	uid, firmware string
	offset        time.Duration // phase of this device's cycle
	started       time.Time

	mu       sync.Mutex
	settings Settings  // guarded by mu
	last     time.Time // guarded by mu: the instant energy was integrated up to
	meterWh  float64   // guarded by mu
	session  float64   // guarded by mu: Wh since the vehicle arrived
}

func newSim(uid, firmware string, now time.Time) *sim {
	h := fnv.New64a()
	h.Write([]byte(uid))
	sum := h.Sum64()
	return &sim{
		uid:      uid,
		firmware: firmware,
		offset:   time.Duration(sum % uint64(cycle)),
		started:  now,
		settings: Settings{MaxCurrentA: defaultCurrentA, ChargingEnabled: true},
		last:     now,
		// A meter that has seen some use: 100..1100 kWh.
		meterWh: 100e3 + float64(sum>>32%1000e3),
	}
}

// pos is where in the cycle t lies.
func (s *sim) pos(t time.Time) time.Duration {
	return (time.Duration(t.UnixNano()) + s.offset) % cycle
}

// stateAt returns the state and total power at t under settings st.
func (s *sim) stateAt(t time.Time, st Settings) (string, float64) {
	p := s.pos(t)
	switch {
	case p < connectAt:
		return StateReady, 0
	case p < chargeAt:
		return StateConnected, 0
	case p < finishAt:
		if !st.ChargingEnabled {
			return StateConnected, 0
		}
		full := float64(st.MaxCurrentA) * lineVoltage * phases
		// A little ripple, as a real vehicle's charger draws.
		w := full * (0.96 + 0.03*math.Sin(float64(t.UnixNano())/7e9))
		if in := p - chargeAt; in < rampUp {
			w *= float64(in) / float64(rampUp)
		}
		return StateCharging, w
	default:
		return StateFinished, 0
	}
}

// advance integrates energy up to now. The caller holds s.mu.
func (s *sim) advance(now time.Time) {
	if !now.After(s.last) {
		return
	}
	if now.Sub(s.last) > maxStepsAtATime*time.Second {
		s.last = now.Add(-maxStepsAtATime * time.Second)
	}
	for s.last.Before(now) {
		step := min(time.Second, now.Sub(s.last))
		if s.pos(s.last) < connectAt { // no vehicle: the next session starts at zero
			s.session = 0
		}
		_, w := s.stateAt(s.last, s.settings)
		wh := w * step.Hours()
		s.meterWh += wh
		s.session += wh
		s.last = s.last.Add(step)
	}
}

// status returns the status at now.
func (s *sim) status(now time.Time) Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(now)
	state, w := s.stateAt(now, s.settings)
	return Status{
		UID:              s.uid,
		Firmware:         s.firmware,
		State:            state,
		ChargingEnabled:  s.settings.ChargingEnabled,
		MaxCurrentA:      s.settings.MaxCurrentA,
		CurrentA:         math.Round(w/lineVoltage/phases*100) / 100,
		PowerW:           int(math.Round(w)),
		SessionEnergyKWh: math.Round(s.session) / 1000,
		EnergyKWh:        math.Round(s.meterWh) / 1000,
		UptimeS:          int64(now.Sub(s.started) / time.Second),
		Time:             now.UTC().Truncate(time.Second),
	}
}

func (s *sim) getSettings() Settings {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.settings
}

// setSettings changes the settings from now on.
func (s *sim) setSettings(now time.Time, st Settings) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance(now)
	s.settings = st
}
