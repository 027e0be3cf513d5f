//! A cache preloaded with its whole key space, then read with Zipf(0.99) `get`s
//! (`insert` on a miss): the workload of the eviction issue's first pathology.
//!
//! `cargo run --release --example preloaded_zipf -- [keys] [gets] [capacity%] [threads]`
//! (defaults: 1,000,000 keys, 5,000,000 gets, capacity 100% of the keys, 1 thread).
//! Prints each policy's hit ratio over all gets and over the first 10%, and
//! quick_cache's beside them.

#![allow(missing_docs)]

#[path = "../benches/common/mod.rs"]
mod common;

use common::{key_of, zipf_keys, BenchCache};
use larder::Policy;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

fn arg(i: usize, default: u64) -> u64 {
    std::env::args()
        .nth(i)
        .map_or(default, |a| a.replace('_', "").parse().expect("a number"))
}

/// Replays `keys` (split over `threads` round-robin chunks); returns (hits over
/// all, hits over the first tenth).
fn replay(cache: &(dyn BenchCache + Sync), keys: &[u64], threads: usize) -> (f64, f64) {
    let hits = AtomicU64::new(0);
    let early = AtomicU64::new(0);
    let tenth = keys.len() / 10;
    std::thread::scope(|s| {
        for t in 0..threads {
            let (hits, early) = (&hits, &early);
            s.spawn(move || {
                let mut mine = 0;
                let mut mine_early = 0;
                for (i, &k) in keys.iter().enumerate().skip(t).step_by(threads) {
                    if cache.get(k).is_some() {
                        mine += 1;
                        if i < tenth {
                            mine_early += 1;
                        }
                    } else {
                        cache.insert(k, k);
                    }
                }
                hits.fetch_add(mine, Relaxed);
                early.fetch_add(mine_early, Relaxed);
            });
        }
    });
    (
        hits.load(Relaxed) as f64 / keys.len() as f64,
        early.load(Relaxed) as f64 / tenth as f64,
    )
}

fn main() {
    let n = arg(1, 1_000_000);
    let gets = arg(2, 5_000_000) as usize;
    let pct = arg(3, 100);
    let threads = arg(4, 1) as usize;
    let cap = n * pct / 100;
    let keys = zipf_keys(n as usize, 0.99, gets, 42);
    println!("{n} keys preloaded, {gets} Zipf(0.99) gets, capacity {cap}, {threads} thread(s)");
    let mut rows: Vec<(String, Box<dyn BenchCache + Sync>)> = Vec::new();
    for (name, policy) in [
        ("default", Policy::default()),
        ("s3fifo", Policy::s3fifo()),
        ("clock", Policy::clock()),
        ("lru", Policy::lru()),
    ] {
        rows.push((name.to_string(), Box::new(common::larder(cap, policy))));
    }
    rows.push(("quick_cache".to_string(), Box::new(common::quick(cap))));
    for (name, cache) in rows {
        for rank in 0..n {
            cache.insert(key_of(rank), rank);
        }
        let (all, first) = replay(&*cache, &keys, threads);
        println!("{name:12} hit ratio {all:.4}  first 10% {first:.4}");
    }
}
