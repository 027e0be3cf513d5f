//! [`CacheBuilder`] and [`BuildError`].

#![forbid(unsafe_code)]

use crate::cache::{Cache, Listener, Weigher};
use crate::clock::Clock;
use crate::policy::Policy;
use crate::RemovalCause;
use std::fmt;
use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

/// The most shards a cache may have.
pub const MAX_SHARDS: usize = 1 << 16;

/// Configures and builds a [`Cache`]. Made by [`Cache::builder`].
///
/// A capacity is required: either [`max_entries`](Self::max_entries) or
/// [`max_weight`](Self::max_weight) with a [`weigher`](Self::weigher).
///
/// ```
/// use larder::{Cache, Policy};
/// use std::time::Duration;
///
/// let cache: Cache<String, Vec<u8>> = Cache::builder()
///     .max_weight(1 << 20)
///     .weigher(|k: &String, v: &Vec<u8>| (k.len() + v.len()) as u32)
///     .time_to_live(Duration::from_secs(60))
///     .policy(Policy::clock())
///     .build()?;
/// # Ok::<(), larder::BuildError>(())
/// ```
pub struct CacheBuilder<K, V> {
    max_entries: Option<u64>,
    max_weight: Option<u64>,
    weigher: Option<Weigher<K, V>>,
    policy: Policy,
    ttl: Option<Duration>,
    shards: Option<usize>,
    clock: Option<Clock>,
    listener: Option<Listener<K, V>>,
    hash_seed: Option<u64>,
}

impl<K, V> Default for CacheBuilder<K, V> {
    fn default() -> Self {
        CacheBuilder {
            max_entries: None,
            max_weight: None,
            weigher: None,
            policy: Policy::default(),
            ttl: None,
            shards: None,
            clock: None,
            listener: None,
            hash_seed: None,
        }
    }
}

impl<K, V> fmt::Debug for CacheBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("max_entries", &self.max_entries)
            .field("max_weight", &self.max_weight)
            .field("weigher", &self.weigher.is_some())
            .field("policy", &self.policy)
            .field("time_to_live", &self.ttl)
            .field("shards", &self.shards)
            .field("listener", &self.listener.is_some())
            .field("hash_seed", &self.hash_seed.is_some())
            .finish()
    }
}

