package protocol

import (
	"errors"
	"testing"
)

func TestParseReply(t *testing.T) {
	tests := []struct {
		name    string
		line    string
		want    Reply
		wantErr bool
	}{
		{name: "ok", line: "OK 5\n", want: Reply{N: 5}},
		{name: "ok crlf", line: "OK 0\r\n", want: Reply{N: 0}},
		{name: "ok no newline", line: "OK 18446744073709551615", want: Reply{N: 18446744073709551615}},
		{name: "err with text", line: "ERR 7 UNAVAILABLE redis not writable for 30s\n", want: Reply{N: 7, Code: CodeUnavailable, Text: "redis not writable for 30s"}},
		{name: "err without text", line: "ERR 0 TOO_MANY_CONNECTIONS\n", want: Reply{Code: CodeTooManyConnections}},
		{name: "unknown verb", line: "HELLO 1\n", wantErr: true},
		{name: "ok missing count", line: "OK\n", wantErr: true},
		{name: "ok negative", line: "OK -1\n", wantErr: true},
		{name: "ok overflow", line: "OK 18446744073709551616\n", wantErr: true},
		{name: "ok trailing junk", line: "OK 5 x\n", wantErr: true},
		{name: "err missing code", line: "ERR 5\n", wantErr: true},
		{name: "err bad count", line: "ERR x SHUTTING_DOWN\n", wantErr: true},
		{name: "empty", line: "", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseReply([]byte(tc.line))
			if tc.wantErr {
				if !errors.Is(err, ErrBadReply) {
					t.Fatalf("ParseReply(%q) = %+v, %v; want ErrBadReply", tc.line, got, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseReply(%q): %v", tc.line, err)
			}
			if got != tc.want {
				t.Fatalf("ParseReply(%q) = %+v, want %+v", tc.line, got, tc.want)
			}
			if got.OK() != (tc.want.Code == "") {
				t.Fatalf("OK() = %v", got.OK())
			}
		})
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		wire string
		in   Reply
	}{
		{name: "ok", in: Reply{N: 42}, wire: "OK 42\n"},
		{name: "err", in: Reply{N: 3, Code: CodeFrameTooLarge, Text: "frame of 2000000 bytes"}, wire: "ERR 3 FRAME_TOO_LARGE frame of 2000000 bytes\n"},
		{name: "err newline in text", in: Reply{N: 1, Code: CodeUnavailable, Text: "a\nb"}, wire: "ERR 1 UNAVAILABLE a b\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b []byte
			if tc.in.OK() {
				b = AppendOK(nil, tc.in.N)
			} else {
				b = AppendErr(nil, tc.in.N, tc.in.Code, tc.in.Text)
			}
			if string(b) != tc.wire {
				t.Fatalf("encoded %q, want %q", b, tc.wire)
			}
			if tc.in.String()+"\n" != tc.wire {
				t.Fatalf("String() = %q", tc.in.String())
			}
			got, err := ParseReply(b)
			if err != nil {
				t.Fatal(err)
			}
			if got.N != tc.in.N || got.Code != tc.in.Code {
				t.Fatalf("round trip %+v, want %+v", got, tc.in)
			}
		})
	}
}

func TestCheckMessage(t *testing.T) {
	tests := []struct {
		name string
		msg  string
		max  int
		want error
	}{
		{name: "ok", msg: "hello", max: 10},
		{name: "no limit", msg: "hello", max: 0},
		{name: "empty", msg: "", max: 10, want: ErrEmptyMessage},
		{name: "newline", msg: "a\nb", max: 10, want: ErrNewline},
		{name: "trailing cr", msg: "ab\r", max: 10, want: ErrTrailingReturn},
		{name: "too large", msg: "abcdef", max: 5, want: ErrFrameTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := AppendFrame([]byte("x\n"), []byte(tc.msg), tc.max)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if err == nil && string(got) != "x\n"+tc.msg+"\n" {
				t.Fatalf("AppendFrame = %q", got)
			}
		})
	}
}

func BenchmarkAppendOK(b *testing.B) {
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendOK(buf[:0], uint64(i))
	}
}

func BenchmarkParseReply(b *testing.B) {
	line := []byte("OK 123456789\n")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := ParseReply(line); err != nil {
			b.Fatal(err)
		}
	}
}
