#!/usr/bin/env python3
"""Memory-bound suite for larder-server: writes 4 x -m worth of mixed-size
values and checks that the store and the process stay within their bounds.

Bounds (documented):
- `stats` `bytes` <= `limit_maxbytes` after every batch (the store counts
  key + value + a fixed per-item overhead against -m).
- VmRSS <= 1.2 x limit_maxbytes + BASELINE, where BASELINE is the RSS of the
  idle server measured before the first write plus 24 MiB for connection
  buffers, the runtime, and allocator slack (freed values are not always
  returned to the OS at once).

Usage: memory_bound.py --port P --pid PID
Prints progress, a closing "N passed, N failed" line; exits 1 on failure.
"""

import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import connect, read_until, rss_kib, stats  # noqa: E402

SLACK_KIB = 24 * 1024
PIPELINE = 32


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--factor", type=float, default=4.0)
    s = parser.parse_args()

    first = stats(s.port)
    limit = int(first["limit_maxbytes"])
    start_rss = rss_kib(s.pid)
    rss_bound = int(1.2 * limit / 1024) + start_rss + SLACK_KIB
    rng = random.Random(42)
    sock = connect(s.port)
    written = 0
    target = int(s.factor * limit)
    n = 0
    checks = passed = failed = 0
    peak_rss = start_rss
    max_bytes = 0
    next_check = limit // 4
    failures = []
    try:
        while written < target:
            batch = []
            for _ in range(PIPELINE):
                # Log-uniform sizes from 10 B to 256 kB: many small items,
                # some large ones, like a real cache.
                size = int(10 ** rng.uniform(1, 5.4))
                key = b"mem:%d" % n
                n += 1
                batch.append(b"set %s %d 0 %d\r\n" % (key, n & 0xFFFF, size))
                batch.append(bytes([97 + n % 26]) * size + b"\r\n")
                written += size
            sock.sendall(b"".join(batch))
            replies = b""
            while replies.count(b"\r\n") < PIPELINE:
                data, closed = read_until(sock)
                assert not closed, "server closed the connection"
                replies += data
            bad = [r for r in replies.split(b"\r\n")[:-1] if r != b"STORED"]
            if bad:
                failures.append("unexpected replies %r" % bad[:3])
                break
            if written >= next_check or written >= target:
                next_check += limit // 4
                checks += 1
                st = stats(s.port)
                used = int(st["bytes"])
                rss = rss_kib(s.pid)
                max_bytes = max(max_bytes, used)
                peak_rss = max(peak_rss, rss)
                print("written %4d MB: bytes %9d / %d, items %7s, evictions %7s, RSS %6d kB (bound %d kB)"
                      % (written >> 20, used, limit, st["curr_items"], st["evictions"], rss, rss_bound))
                if used > limit:
                    failures.append("bytes %d > limit_maxbytes %d" % (used, limit))
                if rss > rss_bound:
                    failures.append("RSS %d kB > bound %d kB" % (rss, rss_bound))
    finally:
        sock.close()
    # Everything recent is still served.
    sock = connect(s.port)
    try:
        key = b"mem:%d" % (n - 1)
        sock.sendall(b"get %s\r\n" % key)
        data, _ = read_until(sock, (b"END\r\n",))
        if not data.startswith(b"VALUE " + key):
            failures.append("the newest item is missing")
    finally:
        sock.close()
    final = stats(s.port)
    if int(final["evictions"]) == 0:
        failures.append("no evictions after writing %.1fx the limit" % s.factor)
    for f in failures:
        print("FAIL", f)
    failed = len(failures)
    passed = checks + 2 - min(failed, checks + 2)
    print("memory-bound: wrote %d MB in %d items; max bytes %d <= %d; peak RSS %d kB <= %d kB"
          % (written >> 20, n, max_bytes, limit, peak_rss, rss_bound))
    print("memory-bound: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
