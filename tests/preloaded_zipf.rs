//! The eviction issue's first pathology, as a regression test: a cache with room
//! for its whole key space, filled with every key (hottest first), then read with
//! Zipf(0.99) `get`s (`insert` on a miss). Every policy should hit nearly always;
//! the default used to lose 0.6 points here (1.5 at 1,000,000 keys) and never win
//! them back, because the main queue's aging hand evicted the first keys stored
//! (here the hottest) before they had been passed once, and the guarded placement
//! then kept them out for good.

#[path = "../benches/common/mod.rs"]
mod common;

use common::{key_of, zipf_keys};
use larder::{Cache, Policy};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

const KEYS: u64 = 100_000;
const GETS: usize = 500_000;

/// Preloads `cap`-entry cache with `KEYS` keys, replays the Zipf stream from
/// `threads` threads (round-robin), and returns the hit ratio.
fn hit_ratio(policy: Policy, cap: u64, shards: Option<usize>, threads: usize) -> f64 {
    let mut builder = Cache::builder()
        .max_entries(cap)
        .policy(policy)
        .hash_seed(7);
    if let Some(n) = shards {
        builder = builder.shards(n);
    }
    let cache: Cache<u64, u64> = builder.build().unwrap();
    for rank in 0..KEYS {
        cache.insert(key_of(rank), rank);
    }
    let keys = zipf_keys(KEYS as usize, 0.99, GETS, 42);
    let hits = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (cache, keys, hits) = (&cache, &keys, &hits);
            s.spawn(move || {
                let mut mine = 0;
                for &k in keys.iter().skip(t).step_by(threads) {
                    if cache.get(&k).is_some() {
                        mine += 1;
                    } else {
                        cache.insert(k, k);
                    }
                }
                hits.fetch_add(mine, Relaxed);
            });
        }
    });
    cache.validate();
    hits.load(Relaxed) as f64 / GETS as f64
}

fn check(cap: u64, shards: Option<usize>, threads: usize) {
    let default = hit_ratio(Policy::default(), cap, shards, threads);
    let s3fifo = hit_ratio(Policy::s3fifo(), cap, shards, threads);
    println!(
        "cap {cap} shards {shards:?} threads {threads}: default {default:.4} s3fifo {s3fifo:.4}"
    );
    assert!(
        default >= s3fifo - 0.001,
        "default {default:.4} more than 0.1 point under s3fifo {s3fifo:.4} \
         (capacity {cap}, shards {shards:?}, {threads} thread(s))"
    );
}

#[test]
fn whole_key_space_one_thread() {
    check(KEYS, None, 1);
    check(KEYS, Some(8), 1);
}

#[test]
fn whole_key_space_two_threads() {
    check(KEYS, None, 2);
    check(KEYS, Some(8), 2);
}

#[test]
fn whole_key_space_hits_nearly_always() {
    let default = hit_ratio(Policy::default(), KEYS, Some(8), 1);
    assert!(default >= 0.999, "default {default:.4}");
}

#[test]
fn a_tenth_of_the_key_space() {
    check(KEYS / 10, None, 1);
    check(KEYS / 10, Some(8), 2);
}
