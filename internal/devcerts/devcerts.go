// Package devcerts makes a development certificate authority, a server
// certificate for HAProxy's TLS ports and a client certificate for mTLS.
// They are for laptops and tests: use your own PKI anywhere else.
package devcerts

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Files are the paths Write produced, all PEM.
type Files struct {
	CA         string // CA certificate: clients trust it; HAProxy verifies client certificates with it
	CAKey      string
	Server     string // HAProxy's crt file: server certificate, then its key
	Client     string // client certificate
	ClientKey  string
	ServerName string // a name the server certificate is valid for
}

// DefaultHosts are the names and addresses the server certificate covers
// besides the ones given to Write.
var DefaultHosts = []string{"localhost", "haproxy", "127.0.0.1", "::1"}

// Write creates the CA, the server and the client certificate in dir
// (created if missing), valid for validity. hosts are added to the
// server certificate's names (DNS names or IP addresses).
func Write(dir string, hosts []string, validity time.Duration) (Files, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Files{}, fmt.Errorf("create %s: %w", dir, err)
	}
	f := Files{
		CA: filepath.Join(dir, "ca.pem"), CAKey: filepath.Join(dir, "ca-key.pem"),
		Server: filepath.Join(dir, "server.pem"),
		Client: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client-key.pem"),
		ServerName: DefaultHosts[0],
	}
	now := time.Now().Add(-time.Minute)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, fmt.Errorf("generate CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "sluice development CA", Organization: []string{"sluice"}},
		NotBefore:             now,
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, caCert, err := sign(caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("sign CA: %w", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, fmt.Errorf("generate server key: %w", err)
	}
	srvTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "sluice haproxy", Organization: []string{"sluice"}},
		NotBefore:   now,
		NotAfter:    now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range append(append([]string(nil), DefaultHosts...), hosts...) {
		if ip := net.ParseIP(h); ip != nil {
			srvTmpl.IPAddresses = append(srvTmpl.IPAddresses, ip)
		} else {
			srvTmpl.DNSNames = append(srvTmpl.DNSNames, h)
		}
	}
	srvDER, _, err := sign(srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("sign server certificate: %w", err)
	}
	cliKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return f, fmt.Errorf("generate client key: %w", err)
	}
	cliTmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "sluice development client", Organization: []string{"sluice"}},
		NotBefore:   now,
		NotAfter:    now.Add(validity),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	cliDER, _, err := sign(cliTmpl, caCert, &cliKey.PublicKey, caKey)
	if err != nil {
		return f, fmt.Errorf("sign client certificate: %w", err)
	}
	caKeyPEM, err := keyPEM(caKey)
	if err != nil {
		return f, err
	}
	srvKeyPEM, err := keyPEM(srvKey)
	if err != nil {
		return f, err
	}
	cliKeyPEM, err := keyPEM(cliKey)
	if err != nil {
		return f, err
	}
	// Keys are 0644 on purpose: HAProxy and the test clients run as other
	// users than the one that made them. These are development keys.
	for _, w := range []struct {
		path string
		data []byte
	}{
		{f.CA, certPEM(caDER)},
		{f.CAKey, caKeyPEM},
		{f.Server, append(certPEM(srvDER), srvKeyPEM...)},
		{f.Client, certPEM(cliDER)},
		{f.ClientKey, cliKeyPEM},
	} {
		if err := os.WriteFile(w.path, w.data, 0o644); err != nil {
			return f, fmt.Errorf("write %s: %w", w.path, err)
		}
	}
	return f, nil
}

func sign(tmpl, parent *x509.Certificate, pub *ecdsa.PublicKey, key *ecdsa.PrivateKey) ([]byte, *x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, err
	}
	tmpl.SerialNumber = serial
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	return der, cert, err
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("marshal key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}
