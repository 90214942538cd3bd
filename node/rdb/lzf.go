package rdb

import (
	"errors"
	"fmt"
)

// The LZF format, as liblzf writes it and Redis stores it: a sequence of
// items, each opening with a control byte c.
//   - c < 32: a literal run; the next c+1 bytes are copied to the output.
//   - otherwise a back reference: n = c>>5 (if n == 7, the next byte is
//     added to it), then one more byte o; the output grows by n+2 bytes
//     copied from (c&31)<<8 + o + 1 bytes back, byte by byte, so a copy may
//     overlap what it produces.
//
// A back reference of three input bytes makes at most 7+255+2 = 264 output
// bytes, so no valid stream expands more than 88 times.
const lzfMaxRatio = 88

// lzfDecompress appends the decompression of in to dst. The output must be
// exactly ulen bytes; the caller has checked ulen against len(in) so the
// allocation is bounded by the input really present.
func lzfDecompress(dst, in []byte, ulen int) ([]byte, error) {
	base := len(dst)
	out := dst
	if cap(out)-base < ulen {
		out = make([]byte, base, base+ulen)
		copy(out, dst)
	}
	limit := base + ulen
	for i := 0; i < len(in); {
		c := int(in[i])
		i++
		if c < 32 {
			n := c + 1
			if i+n > len(in) {
				return dst, errors.New("LZF literal run past the end of the data")
			}
			if len(out)+n > limit {
				return dst, errors.New("LZF output longer than its declared length")
			}
			out = append(out, in[i:i+n]...)
			i += n
			continue
		}
		n := c >> 5
		if n == 7 {
			if i >= len(in) {
				return dst, errors.New("LZF back reference cut short")
			}
			n += int(in[i])
			i++
		}
		if i >= len(in) {
			return dst, errors.New("LZF back reference cut short")
		}
		back := (c&31)<<8 + int(in[i]) + 1
		i++
		n += 2
		ref := len(out) - back
		if ref < base {
			return dst, errors.New("LZF back reference before the start of the output")
		}
		if len(out)+n > limit {
			return dst, errors.New("LZF output longer than its declared length")
		}
		if back >= n {
			out = append(out, out[ref:ref+n]...)
		} else {
			for k := range n {
				out = append(out, out[ref+k])
			}
		}
	}
	if len(out) != limit {
		return dst, fmt.Errorf("LZF data makes %d bytes, its header says %d", len(out)-base, ulen)
	}
	return out, nil
}
