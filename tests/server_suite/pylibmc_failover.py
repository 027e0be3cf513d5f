"""A real client over a larder primary+replica pair, through a primary's
death: pylibmc (libmemcached) with binary=True and behaviors num_replicas=1,
over the pair [primary, replica].

Starts a primary and a replica of it (--replica-of, --promote-after 2) from
--server-cmd (`{port}` and `{args}` are replaced), then:
  1. writes KEYS keys through a client of the primary alone, and waits until
     the replica's repl_offset equals the primary's;
  2. the pair client reads every key (the replica answers the keys libmemcached
     hashes to it: they arrived by replication, not by libmemcached's copy);
  3. kill -9 of the primary: a pair client that connects afterwards reads
     every key with 0 errors; the pair client that was already connected
     reads every key again and again for 3 s (through the replica's
     promotion): its first request on the connection to the dead primary
     fails (libmemcached cannot route a request already sent to a socket the
     kernel has closed), and is retried once, as applications retry a
     dropped connection; every read must return the written value, and at
     most that one request may fail;
  4. once promoted, the replica takes writes (set, incr, cas) from a client
     of it alone, and the pair client reads them.

Prints `pylibmc-failover: ...` and exits non-zero on a failure. Kills the
servers it started, by PID, on exit.
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
from common import free_port, stats  # noqa: E402

KEYS = 2000


def wait(what, ok, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if ok():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("pylibmc-failover: FAIL timed out waiting until %s" % what)


def client(ports, **behaviors):
    servers = ["127.0.0.1:%d" % p for p in ports]
    b = {"connect_timeout": 500, "receive_timeout": 2000000, "send_timeout": 2000000}
    b.update(behaviors)
    return pylibmc.Client(servers, binary=True, behaviors=b)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--server-cmd", required=True, help="larder-server command with {port} and {args}"
    )
    args = parser.parse_args()
    p_port, r_port = free_port(), free_port()
    procs = []

    def launch(port, extra):
        cmd = args.server_cmd.replace("{port}", str(port)).replace("{args}", extra)
        proc = subprocess.Popen(shlex.split(cmd), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    try:
        primary = launch(p_port, "")
        wait("the primary listens", lambda: stats(p_port))
        launch(r_port, "--replica-of 127.0.0.1:%d --promote-after 2" % p_port)
        wait("the replica links up", lambda: stats(r_port).get("repl_link_up") == "1")

        # 1. Data through the primary alone.
        writer = client([p_port])
        values = {"fo%d" % i: ("value-%d-" % i) * (1 + i % 7) for i in range(KEYS)}
        for key, value in values.items():
            writer.set(key, value)
        writer.set("counter", 41)
        end = stats(p_port)["repl_offset"]
        wait("the replica catches up", lambda: stats(r_port)["repl_offset"] == end)

        def pair_client():
            return client([p_port, r_port], num_replicas=1, remove_failed=1, retry_timeout=1)

        counts = {"errors": 0, "failed": 0, "wrong": 0}

        def read_all(pair, retry):
            for key, value in values.items():
                for attempt in range(2 if retry else 1):
                    try:
                        got = pair.get(key)
                    except pylibmc.Error as e:
                        counts["errors"] += 1
                        if counts["errors"] <= 3:
                            print("error reading %s: %s" % (key, e))
                        continue
                    if got != value:
                        counts["wrong"] += 1
                        if counts["wrong"] <= 3:
                            print("wrong value for %s: %r" % (key, got))
                    break
                else:
                    counts["failed"] += 1

        # 2. Both alive.
        long_lived = pair_client()
        read_all(long_lived, False)
        before = dict(counts)

        # 3. kill -9 the primary. A client that connects afterwards reads
        # every key from the replica with no error at all.
        primary.send_signal(signal.SIGKILL)
        primary.wait()
        killed = time.monotonic()
        fresh = pair_client()
        read_all(fresh, False)
        fresh_counts = dict(counts)
        # The long-lived client had a connection open to the primary: its
        # first request there finds it closed (one error, retried once, as
        # an application retries a dropped connection); every other read is
        # served by the replica. It reads every key again and again for 3 s,
        # through the replica's promotion.
        rounds = 0
        took_over = None
        while rounds == 0 or time.monotonic() - killed < 3.0:
            read_all(long_lived, True)
            rounds += 1
            if took_over is None and stats(r_port).get("role") == "primary":
                took_over = time.monotonic() - killed

        # 4. The promoted replica takes writes.
        wait("the replica promotes itself", lambda: stats(r_port).get("role") == "primary", 10)
        if took_over is None:
            took_over = time.monotonic() - killed
        survivor = client([r_port], cas=True)
        survivor.set("after", "failover")
        survivor.incr("counter")
        value, cas = survivor.gets("after")
        ok_cas = survivor.cas("after", "swapped", cas)
        reads_after = (long_lived.get("after"), long_lived.get("counter"))

        failures = []
        if before != {"errors": 0, "failed": 0, "wrong": 0}:
            failures.append("before the kill: %r" % before)
        if fresh_counts != before:
            failures.append("a client connecting after the kill: %r" % fresh_counts)
        errors = counts["errors"] - fresh_counts["errors"]
        if counts["failed"] or counts["wrong"] or errors > 1:
            failures.append("after the kill: %r" % counts)
        if not ok_cas or reads_after != ("swapped", 42):
            failures.append("writes after promotion: cas %r, reads %r" % (ok_cas, reads_after))
        print(
            "pylibmc-failover: after kill -9 of the primary, a new client read all %d keys with "
            "0 errors; the open client read them %d times: %d failed reads, %d wrong values, "
            "%d connection error(s) retried; writable after %.1f s (--promote-after 2); "
            "writes after promotion %s"
            % (KEYS, rounds, counts["failed"], counts["wrong"], errors, took_over,
               "ok" if not failures else "FAILED")
        )
        for f in failures:
            print("FAIL " + f)
        return 1 if failures else 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
