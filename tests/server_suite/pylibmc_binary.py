"""pylibmc (libmemcached) with binary=True against one server: every command
family libmemcached sends over the binary protocol, each checked for its
exact result. Run against larder-server by ci/server_suite.sh; pass the
port of a memcached to see the same results there.

Prints `pylibmc-binary: N/N checks passed` and exits non-zero on a failure.
"""

import argparse
import sys

import pylibmc

CHECKS = []


def check(name, got, want):
    CHECKS.append((name, got == want))
    if got != want:
        print("FAIL %s: got %r, want %r" % (name, got, want))


def raises(name, error, fn, *args):
    try:
        got = fn(*args)
    except error:
        CHECKS.append((name, True))
        return
    except Exception as e:  # noqa: BLE001 - report the unexpected error
        got = "%s: %s" % (type(e).__name__, e)
    CHECKS.append((name, False))
    print("FAIL %s: got %r, want %s" % (name, got, error.__name__))


def client(port, **behaviors):
    return pylibmc.Client(
        ["127.0.0.1:%d" % port], binary=True, behaviors=dict(behaviors)
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    mc = client(args.port, cas=True, tcp_nodelay=True)
    mc.flush_all()

    # get / set, values of every type pylibmc flags differently
    check("set", mc.set("str", "hello"), True)
    check("get", mc.get("str"), "hello")
    check("get miss", mc.get("missing"), None)
    mc.set("int", 42)
    mc.set("bytes", b"\x00\x01\xff")
    mc.set("obj", {"a": [1, 2]})
    check("int keeps its type", mc.get("int"), 42)
    check("bytes are binary safe", mc.get("bytes"), b"\x00\x01\xff")
    check("pickled object", mc.get("obj"), {"a": [1, 2]})
    big = b"x" * (900 * 1024)
    check("large set", mc.set("big", big), True)
    check("large get", mc.get("big"), big)
    raises("value over 1 MiB refused", pylibmc.Error, mc.set, "huge", b"x" * (2 << 20))

    # multi
    check("set_multi", mc.set_multi({"m1": "1", "m2": "2", "m3": "3"}), [])
    check(
        "get_multi skips misses",
        mc.get_multi(["m1", "m2", "m3", "nope"]),
        {"m1": "1", "m2": "2", "m3": "3"},
    )
    check("delete_multi", mc.delete_multi(["m1", "m2"]), True)
    check("get_multi after delete", mc.get_multi(["m1", "m2", "m3"]), {"m3": "3"})

    # add / replace
    check("add new", mc.add("a", "1"), True)
    check("add existing", mc.add("a", "2"), False)
    check("replace existing", mc.replace("a", "3"), True)
    raises("replace missing", pylibmc.NotFound, mc.replace, "nope", "3")
    check("after add/replace", mc.get("a"), "3")
    check("add_multi", mc.add_multi({"a": "x", "b": "y"}), ["a"])

    # append / prepend
    mc.set("s", "mid")
    check("append", mc.append("s", "-end"), True)
    check("prepend", mc.prepend("s", "start-"), True)
    check("after append/prepend", mc.get("s"), "start-mid-end")
    check("append missing", mc.append("nope", "x"), False)

    # counters
    mc.set("n", "10")
    check("incr", mc.incr("n", 5), 15)
    check("decr", mc.decr("n", 3), 12)
    check("decr clamps at zero", mc.decr("n", 100), 0)
    raises("incr missing", pylibmc.NotFound, mc.incr, "nope")
    mc.set("text", "abc")
    raises("incr non-numeric", pylibmc.Error, mc.incr, "text")
    mc.set("c1", "1")
    mc.set("c2", "2")
    check("incr_multi", mc.incr_multi(["c1", "c2"], delta=10), None)
    check("after incr_multi", mc.get_multi(["c1", "c2"]), {"c1": "11", "c2": "12"})

    # cas
    mc.set("k", "v1")
    value, cas = mc.gets("k")
    check("gets", value, "v1")
    check("cas with the current unique", mc.cas("k", "v2", cas), True)
    check("cas with a stale unique", mc.cas("k", "v3", cas), False)
    check("after cas", mc.get("k"), "v2")
    check("gets miss", mc.gets("nope"), (None, None))

    # delete / touch
    check("touch hit", mc.touch("k", 3600), True)
    check("touch miss", mc.touch("nope", 3600), False)
    check("delete hit", mc.delete("k"), True)
    check("delete miss", mc.delete("k"), False)

    # quiet, buffered writes (SETQ ...) flushed by the next read
    buffered = client(args.port, no_block=True)
    for i in range(100):
        buffered.set("q%d" % i, str(i))
    check("buffered sets land", buffered.get("q99"), "99")
    check(
        "every buffered set landed",
        len(mc.get_multi(["q%d" % i for i in range(100)])),
        100,
    )

    # stats, flush
    stats = mc.get_stats()
    check("stats: one server", len(stats), 1)
    general = stats[0][1]
    check("stats: fields present", all(f in general for f in ("pid", "cmd_get", "curr_items")), True)
    # libmemcached reads STAT packets into its fixed struct.
    check("stats: curr_items counted", int(general["curr_items"]) > 100, True)
    check("stats: cmd_get counted", int(general["cmd_get"]) > 10, True)
    check("flush_all", mc.flush_all(), True)
    check("get after flush", mc.get("a"), None)

    passed = sum(ok for _, ok in CHECKS)
    print("pylibmc-binary: %d/%d checks passed" % (passed, len(CHECKS)))
    return 0 if passed == len(CHECKS) else 1


if __name__ == "__main__":
    sys.exit(main())
