package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// chunkReader returns its data in reads of at most size bytes.
type chunkReader struct {
	data []byte
	size int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), c.size, len(c.data))
	copy(p, c.data[:n])
	c.data = c.data[n:]
	return n, nil
}

func readAll(t *testing.T, r io.Reader, max int) ([]string, error) {
	t.Helper()
	d := NewDecoder(r, max)
	defer d.Release()
	var out []string
	for {
		f, err := d.ReadFrame()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		out = append(out, string(f))
	}
}

func TestDecoder(t *testing.T) {
	long := strings.Repeat("x", 200_000)
	tests := []struct {
		name    string
		in      string
		max     int
		want    []string
		wantErr error
	}{
		{name: "empty stream", in: "", max: 10, want: nil},
		{name: "one frame", in: "hello\n", max: 10, want: []string{"hello"}},
		{name: "crlf stripped", in: "a\r\nb\r\n", max: 10, want: []string{"a", "b"}},
		{name: "only one cr stripped", in: "a\r\r\n", max: 10, want: []string{"a\r"}},
		{name: "cr in the middle kept", in: "a\rb\n", max: 10, want: []string{"a\rb"}},
		{name: "empty frames ignored", in: "\n\r\n\na\n\n", max: 10, want: []string{"a"}},
		{name: "trailing partial dropped", in: "a\nbc", max: 10, want: []string{"a"}},
		{name: "binary bytes", in: "\x00\xff\t\n", max: 10, want: []string{"\x00\xff\t"}},
		{name: "exactly max", in: "0123456789\n", max: 10, want: []string{"0123456789"}},
		{name: "exactly max with cr", in: "0123456789\r\n", max: 10, want: []string{"0123456789"}},
		{name: "one over max", in: "ok\n01234567890\nnext\n", max: 10, want: []string{"ok"}, wantErr: ErrFrameTooLarge},
		{name: "over max without newline", in: "ok\n" + strings.Repeat("y", 50), max: 10, want: []string{"ok"}, wantErr: ErrFrameTooLarge},
		{name: "long frame grows buffer", in: "a\n" + long + "\nb\n", max: 300_000, want: []string{"a", long, "b"}},
		{name: "long frame over max", in: "a\n" + long + "\nb\n", max: 199_999, want: []string{"a"}, wantErr: ErrFrameTooLarge},
	}
	for _, tc := range tests {
		for _, chunk := range []int{1, 3, 4096, 1 << 20} {
			t.Run(tc.name, func(t *testing.T) {
				got, err := readAll(t, &chunkReader{data: []byte(tc.in), size: chunk}, tc.max)
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("chunk %d: error %v, want %v", chunk, err, tc.wantErr)
				}
				if !equal(got, tc.want) {
					t.Fatalf("chunk %d: frames %q, want %q", chunk, clip(got), clip(tc.want))
				}
			})
		}
	}
}

func TestDecoderReaderErrorWithData(t *testing.T) {
	boom := errors.New("boom")
	r := iotest.DataErrReader(io.MultiReader(strings.NewReader("a\nb\n"), iotest.ErrReader(boom)))
	got, err := readAll(t, r, 10)
	if !errors.Is(err, boom) {
		t.Fatalf("error %v, want %v", err, boom)
	}
	if !equal(got, []string{"a", "b"}) {
		t.Fatalf("frames %q", got)
	}
}

// TestDecoderManyFrames checks frames across buffer boundaries and the
// switch between the small and the large buffer.
func TestDecoderManyFrames(t *testing.T) {
	var in bytes.Buffer
	var want []string
	for i := range 50_000 {
		s := strings.Repeat(string(rune('a'+i%26)), 1+i%300)
		want = append(want, s)
		in.WriteString(s)
		if i%7 == 0 {
			in.WriteByte('\r')
		}
		in.WriteByte('\n')
	}
	for _, chunk := range []int{100, 5000, 70_000} {
		got, err := readAll(t, &chunkReader{data: in.Bytes(), size: chunk}, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if !equal(got, want) {
			t.Fatalf("chunk %d: %d frames, want %d", chunk, len(got), len(want))
		}
	}
}

func TestDecoderComplete(t *testing.T) {
	d := NewDecoder(strings.NewReader("ab\ncd\r\nef"), 10)
	if _, err := d.Fill(); err != nil {
		t.Fatal(err)
	}
	if got := d.Complete(); got != 7 {
		t.Fatalf("Complete() = %d, want 7", got)
	}
	sum := 0
	for {
		f, ok, err := d.Next()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		sum += len(f)
	}
	if sum != 4 || d.Buffered() != 2 {
		t.Fatalf("frame bytes %d, buffered %d; want 4 and 2", sum, d.Buffered())
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("a\nb\r\n\n"), uint16(8), uint16(3))
	f.Fuzz(func(t *testing.T, in []byte, max uint16, chunk uint16) {
		m := int(max%512) + 1
		c := int(chunk%97) + 1
		got, err := readAll(t, &chunkReader{data: in, size: c}, m)
		// Reference: split the whole input at once.
		var want []string
		var wantErr error
		parts := bytes.Split(in, []byte{'\n'})
		for _, p := range parts[:len(parts)-1] {
			p = bytes.TrimSuffix(p, []byte{'\r'})
			if len(p) == 0 {
				continue
			}
			if len(p) > m {
				wantErr = ErrFrameTooLarge
				break
			}
			want = append(want, string(p))
		}
		if wantErr == nil && len(parts[len(parts)-1]) > m+1 {
			wantErr = ErrFrameTooLarge
		}
		if !errors.Is(err, wantErr) {
			t.Fatalf("error %v, want %v", err, wantErr)
		}
		if !equal(got, want) {
			t.Fatalf("frames %q, want %q", got, want)
		}
		for _, s := range got {
			if s == "" || strings.Contains(s, "\n") {
				t.Fatalf("bad frame %q", s)
			}
		}
	})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func clip(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		if len(v) > 20 {
			v = v[:20] + "..."
		}
		out[i] = v
	}
	return out
}

// loopReader serves the same payload over and over.
type loopReader struct {
	data []byte
	off  int
}

func (l *loopReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		c := copy(p[n:], l.data[l.off:])
		n += c
		l.off = (l.off + c) % len(l.data)
	}
	return n, nil
}

