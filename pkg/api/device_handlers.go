package api

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/blindrelay/blindrelay/pkg/keystore"
	"github.com/blindrelay/blindrelay/pkg/wire"
)

// The handlers of /api/v1/devices. A device registers either with a
// pairing token's secret (pairDevice, no session) or as its user
// (addDevice, with the session the device opened with the user's e-mail and
// password). Everything else runs behind authenticated and shows a user
// only the devices they have access to: a device of someone else is
// not_found, exactly like one that does not exist.

func (s *server) pairDevice(w http.ResponseWriter, r *http.Request) {
	req, err := decode[pairRequest](r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	hash, err := pairingSecretHash(req.Secret)
	if err == nil {
		sum := sha256.Sum256(hash) // a rate-limit key that is not the stored hash
		err = s.limits.pair.allowKey("token:" + hex.EncodeToString(sum[:8]))
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	now := s.now()
	dev, slots, err := newDevice(&req.deviceRequest, s.relay.PublicKey, now)
	if err != nil {
		s.error(w, r, err)
		return
	}
	du, err := s.devices.PairDevice(r.Context(), hash, now, dev, slots, req.SealedName)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.paired(w, r, dev, du, "token")
}

func (s *server) addDevice(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	req, err := decode[deviceRequest](r)
	if err == nil {
		err = s.limits.pair.allowKey("user:" + a.user.ID)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	dev, slots, err := newDevice(&req, s.relay.PublicKey, s.now())
	if err != nil {
		s.error(w, r, err)
		return
	}
	du, err := s.devices.AddDeviceForUser(r.Context(), a.user.ID, dev, slots, req.SealedName)
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.paired(w, r, dev, du, "password")
}

// paired answers a device that has just been stored.
func (s *server) paired(w http.ResponseWriter, r *http.Request, dev *keystore.Device, du *keystore.DeviceUser, how string) {
	s.log.InfoContext(r.Context(), "device paired", "device", dev, "user_id", du.UserID,
		"public_key", dev.PublicKey, "with", how)
	writeJSON(w, http.StatusCreated, pairResponse{
		DeviceID:       dev.ID,
		RelayPublicKey: s.relay.PublicKey,
		RelayEndpoint:  s.relay.Endpoint,
		MgmtAddr:       dev.MgmtAddr,
		RelayMgmtAddr:  wire.RelayMgmtAddr,
		ControlPort:    wire.ControlPort,
	})
}

func (s *server) listDevices(w http.ResponseWriter, r *http.Request) {
	user := auth(r).user.ID
	list, err := s.devices.DevicesForUser(r.Context(), user)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]deviceJSON, len(list))
	for i, ud := range list {
		slots, err := s.devices.KeySlots(r.Context(), ud.Device.ID, user)
		if err != nil {
			s.error(w, r, err) // the device went away meanwhile: ask again
			return
		}
		out[i] = s.deviceJSON(&ud.Device, &ud.Access, slots)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) device(w http.ResponseWriter, r *http.Request) {
	user := auth(r).user.ID
	id := chi.URLParam(r, "id")
	access, err := s.access(r, id, user)
	if err != nil {
		s.error(w, r, err)
		return
	}
	dev, err := s.devices.DeviceByID(r.Context(), id)
	if err != nil {
		s.error(w, r, err)
		return
	}
	slots, err := s.devices.KeySlots(r.Context(), id, user)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.deviceJSON(dev, access, slots))
}

// access returns the user's access to the device: keystore.ErrDeviceNotFound
// if there is none (or no device).
func (s *server) access(r *http.Request, deviceID, userID string) (*keystore.DeviceUser, error) {
	users, err := s.devices.DeviceUsers(r.Context(), deviceID)
	if err != nil {
		return nil, err
	}
	for i := range users {
		if users[i].UserID == userID {
			return &users[i], nil
		}
	}
	return nil, keystore.ErrDeviceNotFound
}

// deviceJSON is dev as the user with access and slots sees it.
func (s *server) deviceJSON(dev *keystore.Device, access *keystore.DeviceUser, slots []keystore.KeySlot) deviceJSON {
	return deviceJSON{
		ID:              dev.ID,
		UID:             dev.UID,
		PublicKey:       dev.PublicKey,
		Online:          dev.Online,
		LastSeenAt:      dev.LastSeenAt.UTC(),
		Firmware:        dev.Firmware,
		ProtocolVersion: dev.ProtocolVersion,
		Role:            access.Role,
		SealedName:      access.SealedName,
		CreatedAt:       dev.CreatedAt.UTC(),
		SlotsTotal:      len(slots),
		SlotsBusy:       s.leases.busy(dev.ID, slotIndexes(slots)),
	}
}

func slotIndexes(slots []keystore.KeySlot) []int {
	out := make([]int, len(slots))
	for i, sl := range slots {
		out[i] = sl.Index
	}
	return out
}

func (s *server) deviceSlots(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	slots, err := s.devices.KeySlots(r.Context(), id, auth(r).user.ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	out := make([]slotJSON, len(slots))
	for i, sl := range slots {
		out[i] = slotJSON{Index: sl.Index, BrowserPublicKey: sl.BrowserPublicKey, Sealed: sl.Sealed, Busy: s.leases.isBusy(id, sl.Index)}
	}
	writeJSON(w, http.StatusOK, out)
}

// deleteDevice removes the device for everyone if the user owns it, and
// otherwise only the user's own access. The user's (or everyone's)
// sessions with the device on this node end.
func (s *server) deleteDevice(w http.ResponseWriter, r *http.Request) {
	user := auth(r).user.ID
	id := chi.URLParam(r, "id")
	role, err := s.devices.DeviceUserAccess(r.Context(), id, user)
	if err != nil {
		s.error(w, r, err)
		return
	}
	ended := user // whose sessions end: the user's, or everyone's
	if role == keystore.RoleOwner {
		err, ended = s.devices.DeleteDevice(r.Context(), id), ""
	} else {
		err = s.devices.UnshareDevice(r.Context(), id, user)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	s.leases.cancel(id, ended)
	s.log.InfoContext(r.Context(), "device removed", "device_id", id, "user_id", user, "role", string(role))
	w.WriteHeader(http.StatusNoContent)
}
