"""Helpers shared by the server suites: sockets with timeouts, replies, RSS."""

import socket
import time

TIMEOUT = 10.0


def connect(port, timeout=TIMEOUT):
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_until(sock, ends=(b"\r\n",), limit=64 << 20):
    """Reads until the reply ends with one of `ends`, the peer closes, or
    the timeout; returns (data, closed)."""
    data = b""
    while not any(data.endswith(e) for e in ends):
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            return data, False
        except ConnectionResetError:
            return data, True
        if not chunk:
            return data, True
        data += chunk
        if len(data) > limit:
            raise AssertionError("reply larger than %d bytes" % limit)
    return data, False


def read_to_close(sock, deadline):
    """Reads and discards until the peer closes; True if it did before
    `deadline` (a time.monotonic() value)."""
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(1 << 16)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return True
        if not chunk:
            return True
    return False


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def stats(port):
    sock = connect(port)
    try:
        sock.sendall(b"stats\r\n")
        data, _ = read_until(sock, (b"END\r\n",))
    finally:
        sock.close()
    out = {}
    for line in data.decode().splitlines():
        parts = line.split(" ", 2)
        if len(parts) == 3 and parts[0] == "STAT":
            out[parts[1]] = parts[2]
    return out


def answers_version(port):
    try:
        sock = connect(port, timeout=5)
        try:
            sock.sendall(b"version\r\n")
            data, _ = read_until(sock)
        finally:
            sock.close()
        return data.startswith(b"VERSION ")
    except OSError:
        return False


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on (at the moment)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class DiffPeer:
    """One of the two servers a differential test talks to: its connection,
    each key's latest CAS unique, and the uniques it has handed out, named
    in the order first seen so that two servers' numbers compare."""

    def __init__(self, port):
        self.port = port
        self.cas_names = {}
        self.last_cas = {}
        self.connect()

    def connect(self):
        self.sock = connect(self.port, timeout=5)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def cas_name(self, cas):
        """`cas` as a name (0, "no CAS", stays b"0")."""
        if cas == 0:
            return b"0"
        if cas not in self.cas_names:
            self.cas_names[cas] = b"cas#%d" % len(self.cas_names)
        return self.cas_names[cas]

    def forget(self):
        """Drops what the peer learned (after both servers were flushed)."""
        self.last_cas.clear()
        self.cas_names.clear()


FAILED = []


def check(what, got, want):
    """Prints `PASS what`, or `FAIL what` with both values, and remembers a
    failure for `exit_if_failed`."""
    ok = got == want
    print("%s %s" % ("PASS" if ok else "FAIL", what) + ("" if ok else ": got %r, want %r" % (got, want)))
    if not ok:
        FAILED.append(what)


def exit_if_failed():
    """Exits 1, naming them, if any `check` failed."""
    if FAILED:
        print("%d check(s) failed: %s" % (len(FAILED), ", ".join(FAILED)))
        raise SystemExit(1)
