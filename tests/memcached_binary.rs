//! The binary protocol, specified by memcached's own answers.
//!
//! [`CASES`] is a conformance table: request packets in, memcached 1.6's
//! exact response packets out (CAS values are checked as zero or non-zero,
//! since servers number items differently), one short conversation per
//! case, each ending in a `NOOP` (or in the connection's close) so that a
//! missing or extra response shows. It always runs against a fresh
//! [`Store`]; with the `server` feature it also runs over TCP against
//! larder-server and, when a `memcached` binary is installed, against real
//! memcached, which keeps the table honest (set `LARDER_REQUIRE_MEMCACHED=1`
//! to fail instead of skipping when it is missing, as CI does).
//!
//! Packets are built and read with this file's own few lines, not with the
//! codec under test. The codec gets a round-trip property and a
//! split-anywhere property of its own.
#![cfg(feature = "memcached")]

use std::borrow::Cow;

use larder::memcached::binary::{self, Extras, Opcode, Request, Value};
use larder::memcached::{
    Credentials, Limits, Outcome, Protocols, Session, Status, Store, StoreConfig, StoreError,
};
use larder::Clock;
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

// ---- packets, by hand ---------------------------------------------------------

const OPAQUE: u32 = 0xdead_beef;

/// A request packet: opcode, key, extras, value, CAS.
fn packet(op: u8, key: &[u8], extras: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
    let body = extras.len() + key.len() + value.len();
    let mut p = vec![0x80, op];
    p.extend_from_slice(&(key.len() as u16).to_be_bytes());
    p.push(extras.len() as u8);
    p.extend_from_slice(&[0, 0, 0]);
    p.extend_from_slice(&(body as u32).to_be_bytes());
    p.extend_from_slice(&OPAQUE.to_be_bytes());
    p.extend_from_slice(&cas.to_be_bytes());
    p.extend_from_slice(extras);
    p.extend_from_slice(key);
    p.extend_from_slice(value);
    p
}

fn op(op: u8) -> Vec<u8> {
    packet(op, b"", b"", b"", 0)
}

fn keyed(op: u8, key: &[u8]) -> Vec<u8> {
    packet(op, key, b"", b"", 0)
}

fn store_extras(flags: u32, exptime: u32) -> Vec<u8> {
    [flags.to_be_bytes(), exptime.to_be_bytes()].concat()
}

fn set(op: u8, key: &[u8], value: &[u8], cas: u64) -> Vec<u8> {
    packet(op, key, &store_extras(5, 0), value, cas)
}

fn counter(op: u8, key: &[u8], delta: u64, initial: u64, exptime: u32, cas: u64) -> Vec<u8> {
    let extras = [
        &delta.to_be_bytes()[..],
        &initial.to_be_bytes(),
        &exptime.to_be_bytes(),
    ]
    .concat();
    packet(op, key, &extras, b"", cas)
}

fn touch(op: u8, key: &[u8], exptime: u32) -> Vec<u8> {
    packet(op, key, &exptime.to_be_bytes(), b"", 0)
}

/// What a response must be.
#[derive(Clone, Debug)]
struct Expect {
    opcode: u8,
    status: u16,
    extras: &'static [u8],
    key: &'static [u8],
    /// `None`: any non-empty value (a version).
    value: Option<Cow<'static, [u8]>>,
    cas_set: bool,
    opaque: u32,
}

fn ok(opcode: u8) -> Expect {
    Expect {
        opcode,
        status: 0,
        extras: b"",
        key: b"",
        value: Some(Cow::Borrowed(b"")),
        cas_set: false,
        opaque: OPAQUE,
    }
}

/// Success carrying the new item's CAS.
fn stored(opcode: u8) -> Expect {
    Expect {
        cas_set: true,
        ..ok(opcode)
    }
}

fn error(opcode: u8, status: u16, message: &'static [u8]) -> Expect {
    Expect {
        status,
        value: Some(Cow::Borrowed(message)),
        ..ok(opcode)
    }
}

/// A hit of the get family: flags 5, the CAS.
fn hit(opcode: u8, key: &'static [u8], value: &'static [u8]) -> Expect {
    Expect {
        extras: &[0, 0, 0, 5],
        key,
        value: Some(Cow::Borrowed(value)),
        cas_set: true,
        ..ok(opcode)
    }
}

fn number(opcode: u8, n: u64) -> Expect {
    Expect {
        value: Some(Cow::Owned(n.to_be_bytes().to_vec())),
        cas_set: true,
        ..ok(opcode)
    }
}

const NOT_FOUND: &[u8] = b"Not found";
const EXISTS: &[u8] = b"Data exists for key.";
const INVALID: &[u8] = b"Invalid arguments";
const UNKNOWN: &[u8] = b"Unknown command";

/// One conversation: requests sent at once, the responses, and whether the
/// server closes the connection after them.
struct Case {
    name: &'static str,
    requests: Vec<Vec<u8>>,
    responses: Vec<Expect>,
    closes: bool,
}

fn case(name: &'static str, requests: Vec<Vec<u8>>, responses: Vec<Expect>) -> Case {
    Case {
        name,
        requests,
        responses,
        closes: false,
    }
}

fn closing(name: &'static str, requests: Vec<Vec<u8>>, responses: Vec<Expect>) -> Case {
    Case {
        closes: true,
        ..case(name, requests, responses)
    }
}

