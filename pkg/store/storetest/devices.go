package storetest

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/keystore"
)

// randEndpoint returns a random IPv4 endpoint.
func randEndpoint() netip.AddrPort {
	b := randBytes(6)
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[:4])), uint16(b[4])<<8|uint16(b[5]))
}

func testShareDevice(t *testing.T, s Store) {
	ctx := t.Context()
	owner, _ := createUser(t, s)
	friend, _ := createUser(t, s)
	p := pairDevice(t, s, owner.ID)

	du := keystore.DeviceUser{UserID: friend.ID, Role: keystore.RoleUser, SealedName: randBytes(40),
		SealedNote: randBytes(60), CreatedAt: t0.Add(time.Hour).In(time.FixedZone("CET", 3600))}
	slots := newSlots(keystore.DefaultSlots, keystore.DefaultSlots) // after the owner's
	noErr(t, "ShareDevice", s.ShareDevice(ctx, p.dev.ID, du, slots))
	du.DeviceID = p.dev.ID

	wantAccess(t, s, p.dev.ID, friend.ID, keystore.RoleUser, withIDs(slots, p.dev.ID, friend.ID))
	wantAccess(t, s, p.dev.ID, owner.ID, keystore.RoleOwner, p.slots)

	list, err := s.DevicesForUser(ctx, friend.ID)
	noErr(t, "DevicesForUser", err)
	kdiff(t, "friend's devices", []keystore.UserDevice{{Device: *p.dev, Access: du}}, list)
	if len(list) == 1 {
		checkUTC(t, "access", list[0].Access.CreatedAt)
	}
	list, err = s.DevicesForUser(ctx, owner.ID)
	noErr(t, "DevicesForUser", err)
	kdiff(t, "owner's devices", []keystore.UserDevice{{Device: *p.dev, Access: *p.owner}}, list)

	// Owners list first, even a co-owner added after the user; the
	// DeviceUser may name the device.
	coOwner, _ := createUser(t, s)
	co := keystore.DeviceUser{DeviceID: p.dev.ID, UserID: coOwner.ID, Role: keystore.RoleOwner, CreatedAt: t0.Add(2 * time.Hour)}
	noErr(t, "ShareDevice(co-owner)", s.ShareDevice(ctx, p.dev.ID, co, nil))
	users, err := s.DeviceUsers(ctx, p.dev.ID)
	noErr(t, "DeviceUsers", err)
	kdiff(t, "DeviceUsers", []keystore.DeviceUser{*p.owner, co, du}, users)
	wantAccess(t, s, p.dev.ID, coOwner.ID, keystore.RoleOwner, nil)

	// A user's devices list in the order they were shared with the user.
	own := pairDevice(t, s, friend.ID)       // at t0
	sharedSoon := pairDevice(t, s, owner.ID) // shared at t0+1m
	share(t, s, sharedSoon.dev.ID, friend.ID, keystore.RoleUser, keystore.DefaultSlots, 1)
	list, err = s.DevicesForUser(ctx, friend.ID)
	noErr(t, "DevicesForUser", err)
	var ids []string
	for _, ud := range list {
		ids = append(ids, ud.Device.ID)
	}
	kdiff(t, "friend's device order", []string{own.dev.ID, sharedSoon.dev.ID, p.dev.ID}, ids)
}

