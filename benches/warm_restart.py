#!/usr/bin/env python3
"""Warm-restart time of larder-server (--snapshot) beside memcached (-e), run by hand.

    cargo build --release --features server --bin larder-server
    python3 benches/warm_restart.py [--items 10000000] [--larder target/release/larder-server]

For each server: start it empty, load ITEMS items (16-byte keys, 100-byte values,
pipelined `set ... noreply`), stop it the way its warm restart needs (larder:
SIGTERM, which saves the snapshot; memcached: SIGUSR1, which writes its .meta
file), start it again and time until it answers `stats` with every item back.
Files go to /dev/shm (memcached's -e needs tmpfs). memcached runs with -u root.

memcached 1.6.18 (Debian) refuses its own metadata when it is restarted within
about a minute of the stop ("restart incompatible due to setting for
[stop_time]": the new process dates its start ITEM_UPDATE_INTERVAL + 2 s back,
before the old stop), so the script waits --memcached-pause seconds (default 70)
between stop and restart; the restart is timed from the new launch and its own
"[restart]" lines (-v) are printed.
"""

import argparse
import os
import signal
import socket
import subprocess
import time

VALUE = b"v" * 100


def wait_port(port, timeout=600):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=1)
            return s
        except OSError:
            time.sleep(0.005)
    raise RuntimeError("server did not come up")


def stats(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=600)
    s.sendall(b"stats\r\n")
    buf = b""
    while not buf.endswith(b"END\r\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    out = {}
    for line in buf.decode().splitlines():
        parts = line.split(" ")
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2]
    return out


def load(port, items):
    s = wait_port(port)
    batch = []
    for i in range(items):
        key = b"k%015d" % i
        batch.append(b"set " + key + b" 0 0 100 noreply\r\n" + VALUE + b"\r\n")
        if len(batch) == 2000:
            s.sendall(b"".join(batch))
            batch = []
    if batch:
        s.sendall(b"".join(batch))
    # A round trip: everything before it has been applied.
    s.sendall(b"mn\r\n")
    buf = b""
    while not buf.endswith(b"MN\r\n"):
        buf += s.recv(65536)
    s.close()


def run(name, cmd, stop_signal, port, items, cleanup, pause=0.0):
    for f in cleanup:
        if os.path.exists(f):
            os.remove(f)
    log = open("/dev/shm/warm-restart-%s.log" % name, "w+")
    p = subprocess.Popen(cmd, stderr=log, stdout=subprocess.DEVNULL)
    wait_port(port).close()
    t = time.time()
    load(port, items)
    load_s = time.time() - t
    got = int(stats(port)["curr_items"])
    t = time.time()
    p.send_signal(stop_signal)
    p.wait(timeout=900)
    stop_s = time.time() - t
    time.sleep(pause)
    t = time.time()
    p = subprocess.Popen(cmd, stderr=log, stdout=subprocess.DEVNULL)
    wait_port(port).close()
    back = int(stats(port)["curr_items"])
    start_s = time.time() - t
    rss = 0
    with open("/proc/%d/status" % p.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) // 1024
    p.send_signal(signal.SIGKILL)
    p.wait()
    log.seek(0)
    err = log.read()
    log.close()
    os.remove(log.name)
    for f in cleanup:
        if os.path.exists(f):
            os.remove(f)
    print(
        "%-10s loaded %d items in %.1f s; stop (save) %.2f s; restart to serving %.2f s "
        "with %d items back (%.0f items/s), RSS after restart %d MB"
        % (name, got, load_s, stop_s, start_s, back, back / start_s if start_s else 0, rss)
    )
    for line in err.splitlines():
        if "snapshot" in line or "[restart]" in line:
            print("           " + line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=10_000_000)
    ap.add_argument("--larder", default="target/release/larder-server")
    ap.add_argument("--memcached", default="memcached")
    ap.add_argument("--memcached-pause", type=float, default=70.0)
    args = ap.parse_args()
    snap = "/dev/shm/larder-bench.snap"
    mem = "/dev/shm/memcached-bench.mem"
    # Room for every item in both servers, with a wide margin (larder charges
    # each item's block plus 45 bytes against -m; memcached ~60 per item).
    larder_mb = max(64, args.items * 460 // (1 << 20) + 256)
    memc_mb = max(64, args.items * 200 // (1 << 20) + 256)
    run(
        "larder",
        [args.larder, "-p", "11411", "-m", str(larder_mb), "-t", "2", "--snapshot", snap,
         "--snapshot-keep", "0"],
        signal.SIGTERM,
        11411,
        args.items,
        [snap],
    )
    run(
        "memcached",
        [args.memcached, "-u", "root", "-p", "11412", "-U", "0", "-l", "127.0.0.1",
         "-m", str(memc_mb), "-t", "2", "-e", mem, "-v"],
        signal.SIGUSR1,
        11412,
        args.items,
        [mem, mem + ".meta"],
        args.memcached_pause,
    )


if __name__ == "__main__":
    main()