func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{16, 100, 1000} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			payload := bytes.Repeat(append(bytes.Repeat([]byte{'x'}, size), '\n'), 1000)
			d := NewDecoder(&loopReader{data: payload}, 1<<20)
			defer d.Release()
			b.ReportAllocs()
			b.SetBytes(int64(size + 1))
			b.ResetTimer()
			for i := 0; i < b.N; {
				f, ok, err := d.Next()
				if err != nil {
					b.Fatal(err)
				}
				if !ok {
					if _, err := d.Fill(); err != nil {
						b.Fatal(err)
					}
					continue
				}
				if len(f) != size {
					b.Fatalf("frame of %d bytes", len(f))
				}
				i++
			}
		})
	}
}

// FuzzLines: an HTTP body splits like the same bytes read from a socket,
// plus the last line when it has no '\n'.
func FuzzLines(f *testing.F) {
	for _, s := range []string{"a\nb\r\n\nc", "\r\n\r\n", "x\r", "toolong\nok\n", ""} {
		f.Add([]byte(s), uint16(4))
	}
	f.Fuzz(func(t *testing.T, in []byte, max uint16) {
		m := int(max%512) + 1
		var got []string
		var err error
		lines := NewLines(in, m)
		for {
			frame, ok, ferr := lines.Next()
			if ferr != nil {
				err = ferr
				break
			}
			if !ok {
				break
			}
			got = append(got, string(frame))
		}
		// Reference: the decoder over the body with a final '\n'.
		want, wantErr := readAll(t, &chunkReader{data: append(bytes.Clone(in), '\n'), size: 7}, m)
		if errors.Is(err, ErrFrameTooLarge) != errors.Is(wantErr, ErrFrameTooLarge) || (err == nil) != (wantErr == nil) {
			t.Fatalf("error %v, want %v", err, wantErr)
		}
		if !equal(got, want) {
			t.Fatalf("frames %q, want %q", got, want)
		}
	})
}

// testBudget grants up to limit bytes and records the peak in use.
type testBudget struct {
	limit, used, peak int
}

var errNoBudget = errors.New("no budget")

func (b *testBudget) Grow(n int) error {
	if b.used+n > b.limit {
		return errNoBudget
	}
	b.used += n
	b.peak = max(b.peak, b.used)
	return nil
}

func (b *testBudget) Shrink(n int) { b.used -= n }

// The decoder takes every buffer beyond the small one from its budget,
// gives it back when it returns to the small one and on Release, and does
// not read when the budget refuses a bigger buffer.
func TestDecoderBudget(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300<<10)
	tests := []struct {
		name     string
		in       []byte
		limit    int
		wantErr  error
		wantPeak int // at least
	}{
		{"small frames stay in the small buffer", []byte("a\nb\nc\n"), 0, nil, 0},
		{"a busy stream borrows the large buffer", bytes.Repeat([]byte("0123456789\n"), 20000), 1 << 20, nil, LargeBufferSize},
		{"a long frame grows a private buffer", append(append([]byte{}, long...), '\n'), 2 << 20, nil, len(long)},
		{"a long frame over the budget is not read", append(append([]byte{}, long...), '\n'), 200 << 10, errNoBudget, LargeBufferSize},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := &testBudget{limit: tc.limit}
			d := NewDecoder(&chunkReader{data: tc.in, size: 64 << 10}, 1<<20)
			d.SetBudget(b)
			var err error
			for err == nil {
				_, err = d.Fill()
				for {
					_, ok, ferr := d.Next()
					if ferr != nil {
						t.Fatal(ferr)
					}
					if !ok {
						break
					}
				}
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) || tc.wantErr == nil && !errors.Is(err, io.EOF) {
				t.Fatalf("Fill: %v, want %v", err, tc.wantErr)
			}
			if b.peak < tc.wantPeak || b.used > b.limit {
				t.Errorf("peak %d (want at least %d), in use %d of %d", b.peak, tc.wantPeak, b.used, b.limit)
			}
			d.Release()
			if b.used != 0 {
				t.Errorf("%d bytes still taken after Release", b.used)
			}
		})
	}
}