func testShareDeviceErrors(t *testing.T, s Store) {
	ctx := t.Context()
	owner, _ := createUser(t, s)
	friend, _ := createUser(t, s)
	p := pairDevice(t, s, owner.ID)
	du := keystore.DeviceUser{UserID: friend.ID, Role: keystore.RoleUser, CreatedAt: t0}

	takenKey := newSlots(keystore.DefaultSlots, 2)
	takenKey[1].BrowserPublicKey = p.slots[0].BrowserPublicKey
	wrongUser := newSlots(keystore.DefaultSlots, 1)
	wrongUser[0].UserID = owner.ID
	wrongDevice := du
	wrongDevice.DeviceID = "d-other"
	badRole := du
	badRole.Role = "admin"
	tests := []struct {
		name   string
		device string
		du     keystore.DeviceUser
		slots  []keystore.KeySlot
		want   error // nil: an internal error
	}{
		{"index taken", p.dev.ID, du, newSlots(keystore.DefaultSlots-1, 2), keystore.ErrSlotTaken},
		{"browser key taken", p.dev.ID, du, takenKey, keystore.ErrSlotTaken},
		{"owner again", p.dev.ID, keystore.DeviceUser{UserID: owner.ID, Role: keystore.RoleUser, CreatedAt: t0},
			newSlots(keystore.DefaultSlots, 1), keystore.ErrAlreadyShared},
		{"unknown user", p.dev.ID, keystore.DeviceUser{UserID: "u-missing", Role: keystore.RoleUser, CreatedAt: t0},
			nil, account.ErrUserNotFound},
		{"unknown device", "d-missing", du, nil, keystore.ErrDeviceNotFound},
		{"slot of another user", p.dev.ID, du, wrongUser, nil},
		{"device user of another device", p.dev.ID, wrongDevice, nil, nil},
		{"bad role", p.dev.ID, badRole, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.ShareDevice(ctx, tt.device, tt.du, tt.slots)
			if tt.want != nil {
				wantErr(t, "ShareDevice", err, tt.want)
			} else if account.ErrorCode(err) != account.CodeInternal {
				t.Errorf("ShareDevice: error %v, want an internal error", err)
			}
			wantAccess(t, s, p.dev.ID, friend.ID, "", nil)
		})
	}
	wantAccess(t, s, p.dev.ID, owner.ID, keystore.RoleOwner, p.slots)

	// Shared once, the second time is a conflict that changes nothing.
	_, slots := share(t, s, p.dev.ID, friend.ID, keystore.RoleUser, keystore.DefaultSlots, 2)
	err := s.ShareDevice(ctx, p.dev.ID, du, newSlots(10, 1))
	wantErr(t, "ShareDevice(again)", err, keystore.ErrAlreadyShared)
	wantAccess(t, s, p.dev.ID, friend.ID, keystore.RoleUser, slots)
}

func testUnshareDevice(t *testing.T, s Store) {
	ctx := t.Context()
	owner, _ := createUser(t, s)
	friend, _ := createUser(t, s)
	p := pairDevice(t, s, owner.ID)
	share(t, s, p.dev.ID, friend.ID, keystore.RoleUser, keystore.DefaultSlots, 2)

	noErr(t, "UnshareDevice", s.UnshareDevice(ctx, p.dev.ID, friend.ID))
	wantAccess(t, s, p.dev.ID, friend.ID, "", nil)
	wantErr(t, "UnshareDevice again", s.UnshareDevice(ctx, p.dev.ID, friend.ID), keystore.ErrDeviceNotFound)
	// The slots went with the access: their indexes are free again.
	_, slots := share(t, s, p.dev.ID, friend.ID, keystore.RoleUser, keystore.DefaultSlots, 2)
	wantAccess(t, s, p.dev.ID, friend.ID, keystore.RoleUser, slots)

	// The only owner cannot leave; nothing changes.
	wantErr(t, "UnshareDevice(only owner)", s.UnshareDevice(ctx, p.dev.ID, owner.ID), keystore.ErrLastOwner)
	kdiff(t, "device", p.dev, getDevice(t, s, p.dev.ID))
	wantAccess(t, s, p.dev.ID, owner.ID, keystore.RoleOwner, p.slots)
	wantAccess(t, s, p.dev.ID, friend.ID, keystore.RoleUser, slots)

	// With a co-owner, either may leave, but not both.
	coOwner, _ := createUser(t, s)
	_, coSlots := share(t, s, p.dev.ID, coOwner.ID, keystore.RoleOwner, 10, 1)
	noErr(t, "UnshareDevice(first owner)", s.UnshareDevice(ctx, p.dev.ID, owner.ID))
	wantAccess(t, s, p.dev.ID, owner.ID, "", nil)
	wantErr(t, "UnshareDevice(last owner)", s.UnshareDevice(ctx, p.dev.ID, coOwner.ID), keystore.ErrLastOwner)
	wantAccess(t, s, p.dev.ID, coOwner.ID, keystore.RoleOwner, coSlots)
	wantAccess(t, s, p.dev.ID, friend.ID, keystore.RoleUser, slots)
}

