#!/usr/bin/env python3
"""nginx <-> memcached compatibility probe: real memcached vs larder-server.

Usage: python3 probe.py --larder BIN [--out DIR] [--only PREFIX] [--allow CASE,..]
       [--no-waits]

Run by ci/server_suite.sh with --no-waits: the cases that wait for items to
expire (A-expiry, B-exptime, D-srcache-expiry, each a 2.2 s sleep, as nginx
gives no way to move a server's clock) are left out there; run them by hand.

For each backend it starts: the server, a TCP logging proxy (tcplog.py) in
front of it, and an nginx (nginx.conf.in) whose upstream is the proxy.
Every case runs against both backends in the same order; observations
(HTTP status, relevant headers, body, normalised nginx error-log lines) are
compared. Results: OUT/results.json, OUT/report.md, OUT/diffs.md (raw wire
bytes for each differing case). Exit status 1 if any unexpected difference.
"""
import argparse, base64, gzip, hashlib, json, os, re, shutil, signal, socket
import subprocess, sys, time, urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


BACKENDS = {
    name: dict(port=free_port(), proxy=free_port(), http=free_port())
    for name in ("memcached", "larder")
}
# Cases that sleep to wait for expiry (see the usage note).
WAITS = ("A-expiry", "B-exptime", "D-srcache-expiry")
INTERESTING_HDRS = ("content-type", "content-length", "content-encoding",
                    "last-modified", "transfer-encoding", "x-memc-flags",
                    "x-fetch", "x-store", "x-gen")

procs = []


def wait_port(port, timeout=10):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"port {port} never opened")


