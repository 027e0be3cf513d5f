//! Throughput of larder and its peers, side by side in one run.
//!
//! - `read_hits`: Zipf 0.99 over 1M u64 keys, all of them cached (capacity 1.25M
//!   for every cache so that no shard evicts), `get` only.
//! - `mixed`: Zipf 0.99 over 1M keys, capacity 100k (10%); `get`, and `insert` on a
//!   miss. The hit ratio each cache reached is printed before the timings.
//!
//! - `visit_1k_4k_keys`, `visit_1k_128k_keys`: 1 KB `Arc<[u8]>` values, 4,096 or
//!   131,072 keys all cached, Zipf 0.99; each read sums two bytes of the value: `get` (clones the `Arc`: two atomic
//!   read-modify-writes on a shared count) against `get_with` (reads in place),
//!   with quick_cache's `get` beside them.
//!
//! Each at 1 and 2 threads. Run: `cargo bench --bench throughput`.

#![allow(missing_docs)]

mod common;

use common::*;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::sync::Barrier;
use std::time::{Duration, Instant};

const KEYS: usize = 1_000_000;
const SAMPLES: usize = 1 << 20;
const BATCH: u64 = 4_096;

fn contenders(cap: u64) -> Vec<(&'static str, Box<dyn BenchCache>)> {
    vec![
        (
            "larder",
            Box::new(larder(cap, larder::Policy::default())) as Box<dyn BenchCache>,
        ),
        (
            "larder_s3fifo",
            Box::new(larder(cap, larder::Policy::s3fifo())),
        ),
        (
            "larder_clock",
            Box::new(larder(cap, larder::Policy::clock())),
        ),
        ("quick_cache", Box::new(quick(cap))),
        ("moka", Box::new(moka(cap))),
        ("mutex_lru", Box::new(mutex_lru(cap))),
        ("striped_rwlock_hashmap", Box::new(Striped::new(16))),
    ]
}

/// Runs `op` over the key stream on `threads` threads, `iters * BATCH` ops each;
/// returns the wall time from a common start.
fn timed(threads: usize, iters: u64, keys: &[u64], op: &(dyn Fn(u64) + Sync)) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        for t in 0..threads {
            let barrier = &barrier;
            s.spawn(move || {
                let mut i = t * (keys.len() / threads.max(1)) + 7919 * t;
                barrier.wait();
                for _ in 0..iters * BATCH {
                    i = (i + 1) & (keys.len() - 1);
                    op(keys[i]);
                }
                barrier.wait();
            });
        }
        barrier.wait();
        let start = Instant::now();
        barrier.wait();
        start.elapsed()
    })
}

/// Benchmarks `op` over `keys` at 1 and 2 threads, as `name/1t` and `name/2t`.
fn at_1_and_2_threads<R>(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    keys: &[u64],
    op: &(dyn Fn(u64) -> R + Sync),
) {
    for threads in [1usize, 2] {
        g.throughput(Throughput::Elements(BATCH * threads as u64));
        g.bench_function(BenchmarkId::new(name, format!("{threads}t")), |b| {
            b.iter_custom(|iters| {
                timed(threads, iters, keys, &|k| {
                    std::hint::black_box(op(k));
                })
            })
        });
    }
}

fn read_hits(c: &mut Criterion) {
    let keys = zipf_keys(KEYS, 0.99, SAMPLES, 42);
    let mut g = c.benchmark_group("read_hits");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for (name, cache) in contenders(KEYS as u64 * 5 / 4) {
        for rank in 0..KEYS as u64 {
            cache.insert(key_of(rank), rank);
        }
        let cached = (0..KEYS as u64)
            .filter(|&r| cache.get(key_of(r)).is_some())
            .count();
        assert_eq!(cached, KEYS, "{name}: not every key is cached");
        at_1_and_2_threads(&mut g, name, &keys, &|k| cache.get(k));
    }
    g.finish();
}

fn mixed(c: &mut Criterion) {
    let keys = zipf_keys(KEYS, 0.99, SAMPLES, 7);
    let cap = KEYS as u64 / 10;
    let mut g = c.benchmark_group("mixed");
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for (name, cache) in contenders(cap) {
        // Warm up to steady state and report the hit ratio of one more pass.
        let op = |k: u64| {
            if cache.get(k).is_none() {
                cache.insert(k, k);
                false
            } else {
                true
            }
        };
        keys.iter().for_each(|&k| {
            op(k);
        });
        let hits = keys.iter().filter(|&&k| op(k)).count();
        println!(
            "mixed/{name}: hit ratio {:.2}%",
            100.0 * hits as f64 / keys.len() as f64
        );
        at_1_and_2_threads(&mut g, name, &keys, &op);
    }
    g.finish();
}

/// Reads of 1 KB `Arc<[u8]>` values that sum two bytes of each: `get` clones
/// the `Arc` (two atomic read-modify-writes on its count), `get_with` reads in
/// place. Two key counts: 4,096 keys (4 MB of values, which stay in the
/// last-level cache) and 131,072 (128 MB, so most reads wait on memory).
fn visit_1k(c: &mut Criterion) {
    for (label, n) in [("4k_keys", 1usize << 12), ("128k_keys", 1 << 17)] {
        visit_1k_at(c, label, n);
    }
}

fn visit_1k_at(c: &mut Criterion, label: &str, n: usize) {
    let keys = zipf_keys(n, 0.99, SAMPLES, 11);
    let value = |k: u64| -> std::sync::Arc<[u8]> { vec![k as u8; 1024].into() };
    // Room for twice the keys: on a machine of many CPUs (many shards) a
    // capacity of 5/4 of them left some shards too small for the keys they
    // drew, and the check below failed.
    let ours: larder::Cache<u64, std::sync::Arc<[u8]>> = larder::Cache::new(n as u64 * 2);
    let theirs: quick_cache::sync::Cache<u64, std::sync::Arc<[u8]>> =
        quick_cache::sync::Cache::new(n * 2);
    for rank in 0..n as u64 {
        ours.insert(key_of(rank), value(rank));
        theirs.insert(key_of(rank), value(rank));
    }
    let read = |v: &[u8]| u32::from(v[0]) + u32::from(v[1023]);
    type Read<'a> = &'a (dyn Fn(u64) -> Option<u32> + Sync);
    let ops: [(&str, Read); 3] = [
        ("larder_get", &|k| ours.get(&k).map(|v| read(&v))),
        ("larder_get_with", &|k| ours.get_with(&k, |v| read(v))),
        ("quick_cache_get", &|k| theirs.get(&k).map(|v| read(&v))),
    ];
    let mut g = c.benchmark_group(format!("visit_1k_{label}"));
    g.warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    for (name, op) in ops {
        assert!(
            keys.iter().all(|&k| op(k).is_some()),
            "{name}: a key is missing"
        );
        at_1_and_2_threads(&mut g, name, &keys, &op);
    }
    g.finish();
}

criterion_group!(benches, read_hits, mixed, visit_1k);
criterion_main!(benches);
