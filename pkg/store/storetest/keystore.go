package storetest

import (
	"crypto/rand"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
)

// Store is a store of both domains, as pkg/store/sqlite and
// pkg/store/postgres are: the keystore tables refer to the users.
type Store interface {
	account.Store
	keystore.Store
}

// RunKeystore runs the conformance suite of keystore.Store. newStore must
// return a new, empty store of its own for every call and close it at the
// test's cleanup; the subtests run in parallel.
func RunKeystore(t *testing.T, newStore func(t *testing.T) Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"PairingTokens", testPairingTokens},
		{"RevokePairingToken", testRevokePairingToken},
		{"PairDevice", testPairDevice},
		{"PairDeviceTokenErrors", testPairDeviceTokenErrors},
		{"PairDeviceMultiUse", testPairDeviceMultiUse},
		{"PairDeviceConflict", testPairDeviceConflict},
		{"PairDeviceBadInput", testPairDeviceBadInput},
		{"PairDeviceConcurrent", testPairDeviceConcurrent},
		{"AddDeviceForUser", testAddDeviceForUser},
		{"DeviceNotFound", testDeviceNotFound},
		{"ShareDevice", testShareDevice},
		{"ShareDeviceErrors", testShareDeviceErrors},
		{"UnshareDevice", testUnshareDevice},
		{"UnshareCoOwnersConcurrent", testUnshareCoOwnersConcurrent},
		{"SetSealedLabel", testSetSealedLabel},
		{"DeleteDevice", testDeleteDevice},
		{"Presence", testPresence},
		{"DeviceByEndpoint", testDeviceByEndpoint},
		{"SetFirmware", testSetFirmware},
		{"DeleteUserDeviceAccess", testDeleteUserDeviceAccess},
		{"DeleteUserCascade", testDeleteUserCascade},
		{"KeystoreCanceledContext", testKeystoreCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore(t))
		})
	}
}

// kdiff fails t if got differs from want: diff, with addresses compared
// by value.
func kdiff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got, timeEq, cmpopts.EquateComparable(netip.Addr{}, netip.AddrPort{})); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", what, d)
	}
}

// Lifetime of the fixtures' pairing tokens.
const pairingTTL = time.Hour

func randKey() (k [32]byte) {
	rand.Read(k[:])
	return k
}

// mgmtAddr stands in for wire.MgmtAddr: a ULA address unique per key
// (the store does not care how it was derived).
func mgmtAddr(pub [32]byte) netip.Addr {
	a := [16]byte{0xfd, 0xb1, 0xd4, 0xe1, 0xa7}
	copy(a[8:], pub[:8])
	return netip.AddrFrom16(a)
}

// newDevice returns a device that is not stored yet, created at t0 and
// never seen.
func newDevice() *keystore.Device {
	pub := randKey()
	return &keystore.Device{
		ID:              "d-" + randHex(),
		UID:             "warp2-" + randHex(),
		PublicKey:       pub,
		MgmtAddr:        mgmtAddr(pub),
		Firmware:        "2.6.1",
		ProtocolVersion: 1,
		CreatedAt:       t0,
	}
}

// newSlots returns n key slots with the indexes first, first+1, ...,
// DeviceID and UserID left empty.
func newSlots(first, n int) []keystore.KeySlot {
	slots := make([]keystore.KeySlot, n)
	for i := range slots {
		slots[i] = keystore.KeySlot{Index: first + i, BrowserPublicKey: randKey(), Sealed: randBytes(48 + 32 + 32)}
	}
	return slots
}

// withIDs returns copies of slots with DeviceID and UserID set, as the store
// returns them.
func withIDs(slots []keystore.KeySlot, deviceID, userID string) []keystore.KeySlot {
	out := make([]keystore.KeySlot, len(slots))
	for i, ks := range slots {
		ks.DeviceID, ks.UserID = deviceID, userID
		out[i] = ks
	}
	return out
}

// newPairingToken returns a token of user that is not stored yet, live from
// t0 for pairingTTL.
func newPairingToken(userID string, maxUses int) *keystore.PairingToken {
	return &keystore.PairingToken{
		ID:        "pt-" + randHex(),
		TokenHash: randBytes(32),
		UserID:    userID,
		Name:      "garage " + randHex(),
		MaxUses:   maxUses,
		ExpiresAt: t0.Add(pairingTTL),
		CreatedAt: t0,
	}
}

