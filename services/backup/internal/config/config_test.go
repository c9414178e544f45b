package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoad(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string // every one must appear in the error
		check   func(t *testing.T, c Config)
	}{
		{"sentinel defaults", map[string]string{"BACKUP_SENTINEL_ADDRS": "sentinel-1:26379, sentinel-2:26379"}, nil,
			func(t *testing.T, c Config) {
				if len(c.SentinelAddrs) != 2 || c.SentinelAddrs[1] != "sentinel-2:26379" || c.SentinelMaster != "sluice" ||
					c.Dir != "/backups" || c.Interval != time.Hour || c.AdminAddr != ":8087" || c.Key != "data_queue" {
					t.Fatalf("defaults: %+v", c)
				}
			}},
		{"password file", map[string]string{"BACKUP_REDIS_ADDR": "redis:6379", "BACKUP_REDIS_PASSWORD_FILE": secret}, nil,
			func(t *testing.T, c Config) {
				if c.RedisPassword != "s3cret" {
					t.Fatalf("password %q", c.RedisPassword)
				}
			}},
		{"nothing set", map[string]string{}, []string{"BACKUP_SENTINEL_ADDRS"}, nil},
		{"both modes", map[string]string{"BACKUP_REDIS_ADDR": "a:1", "BACKUP_SENTINEL_ADDRS": "b:2"}, []string{"BACKUP_REDIS_ADDR"}, nil},
		{"every bad value named", map[string]string{
			"BACKUP_SENTINEL_ADDRS": "nohost", "BACKUP_INTERVAL": "10ms", "BACKUP_KEEP_LAST": "0",
			"BACKUP_KEEP_DAILY_DAYS": "-1", "BACKUP_ADMIN_ADDR": "x", "BACKUP_LOG_LEVEL": "loud",
			"BACKUP_REDIS_PASSWORD": "a", "BACKUP_REDIS_PASSWORD_FILE": secret, "BACKUP_ATTEMPTS": "0",
			"BACKUP_COPY_DIR": "/backups/",
		}, []string{"BACKUP_COPY_DIR", "BACKUP_SENTINEL_ADDRS", "BACKUP_INTERVAL", "BACKUP_KEEP_LAST", "BACKUP_KEEP_DAILY_DAYS",
			"BACKUP_ADMIN_ADDR", "BACKUP_LOG_LEVEL", "BACKUP_REDIS_PASSWORD", "BACKUP_ATTEMPTS"}, nil},
		{"unparsable", map[string]string{"BACKUP_REDIS_ADDR": "a:1", "BACKUP_INTERVAL": "soon"}, []string{"BACKUP_INTERVAL: not a valid"}, nil},
		{"unparsable and invalid, reported together", map[string]string{"BACKUP_INTERVAL": "soon", "BACKUP_KEEP_LAST": "many", "BACKUP_ATTEMPTS": "0"},
			[]string{"BACKUP_INTERVAL: not a valid time.Duration", "BACKUP_KEEP_LAST: not a valid int", "BACKUP_ATTEMPTS: 0 must be at least 1", "BACKUP_SENTINEL_ADDRS: set it"}, nil},
		{"missing password file", map[string]string{"BACKUP_REDIS_ADDR": "a:1", "BACKUP_SENTINEL_PASSWORD_FILE": "/nonexistent"}, []string{"BACKUP_SENTINEL_PASSWORD_FILE"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(func(k string) string { return tc.env[k] })
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				tc.check(t, c)
				return
			}
			if err == nil {
				t.Fatalf("Load succeeded, want errors naming %v", tc.wantErr)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not name %s:\n%v", w, err)
				}
			}
			// a variable that did not parse is not also judged by Validate
			if strings.Count(err.Error(), "BACKUP_INTERVAL:") > 1 || strings.Count(err.Error(), "BACKUP_KEEP_LAST:") > 1 {
				t.Errorf("a variable is reported twice:\n%v", err)
			}
		})
	}
}
