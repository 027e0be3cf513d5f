#!/usr/bin/env python3
"""SASL (-S) exchanges sent to a real memcached and to larder-server, reply by
reply, each on a fresh connection: the SASL commands before and after
authenticating, requests refused before it, a wrong password, an
authorization identity, a mechanism the server does not offer or one whose
name is too long, a step with nothing to continue; then the auth_cmds and
auth_errors counters over all of them.

memcached must be started with -S and a Cyrus SASL configuration that
offers PLAIN for the user; larder-server with -S and a password file for the
same user. Each reply is compared as (opcode, status, body, whether a CAS was
set), with whether the server closed the connection after it.

    python3 differential_sasl.py --memcached PORT --larder PORT --user U --password P
"""

import argparse
import socket
import struct
import sys

HEADER = ">BBHBBHIIQ"


def packet(opcode, key=b"", extras=b"", value=b""):
    body = len(extras) + len(key) + len(value)
    return struct.pack(HEADER, 0x80, opcode, len(key), len(extras), 0, 0, body, 0x1234, 0) \
        + extras + key + value


def exchanges(user, password):
    plain = b"\0" + user + b"\0" + password
    wrong = b"\0" + user + b"\0" + password + b"-no"
    auth = packet(0x21, b"PLAIN", value=plain)
    return {
        "before authenticating: VERSION and SASL_LIST_MECHS only": [
            packet(0x0B), packet(0x20), packet(0x00, b"k"), packet(0x0A)],
        "a wrong password, then the right one, then commands": [
            packet(0x21, b"PLAIN", value=wrong), auth,
            packet(0x01, b"k", struct.pack(">II", 0, 0), b"v"), packet(0x00, b"k")],
        "a step with nothing to continue": [packet(0x22, b"PLAIN", value=plain), packet(0x0A)],
        "a mechanism not offered": [packet(0x21, b"CRAM-MD5"), packet(0x0A)],
        "a mechanism name over 32 bytes": [packet(0x21, b"M" * 33), packet(0x0A)],
        "the user as authorization identity": [
            packet(0x21, b"PLAIN", value=user + plain), packet(0x0A)],
        "another authorization identity": [
            packet(0x21, b"PLAIN", value=b"admin" + plain), packet(0x0A)],
        "an unknown opcode before authenticating": [packet(0x40)],
        "NOOP before authenticating": [packet(0x0A)],
        "STAT before authenticating": [packet(0x10)],
        "a failed authentication after a good one": [auth, packet(0x21, b"PLAIN", value=wrong),
                                                     packet(0x0A)],
        "a second good authentication": [auth, auth, packet(0x0A)],
        "PLAIN in two steps: an empty SASL_AUTH, then the message": [
            packet(0x21, b"PLAIN"), packet(0x22, b"PLAIN", value=plain), packet(0x00, b"k")],
        "PLAIN in two steps with a wrong password": [
            packet(0x21, b"PLAIN"), packet(0x22, b"PLAIN", value=wrong), packet(0x0A)],
        "two empty SASL_AUTHs, then the message": [
            packet(0x21, b"PLAIN"), packet(0x21, b"PLAIN"), packet(0x22, b"PLAIN", value=plain),
            packet(0x0A)],
        "SASL_LIST_MECHS after authenticating": [auth, packet(0x20), packet(0x0A)],
    }


def converse(port, requests):
    """The replies to `requests` on a new connection, and whether it closed."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"".join(requests))
    sock.settimeout(0.5)
    buf, closed = b"", False
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                closed = True
                break
            buf += chunk
    except socket.timeout:
        pass
    sock.close()
    replies = []
    while len(buf) >= 24:
        _, opcode, key_len, extras_len, _, status, body_len, _, cas = struct.unpack(HEADER, buf[:24])
        body = buf[24:24 + body_len]
        replies.append((opcode, status, body[extras_len + key_len:], cas != 0))
        buf = buf[24 + body_len:]
    return replies, closed


def auth_counters(port, user, password):
    auth = packet(0x21, b"PLAIN", value=b"\0" + user + b"\0" + password)
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(auth + packet(0x10))
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        # The STAT list ends with a packet without a key.
        if buf.endswith(struct.pack(">II", 0x1234, 0) + b"\0" * 4) and len(buf) > 48:
            break
    sock.close()
    stats = {}
    while len(buf) >= 24:
        _, _, key_len, extras_len, _, _, body_len, _, _ = struct.unpack(HEADER, buf[:24])
        body = buf[24:24 + body_len]
        if key_len:
            stats[body[extras_len:extras_len + key_len]] = body[extras_len + key_len:]
        buf = buf[24 + body_len:]
    return stats.get(b"auth_cmds"), stats.get(b"auth_errors")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--memcached", type=int, required=True)
    parser.add_argument("--larder", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    args = parser.parse_args()
    user, password = args.user.encode(), args.password.encode()
    failed = 0
    for name, requests in exchanges(user, password).items():
        theirs = converse(args.memcached, requests)
        ours = converse(args.larder, requests)
        if theirs == ours:
            print("SAME %s" % name)
        else:
            failed += 1
            print("DIFF %s\n  memcached: %r\n  larder:    %r" % (name, theirs, ours))
    theirs = auth_counters(args.memcached, user, password)
    ours = auth_counters(args.larder, user, password)
    if theirs == ours:
        print("SAME auth_cmds, auth_errors: %s" % (theirs,))
    else:
        failed += 1
        print("DIFF auth_cmds, auth_errors\n  memcached: %r\n  larder:    %r" % (theirs, ours))
    print("sasl differential: %d exchanges differ" % failed)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
