"""Differential test: the same random text and meta commands sent to a real
memcached and to larder-server, reply by reply.

Each command is followed by `mn` and the reply is read up to `MN`, so
replies line up one for one. Keys come from a small set so that commands
meet each other's items; values are short letters or numbers (for incr).
CAS uniques are compared through a per-server map (the nth distinct CAS a
server hands out is "cas#n" for both), and a `cas`/`ms C`/`md C`/`ma C`
sent to a server uses that server's own unique for the key (the latest, an
older one, a newer one, or 0), so a compare-and-swap that succeeds on one
succeeds on the other. Remaining TTLs (`t`) and seconds since the last access
(`l`) are compared in tens of seconds (the servers' clocks tick apart).
Numbers live on the `n` keys and text on the `k` keys, and the `n` keys'
sizes are not compared: a counter memcached shortens may or may not be
padded to its old length (see `unpad`). After any difference, explained or
not, both servers are flushed so that it is reported once.

Every difference is printed with the commands before it; the exit status is
1 if any reply differs, unless it matches a documented difference
(KNOWN below, each with its reason).

    python3 differential.py --memcached PORT --larder PORT [--seed S] [--count N]
"""

import argparse
import base64
import random
import re
import socket
import sys

from common import DiffPeer

KEYS = [b"k%d" % i for i in range(6)] + [b"n0", b"n1"]

# Replies that may differ, each with why: (regex on the command, regex on
# memcached's reply, regex on larder's reply, reason). Debian's memcached is
# 1.6.18; where it departs from doc/protocol.txt of later versions, larder
# follows the document.
KNOWN = [
    (rb"^mg .* E\d+", rb"^CLIENT_ERROR invalid flag\r\n$", rb"^(HD|VA|EN)",
     "mg's E flag (new CAS if the item is created) is in later versions' protocol.txt, "
     "not in 1.6.18"),
    (rb"^ma \S+( \S+)* q( |\r)", rb"^(HD( .*)?|VA .*\r\n\S*)\r\n$", rb"^$",
     "q hides a success of ma; 1.6.18 still answers for an item N created"),
    (rb"^mg \S+( \S+)* N\d+", rb"^HD .*t-1 .*W", rb"^HD .*t\d+ .*W",
     "mg N creates the item with N's TTL; 1.6.18's t says -1 on that reply"),
    (rb"^ms \S+ \d+( \S+)* (MA|MP)( \S+)* N\d+|^ms \S+ \d+( \S+)* N\d+( \S+)* (MA|MP)",
     rb"^NS", rb"^(HD|$)",
     "ms N in append mode creates a missing item (protocol.txt); 1.6.18 answers NS"),
]


COUNTER_CHANGE = re.compile(rb"^(incr|decr|ma) ")


BIG_NUMBER_BUG = ("incr/decr of a number from 2^63: 1.6.18 looks for a '-' past the value's end "
                  "(strchr on unterminated item memory), so stale bytes can make it non-numeric")


def big_number_bug(command, mc_reply, larder_reply, recent):
    """memcached 1.6.18's safe_strtoull checks a number of 2^63 or more for a
    minus sign with strchr() over the item's data, which is not
    NUL-terminated: the scan runs on into whatever bytes follow the value in
    its slab chunk, and a '-' there makes the number "non-numeric". Whether
    it happens depends on memory left by earlier items, so a run can see it
    or not. Recognised when memcached says non-numeric, larder counted, and
    the key held such a number (set since the last resync, or larder's
    result is one)."""
    if not COUNTER_CHANGE.match(command):
        return False
    if b"non-numeric" not in mc_reply or b"ERROR" in larder_reply:
        return False
    big = [int(n) for c in recent for n in re.findall(rb"\b\d{19,20}\b", c)]
    big += [int(n) for n in re.findall(rb"^\d{19,20}(?=\r\n)", larder_reply)]
    return any(2**63 <= n < 2**64 for n in big)


