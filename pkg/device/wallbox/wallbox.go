package wallbox

import (
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Defaults of Config.
const (
	DefaultUser         = "admin"
	DefaultPassword     = "admin"
	DefaultFirmware     = "warp2 2.6.1 (devicesim)"
	DefaultPushInterval = time.Second
)

// Config describes one emulated wallbox.
type Config struct {
	UID      string // shown on the page and in Status; also the Digest realm
	Firmware string // "" means DefaultFirmware

	// User and Password guard /settings with Digest auth; "" means
	// DefaultUser and DefaultPassword.
	User, Password string

	// PushInterval is how often /ws pushes the status; 0 means
	// DefaultPushInterval.
	PushInterval time.Duration

	// Logger receives the UI's (few) log lines; nil discards them.
	Logger *slog.Logger

	// NowFunc is the clock; nil means time.Now.
	NowFunc func() time.Time
}

// Wallbox is an emulated wallbox's web UI, an http.Handler. It is safe for
// concurrent use.
type Wallbox struct {
	cfg    Config
	log    *slog.Logger
	sim    *sim
	sums   sumCache
	digest *digestAuth
	mux    *http.ServeMux
}

// New returns the UI of the wallbox cfg describes.
func New(cfg Config) *Wallbox {
	if cfg.Firmware == "" {
		cfg.Firmware = DefaultFirmware
	}
	if cfg.User == "" {
		cfg.User = DefaultUser
	}
	if cfg.Password == "" {
		cfg.Password = DefaultPassword
	}
	if cfg.PushInterval <= 0 {
		cfg.PushInterval = DefaultPushInterval
	}
	if cfg.NowFunc == nil {
		cfg.NowFunc = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Wallbox{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "wallbox", "uid", cfg.UID),
		sim:    newSim(cfg.UID, cfg.Firmware, cfg.NowFunc()),
		digest: newDigestAuth(cfg.UID, cfg.User, cfg.Password, cfg.NowFunc),
		mux:    http.NewServeMux(),
	}
	w.mux.HandleFunc("GET /{$}", w.handleIndex)
	w.mux.HandleFunc("GET /api/status", w.handleStatus)
	w.mux.HandleFunc("GET /ws", w.handleWS)
	w.mux.HandleFunc("GET /api/download", w.handleDownload)
	w.mux.HandleFunc("POST /api/upload", w.handleUpload)
	w.mux.Handle("GET /settings", w.digest.wrap(http.HandlerFunc(w.handleSettings)))
	w.mux.Handle("POST /settings", w.digest.wrap(http.HandlerFunc(w.handleSettingsPost)))
	return w
}

// ServeHTTP serves the UI's routes (see the package documentation).
func (w *Wallbox) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Server", "devicesim-wallbox")
	w.mux.ServeHTTP(rw, r)
}

// Status returns the wallbox's status now.
func (w *Wallbox) Status() Status {
	return w.sim.status(w.cfg.NowFunc())
}

func (w *Wallbox) handleStatus(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(rw).Encode(w.Status())
}

func (w *Wallbox) handleIndex(rw http.ResponseWriter, r *http.Request) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	if err := indexPage.Execute(rw, w.Status()); err != nil {
		w.log.Debug("write status page", "error", err)
	}
}

func (w *Wallbox) handleSettings(rw http.ResponseWriter, r *http.Request) {
	w.writeSettings(rw, "")
}

func (w *Wallbox) writeSettings(rw http.ResponseWriter, message string) {
	rw.Header().Set("Content-Type", "text/html; charset=utf-8")
	rw.Header().Set("Cache-Control", "no-store")
	st := w.sim.getSettings()
	err := settingsPage.Execute(rw, map[string]any{
		"UID": w.cfg.UID, "Settings": st, "Message": message,
		"Min": MinCurrentA, "Max": MaxCurrentA,
	})
	if err != nil {
		w.log.Debug("write settings page", "error", err)
	}
}

