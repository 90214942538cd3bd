package store

// Match reports whether s matches the glob pattern, with Redis's KEYS
// syntax: '*' any run, '?' any byte, '[abc]', '[^abc]', '[a-z]' classes, and
// '\' escaping the next byte. With nocase, ASCII letters match either case.
//
// It runs in O(len(pattern)·len(s)) time: on a mismatch it only backtracks
// to the most recent '*'.
func Match(pattern, s []byte, nocase bool) bool {
	p, i := 0, 0
	starP, starI := -1, 0
	for i < len(s) {
		if p < len(pattern) {
			switch c := pattern[p]; c {
			case '*':
				for p < len(pattern) && pattern[p] == '*' {
					p++
				}
				if p == len(pattern) {
					return true
				}
				starP, starI = p, i
				continue
			case '?':
				p++
				i++
				continue
			case '[':
				if np, ok := matchClass(pattern, p+1, s[i], nocase); ok {
					p = np
					i++
					continue
				}
			default:
				if c == '\\' && p+1 < len(pattern) {
					c = pattern[p+1]
					if eqByte(c, s[i], nocase) {
						p += 2
						i++
						continue
					}
				} else if eqByte(c, s[i], nocase) {
					p++
					i++
					continue
				}
			}
		}
		if starP < 0 {
			return false
		}
		starI++
		p, i = starP, starI
	}
	for p < len(pattern) && pattern[p] == '*' {
		p++
	}
	return p == len(pattern)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func eqByte(a, b byte, nocase bool) bool {
	if nocase {
		return lower(a) == lower(b)
	}
	return a == b
}

// matchClass matches c against the class starting at pattern[p] (just after
// '['). It returns the index after the class and whether c matched. An
// unterminated class runs to the end of the pattern.
func matchClass(pattern []byte, p int, c byte, nocase bool) (int, bool) {
	neg := false
	if p < len(pattern) && pattern[p] == '^' {
		neg = true
		p++
	}
	matched := false
	for p < len(pattern) && pattern[p] != ']' {
		switch {
		case pattern[p] == '\\' && p+1 < len(pattern):
			if eqByte(pattern[p+1], c, nocase) {
				matched = true
			}
			p += 2
		case p+2 < len(pattern) && pattern[p+1] == '-':
			lo, hi := pattern[p], pattern[p+2]
			if lo > hi {
				lo, hi = hi, lo
			}
			x := c
			if nocase {
				lo, hi, x = lower(lo), lower(hi), lower(c)
			}
			if x >= lo && x <= hi {
				matched = true
			}
			p += 3
		default:
			if eqByte(pattern[p], c, nocase) {
				matched = true
			}
			p++
		}
	}
	if p < len(pattern) {
		p++ // the closing ']'
	}
	return p, matched != neg
}
