package status

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		check   func(t *testing.T, c Config)
		wantErr []string // each variable named in the error
	}{
		{name: "defaults reach the compose stack by service name", check: func(t *testing.T, c Config) {
			if strings.Join(c.SentinelAddrs, ",") != "sentinel-1:26379,sentinel-2:26379,sentinel-3:26379" ||
				c.IngestAdmin != "ingest:8086" || c.StatsURL != "http://haproxy:8404/stats;csv" ||
				c.BackupURL != "http://backup:8087/metrics" || c.Sample != time.Second || c.Interval != 2*time.Second {
				t.Errorf("defaults = %+v", c)
			}
		}},
		{name: "password file", env: map[string]string{"STATUS_REDIS_PASSWORD_FILE": pw, "STATUS_REDIS_USERNAME": "admin"}, check: func(t *testing.T, c Config) {
			if c.RedisPassword != "from-file" || c.RedisUsername != "admin" {
				t.Errorf("redis user %q password %q", c.RedisUsername, c.RedisPassword)
			}
		}},
		{name: "parts off", env: map[string]string{"STATUS_HAPROXY_STATS_URL": "off", "STATUS_BACKUP_METRICS_URL": "off"}},
		{name: "bad values", env: map[string]string{
			"STATUS_SENTINEL_ADDRS": "sentinel-1", "STATUS_INGEST_ADMIN": "ingest", "STATUS_HAPROXY_STATS_URL": "haproxy:8404",
			"STATUS_SAMPLE": "0s", "STATUS_INTERVAL": "soon", "STATUS_REDIS_PASSWORD": "x", "STATUS_REDIS_PASSWORD_FILE": pw,
		}, wantErr: []string{"STATUS_SENTINEL_ADDRS", "STATUS_INGEST_ADMIN", "STATUS_HAPROXY_STATS_URL", "STATUS_SAMPLE", "STATUS_INTERVAL", "STATUS_REDIS_PASSWORD"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(func(k string) string { return tc.env[k] })
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if tc.check != nil {
					tc.check(t, c)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %s:\n%v", w, err)
				}
			}
		})
	}
}