def known(command, mc_reply, larder_reply, recent=()):
    """Why a difference is expected, or None. The replies are normalized
    (CAS names, TTLs in tens of seconds); `recent`: the commands since the
    last resync that named the same key."""
    # memcached changes a number in place (the item keeps its fetched, stale
    # and win-token marks) only when nothing else references the item; a
    # fetch shortly before leaves a reference until its LRU thread runs, and
    # then the number is a new item without them. Which one happened depends
    # on that thread's timing, so those marks are not compared after a
    # counter change.
    def marks_off(reply):
        return re.sub(rb" [XWZ](?=[ \r])", b"", re.sub(rb"\bh[01]", b"h", reply))
    if (any(COUNTER_CHANGE.match(c) for c in recent)
            and marks_off(mc_reply) == marks_off(larder_reply)):
        return "h/X/W/Z after an incr/decr (memcached's in-place change depends on its LRU thread)"
    # With `b` (a base64 key), larder returns `k` in base64 followed by `b`,
    # as protocol.txt says; 1.6.18 returns the decoded key and no `b`.
    if re.match(rb"^m[gdas] \S+ .*\bb\r\n$", command):
        def decoded(m):
            try:
                return b"k" + base64.b64decode(m.group(1), validate=True)
            except ValueError:
                return m.group(0)
        plain = re.sub(rb"\bk([A-Za-z0-9+/=]+) b\b", decoded, larder_reply)
        if plain == mc_reply:
            return "a base64 key's k: larder answers in base64 with b (protocol.txt), 1.6.18 decoded"
    m = re.match(rb"^(?:(?:set|add|replace|append|prepend|cas) \S+ (\d+) |ms \S+ \d+ .*F(\d+))", command)
    flags_sent = m and int(m.group(1) or m.group(2))
    if flags_sent and 0xFFFFFFFF < flags_sent < 2**64 and b"CLIENT_ERROR bad command line format" in larder_reply:
        return ("client flags past 2^32-1: 1.6.18 stores their low 32 bits, larder refuses them "
                "(CLIENT_ERROR)")
    if big_number_bug(command, mc_reply, larder_reply, recent):
        return BIG_NUMBER_BUG
    for cmd_re, mc_re, ld_re, why in KNOWN:
        if (re.search(cmd_re, command) and re.search(mc_re, mc_reply)
                and re.search(ld_re, larder_reply)):
            return why
    return None


class Server(DiffPeer):
    def ask(self, req):
        """Sends `req` then `mn`; returns the reply before `MN`, or
        (reply, 'closed') if the server closed the connection."""
        try:
            self.sock.sendall(req + b"mn\r\n")
        except OSError:
            self.connect()
            return b"<closed before the request>"
        data = self.buf
        while True:
            at = data.find(b"MN\r\n")
            # MN must start a line.
            while at > 0 and data[at - 2:at] != b"\r\n":
                at = data.find(b"MN\r\n", at + 1)
            if at >= 0:
                self.buf = data[at + 4:]
                return data[:at]
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                self.connect()
                return data + b"<timeout>"
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.connect()
                return data + b"<closed>"
            data += chunk



PADDED = re.compile(rb"(VALUE \S+ \d+ |VA )(\d+)((?: [^\r\n]*)?\r\n)(\d+) +\r\n")


def unpad(reply):
    """A number an incr/decr shortened may or may not be padded with spaces
    to its old length (protocol.txt: the server MAY pad; memcached pads when
    it changes the item in place, which depends on its internal references):
    compares the digits only."""
    def repl(m):
        digits = m.group(4)
        size = str(len(digits)).encode()
        flags = re.sub(rb" s\d+", b" s" + size, m.group(3))
        return m.group(1) + size + flags + digits + b"\r\n"
    return PADDED.sub(repl, reply)