impl<K, V> CacheBuilder<K, V>
where
    K: Hash + Eq,
{
    /// Bounds the cache to `n` entries (each entry weighs 1). A bound of 0
    /// builds a cache that stores nothing (every insert is rejected at once),
    /// which [`Cache::set_capacity`] cannot make (it keeps a unit per shard).
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = Some(n);
        self
    }

    /// Bounds the total weight of the entries; use with [`weigher`](Self::weigher)
    /// (without one, every entry weighs 1 and this is the same as `max_entries`).
    pub fn max_weight(mut self, weight: u64) -> Self {
        self.max_weight = Some(weight);
        self
    }

    /// How much an entry weighs. Called once per insert, before any lock is taken
    /// (and, for [`Cache::compute`], under the shard lock, on the value it returns).
    ///
    /// A weight of 0 counts as 1, so the number of entries stays bounded. An entry
    /// heavier than its shard's share of the capacity (see [`Cache`]'s docs on
    /// sharding) is not stored; neither is one of `2^28` or more.
    pub fn weigher(mut self, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Self {
        self.weigher = Some(Arc::new(weigher));
        self
    }

    /// The eviction policy (default: [`Policy::default`]).
    pub fn policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// A time to live for entries stored by [`Cache::insert`] (default: none, entries
    /// live until evicted). [`Cache::insert_with_ttl`] overrides it per entry.
    pub fn time_to_live(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The number of shards: a power of two from 1 to [`MAX_SHARDS`].
    ///
    /// Default: four per available CPU, rounded up to a power of two, or, for a
    /// cache bounded by entries, one per 16,384 entries if that is more (up to
    /// sixteen per CPU and 64);
    /// reduced until every shard has room for at least 32 units of capacity. When the capacity is
    /// smaller than the count asked for, the count is reduced to the largest power of
    /// two not above the capacity, so that no shard is left with a capacity of zero
    /// (except in a cache of capacity 0, which has one shard and stores nothing).
    pub fn shards(mut self, n: usize) -> Self {
        self.shards = Some(n);
        self
    }

    /// The clock used for TTLs (default: [`Clock::system`]). Tests pass
    /// [`Clock::manual`].
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Seeds the key hasher, which by default is seeded at random per cache.
    ///
    /// The hash decides a key's shard, which keys the eviction policy's ghost set
    /// confuses, and which keys the default policy samples to choose its placement;
    /// with a fixed seed, the same single-threaded sequence of calls makes the same
    /// eviction decisions in every run (for reproducible tests and simulations).
    /// Keep the random default when keys come from untrusted sources: someone who
    /// knows the seed can choose keys that all land in one shard.
    ///
    /// ```
    /// let a: larder::Cache<u64, u64> = larder::Cache::builder().max_entries(64).hash_seed(7).build()?;
    /// let b: larder::Cache<u64, u64> = larder::Cache::builder().max_entries(64).hash_seed(7).build()?;
    /// for k in 0..1000 {
    ///     if a.get(&(k % 100)).is_none() { a.insert(k % 100, k); }
    ///     if b.get(&(k % 100)).is_none() { b.insert(k % 100, k); }
    /// }
    /// assert_eq!(a.stats(), b.stats());
    /// # Ok::<(), larder::BuildError>(())
    /// ```
    pub fn hash_seed(mut self, seed: u64) -> Self {
        self.hash_seed = Some(seed);
        self
    }

    /// Called with every entry that leaves the cache, and why. Runs after the shard
    /// lock is released, on the thread whose operation removed the entry. A panic in
    /// the listener propagates to that caller; the cache stays consistent.
    pub fn eviction_listener(
        mut self,
        listener: impl Fn(&K, &V, RemovalCause) + Send + Sync + 'static,
    ) -> Self {
        self.listener = Some(Arc::new(listener));
        self
    }

    /// Builds the cache.
    ///
    /// # Errors
    /// [`BuildError`] when no capacity, or two, were given, when a weigher was given
    /// with `max_entries`, or when the shard count is not a power of two in range.
    pub fn build(self) -> Result<Cache<K, V>, BuildError> {
        let capacity = match (self.max_entries, self.max_weight) {
            (None, None) => return Err(BuildError::MissingCapacity),
            (Some(_), Some(_)) => return Err(BuildError::ConflictingCapacity),
            (Some(_), None) if self.weigher.is_some() => {
                return Err(BuildError::WeigherWithMaxEntries)
            }
            (Some(n), None) | (None, Some(n)) => n,
        };
        let shards = match self.shards {
            Some(n) if n == 0 || n > MAX_SHARDS || !n.is_power_of_two() => {
                return Err(BuildError::InvalidShardCount(n))
            }
            Some(n) => n,
            None => default_shards(capacity, self.max_entries.is_some()),
        };
        let shards = shards.min(floor_pow2(capacity));
        Ok(Cache::from_parts(
            capacity,
            shards,
            self.max_entries.is_some(),
            self.policy,
            self.ttl,
            self.weigher,
            self.listener,
            self.clock.unwrap_or_default(),
            self.hash_seed,
        ))
    }
}

fn floor_pow2(n: u64) -> usize {
    if n <= 1 {
        1
    } else {
        1usize << (63 - n.leading_zeros()).min(16)
    }
}

/// Entries per shard above which a cache bounded by entries gets more shards
/// than its CPU count asks for (up to four times as many, and 64). A shard
/// enforces its own share of the bound, so splitting costs hit ratio through
/// the shards' uneven loads, about `1/sqrt(entries per shard)` of the
/// capacity: under 1% from here on. What more shards buy is read
/// concurrency: two threads reading hot keys meet on one shard's lock word
/// one time in `shards`. On 2 CPUs at 1,000,000 entries, 32 or 64 shards read
/// 1.1-1.2x faster than 8 at two threads; at one thread 32 cost nothing and
/// 64 about 5% (more lock words to keep in cache), hence the cap relative to
/// the CPU count (`examples/read_probe.rs`, BENCHMARKS.md).
const ENTRIES_PER_EXTRA_SHARD: u64 = 1 << 14;

/// The most shards that size alone (not the CPU count) gives a cache.
const MAX_SIZED_SHARDS: usize = 64;

fn default_shards(capacity: u64, by_entries: bool) -> usize {
    #[cfg(larder_loom)]
    let cpus: usize = 1;
    #[cfg(not(larder_loom))]
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let by_cpu = (cpus * 4).next_power_of_two().min(MAX_SHARDS);
    let by_size = match by_entries {
        true => floor_pow2(capacity / ENTRIES_PER_EXTRA_SHARD)
            .min(MAX_SIZED_SHARDS)
            .min(by_cpu * 4),
        false => 1,
    };
    by_cpu.max(by_size).min(floor_pow2(capacity / 32))
}

/// Why a [`CacheBuilder`] could not build a cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither `max_entries` nor `max_weight` was given.
    MissingCapacity,
    /// Both `max_entries` and `max_weight` were given.
    ConflictingCapacity,
    /// A weigher was given with `max_entries`; use `max_weight` instead.
    WeigherWithMaxEntries,
    /// The shard count is zero, not a power of two, or above [`MAX_SHARDS`].
    InvalidShardCount(usize),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::MissingCapacity => {
                f.write_str("a capacity is required: call max_entries or max_weight")
            }
            BuildError::ConflictingCapacity => {
                f.write_str("max_entries and max_weight are exclusive: give one")
            }
            BuildError::WeigherWithMaxEntries => {
                f.write_str("a weigher needs max_weight, not max_entries")
            }
            BuildError::InvalidShardCount(n) => write!(
                f,
                "shard count {n} is not a power of two between 1 and {MAX_SHARDS}"
            ),
        }
    }
}

impl std::error::Error for BuildError {}
