#!/usr/bin/env python3
"""Client libraries over larder-server's Unix domain socket (-s FILE).

Usage: unix_clients.py --socket FILE [--pylibmc]

pymemcache (always) and pylibmc (libmemcached, with --pylibmc) connect to the
socket path as they connect to memcached's, and run one command of each
family: set and get, multi-get, add and replace, append, cas, incr and decr,
touch, delete, and a value of 100 KB. Prints one line per check and exits
non-zero if any failed.
"""

import argparse

from common import check, exit_if_failed


def pymemcache_checks(path):
    from pymemcache.client.base import Client

    c = Client(path, connect_timeout=10, timeout=10)
    c.flush_all()
    check("pymemcache set/get", (c.set("k", b"v", noreply=False), c.get("k")), (True, b"v"))
    c.set("k2", b"v2", noreply=False)
    check("pymemcache get_many", c.get_many(["k", "k2", "missing"]), {"k": b"v", "k2": b"v2"})
    check("pymemcache add/replace",
          (c.add("k", b"x", noreply=False), c.replace("nope", b"x", noreply=False),
           c.add("new", b"n", noreply=False)), (False, False, True))
    check("pymemcache append", (c.append("k", b"+", noreply=False), c.get("k")), (True, b"v+"))
    value, cas = c.gets("k")
    check("pymemcache cas", (c.cas("k", b"c1", cas, noreply=False), c.cas("k", b"c2", cas, noreply=False),
                             c.get("k")), (True, False, b"c1"))
    c.set("n", b"10", noreply=False)
    check("pymemcache incr/decr", (c.incr("n", 5), c.decr("n", 20)), (15, 0))
    check("pymemcache touch", (c.touch("k", 100, noreply=False), c.touch("nope", 100, noreply=False)),
          (True, False))
    check("pymemcache delete", (c.delete("k", noreply=False), c.get("k")), (True, None))
    big = bytes(range(256)) * 400
    c.set("big", big, noreply=False)
    check("pymemcache 100 KB value", c.get("big"), big)
    stats = c.stats("settings")
    check("pymemcache stats settings domain_socket", stats.get(b"domain_socket"), path.encode())
    c.close()


def pylibmc_checks(path):
    import pylibmc

    c = pylibmc.Client([path])
    c.flush_all()
    check("pylibmc set/get", (c.set("k", b"v"), c.get("k")), (True, b"v"))
    c.set("k2", b"v2")
    check("pylibmc get_multi", c.get_multi(["k", "k2", "missing"]), {"k": b"v", "k2": b"v2"})
    check("pylibmc add", (c.add("k", b"x"), c.add("new", b"n")), (False, True))
    check("pylibmc append", (c.append("k", b"+"), c.get("k")), (True, b"v+"))
    c.set("n", 10)
    check("pylibmc incr/decr", (c.incr("n", 5), c.decr("n", 20)), (15, 0))
    check("pylibmc delete", (c.delete("k"), c.get("k")), (True, None))
    big = bytes(range(256)) * 400
    c.set("big", big)
    check("pylibmc 100 KB value", c.get("big"), big)
    c.disconnect_all()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--socket", required=True)
    ap.add_argument("--pylibmc", action="store_true", help="run pylibmc's checks instead")
    args = ap.parse_args()
    if args.pylibmc:
        pylibmc_checks(args.socket)
    else:
        pymemcache_checks(args.socket)
    exit_if_failed()


if __name__ == "__main__":
    main()
