package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-ingest/sluice/internal/reliability"
)

func TestRun(t *testing.T) {
	noEnv := func(string) string { return "" }
	tests := []struct {
		name     string
		results  []reliability.Result
		doc      string
		wantErr  string
		wantInMD []string
	}{
		{
			name: "updates the table between the markers",
			results: []reliability.Result{
				{ID: "01", Name: "SIGKILL one ingest", Setting: "INGEST_MIN_REPLICAS=2", Acked: 5, Pass: true, AcksResumeMS: 20},
			},
			doc:      "# R\n\n" + reliability.BeginMarker + "\nstale\n" + reliability.EndMarker + "\ntail\n",
			wantInMD: []string{"# R\n", "| 01 | SIGKILL one ingest |", "tail\n"},
		},
		{name: "no results", doc: reliability.BeginMarker + reliability.EndMarker, wantErr: "no scenario-*.json"},
		{
			name:    "doc without markers",
			results: []reliability.Result{{ID: "01"}},
			doc:     "# R\n",
			wantErr: "markers",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			out := filepath.Join(dir, "out")
			if err := os.MkdirAll(out, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.results {
				if err := reliability.Write(out, r); err != nil {
					t.Fatal(err)
				}
			}
			doc := filepath.Join(dir, "RELIABILITY.md")
			if err := os.WriteFile(doc, []byte(tt.doc), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), []string{"-in", out, "-doc", doc}, noEnv, &stdout, &stderr)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(doc)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(b), "stale") {
				t.Errorf("old table kept:\n%s", b)
			}
			for _, w := range tt.wantInMD {
				if !strings.Contains(string(b), w) {
					t.Errorf("doc misses %q:\n%s", w, b)
				}
			}
		})
	}
}