/// memcached 1.6.18's answers (checked against it by `live_memcached_...`).
#[allow(clippy::too_many_lines)]
fn cases() -> Vec<Case> {
    let noop = || op(0x0a);
    // A SET of key `a` with these flags and a value of `len` bytes, and an
    // APPEND to it.
    let set_a =
        |flags: u32, len: usize| packet(0x01, b"a", &store_extras(flags, 0), &vec![b'x'; len], 0);
    let append_a = |len: usize| packet(0x0e, b"a", &[], &vec![b'y'; len], 0);
    vec![
        case("noop", vec![noop()], vec![ok(0x0a)]),
        case(
            "version",
            vec![op(0x0b), noop()],
            vec![
                Expect {
                    value: None,
                    ..ok(0x0b)
                },
                ok(0x0a),
            ],
        ),
        case(
            "set then get, getk, getq, getkq",
            vec![
                set(0x01, b"a", b"1", 0),
                keyed(0x00, b"a"),
                keyed(0x0c, b"a"),
                keyed(0x09, b"a"),
                keyed(0x0d, b"a"),
                noop(),
            ],
            vec![
                stored(0x01),
                hit(0x00, b"", b"1"),
                hit(0x0c, b"a", b"1"),
                hit(0x09, b"", b"1"),
                hit(0x0d, b"a", b"1"),
                ok(0x0a),
            ],
        ),
        case(
            "get misses: GET says Not found, GETK returns the key, quiet ones nothing",
            vec![
                keyed(0x00, b"b"),
                keyed(0x0c, b"b"),
                keyed(0x09, b"b"),
                keyed(0x0d, b"b"),
                noop(),
            ],
            vec![
                error(0x00, 1, NOT_FOUND),
                Expect {
                    key: b"b",
                    ..error(0x0c, 1, b"")
                },
                ok(0x0a),
            ],
        ),
        case(
            "add on a present key exists, replace on a missing one is not found",
            vec![
                set(0x01, b"a", b"1", 0),
                set(0x02, b"a", b"2", 0),
                set(0x03, b"b", b"2", 0),
                set(0x02, b"c", b"3", 0),
                set(0x03, b"c", b"4", 0),
                keyed(0x00, b"c"),
                noop(),
            ],
            vec![
                stored(0x01),
                error(0x02, 2, EXISTS),
                error(0x03, 1, NOT_FOUND),
                stored(0x02),
                stored(0x03),
                hit(0x00, b"", b"4"),
                ok(0x0a),
            ],
        ),
        case(
            "a CAS makes set and add compare-and-swaps",
            vec![
                set(0x01, b"a", b"1", 0),
                set(0x01, b"a", b"2", 999_999),
                set(0x02, b"zz", b"2", 5),
                set(0x01, b"nope", b"2", 5),
                noop(),
            ],
            vec![
                stored(0x01),
                error(0x01, 2, EXISTS),
                error(0x02, 1, NOT_FOUND),
                error(0x01, 1, NOT_FOUND),
                ok(0x0a),
            ],
        ),
        case(
            "quiet stores send only errors",
            vec![
                set(0x11, b"q", b"1", 0),
                set(0x12, b"q", b"1", 0),
                set(0x13, b"q", b"2", 0),
                set(0x13, b"missing", b"2", 0),
                keyed(0x00, b"q"),
                noop(),
            ],
            vec![
                error(0x12, 2, EXISTS),
                error(0x13, 1, NOT_FOUND),
                hit(0x00, b"", b"2"),
                ok(0x0a),
            ],
        ),
        case(
            "delete: a wrong CAS exists, success has CAS 0, then not found",
            vec![
                set(0x01, b"a", b"1", 0),
                packet(0x04, b"a", b"", b"", 999_999),
                keyed(0x04, b"a"),
                keyed(0x04, b"a"),
                set(0x01, b"a", b"1", 0),
                keyed(0x14, b"a"),
                keyed(0x14, b"a"),
                noop(),
            ],
            vec![
                stored(0x01),
                error(0x04, 2, EXISTS),
                ok(0x04),
                error(0x04, 1, NOT_FOUND),
                stored(0x01),
                error(0x14, 1, NOT_FOUND),
                ok(0x0a),
            ],
        ),
        case(
            "increment creates with the initial value, then counts",
            vec![
                counter(0x05, b"n", 5, 10, 0, 0),
                counter(0x05, b"n", 5, 10, 0, 0),
                counter(0x06, b"n", 1, 10, 0, 0),
                counter(0x15, b"n", 1, 0, 0, 0),
                keyed(0x00, b"n"),
                noop(),
            ],
            vec![
                number(0x05, 10),
                number(0x05, 15),
                number(0x06, 14),
                Expect {
                    extras: &[0, 0, 0, 0],
                    value: Some(Cow::Borrowed(b"15")),
                    cas_set: true,
                    ..ok(0x00)
                },
                ok(0x0a),
            ],
        ),
        case(
            "expiration 0xffffffff does not create a counter",
            vec![
                counter(0x06, b"m", 5, 10, 0xffff_ffff, 0),
                counter(0x16, b"m", 5, 10, 0xffff_ffff, 0),
                noop(),
            ],
            vec![
                error(0x06, 1, NOT_FOUND),
                error(0x16, 1, NOT_FOUND),
                ok(0x0a),
            ],
        ),
        case(
            "a counter's 'negative' expiration is a far-future time too",
            vec![
                counter(0x05, b"neg", 5, 10, 0xffff_fffe, 0),
                keyed(0x00, b"neg"),
                noop(),
            ],
            vec![
                number(0x05, 10),
                Expect {
                    extras: &[0, 0, 0, 0],
                    ..hit(0x00, b"", b"10")
                },
                ok(0x0a),
            ],
        ),
        case(
            "a store's 'negative' expiration is a far-future time",
            vec![
                packet(0x01, b"f", &store_extras(5, 0xffff_fff0), b"v", 0),
                keyed(0x00, b"f"),
                noop(),
            ],
            vec![stored(0x01), hit(0x00, b"", b"v"), ok(0x0a)],
        ),
        case(
            "non-numeric and wrong-CAS counters",
            vec![
                set(0x01, b"s", b"abc", 0),
                counter(0x05, b"s", 1, 0, 0, 0),
                counter(0x05, b"s", 1, 0, 0, 999_999),
                noop(),
            ],
            vec![
                stored(0x01),
                error(0x05, 6, b"Non-numeric server-side value for incr or decr"),
                error(0x05, 2, EXISTS),
                ok(0x0a),
            ],
        ),
        case(
            "decrement stops at zero, increment wraps and keeps the length",
            vec![
                set(0x01, b"c", b"3", 0),
                counter(0x06, b"c", 5, 0, 0, 0),
                set(0x01, b"w", b"18446744073709551615", 0),
                counter(0x05, b"w", 2, 0, 0, 0),
                keyed(0x00, b"w"),
                noop(),
            ],
            vec![
                stored(0x01),
                number(0x06, 0),
                stored(0x01),
                number(0x05, 1),
                hit(0x00, b"", b"1                   "),
                ok(0x0a),
            ],
        ),
        case(
            "append and prepend: missing is not stored, a wrong CAS exists",
            vec![
                packet(0x0e, b"x", b"", b"zz", 0),
                set(0x01, b"x", b"v", 0),
                packet(0x0e, b"x", b"", b"zz", 0),
                packet(0x0f, b"x", b"", b"aa", 999_999),
                packet(0x1a, b"x", b"", b"<", 0),
                packet(0x19, b"nokey", b"", b"a", 0),
                keyed(0x00, b"x"),
                noop(),
            ],
            vec![
                error(0x0e, 5, b"Not stored."),
                stored(0x01),
                stored(0x0e),
                error(0x0f, 2, EXISTS),
                error(0x19, 5, b"Not stored."),
                hit(0x00, b"", b"<vzz"),
                ok(0x0a),
            ],
        ),
        case(
            "touch returns the flags, gat the value, gatk the key too",
            vec![
                set(0x01, b"x", b"v", 0),
                touch(0x1c, b"x", 16),
                touch(0x1d, b"x", 16),
                touch(0x23, b"x", 16),
                touch(0x1e, b"x", 16),
                touch(0x24, b"x", 16),
                noop(),
            ],
            vec![
                stored(0x01),
                Expect {
                    value: Some(Cow::Borrowed(b"")),
                    ..hit(0x1c, b"", b"")
                },
                hit(0x1d, b"", b"v"),
                hit(0x23, b"x", b"v"),
                hit(0x1e, b"", b"v"),
                hit(0x24, b"x", b"v"),
                ok(0x0a),
            ],
        ),
        case(
            "touch misses",
            vec![
                touch(0x1c, b"nope", 16),
                touch(0x1d, b"nope", 16),
                touch(0x23, b"nope", 16),
                touch(0x1e, b"nope", 16),
                touch(0x24, b"nope", 16),
                noop(),
            ],
            vec![
                error(0x1c, 1, NOT_FOUND),
                error(0x1d, 1, NOT_FOUND),
                Expect {
                    key: b"nope",
                    ..error(0x23, 1, b"")
                },
                ok(0x0a),
            ],
        ),
        case(
            "flush empties; flushq is quiet; a delayed flush waits",
            vec![
                set(0x01, b"a", b"1", 0),
                op(0x08),
                keyed(0x00, b"a"),
                set(0x01, b"a", b"1", 0),
                op(0x18),
                keyed(0x00, b"a"),
                set(0x01, b"b", b"2", 0),
                packet(0x18, b"", &3600u32.to_be_bytes(), b"", 0),
                keyed(0x00, b"b"),
                noop(),
            ],
            vec![
                stored(0x01),
                ok(0x08),
                error(0x00, 1, NOT_FOUND),
                stored(0x01),
                error(0x00, 1, NOT_FOUND),
                stored(0x01),
                hit(0x00, b"", b"2"),
                ok(0x0a),
            ],
        ),
        case(
            "an unknown opcode is answered and its body skipped",
            vec![packet(0x40, b"", b"", &[7u8; 100_000], 0), noop()],
            vec![error(0x40, 0x81, UNKNOWN), ok(0x0a)],
        ),
        case(
            "VERBOSITY is unknown in memcached 1.6",
            vec![op(0x1b), noop()],
            vec![error(0x1b, 0x81, UNKNOWN), ok(0x0a)],
        ),
        case(
            "a value over the item size is too large, and a set drops the old value",
            vec![
                set(0x01, b"a", b"1", 0),
                set(0x01, b"a", &vec![b'x'; (1 << 20) + 1], 0),
                keyed(0x00, b"a"),
                noop(),
            ],
            vec![
                stored(0x01),
                error(0x01, 3, b"Too large."),
                error(0x00, 1, NOT_FOUND),
                ok(0x0a),
            ],
        ),
        case(
            // memcached 1.6.18 counts the key and 59 bytes of header (63 with
            // flags) against -I; an append's data is sized alone, with flags 0.
            "an item over -I as memcached counts it is too large; an append past it is not stored",
            vec![
                set_a(0, (1 << 20) - 60),
                set_a(0, (1 << 20) - 59),
                keyed(0x00, b"a"),
                set_a(5, (1 << 20) - 64),
                set_a(5, (1 << 20) - 63),
                set_a(0, (1 << 20) - 300),
                append_a((1 << 20) - 59),
                append_a(240),
                append_a(1),
                noop(),
            ],
            vec![
                stored(0x01),
                error(0x01, 3, b"Too large."),
                error(0x00, 1, NOT_FOUND),
                stored(0x01),
                error(0x01, 3, b"Too large."),
                stored(0x01),
                error(0x0e, 3, b"Too large."),
                stored(0x0e),
                error(0x0e, 5, b"Not stored."),
                ok(0x0a),
            ],
        ),
        case(
            "stat groups: unknown is not found, reset and detail on are empty",
            vec![
                keyed(0x10, b"bogus"),
                keyed(0x10, b"reset"),
                keyed(0x10, b"detail on"),
                keyed(0x10, b"detail bogus"),
                noop(),
            ],
            vec![
                error(0x10, 1, NOT_FOUND),
                ok(0x10),
                ok(0x10),
                error(0x10, 1, NOT_FOUND),
                ok(0x0a),
            ],
        ),
        closing(
            "quit answers, then closes",
            vec![op(0x07), noop()],
            vec![ok(0x07)],
        ),
        closing("quitq closes silently", vec![op(0x17), noop()], vec![]),
        closing(
            "a get with extras is invalid and closes",
            vec![packet(0x00, b"k", &[0; 4], b"", 0), noop()],
            vec![error(0x00, 4, INVALID)],
        ),
        closing(
            "a key over 250 bytes is invalid and closes",
            vec![keyed(0x00, &[b'k'; 251]), noop()],
            vec![error(0x00, 4, INVALID)],
        ),
        closing(
            "a delete with extras is invalid",
            vec![packet(0x04, b"a", &[0; 4], b"", 0), noop()],
            vec![error(0x04, 4, INVALID)],
        ),
        closing(
            "a set without a key is invalid",
            vec![packet(0x01, b"", &store_extras(0, 0), b"v", 0), noop()],
            vec![error(0x01, 4, INVALID)],
        ),
        closing(
            "an increment with short extras is invalid",
            vec![packet(0x05, b"n", &[0; 8], b"", 0), noop()],
            vec![error(0x05, 4, INVALID)],
        ),
        closing(
            "a noop with a body is invalid",
            vec![keyed(0x0a, b"k")],
            vec![error(0x0a, 4, INVALID)],
        ),
        closing(
            "a stat with extras is invalid",
            vec![packet(0x10, b"", &[0; 4], b"", 0)],
            vec![error(0x10, 4, INVALID)],
        ),
        closing(
            "key and extras longer than the body: unknown command, then close",
            vec![
                {
                    let mut p = keyed(0x00, b"abcde");
                    p[8..12].copy_from_slice(&2u32.to_be_bytes());
                    p.truncate(26);
                    p
                },
                noop(),
            ],
            vec![error(0x00, 0x81, UNKNOWN)],
        ),
        case(
            "without SASL, the SASL commands are unknown and the connection goes on",
            vec![
                op(0x20),
                packet(0x21, b"PLAIN", b"", b"\0user\0password", 0),
                packet(0x22, b"PLAIN", b"", b"", 0),
                noop(),
            ],
            vec![
                error(0x20, 0x81, UNKNOWN),
                error(0x21, 0x81, UNKNOWN),
                error(0x22, 0x81, UNKNOWN),
                ok(0x0a),
            ],
        ),
        closing(
            "SASL_LIST_MECHS with a body: invalid arguments, then close",
            vec![packet(0x20, b"k", b"", b"", 0), noop()],
            vec![error(0x20, 0x04, INVALID)],
        ),
        closing(
            "SASL_AUTH without a mechanism: invalid arguments, then close",
            vec![packet(0x21, b"", b"", b"x", 0), noop()],
            vec![error(0x21, 0x04, INVALID)],
        ),
        closing(
            "a binary connection stays binary: a bad magic byte closes silently",
            vec![noop(), {
                let mut p = noop();
                p[0] = 0x81;
                p
            }],
            vec![ok(0x0a)],
        ),
    ]
}

