package protocol

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"
)

// ErrFrameTooLarge is returned by the Decoder when a frame exceeds the
// configured maximum size.
var ErrFrameTooLarge = errors.New("frame too large")

const (
	// SmallBufferSize is the read buffer a quiet connection holds. It keeps
	// thousands of idle connections cheap.
	SmallBufferSize = 4 << 10
	// LargeBufferSize is the pooled read buffer a busy connection borrows.
	LargeBufferSize = 64 << 10
)

var largePool = sync.Pool{New: func() any { b := make([]byte, LargeBufferSize); return &b }}

// Decoder splits newline-delimited frames out of a read buffer.
//
// Frames returned by Next alias the decoder's buffer: they are valid only
// until the next call to Fill or Release. A quiet connection uses a small
// buffer; when a read fills it the decoder borrows a large pooled buffer,
// and gives it back once the socket runs dry and the buffer is empty.
// Frames longer than the large buffer grow a private buffer up to the
// maximum frame size.
type Decoder struct {
	rd       io.Reader
	max      int
	small    []byte
	large    *[]byte
	buf      []byte
	r, w     int
	lastFull bool // the last read filled the whole free space
	budget   BufferBudget
	charged  int // bytes of buf taken from budget
}

// BufferBudget accounts for the read buffers a decoder holds beyond its
// small one (SmallBufferSize), across decoders: the pooled large buffer of
// a busy connection and the private buffer of a long frame.
type BufferBudget interface {
	// Grow takes n more bytes; it may wait. On an error the decoder keeps
	// its buffer and Fill returns the error without reading.
	Grow(n int) error
	// Shrink gives back n bytes.
	Shrink(n int)
}

// SetBudget makes the decoder take its buffers beyond the small one from b.
func (d *Decoder) SetBudget(b BufferBudget) { d.budget = b }

// NewDecoder returns a decoder reading from rd that rejects frames larger
// than maxFrame bytes (after a trailing '\r' is stripped).
func NewDecoder(rd io.Reader, maxFrame int) *Decoder {
	if maxFrame < 1 {
		maxFrame = 1
	}
	d := &Decoder{rd: rd, max: maxFrame}
	return d
}

// Buffered returns the number of bytes read but not yet returned as frames.
func (d *Decoder) Buffered() int { return d.w - d.r }

// Complete returns the number of buffered bytes that belong to complete
// frames (up to and including the last '\n'). The sum of the lengths of the
// frames Next will return before it reports ok=false is at most Complete().
func (d *Decoder) Complete() int {
	i := bytes.LastIndexByte(d.buf[d.r:d.w], '\n')
	return i + 1
}

// Next returns the next complete, non-empty frame from the buffered data
// without reading. ok is false when no complete frame is buffered. It
// returns ErrFrameTooLarge for a complete frame longer than the maximum.
func (d *Decoder) Next() (frame []byte, ok bool, err error) {
	frame, n, ok, err := cutFrame(d.buf[d.r:d.w], d.max, false)
	d.r += n
	return frame, ok, err
}

// cutFrame returns the first non-empty frame of data and how many bytes
// it and the empty lines before it take. A trailing '\r' is stripped. The
// bytes after the last '\n' are a frame only when final (a whole body).
func cutFrame(data []byte, max int, final bool) (frame []byte, n int, ok bool, err error) {
	for {
		rest := data[n:]
		i := bytes.IndexByte(rest, '\n')
		switch {
		case i >= 0:
			frame = rest[:i]
			n += i + 1
		case final && len(rest) > 0:
			frame = rest
			n += len(rest)
		default:
			return nil, n, false, nil
		}
		if k := len(frame); k > 0 && frame[k-1] == '\r' {
			frame = frame[:k-1]
		}
		if len(frame) == 0 {
			continue
		}
		if len(frame) > max {
			return nil, n, false, fmt.Errorf("%w: more than %d bytes", ErrFrameTooLarge, max)
		}
		return frame, n, true, nil
	}
}

// Lines splits a whole body (an HTTP request) into frames by the same
// rules as the Decoder, except that the last line needs no '\n'.
type Lines struct {
	data []byte
	max  int
}

// NewLines returns the frames of data, rejecting frames over maxFrame bytes.
func NewLines(data []byte, maxFrame int) *Lines { return &Lines{data: data, max: maxFrame} }

