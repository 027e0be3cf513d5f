//! A quick read-hit probe for the read-path work: larder (default shards, which
//! is 32 on 2 CPUs, 8 and 64 shards, and `Policy::clock()`), quick_cache and a striped
//! `RwLock<HashMap>` (64 stripes, no policy), all holding the same 1,000,000
//! `u64` keys, read with `get` over Zipf(0.99), at 1 and 2 threads. Each
//! contender runs 5 rounds of 5,000,000 gets per thread, interleaved with the
//! others, and the median (min, max) is printed: quicker and noisier than
//! `cargo bench --bench throughput` (read_hits), and with the shard counts.
//!
//! `larder_built_last` is the default cache again, built after the others: a
//! control for memory placement. In the first runs the default cache, built
//! first, read 5-13% slower than `larder_clock`, built second; built last, the
//! same default cache was as fast as clock or faster.
//!
//! `frozen_hashmap` and `frozen_hashmap_rmw` are not caches: one `HashMap`
//! read with no lock, and the same with a read lock's two atomic
//! instructions per get, the floor of any design that locks to read.
//!
//! `--shuffled` stores the keys in a random order instead of by rank (hottest
//! first), so that no cache gains from holding its hot entries together.
//!
//! `--keys N` reads N keys instead of 1,000,000 (a few thousand keep every
//! cache's entries in the CPU's caches, so the hit path's own work shows).
//!
//! `cargo run --release --example read_probe [-- [--shuffled] [--keys N] NAME..]`

#![allow(missing_docs)]

#[path = "../benches/common/mod.rs"]
mod common;

use common::*;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// One `HashMap`, filled, then frozen on the first `get` and read with no
/// lock at all: the ceiling for a hit with no shared write and no
/// serializing instruction. With `rmw`, each `get` also does what an
/// uncontended read lock does: an atomic increment before the lookup and a
/// decrement after it, on a line of the thread's own. The difference
/// between the two is the cost of the read lock's two locked instructions
/// alone (no line is shared), which on x86 are full barriers: the next
/// lookup's loads cannot start before the previous one's have finished.
struct Frozen {
    filling: Mutex<HashMap<u64, u64, ahash::RandomState>>,
    frozen: OnceLock<HashMap<u64, u64, ahash::RandomState>>,
    rmw: bool,
}

#[repr(align(128))]
struct Own(AtomicU64);

thread_local! {
    static OWN: Own = const { Own(AtomicU64::new(0)) };
}

impl Frozen {
    fn new(rmw: bool) -> Self {
        Frozen {
            filling: Mutex::new(HashMap::default()),
            frozen: OnceLock::new(),
            rmw,
        }
    }
}

impl BenchCache for Frozen {
    #[inline]
    fn get(&self, k: u64) -> Option<u64> {
        let map = self
            .frozen
            .get_or_init(|| std::mem::take(&mut *self.filling.lock().unwrap()));
        if self.rmw {
            OWN.with(|own| {
                own.0.fetch_add(1, SeqCst);
                let v = map.get(&k).copied();
                own.0.fetch_sub(1, SeqCst);
                v
            })
        } else {
            map.get(&k).copied()
        }
    }
    fn insert(&self, k: u64, v: u64) {
        assert!(self.frozen.get().is_none(), "the map is frozen");
        self.filling.lock().unwrap().insert(k, v);
    }
}

/// Million gets per second of `threads` threads each doing `ops` gets.
fn run(c: &dyn BenchCache, keys: &[u64], threads: usize, ops: usize) -> f64 {
    let t0 = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let mut i = t * (keys.len() / threads) + 7919 * t;
                let mut n = 0u64;
                for _ in 0..ops {
                    i = (i + 1) & (keys.len() - 1);
                    if c.get(keys[i]).is_some() {
                        n += 1;
                    }
                }
                assert_eq!(n, ops as u64, "a key is missing");
            });
        }
    });
    (ops * threads) as f64 / t0.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let mut which: Vec<String> = std::env::args().skip(1).collect();
    let shuffled = which.iter().any(|w| w == "--shuffled");
    which.retain(|w| w != "--shuffled");
    let mut n = 1_000_000usize;
    if let Some(at) = which.iter().position(|w| w == "--keys") {
        n = which
            .get(at + 1)
            .and_then(|v| v.parse().ok())
            .expect("--keys takes a number");
        which.drain(at..at + 2);
    }
    // Headroom for the shards' uneven loads, which a small key set feels
    // most: every key must stay cached.
    let cap = if n >= 1 << 16 {
        n as u64 * 5 / 4
    } else {
        n as u64 * 2
    };
    let keys = zipf_keys(n, 0.99, 1 << 20, 42);
    let sharded = |shards: usize| -> Box<dyn BenchCache> {
        let cache = larder::Cache::builder()
            .max_entries(cap)
            .shards(shards)
            .build();
        Box::new(Larder(cache.expect("valid builder")))
    };
    let mut contenders: Vec<(&str, Box<dyn BenchCache>)> = vec![
        ("larder", Box::new(larder(cap, larder::Policy::default()))),
        (
            "larder_clock",
            Box::new(larder(cap, larder::Policy::clock())),
        ),
        ("larder_8_shards", sharded(8)),
        ("larder_64_shards", sharded(64)),
        ("quick_cache", Box::new(quick(cap))),
        ("striped_rwlock_hashmap", Box::new(Striped::new(64))),
        ("frozen_hashmap", Box::new(Frozen::new(false))),
        ("frozen_hashmap_rmw", Box::new(Frozen::new(true))),
        (
            "larder_built_last",
            Box::new(larder(cap, larder::Policy::default())),
        ),
    ];
    contenders.retain(|(name, _)| which.is_empty() || which.iter().any(|w| w == name));
    // Keys go in by rank (the hottest first) unless shuffled: a cache that
    // stores entries in insertion order then holds the hot ones together,
    // which a cache warmed by real traffic does only in part.
    let mut order: Vec<u64> = (0..n as u64).collect();
    if shuffled {
        let mut rng = Rng::new(7);
        for i in (1..order.len()).rev() {
            order.swap(i, (rng.next() % (i as u64 + 1)) as usize);
        }
    }
    for (_, c) in &contenders {
        for &rank in &order {
            c.insert(key_of(rank), rank);
        }
    }
    for threads in [1, 2] {
        let mut runs: Vec<Vec<f64>> = vec![Vec::new(); contenders.len()];
        for _ in 0..5 {
            for (i, (_, c)) in contenders.iter().enumerate() {
                runs[i].push(run(&**c, &keys, threads, 5_000_000));
            }
        }
        for (i, (name, _)) in contenders.iter().enumerate() {
            let (median, min, max) = median_of_five(&mut runs[i]);
            println!(
                "{threads}t {name:24} median {median:.1} M gets/s (min {min:.1}, max {max:.1})"
            );
        }
    }
}
