#!/usr/bin/env bash
# larder-server against memcached over the binary protocol, side by side in one run on
# loopback, with libmemcached's memaslap (Debian ships it as `memcaslap`): 90/10
# get/set of 100-byte values, N concurrent connections, `-B` (binary). The ASCII run
# of the same load follows for reference. Then memcslap, binary and ASCII, on
# flushed servers (4 threads, each sending N sets, or N gets of keys set before,
# one request at a time): requests per second. Last, examples/loadgen.rs, the same
# client for both protocols (`--binary 1` or 0), to tell binary's own cost apart. The servers share CPU 0 (one is loaded at a
# time, each with the same thread count); memaslap runs on CPU 1 with one thread.
# Each configuration runs twice, servers alternating.
#
#   bash benches/server_binary_load.sh     # SECS=10 CONNS=50 THREADS=1 by default
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECS:-10}"
CONNS="${CONNS:-50}"
THREADS="${THREADS:-1}"
command -v memcached >/dev/null || { echo "memcached is not installed (apt-get install memcached)"; exit 1; }
command -v memcaslap >/dev/null || { echo "memcaslap is not installed (apt-get install libmemcached-tools)"; exit 1; }
cargo build --release --features server --bin larder-server --example loadgen 2>&1 | tail -1

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c 0 memcached -u "$(id -un)" -t "$THREADS" -m 64 -c 1024 -p 22124 -l 127.0.0.1 -U 0 &
pids+=($!)
taskset -c 0 target/release/larder-server -t "$THREADS" -m 64 -c 1024 -p 22125 -l 127.0.0.1 2>/dev/null &
pids+=($!)
sleep 1
echo "memcached $(memcached -V | cut -d' ' -f2), larder-server $(target/release/larder-server --version | tail -1); $(nproc) cpus; $THREADS server thread(s); $CONNS connections; ${SECS}s per run"
for protocol in binary ascii; do
    flag=()
    [ "$protocol" = binary ] && flag=(-B)
    for round in $(seq "${ROUNDS:-2}"); do
        for server in memcached:22124 larder-server:22125; do
            printf '%-14s %-6s round %s: ' "${server%%:*}" "$protocol" "$round"
            taskset -c 1 memcaslap -s "127.0.0.1:${server#*:}" -T 1 -c "$CONNS" -t "${SECS}s" \
                -X 100 "${flag[@]}" | grep -E '^(get_misses|Run time)' | tr '\n' ' '
            echo
        done
    done
done
N="${N:-20000}"
for round in $(seq "${ROUNDS:-2}"); do
    for protocol in binary ascii; do
        flag=()
        [ "$protocol" = binary ] && flag=(--binary)
        for server in memcached:22124 larder-server:22125; do
            for test in set get; do
                # --flush: both servers start each run empty.
                secs=$(taskset -c 1 memcslap --servers="127.0.0.1:${server#*:}" --flush "${flag[@]}" \
                    --concurrency=4 --execute-number="$N" --test="$test" \
                    | sed -n 's/^Time to [a-z]* *\([0-9]*\) keys by.*: *\([0-9.]*\) seconds.*/\2/p')
                printf '%-14s memcslap %-6s %s round %s: %d requests in %s s: %d/s\n' "${server%%:*}" \
                    "$protocol" "$test" "$round" $((4 * N)) "$secs" "$(awk "BEGIN {print int(4 * $N / $secs)}")"
            done
        done
    done
done
for round in $(seq "${ROUNDS:-2}"); do
    for binary in 1 0; do
        for server in memcached:22124 larder-server:22125; do
            printf '%-14s loadgen binary=%s round %s: ' "${server%%:*}" "$binary" "$round"
            taskset -c 1 target/release/examples/loadgen --addr "127.0.0.1:${server#*:}" \
                --conns "$CONNS" --seconds "$SECS" --binary "$binary"
        done
    done
done