// Next returns the next non-empty frame; ok is false at the end. The frame
// aliases the body.
func (l *Lines) Next() (frame []byte, ok bool, err error) {
	frame, n, ok, err := cutFrame(l.data, l.max, true)
	l.data = l.data[n:]
	return frame, ok, err
}

// Fill reads once from the underlying reader into the buffer, after moving
// any partial frame to the front. Frames returned earlier become invalid.
// It returns ErrFrameTooLarge when the partial frame alone already exceeds
// the maximum, the budget's error when a bigger buffer is needed and not
// granted, and the reader's error (io.EOF included) otherwise.
func (d *Decoder) Fill() (int, error) {
	partial := d.w - d.r
	if partial > d.max+1 { // +1: a '\r' that will be stripped
		return 0, fmt.Errorf("%w: more than %d bytes without a newline", ErrFrameTooLarge, d.max)
	}
	if err := d.arrange(partial); err != nil {
		return 0, err
	}
	n, err := d.rd.Read(d.buf[d.w:])
	d.lastFull = n == len(d.buf)-d.w
	d.w += n
	return n, err
}

// arrange picks the buffer for the next read, takes its cost from the
// budget, and moves the partial frame to its front.
func (d *Decoder) arrange(partial int) error {
	cur := d.buf
	size := len(cur) // keep cur
	switch {
	case cur == nil || (partial == 0 && !d.lastFull):
		// Quiet: the socket ran dry and nothing is pending.
		size = SmallBufferSize
	case partial >= len(cur)/2 || (d.lastFull && len(cur) < LargeBufferSize):
		// Busy, or a long partial frame: move to a bigger buffer.
		if len(cur) < LargeBufferSize {
			size = LargeBufferSize
		} else {
			size = max(len(cur), min(2*len(cur), d.max+2))
		}
	}
	cost := size
	if size == SmallBufferSize {
		cost = 0
	}
	if d.budget != nil && cost > d.charged {
		if err := d.budget.Grow(cost - d.charged); err != nil {
			return err
		}
	}
	var next []byte
	switch {
	case size == len(cur):
		next = cur
	case size == SmallBufferSize:
		if d.small == nil {
			d.small = make([]byte, SmallBufferSize)
		}
		next = d.small
	case size == LargeBufferSize:
		next = d.getLarge()
	default:
		next = make([]byte, size)
	}
	if sameBuf(next, cur) {
		if d.r > 0 {
			copy(cur, cur[d.r:d.w])
		}
	} else {
		copy(next, cur[d.r:d.w])
		if d.large != nil && sameBuf(cur, *d.large) {
			d.putLarge()
		}
	}
	d.buf = next
	d.r, d.w = 0, partial
	d.charge(cost)
	return nil
}

// charge records that the buffer costs n bytes, giving back any excess.
func (d *Decoder) charge(n int) {
	if d.budget != nil && n < d.charged {
		d.budget.Shrink(d.charged - n)
	}
	d.charged = n
}

func sameBuf(a, b []byte) bool {
	return cap(a) > 0 && cap(b) > 0 && &a[:1][0] == &b[:1][0]
}

func (d *Decoder) getLarge() []byte {
	if d.large == nil {
		d.large = largePool.Get().(*[]byte)
	}
	return *d.large
}

func (d *Decoder) putLarge() {
	if d.large != nil {
		largePool.Put(d.large)
		d.large = nil
	}
}

// Release returns the pooled buffer. Frames returned earlier become invalid
// and the decoder must not be used afterwards, except to Release it again,
// which does nothing.
func (d *Decoder) Release() {
	d.charge(0)
	d.putLarge()
	d.buf, d.small = nil, nil
	d.r, d.w = 0, 0
}

// ReadFrame returns the next non-empty frame, reading as needed. It is the
// simple, one-frame-at-a-time form of Fill and Next. Bytes after the last
// '\n' at end of stream are not a frame and are dropped; io.EOF is returned.
func (d *Decoder) ReadFrame() ([]byte, error) {
	for {
		frame, ok, err := d.Next()
		if err != nil || ok {
			return frame, err
		}
		n, err := d.Fill()
		if err != nil && n == 0 {
			return nil, err
		}
		if err != nil {
			// Serve what arrived with the error first; the reader
			// reports the error again on the next call.
			if frame, ok, ferr := d.Next(); ferr != nil || ok {
				return frame, ferr
			}
			return nil, err
		}
	}
}
