#!/usr/bin/env python3
"""Size-shift suite for larder-server: when the sizes clients store shift,
the memory the old sizes held goes back to the new ones.

The server keeps items of one size class per 32 KiB page, and a page is
given back when its last item goes. The case (a review's): fill the server
with 100-byte values, delete nine in ten of them at random, then store
300-byte values. Without the page mover each old page keeps its survivors
and the process holds the old pages and the new ones: about 1.8 x -m. The
mover (memcached's slab automove) gathers the survivors into fewer pages
and frees the rest while the new values arrive.

Checks:
- `bytes` <= `limit_maxbytes` throughout;
- once the mover is done (`slabs_moved` stops rising), `arena_bytes` (the
  item pages held) <= `limit_maxbytes`, and `slabs_moved` > 0;
- VmRSS <= 1.1 x limit_maxbytes + BASELINE at every check, where BASELINE
  is the idle server's RSS plus 16 MiB (tables growing, connection buffers,
  allocator slack);
- every survivor still held reads back with its value.

Usage: size_shift.py --port P --pid PID
Prints progress, a closing "N passed, N failed" line; exits 1 on failure.
"""

import argparse
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import connect, read_until, rss_kib, stats  # noqa: E402

SLACK_KIB = 16 * 1024
BATCH = 2000


def value(i, size):
    return bytes([97 + i % 26]) * size


def send_sets(sock, keys, size):
    """Pipelined `set ... noreply`, then a `mn` to wait for them."""
    batch = [b"set %s 0 0 %d noreply\r\n%s\r\n" % (k, size, value(i, size))
             for i, k in keys]
    batch.append(b"mn\r\n")
    sock.sendall(b"".join(batch))
    data, closed = read_until(sock, (b"MN\r\n",))
    assert not closed and data.endswith(b"MN\r\n"), data[-200:]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    s = parser.parse_args()

    first = stats(s.port)
    limit = int(first["limit_maxbytes"])
    start_rss = rss_kib(s.pid)
    rss_bound = int(1.1 * limit / 1024) + start_rss + SLACK_KIB
    failures = []
    checks = 0
    peak_rss = start_rss

    def check(label):
        nonlocal checks, peak_rss
        checks += 1
        st = stats(s.port)
        rss = rss_kib(s.pid)
        peak_rss = max(peak_rss, rss)
        print("%-28s bytes %9s, arena %9s, items %7s, slabs_moved %6s, RSS %6d kB (bound %d)"
              % (label, st["bytes"], st.get("arena_bytes"), st["curr_items"],
                 st.get("slabs_moved"), rss, rss_bound))
        if int(st["bytes"]) > limit:
            failures.append("%s: bytes %s > %d" % (label, st["bytes"], limit))
        if rss > rss_bound:
            failures.append("%s: RSS %d kB > %d kB" % (label, rss, rss_bound))
        return st

    sock = connect(s.port)
    try:
        # 1. 100-byte values until the store evicts.
        n = 0
        while True:
            send_sets(sock, [(i, b"s:%d" % i) for i in range(n, n + BATCH)], 100)
            n += BATCH
            st = stats(s.port)
            if int(st["evictions"]) > 0:
                break
        check("filled with 100 B values")
        # 2. Nine in ten of them deleted at random.
        rng = random.Random(7)
        survivors = []
        doomed = []
        for i in range(n):
            (survivors if rng.random() < 0.1 else doomed).append(i)
        for at in range(0, len(doomed), BATCH):
            batch = [b"delete s:%d noreply\r\n" % i for i in doomed[at:at + BATCH]]
            sock.sendall(b"".join(batch) + b"mn\r\n")
            read_until(sock, (b"MN\r\n",))
        check("90% deleted")
        # 3. 300-byte values: to the limit, then as much again (evicting).
        m = 0
        written = 0
        while written < 2 * limit:
            send_sets(sock, [(i, b"t:%d" % i) for i in range(m, m + BATCH)], 300)
            m += BATCH
            written += BATCH * 300
            if m % (10 * BATCH) == 0:
                check("%d MB of 300 B written" % (written >> 20))
        # 4. The mover settles: slabs_moved stops rising.
        deadline = time.monotonic() + 60
        last = None
        while time.monotonic() < deadline:
            moved = stats(s.port).get("slabs_moved")
            if moved == last:
                break
            last = moved
            time.sleep(0.5)
        st = check("mover settled")
        if int(st.get("slabs_moved", 0)) == 0:
            failures.append("no page was moved")
        if int(st.get("arena_bytes", limit + 1)) > limit:
            failures.append("arena_bytes %s > limit %d" % (st.get("arena_bytes"), limit))
        # 5. The survivors still held read back whole.
        held = 0
        for at in range(0, len(survivors), BATCH):
            part = survivors[at:at + BATCH]
            sock.sendall(b"".join(b"mg s:%d v\r\n" % i for i in part) + b"mn\r\n")
            data, _ = read_until(sock, (b"MN\r\n",))
            lines = data.split(b"\r\n")
            k = 0
            for i in part:
                line = lines[k]
                if line.startswith(b"VA "):
                    held += 1
                    if lines[k + 1] != value(i, 100):
                        failures.append("s:%d read back wrong" % i)
                    k += 2
                else:
                    k += 1
        print("%d of %d survivors still held" % (held, len(survivors)))
    finally:
        sock.close()
    for f in failures:
        print("FAIL", f)
    failed = len(failures)
    print("size-shift: %d 100 B and %d 300 B values; peak RSS %d kB <= %d kB; slabs_moved %s"
          % (n, m, peak_rss, rss_bound, st.get("slabs_moved")))
    print("size-shift: %d passed, %d failed" % (max(checks + 2 - failed, 0), failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
