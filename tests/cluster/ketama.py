"""twemproxy's ketama ring (distribution: ketama, hash: fnv1a_64), in Python.

An independent second implementation of what src/ring.rs does, so the cluster
test can check nutcracker, larder::ring (through examples/ring_route.rs) and
this file against each other. See src/ring.rs for the rules and why.
"""
import bisect
import hashlib
import math
import struct

POINTS_PER_SERVER = 160


def fnv1a_64(key: bytes) -> int:
    """twemproxy's fnv1a_64: 32-bit FNV-1a with the 64-bit constants' low
    halves, each byte sign-extended as a C char."""
    h = 0x84222325
    for b in key:
        h ^= b | 0xFFFFFF00 if b >= 0x80 else b
        h = (h * 0x1B3) & 0xFFFFFFFF
    return h


def _f32(x: float) -> float:
    return struct.unpack("f", struct.pack("f", x))[0]


def points_for(weight: int, total: int, live: int) -> int:
    """twemproxy's per-server point count, with its single-precision steps."""
    pct = _f32(_f32(weight) / _f32(total))
    scaled = _f32(_f32(_f32(pct * 160.0) / 4.0) * _f32(live))
    nudged = _f32(scaled + 0.0000000001)

    return int(math.floor(nudged)) * 4


def point_id(addr: str, name=None) -> str:
    if name:
        return name
    if addr.startswith("/"):
        return addr + ":"
    host, port = addr.rsplit(":", 1)
    return host if port == "11211" else addr


class Ring:
    """servers: list of (addr, weight, name-or-None); live: indices with points."""

    def __init__(self, servers, live=None):
        self.n = len(servers)
        live = set(range(self.n)) if live is None else set(live)
        total = sum(servers[i][1] for i in live)
        points = []
        for i, (addr, weight, name) in enumerate(servers):
            if i not in live:
                continue
            ident = point_id(addr, name)
            for j in range(points_for(weight, total, len(live)) // 4):
                digest = hashlib.md5(f"{ident}-{j}".encode()).digest()
                for k in range(4):
                    points.append((struct.unpack_from("<I", digest, 4 * k)[0], i))
        points.sort()
        self.values = [v for v, _ in points]
        self.owners = [i for _, i in points]

    def hash(self, key: bytes) -> int:
        return 0 if self.n == 1 or not key else fnv1a_64(key)

    def node_for(self, key: bytes) -> int:
        at = bisect.bisect_left(self.values, self.hash(key))
        return self.owners[at if at < len(self.values) else 0]
