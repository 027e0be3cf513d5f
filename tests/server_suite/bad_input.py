#!/usr/bin/env python3
"""Bad-input suite for larder-server: hostile and malformed clients.

Each case sends something a well-behaved client never would and checks the
reply (memcached's error line, or that the connection is closed). After
every case the server must still answer `version` on a fresh connection,
and its resident memory must stay within the bound below.

RSS bound (documented): VmRSS <= RSS at the start of the suite
+ 1.2 x the memory limit (-m) + 64 MiB. The 64 MiB covers the per-connection
buffers of the cases that hold many connections (up to -c connections, each
up to ~2 x -I of input) and allocator slack; no case may grow memory with
the size of what it sends.

Two servers are used: the main one (normal limits, long idle timeout) and a
"short" one with a short --idle-timeout and a small -c for the slowloris,
never-reading and too-many-connections cases. The caller (ci/server_suite.sh)
starts both and passes their ports and PIDs.

Usage: bad_input.py --port P --pid PID --short-port P2 --short-pid PID2
                    --short-conns C --short-idle SECS --memory-mb M
Prints one line per case and a closing "N passed, N failed" line; exits 1 on
any failure.
"""

import argparse
import os
import random
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import answers_version, connect, read_to_close, read_until, rss_kib  # noqa: E402

CASES = []


def case(fn):
    CASES.append(fn)
    return fn


def exchange(port, payload, ends=(b"\r\n",), limit=64 << 20):
    sock = connect(port)
    try:
        sock.sendall(payload)
        return read_until(sock, ends, limit)
    finally:
        sock.close()


def expect(port, payload, reply, ends=(b"\r\n",)):
    data, closed = exchange(port, payload, ends)
    assert data == reply, "got %r (closed=%s), want %r" % (data[:300], closed, reply)


def expect_prefix(port, payload, prefix, ends=(b"\r\n",)):
    data, closed = exchange(port, payload, ends)
    assert data.startswith(prefix), "got %r (closed=%s), want %r..." % (data[:300], closed, prefix)


def expect_close(port, payload, prefix=b"", within=15):
    sock = connect(port)
    try:
        try:
            sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            return
        data, closed = read_until(sock, ends=(b"\0never",))
        assert closed, "still open after %r" % data[:200]
        assert data.startswith(prefix), "got %r, want %r..." % (data[:300], prefix)
    finally:
        sock.close()


BAD_FORMAT = b"CLIENT_ERROR bad command line format\r\n"
BAD_CHUNK = b"CLIENT_ERROR bad data chunk"
LINE_TOO_LONG = b"CLIENT_ERROR line too long"
TOO_LARGE = b"SERVER_ERROR object too large for cache\r\n"


# ---- keys ------------------------------------------------------------------

@case
def overlong_key_in_get(s):
    expect(s.port, b"get " + b"k" * 251 + b"\r\n", BAD_FORMAT)


@case
def overlong_key_in_set_then_the_data_line(s):
    # memcached answers the set line, then reads the data as a command.
    expect_prefix(s.port, b"set " + b"k" * 251 + b" 0 0 1\r\nx\r\nmn\r\n", BAD_FORMAT)


@case
def overlong_key_in_delete(s):
    expect(s.port, b"delete " + b"k" * 300 + b"\r\n", BAD_FORMAT)


@case
def overlong_key_in_meta_get(s):
    expect(s.port, b"mg " + b"k" * 251 + b" v\r\n", BAD_FORMAT)


@case
def key_of_exactly_250_bytes_is_fine(s):
    key = b"k" * 250
    expect(s.port, b"set " + key + b" 0 0 1\r\nx\r\nget " + key + b"\r\n",
           b"STORED\r\nVALUE " + key + b" 0 1\r\nx\r\nEND\r\n", ends=(b"END\r\n",))


# ---- byte counts -------------------------------------------------------------

@case
def negative_byte_count(s):
    expect(s.port, b"set k 0 0 -1\r\n", BAD_FORMAT)


@case
def huge_byte_count(s):
    expect(s.port, b"set k 0 0 99999999999999999999\r\n", BAD_FORMAT)