// testUnshareCoOwnersConcurrent removes both owners of a device at once:
// one must win and the other get ErrLastOwner, never a device left without
// an owner (nor one deleted).
func testUnshareCoOwnersConcurrent(t *testing.T, s Store) {
	for range 4 {
		a, _ := createUser(t, s)
		b, _ := createUser(t, s)
		p := pairDevice(t, s, a.ID)
		share(t, s, p.dev.ID, b.ID, keystore.RoleOwner, keystore.DefaultSlots, 1)

		var errs [2]error
		var wg sync.WaitGroup
		for i, u := range []string{a.ID, b.ID} {
			wg.Go(func() { errs[i] = s.UnshareDevice(t.Context(), p.dev.ID, u) })
		}
		wg.Wait()
		var ok, last int
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case errors.Is(err, keystore.ErrLastOwner):
				last++
			default:
				t.Errorf("UnshareDevice: %v", err)
			}
		}
		if ok != 1 || last != 1 {
			t.Errorf("concurrent UnshareDevice of both owners: %d ok, %d ErrLastOwner; want 1 and 1", ok, last)
		}
		users, err := s.DeviceUsers(t.Context(), p.dev.ID)
		noErr(t, "DeviceUsers", err)
		if len(users) != 1 || users[0].Role != keystore.RoleOwner {
			t.Errorf("DeviceUsers = %v, want one owner", users)
		}
	}
}

func testSetSealedLabel(t *testing.T, s Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	p := pairDevice(t, s, u.ID)
	friend, _ := createUser(t, s)
	fdu, _ := share(t, s, p.dev.ID, friend.ID, keystore.RoleUser, keystore.DefaultSlots, 1)

	name, note := randBytes(40), randBytes(100)
	noErr(t, "SetSealedLabel", s.SetSealedLabel(ctx, p.dev.ID, u.ID, name, note))
	want := *p.owner
	want.SealedName, want.SealedNote = name, note
	list, err := s.DevicesForUser(ctx, u.ID)
	noErr(t, "DevicesForUser", err)
	kdiff(t, "devices", []keystore.UserDevice{{Device: *p.dev, Access: want}}, list)

	noErr(t, "SetSealedLabel(empty)", s.SetSealedLabel(ctx, p.dev.ID, u.ID, nil, []byte{}))
	want.SealedName, want.SealedNote = nil, nil
	list, err = s.DevicesForUser(ctx, u.ID)
	noErr(t, "DevicesForUser", err)
	kdiff(t, "devices", []keystore.UserDevice{{Device: *p.dev, Access: want}}, list)

	// The friend's label is the friend's own.
	list, err = s.DevicesForUser(ctx, friend.ID)
	noErr(t, "DevicesForUser", err)
	kdiff(t, "friend's devices", []keystore.UserDevice{{Device: *p.dev, Access: fdu}}, list)
}

func testDeleteDevice(t *testing.T, s Store) {
	ctx := t.Context()
	owner, _ := createUser(t, s)
	friend, _ := createUser(t, s)
	p := pairDevice(t, s, owner.ID)
	share(t, s, p.dev.ID, friend.ID, keystore.RoleUser, keystore.DefaultSlots, 2)
	keep := pairDevice(t, s, owner.ID)

	noErr(t, "DeleteDevice", s.DeleteDevice(ctx, p.dev.ID))
	wantNoDevice(t, s, p.dev)
	wantAccess(t, s, p.dev.ID, owner.ID, "", nil)
	wantAccess(t, s, p.dev.ID, friend.ID, "", nil)
	_, err := s.DeviceUsers(ctx, p.dev.ID)
	wantErr(t, "DeviceUsers", err, keystore.ErrDeviceNotFound)
	wantErr(t, "DeleteDevice again", s.DeleteDevice(ctx, p.dev.ID), keystore.ErrDeviceNotFound)
	list, err := s.DevicesForUser(ctx, friend.ID)
	if err != nil || len(list) != 0 {
		t.Errorf("friend's DevicesForUser = %v, %v; want none", list, err)
	}

	// The other device is untouched.
	kdiff(t, "other device", keep.dev, getDevice(t, s, keep.dev.ID))
	wantAccess(t, s, keep.dev.ID, owner.ID, keystore.RoleOwner, keep.slots)

	// The device may pair again, with its UID and key, and slots alike.
	again := newDevice()
	again.UID, again.PublicKey, again.MgmtAddr = p.dev.UID, p.dev.PublicKey, p.dev.MgmtAddr
	pt := createPairingToken(t, s, owner.ID, 1)
	_, err = s.PairDevice(ctx, pt.TokenHash, t0, again, withIDs(p.slots, "", ""), nil)
	noErr(t, "PairDevice(again)", err)
	wantAccess(t, s, again.ID, owner.ID, keystore.RoleOwner, withIDs(p.slots, again.ID, owner.ID))
}

