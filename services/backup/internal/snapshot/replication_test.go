package snapshot

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestCopyUntilMark(t *testing.T) {
	mark := []byte(strings.Repeat("M", eofMarkLen-4) + "1234")
	payload := bytes.Repeat([]byte("0123456789abcdef"), 300000) // 4.8 MB: several chunks
	tests := []struct {
		name    string
		stream  []byte
		oneByte bool
		want    []byte
		err     error
	}{
		{"whole", append(append([]byte{}, payload...), mark...), false, payload, nil},
		{"byte by byte (mark split across reads)", append([]byte("small rdb"), mark...), true, []byte("small rdb"), nil},
		{"empty payload", mark, false, []byte{}, nil},
		{"near-miss of the mark inside the data", append(append([]byte("x"), mark[:eofMarkLen-1]...), append([]byte("y"), mark...)...), true,
			append(append([]byte("x"), mark[:eofMarkLen-1]...), 'y'), nil},
		{"no mark: truncated", payload[:100000], false, nil, ErrTruncated},
		{"half a mark: truncated", append([]byte("data"), mark[:20]...), true, nil, ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r = bytes.NewReader(tc.stream)
			var out bytes.Buffer
			var err error
			var n int64
			if tc.oneByte {
				n, err = copyUntilMark(&out, iotest.OneByteReader(r), mark, nil)
			} else {
				n, err = copyUntilMark(&out, r, mark, nil)
			}
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err = %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), tc.want) || n != int64(len(tc.want)) {
				t.Fatalf("copied %d bytes (n=%d), want %d", out.Len(), n, len(tc.want))
			}
		})
	}
}

func TestCopyN(t *testing.T) {
	data := bytes.Repeat([]byte("z"), 3<<20)
	tests := []struct {
		name string
		n    int64
		in   []byte
		err  error
	}{
		{"exact", int64(len(data)), data, nil},
		{"stops at n", 10, data, nil},
		{"short stream", int64(len(data)) + 1, data, ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			var calls int
			got, err := copyN(&out, iotest.HalfReader(bytes.NewReader(tc.in)), tc.n, func(int64) { calls++ })
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.err == nil && (got != tc.n || int64(out.Len()) != tc.n || calls == 0) {
				t.Fatalf("copied %d (buffer %d, %d progress calls), want %d", got, out.Len(), calls, tc.n)
			}
		})
	}
}
