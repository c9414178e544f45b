package main

import (
	"os"
	"testing"

	"github.com/sluice-ingest/sluice/internal/ingesttest"
)

// The producer tests run the ingest binary as a process (internal/ingesttest),
// built once without -race so it runs at its real speed and its RSS can be read.
func TestMain(m *testing.M) {
	code := m.Run()
	ingesttest.Remove()
	os.Exit(code)
}