func testPresence(t *testing.T, s Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	p := pairDevice(t, s, u.ID)
	other := pairDevice(t, s, u.ID)
	want := *p.dev
	check := func(what string) {
		t.Helper()
		got := getDevice(t, s, p.dev.ID)
		kdiff(t, what, &want, got)
		checkUTC(t, what, got.LastSeenAt)
	}

	// Never seen: no endpoint, no time.
	got := getDevice(t, s, p.dev.ID)
	if got.LastEndpoint.IsValid() || !got.LastSeenAt.IsZero() || got.Online || got.Node != "" {
		t.Errorf("new device has presence: %v %v %v %q", got.LastEndpoint, got.LastSeenAt, got.Online, got.Node)
	}

	tests := []struct {
		name     string
		endpoint netip.AddrPort
		online   bool
		node     string
		apply    bool
	}{
		{"online", netip.MustParseAddrPort("203.0.113.7:51820"), true, "node-a", true},
		{"roamed", netip.MustParseAddrPort("198.51.100.9:40000"), true, "node-a", true},
		{"ipv6", netip.MustParseAddrPort("[2001:db8::7]:1"), true, "node-a", true},
		{"ipv4-mapped", netip.MustParseAddrPort("[::ffff:192.0.2.1]:65535"), true, "node-a", true},
		{"offline from another node", netip.MustParseAddrPort("192.0.2.99:9"), false, "node-b", false},
		{"offline, endpoint kept", netip.AddrPort{}, false, "node-a", true},
		{"online elsewhere", netip.MustParseAddrPort("192.0.2.50:51820"), true, "node-b", true},
		{"old node's late offline", netip.AddrPort{}, false, "node-a", false},
		{"online without endpoint", netip.AddrPort{}, true, "node-b", true},
	}
	for i, tt := range tests {
		now := t0.Add(time.Duration(i+1) * time.Minute)
		noErr(t, "SetPresence "+tt.name, s.SetPresence(ctx, p.dev.ID, tt.endpoint, tt.online, tt.node, now))
		if tt.apply {
			if tt.endpoint.IsValid() {
				want.LastEndpoint = tt.endpoint
			}
			want.Online, want.Node, want.LastSeenAt = tt.online, tt.node, now
		}
		check(tt.name)
	}
	// The other device never changed.
	kdiff(t, "other device", other.dev, getDevice(t, s, other.dev.ID))

	// A node that restarts marks its devices offline, and only its own.
	noErr(t, "SetPresence(other)", s.SetPresence(ctx, other.dev.ID, randEndpoint(), true, "node-a", t0))
	n, err := s.SetNodeOffline(ctx, "node-b")
	noErr(t, "SetNodeOffline", err)
	if n != 1 {
		t.Errorf("SetNodeOffline = %d, want 1", n)
	}
	want.Online = false
	check("after SetNodeOffline")
	if !getDevice(t, s, other.dev.ID).Online {
		t.Error("SetNodeOffline(node-b) took node-a's device offline")
	}
	n, err = s.SetNodeOffline(ctx, "node-b")
	if err != nil || n != 0 {
		t.Errorf("SetNodeOffline again = %d, %v; want 0, nil", n, err)
	}
}