func (w *Wallbox) handleSettingsPost(rw http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(rw, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(rw, "bad form: "+err.Error(), http.StatusBadRequest)
		return
	}
	st := w.sim.getSettings()
	if v := r.PostForm.Get("max_current_a"); v != "" {
		a, err := strconv.Atoi(v)
		if err != nil || a < MinCurrentA || a > MaxCurrentA {
			rw.WriteHeader(http.StatusBadRequest)
			w.writeSettings(rw, "The current must be a whole number from 6 to 32 A.")
			return
		}
		st.MaxCurrentA = a
	}
	st.ChargingEnabled = r.PostForm.Get("charging_enabled") != ""
	w.sim.setSettings(w.cfg.NowFunc(), st)
	w.log.Info("settings changed", "max_current_a", st.MaxCurrentA, "charging_enabled", st.ChargingEnabled)
	w.writeSettings(rw, "Saved.")
}

var indexPage = template.Must(template.New("index").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.UID}} – Wallbox</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.4rem; }
table { border-collapse: collapse; }
td, th { padding: .3rem 1rem .3rem 0; text-align: left; }
.state { font-weight: bold; }
footer { margin-top: 2rem; font-size: .85rem; color: #666; }
</style>
</head>
<body>
<h1>Wallbox <span id="uid">{{.UID}}</span></h1>
<table>
<tr><th>State</th><td class="state" id="state">{{.State}}</td></tr>
<tr><th>Power</th><td><span id="power_w">{{.PowerW}}</span> W</td></tr>
<tr><th>Current per phase</th><td><span id="current_a">{{.CurrentA}}</span> A (max <span id="max_current_a">{{.MaxCurrentA}}</span> A)</td></tr>
<tr><th>Energy this session</th><td><span id="session_energy_kwh">{{.SessionEnergyKWh}}</span> kWh</td></tr>
<tr><th>Meter</th><td><span id="energy_kwh">{{.EnergyKWh}}</span> kWh</td></tr>
<tr><th>Uptime</th><td><span id="uptime_s">{{.UptimeS}}</span> s</td></tr>
<tr><th>Firmware</th><td id="firmware">{{.Firmware}}</td></tr>
</table>
<p><a href="settings">Settings</a> · <a href="api/status">Status JSON</a> ·
<a href="api/download?size=10485760">Download 10 MB</a></p>
<form id="upload"><input type="file" id="file"> <button>Upload</button> <span id="upload_result"></span></form>
<footer>Live: <span id="live">connecting…</span></footer>
<script>
(function () {
  var fields = ["state", "power_w", "current_a", "max_current_a", "session_energy_kwh", "energy_kwh", "uptime_s", "firmware"];
  function show(s) {
    fields.forEach(function (f) { if (f in s) document.getElementById(f).textContent = s[f]; });
  }
  function connect() {
    var u = new URL("ws", location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    var ws = new WebSocket(u);
    ws.onopen = function () { document.getElementById("live").textContent = "connected"; };
    ws.onmessage = function (e) { try { show(JSON.parse(e.data)); } catch (_) {} };
    ws.onclose = function () {
      document.getElementById("live").textContent = "reconnecting…";
      setTimeout(connect, 2000);
    };
  }
  connect();
  document.getElementById("upload").onsubmit = function (e) {
    e.preventDefault();
    var f = document.getElementById("file").files[0];
    if (!f) return;
    fetch("api/upload", {method: "POST", body: f}).then(function (r) { return r.json(); }).then(function (r) {
      document.getElementById("upload_result").textContent = r.size + " bytes, SHA-256 " + r.sha256;
    });
  };
})();
</script>
</body>
</html>
`))

var settingsPage = template.Must(template.New("settings").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.UID}} – Settings</title>
<style>body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }</style>
</head>
<body>
<h1>Settings of {{.UID}}</h1>
{{with .Message}}<p id="message">{{.}}</p>{{end}}
<form method="post" action="settings">
<p><label>Maximum current per phase (A):
<input type="number" name="max_current_a" min="{{.Min}}" max="{{.Max}}" value="{{.Settings.MaxCurrentA}}"></label></p>
<p><label><input type="checkbox" name="charging_enabled" value="1"{{if .Settings.ChargingEnabled}} checked{{end}}> Charging enabled</label></p>
<p><button>Save</button></p>
</form>
<p><a href="./">Back to the status page</a></p>
</body>
</html>
`))
