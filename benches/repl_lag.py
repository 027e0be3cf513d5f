"""Replication lag at a fixed write rate, on loopback.

Starts a larder-server primary and a replica of it (--bin, default
target/release/larder-server), writes --rate sets per second of 100-byte
values over 10,000 keys to the primary for --seconds (batches of 10 `noreply`
sets, paced every millisecond), and reports:
  - the replica's own per-change lag (the time a change was applied on the
    replica minus the primary's time on it, 1 ms buckets): `repl_lag_p99_ms`;
  - a client's view: every 10 ms a marker key is set on the primary and read
    back from the replica until it shows the new value; p50/p99/max of that
    delay (it includes one replica round trip per poll).
Kills the servers it started on exit.

    python3 benches/repl_lag.py --rate 10000 --seconds 10
"""

import argparse
import socket
import subprocess
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "server_suite"))
from common import free_port  # noqa: E402


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), 5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def ask(sock, req, end):
    sock.sendall(req)
    data = b""
    while not data.endswith(end):
        chunk = sock.recv(65536)
        if not chunk:
            raise OSError("closed")
        data += chunk
    return data


def stats(port):
    s = connect(port)
    out = {}
    for line in ask(s, b"stats\r\n", b"END\r\n").decode().splitlines():
        parts = line.split(" ")
        if len(parts) == 3:
            out[parts[1]] = parts[2]
    s.close()
    return out


def wait(ok, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ok():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("timed out")


def read_marker(r, v):
    got = ask(r, b"mg marker v\r\n", b"\r\n")
    if got.startswith(b"VA"):
        while got.count(b"\r\n") < 2:
            got += r.recv(65536)
    return v in got


def markers(pp, rp, stop, queue):
    """Every 10 ms: set a marker on the primary, read the replica until it
    shows it; sends the delays (seconds) back when stopped."""
    p, r = connect(pp), connect(rp)
    delays = []
    n = 0
    while not stop.is_set():
        n += 1
        v = b"%08d" % n
        t0 = time.perf_counter()
        ask(p, b"set marker 0 0 8\r\n" + v + b"\r\n", b"\r\n")
        while not read_marker(r, v):
            pass
        delays.append(time.perf_counter() - t0)
        time.sleep(0.01)
    queue.put(delays)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/larder-server")
    ap.add_argument("--rate", type=int, default=10000)
    ap.add_argument("--seconds", type=float, default=10)
    args = ap.parse_args()
    pp, rp = free_port(), free_port()
    procs = [subprocess.Popen([args.bin, "-p", str(pp), "-t", "1"], stderr=subprocess.DEVNULL)]
    try:
        wait(lambda: stats(pp))
        procs.append(
            subprocess.Popen(
                [args.bin, "-p", str(rp), "-t", "1", "--replica-of", "127.0.0.1:%d" % pp],
                stderr=subprocess.DEVNULL,
            )
        )
        wait(lambda: stats(rp).get("repl_link_up") == "1")
        stop = multiprocessing.Event()
        queue = multiprocessing.Queue()

        # The markers run in a process of their own: in a thread they would
        # wait for the writer's share of the interpreter lock.
        marker_proc = multiprocessing.Process(target=markers, args=(pp, rp, stop, queue))
        marker_proc.start()
        w = connect(pp)
        value = b"v" * 100
        batch = 10
        interval = batch / args.rate
        start = time.perf_counter()
        sent = 0
        key = 0
        while time.perf_counter() - start < args.seconds:
            req = bytearray()
            for _ in range(batch):
                key = (key + 7919) % 10000
                req += b"set k%d 0 0 100 noreply\r\n" % key + value + b"\r\n"
            w.sendall(req)
            sent += batch
            target = start + sent / args.rate
            while time.perf_counter() < target:
                pass
        elapsed = time.perf_counter() - start
        ask(w, b"mn\r\n", b"MN\r\n")
        stop.set()
        delays = queue.get()
        marker_proc.join()
        end = stats(pp)["repl_offset"]
        wait(lambda: stats(rp)["repl_offset"] == end)
        rs = stats(rp)
        ms = [d * 1000 for d in delays]
        print(
            "rate %.0f sets/s for %.1f s: replica repl_lag_p99_ms %s (1 ms buckets); "
            "client write-then-read-from-replica delay over %d markers: p50 %.2f ms, p99 %.2f ms, max %.2f ms"
            % (sent / elapsed, elapsed, rs["repl_lag_p99_ms"], len(ms), pct(ms, 0.5), pct(ms, 0.99), max(ms))
        )
    finally:
        for p in procs:
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