func testDeviceByEndpoint(t *testing.T, s Store) {
	ctx := t.Context()
	u, _ := createUser(t, s)
	a, b := pairDevice(t, s, u.ID), pairDevice(t, s, u.ID)
	ep := netip.MustParseAddrPort("203.0.113.7:51820")
	find := func(what string, ep netip.AddrPort, want *keystore.Device) {
		t.Helper()
		got, err := s.DeviceByEndpoint(ctx, ep)
		if want == nil {
			wantErr(t, "DeviceByEndpoint "+what, err, keystore.ErrDeviceNotFound)
			return
		}
		noErr(t, "DeviceByEndpoint "+what, err)
		kdiff(t, what, getDevice(t, s, want.ID), got)
		if got != nil {
			checkUTC(t, what, got.LastSeenAt)
		}
	}

	find("zero endpoint", netip.AddrPort{}, nil) // never-seen devices have none
	find("never seen", ep, nil)

	noErr(t, "SetPresence(a)", s.SetPresence(ctx, a.dev.ID, ep, true, "node-a", t0.Add(time.Minute)))
	find("online", ep, a.dev)
	find("other port", netip.AddrPortFrom(ep.Addr(), ep.Port()+1), nil)
	find("ipv4-mapped form", netip.AddrPortFrom(netip.AddrFrom16(ep.Addr().As16()), ep.Port()), nil)

	// Offline keeps the endpoint, and so the device is still found there.
	noErr(t, "SetPresence(a offline)", s.SetPresence(ctx, a.dev.ID, netip.AddrPort{}, false, "node-a", t0.Add(2*time.Minute)))
	find("offline", ep, a.dev)
	noErr(t, "SetNodeOffline", func() error { _, err := s.SetNodeOffline(ctx, "node-a"); return err }())
	find("after SetNodeOffline", ep, a.dev)

	// b takes the address later (a NAT gave it a's old port): the latest
	// wins, whichever it is.
	noErr(t, "SetPresence(b)", s.SetPresence(ctx, b.dev.ID, ep, true, "node-b", t0.Add(3*time.Minute)))
	find("taken over", ep, b.dev)
	noErr(t, "SetPresence(a again)", s.SetPresence(ctx, a.dev.ID, ep, true, "node-a", t0.Add(4*time.Minute)))
	find("taken back", ep, a.dev)

	// a moves on: only b is left at ep.
	moved := netip.MustParseAddrPort("[2001:db8::7]:40000")
	noErr(t, "SetPresence(a moved)", s.SetPresence(ctx, a.dev.ID, moved, true, "node-a", t0.Add(5*time.Minute)))
	find("left", ep, b.dev)
	find("ipv6", moved, a.dev)

	noErr(t, "DeleteDevice(b)", s.DeleteDevice(ctx, b.dev.ID))
	find("deleted", ep, nil)
}

func testSetFirmware(t *testing.T, s Store) {
	u, _ := createUser(t, s)
	p := pairDevice(t, s, u.ID)
	noErr(t, "SetFirmware", s.SetFirmware(t.Context(), p.dev.ID, "2.7.0-beta.1", 3))
	want := *p.dev
	want.Firmware, want.ProtocolVersion = "2.7.0-beta.1", 3
	kdiff(t, "device", &want, getDevice(t, s, p.dev.ID))
}

// accessFixture is a user with devices of every kind of access.
type accessFixture struct {
	user, coOwner, friend *account.User
	sole                  paired // the user is the only owner, shared with friend
	shared                paired // the user and coOwner own it
	guest                 paired // coOwner owns it, the user uses it
	tokens, otherTokens   []*keystore.PairingToken
}

func newAccessFixture(t *testing.T, s Store) *accessFixture {
	t.Helper()
	f := &accessFixture{}
	f.user, _ = createUser(t, s)
	f.coOwner, _ = createUser(t, s)
	f.friend, _ = createUser(t, s)
	f.sole = pairDevice(t, s, f.user.ID)
	share(t, s, f.sole.dev.ID, f.friend.ID, keystore.RoleUser, keystore.DefaultSlots, 2)
	f.shared = pairDevice(t, s, f.coOwner.ID)
	share(t, s, f.shared.dev.ID, f.user.ID, keystore.RoleOwner, keystore.DefaultSlots, 2)
	f.guest = pairDevice(t, s, f.coOwner.ID)
	share(t, s, f.guest.dev.ID, f.user.ID, keystore.RoleUser, keystore.DefaultSlots, 2)
	f.tokens = []*keystore.PairingToken{createPairingToken(t, s, f.user.ID, 1), createPairingToken(t, s, f.user.ID, 5)}
	createPairingToken(t, s, f.coOwner.ID, 1)
	var err error
	f.otherTokens, err = s.PairingTokens(t.Context(), f.coOwner.ID)
	noErr(t, "PairingTokens(co-owner)", err)
	return f
}

