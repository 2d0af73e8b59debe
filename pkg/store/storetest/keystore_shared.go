package storetest

import (
	"errors"
	"sync"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/keystore"
)

// RunKeystoreShared runs the keystore tests that need two stores on one
// database (two relay nodes, or two processes on one SQLite file). newDB is
// as for RunShared; the stores it opens must also be keystore.Stores.
func RunKeystoreShared(t *testing.T, newDB func(t *testing.T) OpenFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, stores [2]Store)
	}{
		{"PairDeviceTwoStores", testPairDeviceTwoStores},
		{"PresenceTwoNodes", testPresenceTwoNodes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			open := newDB(t)
			var stores [2]Store
			for i := range stores {
				s, ok := mustOpen(t, open).(Store)
				if !ok {
					t.Fatalf("the store is no keystore.Store")
				}
				stores[i] = s
			}
			tt.fn(t, stores)
		})
	}
}

// testPairDeviceTwoStores spends one single-use token through two stores at
// once: exactly one device pairs.
func testPairDeviceTwoStores(t *testing.T, stores [2]Store) {
	u, _ := createUser(t, stores[0])
	pt := createPairingToken(t, stores[1], u.ID, 1)
	const n = 8
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, errs[i] = stores[i%2].PairDevice(t.Context(), pt.TokenHash, t0, newDevice(),
				newSlots(0, keystore.DefaultSlots), randBytes(40))
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
	if ok != 1 {
		t.Errorf("%d of %d PairDevice calls over two stores succeeded, want 1", ok, n)
	}
	for i, s := range stores {
		list, err := s.DevicesForUser(t.Context(), u.ID)
		noErr(t, "DevicesForUser", err)
		if len(list) != 1 {
			t.Errorf("store %d: DevicesForUser = %d devices, want 1", i, len(list))
		}
	}
}

// testPresenceTwoNodes moves a device from one node to the other: the first
// node's late offline report must not hide it.
func testPresenceTwoNodes(t *testing.T, stores [2]Store) {
	ctx := t.Context()
	u, _ := createUser(t, stores[0])
	p := pairDevice(t, stores[0], u.ID)
	ep := randEndpoint()
	noErr(t, "SetPresence(a)", stores[0].SetPresence(ctx, p.dev.ID, randEndpoint(), true, "node-a", t0))
	noErr(t, "SetPresence(b)", stores[1].SetPresence(ctx, p.dev.ID, ep, true, "node-b", t0))
	noErr(t, "SetPresence(a, offline)", stores[0].SetPresence(ctx, p.dev.ID, randEndpoint(), false, "node-a", t0))
	n, err := stores[0].SetNodeOffline(ctx, "node-a")
	noErr(t, "SetNodeOffline(a)", err)
	if n != 0 {
		t.Errorf("SetNodeOffline(node-a) = %d, want 0", n)
	}
	got := getDevice(t, stores[0], p.dev.ID)
	if !got.Online || got.Node != "node-b" || got.LastEndpoint != ep {
		t.Errorf("presence = %v %q %v, want online at node-b from %v", got.Online, got.Node, got.LastEndpoint, ep)
	}
}
