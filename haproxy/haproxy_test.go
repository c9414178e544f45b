package haproxy_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
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

// keepalivedEnv is a valid KEEPALIVED_* environment with the given entries
// replaced or added.
func keepalivedEnv(extra ...string) []string {
	env := map[string]string{
		"KEEPALIVED_VIP": "10.77.0.100", "KEEPALIVED_INTERFACE": "eth0",
		"KEEPALIVED_PRIORITY":  "150",
		"KEEPALIVED_ROUTER_ID": "51", "KEEPALIVED_UNICAST_SRC_IP": "10.77.0.11", "KEEPALIVED_UNICAST_PEER": "10.77.0.12",
	}
	for _, e := range extra {
		k, v, _ := strings.Cut(e, "=")
		env[k] = v
	}
	out := []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// The entrypoint renders keepalived's config from KEEPALIVED_* (the render
// step the image runs before starting keepalived beside HAProxy) and rejects
// bad values by name; keepalived itself accepts the rendered file (when
// installed: tools/deps.sh test installs it).
func TestKeepalivedConfig(t *testing.T) {
	tests := []struct {
		name    string
		env     []string
		want    []string // lines of the rendered config, trimmed
		wantErr string
	}{
		{"primary", keepalivedEnv(), []string{
			"interface eth0", "virtual_router_id 51", "priority 150", "advert_int 1", "unicast_src_ip 10.77.0.11",
			"10.77.0.12", "10.77.0.100/32 dev eth0", "chk_haproxy", "state BACKUP",
			`script "/usr/bin/env HAPROXY_STATS_PORT=8404 /usr/local/bin/sluice-haproxy healthcheck"`,
		}, ""},
		{"backup with a stats port and prefix", keepalivedEnv("KEEPALIVED_PRIORITY=100",
			"HAPROXY_STATS_PORT=9404", "KEEPALIVED_VIP_PREFIX=24"), []string{
			"priority 100", "10.77.0.100/24 dev eth0",
			`script "/usr/bin/env HAPROXY_STATS_PORT=9404 /usr/local/bin/sluice-haproxy healthcheck"`,
		}, ""},
		{"no vip", keepalivedEnv("KEEPALIVED_VIP="), nil, "KEEPALIVED_VIP= is not an IPv4 address"},
		{"bad vip", keepalivedEnv("KEEPALIVED_VIP=10.77.0.256"), nil, "KEEPALIVED_VIP=10.77.0.256 is not an IPv4 address"},
		{"priority 255 is the address owner's", keepalivedEnv("KEEPALIVED_PRIORITY=255"), nil, "KEEPALIVED_PRIORITY=255 is not a priority"},
		{"router id 0", keepalivedEnv("KEEPALIVED_ROUTER_ID=0"), nil, "KEEPALIVED_ROUTER_ID=0"},
		{"no peer", keepalivedEnv("KEEPALIVED_UNICAST_PEER="), nil, "KEEPALIVED_UNICAST_PEER= is not an IPv4 address"},
		{"peer is self", keepalivedEnv("KEEPALIVED_UNICAST_PEER=10.77.0.11"), nil, "must differ"},
		{"interface injection", keepalivedEnv("KEEPALIVED_INTERFACE=eth0 }"), nil, "is not an interface name"},
		{"bad stats port", keepalivedEnv("HAPROXY_STATS_PORT=84x"), nil, "HAPROXY_STATS_PORT=84x is not a port number"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("sh", "entrypoint.sh", "keepalived-config")
			cmd.Env = tc.env
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(stderr.String(), tc.wantErr) {
					t.Fatalf("err %v stderr %q, want a failure mentioning %q", err, stderr.String(), tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("render: %v\n%s", err, stderr.String())
			}
			lines := map[string]bool{}
			for _, l := range strings.Split(stdout.String(), "\n") {
				lines[strings.TrimSpace(l)] = true
			}
			for _, w := range tc.want {
				if !lines[w] {
					t.Errorf("rendered config lacks %q:\n%s", w, stdout.String())
				}
			}
			bin, err := exec.LookPath("keepalived")
			if err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("keepalived is required in CI: %v", err)
				}
				t.Logf("keepalived not installed, config check skipped: %v", err)
				return
			}
			// keepalived -t wants an interface that exists here and is no loopback.
			iface := vrrpInterface()
			if iface == "" {
				t.Skip("no non-loopback interface for keepalived -t")
			}
			cmd = exec.Command("sh", "entrypoint.sh", "keepalived-config")
			cmd.Env = append(tc.env, "KEEPALIVED_INTERFACE="+iface)
			rendered, err := cmd.Output()
			if err != nil {
				t.Fatalf("render on %s: %v", iface, err)
			}
			conf := filepath.Join(t.TempDir(), "keepalived.conf")
			if err := os.WriteFile(conf, rendered, 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := exec.Command(bin, "-t", "-f", conf).CombinedOutput(); err != nil {
				t.Errorf("keepalived -t: %v\n%s", err, out)
			}
		})
	}
}

// vrrpInterface is an up, non-loopback interface of this machine; "" if none.
func vrrpInterface() string {
	ifaces, err := net.Interfaces()
	if err != nil {
		return ""
	}
	for _, i := range ifaces {
		if i.Flags&net.FlagLoopback == 0 && i.Flags&net.FlagUp != 0 {
			return i.Name
		}
	}
	return ""
}
