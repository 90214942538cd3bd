package main

import (
	"fmt"
	"strings"

	"github.com/hearsay/hearsay/internal/memsize"
)

// parseMemory parses a redis.conf size ("512mb", "1gb", "1048576"); see
// memsize.Parse, which CONFIG SET shares.
func parseMemory(s string) (int64, error) { return memsize.Parse(s) }

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
