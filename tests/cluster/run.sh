#!/usr/bin/env bash
# Cluster test, run by .ci/run: three larder-server nodes behind nutcracker
# (twemproxy 0.5.0, ketama + fnv1a_64, auto_eject_hosts) and behind pymemcache's
# HashClient; checks spread, that keys sit where larder::ring says, which
# commands the proxy forwards, and node loss and rejoin (tests/cluster/cluster.py).
# Installs nutcracker (apt) and pymemcache (pip), builds the release binaries,
# and kills every process it started by PID on exit, even on failure.
set -uo pipefail
cd "$(dirname "$0")/../.."

WORK=$(mktemp -d)
PIDFILE="$WORK/pids"
: >"$PIDFILE"
PY_PID=""
cleanup() {
    if [ -n "$PY_PID" ]; then
        kill "$PY_PID" 2>/dev/null
        wait "$PY_PID" 2>/dev/null
    fi
    # Whatever the script started and could not stop itself; the name check
    # guards against a PID reused since by an unrelated process.
    while read -r pid; do
        case "$(cat "/proc/$pid/comm" 2>/dev/null)" in
            larder-server | nutcracker) kill -9 "$pid" 2>/dev/null ;;
        esac
    done <"$PIDFILE"
    rm -rf "$WORK"
}
# A signal exits, and exiting runs cleanup once.
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '\n--- %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

SUDO=""
if [ "$(id -u)" != 0 ] && command -v sudo >/dev/null; then SUDO="sudo"; fi

say "installing nutcracker and pymemcache"
if ! command -v nutcracker >/dev/null || ! python3 -m pip --version >/dev/null 2>&1; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nutcracker python3-pip >/dev/null
fi
nutcracker -V 2>&1 | head -1
if ! python3 -c 'import pymemcache' 2>/dev/null; then
    PIP=(python3 -m pip install -q --disable-pip-version-check pymemcache)
    "${PIP[@]}" 2>/dev/null || "${PIP[@]}" --break-system-packages
fi

say "building larder-server and examples/ring_route (release)"
cargo build --release --features server --bin larder-server --example ring_route || exit 1

say "cluster test"
python3 tests/cluster/cluster.py \
    --bin target/release/larder-server \
    --ring-route target/release/examples/ring_route \
    --workdir "$WORK" --pidfile "$PIDFILE" &
PY_PID=$!
wait "$PY_PID"
STATUS=$?
PY_PID=""
if [ "$STATUS" != 0 ]; then
    for log in "$WORK"/*.log; do
        echo "== $log"
        tail -n 20 "$log"
    done
fi
exit "$STATUS"
