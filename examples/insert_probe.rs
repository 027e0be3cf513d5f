//! A quick probe of the miss path: every operation is a `get` of a key never
//! seen before (a miss) and its `insert`, into a full cache of 100,000 `u64`
//! entries, so each insert evicts. Contenders: larder with its default policy,
//! `s3fifo`, `clock` and `lru`, and quick_cache. Each is filled first, then
//! runs 5 rounds of 2,000,000 operations per thread, interleaved with the
//! others; the median (min, max) is printed.
//!
//! `cargo run --release --example insert_probe [-- NAME..]`

#![allow(missing_docs)]

#[path = "../benches/common/mod.rs"]
mod common;

use common::*;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

/// Million miss-and-insert operations per second of `threads` threads each
/// doing `ops`, on keys from `next` on (each thread its own).
fn run(c: &dyn BenchCache, next: &AtomicU64, threads: usize, ops: usize) -> f64 {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            let first = next.fetch_add(ops as u64, Relaxed);
            s.spawn(move || {
                for i in first..first + ops as u64 {
                    let k = key_of(i);
                    if c.get(k).is_none() {
                        c.insert(k, i);
                    }
                }
            });
        }
    });
    (ops * threads) as f64 / t0.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let cap = 100_000u64;
    let which: Vec<String> = std::env::args().skip(1).collect();
    let contenders = evicting_contenders(cap, &which);
    let next = AtomicU64::new(0);
    for (_, c) in &contenders {
        run(&**c, &next, 1, cap as usize * 2);
    }
    for threads in [1, 2] {
        let mut runs: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
        for _ in 0..5 {
            for (i, (_, c)) in contenders.iter().enumerate() {
                runs[i].push(run(&**c, &next, threads, 2_000_000));
            }
        }
        for (i, (name, _)) in contenders.iter().enumerate() {
            let (median, min, max) = median_of_five(&mut runs[i]);
            println!(
                "{threads}t {name:<14} median {median:5.1} M ops/s (min {min:.1}, max {max:.1})"
            );
        }
    }
}
