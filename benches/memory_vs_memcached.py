#!/usr/bin/env python3
"""Items per megabyte of -m: memcached and larder-server side by side.

Run by hand (not in CI), from the repository root:

    cargo build --release --features server --bin larder-server
    python3 benches/memory_vs_memcached.py [--memory-mb 64] [--memcached PATH]
        [--only 10 100 1000 10000 mixed] [--cas-warm-up SETS] [--settle SECS]

For each value size (10, 100, 1,000 and 10,000 bytes, and a mixed run of sizes
drawn from 10 to 10,000 bytes) it starts both servers with the same -m on free
loopback ports, fills each with the same items (14-byte keys, pipelined
`set ... noreply`) until the item count stops growing, and prints items held,
`bytes`, RSS, items per MB of -m, and the value bytes still held per byte of
-m (asked key by key with `mg <key> s`: with mixed sizes the two servers keep
different mixes, so item counts alone compare eviction as much as density).
memcached gives every slab class in use at least one 1 MiB page, so at a
small -m its small classes hold more than their share of the mixed run's
items; compare the mixed run at a larger -m too (`--memory-mb 512 --only
mixed`; the small sizes write millions of items per 100 MB of -m, which
takes the script minutes). larder's item header holds the CAS unique as a varint: a
fresh server's first 2^21 sets get 3-byte values, a server that has run a
while 4 or 5 bytes, which can move an item to the next malloc size class
(`--cas-warm-up 2100000` measures that case). Each server is killed by its PID when its run
ends. Items are written until the server has evicted for a while: the
number of items written is 4 x (-m / item size), enough to reach a steady
state with either server. RSS is read twice: as the last write is answered
("RSS at once") and `--settle` seconds later (default 2), once larder-server's
trimmer (which looks ten times a second) has handed back what the writes freed.
"""

import argparse
import os
import random
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LARDER = os.path.join(ROOT, "target", "release", "larder-server")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def connect(port):
    deadline = time.monotonic() + 20
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=60)
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def read_until(conn, end):
    data = b""
    while not data.endswith(end):
        chunk = conn.recv(1 << 16)
        if not chunk:
            raise RuntimeError("server closed the connection")
        data += chunk
    return data


def stats(conn):
    conn.sendall(b"stats\r\n")
    out = {}
    for line in read_until(conn, b"END\r\n").decode().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2]
    return out


def fill(conn, sizes, count, seed):
    rng = random.Random(seed)
    batch = []
    pending = 0
    for i in range(count):
        size = sizes[rng.randrange(len(sizes))] if len(sizes) > 1 else sizes[0]
        key = b"key:%010d" % i  # 14 bytes
        batch.append(b"set %s 0 0 %d noreply\r\n%s\r\n" % (key, size, b"v" * size))
        pending += size + 40
        if pending > 1 << 20:
            conn.sendall(b"".join(batch))
            batch, pending = [], 0
    batch.append(b"mn\r\n")
    conn.sendall(b"".join(batch))
    read_until(conn, b"MN\r\n")


def value_bytes_held(conn, count):
    """Sum of the value sizes still held, asked key by key with `mg <key> s`."""
    total = 0
    for start in range(0, count, 2000):
        keys = range(start, min(start + 2000, count))
        conn.sendall(b"".join(b"mg key:%010d s\r\n" % i for i in keys) + b"mn\r\n")
        for line in read_until(conn, b"MN\r\n").split(b"\r\n"):
            if line.startswith(b"HD "):
                total += int(line.split()[1][1:])
    return total


def warm_cas(conn, sets):
    """Overwrites one key `sets` times, so the items that follow get CAS
    values as large as a server that has run for a while gives them."""
    one = b"set cas-warm-up 0 0 1 noreply\r\nx\r\n"
    while sets > 0:
        n = min(sets, 100_000)
        conn.sendall(one * n)
        sets -= n
    conn.sendall(b"delete cas-warm-up noreply\r\nmn\r\n")
    read_until(conn, b"MN\r\n")


