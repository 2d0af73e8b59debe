package storetest

import (
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
)

func testPairingTokens(t *testing.T, s Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	other, _ := createUser(t, s)

	// Stored in another zone, listed in UTC, newest first.
	berlin := time.FixedZone("CET", 3600)
	older := newPairingToken(u.ID, 1)
	older.CreatedAt = t0.In(berlin)
	older.ExpiresAt = t0.Add(pairingTTL).In(berlin)
	newer := newPairingToken(u.ID, 5)
	newer.CreatedAt = t0.Add(time.Minute)
	newer.Uses = 2
	revokedAt := t0.Add(time.Second)
	revoked := newPairingToken(u.ID, 1)
	revoked.CreatedAt = t0.Add(-time.Minute)
	revoked.RevokedAt = &revokedAt
	revoked.Name = ""
	for _, pt := range []*keystore.PairingToken{older, newer, revoked} {
		noErr(t, "CreatePairingToken", s.CreatePairingToken(ctx, pt))
	}
	createPairingToken(t, s, other.ID, 1)

	got, err := s.PairingTokens(ctx, u.ID)
	noErr(t, "PairingTokens", err)
	kdiff(t, "pairing tokens", []*keystore.PairingToken{newer, older, revoked}, got)
	for _, pt := range got {
		checkUTC(t, "pairing token", pt.CreatedAt, pt.ExpiresAt)
	}
	if len(got) == 3 {
		checkUTC(t, "revoked at", *got[2].RevokedAt)
	}

	got, err = s.PairingTokens(ctx, "u-missing")
	if err != nil || len(got) != 0 {
		t.Errorf("PairingTokens(unknown user) = %v, %v; want none", got, err)
	}

	wantErr(t, "CreatePairingToken(unknown user)",
		s.CreatePairingToken(ctx, newPairingToken("u-missing", 1)), account.ErrUserNotFound)

	// A taken id or hash is a caller's bug: an internal error.
	dupID := newPairingToken(u.ID, 1)
	dupID.ID = older.ID
	dupHash := newPairingToken(u.ID, 1)
	dupHash.TokenHash = older.TokenHash
	for _, pt := range []*keystore.PairingToken{dupID, dupHash} {
		if err := s.CreatePairingToken(ctx, pt); account.ErrorCode(err) != account.CodeInternal {
			t.Errorf("CreatePairingToken(duplicate): error %v, want an internal error", err)
		}
	}
	got, err = s.PairingTokens(ctx, u.ID)
	noErr(t, "PairingTokens", err)
	if len(got) != 3 {
		t.Errorf("%d pairing tokens after failed creations, want 3", len(got))
	}
}

func testRevokePairingToken(t *testing.T, s Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	other, _ := createUser(t, s)
	pt := createPairingToken(t, s, u.ID, 3)
	theirs := createPairingToken(t, s, other.ID, 1)

	wantErr(t, "RevokePairingToken(someone else's)", s.RevokePairingToken(ctx, u.ID, theirs.ID, t0),
		keystore.ErrPairingTokenNotFound)
	wantErr(t, "RevokePairingToken(unknown)", s.RevokePairingToken(ctx, u.ID, "pt-missing", t0),
		keystore.ErrPairingTokenNotFound)

	first := t0.Add(time.Minute)
	noErr(t, "RevokePairingToken", s.RevokePairingToken(ctx, u.ID, pt.ID, first))
	noErr(t, "RevokePairingToken again", s.RevokePairingToken(ctx, u.ID, pt.ID, first.Add(time.Hour)))
	list, err := s.PairingTokens(ctx, u.ID)
	noErr(t, "PairingTokens", err)
	want := *pt
	want.RevokedAt = &first
	kdiff(t, "revoked token", []*keystore.PairingToken{&want}, list)
	if len(list) == 1 && list[0].State(t0) != keystore.TokenRevoked {
		t.Errorf("state %q, want revoked", list[0].State(t0))
	}

	_, err = s.PairDevice(ctx, pt.TokenHash, t0, newDevice(), newSlots(0, 1), nil)
	wantErr(t, "PairDevice(revoked)", err, keystore.ErrTokenRevoked)

	// The other user's token is untouched.
	_, err = s.PairDevice(ctx, theirs.TokenHash, t0, newDevice(), newSlots(0, 1), nil)
	noErr(t, "PairDevice(other user's token)", err)
}

