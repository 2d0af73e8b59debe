package api

import (
	"net/http"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// The handlers of /api/v1/me. All run behind authenticated.

func (s *server) me(w http.ResponseWriter, r *http.Request) {
	u, err := s.accounts.Me(r.Context(), auth(r).session)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newUserJSON(u))
}

func (s *server) keys(w http.ResponseWriter, r *http.Request) {
	c, err := s.accounts.Keys(r.Context(), auth(r).session)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, keysResponse{
		Salt: c.Salt, KDF: c.KDF, BoxPublicKey: c.BoxPublicKey,
		SignPublicKey: c.SignPublicKey, EncryptedPrivateKeys: c.EncryptedPrivateKeys,
	})
}

func (s *server) setLanguage(w http.ResponseWriter, r *http.Request) {
	req, err := decode[languageRequest](r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	u, err := s.accounts.SetLanguage(r.Context(), auth(r).session, req.Language)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, newUserJSON(u))
}

func (s *server) changePassword(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	req, err := decode[passwordRequest](r)
	if err == nil {
		err = s.limits.login.allowAccount(a.user.Email)
	}
	if err == nil {
		err = s.accounts.ChangePassword(r.Context(), a.session, account.PasswordChangeInput{
			LoginKey: req.LoginKey, Salt: req.Salt, KDF: req.KDF,
			NewLoginKey: req.NewLoginKey, EncryptedPrivateKeys: req.EncryptedPrivateKeys,
		})
	}
	s.answer(w, r, err, http.StatusOK, statusResponse{Status: "changed"})
}

func (s *server) changeEmail(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	req, err := decode[emailChangeRequest](r)
	if err == nil {
		err = s.limits.emailChange.allowAccount(a.user.Email)
	}
	if err == nil {
		err = s.accounts.RequestEmailChange(r.Context(), a.session, account.EmailChangeInput{
			NewEmail: req.NewEmail, LoginKey: req.LoginKey,
		})
	}
	s.answer(w, r, err, http.StatusAccepted, checkEmail)
}

func (s *server) deleteAccount(w http.ResponseWriter, r *http.Request) {
	a := auth(r)
	req, err := decode[loginKeyRequest](r)
	if err == nil {
		err = s.limits.login.allowAccount(a.user.Email)
	}
	if err == nil {
		err = s.accounts.Delete(r.Context(), a.session, req.LoginKey)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	clearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
}
