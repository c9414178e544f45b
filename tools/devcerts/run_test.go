package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sluice-ingest/sluice/internal/cli"
)

func TestCommandLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	tests := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		usageErr bool // the usage on stderr
	}{
		{"writes the files", []string{"-dir", dir, "-hosts", "a.example"}, 0, "server.pem", false},
		{"version", []string{"-version"}, 0, "devcerts ", false},
		{"help", []string{"-h"}, 0, "Usage: devcerts", false},
		{"bad flag", []string{"-bogus"}, 2, "", true},
		{"extra argument", []string{"x"}, 2, "", true},
		{"bad days", []string{"-dir", dir, "-days", "0"}, 1, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, os.Getenv, &out, &errb)
			if code := cli.Exit("devcerts", err, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d (%v)", code, tc.code, err)
			}
			if !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q lacks %q", out.String(), tc.stdout)
			}
			if got := strings.Contains(errb.String(), "Usage:"); got != tc.usageErr {
				t.Errorf("usage on stderr %v, want %v: %q", got, tc.usageErr, errb.String())
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); err != nil {
		t.Error(err)
	}
}
