"""libmemcached's client-side replication against three servers, over the
binary protocol (the only one libmemcached replicates over): pylibmc with
binary=True, behaviors num_replicas=1, remove_failed=1, ketama=True.

Starts three servers from --server-cmd (its `{port}` is replaced by one of
three free ports), then checks:
  1. every set lands on exactly two servers (the primary and the next one
     in the server list) once the client's buffered replica writes are
     flushed;
  2. after the primary of some keys is killed with SIGKILL, reads of those
     keys through the client are served by the replica (libmemcached serves
     only some of them, those whose re-hashed candidates are alive);
  3. writes with that node down raise no errors and read back.
With --memcached-cmd, the same scenario runs first against three memcached
processes on the same ports (so ketama places every key the same way), and
larder-server must place, serve and refuse exactly the same keys.
Prints `replicas: ...` lines; exits non-zero on a failure. Kills the servers
it started, by PID, on exit.
"""

import argparse
import os
import shlex
import signal
import socket
import subprocess
import sys
import time

import pylibmc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import free_port  # noqa: E402

KEYS = 300


def wait_listening(port, deadline):
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server-cmd", required=True, help="larder-server command with {port}")
    parser.add_argument("--memcached-cmd", help="memcached command with {port}, to compare")
    args = parser.parse_args()
    ports = [free_port() for _ in range(3)]
    results = {}
    runs = [("memcached", args.memcached_cmd)] if args.memcached_cmd else []
    runs.append(("larder-server", args.server_cmd))
    for label, cmd in runs:
        result = scenario(label, cmd, ports)
        if result is None:
            return 1
        results[label] = result
    failures = check_absolute(results["larder-server"])
    if "memcached" in results:
        same = results["memcached"] == results["larder-server"]
        print("replicas: same keys placed, served and refused as memcached: %s" % same)
        if not same:
            failures += 1
    return 1 if failures else 0


def scenario(label, command, ports):
    """Starts three servers on `ports`, runs the checks, stops them."""
    procs = []
    try:
        for port in ports:
            cmd = shlex.split(command.format(port=port))
            procs.append(
                subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            )
        for port in ports:
            if not wait_listening(port, time.monotonic() + 20):
                print("replicas: %s on port %d did not start" % (label, port))
                return None
        return run(label, procs, ports)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()


def direct(port):
    return pylibmc.Client(["127.0.0.1:%d" % port], binary=True)


def run(label, procs, ports):
    servers = ["127.0.0.1:%d" % p for p in ports]
    behaviors = {"num_replicas": 1, "remove_failed": 1, "ketama": True}
    mc = pylibmc.Client(servers, binary=True, behaviors=behaviors)
    singles = [direct(p) for p in ports]
    for single in singles:
        single.flush_all()

    # 1. where each set lands
    keys = ["key:%d" % i for i in range(KEYS)]
    for key in keys:
        mc.set(key, "value of " + key)
    # The replica writes are quiet and buffered; any request to every
    # server (a STAT) sends them.
    mc.get_stats()
    holders = {}
    for key in keys:
        holders[key] = tuple(i for i, s in enumerate(singles) if s.get(key) == "value of " + key)
    on_two = sum(len(h) == 2 for h in holders.values())
    print("replicas: %s: %d/%d keys on exactly two servers" % (label, on_two, KEYS))

    # 2. reads of keys whose primary is dead. The primary of a pair is the
    # server before the other in list order; libmemcached reads a replica
    # only where its (re-hashed) candidates are alive, so some keys miss,
    # with memcached as with larder.
    primary_victim = [k for k, h in holders.items() if h == (0, 1)]
    os.kill(procs[0].pid, signal.SIGKILL)
    procs[0].wait()
    served, read_errors = [], 0
    for key in primary_victim:
        try:
            if mc.get(key) == "value of " + key:
                served.append(key)
        except pylibmc.Error:
            read_errors += 1
    print(
        "replicas: %s: %d/%d keys whose primary was killed served by the replica (%d errors)"
        % (label, len(served), len(primary_victim), read_errors)
    )

    # 3. writes with the node down
    write_errors = 0
    for i in range(KEYS):
        try:
            mc.set("after:%d" % i, "v%d" % i)
        except pylibmc.Error:
            write_errors += 1
    readable = sum(mc.get("after:%d" % i) == "v%d" % i for i in range(KEYS))
    print(
        "replicas: %s: %d errors on %d writes with a node down; %d read back"
        % (label, write_errors, KEYS, readable)
    )
    return {
        "holders": holders,
        "served": served,
        "read_errors": read_errors,
        "write_errors": write_errors,
        "readable": readable,
    }


def check_absolute(result):
    failures = 0
    if any(len(h) != 2 for h in result["holders"].values()):
        print("FAIL: a key is not on exactly two servers")
        failures += 1
    if not result["served"]:
        print("FAIL: no key whose primary was killed was served by its replica")
        failures += 1
    if result["write_errors"] or result["readable"] != KEYS:
        print("FAIL: writes with a node down failed or did not read back")
        failures += 1
    return failures


if __name__ == "__main__":
    sys.exit(main())
