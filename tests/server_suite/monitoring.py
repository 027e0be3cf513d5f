#!/usr/bin/env python3
"""Monitoring suite for larder-server.

  (a) exporter rules: on one connection, `stats`, `stats slabs`, `stats
      items` and `stats settings` each end with END; `stats` has cmd_set,
      cas_hits, cas_misses, cas_badval; rusage_* are seconds.microseconds;
      unknown groups get CLIENT_ERROR, never ERROR.
  (b) a scrape of --metrics-listen parsed by prometheus_client's text parser
      and its OpenMetrics parser, with every expected metric present.
  (c) --scrapes scrapes (default 1,000) while load clients set and get:
      each scrape is the exporter's four stats commands on a new connection
      plus one HTTP scrape of /metrics. A scrape that errors, or takes more
      than --scrape-timeout seconds, counts as failed; the suite needs none.

Bounded: the load clients stop when the scrapes end, and everything stops
at --deadline seconds (remaining scrapes count as failed).
"""

import argparse
import os
import re
import socket
import sys
import threading
import time
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import connect, read_until  # noqa: E402

EXPORTER_COMMANDS = [b"stats", b"stats slabs", b"stats items", b"stats settings"]
NEEDED = ["cmd_set", "cas_hits", "cas_misses", "cas_badval", "rusage_user", "rusage_system",
          "bytes_read", "bytes_written", "accepting_conns", "listen_disabled_num", "conn_yields"]
TIMEVAL = re.compile(r"^\d+\.\d{6}$")
# Family names as the parsers report them (counters without `_total`).
EXPECTED = [
    "memcached_up", "memcached_version", "memcached_uptime_seconds", "memcached_time_seconds",
    "memcached_process_user_cpu_seconds", "memcached_process_system_cpu_seconds",
    "memcached_read_bytes", "memcached_written_bytes", "memcached_current_connections",
    "memcached_max_connections", "memcached_connections", "memcached_connections_rejected",
    "memcached_connections_yielded", "memcached_connections_listener_disabled",
    "memcached_accepting_connections", "memcached_current_bytes", "memcached_limit_bytes",
    "memcached_current_items", "memcached_items", "memcached_items_evicted",
    "memcached_items_reclaimed", "memcached_item_too_large", "memcached_item_no_memory",
    "memcached_commands", "memcached_malloced_bytes", "memcached_slab_current_items",
    "memcached_slab_mem_requested_bytes", "memcached_slab_items_evicted",
    "memcached_slab_items_age_seconds", "memcached_slab_items_evicted_time_seconds",
    "memcached_slab_chunk_size_bytes", "memcached_slab_commands",
]


def exporter_round(port, timeout):
    """The exporter's four commands on one new connection; returns the
    general stats as a dict."""
    sock = connect(port, timeout)
    try:
        general = None
        for command in EXPORTER_COMMANDS:
            sock.sendall(command + b"\r\n")
            reply, closed = read_until(sock, ends=(b"END\r\n", b"ERROR\r\n"))
            if closed or not reply.endswith(b"END\r\n") or reply.endswith(b"\r\nERROR\r\n") or reply == b"ERROR\r\n":
                raise AssertionError("%s: %r" % (command.decode(), reply[-100:]))
            if general is None:
                general = dict(
                    line.split(" ", 2)[1:3]
                    for line in reply.decode().split("\r\n")
                    if line.startswith("STAT ")
                )
        return general
    finally:
        sock.close()


def scrape(metrics_port, timeout):
    url = "http://127.0.0.1:%d/metrics" % metrics_port
    with urllib.request.urlopen(url, timeout=timeout) as reply:
        if reply.status != 200:
            raise AssertionError("status %d" % reply.status)
        return reply.read().decode()


def check_exporter_rules(port):
    general = exporter_round(port, 10)
    missing = [n for n in NEEDED if n not in general]
    if missing:
        raise AssertionError("stats lacks %s" % missing)
    for name in ("rusage_user", "rusage_system"):
        if not TIMEVAL.match(general[name]):
            raise AssertionError("%s is %r, not seconds.microseconds" % (name, general[name]))
    sock = connect(port)
    try:
        for bad in (b"stats nonsense", b"stats a b c", b"stats 1"):
            sock.sendall(bad + b"\r\n")
            reply, _ = read_until(sock)
            if not reply.startswith(b"CLIENT_ERROR "):
                raise AssertionError("%s: %r" % (bad.decode(), reply))
    finally:
        sock.close()


