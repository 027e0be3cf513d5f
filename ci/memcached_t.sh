#!/usr/bin/env bash
# memcached's own test suite (the t/*.t files of Debian's memcached source
# package) against larder-server, run by .ci/run.
#
# The suite starts "./memcached-debug ARGS" from its build directory for each
# server it needs; here that file is a wrapper that starts larder-server with
# the same arguments (UDP ports become -U 0: larder has no UDP), and
# "./timedrun SECS CMD" is coreutils' timeout. larder-server's --help
# mentions --unix-socket, so the suite starts most servers on a Unix domain
# socket (-s FILE), as it does memcached; those given -l use TCP.
#
# Every file runs, except those for features larder does not have (listed in
# SKIP with the reason). A file passes when it runs all its planned tests and
# each failing test is one of the known differences in KNOWN (file: test
# numbers, each explained). A known failure that passes is reported, not an
# error. Exits non-zero if any file fails.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/target/release/larder-server

# shellcheck source=ci/debian_source.sh
. ci/debian_source.sh

WORK=$(mktemp -d)
# Servers the suite started and left behind (each has the suite's own -o).
cleanup() {
    pkill -f "$BIN .*relaxed_privileges" 2>/dev/null
    rm -rf "$WORK"
    debian_source_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the suite's source: Debian's memcached source package -----------------
if ! perl -MTest::More -e1 2>/dev/null || ! command -v xz >/dev/null; then
    aptget update -qq && aptget install -y -qq perl xz-utils >/dev/null || exit 1
fi
SRC=$(fetch_debian_source memcached "$WORK") || exit 1
[ -d "$SRC/t" ] || { echo "no t/ in $SRC" >&2; exit 1; }
# KNOWN below numbers the tests of this release's t/.
if [ "$(basename "$SRC")" != memcached-1.6.18 ]; then
    echo "the known differences are listed for memcached 1.6.18's t/, got $(basename "$SRC")" >&2
    exit 1
fi

cat >"$SRC/memcached-debug" <<EOF
#!/usr/bin/env bash
# larder-server in memcached-debug's place; UDP ports become -U 0.
args=()
while [ \$# -gt 0 ]; do
    case "\$1" in
        -U) shift; args+=(-U 0) ;;
        *) args+=("\$1") ;;
    esac
    shift
done
exec "$BIN" "\${args[@]}"
EOF
printf '#!/bin/sh\nsecs=$1\nshift\nexec timeout -s INT "$secs" "$@"\n' >"$SRC/timedrun"
chmod +x "$SRC/memcached-debug" "$SRC/timedrun"

# --- what is left out, and the known differences ----------------------------
declare -A SKIP=(
    [64bit]="fakes memcached-debug's allocation total (T_MEMD_INITIAL_MALLOC) and reads slab figures"
    [binary-sasl]="takes its users from a Cyrus sasldb (larder's -S reads memcached's password-file format; tests/server_suite/differential_sasl.py compares the exchanges with memcached's)"
    [binary-extstore]="needs extstore"
    [chunked-extstore]="needs extstore"
    [error-extstore]="needs extstore"
    [extstore]="needs extstore"
    [extstore-buckets]="needs extstore"
    [extstore-jbod]="needs extstore"
    [restart]="needs -e memory files (larder restarts warm from --snapshot)"
    [udp]="needs UDP"
    [issue_67]="checks UDP port choices"
    [proxy]="needs memcached's proxy mode"
    [ssl_cert_refresh]="needs TLS"
    [ssl_ports]="needs TLS"
    [ssl_proto_version]="needs TLS"
    [ssl_session_resumption]="needs TLS"
    [ssl_settings]="needs TLS"
    [ssl_verify_modes]="needs TLS"
    [watcher]="needs the watch command (log streams)"
    [watcher_connid]="needs the watch command (log streams)"
    [misbehave]="checks memcached's seccomp sandbox"
    [lru]="checks strict LRU order and slab-class sizes (larder's policy is adaptive, over one class)"
    [lru-maintainer]="checks the segmented LRU's hot/warm/cold/temp queues"
    [slabs_reassign]="moves pages between numbered slab classes (larder's page mover gives pages back to the heap)"
    [slabs-reassign2]="moves pages between numbered slab classes (larder's page mover gives pages back to the heap)"
    [slabs-reassign-chunked]="moves pages between numbered slab classes (larder's page mover gives pages back to the heap)"
    [slabhang]="needs memcached-debug's slab debugging commands"
    [refhang]="needs memcached-debug's item reference debugging"
)
declare -A KNOWN=(
    # 5: -C turns CAS off in memcached; larder accepts -C and keeps CAS.
    [00-startup]="5"
    # 27: with CAS off, memcached loses a set right after flush_all (the test
    # expects the loss); larder keeps CAS.
    [flush-all]="27"
    # 3 8 16 17 36: move the clock with "debugtime", a command only
    # memcached-debug builds have; larder's expiry is tested on a manual clock
    # (tests/memcached_conformance.rs).
    [expirations]="3 8 16 17 36"
    # 1: counts the stats lines; larder leaves out figures of machinery it
    # does not have (hash table expansion, slab mover, LRU crawler, log
    # watchers) and adds its own (snapshots, replication).
    # 106: the item is stored already expired (an absolute time in the past);
    # larder does not keep it, so the read is a plain miss, not get_expired.
    # 111: get_flushed stays 0 (flush_all reclaims at once, not lazily).
    [stats]="1 106 111"
    # 41: expects evictions from 40 values of 65 KiB in -m 3; larder packs
    # them (no slab-class rounding) and has not evicted yet.
    [dyn-maxbytes]="41"
    # 43 84: read items:31:evicted; larder has one pseudo class, 1.
    [issue_22]="43 84"
    # 4: reads items:31:reclaimed (class 31).
    [issue_163]="4"
    # 5: a set over a flushed item counts as "reclaimed" in memcached, whose
    # flush is lazy; larder's flush_all removes the items at once.
    [issue_183]="5"
    # 10: reads the UDP port of stats conns (tests 1-8 check the Unix
    # socket's lines).
    [stats-conns]="10"
    # 1 3 4: memcached's per-worker response memory limit
    # (resp_obj_mem_limit) cuts a huge multiget short with
    # "SERVER_ERROR out of memory writing"; larder streams it (a connection
    # holds a bounded output, see --conn-buffer-budget).
    [conn-limits]="1 3 4"
)