class Backend:
    def __init__(self, name, cfg, out, larder_bin):
        self.name, self.cfg, self.out = name, cfg, out
        self.prefix = os.path.join(out, "run", name)
        shutil.rmtree(self.prefix, ignore_errors=True)
        os.makedirs(self.prefix)
        self.wire = os.path.join(self.prefix, "wire.jsonl")
        self.errlog = os.path.join(self.prefix, "error.log")
        if name == "memcached":
            cmd = ["memcached", "-u", "root", "-p", str(cfg["port"]),
                   "-l", "127.0.0.1", "-U", "0", "-m", "64"]
        else:
            cmd = [larder_bin, "-p", str(cfg["port"]), "-l", "127.0.0.1",
                   "-U", "0", "-m", "64"]
        self.server = subprocess.Popen(cmd, stdout=open(os.path.join(self.prefix, "server.out"), "w"),
                                       stderr=subprocess.STDOUT)
        procs.append(self.server)
        wait_port(cfg["port"])
        self.proxy = subprocess.Popen([sys.executable, os.path.join(HERE, "tcplog.py"),
                                       str(cfg["proxy"]), str(cfg["port"]), self.wire],
                                      stderr=open(os.path.join(self.prefix, "proxy.err"), "w"))
        procs.append(self.proxy)
        wait_port(cfg["proxy"])
        conf = open(os.path.join(HERE, "nginx.conf.in")).read()
        conf = (conf.replace("@PREFIX@", self.prefix).replace("@LISTEN@", str(cfg["http"]))
                .replace("@BACKEND@", str(cfg["proxy"])).replace("@HERE@", HERE))
        self.conf = os.path.join(self.prefix, "nginx.conf")
        open(self.conf, "w").write(conf)
        subprocess.run(["nginx", "-p", self.prefix, "-c", self.conf, "-e", self.errlog],
                       check=True)
        wait_port(cfg["http"])
        self.nginx_pid = int(open(os.path.join(self.prefix, "nginx.pid")).read())

    def stop(self):
        try:
            os.kill(self.nginx_pid, signal.SIGQUIT)
        except (OSError, AttributeError):
            pass

    # --- plain socket client, straight to the backend (not logged) ---------
    def raw(self, data, quiet=0.15, timeout=5):
        s = socket.create_connection(("127.0.0.1", self.cfg["port"]), 3)
        s.sendall(data)
        buf = b""
        end = time.time() + timeout
        s.settimeout(quiet)
        while time.time() < end:
            try:
                chunk = s.recv(1 << 20)
            except socket.timeout:
                if buf.endswith(b"\r\n"):
                    break
                continue
            if not chunk:
                break
            buf += chunk
        s.close()
        return buf

    def rset(self, key, value, flags=0, exp=0):
        if isinstance(key, str):
            key = key.encode()
        r = self.raw(b"set %s %d %d %d\r\n%s\r\n" % (key, flags, exp, len(value), value))
        assert r == b"STORED\r\n", (self.name, key, r)

    # --- HTTP via curl -----------------------------------------------------
    def http(self, path, method="GET", body=None, extra=(), full=False):
        url = f"http://127.0.0.1:{self.cfg['http']}{path}"
        bfile, hfile = os.path.join(self.prefix, "cbody"), os.path.join(self.prefix, "chdr")
        cmd = ["curl", "-sS", "--path-as-is", "-g", "-o", bfile, "-D", hfile,
               "-w", "%{http_code}", "--max-time", "15", "-X", method, *extra]
        if method == "HEAD":
            cmd[cmd.index("-X"):cmd.index("-X") + 2] = ["-I"]
        if body is not None:
            pfile = os.path.join(self.prefix, "cpost")
            open(pfile, "wb").write(body)
            cmd += ["--data-binary", "@" + pfile, "-H", "Content-Type:"]
        cmd.append(url)
        p = subprocess.run(cmd, capture_output=True)
        status = p.stdout.decode() or "000"
        hdrs = {}
        if os.path.exists(hfile):
            for line in open(hfile, "rb").read().decode("latin1").split("\r\n")[1:]:
                if ":" in line:
                    k, v = line.split(":", 1)
                    if k.lower() in INTERESTING_HDRS:
                        hdrs[k.lower()] = v.strip()
        body = open(bfile, "rb").read() if os.path.exists(bfile) else b""
        if method == "HEAD":            # curl -I writes the headers to -o
            body = b""
        for f in (bfile, hfile):
            if os.path.exists(f):
                os.unlink(f)
        return {"status": int(status), "headers": hdrs,
                "body": body.decode("latin1") if full else short(body),
                **({"curl_err": p.stderr.decode().strip()} if p.returncode else {})}

    # --- log slicing -----------------------------------------------------
    def marks(self):
        return (os.path.getsize(self.wire) if os.path.exists(self.wire) else 0,
                os.path.getsize(self.errlog) if os.path.exists(self.errlog) else 0)

    def slice(self, m):
        time.sleep(0.15)
        wire = []
        with open(self.wire, "rb") as f:
            f.seek(m[0])
            for line in f:
                e = json.loads(line)
                if e["d"] in ("c2s", "s2c"):
                    wire.append((e["c"], e["d"], base64.b64decode(e["b"])))
        errs = []
        with open(self.errlog, "rb") as f:
            f.seek(m[1])
            for line in f.read().decode("latin1").splitlines():
                mm = re.search(r"\[(error|warn|crit|alert)\] \d+#\d+: (?:\*\d+ )?(.*?)(, client:|$)", line)
                if mm:
                    msg = mm.group(2)
                    for port in self.cfg.values():
                        msg = re.sub(rf"\b{port}\b", "PORT", msg)
                    errs.append(f"[{mm.group(1)}] {msg}")
        return wire, errs


def short(b):
    if len(b) <= 160:
        return b.decode("latin1")
    return f"<{len(b)} bytes sha256={hashlib.sha256(b).hexdigest()[:16]} head={b[:40]!r} tail={b[-24:]!r}>"


def q(**kw):
    return urllib.parse.urlencode(kw, quote_via=urllib.parse.quote)


# ============================================================================
# cases: each is f(b) -> observation (anything JSON-able)
# ============================================================================
CASES = []


def case(name):
    def deco(f):
        CASES.append((name, f))
        return f
    return deco


# ---------------- (a) stock memcached_pass ----------------------------------
@case("A-hit")
def _(b):
    b.rset("/mc/hit", b"hello world")
    return [b.http("/mc/hit"), b.http("/mc/hit", "HEAD")]


@case("A-miss-404")
def _(b):
    return b.http("/mc/nothing-here")


