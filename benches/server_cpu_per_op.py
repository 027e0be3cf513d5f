#!/usr/bin/env python3
"""Server CPU time per request under memaslap, larder-server beside memcached.

memaslap's throughput on a 2-CPU machine measures the client as much as the
server (the client runs near 95% of its CPU too) and moves 10-25% between runs
on a shared host. This reads what each server spends per request instead:
the server's user and system CPU time (from /proc/PID/stat) over six seconds
of a memaslap run, divided by the requests it answered in them (cmd_get +
cmd_set from `stats`). Rounds alternate between the servers.

    python3 benches/server_cpu_per_op.py --larder target/release/larder-server [--rounds 4]

Needs memcached and memaslap (`apt-get install memcached libmemcached-tools`).
Run by hand, not in CI. Servers are pinned to CPU 0 and the client to CPU 1.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requests_answered(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"stats\r\n")
        reply = b""
        while not reply.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("stats: connection closed")
            reply += chunk
    stats = dict(
        line.split()[1:3] for line in reply.decode().splitlines() if line.startswith("STAT ")
    )
    return int(stats["cmd_get"]) + int(stats["cmd_set"])


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def one_round(name, command, port, window):
    server = subprocess.Popen(
        ["taskset", "-c", "0"] + command + ["-p", str(port), "-l", "127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                requests_answered(port)
                break
            except OSError:
                time.sleep(0.05)
        client = subprocess.Popen(
            ["taskset", "-c", "1", "memcaslap", "-s", "127.0.0.1:%d" % port,
             "-T", "1", "-c", "50", "-t", "%ds" % (window + 3), "-X", "100"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        time.sleep(2)
        n0, (u0, s0), t0 = requests_answered(port), cpu_seconds(server.pid), time.time()
        time.sleep(window)
        n1, (u1, s1), t1 = requests_answered(port), cpu_seconds(server.pid), time.time()
        client.wait()
    finally:
        server.terminate()
        server.wait()
    n = n1 - n0
    return {
        "name": name,
        "ops": n / (t1 - t0),
        "user": 1e6 * (u1 - u0) / n,
        "sys": 1e6 * (s1 - s0) / n,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--larder", required=True, help="larder-server binary")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--window", type=int, default=6, help="seconds measured per round")
    args = parser.parse_args()
    servers = [
        ("larder", [args.larder, "-t", "1", "-m", "64", "-c", "1024", "-U", "0"]),
        ("memcached", ["memcached", "-u", os.environ.get("USER", "root"), "-t", "1",
                       "-m", "64", "-c", "1024", "-U", "0"]),
    ]
    results = {name: [] for name, _ in servers}
    for _ in range(args.rounds):
        for name, command in servers:
            r = one_round(name, command, free_port(), args.window)
            results[name].append(r)
            print("%-9s %8.0f ops/s  user %.3f us/op  sys %.3f us/op  total %.3f us/op"
                  % (name, r["ops"], r["user"], r["sys"], r["user"] + r["sys"]), flush=True)
    print("medians:")
    for name, rs in results.items():
        med = lambda key: statistics.median(r[key] for r in rs)  # noqa: E731
        print("%-9s %8.0f ops/s  user %.3f us/op  sys %.3f us/op  total %.3f us/op"
              % (name, med("ops"), med("user"), med("sys"),
                 statistics.median(r["user"] + r["sys"] for r in rs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
