// Package cli holds the flag handling shared by the `hearsay sim`
// experiments (bench/sim and bench/epidemic).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"strings"
)

// Parse parses args into fs and rejects positional arguments. What the flag
// package would print goes nowhere but into the help error: for -h or
// --help the error wraps flag.ErrHelp and carries the usage text, so the
// caller decides where it goes.
func Parse(fs *flag.FlagSet, args []string) error {
	var usage strings.Builder
	fs.SetOutput(&usage)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fmt.Errorf("%w\n%s", err, usage.String())
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return nil
}