/// A response, read by hand: (opcode, status, extras, key, value, opaque,
/// cas) and its length.
type Raw = (u8, u16, Vec<u8>, Vec<u8>, Vec<u8>, u32, u64);

fn read_response(input: &[u8]) -> Option<(Raw, usize)> {
    if input.len() < 24 {
        return None;
    }
    assert_eq!(input[0], 0x81, "response magic");
    let be32 = |i: usize| u32::from_be_bytes(input[i..i + 4].try_into().unwrap());
    let key_len = usize::from(u16::from_be_bytes([input[2], input[3]]));
    let extras_len = usize::from(input[4]);
    let body = be32(8) as usize;
    if input.len() < 24 + body {
        return None;
    }
    let b = &input[24..24 + body];
    let raw = (
        input[1],
        u16::from_be_bytes([input[6], input[7]]),
        b[..extras_len].to_vec(),
        b[extras_len..extras_len + key_len].to_vec(),
        b[extras_len + key_len..].to_vec(),
        be32(12),
        u64::from_be_bytes(input[16..24].try_into().unwrap()),
    );
    Some((raw, 24 + body))
}

fn check(case: &Case, reply: &[u8], closed: bool, server: &str) {
    let mut rest = reply;
    let mut got = Vec::new();
    while let Some((raw, len)) = read_response(rest) {
        got.push(raw);
        rest = &rest[len..];
    }
    assert!(rest.is_empty(), "{server}: {}: trailing bytes", case.name);
    assert_eq!(
        got.len(),
        case.responses.len(),
        "{server}: {}: got {got:?}",
        case.name
    );
    for (i, (raw, want)) in got.iter().zip(&case.responses).enumerate() {
        let (opcode, status, extras, key, value, opaque, cas) = raw;
        let at = format!("{server}: {}: response {i}: {raw:?}", case.name);
        assert_eq!(*opcode, want.opcode, "{at}");
        assert_eq!(*status, want.status, "{at}");
        assert_eq!(&extras[..], want.extras, "{at}");
        assert_eq!(&key[..], want.key, "{at}");
        match &want.value {
            Some(v) => assert_eq!(&value[..], &v[..], "{at}"),
            None => assert!(!value.is_empty(), "{at}"),
        }
        assert_eq!(*opaque, want.opaque, "{at}");
        assert_eq!(*cas != 0, want.cas_set, "{at}");
    }
    assert_eq!(closed, case.closes, "{server}: {}: closed", case.name);
}

