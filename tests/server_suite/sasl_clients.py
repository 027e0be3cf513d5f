#!/usr/bin/env python3
"""pylibmc (libmemcached's SASL client) against a server started with -S.

Usage: sasl_clients.py --server HOST:PORT --user USER --password PASSWORD

With the right password, every command family works over the binary
protocol (set and get, multi-get, add and replace, append, cas, incr and
decr, touch, delete). With a wrong password, or none, a store fails with
libmemcached's authentication error, a get reads nothing, and nothing is
stored.
Prints one line per check and exits non-zero if any failed.
"""

import argparse

import pylibmc

from common import check, exit_if_failed


def refused(client, what):
    """Whether `what(client)` fails with libmemcached's authentication error
    (41, MEMCACHED_AUTH_FAILURE; its text is not always in the message)."""
    try:
        what(client)
    except pylibmc.Error as e:
        return "AUTH" in str(e).upper() or "error 41 " in str(e)
    return False


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()

    c = pylibmc.Client([args.server], binary=True, username=args.user, password=args.password,
                       behaviors={"cas": True})
    c.flush_all()
    check("set/get", (c.set("k", "v"), c.get("k")), (True, "v"))
    c.set("k2", "v2")
    check("get_multi", c.get_multi(["k", "k2", "missing"]), {"k": "v", "k2": "v2"})
    check("add/replace", (c.add("k", "x"), c.add("new", "n"), c.replace("new", "r"), c.get("new")),
          (False, True, True, "r"))
    check("append", (c.append("k", "+"), c.get("k")), (True, "v+"))
    _, cas = c.gets("k")
    check("cas", (c.cas("k", "c1", cas), c.cas("k", "c2", cas), c.get("k")), (True, False, "c1"))
    c.set("n", "10")
    check("incr/decr", (c.incr("n", 5), c.decr("n", 3)), (15, 12))
    check("touch", (c.touch("k", 100), c.touch("missing", 100)), (True, False))
    check("delete", (c.delete("k"), c.get("k")), (True, None))
    check("a 100 KB value", (c.set("big", "x" * 100_000), c.get("big")), (True, "x" * 100_000))

    wrong = pylibmc.Client([args.server], binary=True, username=args.user, password=args.password + "-no")
    check("a wrong password is refused", refused(wrong, lambda w: w.set("intruder", "x")), True)
    anonymous = pylibmc.Client([args.server], binary=True)
    check("no credentials are refused", refused(anonymous, lambda a: a.set("anonymous", "x")), True)
    # (libmemcached turns a refused get into a miss, as it does with memcached.)
    check("no credentials read nothing", anonymous.get("k2"), None)
    check("nothing was stored by them", (c.get("intruder"), c.get("anonymous")), (None, None))

    exit_if_failed()


if __name__ == "__main__":
    main()