func testPairDevice(t *testing.T, s Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	pt := createPairingToken(t, s, u.ID, 1)

	dev := newDevice()
	dev.CreatedAt = t0.In(time.FixedZone("CET", 3600))
	slots := newSlots(0, keystore.DefaultSlots)
	slots[1].UserID = u.ID // may be given if it matches
	shuffled := []keystore.KeySlot{slots[2], slots[0], slots[3], slots[1]}
	name := randBytes(40)
	owner, err := s.PairDevice(ctx, pt.TokenHash, t0.Add(time.Minute), dev, shuffled, name)
	noErr(t, "PairDevice", err)

	wantOwner := &keystore.DeviceUser{DeviceID: dev.ID, UserID: u.ID, Role: keystore.RoleOwner,
		SealedName: name, CreatedAt: t0}
	kdiff(t, "returned owner", wantOwner, owner)
	checkUTC(t, "owner", owner.CreatedAt)

	for _, lookup := range []struct {
		name string
		get  func() (*keystore.Device, error)
	}{
		{"DeviceByID", func() (*keystore.Device, error) { return s.DeviceByID(ctx, dev.ID) }},
		{"DeviceByUID", func() (*keystore.Device, error) { return s.DeviceByUID(ctx, dev.UID) }},
		{"DeviceByPublicKey", func() (*keystore.Device, error) { return s.DeviceByPublicKey(ctx, dev.PublicKey) }},
	} {
		got, err := lookup.get()
		noErr(t, lookup.name, err)
		kdiff(t, lookup.name, dev, got)
		checkUTC(t, lookup.name, got.CreatedAt)
	}

	list, err := s.DevicesForUser(ctx, u.ID)
	noErr(t, "DevicesForUser", err)
	kdiff(t, "DevicesForUser", []keystore.UserDevice{{Device: *dev, Access: *wantOwner}}, list)
	users, err := s.DeviceUsers(ctx, dev.ID)
	noErr(t, "DeviceUsers", err)
	kdiff(t, "DeviceUsers", []keystore.DeviceUser{*wantOwner}, users)
	wantAccess(t, s, dev.ID, u.ID, keystore.RoleOwner, withIDs(slots, dev.ID, u.ID))

	if n := tokenUses(t, s, u.ID, pt.ID); n != 1 {
		t.Errorf("token uses = %d, want 1", n)
	}
	_, err = s.PairDevice(ctx, pt.TokenHash, t0.Add(time.Minute), newDevice(), newSlots(0, 1), nil)
	wantErr(t, "PairDevice(used token)", err, keystore.ErrTokenUsedUp)

	// No sealed name and no slots are fine too; the name comes back nil.
	bare := newDevice()
	owner, err = s.PairDevice(ctx, createPairingToken(t, s, u.ID, 1).TokenHash, t0, bare, nil, []byte{})
	noErr(t, "PairDevice(bare)", err)
	if owner.SealedName != nil {
		t.Errorf("owner.SealedName = %x, want nil", owner.SealedName)
	}
	wantAccess(t, s, bare.ID, u.ID, keystore.RoleOwner, nil)
}