// ---- the table against a Store --------------------------------------------------

fn test_store() -> Store {
    let (clock, _hand) = Clock::manual();
    Store::new(StoreConfig {
        memory_limit: 64 << 20,
        clock,
        unix_time: Some(1_700_000_000),
        version: Cow::Borrowed("1.6.0-test"),
        ..StoreConfig::default()
    })
    .unwrap()
}

/// Feeds `input` to a fresh store in chunks of `chunk` bytes, like a
/// connection reading; returns the output and whether it asked to close.
fn converse(input: &[u8], chunk: usize) -> (Vec<u8>, bool) {
    let store = test_store();
    let mut session = Session::new();
    let (mut buffered, mut out) = (Vec::new(), Vec::new());
    for piece in input.chunks(chunk) {
        buffered.extend_from_slice(piece);
        loop {
            let progress = store.process(&mut session, &buffered, &mut out);
            buffered.drain(..progress.consumed);
            if progress.outcome != Outcome::Continue {
                store.validate();
                return (out, true);
            }
            if progress.consumed == 0 {
                break;
            }
        }
    }
    store.validate();
    (out, false)
}

#[test]
fn every_case_of_the_table_holds_for_the_store() {
    for case in cases() {
        let input = case.requests.concat();
        let (out, closed) = converse(&input, input.len());
        check(&case, &out, closed, "store");
    }
}

