"""Cluster test: three larder-server nodes behind nutcracker (twemproxy 0.5.0).

Run by tests/cluster/run.sh, which installs nutcracker and pymemcache and
builds the binaries. This script starts every process itself, records each PID
in --pidfile (run.sh's trap kills whatever is listed there, by PID, if this
script dies) and stops them all in a finally block.

Checks, each printed as one PASS/FAIL line:
  round-trips    sets, gets and multigets through the proxy
  ring-named     every key lives on exactly the node larder::ring predicts
                 (servers named node1..node3), cross-checked with ketama.py;
                 each node holds a fair share (stats curr_items, get per key)
  ring-addr      the same for a second pool whose servers are unnamed
                 (points named host:port)
  commands       which commands nutcracker forwards and which it refuses
  hash-client    pymemcache HashClient over the nodes, no proxy
  node-loss      kill -9 one node: keys on the others still hit, new sets
                 succeed, errors only at ejection/retry instants, keys of the
                 dead node land where larder::ring without it predicts
  rejoin         restart it on the same port: it rejoins within the retry
                 timeout and gets its keys again
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ketama  # noqa: E402

from pymemcache.client.base import Client  # noqa: E402
from pymemcache.client.hash import HashClient  # noqa: E402

RETRY_MS = 2000
NAMES = ["node1", "node2", "node3"]
PROCS = []  # (name, Popen)
RESULTS = []


def log(msg):
    print(msg, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def remember(args, proc):
    PROCS.append(proc)
    with open(args.pidfile, "a") as f:
        f.write(f"{proc.pid}\n")


def start_node(args, i, port=0):
    logpath = os.path.join(args.workdir, f"node{i + 1}.log")
    with open(logpath, "w") as logf:
        proc = subprocess.Popen(
            [args.bin, "-p", str(port), "-m", "64", "-t", "2"], stderr=logf
        )
    remember(args, proc)
    deadline = time.time() + 10
    while time.time() < deadline:
        for line in open(logpath):
            if line.startswith("listening on "):
                return proc, int(line.strip().rsplit(":", 1)[1])
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"node{i + 1} did not start: {open(logpath).read()}")


def start_nutcracker(args, ports):
    named_port, addr_port, stats_port = free_port(), free_port(), free_port()
    common = f"""  hash: fnv1a_64
  distribution: ketama
  auto_eject_hosts: true
  server_retry_timeout: {RETRY_MS}
  server_failure_limit: 1
  timeout: 2000
