#!/usr/bin/env python3
"""Connection-buffer budget suite for larder-server (--conn-buffer-budget).

Holds two kinds of hostile connections open at once:
- HALF_SENDERS connections that each send the first half of a 1 MB `set`
  and then stop (the server must not buffer 500 x 0.5 MB), and
- NON_READERS connections that pipeline `get`s of several ~1 MB values and
  never read a byte of the replies (the server must not copy the values
  into per-connection buffers),
then checks that the server process stays within its memory bound and
still answers `version` on a fresh connection.

Bound (documented, see README "Memory"): VmRSS <= RSS of the idle server
before the test + -m + the connection-buffer budget + BASELINE, where
BASELINE = 16 MiB + 48 KiB per held connection: each connection's free
16 KiB read buffer and 16 KiB reply batch, its task and socket state, and
allocator slack. The values the getters ask for are stored in the cache and
so are inside -m.

Usage: conn_budget.py --port P --pid PID --memory-mb M --budget-mb B
Prints the figures and a closing "N passed, N failed" line; exits 1 on
failure.
"""

import argparse
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import answers_version, connect, read_until, rss_kib  # noqa: E402

HALF_SENDERS = 500
NON_READERS = 500
VALUES = 8
VALUE_SIZE = 1_000_000
PER_CONN_KIB = 48
BASE_KIB = 16 * 1024


def push(sock, data):
    """Sends as much of `data` as the socket takes without blocking."""
    sent = 0
    while sent < len(data):
        try:
            n = sock.send(data[sent:sent + (1 << 16)])
        except (BlockingIOError, InterruptedError):
            break
        except (BrokenPipeError, ConnectionResetError):
            break
        if n == 0:
            break
        sent += n
    return sent


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--budget-mb", type=int, required=True)
    s = parser.parse_args()

    start_rss = rss_kib(s.pid)
    held = HALF_SENDERS + NON_READERS
    bound = (start_rss + (s.memory_mb + s.budget_mb) * 1024 + BASE_KIB + PER_CONN_KIB * held)
    failures = []

    # The values the non-readers ask for: stored once, inside -m.
    sock = connect(s.port)
    for i in range(VALUES):
        sock.sendall(b"set big%d 0 0 %d\r\n" % (i, VALUE_SIZE) + bytes([65 + i]) * VALUE_SIZE + b"\r\n")
        data, _ = read_until(sock)
        if data != b"STORED\r\n":
            failures.append("set big%d: %r" % (i, data))
    sock.close()

    socks = []
    half = b"set half%d 0 0 %d\r\n" + b"h" * (VALUE_SIZE // 2)
    gets = b"get " + b" ".join(b"big%d" % i for i in range(VALUES)) + b"\r\n"
    peak = start_rss
    try:
        for i in range(HALF_SENDERS):
            sock = connect(s.port)
            sock.setblocking(False)
            push(sock, half % (i, VALUE_SIZE))
            socks.append(sock)
        for _ in range(NON_READERS):
            sock = connect(s.port)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            push(sock, gets * 64)
            socks.append(sock)
        # Let the server work through what it was sent, sampling its RSS.
        # Nothing here waits for a deadline: the samples only find the peak.
        for _ in range(30):
            peak = max(peak, rss_kib(s.pid))
            time.sleep(0.1)
        if not answers_version(s.port):
            failures.append("version is not answered while the budget is spent")
        peak = max(peak, rss_kib(s.pid))
    finally:
        for sock in socks:
            sock.close()
    # What the server does as the connections go (reading their last bytes,
    # dropping their buffers) counts too.
    for _ in range(10):
        peak = max(peak, rss_kib(s.pid))
        time.sleep(0.1)
    if peak > bound:
        failures.append("peak RSS %d kB > bound %d kB" % (peak, bound))
    # Everything is given back: the server still works normally.
    deadline = time.monotonic() + 30
    while not answers_version(s.port):
        if time.monotonic() > deadline:
            failures.append("version is not answered after the connections closed")
            break
        time.sleep(0.2)
    for f in failures:
        print("FAIL", f)
    print("conn-budget: %d half-sent 1 MB sets + %d never-reading getters of %d x 1 MB; "
          "RSS start %d kB, peak %d kB, bound %d kB (-m %d MB + budget %d MB + %d kB baseline)"
          % (HALF_SENDERS, NON_READERS, VALUES, start_rss, peak, bound, s.memory_mb, s.budget_mb,
             BASE_KIB + PER_CONN_KIB * held))
    print("conn-budget: %d passed, %d failed" % (3 - min(3, len(failures)), len(failures)))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