#[test]
fn every_case_holds_when_the_input_arrives_in_small_pieces() {
    for case in cases() {
        let input = case.requests.concat();
        for chunk in [1, 7, 23, 24, 25, 4096] {
            let (out, closed) = converse(&input, chunk);
            check(&case, &out, closed, &format!("store, {chunk}-byte reads"));
        }
    }
}

#[test]
fn a_pipeline_of_quiet_gets_under_an_output_limit_is_answered_in_full_and_in_order() {
    let store = test_store();
    let value = [b'v'; 100];
    let mut input = Vec::new();
    for i in 0..100 {
        input.extend(set(0x11, format!("k{i}").as_bytes(), &value, 0));
    }
    for i in 0..100 {
        input.extend(keyed(0x0d, format!("k{i}").as_bytes()));
    }
    input.extend(op(0x0a));
    let mut session = Session::new().with_output_limit(256);
    let (mut rest, mut sent, mut calls) = (&input[..], Vec::new(), 0);
    while !rest.is_empty() {
        let mut out = Vec::new();
        let progress = store.process(&mut session, rest, &mut out);
        assert!(progress.consumed > 0, "stalled");
        assert!(
            out.len() < 256 + 200,
            "the limit holds: {} bytes",
            out.len()
        );
        sent.extend(out);
        rest = &rest[progress.consumed..];
        calls += 1;
    }
    assert!(calls > 10, "the limit paused the pipeline ({calls} calls)");
    let mut replies = &sent[..];
    for i in 0..100 {
        let (raw, len) = read_response(replies).expect("a reply per key");
        assert_eq!((raw.0, raw.1), (0x0d, 0));
        assert_eq!(raw.3, format!("k{i}").into_bytes());
        assert_eq!(raw.4, value);
        replies = &replies[len..];
    }
    let (noop, len) = read_response(replies).expect("the noop");
    assert_eq!((noop.0, len), (0x0a, replies.len()));
}

#[test]
fn huge_declared_bodies_are_skipped_as_they_arrive_never_buffered() {
    let store = test_store();
    // An unknown opcode announcing a 4 GiB body, and a SET announcing 100 MiB.
    let mut unknown = op(0x40);
    unknown[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    let mut session = Session::new();
    let mut out = Vec::new();
    let progress = store.process(&mut session, &unknown, &mut out);
    assert_eq!(progress.consumed, 24);
    assert!(session.is_swallowing());
    assert_eq!(out.len(), 24 + UNKNOWN.len());

    let mut session = Session::new();
    let mut set_huge = set(0x01, b"k", b"", 0);
    set_huge[8..12].copy_from_slice(&(8 + 1 + (100u32 << 20)).to_be_bytes());
    let mut input = set_huge.clone();
    input.extend_from_slice(&[b'x'; 4096]);
    let mut out = Vec::new();
    let progress = store.process(&mut session, &input, &mut out);
    assert_eq!(
        progress.consumed,
        input.len(),
        "the value's first bytes are skipped"
    );
    assert!(session.is_swallowing());
    let (reply, _) = read_response(&out).unwrap();
    assert_eq!((reply.1, &reply.4[..]), (3, &b"Too large."[..]));
}

#[test]
fn a_text_connection_stays_text_when_a_later_byte_is_0x80() {
    let store = test_store();
    let mut session = Session::new();
    let mut input = b"version\r\n".to_vec();
    input.extend(op(0x0a));
    input.extend_from_slice(b"\r\n");
    let mut out = Vec::new();
    let _ = store.process(&mut session, &input, &mut out);
    assert_eq!(session.is_binary(), Some(false));
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("VERSION 1.6.0-test\r\n"), "{text}");
    assert!(text.ends_with("ERROR\r\n"), "{text}");
}

