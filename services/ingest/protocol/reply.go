package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
)

// Error codes the server sends in "ERR <n> <CODE> <text>" replies.
const (
	// CodeFrameTooLarge: a frame exceeded the maximum frame size. Closes the connection.
	CodeFrameTooLarge = "FRAME_TOO_LARGE"
	// CodeUnavailable: Redis was not writable within the retry deadline. Closes the connection.
	CodeUnavailable = "UNAVAILABLE"
	// CodeNotReplicated: WAIT reported fewer replicas than required. Closes the connection.
	CodeNotReplicated = "NOT_REPLICATED"
	// CodeQueueFull: the Redis list stayed at its bound (INGEST_MAX_QUEUE_LEN,
	// or Redis out of memory) until the retry deadline. Closes the connection.
	CodeQueueFull = "QUEUE_FULL"
	// CodeShuttingDown: the server is draining. Closes the connection.
	CodeShuttingDown = "SHUTTING_DOWN"
	// CodeTooManyConnections: the connection cap is reached. Closes the connection.
	CodeTooManyConnections = "TOO_MANY_CONNECTIONS"
	// CodeIdleTimeout: the client sent nothing for the idle timeout. Closes the connection.
	CodeIdleTimeout = "IDLE_TIMEOUT"
	// CodeFrameTimeout: a frame was not complete within the frame timeout
	// after its first byte (a slow or stuck sender). Closes the connection.
	CodeFrameTimeout = "FRAME_TIMEOUT"
)

// Every error code closes the connection: acks are cumulative, so a later
// "OK n" would otherwise cover messages that were not stored.

// Reply is one parsed server line. Code is empty for "OK <n>".
type Reply struct {
	N    uint64
	Code string
	Text string
}

// OK reports whether the reply is an acknowledgement.
func (r Reply) OK() bool { return r.Code == "" }

// String formats the reply as it appears on the wire, without the newline.
func (r Reply) String() string {
	if r.Code == "" {
		b := AppendOK(nil, r.N)
		return string(b[:len(b)-1])
	}
	b := AppendErr(nil, r.N, r.Code, r.Text)
	return string(b[:len(b)-1])
}

// ErrBadReply is wrapped by ParseReply errors.
var ErrBadReply = errors.New("malformed reply")

// ParseReply parses one server line ("OK <n>" or "ERR <n> <CODE> [text]"),
// with or without its trailing "\n" or "\r\n".
func ParseReply(line []byte) (Reply, error) {
	line = bytes.TrimSuffix(line, []byte{'\n'})
	line = bytes.TrimSuffix(line, []byte{'\r'})
	verb, rest, _ := bytes.Cut(line, []byte{' '})
	switch string(verb) {
	case "OK":
		n, err := parseCount(rest)
		if err != nil {
			return Reply{}, fmt.Errorf("%w %q: %w", ErrBadReply, line, err)
		}
		return Reply{N: n}, nil
	case "ERR":
		num, rest, _ := bytes.Cut(rest, []byte{' '})
		n, err := parseCount(num)
		if err != nil {
			return Reply{}, fmt.Errorf("%w %q: %w", ErrBadReply, line, err)
		}
		code, text, _ := bytes.Cut(rest, []byte{' '})
		if len(code) == 0 {
			return Reply{}, fmt.Errorf("%w %q: missing error code", ErrBadReply, line)
		}
		return Reply{N: n, Code: string(code), Text: string(text)}, nil
	default:
		return Reply{}, fmt.Errorf("%w %q: unknown verb", ErrBadReply, line)
	}
}

func parseCount(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errors.New("missing count")
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("count %q is not a number", b)
		}
		d := uint64(c - '0')
		if n > (^uint64(0)-d)/10 {
			return 0, fmt.Errorf("count %q overflows", b)
		}
		n = n*10 + d
	}
	return n, nil
}

// AppendOK appends "OK <n>\n" to dst.
func AppendOK(dst []byte, n uint64) []byte {
	dst = append(dst, "OK "...)
	dst = strconv.AppendUint(dst, n, 10)
	return append(dst, '\n')
}

// AppendErr appends "ERR <n> <code> <text>\n" to dst. Newlines in text are
// replaced by spaces so the reply stays one line.
func AppendErr(dst []byte, n uint64, code, text string) []byte {
	dst = append(dst, "ERR "...)
	dst = strconv.AppendUint(dst, n, 10)
	dst = append(dst, ' ')
	dst = append(dst, code...)
	if text != "" {
		dst = append(dst, ' ')
		for i := 0; i < len(text); i++ {
			c := text[i]
			if c == '\n' || c == '\r' {
				c = ' '
			}
			dst = append(dst, c)
		}
	}
	return append(dst, '\n')
}

// Errors returned by CheckMessage.
var (
	ErrEmptyMessage   = errors.New("empty message (the server ignores empty frames)")
	ErrNewline        = errors.New("message contains '\\n'")
	ErrTrailingReturn = errors.New("message ends with '\\r' (the server strips it)")
)

// CheckMessage reports whether msg survives the framing unchanged and is
// counted by the server: it must be non-empty, contain no '\n', not end in
// '\r', and be at most maxFrame bytes (maxFrame <= 0 skips the size check).
func CheckMessage(msg []byte, maxFrame int) error {
	switch {
	case len(msg) == 0:
		return ErrEmptyMessage
	case maxFrame > 0 && len(msg) > maxFrame:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, len(msg), maxFrame)
	case msg[len(msg)-1] == '\r':
		return ErrTrailingReturn
	case bytes.IndexByte(msg, '\n') >= 0:
		return ErrNewline
	}
	return nil
}

// AppendFrame appends msg and its '\n' to dst after CheckMessage.
func AppendFrame(dst, msg []byte, maxFrame int) ([]byte, error) {
	if err := CheckMessage(msg, maxFrame); err != nil {
		return dst, err
	}
	dst = append(dst, msg...)
	return append(dst, '\n'), nil
}
