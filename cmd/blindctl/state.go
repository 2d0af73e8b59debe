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
// e-mail address, the session token and the pinned TLS certificates. Never
// the password or any key. The file is mode 0600 in a 0700 directory,
// because the token is as good as a log-in until it expires or the user
// logs out.
type state struct {
	Server       string `json:"server,omitempty"`
	Email        string `json:"email,omitempty"`
	SessionToken string `json:"session_token,omitempty"`
	// TLSPins maps a relay's host:port (pinKey) to the SHA-256
	// fingerprint of the leaf certificate trusted for it (see certs.go).
	// Pins outlive log-outs and switches to other relays.
	TLSPins map[string]string `json:"tls_pins,omitempty"`
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
