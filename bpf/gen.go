package bpf

// The XDP object is generated from heartbeat.c and committed, so building
// hearsay never needs clang. `make generate` reruns this; check-generated.sh
// verifies that the committed files match the C source. The libbpf headers
// it includes are vendored under include/, so clang is all it needs.
//
//go:generate go tool bpf2go -cc clang -cflags "-O2 -Wall -Werror -Iinclude -I/usr/include/x86_64-linux-gnu" -target bpfel -type hb_node -type hb_peer_key -type hb_peer -type hb_owner heartbeat heartbeat.c