def check_scrape(port, metrics_port):
    # Per-class (slab) metrics exist once the store holds an item.
    sock = connect(port)
    try:
        sock.sendall(b"set monitoring:seed 0 0 1\r\nx\r\n")
        read_until(sock)
    finally:
        sock.close()
    text = scrape(metrics_port, 10)
    names = {family.name for family in parse_text(text)}
    missing = [n for n in EXPECTED if n not in names]
    if missing:
        raise AssertionError("scrape lacks %s" % missing)
    # The same text is valid OpenMetrics (the parser is strict: it needs
    # the # EOF line, one TYPE per family, _total on counters).
    om = {family.name for family in parse_openmetrics(text)}
    if set(EXPECTED) - om:
        raise AssertionError("OpenMetrics parse lacks %s" % sorted(set(EXPECTED) - om))
    return len(names)


def load(port, stop, counts, index):
    sock = connect(port)
    n = 0
    try:
        while not stop.is_set():
            key = b"load:%d:%d" % (index, n % 1000)
            sock.sendall(b"set %s 0 0 10\r\n0123456789\r\nget %s\r\n" % (key, key))
            reply, closed = read_until(sock, ends=(b"END\r\n",))
            if closed:
                raise AssertionError("load connection closed")
            n += 2
    finally:
        counts[index] = n
        sock.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--metrics-port", type=int, required=True)
    ap.add_argument("--scrapes", type=int, default=1000)
    ap.add_argument("--load-clients", type=int, default=4)
    ap.add_argument("--scrape-timeout", type=float, default=5.0)
    ap.add_argument("--deadline", type=float, default=600.0)
    args = ap.parse_args()
    passed = failed = 0

    for name, case in [
        ("exporter rules: four stats commands on one connection end with END",
         lambda: check_exporter_rules(args.port)),
        ("metrics scrape parses (text and OpenMetrics) with every expected metric",
         lambda: check_scrape(args.port, args.metrics_port)),
    ]:
        try:
            case()
            passed += 1
            print("PASS", name)
        except Exception as e:  # noqa: BLE001 - report every failure
            failed += 1
            print("FAIL", name, "--", e)

    stop = threading.Event()
    counts = [0] * args.load_clients
    threads = [threading.Thread(target=load, args=(args.port, stop, counts, i), daemon=True)
               for i in range(args.load_clients)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + args.deadline
    bad, slowest, started = [], 0.0, time.monotonic()
    for i in range(args.scrapes):
        if time.monotonic() > deadline:
            bad.append("deadline reached after %d scrapes" % i)
            bad.extend(["not run"] * (args.scrapes - i - 1))
            break
        t0 = time.monotonic()
        try:
            exporter_round(args.port, args.scrape_timeout)
            text = scrape(args.metrics_port, args.scrape_timeout)
            if "memcached_up 1" not in text:
                raise AssertionError("no memcached_up 1")
            took = time.monotonic() - t0
            if took > args.scrape_timeout:
                raise AssertionError("took %.1fs" % took)
            slowest = max(slowest, took)
        except (AssertionError, OSError, socket.timeout) as e:
            bad.append("scrape %d: %s" % (i, e))
    elapsed = time.monotonic() - started
    stop.set()
    for t in threads:
        t.join(timeout=30)
    ops = sum(counts)
    for line in bad[:10]:
        print("  ", line)
    name = "%d scrapes under load: %d failed or hung" % (args.scrapes, len(bad))
    if bad:
        failed += 1
        print("FAIL", name)
    else:
        passed += 1
        print("PASS", name)
    print("monitoring: %d scrapes in %.1fs (slowest %.0f ms) with %d load ops (%.0f ops/s); %d failed"
          % (args.scrapes, elapsed, slowest * 1000, ops, ops / max(elapsed, 1e-9), len(bad)))
    print("monitoring: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
