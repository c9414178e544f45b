package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// The README's configuration table must list every variable of `ingest -h`
// with the same default, so the documentation cannot drift from the code.
func TestREADMEConfigTable(t *testing.T) {
	var help bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, func(string) string { return "" }, &help, &bytes.Buffer{}); err != nil {
		t.Fatalf("ingest -h: %v", err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := 0
	sc := bufio.NewScanner(&help)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 || !strings.HasPrefix(fields[0], "INGEST_") {
			continue
		}
		rows++
		name, def := fields[0], fields[1]
		t.Run(name, func(t *testing.T) {
			want := "| `" + name + "` | `" + def + "` |"
			if !bytes.Contains(readme, []byte(want)) {
				t.Errorf("README.md has no row starting %q (ingest -h says the default is %s)", want, def)
			}
		})
	}
	if rows < 20 {
		t.Fatalf("ingest -h listed %d INGEST_ variables; the table parser is broken", rows)
	}
}
