package runner

import (
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr []string // every one must appear in the error
		notErr  []string // none may appear in it
	}{
		{name: "defaults", env: nil},
		{name: "smaller run", env: map[string]string{"BENCH_MESSAGES": "100000", "BENCH_SCALE": "1,2", "BENCH_MODES": "0"}},
		{name: "bad values", env: map[string]string{
			"BENCH_MESSAGES": "10", "BENCH_SIZE": "3", "BENCH_CONNS": "0", "BENCH_MODES": "0,5",
			"BENCH_INGESTS": "4", "BENCH_REDIS_MODE": "cluster", "BENCH_CEILING_REQUESTS": "1",
		}, wantErr: []string{"BENCH_MESSAGES", "BENCH_SIZE", "BENCH_CONNS", "BENCH_MODES", "BENCH_INGESTS", "BENCH_REDIS_MODE", "BENCH_CEILING_REQUESTS"}},
		{name: "unparsable", env: map[string]string{"BENCH_MESSAGES": "many"}, wantErr: []string{"BENCH_MESSAGES: not a valid int"}},
		{name: "unparsable and invalid, reported together", env: map[string]string{
			"BENCH_MESSAGES": "many", "BENCH_TIMEOUT": "soon", "BENCH_CONNS": "0", "BENCH_SHIPPED_MODE": "3",
		}, wantErr: []string{"BENCH_MESSAGES: not a valid int", "BENCH_TIMEOUT: not a valid time.Duration", "BENCH_CONNS: 0 must be at least 1", "BENCH_SHIPPED_MODE: 3 is not 0, 1 or 2"},
			notErr: []string{"BENCH_MESSAGES: 0", "BENCH_TIMEOUT: 0s"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(func(k string) string { return tc.env[k] })
			if len(tc.wantErr) == 0 {
				if err != nil {
					t.Fatalf("Load: %v", err)
				}
				if cfg.Conns != 16 || cfg.Size != 100 || cfg.ShippedMode != 2 {
					t.Fatalf("defaults not applied: %+v", cfg)
				}
				return
			}
			if err == nil {
				t.Fatalf("Load accepted %v", tc.env)
			}
			for _, v := range tc.wantErr {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("error lacks %q:\n%v", v, err)
				}
			}
			for _, v := range tc.notErr {
				if strings.Contains(err.Error(), v) {
					t.Errorf("error has %q:\n%v", v, err)
				}
			}
		})
	}
}

func TestPrintVariables(t *testing.T) {
	var b strings.Builder
	PrintVariables(&b)
	for _, v := range []string{"BENCH_MESSAGES", "2000000", "BENCH_MODES", "0,1,2", "BENCH_OUT"} {
		if !strings.Contains(b.String(), v) {
			t.Errorf("table lacks %q:\n%s", v, b.String())
		}
	}
}
