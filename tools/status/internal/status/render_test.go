package status

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the testdata/screen_*.txt golden files")

// snapshotFixture builds a healthy Snapshot from the fixtures of the compose stack.
func snapshotFixture(t *testing.T) Snapshot {
	t.Helper()
	now := time.Date(2026, 12, 2, 7, 40, 0, 0, time.UTC)
	info, err := ParseReplication(readFixture(t, "info_master.txt"))
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]string{"redis-2:6379": "slave", "redis-3:6379": "slave"}
	rows, err := ParseStatsCSV(readFixture(t, "stats.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var backends []Backend
	for _, b := range Backends(rows) {
		if b.Status != "" {
			backends = append(backends, b)
		}
	}
	ck := "OK 3 usable Sentinels. Quorum and failover authorization can be reached"
	s := Snapshot{
		Time: now, Key: "data_queue", BackupMaxAge: 2 * time.Hour,
		Master: Master{Addr: "redis-1:6379", Role: info.Role, Offset: info.Offset, QueueLen: 4300000,
			Replicas: mergeReplicas(info.Offset, info.Replicas, flags)},
		Sentinels: []SentinelView{
			{Addr: "sentinel-1:26379", Master: "redis-1:6379", Quorum: "2", CkQuorum: ck},
			{Addr: "sentinel-2:26379", Master: "redis-1:6379", Quorum: "2", CkQuorum: ck},
			{Addr: "sentinel-3:26379", Master: "redis-1:6379", Quorum: "2", CkQuorum: ck},
		},
		Ingests: []IngestView{
			{Name: "sluice_ingest_1", Addr: "172.20.0.10:8086", Ready: true},
			{Name: "sluice_ingest_2", Addr: "172.20.0.9:8086", Ready: true},
			{Name: "sluice_ingest_3", Addr: "172.20.0.11:8086", Ready: true},
		},
		Rate: RateFrom(
			[][]Sample{metricsFixture(t, "ingest_a1.txt"), metricsFixture(t, "ingest_b1.txt")},
			[][]Sample{metricsFixture(t, "ingest_a2.txt"), metricsFixture(t, "ingest_b2.txt")},
			[]time.Duration{time.Second, time.Second}, []error{nil, nil}),
		HAProxy: backends,
		Backup:  BackupFrom(metricsFixture(t, "backup.txt")),
	}
	s.Backup.LastSuccess = now.Add(-12*time.Minute - 3*time.Second)
	return s
}

func TestRender(t *testing.T) {
	refused := errors.New("dial tcp: lookup redis-1 on 127.0.0.11:53: no such host")
	tests := []struct {
		name         string
		edit         func(*Snapshot)
		wantProblems []string // substrings, in order
		wantLines    []string // substrings the screen must show
	}{
		{
			name:      "healthy",
			edit:      func(*Snapshot) {},
			wantLines: []string{"OK", "master   redis-1:6379", "replica  redis-2:6379", "replica  redis-3:6379", "3/3 agree master redis-1:6379, quorum 2", "3/3 ready", "data_queue length 4300000", "748754.0 msg/s acked", "p99 ack latency 295 ms", "last snapshot 12m3s ago"},
		},
		{
			name: "degraded",
			edit: func(s *Snapshot) {
				s.Sentinels[2].Master = "redis-2:6379"
				s.Sentinels[1].CkQuorum, s.Sentinels[1].CkErr = "", errors.New("NOQUORUM 1 usable Sentinels")
				s.Master.Replicas[1] = ReplicaView{Addr: "redis-3:6379", Flags: "s_down,slave,disconnected"}
				s.Ingests[1].Ready, s.Ingests[1].Info = false, "503 redis: not the master"
				s.HAProxy[0].Servers[1].Status = "DOWN"
				s.Backup.LastSuccess = s.Time.Add(-3 * time.Hour)
			},
			wantProblems: []string{"2 of 3 Sentinels name redis-1:6379", "sentinel-2:26379 CKQUORUM: NOQUORUM", "replica redis-3:6379 is not connected", "2 of 3 ingest containers ready", "haproxy backend ingest: 2 of 3 servers UP", "backup: last snapshot 3h0m ago"},
			wantLines:    []string{"2/3 DISAGREE: master redis-1:6379", "NOT CONNECTED", "NOT READY: 503 redis: not the master", "ingest        UP    2/3 UP"},
		},
		{
			name: "stack down",
			edit: func(s *Snapshot) {
				for i := range s.Sentinels {
					s.Sentinels[i] = SentinelView{Addr: s.Sentinels[i].Addr, Err: errors.New("dial sentinel " + s.Sentinels[i].Addr + ": no such host")}
				}
				s.Master = Master{}
				s.Ingests, s.IngestErr = nil, errors.New("resolve ingest: lookup ingest: no such host")
				s.Rate = Rate{}
				s.HAProxy, s.HAProxyErr = nil, refused
				s.Backup = BackupView{Err: errors.New("GET http://backup:8087/metrics: no such host")}
			},
			wantProblems: []string{"no Sentinel answered", "sentinel sentinel-1:26379: dial sentinel", "ingest: resolve ingest", "haproxy: dial tcp", "backup: GET"},
			wantLines:    []string{"master unknown: no Sentinel answered", "0/3 answered", "data_queue: unknown (no master)", "ACKS      unknown"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := snapshotFixture(t)
			tc.edit(&s)
			problems := s.Problems()
			if len(problems) != len(tc.wantProblems) && tc.name != "stack down" {
				t.Errorf("problems = %q, want %d like %q", problems, len(tc.wantProblems), tc.wantProblems)
			}
			joined := strings.Join(problems, "\n")
			at := 0
			for _, w := range tc.wantProblems {
				i := strings.Index(joined[at:], w)
				if i < 0 {
					t.Errorf("problems lack %q (in order) after %d:\n%s", w, at, joined)
					continue
				}
				at += i
			}
			var buf bytes.Buffer
			if err := Render(&buf, s); err != nil {
				t.Fatal(err)
			}
			screen := buf.String()
			for _, w := range tc.wantLines {
				if !strings.Contains(screen, w) {
					t.Errorf("screen lacks %q:\n%s", w, screen)
				}
			}
			for i, l := range strings.Split(screen, "\n") {
				if len(l) > 150 {
					t.Errorf("line %d is %d columns wide (more than 150): %q", i+1, len(l), l)
				}
			}
			golden := filepath.Join("testdata", "screen_"+strings.ReplaceAll(tc.name, " ", "_")+".txt")
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (go test -run TestRender -update writes it)", err)
			}
			if screen != string(want) {
				t.Errorf("screen differs from %s (go test -run TestRender -update, then review the diff):\n%s", golden, screen)
			}
		})
	}
}

func TestAgeAndBytes(t *testing.T) {
	ages := map[time.Duration]string{-time.Second: "0s", 45 * time.Second: "45s", 12*time.Minute + 3*time.Second: "12m3s", 5*time.Hour + 2*time.Minute: "5h2m", 76 * time.Hour: "3d4h"}
	for d, want := range ages {
		if got := Age(d); got != want {
			t.Errorf("Age(%s) = %q, want %q", d, got, want)
		}
	}
	sizes := map[float64]string{0: "0 B", 512: "512 B", 1536: "1.5 KiB", 12 << 20: "12.0 MiB"}
	for n, want := range sizes {
		if got := Bytes(n); got != want {
			t.Errorf("Bytes(%v) = %q, want %q", n, got, want)
		}
	}
	if got := Millis(0.2947); got != "295 ms" {
		t.Errorf("Millis = %q", got)
	}
	if got := Millis(0.0123); got != "12.3 ms" {
		t.Errorf("Millis = %q", got)
	}
}
