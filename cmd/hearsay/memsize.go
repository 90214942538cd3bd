package main

import (
	"fmt"
	"strconv"
	"strings"
)

// parseMemory parses a size the way redis.conf does: a byte count with an
// optional unit, where k, m and g are powers of 1000 and kb, mb and gb
// powers of 1024 ("512mb", "1gb", "1048576"), case-insensitive.
func parseMemory(s string) (int64, error) {
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

// parseYesNo parses a redis.conf boolean: yes or no, in any case.
func parseYesNo(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("argument must be 'yes' or 'no', not %q", s)
}
