//! The default (adaptive) policy's hit ratio on the mixed stream, one hash
//! seed at a time: Zipf(0.99) over 1,000,000 `u64` keys, capacity 100,000,
//! `get` and `insert` on a miss (the stream of `mixed_probe` and the
//! criterion `mixed` bench), three passes over the stream on one thread.
//! Prints, per seed, each pass's hit ratio and the placement the policy ended
//! in (from the cache's `Debug` form).
//!
//! The hash seed decides which keys the policy's shadows sample, so a seed
//! whose sample holds a very hot key tests how the shadows weigh it (see
//! `Shadow::decide`). Deterministic: the same seeds give the same lines.
//!
//! `cargo run --release --example seed_sweep -- FIRST_SEED LAST_SEED`

#![allow(missing_docs)]

#[path = "../benches/common/mod.rs"]
mod common;

use common::*;

fn main() {
    let seeds: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("seeds are numbers"))
        .collect();
    let [first, last] = seeds[..] else {
        eprintln!("usage: seed_sweep FIRST_SEED LAST_SEED");
        std::process::exit(2);
    };
    let n = 1_000_000usize;
    let keys = zipf_keys(n, 0.99, 1 << 22, 7);
    for seed in first..=last {
        let cache: larder::Cache<u64, u64> = larder::Cache::builder()
            .max_entries(n as u64 / 10)
            .hash_seed(seed)
            .build()
            .expect("valid builder");
        let mut line = format!("seed {seed:4}");
        for _pass in 0..3 {
            let mut hits = 0u64;
            for &k in &keys {
                if cache.get(&k).is_some() {
                    hits += 1;
                } else {
                    cache.insert(k, k);
                }
            }
            line += &format!(" {:.2}", hits as f64 * 100.0 / keys.len() as f64);
        }
        let shown = format!("{cache:?}");
        let placement = shown
            .split("placement: ")
            .nth(1)
            .and_then(|rest| rest.split([',', ' ']).next())
            .unwrap_or("?");
        println!("{line} {placement}");
    }
}