// testPairDeviceTokenErrors tries each unusable token: the right error, and
// nothing written.
func testPairDeviceTokenErrors(t *testing.T, s Store) {
	ctx := t.Context()
	u, verify := createUser(t, s)
	live := createPairingToken(t, s, u.ID, 1)
	usedUp := newPairingToken(u.ID, 2)
	usedUp.Uses = 2
	noErr(t, "CreatePairingToken(used up)", s.CreatePairingToken(ctx, usedUp))
	revoked := createPairingToken(t, s, u.ID, 1)
	noErr(t, "RevokePairingToken", s.RevokePairingToken(ctx, u.ID, revoked.ID, t0))

	tests := []struct {
		name string
		hash []byte
		now  time.Time
		want error
	}{
		{"unknown", randBytes(32), t0, keystore.ErrTokenInvalid},
		{"empty", []byte{}, t0, keystore.ErrTokenInvalid},
		{"e-mail token", verify.TokenHash, t0, keystore.ErrTokenInvalid},
		{"at expiry", live.TokenHash, live.ExpiresAt, keystore.ErrTokenExpired},
		{"after expiry", live.TokenHash, live.ExpiresAt.Add(time.Hour), keystore.ErrTokenExpired},
		{"used up", usedUp.TokenHash, t0, keystore.ErrTokenUsedUp},
		{"used up and expired", usedUp.TokenHash, usedUp.ExpiresAt, keystore.ErrTokenUsedUp},
		{"revoked", revoked.TokenHash, t0, keystore.ErrTokenRevoked},
		{"revoked and expired", revoked.TokenHash, revoked.ExpiresAt, keystore.ErrTokenRevoked},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := newDevice()
			_, err := s.PairDevice(ctx, tt.hash, tt.now, dev, newSlots(0, 2), randBytes(40))
			wantErr(t, "PairDevice", err, tt.want)
			wantNoDevice(t, s, dev)
		})
	}
	list, err := s.DevicesForUser(ctx, u.ID)
	noErr(t, "DevicesForUser", err)
	if len(list) != 0 {
		t.Errorf("DevicesForUser = %d devices, want none", len(list))
	}
	for _, pt := range []*keystore.PairingToken{live, usedUp, revoked} {
		if got := tokenUses(t, s, u.ID, pt.ID); got != pt.Uses {
			t.Errorf("token %s: uses = %d, want %d", pt.ID, got, pt.Uses)
		}
	}
	// The live one still works at the last microsecond.
	_, err = s.PairDevice(ctx, live.TokenHash, live.ExpiresAt.Add(-time.Microsecond), newDevice(), nil, nil)
	noErr(t, "PairDevice(live)", err)
}

func testPairDeviceMultiUse(t *testing.T, s Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	pt := createPairingToken(t, s, u.ID, 3)
	var devs []*keystore.Device
	for i := range 3 {
		dev := newDevice()
		_, err := s.PairDevice(ctx, pt.TokenHash, t0.Add(time.Duration(i)*time.Minute), dev, newSlots(0, 2), nil)
		noErr(t, "PairDevice", err)
		devs = append(devs, dev)
	}
	_, err := s.PairDevice(ctx, pt.TokenHash, t0, newDevice(), newSlots(0, 2), nil)
	wantErr(t, "PairDevice(fourth)", err, keystore.ErrTokenUsedUp)

	list, err := s.DevicesForUser(ctx, u.ID)
	noErr(t, "DevicesForUser", err)
	if len(list) != 3 {
		t.Fatalf("DevicesForUser = %d devices, want 3", len(list))
	}
	tokens, err := s.PairingTokens(ctx, u.ID)
	noErr(t, "PairingTokens", err)
	if tokens[0].Uses != 3 || tokens[0].State(t0) != keystore.TokenUsedUp {
		t.Errorf("token: uses %d, state %q; want 3, used_up", tokens[0].Uses, tokens[0].State(t0))
	}
}

// testPairDeviceConflict pairs devices whose UID, public key or management
// address is taken: ErrDeviceExists, nothing written, the token use kept.
func testPairDeviceConflict(t *testing.T, s Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	first := pairDevice(t, s, u.ID)
	pt := createPairingToken(t, s, u.ID, 1)

	sameUID := newDevice()
	sameUID.UID = first.dev.UID
	sameKey := newDevice()
	sameKey.PublicKey = first.dev.PublicKey
	sameKey.MgmtAddr = first.dev.MgmtAddr
	sameAddr := newDevice()
	sameAddr.MgmtAddr = first.dev.MgmtAddr
	for _, tt := range []struct {
		name string
		dev  *keystore.Device
	}{{"uid", sameUID}, {"public key", sameKey}, {"mgmt addr", sameAddr}} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.PairDevice(ctx, pt.TokenHash, t0, tt.dev, newSlots(0, 2), randBytes(40))
			wantErr(t, "PairDevice", err, keystore.ErrDeviceExists)
			_, err = s.DeviceByID(ctx, tt.dev.ID)
			wantErr(t, "DeviceByID", err, keystore.ErrDeviceNotFound)
			_, err = s.AddDeviceForUser(ctx, u.ID, tt.dev, newSlots(0, 2), nil)
			wantErr(t, "AddDeviceForUser", err, keystore.ErrDeviceExists)
			_, err = s.DeviceByID(ctx, tt.dev.ID)
			wantErr(t, "DeviceByID", err, keystore.ErrDeviceNotFound)
		})
	}
	if n := tokenUses(t, s, u.ID, pt.ID); n != 0 {
		t.Errorf("token uses after conflicts = %d, want 0", n)
	}
	kdiff(t, "first device", first.dev, getDevice(t, s, first.dev.ID))
	wantAccess(t, s, first.dev.ID, u.ID, keystore.RoleOwner, first.slots)
	list, err := s.DevicesForUser(ctx, u.ID)
	noErr(t, "DevicesForUser", err)
	if len(list) != 1 {
		t.Errorf("DevicesForUser = %d devices, want 1", len(list))
	}

	// The token is still good for a device of its own.
	_, err = s.PairDevice(ctx, pt.TokenHash, t0, newDevice(), newSlots(0, 2), nil)
	noErr(t, "PairDevice(fresh device)", err)
}

