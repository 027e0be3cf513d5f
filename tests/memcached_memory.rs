//! `memory_limit` bounds what the store really allocates: a counting global
//! allocator checks that `ITEM_OVERHEAD` covers an item's true cost.
//!
//! The allocator sees requested sizes, not the allocator's own headers and
//! rounding; the store charges each item's block as it is stored (its slot
//! in the store's arena, whose 32 KiB pages the allocator sees whole, or a
//! heap block as malloc rounds it) plus `ITEM_OVERHEAD`. It does see the
//! unused capacity of the slot vectors, which a resident-set measure would
//! not.
#![cfg(feature = "memcached")]

use std::sync::{Mutex, PoisonError};

use larder::memcached::{Session, Store, StoreConfig, ITEM_OVERHEAD};

#[path = "../benches/common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::in_use;

/// The allocation counter is process-wide, and the test harness runs tests
/// on parallel threads: two measurements at once would each count the other's
/// items (one alone reads ~195 B per small item, ~255 B beside the other).
/// Every measurement holds this lock from its first reading to its last.
static MEASURING: Mutex<()> = Mutex::new(());

/// Stores `n` items with `value_len`-byte values; returns heap growth per item
/// held, and the store's own figure per item.
fn measure(memory_limit: u64, n: usize, value_len: usize) -> (f64, f64, usize) {
    // A measurement that failed has poisoned the lock, but its store was
    // dropped while unwinding, so it leaves nothing behind to count.
    let _alone = MEASURING.lock().unwrap_or_else(PoisonError::into_inner);
    let before = in_use();
    let store = Store::new(StoreConfig {
        memory_limit,
        ..StoreConfig::default()
    })
    .unwrap();
    let mut session = Session::new();
    let mut out = Vec::new();
    let value = vec![b'v'; value_len];
    let mut request = Vec::new();
    for i in 0..n {
        request.clear();
        request.extend_from_slice(format!("set key:{i:08} 0 0 {value_len}\r\n").as_bytes());
        request.extend_from_slice(&value);
        request.extend_from_slice(b"\r\n");
        out.clear();
        let _ = store.process(&mut session, &request, &mut out);
        assert_eq!(out, b"STORED\r\n");
    }
    drop((out, request, value));
    let used = (in_use() - before) as f64;
    let held = store.len();
    let charged = store.bytes() as f64;
    (used / held as f64, charged / held as f64, held)
}

/// The cache's tables grow in steps, and just after a step they hold the most
/// spare room: the item counts below land at different points of the steps
/// (the default shards' tables, 8 on 2 CPUs, double up to 64 entries each,
/// then grow by a quarter).
#[test]
fn small_items_cost_no_more_than_they_are_charged() {
    for n in [7_000, 14_000, 28_000, 55_000, 100_000] {
        let (real, charged, held) = measure(256 << 20, n, 10);
        assert_eq!(held, n);
        eprintln!(
            "{n} small items: {real:.1} B real, {charged:.1} B charged (overhead {ITEM_OVERHEAD})"
        );
        assert!(real <= charged, "{n} items: {real} > {charged}");
    }
}

#[test]
fn a_full_store_stays_within_its_memory_limit() {
    for (limit, value_len) in [(6 << 20, 10), (8 << 20, 100), (12 << 20, 10)] {
        let n = 4 * limit as usize / (value_len + 60);
        let (real, _, held) = measure(limit, n, value_len);
        let total = real * held as f64;
        eprintln!(
            "full store: {held} items of {value_len} B, {:.2} MiB real of {} MiB",
            total / (1 << 20) as f64,
            limit >> 20
        );
        assert!(total <= limit as f64, "{total} > {limit}");
    }
}
