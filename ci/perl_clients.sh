#!/usr/bin/env bash
# Perl clients' own test suites against larder-server, run by .ci/run:
# Cache::Memcached::Fast (XS, text protocol: every command, noreply, nowait,
# multi-key forms, threads), Cache::Memcached (the original pure-Perl client),
# Memcached::libmemcached (libmemcached's API), AnyEvent::Memcached (an
# event-loop client), Memoize::Memcached, Apache::Session::Memcached and
# CHI's memcached drivers. Their t/ directories come
# from Debian's source packages, the clients themselves from Debian's binary
# packages. The tests talk to 127.0.0.1:11211; the copies here are pointed at
# a free port instead.
#
# Left out, with the reason: Cache::Memcached::Fast's t/perl-namespace.t
# (checks the module's own symbol table, not the server), t/changes.t,
# t/pod*.t and t/tidy.t (author checks of the distribution's files);
# Memcached::libmemcached's t/00-load.t (compares the module's version with
# the C library's, a packaging check).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=$PWD/target/release/larder-server

# shellcheck source=ci/debian_source.sh
. ci/debian_source.sh

WORK=$(mktemp -d)
SERVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
    rm -rf "$WORK"
    debian_source_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! perl -MCache::Memcached::Fast -MCache::Memcached -MMemcached::libmemcached \
    -MTest2::V0 -MAnyEvent::Memcached -MMemoize::Memcached -MApache::Session::Memcached \
    -MCHI::Driver::Memcached -MTest::Class -e1 2>/dev/null; then
    aptget update -qq
    aptget install -y -qq libcache-memcached-fast-perl libcache-memcached-perl \
        libmemcached-libmemcached-perl libtest2-suite-perl \
        libanyevent-memcached-perl libmemoize-memcached-perl libapache-session-memcached-perl \
        libapache-session-perl libchi-driver-memcached-perl libchi-perl libtest-class-perl \
        libtest-deep-perl libtest-exception-perl libtest-warn-perl libtest-nowarnings-perl \
        libanyevent-connection-perl liblib-abs-perl libstring-crc32-perl >/dev/null || exit 1
fi
FAST=$(fetch_debian_source libcache-memcached-fast-perl "$WORK") || exit 1
PLAIN=$(fetch_debian_source libcache-memcached-perl "$WORK") || exit 1
XS=$(fetch_debian_source libmemcached-libmemcached-perl "$WORK") || exit 1
ANYEVENT=$(fetch_debian_source libanyevent-memcached-perl "$WORK") || exit 1
MEMOIZE=$(fetch_debian_source libmemoize-memcached-perl "$WORK") || exit 1
SESSION=$(fetch_debian_source libapache-session-memcached-perl "$WORK") || exit 1
CHI=$(fetch_debian_source libchi-driver-memcached-perl "$WORK") || exit 1

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$BIN" -p "$PORT" 2>"$WORK/server.log" &
SERVER=$!
for _ in $(seq 50); do
    grep -q "listening on" "$WORK/server.log" && break
    sleep 0.1
done
if ! grep -q "listening on" "$WORK/server.log"; then
    echo "larder-server did not start:" >&2
    cat "$WORK/server.log" >&2
    exit 1
fi

failed=0
# run_suite DIR LEAVE_OUT: prove every t/*.t of DIR but those whose names
# LEAVE_OUT (an extended regex) matches, pointed at our server's port.
run_suite() {
    local dir=$1 leave_out=$2 tests=()
    shift 2
    for test in "$dir"/t/*.t; do
        name=$(basename "$test")
        [[ "$name" =~ $leave_out ]] || tests+=("t/$name")
    done
    sed -i "s/11211/$PORT/g" "$dir"/t/*.t "$dir"/t/*.pm 2>/dev/null
    echo "--- $(basename "$dir") against larder-server on port $PORT (${#tests[@]} files)"
    if ! (cd "$dir" && AUTHOR_TESTING=1 timeout 600 prove "$@" "${tests[@]}"); then
        failed=1
    fi
}
run_suite "$FAST" '^(perl-namespace|changes|pod|pod-coverage|tidy)\.t$'
run_suite "$PLAIN" '^$'
export PERL_LIBMEMCACHED_TEST_SERVERS=127.0.0.1:$PORT
run_suite "$XS" '^00-load\.t$'
# AnyEvent::Memcached takes its server from the environment (its MemcacheDB
# tests speak the same protocol).
MEMCACHED_SERVER=127.0.0.1:$PORT MEMCACHEDB_SERVER=127.0.0.1:$PORT \
    run_suite "$ANYEVENT" '^pod\.t$' -Ilib
run_suite "$MEMOIZE" '^$' -Ilib
# Apache::Session::Memcached names its server in t/CONFIG; its tests load
# t/testlib.pl, which needs . in @INC.
sed -i "s/127.0.0.1:20000/127.0.0.1:$PORT/" "$SESSION/t/CONFIG"
run_suite "$SESSION" '^$' -Ilib -I.
# CHI's driver tests over Cache::Memcached::Fast and Cache::Memcached. Left
# out: the Cache::Memcached::libmemcached driver's file, which fails 59 of
# its 840 tests against memcached 1.6.18 too (that driver's key listing), and
# pod.t.
sed -i "s/127.0.0.1:11211/127.0.0.1:$PORT/" "$CHI"/lib/CHI/Driver/Memcached/t/CHIDriverTests/Base.pm
run_suite "$CHI" '^(CHIDriverTests-libmemcached|pod)\.t$' -Ilib
exit $failed
