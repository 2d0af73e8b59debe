package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite testdata/command-v1.json")

// The owner key of the tests and of the published test vector.
var (
	testOwnerSeed = sha256.Sum256([]byte("blindrelay owner command test key"))
	testOwner     = ed25519.NewKeyFromSeed(testOwnerSeed[:])
	testOwnerPub  = testOwner.Public().(ed25519.PublicKey)
	testNow       = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
)

func testAddUser() Command {
	box := sha256.Sum256([]byte("box public key"))
	return Command{
		ID: "cmd-1", Kind: CommandAddUser, DeviceID: "dev-42", UserID: "user-7",
		BoxPublicKey: box[:], Slots: 4, Counter: 10, Expires: testNow.Add(time.Hour),
	}
}

func testRemoveUser() Command {
	return Command{ID: "cmd-2", Kind: CommandRemoveUser, DeviceID: "dev-42", UserID: "user-7", Counter: 11, Expires: testNow.Add(time.Hour)}
}

func TestSignVerify(t *testing.T) {
	t.Parallel()
	for _, c := range []Command{testAddUser(), testRemoveUser()} {
		sc := SignCommand(testOwner, c)
		got, err := VerifyCommand(testOwnerPub, sc, testNow)
		if err != nil {
			t.Fatalf("%s: %v", c.Kind, err)
		}
		if diff := cmp.Diff(c, got); diff != "" {
			t.Errorf("%s (-signed +verified):\n%s", c.Kind, diff)
		}
		// Through a frame and back.
		f, err := EncodeFrame(sc)
		if err != nil {
			t.Fatal(err)
		}
		m, err := DecodeFrame(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := VerifyCommand(testOwnerPub, m.(SignedCommand), testNow); err != nil {
			t.Errorf("%s after a frame round trip: %v", c.Kind, err)
		}
	}
}

func TestSignCommandNormalizesExpires(t *testing.T) {
	t.Parallel()
	c := testAddUser()
	c.Expires = time.Date(2030, 1, 1, 3, 0, 0, 999_999_999, time.FixedZone("CET", 3600))
	sc := SignCommand(testOwner, c)
	if want := time.Date(2030, 1, 1, 2, 0, 0, 0, time.UTC); sc.Command.Expires != want {
		t.Errorf("Expires = %v, want %v", sc.Command.Expires, want)
	}
	// A relay that adds a fraction of a second gains nothing.
	sc.Command.Expires = sc.Command.Expires.Add(999 * time.Millisecond)
	got, err := VerifyCommand(testOwnerPub, sc, testNow)
	if err != nil || got.Expires != time.Date(2030, 1, 1, 2, 0, 0, 0, time.UTC) {
		t.Errorf("VerifyCommand = %v, %v", got.Expires, err)
	}
}

// TestVerifyCommandTampered: the relay cannot change any field.
func TestVerifyCommandTampered(t *testing.T) {
	t.Parallel()
	tamper := map[string]func(*SignedCommand){
		"id":             func(s *SignedCommand) { s.Command.ID = "cmd-9" },
		"kind":           func(s *SignedCommand) { s.Command.Kind = CommandRemoveUser },
		"device":         func(s *SignedCommand) { s.Command.DeviceID = "dev-43" },
		"user":           func(s *SignedCommand) { s.Command.UserID = "user-8" },
		"box key":        func(s *SignedCommand) { s.Command.BoxPublicKey[0] ^= 1 },
		"box key length": func(s *SignedCommand) { s.Command.BoxPublicKey = s.Command.BoxPublicKey[:31] },
		"slots":          func(s *SignedCommand) { s.Command.Slots = 5 },
		"slots wrap":     func(s *SignedCommand) { s.Command.Slots = 4 + 1<<32 },
		"counter":        func(s *SignedCommand) { s.Command.Counter++ },
		"expires":        func(s *SignedCommand) { s.Command.Expires = s.Command.Expires.Add(time.Second) },
		"signature":      func(s *SignedCommand) { s.Signature[10] ^= 1 },
		"no signature":   func(s *SignedCommand) { s.Signature = nil },
		"field shift":    func(s *SignedCommand) { s.Command.ID, s.Command.DeviceID = "cmd-1dev-42", "" },
	}
	for name, f := range tamper {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			sc := SignCommand(testOwner, testAddUser())
			f(&sc)
			if c, err := VerifyCommand(testOwnerPub, sc, testNow); !errors.Is(err, ErrBadSignature) {
				t.Errorf("VerifyCommand = %+v, %v; want ErrBadSignature", c, err)
			}
		})
	}
}

