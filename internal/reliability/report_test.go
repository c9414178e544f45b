package reliability

import (
	"strings"
	"testing"
)

func TestSplice(t *testing.T) {
	tests := []struct {
		name    string
		doc     string
		want    string
		wantErr bool
	}{
		{
			name: "replaces old table",
			doc:  "intro\n" + BeginMarker + "\nold row\n" + EndMarker + "\nafter\n",
			want: "intro\n" + BeginMarker + "\nNEW\n" + EndMarker + "\nafter\n",
		},
		{
			name: "empty section",
			doc:  BeginMarker + EndMarker,
			want: BeginMarker + "\nNEW\n" + EndMarker,
		},
		{name: "missing end", doc: BeginMarker + "\nx\n", wantErr: true},
		{name: "missing begin", doc: "x\n" + EndMarker, wantErr: true},
		{name: "reversed", doc: EndMarker + "\n" + BeginMarker, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Splice(tt.doc, "NEW\n")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteLoadTable(t *testing.T) {
	dir := t.TempDir()
	in := []Result{
		{ID: "06b", Name: "partition | 1 of 2", Setting: "INGEST_MIN_REPLICAS=1", LossAllowed: true,
			Attempted: 10, Acked: 9, Lost: 3, AcksResumeMS: -1, AcksAfterHealMS: -1, Failures: []string{"3 acked messages lost"}},
		{ID: "01", Name: "kill ingest", Setting: "INGEST_MIN_REPLICAS=2", Attempted: 100, Acked: 100,
			Duplicates: 2, AcksResumeMS: 1500, AcksAfterHealMS: 4250, RateBefore: 900, Pass: true},
		{ID: "03", Name: "kill master", Setting: "default", Lost: 1, AcksResumeMS: 10,
			Failures: []string{"1 acked messages lost"}},
	}
	for _, r := range in {
		if err := Write(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != "01" || got[1].ID != "03" || got[2].ID != "06b" {
		t.Fatalf("loaded %+v, want IDs 01, 03, 06b in order", got)
	}
	if got[2].Lost != 3 || !got[2].LossAllowed {
		t.Fatalf("round trip lost fields: %+v", got[2])
	}
	table := Table(got)
	rows := strings.Split(strings.TrimSpace(table), "\n")
	if len(rows) != 2+3 {
		t.Fatalf("table has %d lines, want 5:\n%s", len(rows), table)
	}
	for _, want := range []string{
		"| 01 | kill ingest |", "| 1.50 s | 4.25 s |", "| pass |", "2 (0)",
		"**FAIL**: 1 acked messages lost", "unsafe setting: 3 acked messages lost",
		`partition \| 1 of 2`, "not during run",
	} {
		if !strings.Contains(table, want) {
			t.Errorf("table misses %q:\n%s", want, table)
		}
	}
}
