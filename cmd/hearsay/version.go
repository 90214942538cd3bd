package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version and commit are set by the Makefile (-ldflags "-X main.version=...
// -X main.commit=...") from git. A plain go build leaves them empty: the
// commit then comes from the VCS stamp Go records (unless -buildvcs=false)
// and the version is the module's, or "devel".
var version, commit string

// versionString is what `hearsay --version` prints: version, commit (with
// "+dirty" when the tree had changes), commit time and the Go version.
func versionString(info *debug.BuildInfo, ok bool) string {
	v, rev, when, dirty := version, commit, "", false
	if ok {
		if v == "" && info.Main.Version != "" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if v == "" || v == "(devel)" {
		v = "devel"
	}
	if rev == "" {
		rev = "unknown"
	}
	if dirty {
		rev += "+dirty"
	}
	out := "hearsay " + v + " commit " + rev
	if when != "" {
		out += " (" + when + ")"
	}
	return out + " " + runtime.Version()
}

func printVersion(w io.Writer) {
	info, ok := debug.ReadBuildInfo()
	fmt.Fprintln(w, versionString(info, ok))
}