#[test]
fn binary_commands_count_in_the_text_stats() {
    let store = test_store();
    let input = [
        set(0x01, b"a", b"1", 0),
        keyed(0x00, b"a"),
        keyed(0x0d, b"b"),
        keyed(0x04, b"a"),
        counter(0x05, b"n", 1, 0, 0xffff_ffff, 0),
    ]
    .concat();
    let mut session = Session::new();
    let mut out = Vec::new();
    let _ = store.process(&mut session, &input, &mut out);
    assert_eq!(session.is_binary(), Some(true));
    let mut text = Vec::new();
    let _ = store.process(&mut Session::new(), b"stats\r\n", &mut text);
    let text = String::from_utf8(text).unwrap();
    for line in [
        "STAT cmd_get 2\r\n",
        "STAT get_hits 1\r\n",
        "STAT get_misses 1\r\n",
        "STAT cmd_set 1\r\n",
        "STAT delete_hits 1\r\n",
        "STAT incr_misses 1\r\n",
        "STAT curr_items 0\r\n",
    ] {
        assert!(text.contains(line), "no {line:?} in {text}");
    }
}

#[test]
fn binary_stat_sends_one_packet_per_statistic_then_an_empty_one() {
    let (out, _) = converse(&keyed(0x10, b""), usize::MAX);
    let mut rest = &out[..];
    let mut names = Vec::new();
    while let Some((raw, len)) = read_response(rest) {
        assert_eq!((raw.0, raw.1, raw.5), (0x10, 0, OPAQUE));
        names.push(String::from_utf8(raw.3).unwrap());
        rest = &rest[len..];
    }
    assert_eq!(names.last().map(String::as_str), Some(""));
    for name in ["pid", "uptime", "version", "cmd_get", "curr_items"] {
        assert!(names.iter().any(|n| n == name), "no {name} in {names:?}");
    }
}

// ---- the codec ---------------------------------------------------------------

/// A request the codec can write, built from arbitrary parts.
#[derive(Clone, Debug)]
struct Spec {
    opcode: Opcode,
    key: Vec<u8>,
    value: Vec<u8>,
    numbers: (u32, u32, u64, u64),
    cas: u64,
    opaque: u32,
    flush_delay: bool,
}

impl Arbitrary for Spec {
    fn arbitrary(g: &mut Gen) -> Spec {
        let opcodes: Vec<Opcode> = Opcode::all().collect();
        let key_len = usize::arbitrary(g) % 251;
        Spec {
            opcode: *g.choose(&opcodes).unwrap(),
            key: (0..key_len.max(1)).map(|_| u8::arbitrary(g)).collect(),
            value: Vec::arbitrary(g),
            numbers: Arbitrary::arbitrary(g),
            cas: u64::arbitrary(g),
            opaque: u32::arbitrary(g),
            flush_delay: bool::arbitrary(g),
        }
    }
}

impl Spec {
    /// The request, shaped as the opcode requires.
    fn request(&self) -> Request<'_> {
        let (a, b, c, d) = self.numbers;
        let base = self.opcode.base();
        let (key, extras, value): (&[u8], Extras, &[u8]) = match base {
            Opcode::Get | Opcode::GetK | Opcode::Delete => (&self.key, Extras::None, b""),
            Opcode::Set | Opcode::Add | Opcode::Replace => (
                &self.key,
                Extras::Store {
                    flags: a,
                    exptime: b,
                },
                &self.value,
            ),
            Opcode::Append | Opcode::Prepend | Opcode::SaslAuth | Opcode::SaslStep => {
                (&self.key, Extras::None, &self.value)
            }
            Opcode::Increment | Opcode::Decrement => (
                &self.key,
                Extras::Arithmetic {
                    delta: c,
                    initial: d,
                    exptime: a,
                },
                b"",
            ),
            Opcode::Touch | Opcode::Gat | Opcode::GatK => (&self.key, Extras::Expiry(a), b""),
            Opcode::Flush if self.flush_delay => (b"", Extras::Expiry(a), b""),
            Opcode::Stat => (&self.key, Extras::None, b""),
            _ => (b"", Extras::None, b""),
        };
        Request {
            opcode: self.opcode,
            key,
            extras,
            value: Value::Data(value),
            cas: self.cas,
            opaque: self.opaque,
        }
    }
}

fn quickcheck(tests: u64) -> QuickCheck {
    QuickCheck::new().tests(tests).max_tests(tests * 10)
}

#[test]
fn written_requests_parse_back_to_themselves() {
    fn prop(spec: Spec) -> TestResult {
        let request = spec.request();
        let mut wire = Vec::new();
        request.write_to(&mut wire);
        match binary::parse(&wire, &Limits::default()) {
            Ok(Status::Complete(parsed, used)) if parsed == request && used == wire.len() => {
                TestResult::passed()
            }
            other => TestResult::error(format!("{request:?} -> {other:?}")),
        }
    }
    quickcheck(3000).quickcheck(prop as fn(Spec) -> TestResult);
}

#[test]
fn every_prefix_of_a_request_is_partial() {
    fn prop(spec: Spec) -> TestResult {
        let request = spec.request();
        let mut wire = Vec::new();
        request.write_to(&mut wire);
        for cut in 0..wire.len() {
            if binary::parse(&wire[..cut], &Limits::default()) != Ok(Status::Partial) {
                return TestResult::error(format!("{request:?} cut at {cut}"));
            }
        }
        TestResult::passed()
    }
    quickcheck(300).quickcheck(prop as fn(Spec) -> TestResult);
}

#[test]
fn arbitrary_bytes_never_claim_more_than_given_or_keys_past_the_limit() {
    fn prop(mut bytes: Vec<u8>, opcode: u8) -> TestResult {
        if bytes.len() >= 2 {
            bytes[0] = 0x80;
            bytes[1] = opcode % 0x26;
        }
        let limits = Limits {
            max_item_size: 64,
            ..Limits::default()
        };
        match binary::parse(&bytes, &limits) {
            Ok(Status::Complete(request, used)) => {
                TestResult::from_bool(used <= bytes.len() && request.key.len() <= 250)
            }
            Ok(Status::Partial) => TestResult::passed(),
            Err(error) => TestResult::from_bool(error.is_fatal() || error.discard() >= 24),
        }
    }
    quickcheck(5000).quickcheck(prop as fn(Vec<u8>, u8) -> TestResult);
}

