#!/usr/bin/env python3
"""collectd scrapes larder-server and memcached under the same workload.

collectd's memcached plugin reads `stats` from both servers every second and
its write_prometheus plugin publishes what it read. The suite runs one
workload against each server and checks, from collectd's own output (parsed
with prometheus_client's text parser):

  1. the same metric names (and `type` labels) appear for both servers;
  2. every operation counter moved by exactly the same amount on both
     (gets, sets, hits, misses, deletes, incr/decr, touches, flushes,
     evictions), the item count matches, and the traffic and CPU counters
     moved forward on both.

Bounded: collectd is polled until both servers show the workload, for at
most --deadline seconds (running out counts as a failure, not a hang).
collectd is started here and killed by its PID on exit.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import connect, read_until  # noqa: E402

# Families whose every sample is an operation count that the workload moves
# identically on any memcached-compatible server.
EXACT = {
    "collectd_memcached_memcached_command_total",
    "collectd_memcached_memcached_ops_total",
}
# Families that must move forward (their amounts depend on reply sizes and
# CPU, which differ between servers).
FORWARD = {
    "collectd_memcached_memcached_octets_rx_total",
    "collectd_memcached_memcached_octets_tx_total",
}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def collectd_config(workdir, port, servers):
    instances = "".join(
        '  <Instance "%s">\n    Host "127.0.0.1"\n    Port "%d"\n  </Instance>\n' % (name, p)
        for name, p in servers
    )
    return (
        'Hostname "suite"\nFQDNLookup false\nBaseDir "%s"\nPIDFile "%s/collectd.pid"\n'
        'TypesDB "/usr/share/collectd/types.db"\nInterval 1\nAutoLoadPlugin false\n'
        "LoadPlugin memcached\nLoadPlugin write_prometheus\n"
        "<Plugin memcached>\n%s</Plugin>\n"
        '<Plugin write_prometheus>\n  Host "127.0.0.1"\n  Port "%d"\n</Plugin>\n'
    ) % (workdir, workdir, instances, port)


def scrape(port):
    """{server: {(family, sample name, type label): value}} from collectd."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            server = sample.labels.get("memcached")
            if server is None:
                continue
            key = (family.name, sample.name, sample.labels.get("type", ""))
            out.setdefault(server, {})[key] = sample.value
    return out


def send(sock, data, end):
    sock.sendall(data)
    reply, closed = read_until(sock, ends=(end,))
    if closed or not reply.endswith(end):
        raise AssertionError("no %r after %r: %r" % (end, data[:40], reply[-80:]))
    return reply


