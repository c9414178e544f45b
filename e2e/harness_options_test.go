//go:build e2e

package e2e

import (
	"strings"
	"testing"
)

// TestShippedEnv reads compose/compose.yaml as the suite does: a service's
// own variable, one merged in from an x- anchor, a "${VAR:-default}", and a
// variable that is not there. The Redis ports the harness gives its nodes
// are the ones compose gives them.
func TestShippedEnv(t *testing.T) {
	root := repoRoot(t)
	tests := []struct {
		service, key, want, wantErr string
	}{
		{"ingest", "INGEST_MIN_REPLICAS", "2", ""},
		{"sentinel-1", "SENTINEL_DOWN_AFTER_MS", "5000", ""},
		{"redis-1", "REDIS_INITIAL_MASTER", "redis-1:6379", ""},
		{"ingest", "NO_SUCH_VARIABLE", "", "no services.ingest.environment.NO_SUCH_VARIABLE"},
	}
	for name, port := range redisPorts {
		tests = append(tests, struct{ service, key, want, wantErr string }{name, "REDIS_PORT", port, ""})
	}
	for _, tc := range tests {
		t.Run(tc.service+"/"+tc.key, func(t *testing.T) {
			got, err := shippedEnv(root, tc.service, tc.key)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
