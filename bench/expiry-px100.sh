#!/bin/bash
# Sustained SET key val PX 100 for $1 s (default 30) from one pipelined
# redis-benchmark client against bin/hearsay (HEARSAY=path overrides) and
# redis-server, then the keys each still holds 5 s later. Ports 7400, 7401.
set -u
D=${1:-30}
dir=$(mktemp -d)
${HEARSAY:-bin/hearsay} node --port 7400 --dir $dir --heartbeat off --log-level warn >$dir/log 2>&1 &
hp=$!
redis-server --port 7401 --save '' --appendonly no --daemonize no >/dev/null 2>&1 &
rp=$!
sleep 1
redis-cli -p 7400 cluster addslotsrange 0 16383 >/dev/null; sleep 1
for port in 7400 7401; do
  timeout $D redis-benchmark -p $port -c 1 -P 64 -n 1000000000 -r 1000000000 -q SET key:__rand_int__ v PX 100 >/dev/null 2>&1
  sleep 5
  calls=$(redis-cli -p $port info stats | grep -o "total_commands_processed:[0-9]*" | cut -d: -f2)
  size=$(redis-cli -p $port dbsize)
  echo "port $port: commands $calls in ${D}s ($((calls / D))/s); keys held 5 s after: $size"
done
kill $hp $rp; wait; rm -rf $dir
