package load

import (
	"strings"
	"testing"
)

func TestPayloadRoundTrip(t *testing.T) {
	tests := []struct {
		name  string
		runID string
		conn  int
		seq   int
		size  int
	}{
		{name: "100 bytes", conn: 3, seq: 12345, size: 100},
		{name: "with run id", runID: "r42-", conn: 15, seq: 2_000_000, size: 100},
		{name: "prefix longer than size", conn: 1, seq: 99999, size: 4},
		{name: "exactly the prefix", conn: 0, seq: 1, size: 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Payload(nil, tc.runID, tc.conn, tc.seq, tc.size)
			if len(p) < tc.size {
				t.Fatalf("len %d < size %d", len(p), tc.size)
			}
			if strings.ContainsAny(string(p), "\r\n") {
				t.Fatalf("payload %q holds a newline", p)
			}
			conn, seq, err := CheckPayload(p, tc.runID)
			if err != nil || conn != tc.conn || seq != tc.seq {
				t.Fatalf("CheckPayload(%q) = %d, %d, %v", p, conn, seq, err)
			}
		})
	}
}

func TestPayloadDetectsDamage(t *testing.T) {
	p := Payload(nil, "", 2, 77, 60)
	tests := []struct {
		name string
		b    []byte
	}{
		{name: "flipped filler", b: func() []byte { b := append([]byte(nil), p...); b[40]++; return b }()},
		{name: "truncated prefix", b: p[:3]},
		{name: "other run", b: Payload(nil, "x", 2, 77, 60)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := CheckPayload(tc.b, ""); err == nil {
				t.Fatalf("CheckPayload(%q) accepted damage", tc.b)
			}
		})
	}
}

func TestPayloadsAreUnique(t *testing.T) {
	seen := map[string]bool{}
	for conn := range 16 {
		for seq := 1; seq <= 2000; seq++ {
			p := string(Payload(nil, "", conn, seq, 100))
			if seen[p] {
				t.Fatalf("duplicate payload %q", p)
			}
			seen[p] = true
		}
	}
}

func TestValidate(t *testing.T) {
	good := Options{Addr: "x:1", Messages: 10, Size: 100, Conns: 2, Window: 10, Timeout: 1}
	if err := good.Validate(); err != nil {
		t.Fatalf("good options: %v", err)
	}
	bad := Options{Size: 1, Rate: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatalf("bad options accepted")
	}
	for _, flag := range []string{"-addr", "-n", "-c", "-size", "-rate", "-window", "-timeout"} {
		if !strings.Contains(err.Error(), flag) {
			t.Errorf("error does not name %s: %v", flag, err)
		}
	}
}

func BenchmarkPayload(b *testing.B) {
	buf := make([]byte, 0, 100)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = Payload(buf[:0], "", 7, i, 100)
	}
}
