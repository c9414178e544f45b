package rdb

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// listpackEntries walks a listpack (Redis 7 small-list, hash, zset encoding)
// and calls fn for every element, integers rendered in decimal. fn may be nil
// to only count. It checks the total-bytes header, every entry's back-length,
// the element-count header (unless it is the 65535 "unknown" value) and the
// end byte, so a damaged blob is refused rather than miscounted.
func listpackEntries(lp []byte, fn func([]byte)) (int64, error) {
	if len(lp) < 7 {
		return 0, fmt.Errorf("listpack of %d bytes: %w", len(lp), ErrCorrupt)
	}
	total := binary.LittleEndian.Uint32(lp)
	if int(total) != len(lp) {
		return 0, fmt.Errorf("listpack header says %d bytes, blob has %d: %w", total, len(lp), ErrCorrupt)
	}
	hdrCount := binary.LittleEndian.Uint16(lp[4:])
	p := 6
	var count int64
	var num [24]byte
	for {
		if p >= len(lp) {
			return 0, fmt.Errorf("listpack without end byte: %w", ErrCorrupt)
		}
		b := lp[p]
		if b == 0xff {
			if p != len(lp)-1 {
				return 0, fmt.Errorf("listpack end byte at %d of %d: %w", p, len(lp), ErrCorrupt)
			}
			break
		}
		var hdr, dlen int // encoding bytes, data bytes
		var ival int64
		isInt := true
		need := func(n int) bool { return p+n <= len(lp) }
		switch {
		case b&0x80 == 0: // 0xxxxxxx 7-bit unsigned
			hdr, ival = 1, int64(b&0x7f)
		case b&0xc0 == 0x80: // 10xxxxxx 6-bit string length
			hdr, dlen, isInt = 1, int(b&0x3f), false
		case b&0xe0 == 0xc0: // 110xxxxx 13-bit signed
			if !need(2) {
				return 0, fmt.Errorf("listpack int13 past the end: %w", ErrCorrupt)
			}
			hdr = 2
			v := int64(b&0x1f)<<8 | int64(lp[p+1])
			if v >= 1<<12 {
				v -= 1 << 13
			}
			ival = v
		case b&0xf0 == 0xe0: // 1110xxxx 12-bit string length
			if !need(2) {
				return 0, fmt.Errorf("listpack str12 past the end: %w", ErrCorrupt)
			}
			hdr, dlen, isInt = 2, int(b&0x0f)<<8|int(lp[p+1]), false
		case b == 0xf0: // 32-bit string length
			if !need(5) {
				return 0, fmt.Errorf("listpack str32 past the end: %w", ErrCorrupt)
			}
			hdr, dlen, isInt = 5, int(binary.LittleEndian.Uint32(lp[p+1:])), false
		case b >= 0xf1 && b <= 0xf4: // 16, 24, 32, 64-bit signed
			size := map[byte]int{0xf1: 2, 0xf2: 3, 0xf3: 4, 0xf4: 8}[b]
			if !need(1 + size) {
				return 0, fmt.Errorf("listpack int past the end: %w", ErrCorrupt)
			}
			hdr = 1 + size
			var u uint64
			for i := size - 1; i >= 0; i-- {
				u = u<<8 | uint64(lp[p+1+i])
			}
			shift := 64 - 8*uint(size)
			ival = int64(u<<shift) >> shift
		default:
			return 0, fmt.Errorf("listpack entry encoding 0x%02x: %w", b, ErrCorrupt)
		}
		entry := hdr + dlen
		bl := backlenSize(entry)
		if dlen < 0 || p+entry+bl > len(lp) {
			return 0, fmt.Errorf("listpack entry past the end: %w", ErrCorrupt)
		}
		if got := decodeBacklen(lp[p+entry : p+entry+bl]); got != entry {
			return 0, fmt.Errorf("listpack back-length %d, entry is %d bytes: %w", got, entry, ErrCorrupt)
		}
		if fn != nil {
			if isInt {
				fn(strconv.AppendInt(num[:0], ival, 10))
			} else {
				fn(lp[p+hdr : p+entry])
			}
		}
		count++
		p += entry + bl
	}
	if hdrCount != 0xffff && int64(hdrCount) != count {
		return 0, fmt.Errorf("listpack header says %d elements, found %d: %w", hdrCount, count, ErrCorrupt)
	}
	return count, nil
}

