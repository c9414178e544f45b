package report

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-ingest/sluice/internal/loadresult"
)

func sample() Results {
	run := func(tput, p99 float64) Run {
		return Run{Load: loadresult.Result{MsgsPerSec: tput, MBPerSec: tput / 1e4, LatencyP99: p99}, IngestRSSMiB: 30}
	}
	return Results{
		Date: time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC), Commit: "abc123", Machine: "test box", Versions: "v",
		Messages: 1000, Size: 100, Conns: 4, Window: 10, Ingests: 1, Ceiling: 1_000_000, CeilingD: 900_000,
		Modes: []Mode{
			{MinReplicas: 0, Full: run(600_000, 20_000), Half: run(300_000, 3_000)},
			{MinReplicas: 2, Shipped: true, Full: run(200_000, 40_000), Half: run(100_000, 9_000)},
		},
		ScaleMode: 2,
		Scale:     []Scale{{Ingests: 1, Run: run(200_000, 40_000)}, {Ingests: 2, Run: run(190_000, 45_000)}},
	}
}

func TestWriteMarkdown(t *testing.T) {
	var b bytes.Buffer
	if err := WriteMarkdown(&b, sample()); err != nil {
		t.Fatal(err)
	}
	md := b.String()
	tests := []struct{ name, want string }{
		{"commit", "`abc123`"},
		{"machine", "test box"},
		{"ratio mode 0", "**60%**"},
		{"ratio shipped", "**20%**"},
		{"target met", "≥ 50% of the ceiling: 60% — met"},
		{"target missed", "≥ 25% of the ceiling: 20% — **missed**"},
		{"latency missed", "MIN_REPLICAS=2 (shipped default): 9.00 ms — **missed**"},
		{"latency met", "MIN_REPLICAS=0: 3.00 ms — met"},
		{"scaling", "| 2 | 190000 |"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(md, tc.want) {
				t.Fatalf("results.md lacks %q:\n%s", tc.want, md)
			}
		})
	}
}

func TestWriteChart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chart.png")
	if err := WriteChart(path, sample()); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("chart is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 600 || b.Dy() < 300 {
		t.Fatalf("chart is %v", b)
	}
}

func TestWriteFilesAndRender(t *testing.T) {
	dir := t.TempDir()
	if err := WriteFiles(dir, sample()); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "results.md"))
	os.Remove(filepath.Join(dir, "chart.png"))
	if err := Render(dir); err != nil {
		t.Fatal(err)
	}
	again, err := os.ReadFile(filepath.Join(dir, "results.md"))
	if err != nil {
		t.Fatal(err)
	}
	if string(first) != string(again) {
		t.Fatalf("re-rendered results.md differs:\n%s\n---\n%s", first, again)
	}
	if _, err := os.Stat(filepath.Join(dir, "chart.png")); err != nil {
		t.Fatalf("chart not re-rendered: %v", err)
	}
}
