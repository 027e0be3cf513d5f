//! The hit path of single-flight loading against a plain `get`.
//!
//! 100k `u64 -> u64` keys, all cached (capacity 200k so no shard evicts), looked up in
//! a shuffled order on one thread: `get`, `get_or_insert_with` (a hit never calls the
//! loader), `Memoized::get`, and moka's `get_with` for reference.
//! Run: `cargo bench --bench memoize`.

#![allow(missing_docs)]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

const KEYS: u64 = 100_000;
const BATCH: usize = 4_096;

fn keys() -> Vec<u64> {
    // Fisher-Yates with a fixed xorshift stream: the same order every run.
    let mut keys: Vec<u64> = (0..KEYS).collect();
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for i in (1..keys.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        keys.swap(i, (x % (i as u64 + 1)) as usize);
    }
    keys
}

fn hit_path(c: &mut Criterion) {
    let keys = keys();
    let cache = larder::Cache::new(2 * KEYS);
    for &k in &keys {
        cache.insert(k, k);
    }
    let memo = larder::Memoized::new(larder::Cache::new(2 * KEYS), |k: &u64| *k);
    for &k in &keys {
        memo.get(&k);
    }
    let moka = moka::sync::Cache::new(2 * KEYS);
    for &k in &keys {
        moka.insert(k, k);
    }

    let mut g = c.benchmark_group("memoize_hit");
    g.throughput(Throughput::Elements(BATCH as u64));
    let mut run = |name: &str, op: &dyn Fn(u64) -> u64| {
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                let mut sum = 0u64;
                for _ in 0..BATCH {
                    i = (i + 1) % keys.len();
                    sum = sum.wrapping_add(op(keys[i]));
                }
                black_box(sum)
            })
        });
    };
    run("larder_get", &|k| cache.get(&k).unwrap_or(0));
    run("larder_get_or_insert_with", &|k| {
        cache.get_or_insert_with(k, || unreachable!())
    });
    run("larder_memoized_get", &|k| memo.get(&k));
    run("moka_get_with", &|k| moka.get_with(k, || unreachable!()));
    g.finish();
}

criterion_group!(benches, hit_path);
criterion_main!(benches);
