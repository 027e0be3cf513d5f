#!/usr/bin/env bash
# A primary's throughput with one replica attached against without, in one run on
# loopback. Two primaries run side by side (each `-t 1`, pinned to CPU 0): one has a
# replica (pinned to CPU 1, with the load generator), the other never had one, so it
# does not record changes at all. Each configuration runs twice, primaries
# alternating. Loads: all sets, and 90/10 get/set, of 100-byte values over 10,000
# keys, unpipelined and pipelined 16 deep.
#
#   bash benches/repl_throughput.sh          # SECS=5 CONNS=50 ROUNDS=2 by default
#   ONLY=100:16 ROUNDS=4 bash benches/repl_throughput.sh   # one load: sets%:pipeline
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${SECS:-5}"
CONNS="${CONNS:-50}"
ROUNDS="${ROUNDS:-2}"
ONLY="${ONLY:-}"
cargo build --release --features server --bin larder-server --example loadgen 2>&1 | tail -1

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
BIN=target/release/larder-server
taskset -c 0 $BIN -t 1 -m 1024 -p 22131 -l 127.0.0.1 2>/dev/null &
pids+=($!)
taskset -c 0 $BIN -t 1 -m 1024 -p 22132 -l 127.0.0.1 2>/dev/null &
pids+=($!)
sleep 0.5
taskset -c 1 $BIN -t 1 -m 1024 -p 22133 -l 127.0.0.1 --replica-of 127.0.0.1:22132 2>/dev/null &
pids+=($!)
sleep 1
stat() { python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\r\n"); d = b""
while not d.endswith(b"END\r\n"): d += s.recv(65536)
print(dict(l.split(" ")[1:3] for l in d.decode().splitlines() if l.startswith("STAT"))[sys.argv[2]])' "$@"; }
cpu() { python3 -c '
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"stats\r\n"); d = b""
while not d.endswith(b"END\r\n"): d += s.recv(65536)
st = dict(l.split(" ")[1:3] for l in d.decode().splitlines() if l.startswith("STAT"))
print(float(st["rusage_user"]) + float(st["rusage_system"]))' "$1"; }
echo "$(nproc) cpus; ${CONNS} connections; ${SECS}s per run; $(uptime | sed 's/.*load/load/')"
for sets in 100 10; do
    for pipeline in 1 16; do
        if [ -n "$ONLY" ] && [ "$ONLY" != "$sets:$pipeline" ]; then continue; fi
        for round in $(seq "$ROUNDS"); do
            for server in alone:22131 with-replica:22132; do
                port=${server#*:}
                printf 'sets %3s%% pipeline %2s %-13s round %s: ' "$sets" "$pipeline" "${server%%:*}" "$round"
                cpu0=$(cpu "$port")
                out=$(taskset -c 1 target/release/examples/loadgen --addr "127.0.0.1:$port" \
                    --conns "$CONNS" --seconds "$SECS" --pipeline "$pipeline" --sets "$sets")
                cpu1=$(cpu "$port")
                ops=$(echo "$out" | sed 's/.*: \([0-9]*\) ops.*/\1/')
                echo "$out; primary CPU $(python3 -c "print('%.2f' % (($cpu1 - $cpu0) * 1e6 / ($ops * $SECS)))") us/op"
            done
        done
    done
done
echo "replica: offset $(stat 22133 repl_offset) of $(stat 22132 repl_offset), lag p99 $(stat 22133 repl_lag_p99_ms) ms, link up $(stat 22133 repl_link_up)"
echo "$(uptime | sed 's/.*load/load/')"
