package status

import (
	"strings"
	"testing"
)

// testdata/stats.csv is HAProxy 2.6's /stats;csv of the compose stack with 3
// ingest containers (server-template with 10 slots per backend).
func TestBackends(t *testing.T) {
	healthy := readFixture(t, "stats.csv")
	// ingest2 of the TCP backend failed its checks.
	oneDown := strings.Replace(healthy, "ingest,ingest2,", "ingest,ingest2,", 1)
	lines := strings.Split(oneDown, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "ingest,ingest2,") {
			f := strings.Split(l, ",")
			f[17] = "DOWN" // status column
			lines[i] = strings.Join(f, ",")
		}
	}
	oneDown = strings.Join(lines, "\n")

	type want struct {
		name          string
		up, servers   int
		unused        int
		backendStatus string
	}
	tests := []struct {
		name string
		csv  string
		want []want
	}{
		{"healthy", healthy, []want{
			{"ingest", 3, 3, 7, "UP"}, {"ingest_noack", 3, 3, 7, "UP"}, {"ingest_http", 3, 3, 7, "UP"},
		}},
		{"one server down", oneDown, []want{
			{"ingest", 2, 3, 7, "UP"}, {"ingest_noack", 3, 3, 7, "UP"}, {"ingest_http", 3, 3, 7, "UP"},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rows, err := ParseStatsCSV(tc.csv)
			if err != nil {
				t.Fatal(err)
			}
			var got []Backend
			for _, b := range Backends(rows) {
				if b.Status != "" {
					got = append(got, b)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d backends %+v, want %d", len(got), got, len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Name != w.name || g.Up() != w.up || len(g.Servers) != w.servers || g.Unused != w.unused || g.Status != w.backendStatus {
					t.Errorf("backend %d = %s %s %d/%d UP, %d unused; want %s %s %d/%d, %d unused",
						i, g.Name, g.Status, g.Up(), len(g.Servers), g.Unused, w.name, w.backendStatus, w.up, w.servers, w.unused)
				}
			}
		})
	}
}

func TestParseStatsCSVRejectsOtherPages(t *testing.T) {
	for _, text := range []string{"", "<html>401 Unauthorized</html>", "a,b\n1,2\n"} {
		if _, err := ParseStatsCSV(text); err == nil {
			t.Errorf("ParseStatsCSV(%q) succeeded", text)
		}
	}
}