@case
def byte_count_above_the_item_limit_is_refused_and_its_data_skipped(s):
    size = 2 << 20
    payload = b"set big 0 0 %d\r\n" % size + b"x" * size + b"\r\nmn\r\n"
    expect(s.port, payload, TOO_LARGE + b"MN\r\n", ends=(b"MN\r\n",))


@case
def byte_count_just_above_the_item_limit_declared_but_never_sent(s):
    # The server must not wait for (or buffer) 1 GB.
    sock = connect(s.port)
    try:
        sock.sendall(b"set k 0 0 1073741824\r\n")
        data, _ = read_until(sock)
        assert data == TOO_LARGE, data
    finally:
        sock.close()


@case
def short_byte_count(s):
    expect_prefix(s.port, b"set k 0 0 2\r\nhello\r\n", BAD_CHUNK)


@case
def missing_crlf_after_data(s):
    expect_prefix(s.port, b"set k 0 0 5\r\nhelloXXget k\r\n", BAD_CHUNK)


@case
def data_ended_by_bare_newline(s):
    expect_prefix(s.port, b"set k 0 0 5\r\nhello\nX", BAD_CHUNK)


@case
def non_numeric_byte_count(s):
    expect(s.port, b"set k 0 0 five\r\n", BAD_FORMAT)


@case
def flags_out_of_range(s):
    expect(s.port, b"set k 4294967296 0 1\r\n", BAD_FORMAT)


@case
def negative_flags(s):
    expect(s.port, b"set k -1 0 1\r\n", BAD_FORMAT)


@case
def non_numeric_exptime(s):
    expect(s.port, b"set k 0 soon 1\r\n", BAD_FORMAT)


@case
def cas_without_unique(s):
    expect(s.port, b"cas k 0 0 1\r\n", b"ERROR\r\n")


@case
def cas_with_non_numeric_unique(s):
    expect(s.port, b"cas k 0 0 1 abc\r\n", BAD_FORMAT)


@case
def noreply_store_with_bad_data_chunk(s):
    # noreply silences the CLIENT_ERROR; the stray "\n" is then an empty
    # command line (memcached does the same).
    expect(s.port, b"set k 0 0 1 noreply\r\nxx\r\nmn\r\n", b"ERROR\r\nMN\r\n", ends=(b"MN\r\n",))


# ---- lines -------------------------------------------------------------------

@case
def line_over_the_limit_without_newline_closes(s):
    expect_close(s.port, b"a" * 5000, LINE_TOO_LONG)


@case
def line_over_the_limit_with_newline_closes(s):
    expect_close(s.port, b"set " + b"x" * 4000 + b"\r\n", LINE_TOO_LONG)


@case
def get_line_of_80_kb_is_answered_like_memcached(s):
    expect(s.port, b"get" + b" nx" * 27000 + b"\r\n", b"END\r\n", ends=(b"END\r\n",))


@case
def bare_newline_terminates_commands(s):
    expect(s.port, b"set k 0 0 1\nx\r\nget k\n", b"STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n",
           ends=(b"END\r\n",))


@case
def empty_line(s):
    expect(s.port, b"\r\n", b"ERROR\r\n")


@case
def only_spaces(s):
    expect(s.port, b"      \r\n", b"ERROR\r\n")


@case
def unknown_command(s):
    expect(s.port, b"frobnicate k\r\n", b"ERROR\r\n")


@case
def nul_bytes_in_a_line(s):
    expect_prefix(s.port, b"get \x00\x00\x00\r\nmn\r\n", b"", ends=(b"MN\r\n",))


@case
def a_megabyte_of_empty_lines(s):
    sock = connect(s.port)
    try:
        sock.sendall(b"\r\n" * (1 << 19) + b"mn\r\n")
        data, closed = read_until(sock, (b"MN\r\n",))
        assert not closed and data.endswith(b"MN\r\n"), (data[-50:], closed)
        assert data.count(b"ERROR\r\n") == 1 << 19
    finally:
        sock.close()


