package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// stateFileName is the file in the state directory.
const stateFileName = "state.json"

// state is what blindctl remembers between runs: the relay, the account's
// e-mail address, the session token, the account's verified public keys and
// the pinned TLS certificates. Never the password or a private key. The file
// is mode 0600 in a 0700 directory, because the token is as good as a log-in
// until it expires or the user logs out.
type state struct {
	Server       string `json:"server,omitempty"`
	Email        string `json:"email,omitempty"`
	SessionToken string `json:"session_token,omitempty"`
	// Keys are the account's public keys as blindctl verified them, for
	// pairing tokens made without the password (see keys.go).
	Keys *verifiedKeys `json:"account_keys,omitempty"`
	// TLSPins maps a relay's host:port (pinKey) to the SHA-256
	// fingerprint of the leaf certificate trusted for it (see certs.go).
	// Pins outlive log-outs and switches to other relays.
	TLSPins map[string]string `json:"tls_pins,omitempty"`
}

// verifiedKeys are an account's public keys that blindctl checked itself:
// derived from private keys it decrypted with the password (log-in), read
// from the user's recovery file or made by it (password reset). They are
// public, but they must not come from the relay unchecked: a pairing token
// hands them to a device, which seals its key slots to them.
type verifiedKeys struct {
	// UserID is the account's id, when known (it is after a log-in).
	UserID string `json:"user_id,omitempty"`
	// Email is the account's address when the keys were verified.
	Email         string `json:"email,omitempty"`
	BoxPublicKey  []byte `json:"box_public_key"`
	SignPublicKey []byte `json:"sign_public_key"`
}

// usableFor reports whether the keys may be the ones of the user with id
// userID: they are set and not known to be another account's. The relay
// confirms them in the end (apiclient.NewPairingToken compares them with
// the account's).
func (k *verifiedKeys) usableFor(userID string) bool {
	return k != nil && len(k.BoxPublicKey) == 32 && len(k.SignPublicKey) == 32 && (k.UserID == "" || k.UserID == userID)
}

// loadState reads the state in dir; no file is an empty state.
func loadState(dir string) (*state, error) {
	path := filepath.Join(dir, stateFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &state{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read state %s: %w (delete the file to start afresh)", path, err)
	}
	return &st, nil
}

// forgetServer switches the state to another relay: the session of the old
// one must not be sent there.
func (st *state) forgetServer(server string) {
	st.Server = server
	st.SessionToken = ""
	st.Keys = nil // an account of the old relay
}

// setPin pins fp for the relay at key, or with fp "" forgets its pin.
func (st *state) setPin(key, fp string) {
	if fp == "" {
		delete(st.TLSPins, key)
		return
	}
	if st.TLSPins == nil {
		st.TLSPins = map[string]string{}
	}
	st.TLSPins[key] = fp
}

// save writes the state to dir atomically (a temporary file renamed over the
// old one), creating dir with mode 0700 if needed.
func (st *state) save(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	f, err := os.CreateTemp(dir, stateFileName+".*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	defer os.Remove(f.Name()) // fails harmlessly after the rename
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("save state: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	if err := os.Rename(f.Name(), filepath.Join(dir, stateFileName)); err != nil {
		return fmt.Errorf("save state: %w", err)
	}
	return nil
}
