package config

import (
	"errors"
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
	host := func() (string, error) { return "box-1", nil }
	noHost := func() (string, error) { return "", errors.New("no uts") }
	tests := []struct {
		name     string
		env      map[string]string
		hostname func() (string, error)
		wantErr  string
		check    func(t *testing.T, c Config)
	}{
		{"defaults", map[string]string{"CONSUMER_SENTINEL_ADDRS": "s-1:26379, s-2:26379"}, host, "", func(t *testing.T, c Config) {
			if len(c.SentinelAddrs) != 2 || c.SentinelAddrs[1] != "s-2:26379" || c.SentinelMaster != "sluice" || c.Key != "data_queue" ||
				c.Name != "box-1" || c.Batch != 100 || c.Block != time.Second || c.RetryTimeout != 30*time.Second {
				t.Fatalf("defaults: %+v", c)
			}
		}},
		{"name set, no hostname needed", map[string]string{"CONSUMER_REDIS_ADDR": "r:6379", "CONSUMER_NAME": "w1", "CONSUMER_REDIS_PASSWORD_FILE": secret}, noHost, "",
			func(t *testing.T, c Config) {
				if c.Name != "w1" || c.RedisPassword != "s3cret" {
					t.Fatalf("%+v", c)
				}
			}},
		{"no name and no hostname", map[string]string{"CONSUMER_REDIS_ADDR": "r:6379"}, noHost, "CONSUMER_NAME: unset and no hostname", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(func(k string) string { return tc.env[k] }, tc.hostname)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}