// testPairDeviceBadInput pairs with slots, or a device, that cannot be
// stored: nothing written, the token use kept.
func testPairDeviceBadInput(t *testing.T, s Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	other, _ := createUser(t, s)
	pt := createPairingToken(t, s, u.ID, 1)

	sameIndex := newSlots(0, 3)
	sameIndex[2].Index = 1
	sameKey := newSlots(0, 3)
	sameKey[2].BrowserPublicKey = sameKey[0].BrowserPublicKey
	tooHigh := newSlots(keystore.MaxSlotIndex, 2)
	negative := newSlots(-1, 2)
	otherUser := newSlots(0, 2)
	otherUser[1].UserID = other.ID
	otherDevice := newSlots(0, 2)
	otherDevice[0].DeviceID = "d-other"
	tests := []struct {
		name  string
		slots []keystore.KeySlot
		want  error // nil: an internal error
	}{
		{"same index", sameIndex, keystore.ErrSlotTaken},
		{"same browser key", sameKey, keystore.ErrSlotTaken},
		{"index too high", tooHigh, nil},
		{"negative index", negative, nil},
		{"other user's slot", otherUser, nil},
		{"other device's slot", otherDevice, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := newDevice()
			_, err := s.PairDevice(ctx, pt.TokenHash, t0, dev, tt.slots, randBytes(40))
			if tt.want != nil {
				wantErr(t, "PairDevice", err, tt.want)
			} else if account.ErrorCode(err) != account.CodeInternal {
				t.Errorf("PairDevice: error %v, want an internal error", err)
			}
			wantNoDevice(t, s, dev)
		})
	}
	// A device needs its management address.
	noAddr := newDevice()
	noAddr.MgmtAddr = netip.Addr{}
	_, err := s.PairDevice(ctx, pt.TokenHash, t0, noAddr, nil, nil)
	if account.ErrorCode(err) != account.CodeInternal {
		t.Errorf("PairDevice(no mgmt addr): error %v, want an internal error", err)
	}
	wantNoDevice(t, s, noAddr)

	if n := tokenUses(t, s, u.ID, pt.ID); n != 0 {
		t.Errorf("token uses after failed pairings = %d, want 0", n)
	}
	list, err := s.DevicesForUser(ctx, u.ID)
	noErr(t, "DevicesForUser", err)
	if len(list) != 0 {
		t.Errorf("DevicesForUser = %d devices, want none", len(list))
	}

	// The highest index is fine.
	dev := newDevice()
	_, err = s.PairDevice(ctx, pt.TokenHash, t0, dev, newSlots(keystore.MaxSlotIndex, 1), nil)
	noErr(t, "PairDevice(slot MaxSlotIndex)", err)
}

// testPairDeviceConcurrent pairs different devices with one token at once:
// exactly MaxUses of them may succeed.
func testPairDeviceConcurrent(t *testing.T, s Store) {
	for _, maxUses := range []int{1, 3} {
		u, _ := createUser(t, s)
		pt := createPairingToken(t, s, u.ID, maxUses)
		const n = 8
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				_, errs[i] = s.PairDevice(t.Context(), pt.TokenHash, t0, newDevice(), newSlots(0, keystore.DefaultSlots), randBytes(40))
			})
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, keystore.ErrTokenUsedUp):
				t.Errorf("PairDevice: %v", err)
			}
		}
		if ok != maxUses {
			t.Errorf("%d of %d concurrent PairDevice calls on a token with %d uses succeeded", ok, n, maxUses)
		}
		list, err := s.DevicesForUser(t.Context(), u.ID)
		noErr(t, "DevicesForUser", err)
		if len(list) != maxUses {
			t.Errorf("DevicesForUser = %d devices, want %d", len(list), maxUses)
		}
		if got := tokenUses(t, s, u.ID, pt.ID); got != maxUses {
			t.Errorf("token uses = %d, want %d", got, maxUses)
		}
	}
}

