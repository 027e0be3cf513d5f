#!/usr/bin/env bash
# libmemcached's own test suite (Debian's libmemcached 1.1.4 source package,
# the maintained "awesome" fork that pylibmc and PHP's memcached extension
# build on) against larder-server, run by .ci/run.
#
# The suite starts its servers itself from MEMCACHED_BINARY, with memcached's
# command line (-u nobody, -p PORT, -s FILE, -v); here that is a wrapper
# that starts larder-server the same way, UDP ports becoming -U 0 (larder
# speaks TCP only). Its TCP tests connect to [::1]:PORT, which larder-server
# listens on by default where the machine has IPv6.
#
# Left out, each for its reason:
#   memcached_udp            UDP
#   bin/memcp                its UDP sections
#   memcached_stat           asks `stats BAD_ARG` and expects memcached's
#                            ERROR; larder answers CLIENT_ERROR (the
#                            monitoring issue's rule), which libmemcached
#                            reads as success: the one known difference
#   memcached_regression_lp583031
#                            expects a connect to 192.0.2.1 to time out; a
#                            sandbox refuses it at once (fails on memcached
#                            too)
#   memcached_regression_gh-php-memcached_0531
#                            a zero poll timeout that passes or fails by
#                            reply latency (fails on memcached too, 1 in 10)
#   lib/Connection           only where ::1 cannot be bound (it connects
#                            there)
# Flaky tests get a second run (--repeat until-pass:2), as upstream's CI does.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=$ROOT/target/release/larder-server

# shellcheck source=ci/debian_source.sh
. ci/debian_source.sh

WORK=$(mktemp -d)
# The wrapper execs larder-server, keeping its pid: it writes that pid to
# $WORK/pids, and servers a timed-out test left behind are killed here.
cleanup() {
    if [ -f "$WORK/pids" ]; then
        xargs -r kill 2>/dev/null <"$WORK/pids"
    fi
    rm -rf "$WORK"
    debian_source_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! command -v cmake >/dev/null || ! command -v bison >/dev/null || ! command -v flex >/dev/null \
    || ! pkg-config --exists libevent 2>/dev/null; then
    aptget update -qq && aptget install -y -qq cmake bison flex libevent-dev pkg-config g++ >/dev/null \
        || exit 1
fi
SRC=$(fetch_debian_source libmemcached "$WORK") || exit 1
if [ "$(basename "$SRC")" != libmemcached-1.1.4 ]; then
    echo "the left-out tests are listed for libmemcached 1.1.4, got $(basename "$SRC")" >&2
    exit 1
fi

mkdir -p "$WORK/build"
(cd "$WORK/build" && cmake -DBUILD_TESTING=ON -DENABLE_MEMASLAP=OFF -DENABLE_SASL=OFF \
    -DCMAKE_BUILD_TYPE=Debug "$SRC" >cmake.log 2>&1 && make -j2 >build.log 2>&1) || {
    tail -n 30 "$WORK/build/cmake.log" "$WORK/build/build.log"
    exit 1
}

cat >"$WORK/memcached-wrapper" <<EOF
#!/usr/bin/env bash
# larder-server in memcached's place; UDP ports become -U 0.
echo \$\$ >>"$WORK/pids"
args=()
while [ \$# -gt 0 ]; do
    case "\$1" in
        -U) args+=(-U 0); shift 2; continue ;;
    esac
    args+=("\$1")
    shift
done
exec "$BIN" "\${args[@]}"
EOF
chmod +x "$WORK/memcached-wrapper"

skip='memcached_udp|bin/memcp|memcached_stat|memcached_regression_lp583031|memcached_regression_gh-php-memcached_0531'
if ! python3 -c 'import socket; socket.create_server(("::1", 0), family=socket.AF_INET6)' 2>/dev/null; then
    echo "::1 cannot be bound here: lib/Connection (which connects there) is left out"
    skip="$skip|lib/Connection"
fi
cd "$WORK/build" || exit 1
MEMCACHED_BINARY="$WORK/memcached-wrapper" ctest -j2 --timeout 120 --repeat until-pass:2 \
    -E "^($skip)\$" --output-on-failure >ctest.log 2>&1
code=$?
sed -n '/tests passed/,$p' ctest.log
if [ "$code" != 0 ]; then
    grep -E 'Failed|FAILED|Timeout' ctest.log | head -40
fi
exit "$code"
