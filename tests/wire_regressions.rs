//! Regressions found by comparing larder-server with memcached 1.6 on the
//! wire: each test sends what a client (or an attacker) sent and expects
//! exactly the bytes memcached 1.6.18 answers, over a real socket to an
//! in-process server.
#![cfg(feature = "server")]

mod common;

use std::io::Write;
use std::net::TcpStream;

use common::{read_to_close, read_until, request, TestServer};

/// Sends each line on one connection and checks its exact reply.
fn expect_replies(server: &TestServer, cases: &[(&str, &str)]) {
    let mut conn = server.connect();
    for (line, reply) in cases {
        // `mn` after each line marks where its reply ends (and shows a
        // silent `noreply` answer as nothing before `MN`).
        let got = request(&mut conn, format!("{line}\r\nmn\r\n").as_bytes(), b"MN\r\n");
        assert_eq!(got, format!("{reply}MN\r\n"), "reply to {line:?}");
    }
}

fn closes_without_a_byte(conn: &mut TcpStream, input: &[u8]) -> Vec<u8> {
    conn.write_all(input).unwrap();
    read_to_close(conn)
}

// ---- HTTP request lines ---------------------------------------------------

#[test]
fn http_request_lines_close_the_connection_without_a_reply() {
    let server = TestServer::default();
    for line in [
        "GET / HTTP/1.0",
        "PUT /x HTTP/1.1",
        "DELETE HTTP/1.1",
        "POST /submit HTTP/1.1",
        "HTTP/1.1",
        "  GET / HTTP/1.1   ",
        "OPTIONS * HTTP/2",
    ] {
        let mut conn = server.connect();
        let got = closes_without_a_byte(&mut conn, format!("{line}\r\nHost: x\r\n\r\n").as_bytes());
        assert!(
            got.is_empty(),
            "{line:?} got {:?}",
            String::from_utf8_lossy(&got)
        );
    }
}

#[test]
fn an_http_line_after_valid_commands_closes_after_their_replies() {
    let server = TestServer::default();
    let mut conn = server.connect();
    let got = closes_without_a_byte(&mut conn, b"mn\r\nGET / HTTP/1.1\r\nmn\r\n");
    assert_eq!(got, b"MN\r\n");
}

#[test]
fn lines_that_only_look_like_http_are_answered_as_memcached_does() {
    let server = TestServer::default();
    expect_replies(
        &server,
        &[
            // A real command whose keys happen to look like HTTP.
            ("get / HTTP/1.0", "END\r\n"),
            ("delete HTTP/1.1", "NOT_FOUND\r\n"),
            // The last token is not HTTP/x.
            ("GET / HTTP/1.1 x", "ERROR\r\n"),
            ("GET / http/1.1", "ERROR\r\n"),
            // memcached dispatches names starting with these letters first.
            ("gimme / HTTP/1.1", "ERROR\r\n"),
            ("set HTTP/1.1", "ERROR\r\n"),
            // More tokens than memcached's tokenizer splits.
            (
                "GET a a a a a a a a a a a a a a a a a a a a a a HTTP/1.1",
                "ERROR\r\n",
            ),
        ],
    );
}

// ---- tuning commands: memcached's argument errors -------------------------

#[test]
fn slabs_automove_answers_argument_errors_as_memcached() {
    let server = TestServer::default();
    expect_replies(
        &server,
        &[
            (
                "slabs automove invalid",
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                "slabs automove -1",
                "CLIENT_ERROR bad command line format\r\n",
            ),
            ("slabs automove 3", "ERROR\r\n"),
            ("slabs automove", "ERROR\r\n"),
            ("slabs automove noreply", ""),
            ("slabs automove 0", "OK\r\n"),
            ("slabs automove 2", "OK\r\n"),
            ("slabs automove 1 extra", "OK\r\n"),
            ("slabs automove 1 noreply", ""),
        ],
    );
}