// checkUserGone checks that f.user has no access left, its solely owned
// device is gone and everyone else's access is intact.
func (f *accessFixture) checkUserGone(t *testing.T, s Store) {
	t.Helper()
	ctx := t.Context()
	list, err := s.DevicesForUser(ctx, f.user.ID)
	if err != nil || len(list) != 0 {
		t.Errorf("DevicesForUser(user) = %v, %v; want none", list, err)
	}
	for _, p := range []paired{f.sole, f.shared, f.guest} {
		wantAccess(t, s, p.dev.ID, f.user.ID, "", nil)
	}
	wantNoDevice(t, s, f.sole.dev)
	wantAccess(t, s, f.sole.dev.ID, f.friend.ID, "", nil)

	kdiff(t, "co-owned device", f.shared.dev, getDevice(t, s, f.shared.dev.ID))
	wantAccess(t, s, f.shared.dev.ID, f.coOwner.ID, keystore.RoleOwner, f.shared.slots)
	kdiff(t, "guest device", f.guest.dev, getDevice(t, s, f.guest.dev.ID))
	wantAccess(t, s, f.guest.dev.ID, f.coOwner.ID, keystore.RoleOwner, f.guest.slots)

	tokens, err := s.PairingTokens(ctx, f.user.ID)
	if err != nil || len(tokens) != 0 {
		t.Errorf("PairingTokens(user) = %v, %v; want none", tokens, err)
	}
	for _, pt := range f.tokens {
		_, err := s.PairDevice(ctx, pt.TokenHash, t0, newDevice(), nil, nil)
		wantErr(t, "PairDevice(user's token)", err, keystore.ErrTokenInvalid)
	}
	tokens, err = s.PairingTokens(ctx, f.coOwner.ID)
	noErr(t, "PairingTokens(co-owner)", err)
	kdiff(t, "co-owner's tokens", f.otherTokens, tokens)
}

func testDeleteUserDeviceAccess(t *testing.T, s Store) {
	ctx := t.Context()
	f := newAccessFixture(t, s)
	deleted, err := s.DeleteUserDeviceAccess(ctx, f.user.ID)
	noErr(t, "DeleteUserDeviceAccess", err)
	kdiff(t, "deleted devices", []string{f.sole.dev.ID}, deleted)
	f.checkUserGone(t, s)
	getUser(t, s, f.user.ID) // the account stays

	// Nothing left to remove, or nobody: no error.
	for _, id := range []string{f.user.ID, "u-missing"} {
		deleted, err = s.DeleteUserDeviceAccess(ctx, id)
		if err != nil || len(deleted) != 0 {
			t.Errorf("DeleteUserDeviceAccess(%s) = %v, %v; want nothing", id, deleted, err)
		}
	}

	// Devices solely owned come back sorted.
	u, _ := createUser(t, s)
	var want []string
	for range 3 {
		want = append(want, pairDevice(t, s, u.ID).dev.ID)
	}
	deleted, err = s.DeleteUserDeviceAccess(ctx, u.ID)
	noErr(t, "DeleteUserDeviceAccess", err)
	if len(deleted) != 3 || deleted[0] > deleted[1] || deleted[1] > deleted[2] {
		t.Errorf("deleted devices %v, want the 3 of %v sorted", deleted, want)
	}
}

// testDeleteUserCascade deletes a user through account.Store: the foreign
// keys take the user's shares, slots and tokens, and the last-owner rule
// the devices the user alone owned.
func testDeleteUserCascade(t *testing.T, s Store) {
	f := newAccessFixture(t, s)
	noErr(t, "DeleteUser", s.DeleteUser(t.Context(), f.user.ID))
	f.checkUserGone(t, s)
}

// testKeystoreCanceledContext checks that a canceled context ends a call
// with an internal error rather than a domain error.
func testKeystoreCanceledContext(t *testing.T, s Store) {
	u, _ := createUser(t, s)
	p := pairDevice(t, s, u.ID)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.DeviceByID(ctx, p.dev.ID)
	if account.ErrorCode(err) != account.CodeInternal {
		t.Errorf("DeviceByID(canceled) error = %v, want an internal error", err)
	}
	_, err = s.PairDevice(ctx, createPairingToken(t, s, u.ID, 1).TokenHash, t0, newDevice(), nil, nil)
	if account.ErrorCode(err) != account.CodeInternal {
		t.Errorf("PairDevice(canceled) error = %v, want an internal error", err)
	}
	err = s.SetPresence(ctx, p.dev.ID, randEndpoint(), true, "node-a", t0)
	if account.ErrorCode(err) != account.CodeInternal {
		t.Errorf("SetPresence(canceled) error = %v, want an internal error", err)
	}
	kdiff(t, "device", p.dev, getDevice(t, s, p.dev.ID))
}
