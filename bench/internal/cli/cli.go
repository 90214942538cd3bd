// Package cli holds the flag handling shared by the `hearsay sim`
// experiments (bench/sim and bench/epidemic) and the harness commands
// (compare, scale): parsing, lists, interruption and the report.
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"unicode"
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

// List splits a list separated by commas and/or white space, so that
// `make scale SCALE_N="30 100"` and `-n 30,100` mean the same.
func List(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })
}

// Ints parses a List of numbers; the error names the flag and the item
// that is not one.
func Ints(flagName, s string) ([]int, error) {
	var out []int
	for _, item := range List(s) {
		n, err := strconv.Atoi(item)
		if err != nil {
			return nil, fmt.Errorf("-%s: %q is not a number", flagName, item)
		}
		out = append(out, n)
	}
	return out, nil
}

// Interruptible returns a context that SIGINT or SIGTERM cancels. The
// harnesses stop every process they started and remove their directories
// when their context ends, so an interrupted run leaves nothing behind.
func Interruptible() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
}

// WriteReport prints report to stdout and, when path is set, also writes
// it to that file.
func WriteReport(report []byte, path string) error {
	if _, err := os.Stdout.Write(report); err != nil {
		return err
	}
	if path == "" {
		return nil
	}
	if err := os.WriteFile(path, report, 0o644); err != nil {
		return fmt.Errorf("-out: %w", err)
	}
	return nil
}
