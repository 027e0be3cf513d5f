#!/usr/bin/env bash
# larder-server against memcached under the same load generator, side by side in one
# run on loopback: 90/10 get/set of 100-byte values, N connections, unpipelined and
# pipelined. The servers share CPU 0 (one runs at a time, each with the same thread
# count); the load generator runs on CPU 1. Each configuration runs twice, servers
# alternating, to spread the machine's noise over both.
#
#   bash benches/server_load.sh            # SECS=10 CONNS=50 THREADS=1 by default
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECS:-10}"
CONNS="${CONNS:-50}"
THREADS="${THREADS:-1}"
command -v memcached >/dev/null || { echo "memcached is not installed (apt-get install memcached)"; exit 1; }
cargo build --release --features server --bin larder-server --example loadgen 2>&1 | tail -1

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
taskset -c 0 memcached -u root -t "$THREADS" -m 64 -c 1024 -p 22122 -l 127.0.0.1 -U 0 &
pids+=($!)
taskset -c 0 target/release/larder-server -t "$THREADS" -m 64 -c 1024 -p 22123 -l 127.0.0.1 2>/dev/null &
pids+=($!)
sleep 1
echo "memcached $(memcached -V | cut -d' ' -f2), larder-server $(target/release/larder-server --version | tail -1); $(nproc) cpus; $THREADS server thread(s); $CONNS connections; ${SECS}s per run"
for pipeline in 1 16; do
    for round in 1 2; do
        for server in memcached:22122 larder-server:22123; do
            printf '%-14s round %s: ' "${server%%:*}" "$round"
            taskset -c 1 target/release/examples/loadgen --addr "127.0.0.1:${server#*:}" \
                --conns "$CONNS" --seconds "$SECS" --pipeline "$pipeline"
        done
    done
done
