#!/usr/bin/env python3
"""Large items against memcached: are they kept until -m is reached?

Run by hand (not in CI), from the repository root:

    cargo build --release --features server --bin larder-server
    python3 benches/large_items.py [--memory-mb 128] [--memcached PATH]

Starts memcached (Debian's) and larder-server side by side with the same -m,
and on each writes N values just under -I (1 MiB - 310 bytes, as
async-memcached's own suite does), N chosen to fill about 78% of -m, then as
many again; then values of 10 KB to 85% of -m, then to 2.3x. After each
phase it prints how many of that phase's keys are still held, and the
server's `bytes`, `curr_items` and `evictions`. Each server is killed by its
PID when its run ends.
"""

import argparse
import os
import subprocess
import sys

# The servers' start, connection and reply helpers of the memory benchmark
# (this directory is on sys.path when a script here runs).
from memory_vs_memcached import LARDER, connect, free_port, read_until, stats


def phase(conn, prefix, count, size):
    """Sets `count` values of `size` bytes, then asks for each with `mg`;
    returns how many are held and the server's stats."""
    value = b"a" * size
    for i in range(count):
        conn.sendall(b"set %s%d 0 0 %d\r\n" % (prefix, i, size) + value + b"\r\n")
        reply = read_until(conn, b"\r\n")
        if reply != b"STORED\r\n":
            raise RuntimeError("set %s%d: %r" % (prefix, i, reply))
    held = 0
    for i in range(count):
        conn.sendall(b"mg %s%d\r\n" % (prefix, i))
        held += read_until(conn, b"\r\n").startswith(b"HD")
    return held, stats(conn)


def run(name, argv, memory_mb):
    port = free_port()
    proc = subprocess.Popen(argv + ["-p", str(port), "-m", str(memory_mb)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = connect(port)
        big = (1 << 20) - 310
        n_big = int(memory_mb * (1 << 20) * 0.78 / big)
        n_mid = int(memory_mb * (1 << 20) * 0.85 / 10_000)
        phases = [
            ("%d x 1 MB (78%%)" % n_big, b"big", n_big, big),
            ("%d x 1 MB more" % n_big, b"more", n_big, big),
            ("%d x 10 KB (85%%)" % n_mid, b"mid", n_mid, 10_000),
            ("%d x 10 KB more (2.3x)" % (n_mid * 2), b"over", n_mid * 2, 10_000),
        ]
        for label, prefix, count, size in phases:
            held, s = phase(conn, prefix, count, size)
            print("| %s | %s | %d of %d | %s | %s | %s |" % (
                label, name, held, count, s.get("bytes"), s.get("curr_items"), s.get("evictions")))
    finally:
        proc.kill()
        proc.wait()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--memory-mb", type=int, default=128)
    ap.add_argument("--memcached", default="memcached")
    ap.add_argument("--larder", default=LARDER)
    args = ap.parse_args()
    if not os.path.exists(args.larder):
        sys.exit(f"{args.larder} is missing: cargo build --release --features server --bin larder-server")
    print(f"-m {args.memory_mb}, one client, sets then a meta get of every key of the phase")
    print("| phase | server | keys of the phase held | `bytes` | `curr_items` | `evictions` |")
    print("|---|---|---:|---:|---:|---:|")
    run("memcached", [args.memcached, "-U", "0", "-l", "127.0.0.1", "-t", "1"]
        + (["-u", "root"] if os.geteuid() == 0 else []), args.memory_mb)
    run("larder-server", [args.larder, "-l", "127.0.0.1", "-t", "1"], args.memory_mb)


if __name__ == "__main__":
    main()