// ---- over TCP: larder-server and, if installed, memcached -----------------------

#[cfg(feature = "server")]
mod common;

#[cfg(feature = "server")]
mod live {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::{cases, check, common, op, read_response, Case};

    /// Sends a case's requests and reads until the expected responses are
    /// in (and, for a closing case, until the close).
    fn run(port: u16, case: &Case) -> (Vec<u8>, bool) {
        // A fresh start for every case.
        let mut flush = connect(port);
        flush.write_all(&op(0x08)).unwrap();
        let mut buf = [0u8; 24];
        flush.read_exact(&mut buf).unwrap();
        let mut conn = connect(port);
        conn.write_all(&case.requests.concat()).unwrap();
        let mut reply = Vec::new();
        let mut chunk = [0u8; 64 << 10];
        let deadline = Instant::now() + common::PATIENCE;
        loop {
            let count = {
                let (mut rest, mut n) = (&reply[..], 0);
                while let Some((_, len)) = read_response(rest) {
                    rest = &rest[len..];
                    n += 1;
                }
                n
            };
            if count >= case.responses.len() && !case.closes {
                return (reply, false);
            }
            assert!(Instant::now() < deadline, "{}: no reply", case.name);
            match common::read_some(&mut conn, &mut chunk) {
                Ok(0) => return (reply, true),
                Ok(n) => reply.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (reply, true),
                Err(e) => panic!("{}: {e}", case.name),
            }
        }
    }

    fn connect(port: u16) -> TcpStream {
        let conn = TcpStream::connect(("127.0.0.1", port)).unwrap();
        conn.set_read_timeout(Some(common::PATIENCE)).unwrap();
        conn
    }

    #[test]
    fn every_case_of_the_table_holds_for_larder_server() {
        let server = common::TestServer::default();
        for case in cases() {
            let (reply, closed) = run(server.addr.port(), &case);
            check(&case, &reply, closed, "larder-server");
        }
    }

    struct Memcached(Child);

