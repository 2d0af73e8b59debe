package server_test

import (
	"bytes"
	"path/filepath"
	"testing"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/mail"
	"github.com/blindrelay/blindrelay/pkg/server"
	"github.com/blindrelay/blindrelay/pkg/store/postgres/pgtest"
	"github.com/blindrelay/blindrelay/pkg/wgkey"
	"github.com/blindrelay/blindrelay/pkg/zkcrypto"
)

// TestDevicesAcrossRestart pairs a device through the assembled relay and
// checks what the relay tells it (its management key, kept across
// restarts, and the UDP endpoint), that the tunnel route answers
// device_offline while the device has no management tunnel, and that a
// password reset without the recovery file removes the user's devices (the
// account service's hook, wired here).
func TestDevicesAcrossRestart(t *testing.T) {
	t.Parallel()
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			cfg := newTestConfig(t)
			if driver == "postgres" {
				cfg.Database.URL = pgtest.URL(t)
			}
			cfg.Account.MinKDF = zkcrypto.TestKDFParams()
			cfg.Account.DefaultKDF = zkcrypto.TestKDFParams()
			const email = "owner@example.com"
			password := []byte("correct horse battery staple")
			ctx := t.Context()
			outbox := filepath.Join(cfg.DataDir, "outbox")
			// restart stops s (which writes the queued mail) and starts
			// the relay again on the same data.
			restart := func(stop func() error) (*server.Server, func() error) {
				t.Helper()
				if err := stop(); err != nil {
					t.Fatal(err)
				}
				return startStoppable(t, cfg)
			}

			s, stop := startStoppable(t, cfg)
			t.Cleanup(func() { stop() }) // the last one restart made
			if s.PublicUDP() != s.UDPAddr().String() || s.UDPAddr().Port() == 0 {
				t.Errorf("PublicUDP() = %q, want the bound %s", s.PublicUDP(), s.UDPAddr())
			}
			key := s.RelayPublicKey()
			if key.IsZero() {
				t.Fatal("no management key")
			}
			keys, err := apiClient(t, s).Register(ctx, email, password, "en", zkcrypto.KDFParams{})
			if err != nil {
				t.Fatal(err)
			}
			s, stop = restart(stop)
			if s.RelayPublicKey() != key {
				t.Error("the management key changed across a restart")
			}
			c := apiClient(t, s)
			link, err := mail.LatestLink(outbox, email, account.MailVerifyEmail)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Verify(ctx, apiclient.ParseToken(link)); err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.Login(ctx, email, password); err != nil {
				t.Fatal(err)
			}

			// Pair a device with a token.
			info, err := c.CreatePairingToken(ctx, "garage", 1, 0)
			if err != nil {
				t.Fatal(err)
			}
			tok, err := c.NewPairingToken(ctx, info, keys.BoxPublic[:], keys.SignPublic)
			if err != nil {
				t.Fatal(err)
			}
			devKey, _ := wgkey.NewPrivate()
			devPub := devKey.Public()
			browser, _ := wgkey.NewPrivate()
			browserPub := browser.Public()
			sealed, err := zkcrypto.SealTo(tok.BoxPublicKey, make([]byte, 64))
			if err != nil {
				t.Fatal(err)
			}
			res, err := apiClient(t, s).PairDevice(ctx, &apiclient.PairRequest{
				Secret: tok.Secret, UID: "warp2-Srv", PublicKey: devPub[:], Firmware: "1", ProtocolVersion: 1,
				Slots: []apiclient.DeviceSlot{{Index: 0, BrowserPublicKey: browserPub[:], Sealed: sealed}},
			})
			if err != nil {
				t.Fatalf("PairDevice: %v", err)
			}
			if !bytes.Equal(res.RelayPublicKey, key[:]) || res.RelayEndpoint != s.PublicUDP() {
				t.Errorf("pair answer %+v, want the relay's key %s and %s", res, key, s.PublicUDP())
			}
			_, _, err = c.DialTunnel(ctx, res.DeviceID, -1)
			if apiclient.ErrorCode(err) != "device_offline" {
				t.Errorf("tunnel to a device that never connected: %v, want device_offline", err)
			}

			// A reset without the recovery file takes the device away.
			if _, err := c.RequestReset(ctx, email, ""); err != nil {
				t.Fatal(err)
			}
			s, stop = restart(stop)
			c = apiClient(t, s)
			link, err = mail.LatestLink(outbox, email, account.MailResetPassword)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := c.ResetWithoutRecovery(ctx, link, []byte("new password"), zkcrypto.KDFParams{}); err != nil {
				t.Fatalf("ResetWithoutRecovery: %v", err)
			}
			if _, _, err := c.Login(ctx, email, []byte("new password")); err != nil {
				t.Fatal(err)
			}
			devs, err := c.Devices(ctx)
			if err != nil || len(devs) != 0 {
				t.Errorf("devices after a reset without recovery: %+v, %v", devs, err)
			}
		})
	}
}
