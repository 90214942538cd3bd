package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hearsay/hearsay/node"
)

// parseOutputLimits applies a client-output-buffer-limit value in
// redis.conf's syntax to l: one or more groups of "<class> <hard> <soft>
// <soft seconds>", class normal, replica (or slave) or pubsub, sizes as
// parseMemory reads them; classes not named keep their value.
func parseOutputLimits(s string, l *node.OutputLimits) error {
	f := strings.Fields(s)
	if len(f) == 0 || len(f)%4 != 0 {
		return fmt.Errorf("want groups of <class> <hard limit> <soft limit> <soft seconds>, got %q", s)
	}
	for i := 0; i < len(f); i += 4 {
		var dst *node.OutputLimit
		switch strings.ToLower(f[i]) {
		case "normal":
			dst = &l.Normal
		case "replica", "slave":
			dst = &l.Replica
		case "pubsub":
			dst = &l.Pubsub
		default:
			return fmt.Errorf("unknown client class %q (normal, replica or pubsub)", f[i])
		}
		hard, err := parseMemory(f[i+1])
		if err != nil {
			return err
		}
		soft, err := parseMemory(f[i+2])
		if err != nil {
			return err
		}
		secs, err := strconv.Atoi(f[i+3])
		if err != nil || secs < 0 {
			return fmt.Errorf("invalid soft seconds %q (a whole number of seconds)", f[i+3])
		}
		*dst = node.OutputLimit{Hard: hard, Soft: soft, SoftSeconds: secs}
	}
	return nil
}