@case("A-gzip-flag")
def _(b):
    b.rset("/mc/gz", gzip.compress(b"hello gzip", mtime=0), flags=2)
    b.rset("/mc/gz3", gzip.compress(b"hello gzip3", mtime=0), flags=3)
    b.rset("/mc/nogz", b"plain", flags=5)
    return [b.http("/mc/gz"), b.http("/mc/gz3"), b.http("/mc/nogz"),
            b.http("/mc/gz", extra=["--compressed"])]


@case("A-flags-max")
def _(b):
    b.rset("/mc/fmax", b"fm", flags=4294967295)
    return b.http("/mc/fmax")


@case("A-odd-keys")
def _(b):
    out = []
    # request path -> key nginx sends ($uri, then " ", "%", controls escaped)
    for path, key in [("/mc/a%20b", b"/mc/a%20b"),
                      ("/mc/%C3%BC-utf8", "/mc/\u00fc-utf8".encode()),
                      ("/mc/x%2525y", b"/mc/x%2525y"),
                      ("/mc/a+b~!*'()$,;=:@[]", b"/mc/a+b~!*'()$,;=:@[]"),
                      ("/mc/ctl%01%7f", b"/mc/ctl%01\x7f"),
                      ("/mc/tab%09x", b"/mc/tab%09x")]:
        b.rset(key, b"val:" + key)
        out.append(b.http(path))
    return out


@case("A-key-length")
def _(b):
    k250 = "/mc/" + "k" * 246
    b.rset(k250, b"250")
    return [b.http(k250), b.http("/mc/" + "k" * 247),
            b.http("/mc/" + "%20" * 100)]       # 100 spaces -> 304-byte key


@case("A-large-500KB")
def _(b):
    v = bytes(range(256)) * 2000 + b"tail"
    b.rset("/mc/large", v)
    r = b.http("/mc/large")
    r["equal"] = r["body"] == short(v)
    return r


@case("A-embedded-END")
def _(b):
    b.rset("/mc/emb", b"a\r\nEND\r\nVALUE /mc/emb 0 3\r\nxyz\r\nEND\r\n")
    b.rset("/mc/empty", b"")
    return [b.http("/mc/emb"), b.http("/mc/empty")]


@case("A-expiry")
def _(b):
    # exptime 1 is read back only after the wait: memcached's 1 s clock makes
    # an exptime-1 item live anywhere between 0 and 1 s (see exp1_race.py)
    b.rset("/mc/exp1", b"soon gone", exp=1)
    b.rset("/mc/exp3", b"still here", exp=3)
    b.rset("/mc/expneg", b"gone", exp=-1)
    r1 = b.http("/mc/exp3")
    time.sleep(2.2)
    return [r1, b.http("/mc/exp1"), b.http("/mc/expneg")]


@case("A-keepalive-upstream")
def _(b):
    b.rset("/mck/a", b"A")
    b.rset("/mck/big", b"B" * 300000)
    out = [b.http(p) for p in ("/mck/a", "/mck/none", "/mck/big", "/mck/a",
                                "/mck/" + "k" * 300, "/mck/a", "/mck/a")]
    return out


# ---------------- (b) memc ----------------------------------------------------
def memc(b, method="GET", body=None, loc="/memc", full=False, **kw):
    return b.http(f"{loc}?{q(**kw)}", method, body, full=full)


@case("B-setup-flush")
def _(b):
    return memc(b, cmd="flush_all")


@case("B-set-get")
def _(b):
    return [memc(b, cmd="set", key="k1", val="hello"), memc(b, cmd="get", key="k1"),
            memc(b, cmd="set", key="k1", val="hi", flags="1234"), memc(b, cmd="get", key="k1"),
            memc(b, cmd="get", key="nope")]


@case("B-add-replace")
def _(b):
    return [memc(b, cmd="add", key="k1", val="x"), memc(b, cmd="add", key="k2", val="new"),
            memc(b, cmd="replace", key="k3", val="x"), memc(b, cmd="replace", key="k1", val="rep"),
            memc(b, cmd="get", key="k1")]


@case("B-append-prepend")
def _(b):
    return [memc(b, cmd="append", key="k1", val="-app"), memc(b, cmd="prepend", key="k1", val="pre-"),
            memc(b, cmd="get", key="k1"), memc(b, cmd="append", key="zz", val="x"),
            memc(b, cmd="prepend", key="zz", val="x")]