func backlenSize(l int) int {
	switch {
	case l <= 127:
		return 1
	case l < 16383:
		return 2
	case l < 2097151:
		return 3
	case l < 268435455:
		return 4
	}
	return 5
}

// decodeBacklen reads the back-length stored after an entry: 7 bits per byte,
// most significant group first, continuation bit 0x80 on all but the first.
func decodeBacklen(p []byte) int {
	v := 0
	for i := 0; i < len(p); i++ {
		v |= int(p[i]&0x7f) << (7 * uint(len(p)-1-i))
	}
	return v
}

// ziplistEntries walks a ziplist (the pre-7.0 small encoding) like
// listpackEntries does a listpack.
func ziplistEntries(zl []byte, fn func([]byte)) (int64, error) {
	if len(zl) < 11 {
		return 0, fmt.Errorf("ziplist of %d bytes: %w", len(zl), ErrCorrupt)
	}
	if total := binary.LittleEndian.Uint32(zl); int(total) != len(zl) {
		return 0, fmt.Errorf("ziplist header says %d bytes, blob has %d: %w", total, len(zl), ErrCorrupt)
	}
	hdrCount := binary.LittleEndian.Uint16(zl[8:])
	p := 10
	var count int64
	var num [24]byte
	for {
		if p >= len(zl) {
			return 0, fmt.Errorf("ziplist without end byte: %w", ErrCorrupt)
		}
		if zl[p] == 0xff {
			if p != len(zl)-1 {
				return 0, fmt.Errorf("ziplist end byte at %d of %d: %w", p, len(zl), ErrCorrupt)
			}
			break
		}
		// previous entry length: 1 byte, or 0xfe and 4 bytes
		if zl[p] == 0xfe {
			p += 5
		} else {
			p++
		}
		if p >= len(zl) {
			return 0, fmt.Errorf("ziplist entry past the end: %w", ErrCorrupt)
		}
		b := zl[p]
		var hdr, dlen int
		isInt := true
		var ival int64
		switch b >> 6 {
		case 0:
			hdr, dlen, isInt = 1, int(b&0x3f), false
		case 1:
			if p+2 > len(zl) {
				return 0, fmt.Errorf("ziplist entry past the end: %w", ErrCorrupt)
			}
			hdr, dlen, isInt = 2, int(b&0x3f)<<8|int(zl[p+1]), false
		case 2:
			if p+5 > len(zl) {
				return 0, fmt.Errorf("ziplist entry past the end: %w", ErrCorrupt)
			}
			hdr, dlen, isInt = 5, int(binary.BigEndian.Uint32(zl[p+1:])), false
		default:
			size := 0
			switch b {
			case 0xc0:
				size = 2
			case 0xd0:
				size = 4
			case 0xe0:
				size = 8
			case 0xf0:
				size = 3
			case 0xfe:
				size = 1
			default:
				if b >= 0xf1 && b <= 0xfd {
					ival = int64(b&0x0f) - 1
				} else {
					return 0, fmt.Errorf("ziplist entry encoding 0x%02x: %w", b, ErrCorrupt)
				}
			}
			if p+1+size > len(zl) {
				return 0, fmt.Errorf("ziplist entry past the end: %w", ErrCorrupt)
			}
			if size > 0 {
				var u uint64
				for i := size - 1; i >= 0; i-- {
					u = u<<8 | uint64(zl[p+1+i])
				}
				shift := 64 - 8*uint(size)
				ival = int64(u<<shift) >> shift
			}
			hdr = 1 + size
		}
		if dlen < 0 || p+hdr+dlen > len(zl) {
			return 0, fmt.Errorf("ziplist entry past the end: %w", ErrCorrupt)
		}
		if fn != nil {
			if isInt {
				fn(strconv.AppendInt(num[:0], ival, 10))
			} else {
				fn(zl[p+hdr : p+hdr+dlen])
			}
		}
		count++
		p += hdr + dlen
	}
	if hdrCount != 0xffff && int64(hdrCount) != count {
		return 0, fmt.Errorf("ziplist header says %d elements, found %d: %w", hdrCount, count, ErrCorrupt)
	}
	return count, nil
}
