//! A quick probe of the mixed workload for the read-path work: Zipf(0.99) over
//! 1,000,000 `u64` keys, capacity 100,000 (10%), `get` and `insert` on a miss,
//! the same shape as `cargo bench --bench throughput` (`mixed`). Contenders:
//! larder with its default policy, `s3fifo`, `clock` and `lru`, and
//! quick_cache. Each is warmed with one pass over the keys, then runs 5 rounds
//! of 4,000,000 operations per thread, interleaved with the others; the
//! median (min, max) and the hit ratio over all rounds are printed.
//!
//! `cargo run --release --example mixed_probe [-- NAME..]`

#![allow(missing_docs)]

#[path = "../benches/common/mod.rs"]
mod common;

use common::*;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Million operations per second of `threads` threads each doing `ops`, and
/// the hits among them.
fn run(c: &dyn BenchCache, keys: &[u64], threads: usize, ops: usize) -> (f64, u64) {
    let hits = AtomicU64::new(0);
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let hits = &hits;
            s.spawn(move || {
                let mut i = t * (keys.len() / threads) + 7919 * t;
                let mut n = 0u64;
                for _ in 0..ops {
                    i = (i + 1) & (keys.len() - 1);
                    let k = keys[i];
                    if c.get(k).is_some() {
                        n += 1;
                    } else {
                        c.insert(k, k);
                    }
                }
                hits.fetch_add(n, Relaxed);
            });
        }
    });
    let rate = (ops * threads) as f64 / t0.elapsed().as_secs_f64() / 1e6;
    (rate, hits.into_inner())
}

fn main() {
    let n = 1_000_000usize;
    let cap = n as u64 / 10;
    let keys = zipf_keys(n, 0.99, 1 << 22, 7);
    let which: Vec<String> = std::env::args().skip(1).collect();
    let contenders = evicting_contenders(cap, &which);
    for (_, c) in &contenders {
        run(&**c, &keys, 1, keys.len());
    }
    for threads in [1, 2] {
        let ops = 4_000_000;
        let mut runs: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
        let mut hits = vec![0u64; contenders.len()];
        for _ in 0..5 {
            for (i, (_, c)) in contenders.iter().enumerate() {
                let (rate, h) = run(&**c, &keys, threads, ops);
                runs[i].push(rate);
                hits[i] += h;
            }
        }
        for (i, (name, _)) in contenders.iter().enumerate() {
            let (median, min, max) = median_of_five(&mut runs[i]);
            println!(
                "{threads}t {name:14} median {median:5.1} M ops/s (min {min:.1}, max {max:.1}), hit ratio {:.2}%",
                100.0 * hits[i] as f64 / (5 * ops * threads) as f64
            );
        }
    }
}