@case("B-delete")
def _(b):
    return [memc(b, cmd="delete", key="k2"), memc(b, cmd="delete", key="k2"),
            memc(b, cmd="delete", key="k1", exptime="0")]


@case("B-incr-decr")
def _(b):
    r = [memc(b, cmd="set", key="n", val="10"), memc(b, cmd="incr", key="n", val="5"),
         memc(b, cmd="decr", key="n", val="20"), memc(b, cmd="incr", key="missing", val="1"),
         memc(b, cmd="set", key="s", val="abc"), memc(b, cmd="incr", key="s", val="1"),
         memc(b, cmd="set", key="mx", val="18446744073709551615"), memc(b, cmd="incr", key="mx", val="1"),
         memc(b, cmd="set", key="g", val="99"), memc(b, cmd="incr", key="g", val="1"),
         memc(b, cmd="get", key="g"),
         memc(b, cmd="incr", key="n", val="x"),
         memc(b, cmd="incr", key="n", val="18446744073709551616")]
    return r


@case("B-flush-all")
def _(b):
    return [memc(b, cmd="set", key="f1", val="x"), memc(b, cmd="flush_all"),
            memc(b, cmd="get", key="f1"), memc(b, cmd="flush_all", exptime="0")]


@case("B-stats")
def _(b):
    r = memc(b, cmd="stats", full=True)
    body = r.pop("body")
    del r["headers"]["content-length"]
    r["ends_with_END"] = body.endswith("END\r\n")
    r["all_STAT_lines"] = all(l.startswith("STAT ") for l in body.split("\r\n")[:-2])
    r["info"] = sorted(l.split()[1] for l in body.split("\r\n") if l.startswith("STAT "))
    return r


@case("B-version")
def _(b):
    r = memc(b, cmd="version")
    r["info"] = r.pop("body")
    r["body_is_VERSION_line"] = r["info"].startswith("VERSION ") and r["info"].endswith("\r\n")
    del r["headers"]["content-length"]
    return r


@case("B-key-too-long")
def _(b):
    k = "k" * 251
    return [memc(b, cmd="get", key="k" * 250), memc(b, cmd="get", key=k),
            memc(b, cmd="set", key=k, val="x"), memc(b, cmd="delete", key=k),
            memc(b, cmd="incr", key=k, val="1"), memc(b, cmd="add", key=k, val="x")]


@case("B-value-size-limit")
def _(b):
    lim = 1048576 - 59 - 3          # key "big", flags 0
    out = [memc(b, "PUT", b"z" * lim, "/memcb", cmd="set", key="big"),
           memc(b, "PUT", b"z" * (lim + 1), "/memcb", cmd="set", key="big"),
           memc(b, "PUT", b"z" * (lim - 4), "/memcb", cmd="set", key="big", flags="1"),
           memc(b, "PUT", b"z" * (lim - 3), "/memcb", cmd="set", key="big", flags="1"),
           memc(b, "PUT", b"z" * 1100000, "/memcb", cmd="set", key="huge"),
           memc(b, cmd="get", key="huge")]
    g = memc(b, cmd="get", key="big")
    out.append({"status": g["status"], "len_ok": g["body"] == short(b"z" * (lim - 4))})
    return out


@case("B-body-binary-500KB")
def _(b):
    v = bytes(range(256)) * 2000 + b"\r\nEND\r\n"
    r = [memc(b, "PUT", v, "/memcb", cmd="set", key="bin")]
    g = memc(b, cmd="get", key="bin")
    g["equal"] = g["body"] == short(v)
    return r + [g]


@case("B-method-derived")
def _(b):
    return [b.http("/memcm?key=m1", "PUT", b"put-body"), b.http("/memcm?key=m1"),
            b.http("/memcm?key=m1", "POST", b"post-body"), b.http("/memcm?key=m2", "POST", b"p2"),
            b.http("/memcm?key=m1", "DELETE"), b.http("/memcm?key=m1"),
            b.http("/memcm?key=m1", "HEAD")]


@case("B-flags-last-modified")
def _(b):
    return [memc(b, cmd="set", key="lm", val="x", flags="1700000000"),
            b.http("/memclm?key=lm"), memc(b, cmd="get", key="lm")]


