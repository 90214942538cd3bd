// Command hearsay is the single hearsay binary: node, cluster, demo and sim.
package main

import (
	"fmt"
	"os"
	"sort"
)

// subcommand runs with the arguments after its name and returns the exit code.
type subcommand struct {
	summary string
	run     func(args []string) int
}

// subcommands is filled by the init functions of the files that implement them.
var subcommands = map[string]subcommand{}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: hearsay <command> [flags]   (hearsay --version prints version and commit)")
	fmt.Fprintln(os.Stderr, "\ncommands:")
	names := make([]string, 0, len(subcommands))
	for n := range subcommands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(os.Stderr, "  %-8s %s\n", n, subcommands[n].summary)
	}
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage()
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	switch os.Args[1] {
	case "--version", "-version", "version":
		printVersion(os.Stdout)
		return
	}
	sc, ok := subcommands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "hearsay: unknown command %q\n", os.Args[1])
		usage()
		os.Exit(2)
	}
	os.Exit(sc.run(os.Args[2:]))
}
