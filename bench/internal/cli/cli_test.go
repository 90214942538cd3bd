package cli

import (
	"errors"
	"flag"
	"slices"
	"strings"
	"testing"
)

func TestIntsAndList(t *testing.T) {
	got, err := Ints("n", " 30 100,200\t,")
	if err != nil || !slices.Equal(got, []int{30, 100, 200}) {
		t.Fatalf("Ints: %v %v", got, err)
	}
	if _, err := Ints("n", "30 x"); err == nil || !strings.Contains(err.Error(), `-n: "x" is not a number`) {
		t.Fatalf("Ints of a bad item: %v", err)
	}
	if l := List(""); len(l) != 0 {
		t.Fatalf("List of nothing: %q", l)
	}
}

func TestParse(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	v := fs.Int("v", 1, "a value")
	if err := Parse(fs, []string{"-v", "3"}); err != nil || *v != 3 {
		t.Fatalf("Parse: %v, v=%d", err, *v)
	}
	if err := Parse(fs, []string{"stray"}); err == nil {
		t.Fatal("a positional argument was accepted")
	}
	err := Parse(flag.NewFlagSet("x", flag.ContinueOnError), []string{"-h"})
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
}
