package api

import (
	"net/http"

	"github.com/blindrelay/blindrelay/pkg/account"
)

// The handlers of /api/v1/auth. Each decodes, spends its per-account rate
// limit where it has one, calls the service and answers.

func (s *server) salt(w http.ResponseWriter, r *http.Request) {
	req, err := decode[emailRequest](r)
	if err == nil {
		err = s.limits.salt.allowAccount(req.Email)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	salt, kdf, err := s.accounts.Salt(r.Context(), req.Email)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, saltResponse{Salt: salt, KDF: kdf})
}

func (s *server) register(w http.ResponseWriter, r *http.Request) {
	req, err := decode[registerRequest](r)
	if err == nil {
		err = s.limits.register.allowAccount(req.Email)
	}
	if err == nil {
		err = s.accounts.Register(r.Context(), account.RegisterInput{
			Email:       req.Email,
			Language:    requestLanguage(r, req.Language),
			Credentials: req.credentialsJSON.account(),
		})
	}
	s.answer(w, r, err, http.StatusAccepted, checkEmail)
}

func (s *server) verify(w http.ResponseWriter, r *http.Request) {
	req, err := decode[tokenRequest](r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	res, err := s.accounts.Verify(r.Context(), req.Token)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, verifyResponse{Status: "verified", Email: res.Email, Purpose: res.Purpose})
}

func (s *server) resend(w http.ResponseWriter, r *http.Request) {
	req, err := decode[emailRequest](r)
	if err == nil {
		err = s.limits.resend.allowAccount(req.Email)
	}
	if err == nil {
		err = s.accounts.Resend(r.Context(), req.Email)
	}
	s.answer(w, r, err, http.StatusAccepted, checkEmail)
}

func (s *server) login(w http.ResponseWriter, r *http.Request) {
	req, err := decode[loginRequest](r)
	if err == nil {
		err = s.limits.login.allowAccount(req.Email)
	}
	if err != nil {
		s.error(w, r, err)
		return
	}
	res, err := s.accounts.Login(r.Context(), req.Email, req.LoginKey)
	if err != nil {
		s.error(w, r, err)
		return
	}
	setSessionCookie(w, res.Token, res.Session.ExpiresAt)
	writeJSON(w, http.StatusOK, loginResponse{User: newUserJSON(res.User), ExpiresAt: res.Session.ExpiresAt.UTC()})
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	if err := s.accounts.Logout(r.Context(), auth(r).session); err != nil {
		s.error(w, r, err)
		return
	}
	clearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
}

func (s *server) logoutAll(w http.ResponseWriter, r *http.Request) {
	n, err := s.accounts.LogoutAll(r.Context(), auth(r).session)
	if err != nil {
		s.error(w, r, err)
		return
	}
	clearSessionCookie(w)
	writeJSON(w, http.StatusOK, logoutAllResponse{SessionsEnded: n})
}

func (s *server) requestReset(w http.ResponseWriter, r *http.Request) {
	req, err := decode[emailLanguageRequest](r)
	if err == nil {
		err = s.limits.reset.allowAccount(req.Email)
	}
	if err == nil {
		err = s.accounts.RequestReset(r.Context(), req.Email, requestLanguage(r, req.Language))
	}
	s.answer(w, r, err, http.StatusAccepted, checkEmail)
}

func (s *server) resetInfo(w http.ResponseWriter, r *http.Request) {
	req, err := decode[tokenRequest](r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	info, err := s.accounts.ResetInfo(r.Context(), req.Token)
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, resetInfoResponse{Email: info.Email, BoxPublicKey: info.BoxPublicKey, SignPublicKey: info.SignPublicKey})
}

func (s *server) completeReset(w http.ResponseWriter, r *http.Request) {
	req, err := decode[completeResetRequest](r)
	if err != nil {
		s.error(w, r, err)
		return
	}
	kept, err := s.accounts.CompleteReset(r.Context(), account.CompleteResetInput{
		Token:       req.Token,
		KeepKeys:    req.KeepKeys,
		Credentials: req.credentialsJSON.account(),
		Signature:   req.Signature,
	})
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, completeResetResponse{Status: "reset", KeysKept: kept})
}

// answer writes v with status if err is nil, and the error otherwise.
func (s *server) answer(w http.ResponseWriter, r *http.Request, err error, status int, v any) {
	if err != nil {
		s.error(w, r, err)
		return
	}
	writeJSON(w, status, v)
}
