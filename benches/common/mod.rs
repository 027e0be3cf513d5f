//! Shared pieces of the benches: the peers behind one trait, and a Zipf key stream.
#![allow(dead_code, unreachable_pub)]

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;

/// The operations the throughput benches need, for larder and every peer.
pub trait BenchCache: Send + Sync {
    fn get(&self, k: u64) -> Option<u64>;
    fn insert(&self, k: u64, v: u64);
}

pub struct Larder(pub larder::Cache<u64, u64>);
impl BenchCache for Larder {
    #[inline]
    fn get(&self, k: u64) -> Option<u64> {
        self.0.get(&k)
    }
    #[inline]
    fn insert(&self, k: u64, v: u64) {
        self.0.insert(k, v)
    }
}

pub struct QuickCache(pub quick_cache::sync::Cache<u64, u64>);
impl BenchCache for QuickCache {
    #[inline]
    fn get(&self, k: u64) -> Option<u64> {
        self.0.get(&k)
    }
    #[inline]
    fn insert(&self, k: u64, v: u64) {
        self.0.insert(k, v)
    }
}

pub struct Moka(pub moka::sync::Cache<u64, u64>);
impl BenchCache for Moka {
    #[inline]
    fn get(&self, k: u64) -> Option<u64> {
        self.0.get(&k)
    }
    #[inline]
    fn insert(&self, k: u64, v: u64) {
        self.0.insert(k, v)
    }
}

pub struct MutexLru(pub Mutex<lru::LruCache<u64, u64, ahash::RandomState>>);
impl BenchCache for MutexLru {
    #[inline]
    fn get(&self, k: u64) -> Option<u64> {
        self.0.lock().get(&k).copied()
    }
    #[inline]
    fn insert(&self, k: u64, v: u64) {
        self.0.lock().put(k, v);
    }
}

/// A striped `RwLock<HashMap>` with no policy and no bound: the floor for the
/// cost of locking and hashing alone.
pub struct Striped {
    hasher: ahash::RandomState,
    stripes: Vec<RwLock<HashMap<u64, u64, ahash::RandomState>>>,
}
impl Striped {
    pub fn new(stripes: usize) -> Self {
        Striped {
            hasher: ahash::RandomState::new(),
            stripes: (0..stripes)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
        }
    }
    #[inline]
    fn stripe(&self, k: u64) -> &RwLock<HashMap<u64, u64, ahash::RandomState>> {
        let h = self.hasher.hash_one(k);
        &self.stripes[(h >> 32) as usize & (self.stripes.len() - 1)]
    }
}
impl BenchCache for Striped {
    #[inline]
    fn get(&self, k: u64) -> Option<u64> {
        self.stripe(k).read().get(&k).copied()
    }
    #[inline]
    fn insert(&self, k: u64, v: u64) {
        self.stripe(k).write().insert(k, v);
    }
}

pub fn larder(cap: u64, policy: larder::Policy) -> Larder {
    Larder(
        larder::Cache::builder()
            .max_entries(cap)
            .policy(policy)
            .build()
            .unwrap(),
    )
}
pub fn quick(cap: u64) -> QuickCache {
    QuickCache(quick_cache::sync::Cache::new(cap as usize))
}
pub fn moka(cap: u64) -> Moka {
    Moka(moka::sync::Cache::new(cap))
}
pub fn mutex_lru(cap: u64) -> MutexLru {
    MutexLru(Mutex::new(lru::LruCache::with_hasher(
        std::num::NonZeroUsize::new(cap as usize).unwrap(),
        ahash::RandomState::new(),
    )))
}

/// xorshift64*: small, seeded, good enough for key streams.
pub struct Rng(u64);

impl Rng {
    /// A generator whose state starts at `state` (made odd).
    pub fn new(state: u64) -> Rng {
        Rng(state | 1)
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Zipf(s) ranks over `0..n`, sampled by inverse CDF.
pub struct Zipf {
    cdf: Vec<f64>,
}

impl Zipf {
    pub fn new(n: usize, s: f64) -> Zipf {
        let mut total = 0.0f64;
        let mut cdf = Vec::with_capacity(n);
        for rank in 1..=n {
            total += 1.0 / (rank as f64).powf(s);
            cdf.push(total);
        }
        Zipf { cdf }
    }

    pub fn sample(&self, rng: &mut Rng) -> u64 {
        let u = rng.unit() * self.cdf[self.cdf.len() - 1];
        self.cdf.partition_point(|&c| c < u) as u64
    }
}

/// Zipf(s) over `n` ranks, sampled by inverse CDF; ranks are scattered over the key
/// space by an odd multiplier (a bijection on u64), so hot keys are not neighbours.
pub fn zipf_keys(n: usize, s: f64, samples: usize, seed: u64) -> Vec<u64> {
    let zipf = Zipf::new(n, s);
    let mut rng = Rng::new(seed);
    (0..samples)
        .map(|_| key_of(zipf.sample(&mut rng)))
        .collect()
}

#[inline]
pub fn key_of(rank: u64) -> u64 {
    rank.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// The probes' contenders for workloads that evict: larder with its default
/// policy, `s3fifo`, `clock` and `lru`, and quick_cache, each of `cap`
/// entries; only those named in `which` (all if it is empty).
pub fn evicting_contenders(cap: u64, which: &[String]) -> Vec<(&'static str, Box<dyn BenchCache>)> {
    let all: Vec<(&'static str, Box<dyn BenchCache>)> = vec![
        ("larder", Box::new(larder(cap, larder::Policy::default()))),
        (
            "larder_s3fifo",
            Box::new(larder(cap, larder::Policy::s3fifo())),
        ),
        (
            "larder_clock",
            Box::new(larder(cap, larder::Policy::clock())),
        ),
        ("larder_lru", Box::new(larder(cap, larder::Policy::lru()))),
        ("quick_cache", Box::new(quick(cap))),
    ];
    all.into_iter()
        .filter(|(name, _)| which.is_empty() || which.iter().any(|w| w == name))
        .collect()
}

/// The median, min and max of five rounds (sorts `rounds`).
pub fn median_of_five(rounds: &mut [f64]) -> (f64, f64, f64) {
    assert_eq!(rounds.len(), 5, "five rounds");
    rounds.sort_by(f64::total_cmp);
    (rounds[2], rounds[0], rounds[4])
}
