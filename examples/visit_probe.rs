//! `get` against `get_with` on 1 KB `Arc<[u8]>` values, interleaved: the
//! throughput bench's `visit_1k_4k_keys` group (Zipf(0.99) over 4,096 keys,
//! each read summing two bytes of the value) with the two read paths (and
//! quick_cache's `get`) timed in alternation, 9 rounds of 4,000,000 reads each
//! on one thread, so that a noisy host slows them alike. Prints each one's
//! median (min, max) in ns per read, and `get` / `get_with` per round.
//!
//! `cargo run --release --example visit_probe [-- KEYS]`

#![allow(missing_docs)]

#[path = "../benches/common/mod.rs"]
mod common;

use common::{key_of, zipf_keys};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const READS: usize = 4_000_000;
const ROUNDS: usize = 9;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse().expect("KEYS is a number"))
        .unwrap_or(4_096);
    // The bench's stream: the same distribution, sample count and seed.
    let keys = zipf_keys(n, 0.99, 1 << 20, 11);
    let value = |k: u64| -> Arc<[u8]> { vec![k as u8; 1024].into() };
    // Room for twice the keys: with many CPUs (many shards) a capacity of
    // 5/4 of them leaves some shards too small for the keys they draw.
    let ours: larder::Cache<u64, Arc<[u8]>> = larder::Cache::new(n as u64 * 2);
    let theirs: quick_cache::sync::Cache<u64, Arc<[u8]>> = quick_cache::sync::Cache::new(n * 2);
    for rank in 0..n as u64 {
        ours.insert(key_of(rank), value(rank));
        theirs.insert(key_of(rank), value(rank));
    }
    let read = |v: &[u8]| u32::from(v[0]) + u32::from(v[1023]);
    let missing = keys
        .iter()
        .filter(|&&k| !ours.contains_key(&k) || theirs.get(&k).is_none());
    if let Some(k) = missing.clone().next() {
        eprintln!(
            "key {k:#x} (and {} more reads) not held: the probe needs every key",
            missing.count() - 1
        );
        std::process::exit(1);
    }
    type Read<'a> = &'a dyn Fn(u64) -> Option<u32>;
    let ops: [(&str, Read); 3] = [
        ("larder get", &|k| ours.get(&k).map(|v| read(&v))),
        ("larder get_with", &|k| ours.get_with(&k, |v| read(v))),
        ("quick_cache get", &|k| theirs.get(&k).map(|v| read(&v))),
    ];
    let mut times = vec![Vec::new(); ops.len()];
    for _ in 0..ROUNDS {
        for (i, (_, op)) in ops.iter().enumerate() {
            let start = Instant::now();
            let mut sum = 0u64;
            for &k in keys.iter().cycle().take(READS) {
                sum += u64::from(op(black_box(k)).unwrap_or(0));
            }
            black_box(sum);
            times[i].push(start.elapsed().as_nanos() as f64 / READS as f64);
        }
    }
    let ratios: Vec<String> = times[0]
        .iter()
        .zip(&times[1])
        .map(|(g, w)| format!("{:.2}", g / w))
        .collect();
    for ((name, _), t) in ops.iter().zip(&mut times) {
        let (lo, hi) = (
            t.iter().cloned().fold(f64::MAX, f64::min),
            t.iter().cloned().fold(0.0, f64::max),
        );
        println!(
            "{name:<16} median {:6.2} ns per read (min {lo:.2}, max {hi:.2})",
            median(t)
        );
    }
    println!("get / get_with by round: {}", ratios.join(" "));
}
