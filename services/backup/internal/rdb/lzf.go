package rdb

import (
	"fmt"
)

var errLZF = fmt.Errorf("LZF data: %w", ErrCorrupt)

// lzfDecompress expands an LZF block (the liblzf format Redis uses for
// compressed strings) into exactly ulen bytes.
func lzfDecompress(in []byte, ulen int) ([]byte, error) {
	out := make([]byte, 0, ulen)
	i := 0
	for i < len(in) {
		ctrl := int(in[i])
		i++
		if ctrl < 32 { // literal run of ctrl+1 bytes
			n := ctrl + 1
			if i+n > len(in) || len(out)+n > ulen {
				return nil, fmt.Errorf("literal run past the end: %w", errLZF)
			}
			out = append(out, in[i:i+n]...)
			i += n
			continue
		}
		// back reference: length in the top 3 bits (7 means one more byte)
		n := ctrl >> 5
		if n == 7 {
			if i >= len(in) {
				return nil, fmt.Errorf("truncated back reference: %w", errLZF)
			}
			n += int(in[i])
			i++
		}
		if i >= len(in) {
			return nil, fmt.Errorf("truncated back reference: %w", errLZF)
		}
		ref := len(out) - (ctrl&0x1f)<<8 - int(in[i]) - 1
		i++
		n += 2
		if ref < 0 || len(out)+n > ulen {
			return nil, fmt.Errorf("back reference out of range: %w", errLZF)
		}
		for k := 0; k < n; k++ { // byte by byte: source and destination may overlap
			out = append(out, out[ref+k])
		}
	}
	if len(out) != ulen {
		return nil, fmt.Errorf("expanded to %d bytes, header says %d: %w", len(out), ulen, errLZF)
	}
	return out, nil
}