def workload(port, run):
    """The same commands for every server; returns how many gets it sent.
    Keys carry `run` so that earlier runs against the same server do not
    change what the commands find."""
    sock = connect(port)
    try:
        for i in range(50):
            send(sock, b"set %s:%d 0 0 5\r\nvalue\r\n" % (run, i), b"STORED\r\n")
        for i in range(30):
            send(sock, b"get %s:%d\r\n" % (run, i), b"END\r\n")
        for i in range(20):
            send(sock, b"get %s-none:%d\r\n" % (run, i), b"END\r\n")
        for i in range(10):
            send(sock, b"delete %s:%d\r\n" % (run, i), b"\r\n")
        for i in range(5):
            send(sock, b"delete %s-none:%d\r\n" % (run, i), b"\r\n")
        send(sock, b"set %s-n 0 0 1\r\n5\r\n" % run, b"STORED\r\n")
        for _ in range(5):
            send(sock, b"incr %s-n 2\r\n" % run, b"\r\n")
        for _ in range(2):
            send(sock, b"decr %s-n 1\r\n" % run, b"\r\n")
        for _ in range(3):
            send(sock, b"incr %s-none 1\r\n" % run, b"NOT_FOUND\r\n")
        for i in range(4):
            send(sock, b"touch %s:%d 100\r\n" % (run, 40 + i), b"\r\n")
        send(sock, b"gat 100 %s:45\r\n" % run, b"END\r\n")
    finally:
        sock.close()
    return 30 + 20  # gat counts as a touch, not a get


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--larder-port", type=int, required=True)
    ap.add_argument("--memcached-port", type=int, required=True)
    ap.add_argument("--deadline", type=float, default=60.0)
    args = ap.parse_args()
    servers = [("larder", args.larder_port), ("memcached", args.memcached_port)]

    workdir = tempfile.mkdtemp(prefix="collectd-suite-")
    port = free_port()
    conf = os.path.join(workdir, "collectd.conf")
    with open(conf, "w") as f:
        f.write(collectd_config(workdir, port, servers))
    log = open(os.path.join(workdir, "collectd.log"), "w")
    proc = subprocess.Popen(["collectd", "-f", "-C", conf], stdout=log, stderr=subprocess.STDOUT)
    failures = []
    try:
        deadline = time.monotonic() + args.deadline

        def wait_for(check, what):
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise AssertionError("collectd exited: see %s" % log.name)
                try:
                    values = scrape(port)
                except OSError:
                    values = {}
                if check(values):
                    return values
                time.sleep(0.2)
            raise AssertionError("collectd never showed %s within %.0fs" % (what, args.deadline))

        get_key = ("collectd_memcached_memcached_command", "collectd_memcached_memcached_command_total", "get")
        before = wait_for(lambda v: all(get_key in v.get(s, {}) for s, _ in servers), "both servers")
        run = b"cmp%d" % os.getpid()
        gets = {}
        for name, p in servers:
            gets[name] = workload(p, run)

        def shows_workload(values):
            return all(
                values.get(s, {}).get(get_key, -1) - before[s][get_key] >= gets[s] for s, _ in servers
            )

        wait_for(shows_workload, "the workload")
        # One more interval, so every counter of the same read is in.
        time.sleep(1.5)
        after = scrape(port)

        larder, memcached = after["larder"], after["memcached"]
        only_larder = sorted(set(larder) - set(memcached))
        only_memcached = sorted(set(memcached) - set(larder))
        if only_larder or only_memcached:
            failures.append("metric names differ: only larder %s, only memcached %s" % (only_larder, only_memcached))
        moved = 0
        for key in sorted(set(larder) & set(memcached)):
            family, sample, kind = key
            d_larder = larder[key] - before["larder"].get(key, 0)
            d_memcached = memcached[key] - before["memcached"].get(key, 0)
            if sample in EXACT:
                if d_larder != d_memcached:
                    failures.append("%s{type=%s}: larder moved %g, memcached %g" % (sample, kind, d_larder, d_memcached))
                moved += d_larder != 0
            elif sample in FORWARD:
                if not (d_larder > 0 and d_memcached > 0):
                    failures.append("%s: larder moved %g, memcached %g (both should grow)" % (sample, d_larder, d_memcached))
        if moved == 0:
            failures.append("no operation counter moved: collectd did not see the workload")
        items = ("collectd_memcached_memcached_items", "collectd_memcached_memcached_items", "current")
        grown = {name: after[name].get(items, 0) - before[name].get(items, 0) for name, _ in servers}
        if grown["larder"] != grown["memcached"]:
            failures.append("current items grew by %(larder)s on larder, %(memcached)s on memcached" % grown)
        cpu = [k for k in larder if k[1].startswith("collectd_memcached_ps_cputime")]
        if not cpu:
            failures.append("no CPU time for larder")
        print("collectd: %d metric names for each server, %d operation counters compared, %d moved"
              % (len(larder), sum(1 for k in larder if k[1] in EXACT), moved))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    for f in failures:
        print("FAIL:", f)
    if failures:
        print("collectd-compare: %d failed" % len(failures))
        return 1
    print("collectd-compare: same names and the same counter movements on larder-server and memcached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
