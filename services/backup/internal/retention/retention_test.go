package retention

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func name(ts string) string { return "sluice-" + ts + ".rdb" }

func TestPlan(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	// hourly snapshots for 10 days, newest 2026-11-27 11:00
	var all []string
	for h := 0; h < 240; h++ {
		all = append(all, name(now.Add(-time.Duration(h+1)*time.Hour).Format("20060102T150405.000Z")))
	}
	tests := []struct {
		name   string
		policy Policy
		keep   []string
	}{
		{"last 3 only", Policy{KeepLast: 3}, []string{
			name("20261127T110000.000Z"), name("20261127T100000.000Z"), name("20261127T090000.000Z")}},
		{"last 2 plus 3 days", Policy{KeepLast: 2, DailyDays: 3}, []string{
			name("20261127T110000.000Z"), name("20261127T100000.000Z"), // last 2 (the first is also today's daily)
			name("20261126T230000.000Z"), name("20261125T230000.000Z")}}, // newest of the 2 previous days
		{"keep last 0 still keeps the newest", Policy{KeepLast: 0}, []string{name("20261127T110000.000Z")}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keep, remove := tc.policy.Plan(append(all, "unrelated.txt", "sluice-bad.rdb"), now)
			if !slices.Equal(keep, tc.keep) {
				t.Fatalf("keep = %v, want %v", keep, tc.keep)
			}
			if len(keep)+len(remove) != len(all) {
				t.Fatalf("keep %d + remove %d != %d snapshots", len(keep), len(remove), len(all))
			}
		})
	}
}

func TestApply(t *testing.T) {
	dir := t.TempDir()
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	files := []string{}
	for _, ts := range []string{"20261127T110000.000Z", "20261127T100000.000Z", "20261120T100000.000Z"} {
		files = append(files, name(ts), name(ts)+".sha256", name(ts)+".json")
	}
	files = append(files, name("20261101T000000.000Z")+".json", "notes.txt") // orphan sidecar, foreign file
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	removed, err := Policy{KeepLast: 1, DailyDays: 1}.Apply(dir, now)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{name("20261127T100000.000Z"), name("20261120T100000.000Z")}; !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	want := []string{"notes.txt", name("20261127T110000.000Z"), name("20261127T110000.000Z") + ".json", name("20261127T110000.000Z") + ".sha256"}
	if !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v", left, want)
	}
}
