package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/devcerts"
	"github.com/sluice-ingest/sluice/internal/ingesttest"
	"github.com/sluice-ingest/sluice/internal/redistest"
)

// TestTLSThroughHAProxy: with certificates configured, the shipped
// haproxy.cfg terminates TLS on every data port. A TLS client is acked
// (TCP) and answered 200 (HTTP); a plaintext client on a TLS port gets
// nothing stored. With mTLS on, a client without a certificate is refused
// and nothing it sent is stored.
func TestTLSThroughHAProxy(t *testing.T) {
	certs, err := devcerts.Write(t.TempDir(), nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(certs.CA)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	clientCert, err := tls.LoadX509KeyPair(certs.Client, certs.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	r := redistest.NewRedis(t, redistest.RedisOptions{})
	rdb := r.Client()
	in := ingesttest.Start(t, r.Addr, ingesttest.WithEnv("INGEST_PROXY_PROTOCOL", "true"))

	for _, mtls := range []bool{false, true} {
		t.Run(fmt.Sprintf("mtls=%v", mtls), func(t *testing.T) {
			t.Setenv("HAPROXY_TLS_CERT", certs.Server)
			clientCA := ""
			if mtls {
				clientCA = certs.CA
			}
			t.Setenv("HAPROXY_TLS_CLIENT_CA", clientCA)
			hp := startShippedHAProxy(t, []*ingesttest.Ingest{in})
			good := &tls.Config{RootCAs: roots, ServerName: certs.ServerName, Certificates: []tls.Certificate{clientCert}}
			tag := fmt.Sprintf("mtls%v", mtls)

			t.Run("TLS client acked", func(t *testing.T) {
				nc, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", hp.data), good)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				fmt.Fprintf(nc, "%s-tls-1\n%s-tls-2\n", tag, tag)
				_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(nc).ReadString('\n')
				if err != nil || line != "OK 2\n" {
					t.Fatalf("got %q %v, want OK 2", line, err)
				}
			})
			t.Run("HTTPS answered 200", func(t *testing.T) {
				c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: good}}
				resp, err := c.Post(fmt.Sprintf("https://127.0.0.1:%d/v1/messages", hp.http), "text/plain",
					strings.NewReader(tag+"-https-1\n"+tag+"-https-2\n"))
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"accepted":2`) {
					t.Fatalf("got %d %s", resp.StatusCode, body)
				}
			})
			refused := []struct {
				name string
				dial func() (net.Conn, error)
			}{
				{"plaintext on the TLS port", func() (net.Conn, error) {
					return net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", hp.data), 5*time.Second)
				}},
				{"plaintext on the no-ack TLS port", func() (net.Conn, error) {
					return net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", hp.noack), 5*time.Second)
				}},
			}
			if mtls {
				refused = append(refused, struct {
					name string
					dial func() (net.Conn, error)
				}{"TLS without a client certificate", func() (net.Conn, error) {
					return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", hp.data),
						&tls.Config{RootCAs: roots, ServerName: certs.ServerName})
				}})
			}
			for i, tc := range refused {
				t.Run(tc.name, func(t *testing.T) {
					nc, err := tc.dial()
					if err != nil {
						return // refused at the handshake: nothing was sent
					}
					defer nc.Close()
					fmt.Fprintf(nc, "%s-refused-%d-1\n%s-refused-%d-2\n", tag, i, tag, i)
					_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
					got, err := bufio.NewReader(nc).ReadString('\n')
					if strings.HasPrefix(got, "OK") {
						t.Fatalf("acked: %q", got)
					}
					t.Logf("refused: %q %v", got, err)
				})
			}
			// Every accepted message is stored; no refused one is, even
			// once the acked ones are in.
			want := map[string]bool{tag + "-tls-1": true, tag + "-tls-2": true, tag + "-https-1": true, tag + "-https-2": true}
			vals, err := rdb.LRange(context.Background(), queueKey, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vals {
				if strings.Contains(v, "-refused-") {
					t.Errorf("%q from a refused client was stored", v)
				}
				delete(want, v)
			}
			if len(want) > 0 {
				t.Errorf("accepted messages missing: %v", want)
			}
		})
	}
}