@case("B-exptime")
def _(b):
    r = [memc(b, cmd="set", key="e1", val="x", exptime="1"),
         memc(b, cmd="set", key="e3", val="x", exptime="3"),
         memc(b, cmd="set", key="eneg", val="x", exptime="-1"),
         memc(b, cmd="get", key="e3")]
    time.sleep(2.2)
    return r + [memc(b, cmd="get", key="e1"), memc(b, cmd="get", key="eneg")]


@case("B-bad-args")
def _(b):
    return [memc(b, cmd="set", key="bf", val="x", flags="4294967296"),
            memc(b, cmd="get", key="bf"),
            memc(b, cmd="set", key="bf", val="x", flags="abc"),
            memc(b, cmd="set", key="be", val="x", exptime="abc"),
            memc(b, cmd="set", key="", val="x"),
            memc(b, cmd="get", key="")]


@case("B-keepalive-upstream")
def _(b):
    k = "k" * 251
    seq = [dict(cmd="set", key="ka", val="1"), dict(cmd="incr", key="ka", val="2"),
           dict(cmd="get", key="ka"), dict(cmd="get", key="nope"),
           dict(cmd="set", key=k, val="x"),          # CLIENT_ERROR, data line not swallowed
           dict(cmd="get", key="ka"), dict(cmd="add", key="ka", val="x"),
           dict(cmd="set", key="s", val="abc"), dict(cmd="incr", key="s", val="1"),
           dict(cmd="get", key="ka"), dict(cmd="delete", key="ka"), dict(cmd="delete", key="ka"),
           dict(cmd="version"), dict(cmd="get", key="s")]
    out = [memc(b, loc="/memck", **kw) for kw in seq]
    for r in out:
        if r["body"].startswith("VERSION"):
            r["body"] = "VERSION <x>"
            r["headers"].pop("content-length", None)
    return out


# ---------------- (c) lua-resty-memcached ------------------------------------
for _t in ["basic", "cas", "incr", "touch", "flush", "stats", "limits", "quit"]:
    def _mk(t):
        def f(b):
            r = b.http(f"/lua?t={t}", full=True)
            lines = r.pop("body").split("\n")
            r["lines"] = [l for l in lines if not l.startswith("INFO ")]
            r["info"] = [l for l in lines if l.startswith("INFO ")]
            return r
        return f
    CASES.append((f"C-{_t}", _mk(_t)))


# ---------------- (d) srcache + memc ------------------------------------------
@case("D-srcache-basic")
def _(b):
    b.raw(b"flush_all\r\n")
    return [b.http("/page/p1"), b.http("/page/p1"), b.http("/page/p1", "HEAD")]


@case("D-srcache-stored-format")
def _(b):
    return b.raw(b"get /page/p1\r\n").decode("latin1")


@case("D-srcache-large")
def _(b):
    return [b.http("/page/big?size=600000"), b.http("/page/big?size=600000")]


@case("D-srcache-too-large")
def _(b):
    return [b.http("/page/huge?size=1100000"), b.http("/page/huge?size=1100000")]


@case("D-srcache-expiry")
def _(b):
    r = [b.http("/page/exp?exp=1"), b.http("/page/exp?exp=1")]
    time.sleep(2.2)
    return r + [b.http("/page/exp?exp=1")]


@case("D-srcache-after-flush")
def _(b):
    b.raw(b"flush_all\r\n")
    return b.http("/page/p1")