    impl Drop for Memcached {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    /// memcached on a free port, or `None` if it is not installed.
    fn memcached() -> Option<(Memcached, u16)> {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("memcached")
            .args(["-u", "root", "-l", "127.0.0.1", "-U", "0", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(child) => Memcached(child),
            Err(e) if std::env::var_os("LARDER_REQUIRE_MEMCACHED").is_some() => {
                panic!("memcached is required: {e}")
            }
            Err(_) => return None,
        };
        let deadline = Instant::now() + common::PATIENCE;
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "memcached did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some((child, port))
    }

    #[test]
    fn every_case_of_the_table_holds_for_real_memcached() {
        let Some((_memcached, port)) = memcached() else {
            eprintln!("memcached is not installed: the table was not checked against it");
            return;
        };
        for case in cases() {
            let (reply, closed) = run(port, &case);
            check(&case, &reply, closed, "memcached");
        }
    }
}

// ---- SASL (memcached's -S) -----------------------------------------------------

/// A binary-only store that lets `user` in with password `pass`.
fn sasl_store() -> Store {
    let (clock, _hand) = Clock::manual();
    let mut users = Credentials::new();
    users.insert("user", "pass");
    Store::new(StoreConfig {
        clock,
        sasl: Some(users),
        protocols: Protocols::Binary,
        version: Cow::Borrowed("1.6.0-test"),
        ..StoreConfig::default()
    })
    .unwrap()
}

/// Sends `requests` on `session` of `store`; the responses read back and
/// whether the store asked to close.
fn exchange(store: &Store, session: &mut Session, requests: &[Vec<u8>]) -> (Vec<Raw>, bool) {
    let mut out = Vec::new();
    let input = requests.concat();
    let progress = store.process(session, &input, &mut out);
    let closed = progress.outcome != Outcome::Continue;
    assert!(closed || progress.consumed == input.len());
    let mut responses = Vec::new();
    let mut rest = &out[..];
    while let Some((raw, len)) = read_response(rest) {
        responses.push(raw);
        rest = &rest[len..];
    }
    assert!(rest.is_empty());
    (responses, closed)
}

/// (opcode, status, value) of each response.
fn statuses(responses: &[Raw]) -> Vec<(u8, u16, Vec<u8>)> {
    responses
        .iter()
        .map(|(op, status, _, _, value, _, _)| (*op, *status, value.clone()))
        .collect()
}

#[test]
fn with_sasl_only_version_and_the_sasl_commands_are_answered_before_authentication() {
    let store = sasl_store();
    let (got, closed) = exchange(
        &store,
        &mut Session::new(),
        &[op(0x0b), op(0x20), keyed(0x00, b"k"), op(0x0a)],
    );
    assert_eq!(
        statuses(&got),
        vec![
            (0x0b, 0, b"1.6.0-test".to_vec()),
            (0x20, 0, b"PLAIN".to_vec()),
            (0x00, 0x20, b"Auth failure.".to_vec()),
        ]
    );
    assert!(
        closed,
        "memcached closes after refusing an unauthenticated request"
    );
    // An unknown opcode, or a malformed request, is refused the same way.
    for bad in [op(0x40), packet(0x00, b"", b"", b"", 0)] {
        let (got, closed) = exchange(&store, &mut Session::new(), &[bad]);
        assert_eq!(got[0].1, 0x20);
        assert!(closed);
    }
}

#[test]
fn with_sasl_plain_lets_a_known_user_in_and_refuses_the_rest() {
    let store = sasl_store();
    let mut session = Session::new();
    let (got, closed) = exchange(
        &store,
        &mut session,
        &[
            packet(0x21, b"PLAIN", b"", b"\0user\0wrong", 0),
            packet(0x21, b"PLAIN", b"", b"\0nobody\0pass", 0),
            packet(0x21, b"CRAM-MD5", b"", b"", 0),
            packet(0x22, b"PLAIN", b"", b"\0user\0pass", 0),
            packet(0x21, &[b'M'; 33], b"", b"", 0),
            packet(0x21, b"PLAIN", b"", b"\0user\0pass", 0),
            set(0x01, b"k", b"v", 0),
            keyed(0x00, b"k"),
        ],
    );
    assert!(!closed);
    let refused = (0x21, 0x20, b"Auth failure.".to_vec());
    assert_eq!(
        statuses(&got),
        vec![
            refused.clone(),
            refused.clone(),
            refused,
            (0x22, 0x20, b"Auth failure.".to_vec()),
            (0x21, 0x04, b"Invalid arguments".to_vec()),
            (0x21, 0, b"Authenticated".to_vec()),
            (0x01, 0, Vec::new()),
            (0x00, 0, b"v".to_vec()),
        ]
    );
    // Counted as memcached counts them: every attempt but the one whose
    // mechanism name is too long, refusals in `auth_errors`.
    let (stats, _) = exchange(&store, &mut session, &[keyed(0x10, b"")]);
    let stat = |name: &[u8]| {
        stats
            .iter()
            .find(|r| r.3 == name)
            .map(|r| String::from_utf8(r.4.clone()).unwrap())
    };
    assert_eq!(stat(b"auth_cmds").as_deref(), Some("5"));
    assert_eq!(stat(b"auth_errors").as_deref(), Some("4"));
    // Another connection starts unauthenticated.
    let (got, closed) = exchange(&store, &mut Session::new(), &[keyed(0x00, b"k")]);
    assert_eq!(got[0].1, 0x20);
    assert!(closed);
}

#[test]
fn sasl_is_refused_on_a_store_that_lets_text_connections_in() {
    let (clock, _hand) = Clock::manual();
    let config = StoreConfig {
        clock,
        sasl: Some(Credentials::new()),
        ..StoreConfig::default()
    };
    assert_eq!(Store::new(config).unwrap_err(), StoreError::SaslNeedsBinary);
}

#[test]
fn with_sasl_a_sasl_command_starts_authentication_over_and_a_connection_authenticates_once() {
    let store = sasl_store();
    let auth = packet(0x21, b"PLAIN", b"", b"\0user\0pass", 0);
    // Listing the mechanisms again leaves the connection unauthenticated.
    let (got, closed) = exchange(
        &store,
        &mut Session::new(),
        &[auth.clone(), op(0x20), op(0x0a)],
    );
    assert_eq!(got.iter().map(|r| r.1).collect::<Vec<_>>(), [0, 0, 0x20]);
    assert!(closed);
    // A second exchange fails, even with the right password, and so does
    // the connection's authentication.
    let (got, closed) = exchange(&store, &mut Session::new(), &[auth.clone(), auth, op(0x0a)]);
    assert_eq!(got.iter().map(|r| r.1).collect::<Vec<_>>(), [0, 0x20, 0x20]);
    assert!(closed);
}

#[test]
fn replaced_sasl_users_take_the_next_logins_and_leave_logged_in_connections_in() {
    let store = sasl_store();
    let login = |user: &[u8]| {
        let mut message = b"\0".to_vec();
        message.extend_from_slice(user);
        message.extend_from_slice(b"\0pass");
        packet(0x21, b"PLAIN", b"", &message, 0)
    };
    let mut before = Session::new();
    let (got, _) = exchange(&store, &mut before, &[login(b"user")]);
    assert_eq!(statuses(&got), vec![(0x21, 0, b"Authenticated".to_vec())]);

    let mut users = Credentials::new();
    users.insert("other", "pass");
    assert!(store.set_sasl_users(users));
    // The old user's next login fails; the new one's succeeds.
    let (got, _) = exchange(&store, &mut Session::new(), &[login(b"user")]);
    assert_eq!(got.iter().map(|r| r.1).collect::<Vec<_>>(), [0x20]);
    let (got, _) = exchange(&store, &mut Session::new(), &[login(b"other")]);
    assert_eq!(got.iter().map(|r| r.1).collect::<Vec<_>>(), [0]);
    // The connection that logged in before stays in.
    let (got, closed) = exchange(&store, &mut before, &[keyed(0x00, b"k")]);
    assert!(!closed);
    assert_eq!(statuses(&got), vec![(0x00, 0x01, b"Not found".to_vec())]);
    // A store without SASL has no users to replace.
    assert!(!Store::new(StoreConfig::default())
        .unwrap()
        .set_sasl_users(Credentials::new()));
}

#[test]
fn with_sasl_plain_may_send_its_message_in_a_step_after_an_empty_auth() {
    let store = sasl_store();
    let mut session = Session::new();
    let (got, closed) = exchange(
        &store,
        &mut session,
        &[
            packet(0x21, b"PLAIN", b"", b"", 0),
            packet(0x22, b"PLAIN", b"", b"\0user\0pass", 0),
            keyed(0x00, b"k"),
        ],
    );
    assert!(!closed);
    assert_eq!(
        statuses(&got),
        vec![
            (0x21, 0x21, Vec::new()),
            (0x22, 0, b"Authenticated".to_vec()),
            (0x00, 0x01, b"Not found".to_vec()),
        ]
    );
}
