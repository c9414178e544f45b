package topology

import "testing"

// TestComposeValues: interpolation with an empty environment, memory sizes
// and port forms as compose.yaml writes them.
func TestComposeValues(t *testing.T) {
	cases := []struct {
		name, got, want string
	}{
		{"default", interpolate("${TAG:-dev}"), "dev"},
		{"default without colon", interpolate("${TAG-dev}"), "dev"},
		{"required", interpolate("${REDIS_PASSWORD:?set it}"), "<REDIS_PASSWORD>"},
		{"bare", interpolate("a $HOST b"), "a <HOST> b"},
		{"escaped dollar", interpolate("$$HOME"), "$HOME"},
		{"required env value", envValue(interpolate("${P:?x}")), "<required>"},
		{"short port", must(composePort("9501")), "0.0.0.0::9501/tcp"},
		{"long port", must(composePort("${BIND:-127.0.0.1}:9090:9090/udp")), "127.0.0.1:9090:9090/udp"},
		{"port map", must(composePort(map[string]any{"target": 8404, "published": "8404", "host_ip": "127.0.0.1"})), "127.0.0.1:8404:8404/tcp"},
		{"health", healthString([]string{"CMD", "x"}, "3s", "", "0s", 3), `test=["CMD" "x"] interval=3s timeout=default start_period=default retries=3`},
		{"no health", healthString([]string{"NONE"}, "3s", "", "", 0), ""},
		{"repository", repository("localhost:5000/sluice/ingest:dev"), "localhost:5000/sluice/ingest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got %q, want %q", tc.got, tc.want)
			}
		})
	}
}

func must(s string, err error) string {
	if err != nil {
		return "error: " + err.Error()
	}
	return s
}

func TestMemMiB(t *testing.T) {
	cases := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"2g", 2048, false}, {"512m", 512, false}, {"512M", 512, false}, {"1048576", 1, false},
		{"2048k", 2, false}, {"", 0, true}, {"lots", 0, true},
	}
	for _, tc := range cases {
		got, err := memMiB(tc.in)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("memMiB(%q) = %d, %v; want %d, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}