// createPairingToken stores a new pairing token.
func createPairingToken(t *testing.T, s Store, userID string, maxUses int) *keystore.PairingToken {
	t.Helper()
	pt := newPairingToken(userID, maxUses)
	noErr(t, "CreatePairingToken", s.CreatePairingToken(t.Context(), pt))
	return pt
}

// paired is a device stored by pairDevice.
type paired struct {
	dev   *keystore.Device
	owner *keystore.DeviceUser
	slots []keystore.KeySlot // as stored, with ids
}

// pairDevice pairs a new device into the user's account with a new
// single-use token and DefaultSlots slots from index 0.
func pairDevice(t *testing.T, s Store, userID string) paired {
	t.Helper()
	pt := createPairingToken(t, s, userID, 1)
	dev, slots := newDevice(), newSlots(0, keystore.DefaultSlots)
	owner, err := s.PairDevice(t.Context(), pt.TokenHash, t0, dev, slots, randBytes(40))
	noErr(t, "PairDevice", err)
	return paired{dev: dev, owner: owner, slots: withIDs(slots, dev.ID, userID)}
}

// share shares the device with userID in role, with n slots from index
// first.
func share(t *testing.T, s Store, deviceID, userID string, role keystore.Role, first, n int) (keystore.DeviceUser, []keystore.KeySlot) {
	t.Helper()
	du := keystore.DeviceUser{UserID: userID, Role: role, SealedName: randBytes(40), CreatedAt: t0.Add(time.Minute)}
	slots := newSlots(first, n)
	noErr(t, "ShareDevice", s.ShareDevice(t.Context(), deviceID, du, slots))
	du.DeviceID = deviceID
	return du, withIDs(slots, deviceID, userID)
}

// getDevice reads the device, which must exist.
func getDevice(t *testing.T, s Store, id string) *keystore.Device {
	t.Helper()
	d, err := s.DeviceByID(t.Context(), id)
	noErr(t, "DeviceByID", err)
	return d
}

// wantNoDevice checks that no device has the id, UID or public key of dev.
func wantNoDevice(t *testing.T, s Store, dev *keystore.Device) {
	t.Helper()
	ctx := t.Context()
	_, err := s.DeviceByID(ctx, dev.ID)
	wantErr(t, "DeviceByID", err, keystore.ErrDeviceNotFound)
	_, err = s.DeviceByUID(ctx, dev.UID)
	wantErr(t, "DeviceByUID", err, keystore.ErrDeviceNotFound)
	_, err = s.DeviceByPublicKey(ctx, dev.PublicKey)
	wantErr(t, "DeviceByPublicKey", err, keystore.ErrDeviceNotFound)
}

// wantAccess checks the user's role on the device ("" for none) and, with
// access, the user's key slots.
func wantAccess(t *testing.T, s Store, deviceID, userID string, role keystore.Role, slots []keystore.KeySlot) {
	t.Helper()
	ctx := t.Context()
	got, err := s.DeviceUserAccess(ctx, deviceID, userID)
	gotSlots, slotsErr := s.KeySlots(ctx, deviceID, userID)
	if role == "" {
		wantErr(t, "DeviceUserAccess", err, keystore.ErrDeviceNotFound)
		wantErr(t, "KeySlots", slotsErr, keystore.ErrDeviceNotFound)
		return
	}
	noErr(t, "DeviceUserAccess", err)
	if got != role {
		t.Errorf("DeviceUserAccess(%s, %s) = %q, want %q", deviceID, userID, got, role)
	}
	noErr(t, "KeySlots", slotsErr)
	kdiff(t, "key slots of "+userID, slots, gotSlots)
}

// tokenUses returns the Uses of the user's pairing token id.
func tokenUses(t *testing.T, s Store, userID, id string) int {
	t.Helper()
	list, err := s.PairingTokens(t.Context(), userID)
	noErr(t, "PairingTokens", err)
	for _, pt := range list {
		if pt.ID == id {
			return pt.Uses
		}
	}
	t.Fatalf("pairing token %s of %s not listed", id, userID)
	return 0
}