"""
    conf = f"named:\n  listen: 127.0.0.1:{named_port}\n{common}  servers:\n"
    conf += "".join(
        f"   - 127.0.0.1:{p}:1 {n}\n" for p, n in zip(ports, NAMES)
    )
    conf += f"addr:\n  listen: 127.0.0.1:{addr_port}\n{common}  servers:\n"
    conf += "".join(f"   - 127.0.0.1:{p}:1\n" for p in ports)
    path = os.path.join(args.workdir, "nutcracker.yml")
    with open(path, "w") as f:
        f.write(conf)
    logpath = os.path.join(args.workdir, "nutcracker.log")
    proc = subprocess.Popen(
        [
            "nutcracker",
            "-c", path,
            "-s", str(stats_port),
            "-a", "127.0.0.1",
            "-o", logpath,
            "-p", os.path.join(args.workdir, "nutcracker.pid"),
        ]
    )
    remember(args, proc)
    for port in (named_port, addr_port):
        deadline = time.time() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"nutcracker did not start: {open(logpath).read()}")
                time.sleep(0.05)
    return named_port, addr_port


def stop_all():
    for proc in PROCS:
        if proc.poll() is None:
            proc.kill()
    for proc in PROCS:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def client(port):
    return Client(
        ("127.0.0.1", port), connect_timeout=2, timeout=3, default_noreply=False
    )


def ring_route(args, lines, keys, eject=None):
    """Node index per key from examples/ring_route (larder::ring)."""
    argv = [args.ring_route, *lines] + (["--eject", str(eject)] if eject is not None else [])
    out = subprocess.run(
        argv, input=b"".join(k + b"\n" for k in keys), capture_output=True, check=True
    ).stdout
    return [int(x) for x in out.split()]


def check(name, ok, detail):
    RESULTS.append((name, ok))
    log(f"{'PASS' if ok else 'FAIL'} {name}: {detail}")


def make_keys(prefix, n):
    """ASCII keys plus a tenth with UTF-8 bytes >= 0x80, where twemproxy's
    sign-extending fnv1a_64 differs from textbook FNV."""
    keys = []
    for i in range(n):
        if i % 10 == 9:
            keys.append(f"{prefix}:café:ключ:{i}".encode())
        else:
            keys.append(f"{prefix}:{i}".encode())
    return keys


def holders(direct, keys):
    """For each key, the list of node indices that hold it (direct gets)."""
    found = [[] for _ in keys]
    index = {k: i for i, k in enumerate(keys)}
    for node, c in enumerate(direct):
        for start in range(0, len(keys), 200):
            for k in c.get_many(keys[start:start + 200]):
                found[index[k]].append(node)
    return found


def flush(direct):
    for c in direct:
        c.flush_all()


def curr_items(c):
    return int(c.stats()[b"curr_items"])


def check_ring(name, args, proxy, direct, lines, prefix, share_floor):
    flush(direct)
    keys = make_keys(prefix, 6000)
    for k in keys:
        proxy.set(k, b"v" + k)
    predicted = ring_route(args, lines, keys)
    servers = []
    for line in lines:
        addr, _, name_ = line.partition(" ")
        host_port, weight = addr.rsplit(":", 1)
        servers.append((host_port, int(weight), name_ or None))
    py = ketama.Ring(servers)
    py_agree = sum(py.node_for(k) == p for k, p in zip(keys, predicted))
    found = holders(direct, keys)
    agree = sum(f == [p] for f, p in zip(found, predicted))
    high = [i for i, k in enumerate(keys) if max(k) >= 0x80]
    high_agree = sum(found[i] == [predicted[i]] for i in high)
    counts = [curr_items(c) for c in direct]
    expected = [predicted.count(n) for n in range(3)]
    shares = [c / len(keys) for c in counts]
    ok = (
        agree == len(keys)
        and py_agree == len(keys)
        and counts == expected
        and min(shares) >= share_floor
    )
    check(
        name,
        ok,
        f"{agree}/{len(keys)} keys on the predicted node "
        f"({high_agree}/{len(high)} with bytes >= 0x80), ketama.py agrees on {py_agree}; "
        f"curr_items {counts} (predicted {expected}), shares "
        + " ".join(f"{s:.1%}" for s in shares),
    )
    return keys, predicted


def raw(port, data):
    """Sends data on a fresh connection; returns (reply, closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.sendall(data)
    out, closed = b"", False
    s.settimeout(1.0)
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                closed = True
                break
            out += chunk
            if out.endswith(b"END\r\n") or (not out.startswith(b"VALUE") and out.endswith(b"\r\n")):
                break
    except socket.timeout:
        pass
    s.close()
    return out, closed


# (command, bytes sent, expected reply prefix, or None when nutcracker closes
# the connection without a reply). docs/scale-out.md quotes this table.
COMMANDS = [
    ("set", b"set cmd:a 5 0 1\r\nx\r\n", b"STORED\r\n"),
    ("get", b"get cmd:a\r\n", b"VALUE cmd:a 5 1\r\nx\r\nEND\r\n"),
    ("get (multi)", b"get cmd:a cmd:none cmd:a\r\n", b"VALUE cmd:a 5 1\r\nx\r\nVALUE cmd:a 5 1\r\nx\r\nEND\r\n"),
    ("gets", b"gets cmd:a\r\n", b"VALUE cmd:a 5 1 "),
    ("add", b"add cmd:b 0 0 1\r\ny\r\n", b"STORED\r\n"),
    ("replace", b"replace cmd:b 0 0 1\r\nz\r\n", b"STORED\r\n"),
    ("append", b"append cmd:b 0 0 1\r\na\r\n", b"STORED\r\n"),
    ("prepend", b"prepend cmd:b 0 0 1\r\np\r\n", b"STORED\r\n"),
    ("cas", b"cas cmd:b 0 0 1 999999\r\nq\r\n", b"EXISTS\r\n"),
    ("incr", b"incr cmd:n 2\r\n", b"7\r\n"),
    ("decr", b"decr cmd:n 3\r\n", b"4\r\n"),
    ("touch", b"touch cmd:a 100\r\n", b"TOUCHED\r\n"),
    ("delete", b"delete cmd:b\r\n", b"DELETED\r\n"),
    ("set noreply", b"set cmd:c 0 0 1 noreply\r\nx\r\nget cmd:c\r\n", b"VALUE cmd:c 0 1\r\nx\r\nEND\r\n"),
    ("version", b"version\r\n", b"VERSION "),
    ("gat", b"gat 100 cmd:a\r\n", None),
    ("gats", b"gats 100 cmd:a\r\n", None),
    ("stats", b"stats\r\n", None),
    ("flush_all", b"flush_all\r\n", None),
    ("verbosity", b"verbosity 1\r\n", None),
    ("quit", b"quit\r\n", None),
    ("shutdown", b"shutdown\r\n", None),
    ("mn", b"mn\r\n", None),
    ("mg", b"mg cmd:a v\r\n", None),
    ("ms", b"ms cmd:a 1\r\nx\r\n", None),
    ("md", b"md cmd:a\r\n", None),
    ("ma", b"ma cmd:n\r\n", None),
    ("me", b"me cmd:a\r\n", None),
]


def check_commands(proxy_port, proxy):
    proxy.set(b"cmd:n", b"5")
    wrong = []
    forwarded, refused = [], []
    for name, data, want in COMMANDS:
        reply, closed = raw(proxy_port, data)
        if want is None:
            ok = closed and reply == b""
            refused.append(name)
        else:
            ok = reply.startswith(want) and not closed
            forwarded.append(name)
        if not ok:
            wrong.append(f"{name}: {reply[:60]!r} closed={closed}")
    check(
        "commands",
        not wrong,
        f"forwarded: {', '.join(forwarded)}; connection closed without reply: "
        f"{', '.join(refused)}" + (f"; UNEXPECTED: {wrong}" if wrong else ""),
    )


def check_hash_client(direct, ports):
    flush(direct)
    hc = HashClient(
        [("127.0.0.1", p) for p in ports],
        connect_timeout=2,
        timeout=3,
        default_noreply=False,
    )
    keys = make_keys("hc", 3000)
    bad = 0
    for k in keys:
        if not hc.set(k, b"h" + k):
            bad += 1
    for k in keys:
        if hc.get(k) != b"h" + k:
            bad += 1
    many = {}
    for start in range(0, len(keys), 100):
        many.update(hc.get_many(keys[start:start + 100]))
    bad += sum(many.get(k) != b"h" + k for k in keys)
    counts = [curr_items(c) for c in direct]
    found = holders(direct, keys)
    single = sum(len(f) == 1 for f in found)
    hc.close()
    ok = bad == 0 and sum(counts) == len(keys) and single == len(keys) and min(counts) >= 0.2 * len(keys)
    check(
        "hash-client",
        ok,
        f"{len(keys)} set/get/get_many with {bad} failures; each key on one node "
        f"({single}/{len(keys)}); curr_items {counts} (rendezvous hashing, not ketama)",
    )


def check_round_trips(proxy):
    keys = [f"rt:{i}".encode() for i in range(5000)]
    bad = 0
    for i, k in enumerate(keys):
        value = b"%d" % i * (1 + i % 50)
        if not proxy.set(k, value):
            bad += 1
        if proxy.get(k) != value:
            bad += 1
    batches = 0
    for start in range(0, len(keys), 100):
        got = proxy.get_many(keys[start:start + 100])
        batches += 1
        for i in range(start, min(start + 100, len(keys))):
            if got.get(keys[i]) != b"%d" % i * (1 + i % 50):
                bad += 1
    check("round-trips", bad == 0, f"{len(keys)} set+get and {batches} multigets of 100 through nutcracker, {bad} failures")


def node_loss_and_rejoin(args, proxy_port, direct, ports, lines, victim):
    flush(direct)
    keys = make_keys("loss", 3000)
    proxy = client(proxy_port)
    for k in keys:
        proxy.set(k, b"l" + k)
    owners = ring_route(args, lines, keys)
    PROCS_BY_NODE[victim].send_signal(signal.SIGKILL)
    PROCS_BY_NODE[victim].wait()
    killed_at = time.time()

    errors = []  # (seconds after the kill, operation, owner in the full ring)
    live_misses = live_hits = dead_misses = 0
    new_keys = make_keys("during", 3000)
    new_owners = ring_route(args, lines, new_keys)
    degraded = ring_route(args, lines, new_keys, eject=victim)
    stored = []
    # 2.6 retry timeouts: nutcracker retries the dead node twice.
    deadline = killed_at + 2.6 * RETRY_MS / 1000
    i = 0
    while time.time() < deadline:
        j = i % len(keys)
        i += 1
        try:
            v = proxy.get(keys[j])
            if owners[j] == victim:
                dead_misses += v is None
            elif v == b"l" + keys[j]:
                live_hits += 1
            else:
                live_misses += 1
        except Exception:
            errors.append((time.time() - killed_at, "get", owners[j]))
            proxy.close()
        try:
            if proxy.set(new_keys[j], b"n" + new_keys[j]):
                stored.append(j)
        except Exception:
            errors.append((time.time() - killed_at, "set", new_owners[j]))
            proxy.close()
    elapsed = time.time() - killed_at
    # Where did the new keys go? Each to the node larder::ring predicts with
    # the victim ejected (unless it was set at a retry instant and failed).
    survivors = [c for n, c in enumerate(direct) if n != victim]
    survivor_idx = [n for n in range(3) if n != victim]
    done = sorted(set(stored))
    found = holders(survivors, [new_keys[j] for j in done])
    placed = sum(
        [survivor_idx[n] for n in f] == [degraded[j]] for f, j in zip(found, done)
    )
    allowed = int(elapsed * 1000 // RETRY_MS) + 1
    errors_on_live = [e for e in errors if e[2] != victim]
    ok = (
        live_misses == 0
        and live_hits > 0
        and not errors_on_live
        and len(errors) <= allowed
        and placed == len(done)
        and len(done) > 0
    )
    check(
        "node-loss",
        ok,
        f"killed node{victim + 1}; over {elapsed:.1f}s: {live_hits} gets of keys on live nodes "
        f"all hit ({live_misses} misses), {dead_misses} gets of its keys missed, "
        f"{len(errors)} errors (allowed {allowed}: one per retry of the dead node) at "
        + ", ".join(f"{t:.2f}s {op}" for t, op, _ in errors)
        + f"; {len(done)} distinct new keys stored, {placed} on the node larder::ring predicts without it",
    )

    # Restart on the same port and wait for nutcracker to take it back.
    proc, port = start_node(args, victim, ports[victim])
    PROCS_BY_NODE[victim] = proc
    restarted_at = time.time()
    node = client(port)
    direct[victim] = node
    candidates = make_keys("rejoin", 400)
    probe = [k for k, o in zip(candidates, ring_route(args, lines, candidates)) if o == victim]
    rejoin_errors = 0
    rejoined_after = None
    while time.time() < restarted_at + RETRY_MS / 1000 + 3:
        for k in probe:
            try:
                proxy.set(k, b"r")
            except Exception:
                rejoin_errors += 1
                proxy.close()
        if node.get(probe[0]) is not None:
            rejoined_after = time.time() - restarted_at
            break
        time.sleep(0.05)
    # Once back, no errors and full-ring routing again.
    after = make_keys("after", 1500)
    after_owners = ring_route(args, lines, after)
    after_errors = 0
    for k in after:
        try:
            proxy.set(k, b"a")
        except Exception:
            after_errors += 1
            proxy.close()
    found = holders(direct, after)
    agree = sum(f == [o] for f, o in zip(found, after_owners))
    ok = (
        rejoined_after is not None
        and rejoined_after <= RETRY_MS / 1000 + 1
        and rejoin_errors <= 1
        and after_errors == 0
        and agree == len(after)
    )
    check(
        "rejoin",
        ok,
        f"restarted node{victim + 1} on port {port}; its keys reached it "
        f"{rejoined_after if rejoined_after is None else round(rejoined_after, 2)}s later "
        f"({rejoin_errors} errors meanwhile); then {len(after)} sets with {after_errors} errors, "
        f"{agree}/{len(after)} on the node larder::ring predicts",
    )
    proxy.close()


PROCS_BY_NODE = []


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--ring-route", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--pidfile", required=True)
    args = p.parse_args()
    started = time.time()

    def on_signal(signum, _frame):
        stop_all()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        ports = []
        for i in range(3):
            proc, port = start_node(args, i)
            PROCS_BY_NODE.append(proc)
            ports.append(port)
        named_port, addr_port = start_nutcracker(args, ports)
        log(f"nodes on {ports}; nutcracker pools on {named_port} (named) and {addr_port} (by address)")
        named_lines = [f"127.0.0.1:{p}:1 {n}" for p, n in zip(ports, NAMES)]
        addr_lines = [f"127.0.0.1:{p}:1" for p in ports]
        direct = [client(p) for p in ports]
        named = client(named_port)
        addr = client(addr_port)

        check_round_trips(named)
        check_ring("ring-named", args, named, direct, named_lines, "named", 0.8 / 3)
        # Unnamed servers hash by "127.0.0.1:<port>", and the ports are picked
        # at random: the spread varies run to run (so it is only reported),
        # the placement must not.
        check_ring("ring-addr", args, addr, direct, addr_lines, "addr", 0.0)
        check_commands(named_port, named)
        check_hash_client(direct, ports)
        named.close()
        addr.close()
        node_loss_and_rejoin(args, named_port, direct, ports, named_lines, victim=1)
    except Exception as e:  # a crash is a failure, not a traceback-only exit
        import traceback

        traceback.print_exc()
        check("cluster run", False, f"{type(e).__name__}: {e}")
    finally:
        stop_all()
    passed = sum(ok for _, ok in RESULTS)
    failed = len(RESULTS) - passed
    log(f"cluster test took {time.time() - started:.1f}s")
    log(f"cluster: {passed} passed, {failed} failed")
    return 1 if failed or passed < 7 else 0


if __name__ == "__main__":
    sys.exit(main())
