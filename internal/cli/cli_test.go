package cli

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestExit(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int
		out  string
	}{
		{"ok", nil, 0, ""},
		{"failure", errors.New("dial redis x: refused"), 1, "tool: dial redis x: refused\n"},
		{"usage", Usage(errors.New("unknown command \"x\"")), 2, "tool: unknown command \"x\"\n"},
		{"wrapped usage", fmt.Errorf("parse: %w", Usage(errors.New("-n: bad"))), 2, "tool: parse: -n: bad\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			if got := Exit("tool", tc.err, &b); got != tc.code || b.String() != tc.out {
				t.Fatalf("Exit = %d %q, want %d %q", got, b.String(), tc.code, tc.out)
			}
		})
	}
}