def run(name, argv, sizes, memory_mb, seed, cas_warm_up, settle):
    port = free_port()
    proc = subprocess.Popen(
        argv + ["-p", str(port), "-m", str(memory_mb)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        if proc.poll() is not None:
            sys.exit(f"{name} exited: {proc.stderr.read().decode()}")
        conn = connect(port)
        # memcached's CAS is a fixed 8 bytes, so it needs no warm-up, and the
        # warm-up key would take a slab page from the run's own class.
        if name != "memcached":
            warm_cas(conn, cas_warm_up)
        mean = sum(sizes) / len(sizes)
        count = int(4 * memory_mb * (1 << 20) / (mean + 14))
        fill(conn, sizes, count, seed)
        rss_at_once = rss_kb(proc.pid)
        time.sleep(settle)
        rss_settled = rss_kb(proc.pid)
        s = stats(conn)
        items = int(s.get("curr_items", 0))
        held = value_bytes_held(conn, count)
        return {
            "values_mb": held / memory_mb / (1 << 20),
            "server": name,
            "items": items,
            "bytes": int(s.get("bytes", 0)),
            "rss_at_once_kb": rss_at_once,
            "rss_kb": rss_settled,
            "per_mb": items / memory_mb,
        }
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory-mb", type=int, default=64)
    ap.add_argument("--memcached", default="memcached")
    ap.add_argument("--larder", default=LARDER)
    ap.add_argument("--cas-warm-up", type=int, default=0, metavar="SETS",
                    help="overwrite one key this many times first (2,100,000 passes "
                         "2^21, where larder's CAS takes a fourth header byte)")
    ap.add_argument("--settle", type=float, default=2.0, metavar="SECS",
                    help="seconds between the last write and the second RSS reading")
    ap.add_argument("--only", nargs="+", metavar="RUN",
                    help="run only these: 10, 100, 1000, 10000, mixed")
    args = ap.parse_args()
    if args.settle < 0:
        sys.exit("--settle needs a number of seconds, 0 or more")
    if not os.path.exists(args.larder):
        sys.exit(f"{args.larder} is missing: cargo build --release --features server --bin larder-server")
    servers = [
        # memcached refuses to run as root without -u.
        ("memcached", [args.memcached, "-U", "0", "-l", "127.0.0.1", "-t", "2"]
         + (["-u", "root"] if os.geteuid() == 0 else [])),
        ("larder-server", [args.larder, "-l", "127.0.0.1", "-t", "2"]),
    ]
    runs = [
        ("10", "10 B", [10]),
        ("100", "100 B", [100]),
        ("1000", "1,000 B", [1000]),
        ("10000", "10,000 B", [10000]),
        ("mixed", "mixed 10 B-10 KB", [10, 30, 100, 300, 1000, 3000, 10000]),
    ]
    if args.only:
        unknown = set(args.only) - {name for name, _, _ in runs}
        if unknown:
            sys.exit(f"unknown runs: {', '.join(sorted(unknown))}")
        runs = [r for r in runs if r[0] in args.only]
    print(f"-m {args.memory_mb}: 14-byte keys, pipelined sets; RSS in MiB")
    print("| values | server | items held | `bytes` | RSS at once | RSS | items per MB of -m "
          "| vs memcached | value bytes held per byte of -m |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for _, label, sizes in runs:
        results = [run(name, argv, sizes, args.memory_mb, 1, args.cas_warm_up, args.settle)
                   for name, argv in servers]
        base = results[0]["per_mb"] or 1
        for r in results:
            print(
                f"| {label} | {r['server']} | {r['items']:,} | {r['bytes'] / 1e6:.1f} MB "
                f"| {r['rss_at_once_kb'] / 1024:.1f} | {r['rss_kb'] / 1024:.1f} | {r['per_mb']:,.0f} | {r['per_mb'] / base:.2f}x "
                f"| {r['values_mb']:.2f} |"
            )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