#[test]
fn slabs_reassign_answers_argument_errors_as_memcached() {
    let server = TestServer::default();
    expect_replies(
        &server,
        &[
            ("slabs", "ERROR\r\n"),
            ("slabs bogus 1", "ERROR\r\n"),
            ("slabs reassign", "ERROR\r\n"),
            ("slabs reassign 1", "ERROR\r\n"),
            ("slabs reassign 1 2 3", "ERROR\r\n"),
            (
                "slabs reassign a b",
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                "slabs reassign 1 a",
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                "slabs reassign -2 1",
                "BADCLASS invalid src or dst class id\r\n",
            ),
            (
                "slabs reassign 1 64",
                "BADCLASS invalid src or dst class id\r\n",
            ),
            (
                "slabs reassign 1 1",
                "SAME src and dst class are identical\r\n",
            ),
            (
                "slabs reassign 1 0",
                "NOSPARE source class has no spare pages\r\n",
            ),
        ],
    );
}

#[test]
fn lru_crawler_answers_argument_errors_as_memcached() {
    let server = TestServer::default();
    expect_replies(
        &server,
        &[
            ("lru_crawler", "ERROR\r\n"),
            ("lru_crawler bogus", "ERROR\r\n"),
            ("lru_crawler enable 1", "ERROR\r\n"),
            ("lru_crawler sleep", "ERROR\r\n"),
            ("lru_crawler sleep 1 2", "ERROR\r\n"),
            (
                "lru_crawler sleep abc",
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                "lru_crawler sleep -1",
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                "lru_crawler sleep 1000001",
                "CLIENT_ERROR sleep must be one second or less\r\n",
            ),
            ("lru_crawler sleep 1000000", "OK\r\n"),
            (
                "lru_crawler tocrawl abc",
                "CLIENT_ERROR bad command line format\r\n",
            ),
            ("lru_crawler tocrawl 100", "OK\r\n"),
            ("lru_crawler crawl", "ERROR\r\n"),
            ("lru_crawler crawl 1 noreply", "ERROR\r\n"),
            ("lru_crawler crawl abc", "BADCLASS invalid class id\r\n"),
            ("lru_crawler crawl 0", "BADCLASS invalid class id\r\n"),
            ("lru_crawler crawl 64", "BADCLASS invalid class id\r\n"),
            ("lru_crawler crawl 1,abc", "BADCLASS invalid class id\r\n"),
            ("lru_crawler crawl 1,2", "OK\r\n"),
            ("lru_crawler crawl all", "OK\r\n"),
            ("lru_crawler metadump", "ERROR\r\n"),
            (
                "lru_crawler metadump bogus",
                "BADCLASS invalid class id\r\n",
            ),
            ("lru_crawler metadump all", "END\r\n"),
            ("lru_crawler metadump hash", "END\r\n"),
            ("lru_crawler disable", "OK\r\n"),
        ],
    );
}

#[test]
fn lru_answers_every_argument_error_with_error() {
    let server = TestServer::default();
    expect_replies(
        &server,
        &[
            ("lru", "ERROR\r\n"),
            ("lru bogus", "ERROR\r\n"),
            ("lru mode", "ERROR\r\n"),
            ("lru mode bogus", "ERROR\r\n"),
            ("lru mode bogus noreply", ""),
            ("lru tune", "ERROR\r\n"),
            ("lru tune 10 20 0.1", "ERROR\r\n"),
            ("lru tune a b c d", "ERROR\r\n"),
            ("lru tune -1 20 0.1 2", "ERROR\r\n"),
            ("lru tune 10 20 0.1 x", "ERROR\r\n"),
            ("lru temp_ttl", "ERROR\r\n"),
            ("lru temp_ttl abc", "ERROR\r\n"),
            ("lru temp_ttl 1.5", "ERROR\r\n"),
            ("lru mode flat", "OK\r\n"),
            ("lru mode segmented noreply", ""),
            ("lru tune 10 20 0.1 2", "OK\r\n"),
            ("lru temp_ttl -1", "OK\r\n"),
        ],
    );
}

