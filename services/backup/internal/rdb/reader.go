package rdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrCorrupt marks a file or payload that does not parse as RDB.
var ErrCorrupt = errors.New("corrupt RDB")

// reader reads an RDB stream, keeps a running CRC-64 of every byte it hands
// out, counts bytes, and can copy what it reads into a capture buffer (the raw
// bytes of one value, for a DUMP payload).
type reader struct {
	br        *bufio.Reader
	crc       uint64
	off       int64
	capturing bool
	capture   []byte
}

func newReader(r io.Reader) *reader {
	return &reader{br: bufio.NewReaderSize(r, 1<<20)}
}

func (r *reader) account(p []byte) {
	r.crc = CRC64(r.crc, p)
	r.off += int64(len(p))
	if r.capturing {
		r.capture = append(r.capture, p...)
	}
}

func (r *reader) corrupt(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s: %w", r.off, fmt.Sprintf(format, args...), ErrCorrupt)
}

// unexpected turns io.EOF inside a structure into a corruption error.
func (r *reader) unexpected(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return r.corrupt("file ends early (truncated)")
	}
	return fmt.Errorf("offset %d: %w", r.off, err)
}

func (r *reader) byte() (byte, error) {
	b, err := r.br.ReadByte()
	if err != nil {
		return 0, r.unexpected(err)
	}
	r.account([]byte{b})
	return b, nil
}

// bytes reads exactly n bytes. It grows the buffer in steps so that a corrupt
// huge length runs into the end of the file instead of exhausting memory.
func (r *reader) bytes(n uint64) ([]byte, error) {
	const step = 8 << 20
	buf := make([]byte, 0, min(n, step))
	for uint64(len(buf)) < n {
		chunk := min(n-uint64(len(buf)), step)
		start := len(buf)
		buf = append(buf, make([]byte, chunk)...)
		if _, err := io.ReadFull(r.br, buf[start:]); err != nil {
			return nil, r.unexpected(err)
		}
		r.account(buf[start:])
	}
	return buf, nil
}

func (r *reader) uint64LE() (uint64, error) {
	b, err := r.bytes(8)
	if err != nil {
		return 0, err
	}
	return binary.LittleEndian.Uint64(b), nil
}

// length reads an RDB length. encoded reports the 11xxxxxx special form, in
// which case the value is the encoding type (int8/16/32 or LZF).
func (r *reader) length() (v uint64, encoded bool, err error) {
	b, err := r.byte()
	if err != nil {
		return 0, false, err
	}
	switch b >> 6 {
	case 0:
		return uint64(b & 0x3f), false, nil
	case 1:
		b2, err := r.byte()
		if err != nil {
			return 0, false, err
		}
		return uint64(b&0x3f)<<8 | uint64(b2), false, nil
	case 2:
		switch b {
		case 0x80:
			p, err := r.bytes(4)
			if err != nil {
				return 0, false, err
			}
			return uint64(binary.BigEndian.Uint32(p)), false, nil
		case 0x81:
			p, err := r.bytes(8)
			if err != nil {
				return 0, false, err
			}
			return binary.BigEndian.Uint64(p), false, nil
		}
		return 0, false, r.corrupt("unknown length prefix 0x%02x", b)
	default:
		return uint64(b & 0x3f), true, nil
	}
}

// plainLength reads a length that must not use the special form.
func (r *reader) plainLength() (uint64, error) {
	v, enc, err := r.length()
	if err != nil {
		return 0, err
	}
	if enc {
		return 0, r.corrupt("encoded value where a length was expected")
	}
	return v, nil
}

// str reads an RDB string: raw, integer-encoded (returned in decimal) or LZF.
func (r *reader) str() ([]byte, error) {
	v, enc, err := r.length()
	if err != nil {
		return nil, err
	}
	if !enc {
		return r.bytes(v)
	}
	switch v {
	case 0, 1, 2: // int8, int16, int32, little-endian
		p, err := r.bytes(1 << v)
		if err != nil {
			return nil, err
		}
		var n int64
		switch v {
		case 0:
			n = int64(int8(p[0]))
		case 1:
			n = int64(int16(binary.LittleEndian.Uint16(p)))
		case 2:
			n = int64(int32(binary.LittleEndian.Uint32(p)))
		}
		return strconv.AppendInt(nil, n, 10), nil
	case 3:
		clen, err := r.plainLength()
		if err != nil {
			return nil, err
		}
		ulen, err := r.plainLength()
		if err != nil {
			return nil, err
		}
		if ulen > 1<<32 {
			return nil, r.corrupt("LZF string of %d bytes", ulen)
		}
		c, err := r.bytes(clen)
		if err != nil {
			return nil, err
		}
		out, err := lzfDecompress(c, int(ulen))
		if err != nil {
			return nil, fmt.Errorf("offset %d: %w", r.off, err)
		}
		return out, nil
	}
	return nil, r.corrupt("unknown string encoding %d", v)
}

// oldDouble reads the text double of RDB_TYPE_ZSET (1 length byte, 253..255
// for nan/+inf/-inf).
func (r *reader) oldDouble() error {
	n, err := r.byte()
	if err != nil {
		return err
	}
	if n >= 253 {
		return nil
	}
	_, err = r.bytes(uint64(n))
	return err
}
