package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/blindrelay/blindrelay/pkg/account"
	"github.com/blindrelay/blindrelay/pkg/apiclient"
	"github.com/blindrelay/blindrelay/pkg/device"
	"github.com/blindrelay/blindrelay/pkg/device/wallbox"
)

// uidAttempts is how many random UIDs a new device tries when the relay
// says one is taken.
const uidAttempts = 5

// uidAlphabet are the characters of a UID's random part.
const uidAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"

// clientOptions are extra options of the relay API client; tests lower
// the KDF limits to their relay's.
var clientOptions []apiclient.Option

// sim is one emulated wallbox.
type sim struct {
	index int
	dev   *device.Device
	ui    *uiHolder
}

// uiHolder is the device's UI handler, set once the UID is known (after
// Open or Pair) and before Run.
type uiHolder struct{ h http.Handler }

func (u *uiHolder) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.h.ServeHTTP(w, r) }

// simulate pairs or loads o.count devices and runs them until ctx ends.
func simulate(ctx context.Context, o *options, log *slog.Logger, stdout io.Writer) error {
	if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	p := &pairer{o: o, log: log, uids: map[string]bool{}}
	defer p.close(ctx)
	sims := make([]*sim, o.count)
	for i := range sims {
		s, err := p.load(ctx, i)
		if err != nil {
			return fmt.Errorf("device %d: %w", i, err)
		}
		sims[i] = s
		if o.wgQuick != "" {
			if err := writeWGQuick(s.dev, wgQuickPath(o.wgQuick, i, o.count)); err != nil {
				return fmt.Errorf("device %d: %w", i, err)
			}
		}
	}
	p.close(ctx) // no more pairing: log out now
	for _, s := range sims {
		info := s.dev.Info()
		fmt.Fprintf(stdout, "device %d: %s id %s key %s\n", s.index, info.UID, info.DeviceID, info.PublicKey)
	}
	if o.pairOnly {
		return nil
	}
	for _, s := range sims {
		s.ui.h = wallbox.New(wallbox.Config{
			UID:      s.dev.Info().UID,
			Firmware: o.firmware,
			User:     o.uiUser,
			Password: o.uiPassword,
			Logger:   log.With("device", s.index),
		})
	}
	return runAll(ctx, o, log, sims)
}

// runAll runs every device, and the local UI of device 0 if asked, until
// ctx ends or one of them fails.
func runAll(ctx context.Context, o *options, log *slog.Logger, sims []*sim) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	for _, s := range sims {
		wg.Go(func() {
			if err := s.dev.Run(ctx); err != nil {
				cancel(fmt.Errorf("device %d: %w", s.index, err))
			}
		})
	}
	if o.uiListen != "" {
		l, err := net.Listen("tcp", o.uiListen)
		if err != nil {
			cancel(fmt.Errorf("--ui-listen: %w", err))
		} else {
			srv := &http.Server{Handler: sims[0].ui, ReadHeaderTimeout: 30 * time.Second,
				BaseContext: func(net.Listener) context.Context { return ctx }}
			log.Info("serving device 0's web UI locally", "url", "http://"+l.Addr().String()+"/")
			wg.Go(func() { srv.Serve(l) })
			context.AfterFunc(ctx, func() { srv.Close() })
		}
	}
	log.Info("devices running", "count", len(sims))
	<-ctx.Done()
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("devices stopped")
	return nil
}

// pairer loads devices, pairing those that are not paired yet. With
// --email it logs in once, at the first device that needs it.
type pairer struct {
	o       *options
	log     *slog.Logger
	account *device.Account // logged in, or nil
	uids    map[string]bool // UIDs of the devices so far
}

func (p *pairer) config(i int) device.Config {
	return device.Config{
		DataDir:       filepath.Join(p.o.dataDir, fmt.Sprintf("device-%04d", i)),
		Firmware:      p.o.firmware,
		Slots:         p.o.slots,
		Logger:        p.log.With("device", i),
		Insecure:      p.o.insecure,
		Server:        p.o.server,
		ClientOptions: clientOptions,
		UI:            &uiHolder{},
	}
}

// load opens device i, or pairs it if it is new.
func (p *pairer) load(ctx context.Context, i int) (*sim, error) {
	cfg := p.config(i)
	d, err := device.Open(cfg)
	if errors.Is(err, device.ErrNotPaired) {
		d, err = p.pair(ctx, cfg)
	}
	if err != nil {
		return nil, err
	}
	p.uids[d.Info().UID] = true
	return &sim{index: i, dev: d, ui: cfg.UI.(*uiHolder)}, nil
}

// pair pairs a new device with a random UID, trying another UID if the
// relay has the first already.
func (p *pairer) pair(ctx context.Context, cfg device.Config) (*device.Device, error) {
	if p.o.token == "" && p.o.email == "" {
		return nil, fmt.Errorf("%s is not paired: give --token or --email", cfg.DataDir)
	}
	if p.o.email != "" && p.account == nil {
		a, err := device.Login(ctx, cfg, p.o.server, p.o.email, p.o.password)
		if err != nil {
			return nil, err
		}
		p.account = a
	}
	for attempt := 1; ; attempt++ {
		cfg.UID = p.newUID()
		var d *device.Device
		var err error
		if p.account != nil {
			d, err = p.account.Pair(ctx, cfg)
		} else {
			d, err = device.Pair(ctx, cfg, p.o.token)
		}
		if apiclient.ErrorCode(err) == string(account.CodeDeviceExists) && attempt < uidAttempts {
			p.log.Info("UID taken at the relay, trying another", "uid", cfg.UID)
			continue
		}
		return d, err
	}
}

// newUID returns an unused UID: the prefix and 4 random characters.
func (p *pairer) newUID() string {
	for {
		b := make([]byte, 4)
		rand.Read(b)
		for i := range b {
			b[i] = uidAlphabet[int(b[i])%len(uidAlphabet)]
		}
		uid := p.o.uidPrefix + "-" + string(b)
		if !p.uids[uid] {
			return uid
		}
	}
}

// close logs the account out, if logged in.
func (p *pairer) close(ctx context.Context) {
	if p.account != nil {
		p.account.Close(ctx)
		p.account = nil
	}
}

// wgQuickPath is the wg-quick file of device i of n: path itself for one
// device, else path with "-i" before its extension.
func wgQuickPath(path string, i, n int) string {
	if n == 1 {
		return path
	}
	ext := filepath.Ext(path)
	return fmt.Sprintf("%s-%d%s", strings.TrimSuffix(path, ext), i, ext)
}

// writeWGQuick writes d's wg-quick file, mode 0600.
func writeWGQuick(d *device.Device, path string) error {
	conf, err := d.WGQuick()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("wg-quick file: %w", err)
	}
	if err := f.Chmod(0o600); err != nil { // an existing file keeps its mode otherwise
		f.Close()
		return fmt.Errorf("wg-quick file: %w", err)
	}
	if _, err := f.WriteString(conf); err != nil {
		f.Close()
		return fmt.Errorf("wg-quick file: %w", err)
	}
	return f.Close()
}