#[test]
fn verbosity_and_cache_memlimit_read_64_bit_numbers_as_memcached() {
    let server = TestServer::default();
    expect_replies(
        &server,
        &[
            ("verbosity", "ERROR\r\n"),
            ("verbosity abc", "CLIENT_ERROR bad command line format\r\n"),
            ("verbosity -1", "CLIENT_ERROR bad command line format\r\n"),
            ("verbosity 1 2 3", "ERROR\r\n"),
            ("verbosity 99999999999", "OK\r\n"),
            ("verbosity noreply", ""),
            ("cache_memlimit", "ERROR\r\n"),
            ("cache_memlimit abc", "ERROR\r\n"),
            ("cache_memlimit -1", "ERROR\r\n"),
            ("cache_memlimit 100 2 3", "ERROR\r\n"),
            (
                "cache_memlimit 1",
                "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
            ),
            (
                "cache_memlimit 99999999999",
                "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n",
            ),
            ("cache_memlimit 100 noreply", ""),
        ],
    );
}

#[test]
fn stats_with_bad_arguments_answers_as_memcached() {
    let server = TestServer::default();
    expect_replies(
        &server,
        &[
            ("stats bogus", "CLIENT_ERROR unknown stats group\r\n"),
            ("stats a b c d e f", "CLIENT_ERROR unknown stats group\r\n"),
            (
                "stats detail",
                "CLIENT_ERROR usage: stats detail on|off|dump\r\n",
            ),
            ("stats cachedump", "CLIENT_ERROR bad command line\r\n"),
            ("stats cachedump 1", "CLIENT_ERROR bad command line\r\n"),
            (
                "stats cachedump a b",
                "CLIENT_ERROR bad command line format\r\n",
            ),
            (
                "stats cachedump -1 1",
                "CLIENT_ERROR bad command line format\r\n",
            ),
            ("stats cachedump 64 1", "CLIENT_ERROR Illegal slab id\r\n"),
            ("stats cachedump 1 1", "END\r\n"),
        ],
    );
    let mut conn = server.connect();
    conn.write_all(b"stats sizes x\r\n").unwrap();
    assert_eq!(
        read_until(&mut conn, b"END\r\n"),
        "STAT sizes_status disabled\r\nEND\r\n"
    );
}

// ---- multi-gets longer than a line ----------------------------------------

/// `get` followed by `count` keys: every fourth one `hit`, the rest misses.
fn multiget_line(command: &str, count: usize) -> (Vec<u8>, usize) {
    let mut line = command.as_bytes().to_vec();
    let mut hits = 0;
    for i in 0..count {
        if i % 4 == 0 {
            line.extend_from_slice(b" hit");
            hits += 1;
        } else {
            line.extend_from_slice(format!(" m{i:07}").as_bytes());
        }
    }
    line.extend_from_slice(b"\r\n");
    (line, hits)
}

/// A connection to `server`, which now holds `hit` (value `v`, `flags`).
fn with_hit(server: &TestServer, flags: u32) -> TcpStream {
    let mut conn = server.connect();
    let set = format!("set hit {flags} 0 1\r\nv\r\n");
    assert_eq!(request(&mut conn, set.as_bytes(), b"\r\n"), "STORED\r\n");
    conn
}

#[test]
fn a_multiget_of_18000_keys_on_one_128_kib_line_answers_every_key() {
    let server = TestServer::default();
    let mut conn = with_hit(&server, 0);
    let (line, hits) = multiget_line("get", 18_000);
    assert!(line.len() > 128 << 10, "{}", line.len());
    let reply = request(&mut conn, &line, b"END\r\n");
    assert_eq!(reply, "VALUE hit 0 1\r\nv\r\n".repeat(hits) + "END\r\n");
    // The connection goes on.
    assert_eq!(request(&mut conn, b"mn\r\n", b"\r\n"), "MN\r\n");
}