func TestVerifyCommandErrors(t *testing.T) {
	t.Parallel()
	other := ed25519.NewKeyFromSeed(make([]byte, 32))
	signed := func(edit func(*Command)) SignedCommand {
		c := testAddUser()
		edit(&c)
		return SignCommand(testOwner, c)
	}
	tests := []struct {
		name  string
		owner ed25519.PublicKey
		sc    SignedCommand
		now   time.Time
		want  error
	}{
		{"other owner", other.Public().(ed25519.PublicKey), signed(func(*Command) {}), testNow, ErrBadSignature},
		{"short owner key", testOwnerPub[:31], signed(func(*Command) {}), testNow, ErrBadSignature},
		{"nil owner key", nil, signed(func(*Command) {}), testNow, ErrBadSignature},
		{"signed by another", testOwnerPub, SignCommand(other, testAddUser()), testNow, ErrBadSignature},
		{"expires now", testOwnerPub, signed(func(*Command) {}), testNow.Add(time.Hour), ErrCommandExpired},
		{"expired", testOwnerPub, signed(func(*Command) {}), testNow.Add(2 * time.Hour), ErrCommandExpired},
		{"format version 2", testOwnerPub, func() SignedCommand { s := signed(func(*Command) {}); s.Version = 2; return s }(), testNow, ErrUnsupportedCommand},
		{"format version 0", testOwnerPub, func() SignedCommand { s := signed(func(*Command) {}); s.Version = 0; return s }(), testNow, ErrUnsupportedCommand},
		{"unknown kind", testOwnerPub, signed(func(c *Command) { c.Kind = "rename_device" }), testNow, ErrUnsupportedCommand},
		{"empty id", testOwnerPub, signed(func(c *Command) { c.ID = "" }), testNow, ErrInvalidCommand},
		{"long user", testOwnerPub, signed(func(c *Command) { c.UserID = strings.Repeat("u", 257) }), testNow, ErrInvalidCommand},
		{"empty device", testOwnerPub, signed(func(c *Command) { c.DeviceID = "" }), testNow, ErrInvalidCommand},
		{"no box key", testOwnerPub, signed(func(c *Command) { c.BoxPublicKey = nil }), testNow, ErrInvalidCommand},
		{"zero slots", testOwnerPub, signed(func(c *Command) { c.Slots = 0 }), testNow, ErrInvalidCommand},
		{"too many slots", testOwnerPub, signed(func(c *Command) { c.Slots = MaxCommandSlots + 1 }), testNow, ErrInvalidCommand},
		{"negative slots", testOwnerPub, signed(func(c *Command) { c.Slots = -1 }), testNow, ErrInvalidCommand},
		{"zero counter", testOwnerPub, signed(func(c *Command) { c.Counter = 0 }), testNow, ErrInvalidCommand},
		{"remove with slots", testOwnerPub, signed(func(c *Command) { c.Kind = CommandRemoveUser; c.BoxPublicKey = nil }), testNow, ErrInvalidCommand},
		{"remove with key", testOwnerPub, signed(func(c *Command) { c.Kind = CommandRemoveUser; c.Slots = 0 }), testNow, ErrInvalidCommand},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, err := VerifyCommand(tt.owner, tt.sc, tt.now)
			if !errors.Is(err, tt.want) {
				t.Errorf("VerifyCommand = %+v, %v; want %v", c, err, tt.want)
			}
			if err != nil && c.ID != "" {
				t.Errorf("a failed verification returned command %q", c.ID)
			}
		})
	}
	// Validate on its own.
	if err := testAddUser().Validate(); err != nil {
		t.Errorf("Validate(add_user): %v", err)
	}
	if err := testRemoveUser().Validate(); err != nil {
		t.Errorf("Validate(remove_user): %v", err)
	}
	bad := testAddUser()
	bad.ID = "\xff"
	if err := bad.Validate(); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("Validate(invalid UTF-8 id): %v", err)
	}
	bad = testAddUser()
	bad.Expires = time.Time{}
	if err := bad.Validate(); !errors.Is(err, ErrInvalidCommand) {
		t.Errorf("Validate(no expiry): %v", err)
	}
}

