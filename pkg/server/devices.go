package server

import (
	"errors"
	"net/http"
	"strings"

	"github.com/blindrelay/blindrelay/pkg/keystore"
)

// forgetDeletedDevices wraps the API so that a device an owner deleted
// (DELETE /api/v1/devices/{id} answered 204 and the device is gone from
// the store; a shared user's DELETE only removes their access) is
// forgotten by the management tunnel at once: its peer leaves
// wireguard-go, its control connection ends and the relay forgets its
// endpoint. Without this the device, whose keepalives still authenticate,
// would stay loaded and online until this process ends.
//
// It stands in for a hook the API does not have yet.
func (s *Server) forgetDeletedDevices(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ok := deletedDevice(r)
		if !ok {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status != http.StatusNoContent {
			return
		}
		if _, err := s.store.DeviceByID(r.Context(), id); errors.Is(err, keystore.ErrDeviceNotFound) {
			s.udp.mgmt.RemoveDevice(id)
		}
	})
}

// deletedDevice returns the device id of a DELETE /api/v1/devices/{id}.
func deletedDevice(r *http.Request) (string, bool) {
	if r.Method != http.MethodDelete {
		return "", false
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/api/v1/devices/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", false
	}
	return id, true
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