def normalize(server, reply, key_of_line=None):
    """Replaces CAS uniques by names, remembers each key's latest CAS, and
    rounds remaining TTLs (meta `t` flag) to tens of seconds."""
    out = []
    for line in unpad(reply).split(b"\r\n"):
        m = re.match(rb"^VALUE (\S+) (\d+) (\d+) (\d+)$", line)
        if m:
            cas = int(m.group(4))
            server.last_cas[m.group(1)] = cas
            line = b"VALUE %s %s %s %s" % (m.group(1), m.group(2), m.group(3), server.cas_name(cas))
        elif re.match(rb"^(VA|HD|EN|NS|EX|NF|OK) ?", line) and not line.startswith(b"VALUE"):
            words = line.split(b" ")
            key = None
            for w in words[1:]:
                if w.startswith(b"k") and len(w) > 1:
                    key = w[1:]
            new = []
            for w in words:
                if len(w) > 1 and w[:1] == b"c" and w[1:].isdigit() and w is not words[0]:
                    cas = int(w[1:])
                    if key_of_line is not None:
                        server.last_cas[key or key_of_line] = cas
                    w = b"c" + server.cas_name(cas)
                elif (w[:1] == b"s" and w[1:].isdigit() and w is not words[0]
                      and (key_of_line or key or b"").startswith(b"n")):
                    w = b"s*"
                elif len(w) > 1 and w[:1] == b"l" and w[1:].isdigit() and w is not words[0]:
                    # Seconds since the last access: the servers' clocks
                    # tick apart, so only small values are compared.
                    w = b"l%d" % (int(w[1:]) // 10)
                elif len(w) > 1 and w[:1] == b"t" and w[1:].lstrip(b"-").isdigit() and w is not words[0]:
                    t = int(w[1:])
                    w = b"t%d" % (t if t <= 0 else (t + 5) // 10)
                new.append(w)
            line = b" ".join(new)
        out.append(line)
    return b"\r\n".join(out)


def value(rng, numeric):
    if numeric:
        return str(rng.choice([0, 1, 7, 99, 18446744073709551615, 18446744073709551614])).encode()
    return bytes(rng.choice(b"abcxyz") for _ in range(rng.choice([0, 1, 3, 10])))


def ttl(rng):
    return rng.choice([0, 0, 0, 100, 3600, -1])


def flags(rng):
    return rng.choice([0, 0, 1, 4294967295])


def text_command(rng, cas_of):
    key = rng.choice(KEYS)
    # Numbers live on the n keys, text on the k keys: a counter memcached
    # shortens may or may not be padded to its old length (see unpad), so
    # n keys are never appended to and their sizes are not compared.
    numeric = key.startswith(b"n")
    v = value(rng, numeric)
    nr = b" noreply" if rng.random() < 0.15 else b""
    kind = rng.randrange(18)
    if kind == 16:
        return malformed(rng, key)
    if kind == 17:
        # Commands about the server rather than an item (the ones whose
        # replies do not carry the server's own figures; not `me`, whose
        # fields are each server's internals).
        return rng.choice([
            b"verbosity 1\r\n", b"verbosity 0 noreply\r\n", b"flush_all\r\n",
            b"flush_all 0\r\n", b"flush_all noreply\r\n", b"stats reset\r\n",
            b"stats detail on\r\n", b"stats detail off\r\n", b"cache_memlimit 100\r\n",
            b"cache_memlimit 100 noreply\r\n",
        ])
    if kind < 5:
        verbs = [b"set", b"add", b"replace"] + ([] if numeric else [b"append", b"prepend"])
        verb = rng.choice(verbs)
        return b"%s %s %d %d %d%s\r\n%s\r\n" % (verb, key, flags(rng), ttl(rng), len(v), nr, v)
    if kind == 5:
        unique = cas_of(key, rng)
        return b"cas %s %d %d %d %s%s\r\n%s\r\n" % (key, flags(rng), ttl(rng), len(v), unique, nr, v)
    if kind == 6:
        keys = b" ".join(rng.choice(KEYS) for _ in range(rng.randrange(1, 4)))
        return b"%s %s\r\n" % (rng.choice([b"get", b"gets"]), keys)
    if kind == 7:
        keys = b" ".join(rng.choice(KEYS) for _ in range(rng.randrange(1, 3)))
        return b"%s %d %s\r\n" % (rng.choice([b"gat", b"gats"]), ttl(rng), keys)
    if kind == 8:
        return b"delete %s%s\r\n" % (key, nr)
    if kind == 9:
        delta = rng.choice([b"0", b"1", b"5", b"18446744073709551615", b"-1", b"x"])
        return b"%s %s %s%s\r\n" % (rng.choice([b"incr", b"decr"]), key, delta, nr)
    if kind == 10:
        return b"touch %s %d%s\r\n" % (key, ttl(rng), nr)
    if kind == 11:
        return in_base64(rng, meta_get(rng, key))
    if kind == 12:
        return meta_set(rng, key, v, cas_of)
    if kind == 13:
        return in_base64(rng, meta_delete(rng, key, cas_of))
    if kind == 14:
        return meta_arith(rng, key, cas_of)
    return b"mg %s %s\r\n" % (key, b" ".join(rng.sample([b"v", b"k", b"f", b"s", b"O1"], 2)))


def malformed(rng, key):
    """A request with something wrong in it: every server answers it with an
    error line (and keeps the connection)."""
    long_key = b"x" * 251
    return rng.choice([
        b"get\r\n",
        b"gets\r\n",
        b"get %s\r\n" % long_key,
        b"set %s 0 0 1\r\nx\r\n" % long_key,
        b"delete\r\n",
        b"delete %s 0\r\n" % key,
        b"delete %s 5\r\n" % key,
        b"delete %s noreply extra\r\n" % key,
        b"incr %s\r\n" % key,
        b"incr\r\n",
        b"touch %s\r\n" % key,
        b"touch %s abc\r\n" % key,
        b"gat %s\r\n" % key,
        b"gat abc %s\r\n" % key,
        b"bogus %s\r\n" % key,
        b"SET %s 0 0 1\r\nx\r\n" % key,
        b"mg\r\n",
        b"mg %s v v\r\n" % key,
        b"mg %s zz\r\n" % key,
        b"mg %s !\r\n" % key,
        b"md\r\n",
        b"ma\r\n",
        b"ma %s Dabc\r\n" % key,
        b"ma %s MZ\r\n" % key,
        b"ms %s\r\n" % key,
        b"ms %s abc\r\nx\r\n" % key,
        b"ms %s 1 MZ\r\nx\r\n" % key,
        b"ms %s 1 Fabc\r\nx\r\n" % key,
        b"ms %s 1 Tabc\r\nx\r\n" % key,
        b"mg %s Tabc\r\n" % key,
        b"mg %s %s\r\n" % (long_key, b"v"),
        b"verbosity\r\n",
        b"verbosity 1 2 3\r\n",
        b"flush_all abc\r\n",
        b"flush_all noreply extra\r\n",
        b"cas %s 0 0 1\r\nx\r\n" % key,
        b"cas %s 0 0 1 abc\r\nx\r\n" % key,
        b"set %s 0 0\r\n" % key,
        b"set %s abc 0 1\r\nx\r\n" % key,
        b"set %s 0 abc 1\r\nx\r\n" % key,
        b"set %s 4294967296 0 1\r\nx\r\n" % key,
        b"set %s 0 0 -1\r\n" % key,
        b"set %s 0 0 1\r\nxyz\r\n" % key,
        b"incr %s 18446744073709551616\r\n" % key,
        b"decr %s abc\r\n" % key,
        b"\r\n",
        b"ms %s 1 F4294967296\r\nx\r\n" % key,
    ])


def in_base64(rng, line):
    """Now and then the same meta command with its key in base64 (`b`)."""
    if rng.random() >= 0.15:
        return line
    verb, key, rest = line.split(b" ", 2) if line.count(b" ") >= 2 else (*line[:-2].split(b" ", 1), b"")
    rest = rest.rstrip(b"\r\n")
    encoded = base64.b64encode(key)
    return b" ".join(p for p in (verb, encoded, rest, b"b") if p) + b"\r\n"


def pick(rng, options, most):
    return rng.sample(options, rng.randrange(0, most + 1))


def meta_get(rng, key):
    fl = pick(rng, [b"v", b"k", b"f", b"s", b"c", b"t", b"q", b"Oab", b"T30", b"N30", b"h", b"u", b"l"], 4)
    return b"mg %s%s\r\n" % (key, b"".join(b" " + f for f in fl))


def meta_set(rng, key, v, cas_of):
    modes = [b"MS", b"ME", b"MR"] + ([] if key.startswith(b"n") else [b"MA", b"MP"])
    fl = pick(rng, [b"c", b"k", b"q", b"Oab", b"T0", b"T100", b"F5", b"I", b"N50"] + modes, 3)
    if rng.random() < 0.2:
        fl.append(b"C" + cas_of(key, rng))
    return b"ms %s %d%s\r\n%s\r\n" % (key, len(v), b"".join(b" " + f for f in fl), v)


def meta_delete(rng, key, cas_of):
    fl = pick(rng, [b"q", b"k", b"Oab", b"I", b"T30"], 2)
    if rng.random() < 0.2:
        fl.append(b"C" + cas_of(key, rng))
    return b"md %s%s\r\n" % (key, b"".join(b" " + f for f in fl))


def meta_arith(rng, key, cas_of):
    # No T: 1.6.18 loses an ma's T when the number grows (it applies T to
    # the item the new number replaced), which shows as a TTL difference
    # commands later.
    fl = pick(rng, [b"v", b"c", b"t", b"k", b"q", b"N0", b"J13", b"D3", b"MI", b"MD", b"Oab"], 3)
    if rng.random() < 0.2:
        fl.append(b"C" + cas_of(key, rng))
    return b"ma %s%s\r\n" % (key, b"".join(b" " + f for f in fl))


def cas_placeholder(key, rng):
    """A CAS for `key` that each server fills in from its own uniques: the
    key's latest (=), one older (-), one newer than any it handed out (+),
    or 0. The servers number their uniques differently, so a fixed number
    would compare differently on each."""
    return b"\x00CAS" + bytes([rng.choice(b"===-+0")]) + b":" + key + b"\x00"


def concrete_cas(server, m):
    kind, key = m.group(1), m.group(2)
    latest = server.last_cas.get(key, 1)
    value = {b"=": latest, b"-": max(latest - 1, 1), b"+": latest + 10**9, b"0": 0}[kind]
    return str(value).encode()


def resync(*servers):
    """Empties both servers and forgets their CAS uniques, so that one
    difference (and the state it left apart) is not reported again on every
    later command."""
    for s in servers:
        s.ask(b"flush_all\r\n")
        s.forget()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--memcached", type=int, required=True)
    ap.add_argument("--larder", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--max-diffs", type=int, default=20)
    ap.add_argument("--context", type=int, default=12, help="earlier commands shown per difference")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    mc = Server(args.memcached)
    ld = Server(args.larder)
    for s in (mc, ld):
        s.ask(b"flush_all\r\n")
    history = []
    diffs = 0
    explained = {}
    for i in range(args.count):
        # The command is generated once, with a placeholder for a CAS the
        # servers fill in with their own unique for the key.
        req = text_command(rng, cas_placeholder)
        replies = []
        for s in (mc, ld):
            concrete = re.sub(rb"\x00CAS([-+=0]):(\S+?)\x00", lambda m: concrete_cas(s, m), req)
            key = req.split(b" ")[1].split(b"\r\n")[0] if b" " in req else None
            if key and req.split(b"\r\n")[0].endswith(b" b"):
                key = base64.b64decode(key)
            raw = s.ask(concrete)
            replies.append((concrete, raw, normalize(s, raw, key)))
        history.append((req, replies[0][1], replies[1][1]))
        if replies[0][2] != replies[1][2]:
            key = req.split(b"\r\n")[0].split(b" ")[1:]
            same = [h[0] for h in history[:-1] if set(key) & set(h[0].split(b"\r\n")[0].split(b" "))]
            why = known(replies[0][0], replies[0][2], replies[1][2], same)
            if why:
                explained[why] = explained.get(why, 0) + 1
                resync(mc, ld)
                history = []
                continue
            diffs += 1
            print("=" * 70)
            print("difference at command %d (seed %d):" % (i, args.seed))
            # The commands since the last resync that named the same key.
            key = req.split(b"\r\n")[0].split(b" ")[1:]
            same = [h for h in history[:-1] if set(key) & set(h[0].split(b"\r\n")[0].split(b" "))]
            for h in same[-(args.context):]:
                print("  before: %r -> mc %r | larder %r" % h)
            print("  command : %r" % replies[0][0])
            print("  memcached: %r" % replies[0][1])
            print("  larder   : %r" % replies[1][1])
            resync(mc, ld)
            history = []
            if diffs >= args.max_diffs:
                break
    for why, n in sorted(explained.items()):
        print("known difference, %d times: %s" % (n, why))
    print("%d commands, %d differences" % (i + 1, diffs))
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