// commandVector is the published test vector for other implementations of
// the signed encoding (device firmware): testdata/command-v1.json.
type commandVector struct {
	Comment       string `json:"comment"`
	OwnerSeedHex  string `json:"owner_ed25519_seed_hex"`
	OwnerPubHex   string `json:"owner_ed25519_public_hex"`
	CanonicalHex  string `json:"canonical_hex"`
	SignatureHex  string `json:"signature_hex"`
	FramePayload  string `json:"frame_payload"`
	FrameBytesHex string `json:"frame_hex"`
}

func TestCommandVector(t *testing.T) {
	t.Parallel()
	sc := SignCommand(testOwner, testAddUser())
	f, err := EncodeFrame(sc)
	if err != nil {
		t.Fatal(err)
	}
	var frame strings.Builder
	if err := WriteFrame(&frame, f); err != nil {
		t.Fatal(err)
	}
	got := commandVector{
		Comment:       "blindrelay owner command v1: sign canonical_hex with the seed's Ed25519 key; frame_hex is the Command frame carrying frame_payload",
		OwnerSeedHex:  hex.EncodeToString(testOwnerSeed[:]),
		OwnerPubHex:   hex.EncodeToString(testOwnerPub),
		CanonicalHex:  hex.EncodeToString(sc.Command.canonical()),
		SignatureHex:  hex.EncodeToString(sc.Signature),
		FramePayload:  string(f.Payload),
		FrameBytesHex: hex.EncodeToString([]byte(frame.String())),
	}
	path := filepath.Join("testdata", "command-v1.json")
	if *update {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestCommandVector -update)", err)
	}
	var want commandVector
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("the signed encoding changed (-testdata +now):\n%s", diff)
	}
	// The published frame verifies.
	var pub SignedCommand
	if err := json.Unmarshal([]byte(want.FramePayload), &pub); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyCommand(testOwnerPub, pub, testNow); err != nil {
		t.Errorf("published vector: %v", err)
	}
	if !strings.HasPrefix(want.CanonicalHex, hex.EncodeToString([]byte(commandDomain))) {
		t.Error("canonical encoding does not start with the domain")
	}
}

// FuzzVerifyCommand: VerifyCommand never panics, and accepts only commands
// the owner signed: with a deterministic Ed25519, re-signing what it
// returns gives the same signature.
func FuzzVerifyCommand(f *testing.F) {
	for _, c := range []Command{testAddUser(), testRemoveUser()} {
		sc := SignCommand(testOwner, c)
		b, err := json.Marshal(sc)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, testNow.Unix())
		f.Add(b, testNow.Add(2*time.Hour).Unix())
	}
	f.Add([]byte(`{"v":1,"command":{"id":"x","kind":"add_user","expires":"2030-01-01T00:00:00Z"},"signature":""}`), int64(0))
	f.Add([]byte(`{"v":2}`), int64(0))
	f.Add([]byte(`null`), int64(-1))
	f.Fuzz(func(t *testing.T, payload []byte, now int64) {
		m, err := DecodeFrame(Frame{Type: FrameCommand, Payload: payload})
		if err != nil {
			return
		}
		sc := m.(SignedCommand)
		c, err := VerifyCommand(testOwnerPub, sc, time.Unix(now, 0))
		if err != nil {
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("verified an invalid command: %v", err)
		}
		if !time.Unix(now, 0).Before(c.Expires) {
			t.Fatalf("verified a command expired at %v", c.Expires)
		}
		if again := SignCommand(testOwner, c); string(again.Signature) != string(sc.Signature) {
			t.Fatalf("verified a signature the owner did not make: %+v", sc)
		}
	})
}
