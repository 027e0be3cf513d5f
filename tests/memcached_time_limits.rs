//! Times at the edges: the largest delays and thresholds the codec accepts,
//! and a store clock close to its end, never overflow the store's deadline
//! arithmetic.
//!
//! The rule: a deadline that would fall past the end of the store clock
//! (`u64::MAX` milliseconds) is the end of the clock. The manual clock
//! saturates there too, so such a deadline is reached only when the clock
//! is run to its very end.
#![cfg(feature = "memcached")]

use std::time::Duration;

use larder::memcached::{Session, Store, StoreConfig};
use larder::{Clock, ManualClock};

/// Unix time when the test stores start, unless a test says otherwise.
const START: u64 = 1_700_000_000;

/// Milliseconds the clock reads when a store near the end of time starts.
const LATE: u64 = u64::MAX - 100_000;

/// A store whose clock reads `clock_ms` and whose unix time is `unix_time`
/// when it starts.
fn store_at(clock_ms: u64, unix_time: u64) -> (Store, ManualClock) {
    let (clock, hand) = Clock::manual();
    hand.advance(Duration::from_millis(clock_ms));
    let store = Store::new(StoreConfig {
        memory_limit: 1 << 20,
        clock,
        unix_time: Some(unix_time),
        ..StoreConfig::default()
    })
    .expect("valid config");
    (store, hand)
}

/// Sends `request` on a fresh session and returns the whole reply.
fn send(store: &Store, request: &[u8]) -> String {
    let mut session = Session::new();
    let mut out = Vec::new();
    let progress = store.process(&mut session, request, &mut out);
    assert_eq!(progress.consumed, request.len(), "{request:?}");
    store.validate();
    String::from_utf8(out).expect("replies are ASCII")
}

#[test]
fn flush_all_with_the_largest_u32_time_waits() {
    let (store, _hand) = store_at(0, START);
    assert_eq!(send(&store, b"set k 0 0 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(send(&store, b"flush_all 4294967295\r\n"), "OK\r\n");
    assert_eq!(send(&store, b"get k\r\n"), "VALUE k 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn flush_all_with_the_largest_i64_time_waits_on_a_store_started_at_unix_zero() {
    // From unix time 0 the absolute time lies past the end of the store clock.
    let (store, hand) = store_at(0, 0);
    hand.advance(Duration::from_secs(5));
    assert_eq!(send(&store, b"set k 0 0 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(send(&store, b"flush_all 9223372036854775807\r\n"), "OK\r\n");
    assert_eq!(send(&store, b"get k\r\n"), "VALUE k 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn a_delayed_flush_near_the_end_of_the_clock_takes_effect_at_the_end() {
    let (store, hand) = store_at(LATE, START);
    assert_eq!(send(&store, b"set k 0 0 1\r\nx\r\n"), "STORED\r\n");
    assert_eq!(send(&store, b"flush_all 1000\r\n"), "OK\r\n");
    hand.advance(Duration::from_secs(50));
    assert_eq!(send(&store, b"get k\r\n"), "VALUE k 0 1\r\nx\r\nEND\r\n");
    hand.advance(Duration::MAX);
    assert_eq!(send(&store, b"get k\r\n"), "END\r\n");
}

#[test]
fn a_huge_recache_threshold_wins_the_recache_of_an_item_with_a_ttl() {
    let (store, _hand) = store_at(0, START);
    assert_eq!(send(&store, b"ms k 1 T100\r\nx\r\n"), "HD\r\n");
    assert_eq!(
        send(&store, b"mg k R4294967295 t v\r\n"),
        "VA 1 t100 W\r\nx\r\n"
    );
}

#[test]
fn a_recache_threshold_past_the_end_of_the_clock_wins_the_recache() {
    let (store, _hand) = store_at(LATE, START);
    assert_eq!(send(&store, b"ms k 1 T10\r\nx\r\n"), "HD\r\n");
    assert_eq!(send(&store, b"mg k R4294967295 v\r\n"), "VA 1 W\r\nx\r\n");
}

#[test]
fn a_relative_recache_threshold_past_the_end_of_the_clock_wins_the_recache() {
    let (store, _hand) = store_at(LATE, START);
    assert_eq!(send(&store, b"ms k 1 T10\r\nx\r\n"), "HD\r\n");
    assert_eq!(send(&store, b"mg k R1000 v\r\n"), "VA 1 W\r\nx\r\n");
}

#[test]
fn the_largest_i64_recache_threshold_on_a_store_started_at_unix_zero_wins() {
    let (store, hand) = store_at(0, 0);
    hand.advance(Duration::from_secs(5));
    assert_eq!(send(&store, b"ms k 1 T10\r\nx\r\n"), "HD\r\n");
    assert_eq!(
        send(&store, b"mg k R9223372036854775807 v\r\n"),
        "VA 1 W\r\nx\r\n"
    );
}

#[test]
fn a_recache_threshold_below_the_remaining_ttl_does_not_win_near_the_end_of_the_clock() {
    let (store, _hand) = store_at(LATE, START);
    assert_eq!(send(&store, b"ms k 1 T60\r\nx\r\n"), "HD\r\n");
    assert_eq!(send(&store, b"mg k R30 v\r\n"), "VA 1\r\nx\r\n");
}
