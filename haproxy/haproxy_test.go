package haproxy_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/redistest"
)

func needHAProxy(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("haproxy")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("haproxy is required in CI: %v", err)
		}
		t.Skipf("haproxy not installed: %v", err)
	}
	return p
}

func readConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("haproxy.cfg")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// The shipped file as it is (not a copy) passes `haproxy -c` with the
// variables Compose, Terraform and e2e set. (An unset password would expand to
// an empty one: the image entrypoint refuses that, see TestEntrypointPassword.)
func TestConfigCheck(t *testing.T) {
	bin := needHAProxy(t)
	tests := []struct {
		name   string
		env    []string
		wantOK bool
	}{
		{"with stats password", []string{"HAPROXY_STATS_PASSWORD=x"}, true},
		{"with user and ingest host", []string{"HAPROXY_STATS_PASSWORD=x", "HAPROXY_STATS_USER=ops", "INGEST_HOST=ingest.internal"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(bin, "-c", "-f", "haproxy.cfg")
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
			out, err := cmd.CombinedOutput()
			if ok := err == nil; ok != tc.wantOK {
				t.Fatalf("haproxy -c: err=%v, want ok=%v\n%s", err, tc.wantOK, out)
			}
		})
	}
}

// localConfig is haproxy.cfg on free loopback ports (see
// redistest.ShippedHAProxyConfig).
func localConfig(t *testing.T, data, http, noack, stats int) string {
	t.Helper()
	cfg, err := redistest.ShippedHAProxyConfig(readConfig(t), redistest.ShippedPorts{Data: data, HTTP: http, NoAck: noack, Stats: stats})
	if err != nil {
		t.Fatalf("%v; update this test", err)
	}
	return cfg
}

// The stats page and the Prometheus exporter need basic auth; /healthz (the
// container health check) does not.
func TestStatsAuth(t *testing.T) {
	needHAProxy(t)
	const user, pw = "ops", "stats-test-password"
	t.Setenv("HAPROXY_STATS_USER", user)
	t.Setenv("HAPROXY_STATS_PASSWORD", pw)
	h := redistest.NewHAProxy(t, redistest.HAProxyOptions{
		Ports:  4,
		Config: func(p []int) string { return localConfig(t, p[0], p[1], p[2], p[3]) },
	})
	base := fmt.Sprintf("http://127.0.0.1:%d", h.Ports[3])
	tests := []struct {
		path       string
		user, pass string
		wantStatus int
		wantBody   string
	}{
		{"/healthz", "", "", http.StatusOK, ""},
		{"/stats", "", "", http.StatusUnauthorized, ""},
		{"/metrics", "", "", http.StatusUnauthorized, ""},
		{"/stats", user, "wrong", http.StatusUnauthorized, ""},
		{"/metrics", "admin", pw, http.StatusUnauthorized, ""},
		{"/stats", user, pw, http.StatusOK, "ingest"},
		{"/metrics", user, pw, http.StatusOK, "haproxy_backend_active_servers"},
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s user=%q pass=%q", tc.path, tc.user, tc.pass), func(t *testing.T) {
			req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tc.user != "" {
				req.SetBasicAuth(tc.user, tc.pass)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			if _, err := body.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			if !strings.Contains(body.String(), tc.wantBody) {
				t.Errorf("body does not contain %q", tc.wantBody)
			}
		})
	}
}

// The image entrypoint refuses an open stats page and reads *_FILE secrets.
func TestEntrypointPassword(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Fatalf("sh: %v", err)
	}
	secret := filepath.Join(t.TempDir(), "stats-password")
	if err := os.WriteFile(secret, []byte("from-file"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      []string
		wantCode int
		wantOut  string // in stdout+stderr
	}{
		{"no password", nil, 1, "refusing to start"},
		{"empty password", []string{"HAPROXY_STATS_PASSWORD="}, 1, "refusing to start"},
		{"unreadable file", []string{"HAPROXY_STATS_PASSWORD_FILE=/nonexistent/x"}, 1, "is not readable"},
		{"password file", []string{"HAPROXY_STATS_PASSWORD_FILE=" + secret}, 0, "HAPROXY_STATS_PASSWORD=from-file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			// A command other than haproxy runs after the password checks: `env` shows
			// what haproxy would get.
			cmd := exec.Command("sh", "entrypoint.sh", "env")
			cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, tc.env...)
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tc.wantCode {
				t.Fatalf("exit code %d, want %d\n%s", code, tc.wantCode, out)
			}
			if !strings.Contains(string(out), tc.wantOut) {
				t.Errorf("output %q does not contain %q", out, tc.wantOut)
			}
		})
	}
}