#[test]
fn gets_gat_and_gats_stream_long_key_lists_too() {
    let server = TestServer::default();
    let mut conn = with_hit(&server, 7);
    for command in ["gets", "gat 0", "gats 100"] {
        let (line, hits) = multiget_line(command, 20_000);
        let reply = request(&mut conn, &line, b"END\r\n");
        assert_eq!(reply.matches("VALUE hit 7 1").count(), hits, "{command}");
        assert!(reply.ends_with("v\r\nEND\r\n"), "{command}");
    }
}

#[test]
fn a_multiget_line_larger_than_the_input_buffer_is_answered_as_it_arrives() {
    // Each connection may buffer 256 KiB; the line is 4 MiB.
    let server = TestServer::start(larder::server::ServerConfig {
        max_input: Some(256 << 10),
        ..larder::server::ServerConfig::default()
    });
    let mut conn = with_hit(&server, 0);
    let (line, hits) = multiget_line("get", 600_000);
    assert!(line.len() > 4 << 20);
    let writer = {
        let mut conn = conn.try_clone().unwrap();
        std::thread::spawn(move || conn.write_all(&line).unwrap())
    };
    let reply = read_until(&mut conn, b"END\r\n");
    writer.join().unwrap();
    assert_eq!(reply.len(), "VALUE hit 0 1\r\nv\r\n".len() * hits + 5);
}

#[test]
fn an_overlong_key_in_a_long_multiget_line_is_memcacheds_error_and_the_connection_goes_on() {
    let server = TestServer::default();
    let mut conn = server.connect();
    for at in [100, 15_000] {
        // The bad key is in the first 64 KiB, then far past it.
        let mut line = Vec::from(&b"get"[..]);
        for i in 0..30_000 {
            if i == at {
                line.push(b' ');
                line.extend_from_slice(&[b'x'; 251]);
            }
            line.extend_from_slice(format!(" miss{i}").as_bytes());
        }
        line.extend_from_slice(b"\r\nmn\r\n");
        let reply = request(&mut conn, &line, b"MN\r\n");
        assert_eq!(
            reply, "CLIENT_ERROR bad command line format\r\nMN\r\n",
            "bad key at {at}"
        );
    }
}

/// A piece of a long get paused by the output limit, then refused when more of
/// the line arrives (a key grows past 250 bytes), leaves no resume point: the
/// next get on the session answers from its first key.
#[test]
fn a_refused_long_get_does_not_skip_keys_of_the_next_get() {
    use larder::memcached::{Session, Store, StoreConfig};
    let store = Store::new(StoreConfig::default()).unwrap();
    let value = "v".repeat(40);
    for key in ["k0", "k1", "k2"] {
        let set = format!("set {key} 0 0 40\r\n{value}\r\n");
        let _ = store.process(&mut Session::new(), set.as_bytes(), &mut Vec::new());
    }
    // One reply of a 40-byte value fits the limit, two do not.
    let mut session = Session::new().with_output_limit(64);
    let mut buffered = Vec::new();
    // Feeds `more` and runs one `process` call; returns what it answered.
    let mut step = |more: &[u8]| {
        buffered.extend_from_slice(more);
        let mut out = Vec::new();
        let progress = store.process(&mut session, &buffered, &mut out);
        buffered.drain(..progress.consumed);
        String::from_utf8_lossy(&out).into_owned()
    };
    let mut head = b"get ".to_vec();
    while head.len() <= 70_000 {
        head.extend_from_slice(b"missing ");
    }
    step(&head);
    let paused = step(b"k0 k1 k2 ");
    assert!(paused.starts_with("VALUE k0 "), "{paused:?}");
    let refused = step(&[b'x'; 300]);
    assert_eq!(refused, "CLIENT_ERROR bad command line format\r\n");
    let next = step(b"\r\nget k0\r\n");
    assert_eq!(next, format!("VALUE k0 0 40\r\n{value}\r\nEND\r\n"));
}
