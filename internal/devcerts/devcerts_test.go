package devcerts

import (
	"crypto/tls"
	"crypto/x509"
	"os"
	"testing"
	"time"
)

// The server certificate verifies for every default host and an extra
// one against the CA, and the client certificate is a client-auth one.
func TestWrite(t *testing.T) {
	f, err := Write(t.TempDir(), []string{"ingest.example", "10.1.2.3"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(f.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("CA file holds no certificate")
	}
	srv, err := tls.LoadX509KeyPair(f.Server, f.Server)
	if err != nil {
		t.Fatalf("server.pem is not a certificate and key: %v", err)
	}
	leaf, err := x509.ParseCertificate(srv.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, host := range append(DefaultHosts, "ingest.example", "10.1.2.3") {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.example", Roots: pool}); err == nil {
		t.Error("server certificate verifies for a name it was not made for")
	}
	cli, err := tls.LoadX509KeyPair(f.Client, f.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	cleaf, err := x509.ParseCertificate(cli.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cleaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("client certificate: %v", err)
	}
}
