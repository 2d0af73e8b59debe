package server

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// The self-signed certificate's lifetime. 800 days stays under the 825 days
// Apple's TLS stack accepts for any server certificate; the relay makes a new
// one when less than selfSignedRenew is left, so a long-running installation
// never serves an expired one after a restart.
const (
	selfSignedValidity = 800 * 24 * time.Hour
	selfSignedRenew    = 30 * 24 * time.Hour
)

// File names of the self-signed pair inside DataDir/tls.
const (
	certFileName = "cert.pem"
	keyFileName  = "key.pem"
)

// loadCertificate returns the certificate the HTTPS listener serves: the
// operator's pair if cfg names one, else the self-signed pair in
// DataDir/tls, created on first start and reused after.
func loadCertificate(cfg Config, hosts []string, now time.Time, logger *slog.Logger) (tls.Certificate, error) {
	if cfg.HTTP.TLSCertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile)
		if err != nil {
			return tls.Certificate{}, fmt.Errorf("load --tls-cert %s and --tls-key %s: %w", cfg.HTTP.TLSCertFile, cfg.HTTP.TLSKeyFile, err)
		}
		return cert, nil
	}
	return selfSignedCertificate(filepath.Join(cfg.DataDir, "tls"), hosts, now, logger)
}

// selfSignedCertificate loads dir/cert.pem and dir/key.pem, or creates them
// (dir 0700, key 0600) if neither exists. An existing pair is reused unless
// it is about to expire or does not name one of hosts; then a new one
// replaces it. A file that cannot be parsed is an error that names it: the
// relay never overwrites what it cannot read.
func selfSignedCertificate(dir string, hosts []string, now time.Time, logger *slog.Logger) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(dir, certFileName), filepath.Join(dir, keyFileName)
	cert, err := readKeyPair(certPath, keyPath)
	switch {
	case errors.Is(err, errNoKeyPair):
		logger.Info("creating self-signed TLS certificate", "path", certPath)
	case err != nil:
		return tls.Certificate{}, err
	default:
		reason := renewReason(cert.Leaf, hosts, now)
		if reason == "" {
			return cert, nil
		}
		logger.Info("replacing self-signed TLS certificate", "path", certPath, "reason", reason)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %w", err)
	}
	certPEM, keyPEM, err := newSelfSigned(hosts, now)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: create certificate: %w", err)
	}
	// The key goes first: a crash between the two renames leaves a pair
	// that does not match, which the next start reports by name.
	if err := writeFileAtomic(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %w", err)
	}
	if err := writeFileAtomic(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: %w", err)
	}
	return readKeyPair(certPath, keyPath)
}

// errNoKeyPair means that neither file of a key pair exists.
var errNoKeyPair = errors.New("no certificate and key")

// readKeyPair parses a PEM certificate and key. It returns errNoKeyPair if
// both files are missing; every other problem is reported with the path of
// the file at fault.
func readKeyPair(certPath, keyPath string) (tls.Certificate, error) {
	certPEM, certErr := os.ReadFile(certPath)
	keyPEM, keyErr := os.ReadFile(keyPath)
	switch {
	case errors.Is(certErr, fs.ErrNotExist) && errors.Is(keyErr, fs.ErrNotExist):
		return tls.Certificate{}, errNoKeyPair
	case certErr != nil:
		return tls.Certificate{}, fmt.Errorf("tls: read certificate (remove %s to create a new pair): %w", keyPath, certErr)
	case keyErr != nil:
		return tls.Certificate{}, fmt.Errorf("tls: read private key (remove %s to create a new pair): %w", certPath, keyErr)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return tls.Certificate{}, fmt.Errorf("tls: %s holds no PEM certificate; fix or remove it (and %s) to create a new pair", certPath, keyPath)
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: parse %s: %w; fix or remove it (and %s) to create a new pair", certPath, err, keyPath)
	}
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != "PRIVATE KEY" && block.Type != "EC PRIVATE KEY" {
		return tls.Certificate{}, fmt.Errorf("tls: %s holds no PEM private key; fix or remove it (and %s) to create a new pair", keyPath, certPath)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("tls: load %s and %s: %w; remove both to create a new pair", certPath, keyPath, err)
	}
	return cert, nil
}

// renewReason says why a self-signed leaf should be replaced, or "" if it
// can stay.
func renewReason(leaf *x509.Certificate, hosts []string, now time.Time) string {
	if now.Add(selfSignedRenew).After(leaf.NotAfter) {
		return "expires " + leaf.NotAfter.UTC().Format(time.DateOnly)
	}
	for _, h := range hosts {
		if leaf.VerifyHostname(h) != nil {
			return "does not name " + h
		}
	}
	return ""
}

// newSelfSigned makes an ECDSA P-256 key and a self-signed server
// certificate for hosts (names and IP addresses), PEM-encoded.
func newSelfSigned(hosts []string, now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{Organization: []string{"blindrelay"}, CommonName: "blindrelay self-signed"},
		NotBefore:             now.Add(-time.Hour), // tolerate clients whose clocks lag a little
		NotAfter:              now.Add(selfSignedValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	for _, h := range hosts {
		if ip, err := netip.ParseAddr(h); err == nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip.AsSlice())
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	return certPEM, keyPEM, nil
}

// certHosts lists the names the self-signed certificate must cover: the
// loopback names, the public URL's host and the listen address's host when
// it is a specific address.
func certHosts(publicHost, listenHost string) []string {
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	for _, h := range []string{publicHost, listenHost} {
		if h == "" {
			continue
		}
		if ip, err := netip.ParseAddr(h); err == nil && (ip.IsUnspecified() || ip.IsLoopback()) {
			continue
		}
		if h != "localhost" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// fingerprint is the SHA-256 of a certificate's DER encoding in hex, as
// browsers show it.
func fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// writeFileAtomic writes data to a temporary file beside path and renames it
// into place, so that a reader never sees half a file.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