func testAddDeviceForUser(t *testing.T, s Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	dev, slots, name := newDevice(), newSlots(0, 2), randBytes(40)
	owner, err := s.AddDeviceForUser(ctx, u.ID, dev, slots, name)
	noErr(t, "AddDeviceForUser", err)
	wantOwner := &keystore.DeviceUser{DeviceID: dev.ID, UserID: u.ID, Role: keystore.RoleOwner,
		SealedName: name, CreatedAt: dev.CreatedAt}
	kdiff(t, "owner", wantOwner, owner)
	kdiff(t, "device", dev, getDevice(t, s, dev.ID))
	wantAccess(t, s, dev.ID, u.ID, keystore.RoleOwner, withIDs(slots, dev.ID, u.ID))

	missing := newDevice()
	_, err = s.AddDeviceForUser(ctx, "u-missing", missing, newSlots(0, 2), nil)
	wantErr(t, "AddDeviceForUser(unknown user)", err, account.ErrUserNotFound)
	wantNoDevice(t, s, missing)
}

// testDeviceNotFound checks ErrDeviceNotFound from every method that takes
// a device.
func testDeviceNotFound(t *testing.T, s Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	mine := pairDevice(t, s, u.ID)
	stranger, _ := createUser(t, s)
	const id = "d-missing"
	type call struct {
		name string
		call func() error
	}
	tests := []call{
		{"DeviceByID", func() error { _, err := s.DeviceByID(ctx, id); return err }},
		{"DeviceByUID", func() error { _, err := s.DeviceByUID(ctx, "warp2-missing"); return err }},
		{"DeviceByPublicKey", func() error { _, err := s.DeviceByPublicKey(ctx, randKey()); return err }},
		{"DeviceUsers", func() error { _, err := s.DeviceUsers(ctx, id); return err }},
		{"ShareDevice", func() error {
			return s.ShareDevice(ctx, id, keystore.DeviceUser{UserID: u.ID, Role: keystore.RoleUser, CreatedAt: t0}, nil)
		}},
		{"DeleteDevice", func() error { return s.DeleteDevice(ctx, id) }},
		{"SetPresence", func() error { return s.SetPresence(ctx, id, randEndpoint(), true, "node-a", t0) }},
		{"SetPresence(offline)", func() error { return s.SetPresence(ctx, id, randEndpoint(), false, "node-a", t0) }},
		{"SetFirmware", func() error { return s.SetFirmware(ctx, id, "3.0.0", 2) }},
	}
	// Per user: a missing device and someone else's device look the same.
	for _, dev := range []string{id, mine.dev.ID} {
		tests = append(tests,
			call{"DeviceUserAccess " + dev, func() error { _, err := s.DeviceUserAccess(ctx, dev, stranger.ID); return err }},
			call{"KeySlots " + dev, func() error { _, err := s.KeySlots(ctx, dev, stranger.ID); return err }},
			call{"UnshareDevice " + dev, func() error { return s.UnshareDevice(ctx, dev, stranger.ID) }},
			call{"SetSealedLabel " + dev, func() error { return s.SetSealedLabel(ctx, dev, stranger.ID, randBytes(8), nil) }},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantErr(t, tt.name, tt.call(), keystore.ErrDeviceNotFound)
		})
	}
	list, err := s.DevicesForUser(ctx, stranger.ID)
	if err != nil || len(list) != 0 {
		t.Errorf("DevicesForUser(no devices) = %v, %v; want none", list, err)
	}
	list, err = s.DevicesForUser(ctx, "u-missing")
	if err != nil || len(list) != 0 {
		t.Errorf("DevicesForUser(unknown user) = %v, %v; want none", list, err)
	}
	kdiff(t, "device", mine.dev, getDevice(t, s, mine.dev.ID))
}
