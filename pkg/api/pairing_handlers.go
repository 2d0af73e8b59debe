package api

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/blindrelay/blindrelay/pkg/keystore"
)

// The handlers of /api/v1/pairing-tokens. All run behind authenticated.
// The relay makes the secret and keeps only its hash; the client builds the
// token string a device takes (with the user's public keys it verified
// itself, so that the relay cannot swap them).

func (s *server) createPairingToken(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	req, err := decode[createPairingTokenRequest](r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	ttl, err := checkTokenRequest(&req)
	if err != nil {
		s.error(w, r, err)
		return
	}
	now := s.now()
	secret, hash := newPairingSecret()
	t := &keystore.PairingToken{
		ID: newID("pt_"), TokenHash: hash, UserID: a.user.ID, Name: req.Name,
		MaxUses: req.MaxUses, ExpiresAt: now.Add(ttl), CreatedAt: now,
	}
	if err := s.devices.CreatePairingToken(r.Context(), t); err != nil {
		s.error(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "pairing token created", "token", t, "max_uses", t.MaxUses, "expires_at", t.ExpiresAt)
	out := newPairingTokenJSON(t, now)
	out.Secret = secret
	writeJSON(w, http.StatusCreated, out)
}

func (s *server) pairingTokens(w http.ResponseWriter, r *http.Request) {
	list, err := s.devices.PairingTokens(r.Context(), auth(r).user.ID)
	if err != nil {
		s.error(w, r, err)
		return
	}
	now := s.now()
	out := make([]pairingTokenJSON, len(list))
	for i, t := range list {
		out[i] = newPairingTokenJSON(t, now)
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *server) revokePairingToken(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	id := chi.URLParam(r, "id")
	if err := s.devices.RevokePairingToken(r.Context(), a.user.ID, id, s.now()); err != nil {
		s.error(w, r, err)
		return
	}
	s.log.InfoContext(r.Context(), "pairing token revoked", "user_id", a.user.ID, "token_id", id)
	w.WriteHeader(http.StatusNoContent)
}
