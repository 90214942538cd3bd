#!/bin/sh
# Print the llvm-strip that bpf2go should use: the one on PATH, else the one
# installed next to clang (Debian's clang recommends llvm-N-dev, which brings
# /usr/lib/llvm-N/bin/llvm-strip but no unversioned llvm-strip on PATH).
set -eu
if command -v llvm-strip >/dev/null 2>&1; then
	command -v llvm-strip
	exit 0
fi
cc=$(command -v clang) || { echo "llvm-strip.sh: clang not found" >&2; exit 1; }
real=$(readlink -f "$cc")
dir=$(dirname "$real")
for s in "$dir/llvm-strip" "$dir/llvm-strip-${real##*clang-}"; do
	if [ -x "$s" ]; then
		echo "$s"
		exit 0
	fi
done
for s in $(ls /usr/bin/llvm-strip-* 2>/dev/null | sort -r); do
	echo "$s"
	exit 0
done
echo "llvm-strip.sh: no llvm-strip next to $real or on PATH; install llvm (bpf2go strips the DWARF with it)" >&2
exit 1
