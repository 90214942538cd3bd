// Package compare runs hearsay and Redis 7 side by side on one machine, in
// the same run, and reports the Targets figures of issue 3. `make compare`
// runs it (command bench/compare/cmd/compare); `-quick` is a short version.
//
// # Throughput
//
// redis-benchmark -t <test> -n N -P 16 -c 50 --csv runs against one
// hearsay node, one `redis-server --save "" --appendonly no` and the
// ceiling (ceiling.go: a responder in this process that only parses,
// stores and replies), for SET and then GET, Rounds times, each round in
// the order hearsay, redis, ceiling, so that slow drift of the machine
// does not favour any. hearsay has no non-cluster mode; the node owns all
// 16384 slots (CLUSTER ADDSLOTSRANGE 0 16383), so it never redirects,
// which is what a standalone server does. Figures are requests per second,
// the median over the rounds, the ratios to redis, and each server's CPU
// time per request (utime+stime from /proc; the ceiling's thread only).
// The ceiling is what the single-threaded redis-benchmark client allows on
// the machine: no server can lead Redis by more than it does.
//
// # Idle bus traffic
//
// For each size (6 and 30 nodes: half masters, one replica each) the
// harness builds, one at a time, a Redis cluster (redis-cli --cluster
// create) and one hearsay cluster per --heartbeat mode (hearsay cluster
// create), all with node timeout 1000 ms. Once every node reports
// cluster_state:ok, the full node count and the expected number of
// masters, it waits Settle and then counts bus traffic for Window.
//
// Bytes are counted on the wire, the same way for both systems: an
// AF_PACKET socket on lo with a classic BPF filter sees every TCP and UDP
// packet to or from the cluster's bus ports (client ports +10000). This
// counts hearsay's UDP heartbeats as bus traffic, and connections that open
// and close inside the window. The headline figure is payload bytes (no IP
// or TCP headers) per node per second; whole-packet "wire" bytes are
// reported too, since small messages carry proportionally more header and
// ACK overhead. As a cross-check, and the fallback when the capture is not
// permitted (it needs CAP_NET_RAW), the sum of bytes_sent over the bus
// sockets is read from `ss -tinH` before and after the window; on loopback
// both ends of each bus connection match the port filter, so each byte is
// counted once, by its sender. cluster_stats_messages_sent (CLUSTER INFO)
// gives messages per node per second.
//
// Every child runs in its own process group with SIGKILL as its parent
// death signal; Run stops them (SIGTERM, then SIGKILL) and removes its
// temporary directory on every return path, including cancellation by
// SIGINT or SIGTERM in the command.
package compare