@case
def too_many_tokens(s):
    expect_prefix(s.port, b"set" + b" a" * 500 + b"\r\n", b"")


# ---- not memcached -------------------------------------------------------------

@case
def binary_garbage(s):
    rng = random.Random(7)
    payload = bytes(rng.randrange(256) for _ in range(8192))
    sock = connect(s.port, timeout=1)
    try:
        try:
            sock.sendall(payload + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            return
        read_until(sock, ends=(b"\0never",))  # whatever comes within 1 s
    finally:
        sock.close()


@case
def binary_protocol_get_miss(s):
    # A binary connection (first byte 0x80) is answered in binary: a GET miss
    # is status 1 with memcached's message; the stray "\r\n" after it is the
    # start of an incomplete header, so nothing more comes.
    key = b"binary-protocol-miss"
    header = struct.pack(">BBHBBHIIQ", 0x80, 0x00, len(key), 0, 0, 0, len(key), 7, 0) + key
    sock = connect(s.port)
    try:
        sock.sendall(header + b"\r\n")
        data, closed = read_until(sock, ends=(b"Not found",))
        want = struct.pack(">BBHBBHIIQ", 0x81, 0x00, 0, 0, 0, 1, 9, 7, 0) + b"Not found"
        assert data == want and not closed, (data, closed)
    finally:
        sock.close()


def expect_silent_close(port, payload):
    """memcached's answer to an HTTP request line: close, write nothing."""
    data, closed = exchange(port, payload, ends=(b"\0never",))
    assert closed and data == b"", "got %r (closed=%s), want a silent close" % (data[:300], closed)


@case
def http_request(s):
    expect_silent_close(s.port, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")


@case
def http_post_with_body(s):
    expect_silent_close(s.port, b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")


@case
def tls_client_hello(s):
    hello = bytes.fromhex("16030100a5010000a10303") + bytes(32) + b"\x00\x00\x02\x13\x01\x01\x00"
    sock = connect(s.port)
    try:
        sock.sendall(hello)
        sock.shutdown(socket.SHUT_WR)
        read_until(sock, ends=(b"\0never",))
    finally:
        sock.close()


# ---- multi-gets ------------------------------------------------------------------

@case
def multiget_of_8192_missing_keys(s):
    keys = b" ".join(b"k%d" % i for i in range(8192))
    expect(s.port, b"get " + keys + b"\r\n", b"END\r\n", ends=(b"END\r\n",))


@case
def multiget_of_30000_keys_is_answered(s):
    keys = b" ".join(b"%d" % i for i in range(30000))
    expect(s.port, b"get " + keys + b"\r\n", b"END\r\n", ends=(b"END\r\n",))


@case
def multiget_of_one_large_value_thousands_of_times(s):
    value = b"v" * 500_000
    sock = connect(s.port)
    try:
        sock.sendall(b"set mg 0 0 %d\r\n%s\r\n" % (len(value), value))
        data, _ = read_until(sock)
        assert data == b"STORED\r\n", data
        # 8000 x 500 kB = 4 GB of replies to one 24 kB line.
        sock.sendall(b"get" + b" mg" * 8000 + b"\r\n")
        total, tail = 0, b""
        while not tail.endswith(b"END\r\n"):
            chunk = sock.recv(1 << 20)
            assert chunk, "closed after %d bytes" % total
            total += len(chunk)
            tail = (tail + chunk)[-8:]
            if total > 50 << 20:
                break  # enough: the server streams it; stop reading
    finally:
        sock.close()


@case
def gets_with_no_key(s):
    expect(s.port, b"gets\r\n", b"ERROR\r\n")


# ---- arithmetic ------------------------------------------------------------------------

@case
def incr_of_a_non_numeric_value(s):
    expect(s.port, b"set word 0 0 3\r\nabc\r\nincr word 1\r\n",
           b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
           ends=(b"value\r\n",))


@case
def incr_with_a_non_numeric_delta(s):
    expect(s.port, b"incr n abc\r\n", b"CLIENT_ERROR invalid numeric delta argument\r\n")


@case
def incr_with_a_negative_delta(s):
    expect(s.port, b"incr n -1\r\n", b"CLIENT_ERROR invalid numeric delta argument\r\n")


@case
def incr_wraps_at_2_to_the_64(s):
    expect(s.port, b"set n 0 0 20\r\n18446744073709551615\r\nincr n 2\r\n",
           b"STORED\r\n1\r\n", ends=(b"\r\n1\r\n",))


@case
def decr_clamps_at_zero(s):
    expect(s.port, b"set d 0 0 1\r\n5\r\ndecr d 100\r\n", b"STORED\r\n0\r\n",
           ends=(b"\r\n0\r\n",))


@case
def incr_on_a_value_of_30_digits(s):
    expect(s.port, b"set big 0 0 30\r\n" + b"9" * 30 + b"\r\nincr big 1\r\n",
           b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
           ends=(b"value\r\n",))


# ---- other commands with bad arguments ---------------------------------------------------

@case
def delete_with_a_time_argument(s):
    expect(s.port, b"delete k 10\r\n",
           b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n")


@case
def touch_without_exptime(s):
    expect(s.port, b"touch k\r\n", b"ERROR\r\n")


@case
def flush_all_with_garbage(s):
    expect_prefix(s.port, b"flush_all soon\r\n", b"CLIENT_ERROR")


@case
def verbosity_with_garbage(s):
    expect_prefix(s.port, b"verbosity loud\r\n", b"")


@case
def stats_with_an_unknown_group(s):
    # memcached says ERROR; larder says CLIENT_ERROR so that a monitoring
    # client waiting for END gets a reply it recognises as final.
    expect(s.port, b"stats nonsense\r\n", b"CLIENT_ERROR unknown stats group\r\n")


@case
def meta_get_with_unknown_flags(s):
    expect_prefix(s.port, b"mg k !\r\n", b"CLIENT_ERROR")


@case
def meta_set_with_non_numeric_size(s):
    expect_prefix(s.port, b"ms k abc\r\n", b"CLIENT_ERROR")


@case
def meta_set_with_bad_base64_key(s):
    expect_prefix(s.port, b"ms !!!! 1 b\r\nx\r\n", b"CLIENT_ERROR")


@case
def shutdown_is_refused(s):
    expect(s.port, b"shutdown\r\n", b"ERROR: shutdown not enabled\r\n")


@case
def a_hundred_thousand_pipelined_noops(s):
    sock = connect(s.port)
    try:
        sock.sendall(b"mn\r\n" * 100_000 + b"get nothing\r\n")
        data, _ = read_until(sock, (b"END\r\n",), limit=1 << 20)
        assert data == b"MN\r\n" * 100_000 + b"END\r\n", len(data)
    finally:
        sock.close()


# ---- long multi-gets, HTTP, tuning commands, meta flags, noreply --------------

def long_get(count, bad=None, at=None):
    parts = [b"get"]
    for i in range(count):
        if i == at:
            parts.append(bad)
        parts.append(b"miss%d" % i)
    return b" ".join(parts) + b"\r\nmn\r\n"


@case
def long_multiget_with_an_overlong_key_early(s):
    expect(s.port, long_get(20000, b"x" * 251, 10), BAD_FORMAT + b"MN\r\n", ends=(b"MN\r\n",))


@case
def long_multiget_with_an_overlong_key_past_64_kb(s):
    expect(s.port, long_get(20000, b"x" * 300, 15000), BAD_FORMAT + b"MN\r\n", ends=(b"MN\r\n",))


@case
def long_multiget_with_a_nul_byte_in_a_key(s):
    # NUL is the one byte memcached's keys cannot hold (other control bytes
    # are keys as any, as in memcached).
    expect(s.port, long_get(20000, b"bad\x00key", 12000), BAD_FORMAT + b"MN\r\n", ends=(b"MN\r\n",))


@case
def long_multiget_of_one_key_of_a_megabyte(s):
    expect(s.port, b"get " + b"k" * (1 << 20) + b"\r\nmn\r\n", BAD_FORMAT + b"MN\r\n", ends=(b"MN\r\n",))


@case
def long_gat_with_a_bad_exptime(s):
    expect(s.port, b"gat soon" + b" k" * 40000 + b"\r\nmn\r\n",
           b"CLIENT_ERROR invalid exptime argument\r\nMN\r\n", ends=(b"MN\r\n",))


@case
def multiget_line_of_eight_megabytes_streams(s):
    # Far more than one connection may buffer: answered as it arrives. (A
    # key no case stores, so the reply stays small while we are sending.)
    expect(s.port, b"get" + b" nx" * (3 << 20) + b"\r\n", b"END\r\n", ends=(b"END\r\n",))


@case
def long_multiget_half_sent_then_closed(s):
    sock = connect(s.port)
    try:
        sock.sendall(b"get" + b" key" * 50000)
    finally:
        sock.close()


@case
def http_get_request_line_closes_silently(s):
    expect_silent_close(s.port, b"GET / HTTP/1.0\r\n\r\n")


@case
def http_put_request_line_closes_silently(s):
    expect_silent_close(s.port, b"PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")


@case
def http_request_line_without_a_path_closes_silently(s):
    expect_silent_close(s.port, b"DELETE HTTP/1.1\r\n")


@case
def http_line_after_valid_commands_closes_after_their_replies(s):
    data, closed = exchange(s.port, b"mn\r\nversion\r\nOPTIONS * HTTP/1.1\r\nmn\r\n", ends=(b"\0never",))
    # memcached may drop the replies still queued when it closes; larder
    # sends them. Either way nothing answers the HTTP line.
    ok = data == b"MN\r\n" or (data.startswith(b"MN\r\nVERSION ") and data.count(b"\r\n") == 2)
    assert closed and ok, (data, closed)


@case
def lowercase_get_with_http_keys_is_a_get(s):
    expect(s.port, b"get / HTTP/1.1\r\n", b"END\r\n", ends=(b"END\r\n",))


@case
def slabs_automove_invalid(s):
    expect(s.port, b"slabs automove invalid\r\n", BAD_FORMAT)


@case
def slabs_reassign_garbage(s):
    expect(s.port, b"slabs reassign a b\r\nslabs reassign 1\r\n", BAD_FORMAT + b"ERROR\r\n",
           ends=(b"ERROR\r\n",))


@case
def lru_crawler_bad_arguments(s):
    expect(s.port, b"lru_crawler sleep 9999999\r\nlru_crawler crawl 0\r\nlru_crawler tocrawl x\r\n",
           b"CLIENT_ERROR sleep must be one second or less\r\nBADCLASS invalid class id\r\n" + BAD_FORMAT,
           ends=(BAD_FORMAT,))


@case
def lru_bad_arguments(s):
    expect(s.port, b"lru mode bogus\r\nlru tune a b c d\r\nlru temp_ttl x\r\n", b"ERROR\r\n" * 3,
           ends=(b"ERROR\r\nERROR\r\nERROR\r\n",))


@case
def stats_cachedump_bad_arguments(s):
    expect(s.port, b"stats cachedump\r\nstats cachedump 999 1\r\n",
           b"CLIENT_ERROR bad command line\r\nCLIENT_ERROR Illegal slab id\r\n", ends=(b"id\r\n",))


@case
def cache_memlimit_of_a_huge_number(s):
    expect(s.port, b"cache_memlimit 99999999999\r\n",
           b"MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n")


@case
def verbosity_of_a_huge_number(s):
    expect(s.port, b"verbosity 99999999999\r\n", b"OK\r\n")


@case
def meta_get_with_an_undecodable_base64_key(s):
    expect(s.port, b"mg %%%% b v\r\n", b"CLIENT_ERROR error decoding key\r\n")


@case
def meta_get_with_a_duplicate_flag(s):
    expect(s.port, b"mg k v v\r\n", b"CLIENT_ERROR duplicate flag\r\n")


@case
def meta_get_with_an_opaque_too_long(s):
    expect(s.port, b"mg k O" + b"9" * 40 + b"\r\n", b"CLIENT_ERROR opaque token too long\r\n")


@case
def meta_set_with_a_bad_mode(s):
    expect(s.port, b"ms k 1 MX\r\nx\r\n", b"CLIENT_ERROR invalid mode for ms M token\r\n")


@case
def meta_arithmetic_with_a_bad_mode(s):
    expect(s.port, b"ma k MX\r\n", b"CLIENT_ERROR invalid mode for ma M token\r\n")


@case
def incr_with_a_delta_above_2_to_the_64(s):
    expect(s.port, b"incr n 18446744073709551616\r\n", b"CLIENT_ERROR invalid numeric delta argument\r\n")


@case
def incr_on_a_20_digit_value_above_2_to_the_64(s):
    expect(s.port, b"set huge 0 0 20\r\n99999999999999999999\r\nincr huge 1\r\n",
           b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
           ends=(b"value\r\n",))


@case
def noreply_on_every_command(s):
    payload = (b"set nr 0 0 1 noreply\r\n1\r\nadd nr 0 0 1 noreply\r\n2\r\n"
               b"replace nr 0 0 1 noreply\r\n3\r\nappend nr 0 0 1 noreply\r\n4\r\n"
               b"prepend nr 0 0 1 noreply\r\n5\r\ncas nr 0 0 1 1 noreply\r\n6\r\n"
               b"incr nr 1 noreply\r\ndecr nr 1 noreply\r\ntouch nr 10 noreply\r\n"
               b"delete nr noreply\r\nflush_all noreply\r\nverbosity 1 noreply\r\n"
               b"cache_memlimit 64 noreply\r\nslabs automove 1 noreply\r\nlru mode flat noreply\r\n"
               b"set bad 0 0 x noreply\r\nincr nr x noreply\r\nmn\r\n")
    expect(s.port, payload, b"MN\r\n", ends=(b"MN\r\n",))


@case
def pipelined_garbage_after_valid_commands(s):
    expect(s.port, b"set pg 0 0 1\r\nx\r\nget pg\r\n\x01\x02\x03\r\nbogus\r\nmn\r\n",
           b"STORED\r\nVALUE pg 0 1\r\nx\r\nEND\r\nERROR\r\nERROR\r\nMN\r\n", ends=(b"MN\r\n",))


@case
def many_half_sent_values_then_close(s):
    socks = []
    try:
        for i in range(32):
            sock = connect(s.port)
            sock.sendall(b"set half%d 0 0 1000000\r\n" % i + b"h" * 500_000)
            socks.append(sock)
    finally:
        for sock in socks:
            sock.close()
    expect(s.port, b"get half0\r\n", b"END\r\n", ends=(b"END\r\n",))


# ---- connection behaviour -----------------------------------------------------------------

@case
def quit_in_the_middle_of_a_pipeline(s):
    data, closed = exchange(s.port, b"mn\r\nquit\r\nmn\r\n", ends=(b"\0never",))
    assert data == b"MN\r\n" and closed, (data, closed)


@case
def half_close_after_a_partial_command(s):
    sock = connect(s.port)
    try:
        sock.sendall(b"set k 0 0 10\r\nabc")
        sock.shutdown(socket.SHUT_WR)
        assert read_to_close(sock, time.monotonic() + 10)
    finally:
        sock.close()


@case
def reset_right_after_connecting(s):
    for _ in range(50):
        sock = connect(s.port)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.sendall(b"get k\r\n")
        sock.close()


@case
def slowloris_past_the_idle_timeout(s):
    sock = connect(s.short_port)
    try:
        start = time.monotonic()
        deadline = start + s.short_idle + 15
        closed = False
        # One byte of a never-ending line every 0.2 s.
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"g")
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            sock.settimeout(0.2)
            try:
                if sock.recv(100) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                closed = True
                break
        assert closed, "still open after %.1f s" % (time.monotonic() - start)
        assert time.monotonic() - start >= s.short_idle * 0.9, "closed too early"
    finally:
        sock.close()


@case
def partial_command_then_silence(s):
    sock = connect(s.short_port)
    try:
        sock.sendall(b"get k")
        assert read_to_close(sock, time.monotonic() + s.short_idle + 15)
    finally:
        sock.close()


@case
def a_reader_that_never_reads(s):
    sock = connect(s.short_port)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.sendall(b"set nr 0 0 500000\r\n" + b"n" * 500_000 + b"\r\n")
        data, _ = read_until(sock)
        assert data == b"STORED\r\n", data
        sock.settimeout(2)
        try:
            for _ in range(200):
                sock.sendall(b"get nr nr nr nr nr nr nr nr nr nr\r\n" * 20)
        except (socket.timeout, BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading us, as it should
        # Never read; wait for the server to give up on us.
        deadline = time.monotonic() + s.short_idle + 20
        while time.monotonic() < deadline:
            if int(stats_of(s.short_port)["curr_connections"]) == 1:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("never-reading client still connected")
    finally:
        sock.close()


def wait_until_idle(port, seconds=10):
    """Waits until the server holds no connection but the one asking: the
    cases before this one leave connections that the idle timeout closes, and
    one still open a moment too long took a slot this case counts on."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            if int(stats_of(port).get("curr_connections", "-1")) == 1:
                return
        except (OSError, AssertionError, ValueError):
            pass  # refused while the slots are full: try again
        assert time.monotonic() < deadline, "earlier connections never closed"
        time.sleep(0.05)


@case
def more_connections_than_the_limit(s):
    wait_until_idle(s.short_port)
    socks = []
    try:
        # Fill every slot, one connection at a time. A slot can still be
        # held for a moment by a connection the client has closed (the
        # stats connection wait_until_idle used, say) until the server
        # notices: a refusal then is retried, not counted.
        deadline = time.monotonic() + 10
        while len(socks) < s.short_conns:
            sock = connect(s.short_port)
            sock.sendall(b"mn\r\n")
            data, _ = read_until(sock)
            if data == b"MN\r\n":
                socks.append(sock)
                continue
            sock.close()
            assert data == b"ERROR Too many open connections\r\n", data
            assert time.monotonic() < deadline, "a slot stayed taken"
            time.sleep(0.05)
        extra = [connect(s.short_port) for _ in range(5)]
        for sock in extra:
            data, closed = read_until(sock, ends=(b"\0never",))
            assert data == b"ERROR Too many open connections\r\n" and closed, (data, closed)
            sock.close()
    finally:
        for sock in socks:
            sock.close()
    # The slots come back.
    deadline = time.monotonic() + 10
    while not answers_version(s.short_port):
        assert time.monotonic() < deadline, "slots never came back"
        time.sleep(0.1)


def stats_of(port):
    from common import stats
    return stats(port)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--short-port", type=int, required=True)
    parser.add_argument("--short-pid", type=int, required=True)
    parser.add_argument("--short-conns", type=int, required=True)
    parser.add_argument("--short-idle", type=int, required=True)
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("-k", help="run only cases whose name contains this")
    s = parser.parse_args()
    base = {pid: rss_kib(pid) for pid in (s.pid, s.short_pid)}
    bound = {pid: base[pid] + int(1.2 * s.memory_mb * 1024) + 64 * 1024 for pid in base}
    passed = failed = 0
    peak = dict(base)
    for fn in CASES:
        if s.k and s.k not in fn.__name__:
            continue
        start = time.monotonic()
        try:
            fn(s)
            for port in (s.port, s.short_port):
                assert answers_version(port), "server on %d no longer answers version" % port
            for pid in base:
                rss = rss_kib(pid)
                peak[pid] = max(peak[pid], rss)
                assert rss <= bound[pid], "RSS of %d is %d kB, bound %d kB" % (pid, rss, bound[pid])
        except Exception as e:  # noqa: BLE001 - report every kind of failure
            failed += 1
            print("FAIL %-62s %s" % (fn.__name__, e))
        else:
            passed += 1
            print("ok   %-62s %5.2fs" % (fn.__name__, time.monotonic() - start))
    for pid in base:
        print("RSS of pid %d: start %d kB, peak %d kB, bound %d kB" % (pid, base[pid], peak[pid], bound[pid]))
    print("bad-input: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