# --- run ---------------------------------------------------------------------
cd "$SRC"
failed=()
passed=0
for test in t/*.t; do
    name=$(basename "$test" .t)
    if [ -n "${SKIP[$name]:-}" ]; then
        printf '%-24s skipped: %s\n' "$name" "${SKIP[$name]}"
        continue
    fi
    log="$WORK/$name.log"
    timeout 300 perl "$test" >"$log" 2>&1
    planned=$(sed -n 's/^1\.\.\([0-9]*\).*/\1/p' "$log" | head -1)
    ran=$(grep -cE '^(not )?ok [0-9]+' "$log")
    failing=$(sed -n 's/^not ok \([0-9]*\).*/\1/p' "$log" | grep -v '^$' | tr '\n' ' ')
    known=" ${KNOWN[$name]:-} "
    unexpected=""
    for n in $failing; do
        [[ "$known" == *" $n "* ]] || unexpected+="$n "
    done
    fixed=""
    for n in ${KNOWN[$name]:-}; do
        [[ " $failing " == *" $n "* ]] || fixed+="$n "
    done
    if [ -z "$planned" ] || [ "$ran" != "$planned" ] || [ -n "$unexpected" ]; then
        printf '%-24s FAILED (ran %s of %s; unexpected failures: %s)\n' \
            "$name" "$ran" "${planned:-?}" "${unexpected:-none}"
        grep -vE '^ok ' "$log" | head -40 | cut -c1-200
        failed+=("$name")
    else
        printf '%-24s ok (%s tests%s%s)\n' "$name" "$planned" \
            "${failing:+; known differences: $failing}" "${fixed:+; known failures now passing: $fixed}"
        passed=$((passed + 1))
    fi
done
# memcached-tool (memcached's own script, from the Debian package) dumps a
# server through `lru_crawler metadump all`, then gets every key it listed:
# its dump of larder-server must hold every item written (one with a
# non-ASCII key among them, URI-encoded in the metadump).
TOOL=/usr/share/memcached/scripts/memcached-tool
if [ -f "$TOOL" ]; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    "$BIN" -p "$port" -o relaxed_privileges 2>/dev/null &
    tool_server=$!
    python3 - "$port" <<'PY'
import socket, sys, time
port = int(sys.argv[1])
for _ in range(100):
    try:
        s = socket.create_connection(("127.0.0.1", port))
        break
    except OSError:
        time.sleep(0.05)
batch = b"".join(b"set key%d %d 0 5 noreply\r\nv%04d\r\n" % (i, i % 7, i) for i in range(3000))
s.sendall(batch + b"set sp\xc3\xa9 0 0 1 noreply\r\nx\r\nversion\r\n")
buf = b""
while not buf.endswith(b"\r\n"):
    buf += s.recv(100)
PY
    dumped=$(perl "$TOOL" "127.0.0.1:$port" dump 2>/dev/null | grep -c '^add ')
    kill "$tool_server" 2>/dev/null
    if [ "$dumped" = 3001 ]; then
        echo "memcached-tool dump      ok (3001 of 3001 items, through lru_crawler metadump)"
    else
        echo "memcached-tool dump      FAILED ($dumped of 3001 items)"
        failed+=("memcached-tool-dump")
    fi
fi

echo
if [ ${#failed[@]} -gt 0 ]; then
    echo "memcached's t/: ${#failed[@]} file(s) failed: ${failed[*]} ($passed passed)"
    exit 1
fi
echo "memcached's t/: all $passed files passed (${#SKIP[@]} skipped, each with its reason)"
