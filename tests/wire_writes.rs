//! Wire-level regressions for writes that replied `STORED` and then vanished:
//! real sockets against an in-process server (see `tests/common`), time from a
//! manual clock. Each test failed on the code before the fix.
#![cfg(feature = "server")]

mod common;

use std::time::Duration;

use common::{request, TestServer};
use larder::memcached::StoreConfig;
use larder::server::ServerConfig;
use larder::Clock;

fn server(store: StoreConfig) -> TestServer {
    TestServer::start(ServerConfig {
        store,
        ..ServerConfig::default()
    })
}

/// `set` and `append` pipelined for each key, then an `mg` of each: every append
/// that answered `STORED` is readable with its whole value.
#[test]
fn an_append_that_grows_an_item_never_evicts_that_item() {
    let server = server(StoreConfig {
        memory_limit: 2 << 20,
        ..StoreConfig::default()
    });
    let mut conn = server.connect();
    // Fill the 2 MB with 400-byte items.
    let filler = "x".repeat(400);
    let mut batch = String::new();
    for i in 0..5000 {
        batch.push_str(&format!("set fill{i} 0 0 400 noreply\r\n{filler}\r\n"));
    }
    batch.push_str("mn\r\n");
    request(&mut conn, batch.as_bytes(), b"MN\r\n");
    let tail = "y".repeat(3000);
    for i in 0..300 {
        let input = format!("set k{i} 0 0 10\r\n0123456789\r\nappend k{i} 0 0 3000\r\n{tail}\r\n");
        let reply = request(&mut conn, input.as_bytes(), b"STORED\r\nSTORED\r\n");
        assert_eq!(reply, "STORED\r\nSTORED\r\n", "key k{i}");
        let reply = request(&mut conn, format!("mg k{i} s\r\n").as_bytes(), b"\r\n");
        assert_eq!(reply, "HD s3010\r\n", "k{i} vanished after STORED");
    }
    assert!(
        server.stat("evictions") > 0,
        "the test must run under pressure"
    );
}

/// Expired items hold room that new sets reuse: live items are not evicted while
/// dead ones are still there, and `stats` shows the reclaiming.
#[test]
fn expired_items_are_reclaimed_before_live_ones_are_evicted() {
    let (clock, hand) = Clock::manual();
    let server = server(StoreConfig {
        memory_limit: 4 << 20,
        shards: Some(1),
        clock,
        ..StoreConfig::default()
    });
    let mut conn = server.connect();
    let big = "b".repeat(100 << 10);
    // 1500 small items that never expire, written first (so a FIFO or CLOCK hand
    // reaches them before anything written later) ...
    let mut batch = String::new();
    let small = "s".repeat(1000);
    for i in 0..1500 {
        batch.push_str(&format!("set live{i} 0 0 1000 noreply\r\n{small}\r\n"));
    }
    // ... then 20 big items with a 10 s TTL fill the rest.
    for i in 0..20 {
        batch.push_str(&format!(
            "set big{i} 0 10 {} noreply\r\n{big}\r\n",
            big.len()
        ));
    }
    batch.push_str("mn\r\n");
    request(&mut conn, batch.as_bytes(), b"MN\r\n");
    assert_eq!(server.stat("evictions"), 0, "the fill itself must fit");
    assert_eq!(server.stat("curr_items"), 1520);

    hand.advance(Duration::from_secs(11));
    // As much again as the expired items held, under new keys.
    let mut batch = String::new();
    for i in 0..20 {
        batch.push_str(&format!(
            "set new{i} 0 0 {} noreply\r\n{big}\r\n",
            big.len()
        ));
    }
    batch.push_str("mn\r\n");
    request(&mut conn, batch.as_bytes(), b"MN\r\n");

    for i in 0..1500 {
        let reply = request(&mut conn, format!("mg live{i} s\r\n").as_bytes(), b"\r\n");
        assert_eq!(reply, "HD s1000\r\n", "live{i} was evicted");
    }
    for i in 0..20 {
        let reply = request(&mut conn, format!("mg new{i} s\r\n").as_bytes(), b"\r\n");
        assert_eq!(reply, format!("HD s{}\r\n", big.len()));
    }
    assert_eq!(server.stat("evictions"), 0);
    assert!(
        server.stat("reclaimed") >= 20,
        "stats must show the reclaiming"
    );
    assert!(server.stat("expired_unfetched") >= 20);
}

/// An absolute exptime 60 days ahead (memcached reads exptimes over 30 days as
/// unix times) keeps the item for the whole 60 days, and `mg t` agrees with it.
#[test]
fn absolute_exptimes_months_ahead_are_kept_exactly() {
    let (clock, hand) = Clock::manual();
    let start = 1_700_000_000u64;
    let server = server(StoreConfig {
        clock,
        unix_time: Some(start),
        ..StoreConfig::default()
    });
    let mut conn = server.connect();
    let day = 86_400u64;
    let exptime = start + 60 * day;
    let reply = request(
        &mut conn,
        format!("set far 0 {exptime} 1\r\nx\r\n").as_bytes(),
        b"\r\n",
    );
    assert_eq!(reply, "STORED\r\n");
    let mut now = 0;
    for elapsed in [day, 38 * day, 50 * day, 60 * day - 1] {
        hand.advance(Duration::from_secs(elapsed - now));
        now = elapsed;
        // A write moves the shards' time base forward as time passes.
        request(&mut conn, b"set other 0 0 1\r\ny\r\n", b"\r\n");
        let reply = request(&mut conn, b"mg far t v\r\n", b"x\r\n");
        assert_eq!(
            reply,
            format!("VA 1 t{}\r\nx\r\n", 60 * day - elapsed),
            "after {elapsed} s"
        );
    }
    hand.advance(Duration::from_secs(1));
    let reply = request(&mut conn, b"mg far t v\r\n", b"\r\n");
    assert_eq!(reply, "EN\r\n");
}

/// Many large sets at once under a small connection-buffer budget all complete.
/// Growing read buffers charged the budget step by step, so each connection
/// held part of it while waiting for more: with 48 concurrent 1 MB sets and a
/// 4 MB budget every connection held ~80 KB and waited forever (until the idle
/// timeout).
#[test]
fn concurrent_large_sets_never_deadlock_the_buffer_budget() {
    let server = TestServer::start(ServerConfig {
        conn_buffer_budget: 4 << 20,
        store: StoreConfig {
            memory_limit: 128 << 20,
            ..StoreConfig::default()
        },
        ..ServerConfig::default()
    });
    // Just under `-I 1m` as memcached counts an item (key, value and header).
    let value = vec![b'v'; (1 << 20) - 100];
    let replies: Vec<String> = std::thread::scope(|s| {
        let clients: Vec<_> = (0..48)
            .map(|i| {
                let (server, value) = (&server, &value);
                s.spawn(move || {
                    let mut conn = server.connect();
                    let mut input = format!("set big{i} 0 0 {}\r\n", value.len()).into_bytes();
                    input.extend_from_slice(value);
                    input.extend_from_slice(b"\r\n");
                    request(&mut conn, &input, b"\r\n")
                })
            })
            .collect();
        clients.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert!(replies.iter().all(|r| r == "STORED\r\n"), "{replies:?}");
    assert_eq!(server.stat("curr_items"), 48);
}
