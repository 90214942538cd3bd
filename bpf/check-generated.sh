#!/bin/sh
# Regenerate the bpf2go output into a temporary directory and fail if it
# differs from the committed files. CI runs this when clang is installed;
# clang is all it needs (the libbpf headers are vendored in include/).
set -eu
cd "$(dirname "$0")"
if ! command -v clang >/dev/null 2>&1; then
	if [ "${HEARSAY_CI_STRICT:-}" = 1 ]; then
		echo "check-generated: clang not found and HEARSAY_CI_STRICT=1; install clang (the libbpf headers are vendored in bpf/include)" >&2
		exit 1
	fi
	echo "check-generated: clang not found; skipping the check of the committed XDP object (install clang to run it)" >&2
	exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# Same flags as the go:generate line in gen.go.
line=$(grep '^//go:generate go tool bpf2go' gen.go)
args=${line#//go:generate go tool bpf2go }
eval "set -- $args"
# bpf2go strips DWARF with llvm-strip; find it next to clang when the
# unversioned name is not on PATH.
BPF2GO_STRIP=${BPF2GO_STRIP:-$(sh ./llvm-strip.sh)}
export BPF2GO_STRIP
GOPACKAGE=bpf GOFILE=gen.go go tool bpf2go -output-dir "$tmp" "$@"
status=0
for f in heartbeat_bpfel.go heartbeat_bpfel.o; do
	if ! cmp -s "$f" "$tmp/$f"; then
		echo "check-generated: $f differs from heartbeat.c; run 'make generate' and commit" >&2
		status=1
	fi
done
[ "$status" -eq 0 ] && echo "check-generated: bpf2go output matches heartbeat.c"
exit "$status"
