package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Pairing N devices on one machine runs into two limits that protect a
// real relay, and relayload works within both instead of changing the
// relay:
//
//   - A pairing token has at most 100 uses, and the relay allows 100
//     pairing requests per token per hour. relayload makes one token per
//     batch of up to batchSize devices and runs `devicesim --pair-only` once
//     per batch, each run pairing the devices of its data directory that
//     are not paired yet. A batch is a little smaller than 100 because a
//     pairing whose random UID is taken already (devicesim then tries
//     another) spends a request too; a batch that fails anyway is retried
//     with a new token, pairAttempts times in all.
//   - The relay allows 100 pairings per client IP per hour, and on
//     loopback every device is 127.0.0.1. The devices therefore pair
//     through pairingProxy, a reverse proxy on loopback that the relay
//     trusts (--trusted-proxy 127.0.0.1) and that names a different client
//     address from the benchmarking range 198.18.0.0/15 (RFC 2544) every
//     pairsPerClient requests in X-Forwarded-For.
//
// Once paired, devices talk to the relay directly, over UDP; the proxy
// serves the pairing requests only and is closed before the measurement.
const (
	batchSize      = 95
	pairAttempts   = 3
	tokenTTL       = 6 * time.Hour
	pairsPerClient = 50
)

// pair pairs every group's devices, pairConcurrent groups at once.
func (b *bench) pair(ctx context.Context) error {
	proxy, err := startPairingProxy(b.url, b.httpClient.Transport)
	if err != nil {
		return err
	}
	defer proxy.close()
	b.log.Info("pairing", "devices", b.o.count, "devicesim_processes", len(b.groups))

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	sem := make(chan struct{}, pairConcurrent)
	var wg sync.WaitGroup
	var paired atomic.Int64
	for i, g := range b.groups {
		wg.Go(func() {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-sem }()
			if err := b.pairGroup(ctx, i, g, proxy.url, &paired); err != nil {
				cancel(err) // the first error wins; the others follow from it
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// pairGroup pairs the devices of one group, in batches of one token each.
func (b *bench) pairGroup(ctx context.Context, i int, g simGroup, server string, paired *atomic.Int64) error {
	for done := 0; done < g.count; {
		next := min(g.count, done+batchSize)
		var err error
		for attempt := 1; attempt <= pairAttempts; attempt++ {
			if err = b.pairBatch(ctx, i, g, server, next, next-done); err == nil || ctx.Err() != nil {
				break
			}
			if attempt < pairAttempts {
				b.log.Warn("pairing a batch failed; trying again with a new token", "process", i, "attempt", attempt, "error", err)
			}
		}
		if err != nil {
			return err
		}
		n := paired.Add(int64(next - done))
		b.log.Info("paired a batch", "process", i, "devices", next-done, "total", n)
		done = next
	}
	return nil
}

// pairBatch runs `devicesim --pair-only` for the first upTo devices of
// group i, of which at most uses are not paired yet, with a new token.
func (b *bench) pairBatch(ctx context.Context, i int, g simGroup, server string, upTo, uses int) error {
	token, err := b.token(ctx, uses)
	if err != nil {
		return err
	}
	name := fmt.Sprintf("devicesim %d pairing", i)
	logPath := filepath.Join(b.dir, fmt.Sprintf("devicesim-%02d-pair.log", i))
	env := append(scrubEnv(os.Environ()), "BLINDRELAY_PAIRING_TOKEN="+token)
	c, err := startChild(name, logPath, env,
		b.simBin, "--pair-only", "--data-dir", g.dir, "--server", server,
		"--count", strconv.Itoa(upTo), "--log-level", "warn")
	if err != nil {
		return err
	}
	timeout := time.Minute + time.Duration(uses)*time.Second
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
	case <-ctx.Done():
		c.stop(stopGrace)
		return context.Cause(ctx)
	case <-t.C:
		c.stop(stopGrace)
		return fmt.Errorf("%s: not done within %v; its log %s ends:\n%s", name, timeout, logPath, tail(logPath, 5))
	}
	if c.err != nil {
		return fmt.Errorf("%s: %w; its log %s ends:\n%s", name, c.err, logPath, tail(logPath, 5))
	}
	return nil
}

// token makes a pairing token for uses devices and returns its string.
func (b *bench) token(ctx context.Context, uses int) (string, error) {
	info, err := b.client.CreatePairingToken(ctx, "relayload", uses, tokenTTL)
	if err != nil {
		return "", fmt.Errorf("create pairing token: %w", err)
	}
	tok, err := b.client.NewPairingToken(ctx, info, b.keys.BoxPublic[:], b.keys.SignPublic)
	if err != nil {
		return "", fmt.Errorf("pairing token: %w", err)
	}
	return tok.String(), nil
}

// pairingProxy forwards plain HTTP on loopback to the relay, naming a new
// client address every pairsPerClient requests (see the comment on
// batchSize).
type pairingProxy struct {
	url string
	srv *http.Server
	n   atomic.Uint64
}

// startPairingProxy starts a proxy to the relay at target, reached through
// transport (which trusts the relay's certificate).
func startPairingProxy(target string, transport http.RoundTripper) (*pairingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, fmt.Errorf("pairing proxy: %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("pairing proxy: %w", err)
	}
	p := &pairingProxy{url: "http://" + l.Addr().String()}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			r.Out.Header.Set("X-Forwarded-For", p.nextClient().String())
		},
		Transport: transport,
		ErrorLog:  log.New(io.Discard, "", 0), // the device sees the 502 and says why
	}
	p.srv = &http.Server{Handler: rp, ReadHeaderTimeout: 30 * time.Second}
	go p.srv.Serve(l)
	return p, nil
}

// nextClient is the client address of the next request.
func (p *pairingProxy) nextClient() netip.Addr {
	return clientAddr(p.n.Add(1) - 1)
}

// clientAddr is the client address of request i: one per pairsPerClient
// requests, counting up through 198.18.0.0/15.
func clientAddr(i uint64) netip.Addr {
	block := uint32(i/pairsPerClient) % (1 << 17)
	return netip.AddrFrom4([4]byte{198, 18 + byte(block>>16), byte(block >> 8), byte(block)})
}

// close stops the proxy.
func (p *pairingProxy) close() { p.srv.Close() }
