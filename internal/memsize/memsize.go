// Package memsize parses memory sizes the way redis.conf writes them. The
// command line (--maxmemory, --repl-backlog-size...) and CONFIG SET share
// it, so a size means the same in both.
package memsize

import (
	"fmt"
	"strconv"
	"strings"
)

// Parse parses a size the way redis.conf does: a byte count with an
// optional unit, where k, m and g are powers of 1000 and kb, mb and gb
// powers of 1024 ("512mb", "1gb", "1048576"), case-insensitive.
func Parse(s string) (int64, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	mul := int64(1)
	for _, u := range []struct {
		suffix string
		mul    int64
	}{{"kb", 1 << 10}, {"mb", 1 << 20}, {"gb", 1 << 30}, {"k", 1e3}, {"m", 1e6}, {"g", 1e9}, {"b", 1}} {
		if strings.HasSuffix(t, u.suffix) {
			t, mul = strings.TrimSuffix(t, u.suffix), u.mul
			break
		}
	}
	v, err := strconv.ParseInt(t, 10, 64)
	if err != nil || v < 0 || v > (1<<63-1)/mul {
		return 0, fmt.Errorf("invalid size %q (a byte count, optionally with k, kb, m, mb, g or gb)", s)
	}
	return v * mul, nil
}