# ============================================================================
def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--larder", required=True)
    ap.add_argument("--out", default=None, help="where results go (default: a new temporary directory)")
    ap.add_argument("--no-waits", action="store_true", help="leave out the cases that sleep for expiry")
    ap.add_argument("--only", default="")
    ap.add_argument("--allow", default="", help="comma-separated cases whose difference is known")
    a = ap.parse_args()
    if a.out is None:
        import tempfile
        a.out = tempfile.mkdtemp(prefix="nginx-probe-")
    os.makedirs(a.out, exist_ok=True)
    print(f"results in {a.out}", flush=True)
    bks = {}
    try:
        for name, cfg in BACKENDS.items():
            bks[name] = Backend(name, cfg, a.out, a.larder)
        results = []
        for cname, f in CASES:
            if not cname.startswith(a.only) or (a.no_waits and cname in WAITS):
                continue
            row = {"case": cname}
            for name, b in bks.items():
                m = b.marks()
                try:
                    obs = f(b)
                except Exception as e:   # noqa
                    obs = {"exception": repr(e)}
                wire, errs = b.slice(m)
                row[name] = {"obs": obs, "nginx_errors": errs,
                             "wire": [(c, d, base64.b64encode(x).decode()) for c, d, x in wire]}
            ob = [json.dumps([strip_info(row[n]["obs"]), row[n]["nginx_errors"]], sort_keys=True)
                  for n in bks]
            row["same"] = ob[0] == ob[1]
            nw = [norm_wire(row[n]["wire"]) for n in bks]
            row["wire_same"] = nw[0] == nw[1]
            row["conns"] = [len({c for c, _, _ in row[n]["wire"]}) for n in bks]
            print(("SAME " if row["same"] else "DIFF ") + cname +
                  ("" if row["wire_same"] else "   (wire bytes differ)"), flush=True)
            results.append(row)
        json.dump(results, open(os.path.join(a.out, "results.json"), "w"), indent=1)
        write_reports(results, a.out)
        allow = set(filter(None, a.allow.split(",")))
        bad = [r["case"] for r in results if not r["same"] and r["case"] not in allow]
        print(f"{len(results) - len(bad)} passed, {len(bad)} failed")
        return 1 if bad else 0
    finally:
        for b in bks.values():
            b.stop()
        time.sleep(0.5)
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()


def norm_wire(wire):
    """Per-direction byte streams per connection, with CAS uniques, stats and
    version bodies normalised (they legitimately differ between servers)."""
    streams = {}
    for c, d, x in wire:
        streams[(c, d)] = streams.get((c, d), b"") + base64.b64decode(x)
    out = []
    for (c, d), x in sorted(streams.items()):
        x = re.sub(rb"(VALUE \S+ \d+ \d+) \d+\r\n", rb"\1 <cas>\r\n", x)
        x = re.sub(rb"(?m)^(cas \S+ \d+ -?\d+ \d+) \d+", rb"\1 <cas>", x)
        x = re.sub(rb"(?m)^STAT [^\r]*\r\n", b"", x)
        x = re.sub(rb"VERSION [^\r]*", b"VERSION <v>", x)
        x = re.sub(rb"set af 0 \d+ ", b"set af 0 <now+100> ", x)   # C-touch absolute time
        out.append((d, x))
    return out


def strip_info(o):
    """'info' entries are recorded but not compared (server identity, stat names)."""
    if isinstance(o, dict):
        return {k: strip_info(v) for k, v in o.items() if k != "info"}
    if isinstance(o, list):
        return [strip_info(x) for x in o]
    return o


def wire_text(wire, limit=600):
    out = []
    for c, d, x in wire:
        x = base64.b64decode(x)
        s = repr(x[:limit]) + (f"...(+{len(x) - limit} bytes)" if len(x) > limit else "")
        out.append(f"  conn{c} {'>' if d == 'c2s' else '<'} {s}")
    return "\n".join(out)


def write_reports(results, out):
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write("| case | same? | memcached | larder |\n|---|---|---|---|\n")
        for r in results:
            def summ(o):
                obs = o["obs"]
                obs = obs if isinstance(obs, list) else [obs]
                return f"({len({c for c, _, _ in o['wire']})} conns) " + " ".join(str(x.get("status", "?")) if isinstance(x, dict) else "raw" for x in obs)
            f.write(f"| {r['case']} | {'yes' if r['same'] else '**NO**'}"
                    f"{'' if r['wire_same'] else ' (wire differs)'} | "
                    f"{summ(r['memcached'])} | {summ(r['larder'])} |\n")
    with open(os.path.join(out, "diffs.md"), "w") as f:
        for r in results:
            if r["same"] and r["wire_same"]:
                continue
            f.write(f"## {r['case']}\n")
            for n in ("memcached", "larder"):
                f.write(f"### {n}\nobs: {json.dumps(r[n]['obs'], indent=1)}\n"
                        f"nginx errors: {r[n]['nginx_errors']}\nwire:\n{wire_text(r[n]['wire'])}\n\n")


if __name__ == "__main__":
    sys.exit(main())
