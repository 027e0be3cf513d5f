//! [`Cache`]: hashes a key, picks its shard, and forwards to the shard under the
//! right lock. Also the public value types that go with it.

#![forbid(unsafe_code)]

use crate::builder::CacheBuilder;
use crate::clock::{ttl_ms, Clock};
use crate::memoize::{Flights, LoadCounters};
use crate::policy::shadow::Shadow;
use crate::policy::{Placement, Policy, PolicyKind};
use crate::shard::{short_hash, Garbage, Mode, Shard};
use crate::slotted::{Here, ReadGuard, SlottedRwLock, WriteGuard};
use crate::sync::{AtomicBool, AtomicU64, Mutex};
use std::borrow::Borrow;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

/// Slots of a shard with expired entries that [`Cache::room_for`] sweeps
/// before it refuses a write (memcached's `-M`).
#[cfg(feature = "memcached")]
const ROOM_SWEEP_SLOTS: usize = 1024;

pub(crate) type Weigher<K, V> = Arc<dyn Fn(&K, &V) -> u32 + Send + Sync>;
pub(crate) type Listener<K, V> = Arc<dyn Fn(&K, &V, RemovalCause) + Send + Sync>;
/// Most snapshot records a restore stores under one hold of a shard's lock.
const RESTORE_RUN: usize = 256;
/// A caught panic, resumed once an operation is complete.
type Panic = Box<dyn std::any::Any + Send>;

/// Why an entry left the cache; passed to the
/// [eviction listener](crate::CacheBuilder::eviction_listener).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RemovalCause {
    /// Evicted by the policy to make room, or never stored because it was heavier
    /// than its shard's share of the capacity.
    Evicted,
    /// Its time to live ran out.
    Expired,
    /// Overwritten by a new value for the same key (the listener sees the old value).
    Replaced,
    /// Removed by [`Cache::remove`], [`Cache::retain`], [`Cache::clear`] or
    /// [`Op::Remove`].
    Removed,
}

/// Counts of what a cache has done, from [`Cache::stats`].
///
/// Counts are per operation, not per entry state: a `get` of an expired entry is a
/// miss. `peek` and `contains_key` are not counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// `get`s that found a live entry.
    pub hits: u64,
    /// `get`s that did not.
    pub misses: u64,
    /// New entries stored.
    pub inserts: u64,
    /// Values replaced in existing entries.
    pub updates: u64,
    /// Entries evicted by the policy (including a value that replaced another but
    /// was too heavy to keep).
    pub evictions: u64,
    /// Entries reclaimed because their TTL ran out (and values written with a TTL
    /// of zero, which are never stored).
    pub expirations: u64,
    /// Entries removed explicitly (`remove`, `retain`, `clear`, `Op::Remove`).
    pub removals: u64,
    /// New entries never stored because they were heavier than their shard's share
    /// of the capacity.
    pub rejections: u64,
    /// Loader runs (of [`get_or_insert_with`](Cache::get_or_insert_with) and its
    /// variants, and [`Memoized`](crate::Memoized)) that produced a value. Callers
    /// that waited for another caller's loader are not counted.
    pub loads: u64,
    /// Loader runs that returned an error, panicked, or (async) were cancelled.
    pub load_failures: u64,
    /// Total time spent in loader runs, successful or not, as the cache's
    /// [`Clock`](crate::Clock) measures it.
    pub load_time: Duration,
}

impl Stats {
    /// `hits / (hits + misses)`, or 0 when there were no gets.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

/// The current entry as [`Cache::compute`] shows it to its closure.
#[derive(Debug)]
pub struct Occupied<'a, V> {
    value: &'a V,
    ttl: Option<Duration>,
}

impl<'a, V> Occupied<'a, V> {
    /// The current value.
    pub fn value(&self) -> &'a V {
        self.value
    }

    /// The time left before the entry expires; `None` if it never does.
    pub fn ttl(&self) -> Option<Duration> {
        self.ttl
    }
}

/// What [`Cache::compute`] should do with the entry.
#[derive(Debug)]
pub enum Op<V> {
    /// Leave the entry as it is (or absent).
    Nop,
    /// Store this value. An existing entry keeps its TTL; a new one gets the cache's
    /// default TTL.
    Put(V),
    /// Store this value with this TTL (`None`: never expires).
    PutWithTtl(V, Option<Duration>),
    /// Keep the value, change the TTL (`None`: never expires). No effect if absent.
    /// A TTL of zero expires the entry at once, as [`Cache::touch`] does.
    SetTtl(Option<Duration>),
    /// Remove the entry.
    Remove,
}

/// [`Op`] with the key to store, for [`Cache::compute_keyed`].
pub(crate) enum KeyedOp<K, V> {
    Nop,
    /// `None`: the key given to [`Cache::compute`].
    Put(Option<K>, V),
    PutWithTtl(Option<K>, V, Option<Duration>),
    SetTtl(Option<Duration>),
    Remove,
}

/// The key [`Cache::compute_at`] looks up: the caller's own (stored by a keyless
/// put) or a borrowed one.
enum Probe<'q, K, Q: ?Sized> {
    Owned(K),
    #[cfg_attr(not(feature = "memcached"), allow(dead_code))]
    Borrowed(&'q Q),
}

impl<K: Borrow<Q>, Q: ?Sized> Probe<'_, K, Q> {
    fn get(&self) -> &Q {
        match self {
            Probe::Owned(k) => k.borrow(),
            Probe::Borrowed(q) => q,
        }
    }
}

/// One shard, on cache lines of its own.
#[repr(align(128))]
struct Cell<K, V> {
    lock: SlottedRwLock<Shard<K, V>>,
    /// Loads in flight for this shard's keys; see [`crate::memoize`].
    flights: Flights<K, V>,
}

impl<K, V> Cell<K, V> {
    /// Who this shard is to the re-entrancy check.
    #[inline]
    fn addr(&self) -> usize {
        self as *const Self as usize
    }

    /// The write lock; a thread that would wait for a lock it holds itself panics
    /// (see [`crate::reentry`]).
    #[inline]
    fn write(&self) -> WriteGuard<'_, Shard<K, V>> {
        match self.lock.try_write() {
            Some(guard) => guard,
            None => {
                crate::reentry::check(self.addr());
                self.lock.write()
            }
        }
    }

    /// The read lock, with the same check.
    #[inline]
    fn read(&self) -> ReadGuard<'_, Shard<K, V>> {
        self.read_as(crate::slotted::here())
    }

    /// [`read`](Self::read) for a caller that has its thread's slot at hand.
    #[inline]
    fn read_as(&self, me: Here) -> ReadGuard<'_, Shard<K, V>> {
        match self.lock.try_read_as(me) {
            Some(guard) => guard,
            None => {
                crate::reentry::check(self.addr());
                self.lock.read_as(me)
            }
        }
    }
}

/// Reports and drops the garbage of an operation whose closure panicked under
/// the shard's lock, as the panic unwinds past it (after the lock's guard).
/// On the normal path the garbage is taken out first and this does nothing.
struct Unwinding<'a, K, V> {
    cache: &'a Cache<K, V>,
    garbage: Garbage<K, V>,
}

impl<K, V> Drop for Unwinding<'_, K, V> {
    fn drop(&mut self) {
        let garbage = std::mem::replace(&mut self.garbage, Garbage::new());
        // A listener's panic here is already caught by `finish`; the closure's
        // panic is the one that goes on unwinding.
        drop(self.cache.finish(garbage));
    }
}

/// Hit and miss counters are striped by thread: each thread counts into a slot of
/// its own (chosen round-robin when the thread first counts) with a relaxed load and
/// store. An atomic read-modify-write would act as a full fence on every lookup and
/// cost a fifth of the hit path; a plain store costs nothing. The counts are exact as
/// long as no two threads that share a slot (one in [`STAT_SLOTS`] apart in creation
/// order) count at the same instant; otherwise increments can be lost (a thread
/// paused between its load and its store overwrites what the other counted since).
const STAT_SLOTS: usize = 64;

#[repr(align(128))]
struct StatSlot {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The cache's hit and miss counters (see [`STAT_SLOTS`]), shared with the
/// adaptive policy's shadows, which weigh their samples by how many lookups
/// the whole cache served (see `Shadow::decide`).
pub(crate) struct Lookups([StatSlot; STAT_SLOTS]);

impl Lookups {
    pub(crate) fn new() -> Self {
        Lookups(std::array::from_fn(|_| StatSlot {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }))
    }

    /// Counts a hit or a miss in the slot of the thread numbered `index`.
    #[inline]
    pub(crate) fn count(&self, index: usize, hit: bool) {
        let slot = &self.0[index % STAT_SLOTS];
        let counter = if hit { &slot.hits } else { &slot.misses };
        counter.store(counter.load(Relaxed) + 1, Relaxed);
    }

    /// Hits and misses so far.
    pub(crate) fn split(&self) -> (u64, u64) {
        self.0.iter().fold((0, 0), |(h, m), slot| {
            (h + slot.hits.load(Relaxed), m + slot.misses.load(Relaxed))
        })
    }
}

/// A concurrent, bounded cache with per-entry TTL.
///
/// # Sharding and the bound
/// Keys are spread over a power-of-two number of shards by their hash; each shard
/// has its own lock, policy and share of the capacity. The capacity is split exactly
/// (shares differ by at most one unit and add up to the capacity), and each shard
/// enforces its share on every write, so **the total weight never exceeds the
/// capacity: the slack is zero**. The price is that an entry heavier than its shard's
/// share (`capacity / shards`) is never stored, and that a full shard evicts even
/// when another has room. A capacity smaller than the shard count reduces the shard
/// count (see [`CacheBuilder::shards`]).
///
/// # Locking behaviour
/// A hit takes its shard's read lock under the CLOCK-family policies, and the write
/// lock under [`Policy::lru`]. Writes take the write lock of one shard. No method
/// holds two shard locks at once; [`len`](Self::len), [`stats`](Self::stats),
/// [`clear`](Self::clear), [`retain`](Self::retain) and
/// [`run_pending_tasks`](Self::run_pending_tasks) lock the shards one after another.
/// A shard's lock counts its readers in one slot per CPU (rounded up to a power of
/// two, up to 8), and each thread reads through one slot, given round-robin in the
/// order threads first use a cache: a reader writes only its thread's slot, so
/// readers whose threads have different slots never write the same cache line
/// (threads a slot count apart in that order share one), and a writer sets a flag
/// and waits for every slot's readers to leave. Reads thus scale across cores, and
/// a write costs a lock, a flag set and cleared, and one load per slot (inserts ran
/// as fast with 8 slots as with 2 in `examples/insert_probe.rs`). Under
/// `Policy::lru`, whose hits write, a shard's lock is a plain reader-writer lock.
/// Values are returned by clone; no reference into a shard escapes a lock. Evicted,
/// expired and replaced values are dropped, and the eviction listener runs, after the
/// lock is released. The closures given to [`compute`](Self::compute) and
/// [`retain`](Self::retain) (and the weigher, when `compute` stores a value) run
/// under a write lock and must not call into the shard they run under: **a thread
/// that would wait for a shard lock it holds itself panics** with a message naming
/// this rule, instead of deadlocking (the check costs nothing unless the lock is
/// contended). Calling into *other* shards from such a closure is allowed, but two
/// threads doing it in opposite orders can deadlock, so avoid it. The eviction
/// listener runs with no lock held and may call into the cache.
/// [`get_or_insert_with`](Self::get_or_insert_with) and its variants run their
/// loader with no lock held; callers waiting for a load wait on that load alone,
/// never on a shard lock.
///
/// # Writes win
/// A write never evicts the entry it writes: a value that grows is stored, and
/// other entries make room. A write that happens while a
/// [`get_or_insert_with`](Self::get_or_insert_with) load of the same key runs is
/// never overwritten by the loaded value. An eviction listener that panics does
/// not cut an operation short: every removed entry is still reported, `clear`,
/// `retain` and `run_pending_tasks` still visit every shard, and the first panic
/// is resumed at the end.
///
/// # Expiry
/// An expired entry is never returned. Every write to a shard that holds entries with
/// a deadline examines the next [`SWEEP_STEP`](crate::SWEEP_STEP) slots of that shard
/// and reclaims the expired ones, so a shard of `n` slots is swept completely every
/// `n / 8` writes to it, with no background thread. The policy also prefers an
/// expired entry as a victim whenever it meets one, and **expired entries are
/// reclaimed before live ones are evicted**: a write that must evict in a shard whose
/// earliest deadline has passed first sweeps that whole shard. To keep the cost
/// O(1) amortised per write, a shard sweeps at most once per `live / 4` writes to
/// it; an entry that expires within that window may still hold its room until the
/// next sweep.
/// [`run_pending_tasks`](Self::run_pending_tasks) sweeps everything at once.
/// TTLs of any length are kept to the millisecond (those over about 37 days in a
/// side table of their shard). A TTL of zero stores nothing (it removes the key's
/// old value); one under a millisecond counts as one millisecond.
///
/// ```
/// use larder::Cache;
/// use std::time::Duration;
///
/// let cache: Cache<u64, String> = Cache::builder().max_entries(1_000).build()?;
/// cache.insert(1, "one".to_string());
/// cache.insert_with_ttl(2, "two".to_string(), Duration::from_secs(30));
/// assert_eq!(cache.get(&1).as_deref(), Some("one"));
/// assert_eq!(cache.remove(&2).as_deref(), Some("two"));
/// assert_eq!(cache.len(), 1);
/// # Ok::<(), larder::BuildError>(())
/// ```
pub struct Cache<K, V> {
    cells: Box<[Cell<K, V>]>,
    counts: crate::sync::Arc<Lookups>,
    mask: usize,
    hasher: ahash::RandomState,
    pub(crate) clock: Clock,
    pub(crate) ttl_ms: Option<u64>,
    pub(crate) loads: LoadCounters,
    weigher: Option<Weigher<K, V>>,
    listener: Option<Listener<K, V>>,
    policy: Policy,
    exclusive_hits: bool,
    capacity: AtomicU64,
    /// Bounded by entries (not by a weigher's weight): each shard's capacity
    /// is also its slot hint.
    by_entries: bool,
    /// Held while [`Cache::set_capacity`] walks the shards.
    resizing: Mutex<()>,
    /// The adaptive policy's shadow caches (shared with the shards).
    shadow: Option<crate::sync::Arc<Shadow>>,
    /// The capacity the shards lend each other, once
    /// [`lend_between_shards`](Self::lend_between_shards) asked for it.
    lending: Option<crate::sync::Arc<crate::shard::Lending>>,
}

impl<K, V> Cache<K, V> {
    /// Reports removed entries to the listener and drops them; no lock is held here.
    /// A listener that panics does not stop the others: every entry is reported and
    /// dropped, and the first panic is returned for the caller to resume once its
    /// operation is complete.
    #[inline]
    fn finish(&self, mut garbage: Garbage<K, V>) -> Option<Panic> {
        if garbage.is_empty() {
            return None;
        }
        if let (Some((hash, weight)), Some(shadow)) = (garbage.sampled_insert, &self.shadow) {
            Shadow::record_insert(shadow, hash, weight);
        }
        let listener = self.listener.as_ref()?;
        let mut panic = None;
        for (k, v, cause) in garbage.drain() {
            let call = std::panic::AssertUnwindSafe(|| listener(&k, &v, cause));
            if let Err(payload) = std::panic::catch_unwind(call) {
                panic.get_or_insert(payload);
            }
        }
        panic
    }

    /// A builder; see [`CacheBuilder`].
    pub fn builder() -> CacheBuilder<K, V> {
        CacheBuilder::default()
    }

    #[inline]
    fn cell(&self, hash: u64) -> &Cell<K, V> {
        &self.cells[self.shard_index(hash)]
    }

    /// The shard `hash` maps to: the high half picks the shard; the low half is what
    /// the shard stores.
    #[inline]
    pub(crate) fn shard_index(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.mask
    }

    /// The in-flight load table of the shard that `hash` maps to.
    #[inline]
    pub(crate) fn flights(&self, hash: u64) -> &Flights<K, V> {
        &self.cell(hash).flights
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq,
{
    /// A cache of at most `max_entries` entries with the default policy and no TTL.
    ///
    /// ```
    /// let cache = larder::Cache::new(100);
    /// cache.insert("k", 1);
    /// assert_eq!(cache.get("k"), Some(1));
    /// ```
    pub fn new(max_entries: u64) -> Self {
        match Self::builder().max_entries(max_entries).build() {
            Ok(c) => c,
            Err(e) => unreachable!("a max_entries-only builder cannot fail: {e}"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn from_parts(
        capacity: u64,
        shards: usize,
        by_entries: bool,
        policy: Policy,
        ttl: Option<Duration>,
        weigher: Option<Weigher<K, V>>,
        listener: Option<Listener<K, V>>,
        clock: Clock,
        hash_seed: Option<u64>,
    ) -> Self {
        let now = clock.now_ms();
        let counts = crate::sync::Arc::new(Lookups::new());
        let shadow = (policy.kind == PolicyKind::Adaptive).then(|| {
            crate::sync::Arc::new(Shadow::new(capacity, crate::sync::Arc::clone(&counts)))
        });
        let mode = match &shadow {
            Some(shadow) => Mode::Shadow(crate::sync::Arc::clone(shadow)),
            None => Mode::Fixed(Placement::Narrow),
        };
        // Reader slots pay only where hits read: an exact LRU's hits write
        // (they move the entry), so its shards get one slot, whose readers
        // take the gate itself and whose writes wait for no counts.
        let slots = if policy.exclusive_hits() {
            1
        } else {
            crate::slotted::slot_count()
        };
        let cells = (0..shards)
            .map(|i| {
                let (share, slot_hint) = shard_share(capacity, shards, i, by_entries);
                Cell {
                    lock: SlottedRwLock::with_slots(
                        Shard::new(&policy, share, slot_hint, now, mode.clone(), shards),
                        slots,
                    ),
                    flights: Flights::new(),
                }
            })
            .collect();
        #[cfg(larder_loom)]
        let hash_seed = hash_seed.or(Some(1));
        let hasher = match hash_seed {
            // Four distinct words from one seed (ahash mixes them further).
            Some(seed) => ahash::RandomState::with_seeds(
                seed,
                seed ^ 0x243F_6A88_85A3_08D3,
                seed.rotate_left(17) ^ 0x1319_8A2E_0370_7344,
                seed.rotate_left(41) ^ 0xA409_3822_299F_31D0,
            ),
            None => ahash::RandomState::new(),
        };
        Cache {
            cells,
            counts,
            mask: shards - 1,
            hasher,
            clock,
            ttl_ms: ttl.map(ttl_ms),
            loads: LoadCounters::default(),
            weigher,
            listener,
            exclusive_hits: policy.exclusive_hits(),
            policy,
            capacity: AtomicU64::new(capacity),
            by_entries,
            resizing: Mutex::new(()),
            shadow,
            lending: None,
        }
    }

    /// After a write left the shards together over the capacity (a shard
    /// with too little of its own to evict stored its entry anyway), evicts
    /// from the shards holding more than their share until the cache fits
    /// (see `shard::Lending`). Shards whose lock is busy are skipped rather
    /// than waited for: this thread may hold one of them further out, and
    /// the next write that finds the cache over comes back here.
    fn reclaim_lent(&self, garbage: &mut Garbage<K, V>) {
        let Some(lending) = self.lending.as_ref().filter(|l| !l.keeps_live()) else {
            return;
        };
        let now = self.clock.now_ms();
        let n = self.cells.len();
        let start = lending.next_victim(n);
        for i in 0..n {
            let Some(mut shard) = self.cells[(start + i) % n].lock.try_write() else {
                continue;
            };
            if shard.shed_borrowed(now, garbage) {
                return;
            }
        }
    }

    /// Lets each shard hold more than its share of the capacity while the
    /// cache as a whole has room (see `shard::Lending`): for a cache of
    /// entries so heavy that a share holds only a few, whose shards would
    /// otherwise evict by chance while the cache stands part empty (the
    /// memcached store). Call before the cache is shared.
    ///
    /// With `keep_live` (memcached's `-M`), no live entry is ever evicted
    /// for room (expired ones still go), and a writer asks
    /// [`room_for`](Self::room_for) first.
    #[cfg(any(test, feature = "memcached"))]
    pub(crate) fn lend_between_shards(&mut self, keep_live: bool) {
        let lending = crate::sync::Arc::new(crate::shard::Lending::new(
            self.capacity.load(Relaxed),
            keep_live,
        ));
        for cell in self.cells.iter() {
            cell.write().lend_through(crate::sync::Arc::clone(&lending));
        }
        self.lending = Some(lending);
    }

    /// Whether `weight` more fits within a lending cache's capacity, after
    /// sweeping up to [`ROOM_SWEEP_SLOTS`] slots of each shard holding
    /// expired entries if it does not fit at first (always true without
    /// lending). Read without locks, so writers
    /// asking at once may overshoot by what they write.
    ///
    /// **Locking behaviour:** when full, the write lock of each shard whose
    /// earliest deadline has passed, in turn (none held on entry).
    #[cfg(feature = "memcached")]
    pub(crate) fn room_for(&self, weight: u64) -> bool {
        let Some(lending) = &self.lending else {
            return true;
        };
        if lending.has_room(weight) {
            return true;
        }
        // A bounded slice of each shard holding expired entries: a client
        // retrying a write that cannot fit must not cost a pass over every
        // entry each time (memcached looks at a few items of an LRU tail).
        let now = self.clock.now_ms();
        for cell in self.cells.iter() {
            if cell.read().expiry_due(now) {
                self.locked(cell, |shard, garbage| {
                    shard.sweep(now, ROOM_SWEEP_SLOTS, garbage)
                });
            }
        }
        lending.has_room(weight)
    }

    /// [`room_for`](Self::room_for) without the sweep: by the weights the
    /// shards last published, taking no lock (for a caller holding one).
    #[cfg(feature = "memcached")]
    pub(crate) fn has_room(&self, weight: u64) -> bool {
        self.lending.as_ref().is_none_or(|l| l.has_room(weight))
    }

    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    #[inline]
    fn weigh(&self, key: &K, value: &V) -> u32 {
        match &self.weigher {
            Some(w) => w(key, value).max(1),
            None => 1,
        }
    }

    /// Stores `value` under `key` with the cache's default TTL, replacing any value
    /// the key had. Evicts as needed to stay within the capacity.
    ///
    /// A replaced entry takes `key` as its key too (the two are equal; a key type
    /// may carry data of its own), and the eviction listener sees the old key with
    /// the old value. [`compute`](Self::compute) does the same.
    ///
    /// If the entry is heavier than its shard's share of the capacity it is not
    /// stored (and any old value for the key is removed); the listener sees it as
    /// [`RemovalCause::Evicted`].
    ///
    /// **Locking behaviour:** takes the key's shard write lock. The weigher runs
    /// before the lock is taken.
    ///
    /// ```
    /// let cache = larder::Cache::new(10);
    /// cache.insert("a", 1);
    /// cache.insert("a", 2);
    /// assert_eq!(cache.get("a"), Some(2));
    /// ```
    pub fn insert(&self, key: K, value: V) {
        self.insert_inner(key, value, self.ttl_ms, None);
    }

    /// Like [`insert`](Self::insert), with a TTL for this entry.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = larder::Cache::new(10);
    /// cache.insert_with_ttl("session", 7, Duration::from_secs(30));
    /// assert!(cache.contains_key("session"));
    /// ```
    pub fn insert_with_ttl(&self, key: K, value: V, ttl: Duration) {
        self.insert_inner(key, value, Some(ttl_ms(ttl)), None);
    }

    /// The write behind [`insert`](Self::insert) and behind a single-flight
    /// leader's store (`load`: its flight's stale mark). A plain insert marks any
    /// load of the key in flight stale; a load's value is stored only if no write
    /// marked it since the load began: the write wins (see [`crate::memoize`]).
    /// Returns whether the value was stored (or replaced the old one).
    pub(crate) fn insert_inner(
        &self,
        key: K,
        value: V,
        ttl: Option<u64>,
        load: Option<&AtomicBool>,
    ) -> bool {
        let hash = self.hash(&key);
        let weight = self.weigh(&key, &value);
        let mut now = if ttl.is_some() {
            self.clock.now_ms()
        } else {
            0
        };
        // No clock read for a cache that has no deadlines to check (`with_shard`
        // reads it unconditionally; this is the hot write path).
        let cell = self.cell(hash);
        self.locked(cell, |shard, garbage| {
            if now == 0 && shard.has_timed() {
                now = self.clock.now_ms();
            }
            match load {
                // Writers set the mark under this shard's write lock, which we hold.
                Some(stale) if stale.load(Relaxed) => {
                    garbage.spare_key = Some(key);
                    return false;
                }
                Some(_) => {}
                None => cell.flights.invalidate(hash, &key),
            }
            shard.insert(key, value, short_hash(hash), weight, ttl, now, garbage);
            true
        })
    }

    /// The value for `key`, if present and not expired. Counts as a hit or miss and
    /// tells the policy the entry was used.
    ///
    /// **Locking behaviour:** the shard's read lock (write lock under
    /// [`Policy::lru`]). The value's `Clone` runs under that lock.
    ///
    /// ```
    /// let cache: larder::Cache<String, u32> = larder::Cache::new(10);
    /// cache.insert("k".to_string(), 1);
    /// assert_eq!(cache.get("k"), Some(1)); // borrowed lookup: &str for String keys
    /// assert_eq!(cache.get("nope"), None);
    /// ```
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.lookup(key, true, |_, v, _| v.clone())
    }

    /// Like [`get`](Self::get), also returning the time left to live (`None`: never
    /// expires).
    ///
    /// ```
    /// use std::time::Duration;
    /// let (clock, hand) = larder::Clock::manual();
    /// let cache = larder::Cache::builder().max_entries(10).clock(clock).build()?;
    /// cache.insert_with_ttl("k", 1, Duration::from_secs(10));
    /// hand.advance(Duration::from_secs(4));
    /// assert_eq!(cache.get_with_ttl("k"), Some((1, Some(Duration::from_secs(6)))));
    /// # Ok::<(), larder::BuildError>(())
    /// ```
    pub fn get_with_ttl<Q>(&self, key: &Q) -> Option<(V, Option<Duration>)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.lookup(key, true, |_, v, ttl| (v.clone(), ttl()))
    }

    /// The value for `key` without counting a hit or telling the policy.
    ///
    /// **Locking behaviour:** the shard's read lock, for every policy.
    ///
    /// ```
    /// let cache = larder::Cache::new(10);
    /// cache.insert(1, "x");
    /// assert_eq!(cache.peek(&1), Some("x"));
    /// assert_eq!(cache.stats().hits, 0);
    /// ```
    pub fn peek<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Clone,
    {
        self.lookup(key, false, |_, v, _| v.clone())
    }

    /// Calls `f` with the value for `key`, if present and not expired, and returns
    /// what `f` returns: a read that clones nothing (serialise a value straight from
    /// the cache, or read one field of a large one). Counts as a hit or miss and
    /// tells the policy the entry was used, as [`get`](Self::get) does.
    ///
    /// **Locking behaviour:** `f` runs under the shard's read lock (the write lock
    /// under [`Policy::lru`]): keep it short, and do not call into this cache from
    /// it. Writers to the shard wait while it runs, and a call from `f` that would
    /// wait for the lock it runs under panics (see "Locking behaviour" on
    /// [`Cache`]). If `f` panics, the lock is released and the cache is unchanged.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let cache: larder::Cache<&str, Arc<[u8]>> = larder::Cache::new(10);
    /// cache.insert("page", Arc::from(&b"<html>...</html>"[..]));
    /// let mut out = Vec::new();
    /// let found = cache.get_with("page", |v| out.extend_from_slice(v));
    /// assert_eq!((found, &out[..6]), (Some(()), &b"<html>"[..]));
    /// assert_eq!(cache.get_with("nope", |v| v.len()), None);
    /// ```
    #[inline]
    pub fn get_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.visit(key, true, f)
    }

    /// Like [`get_with`](Self::get_with), without counting a hit or telling the
    /// policy (as [`peek`](Self::peek)). The read lock is taken for every policy.
    ///
    /// ```
    /// let cache = larder::Cache::new(10);
    /// cache.insert(1, vec![1u8, 2, 3]);
    /// assert_eq!(cache.peek_with(&1, |v| v.len()), Some(3));
    /// assert_eq!(cache.stats().hits, 0);
    /// ```
    #[inline]
    pub fn peek_with<Q, R>(&self, key: &Q, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.visit(key, false, f)
    }

    /// The visitor read path: marks the shard as held by this thread while `f`
    /// runs, so a call back into it that would deadlock panics instead.
    #[inline]
    fn visit<Q, R>(&self, key: &Q, record: bool, f: impl FnOnce(&V) -> R) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.visit_keyed(key, record, |_, v, _| f(v))
    }

    /// [`visit`](Self::visit) that also shows the stored key and the entry's TTL
    /// (computed only if asked for): for callers in this crate whose key carries
    /// data (the memcached store).
    #[inline]
    pub(crate) fn visit_keyed<Q, R>(
        &self,
        key: &Q,
        record: bool,
        f: impl FnOnce(&K, &V, &dyn Fn() -> Option<Duration>) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let addr = self.cell(hash).addr();
        self.lookup_at(hash, key, record, |k, v, ttl| {
            let _held = crate::reentry::Held::enter(addr);
            f(k, v, ttl)
        })
    }

    /// Whether `key` has a live entry. Not counted, no policy update.
    ///
    /// ```
    /// let cache = larder::Cache::new(10);
    /// cache.insert(1, ());
    /// assert!(cache.contains_key(&1));
    /// assert!(!cache.contains_key(&2));
    /// ```
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key, false, |_, _, _| ()).is_some()
    }

    /// Reclaims `key`'s entry if it is past its deadline and nothing has
    /// reclaimed it yet (a read sees it as missing); whether there was one. For a
    /// caller that counts such misses apart, as memcached's `get_expired`
    /// does, and unlinks the item as memcached does when a fetch meets it. A
    /// second lookup, so only worth making on a miss.
    ///
    /// **Locking behaviour:** the shard's read lock, then its write lock if
    /// there is an expired entry to reclaim.
    #[cfg(feature = "memcached")]
    pub(crate) fn reclaim_expired_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let expired = {
            let shard = self.cell(hash).read();
            shard
                .find(short_hash(hash), key)
                .is_some_and(|idx| shard.is_expired(idx, self.clock.now_ms()))
        };
        if !expired {
            return false;
        }
        // The write lock's own upkeep may reclaim it first, or another
        // thread; either way the read met an expired entry.
        let out = self.with_shard(hash, |shard, now, garbage| {
            let idx = shard.find(short_hash(hash), key)?;
            if !shard.is_expired(idx, now) {
                return None;
            }
            shard.remove_slot(idx, RemovalCause::Expired, garbage);
            garbage.pop()
        });
        if let (Some((k, v, cause)), Some(listener)) = (out, &self.listener) {
            listener(&k, &v, cause);
        }
        true
    }

    /// Replaces the key stored for `key` with the one `f` makes from it,
    /// expired or not, and returns the old key (dropped by the caller, after
    /// the lock). For the store's page mover, which swaps a key for an equal
    /// copy in another place: the entry keeps its value, weight, deadline,
    /// hash and place in the policy, and nothing is counted or reported.
    /// `f` returning `None` leaves the entry as it is.
    ///
    /// The new key must equal the old one and hash as it does.
    ///
    /// **Locking behaviour:** the shard's write lock, with no upkeep.
    #[cfg(feature = "memcached")]
    pub(crate) fn swap_key<Q>(&self, key: &Q, f: impl FnOnce(&K) -> Option<K>) -> Option<K>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.locked(self.cell(hash), |shard, _| {
            let idx = shard.find(short_hash(hash), key)?;
            let e = shard.table.slab.entry_mut(idx);
            let new = f(&e.key)?;
            debug_assert!(new.borrow() == key, "swap_key: the new key differs");
            Some(std::mem::replace(&mut e.key, new))
        })
    }

    /// The shared read path: finds a live entry and maps it under the lock.
    #[inline]
    fn lookup<Q, R>(
        &self,
        key: &Q,
        record: bool,
        map: impl FnOnce(&K, &V, &dyn Fn() -> Option<Duration>) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup_at(self.hash(key), key, record, map)
    }

    /// [`lookup`](Self::lookup) for a key whose hash is known.
    #[inline]
    fn lookup_at<Q, R>(
        &self,
        hash: u64,
        key: &Q,
        record: bool,
        map: impl FnOnce(&K, &V, &dyn Fn() -> Option<Duration>) -> R,
    ) -> Option<R>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let cell = self.cell(hash);
        let h32 = short_hash(hash);
        // Which of the shard lock's reader slots and of the hit counters this
        // thread uses.
        let me = crate::slotted::here();
        // Whether the adaptive policy's shadows sample this key (read from the shard,
        // which is in cache anyway), and the weight of the entry found (0 on a miss).
        let sampled;
        let mut hit_weight = 0;
        let found = if record && self.exclusive_hits {
            let mut shard = cell.write();
            sampled = shard.samples(h32);
            let found = shard
                .find_fresh(h32, key, &self.clock)
                .map(|(idx, _, now)| (idx, now));
            found.map(|(idx, now)| {
                shard.touch_locked(idx);
                let e = shard.table.slab.entry(idx);
                map(&e.key, &e.value, &|| shard.ttl_of(idx, now))
            })
        } else {
            let shard = cell.read_as(me);
            sampled = record && shard.samples(h32);
            shard
                .find_fresh(h32, key, &self.clock)
                .map(|(idx, e, now)| {
                    if record {
                        hit_weight = e.bump(shard.table.max_freq);
                    }
                    map(&e.key, &e.value, &|| shard.ttl_of(idx, now))
                })
        };
        if record {
            // Counted before the shadows see it, so that a period the
            // lookup ends counts it (see `Shadow::decide`).
            self.counts.count(me.index, found.is_some());
            if sampled {
                if let Some(shadow) = &self.shadow {
                    Shadow::record_lookup(shadow, h32, hit_weight);
                }
            }
        }
        found
    }

    /// Removes `key`, returning its value if it had a live one.
    ///
    /// **Locking behaviour:** the shard's write lock.
    ///
    /// ```
    /// let cache = larder::Cache::new(10);
    /// cache.insert("a", 1);
    /// assert_eq!(cache.remove("a"), Some(1));
    /// assert_eq!(cache.remove("a"), None);
    /// ```
    pub fn remove<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        let flights = self.flights(hash);
        let out = self.with_shard(hash, |shard, now, garbage| {
            flights.invalidate(hash, key);
            let idx = shard.find_live(short_hash(hash), key, now, garbage)?;
            shard.remove_slot(idx, RemovalCause::Removed, garbage);
            garbage.pop()
        });
        out.map(|(k, v, cause)| {
            if let Some(listener) = &self.listener {
                listener(&k, &v, cause);
            }
            v
        })
    }

    /// Sets the TTL of a live entry (`None`: never expires). Returns whether the key
    /// had a live entry. A TTL of zero expires the entry at once (no read sees it
    /// again, it leaves as [`RemovalCause::Expired`], and `true` is returned).
    ///
    /// **Locking behaviour:** the shard's write lock.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = larder::Cache::new(10);
    /// cache.insert("a", 1);
    /// assert!(cache.touch("a", Some(Duration::from_secs(60))));
    /// assert!(!cache.touch("b", None));
    /// ```
    pub fn touch<Q>(&self, key: &Q, ttl: Option<Duration>) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hash(key);
        self.with_shard(hash, |shard, now, garbage| {
            match shard.find_live(short_hash(hash), key, now, garbage) {
                Some(idx) => {
                    let d = shard.deadline_for(now, ttl.map(ttl_ms));
                    shard.set_deadline(idx, d);
                    true
                }
                None => false,
            }
        })
    }

    /// Atomically reads and changes one entry: `f` sees the live entry (if any) and
    /// returns what to do with it and a result for the caller.
    ///
    /// This is the building block for compare-and-swap, counters, append and
    /// insert-if-absent: nothing else can touch the key between the read and the
    /// write.
    ///
    /// **Locking behaviour:** `f` (and the weigher, on the value `f` returns) runs
    /// under the shard's write lock: keep it short and do not call into this cache
    /// from it (a call into the same shard panics, see "Locking behaviour" on
    /// [`Cache`]). If `f` panics, nothing is changed.
    ///
    /// ```
    /// use larder::{Cache, Op};
    /// let cache: Cache<&str, u64> = Cache::new(10);
    /// let incr = |c: &Cache<&str, u64>| {
    ///     c.compute("hits", |cur| {
    ///         let next = cur.map_or(1, |e| *e.value() + 1);
    ///         (Op::Put(next), next)
    ///     })
    /// };
    /// assert_eq!(incr(&cache), 1);
    /// assert_eq!(incr(&cache), 2);
    /// // insert-if-absent
    /// let added = cache.compute("x", |cur| match cur {
    ///     Some(_) => (Op::Nop, false),
    ///     None => (Op::Put(7), true),
    /// });
    /// assert!(added);
    /// ```
    pub fn compute<R>(&self, key: K, f: impl FnOnce(Option<Occupied<'_, V>>) -> (Op<V>, R)) -> R {
        let hash = self.hash(&key);
        self.compute_at(hash, Probe::<K, K>::Owned(key), None, |cur| {
            let (op, result) = f(cur.map(|(_, o)| o));
            let op = match op {
                Op::Nop => KeyedOp::Nop,
                Op::Put(v) => KeyedOp::Put(None, v),
                Op::PutWithTtl(v, ttl) => KeyedOp::PutWithTtl(None, v, ttl),
                Op::SetTtl(ttl) => KeyedOp::SetTtl(ttl),
                Op::Remove => KeyedOp::Remove,
            };
            (op, result)
        })
    }

    /// [`compute`](Self::compute) for callers in this crate whose new key is made
    /// from the old entry (the memcached store keeps a whole item in its key): the
    /// lookup borrows `key`, `f` also sees the stored key, and a put stores the key
    /// it carries.
    ///
    /// # Panics
    /// If a put carries no key, or one that is not equal to `key` (nothing is
    /// changed).
    #[cfg(feature = "memcached")]
    pub(crate) fn compute_keyed<Q, R>(
        &self,
        key: &Q,
        f: impl FnOnce(Option<(&K, Occupied<'_, V>)>) -> (KeyedOp<K, V>, R),
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.compute_keyed_at(key, None, f)
    }

    /// [`compute_keyed`](Self::compute_keyed) for a caller that has read the
    /// cache's clock already (`now`, from the same [`Clock`]): the write uses
    /// that reading instead of taking another.
    #[cfg(feature = "memcached")]
    pub(crate) fn compute_keyed_at<Q, R>(
        &self,
        key: &Q,
        now: Option<u64>,
        f: impl FnOnce(Option<(&K, Occupied<'_, V>)>) -> (KeyedOp<K, V>, R),
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.compute_at(self.hash(key), Probe::Borrowed(key), now, |cur| {
            let (op, result) = f(cur);
            if let KeyedOp::Put(k, _) | KeyedOp::PutWithTtl(k, _, _) = &op {
                let k = k.as_ref().expect("compute_keyed: a put needs its key");
                assert!(k.borrow() == key, "compute_keyed: the new key differs");
            }
            (op, result)
        })
    }

    /// The body of [`compute`](Self::compute) and
    /// [`compute_keyed`](Self::compute_keyed): `f` runs under the write lock of
    /// `hash`'s shard and its operation is applied there. A put without a key
    /// stores the probe's own key.
    fn compute_at<Q, R>(
        &self,
        hash: u64,
        probe: Probe<'_, K, Q>,
        now: Option<u64>,
        f: impl FnOnce(Option<(&K, Occupied<'_, V>)>) -> (KeyedOp<K, V>, R),
    ) -> R
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let h32 = short_hash(hash);
        let now = now.unwrap_or_else(|| self.clock.now_ms());
        self.with_shard_at(hash, now, |shard, now, garbage| {
            let found = shard.find_live(h32, probe.get(), now, garbage);
            let current = found.map(|idx| {
                let e = shard.table.slab.entry(idx);
                let occupied = Occupied {
                    value: &e.value,
                    ttl: shard.ttl_of(idx, now),
                };
                (&e.key, occupied)
            });
            let (op, result) = f(current);
            if !matches!(op, KeyedOp::Nop) {
                self.flights(hash).invalidate(hash, probe.get());
            }
            let ttl_deadline = |shard: &Shard<K, V>, ttl: Option<Duration>| {
                shard.deadline_for(now, ttl.map(ttl_ms))
            };
            let mut probe = Some(probe);
            let mut key_of = |k: Option<K>| {
                k.unwrap_or_else(|| match probe.take() {
                    Some(Probe::Owned(k)) => k,
                    _ => unreachable!("a keyless put needs an owned probe"),
                })
            };
            match (op, found) {
                (KeyedOp::Nop, _) | (KeyedOp::SetTtl(_), None) | (KeyedOp::Remove, None) => {}
                (KeyedOp::Remove, Some(idx)) => {
                    shard.remove_slot(idx, RemovalCause::Removed, garbage);
                }
                (KeyedOp::SetTtl(ttl), Some(idx)) => {
                    let d = ttl_deadline(shard, ttl);
                    shard.set_deadline(idx, d);
                }
                (KeyedOp::Put(k, v), found) => {
                    let k = key_of(k);
                    let w = self.weigh(&k, &v);
                    // An existing entry keeps its deadline; a new one gets the default.
                    let d = found
                        .is_none()
                        .then(|| shard.deadline_for(now, self.ttl_ms));
                    shard.put(found, k, v, h32, w, d, now, garbage);
                }
                (KeyedOp::PutWithTtl(k, v, ttl), found) => {
                    let k = key_of(k);
                    let w = self.weigh(&k, &v);
                    let d = ttl_deadline(shard, ttl);
                    shard.put(found, k, v, h32, w, Some(d), now, garbage);
                }
            }
            // An unused key is dropped once the lock is released.
            if let Some(Probe::Owned(k)) = probe {
                garbage.spare_key = Some(k);
            }
            result
        })
    }

    /// Runs `f` under the write lock of `hash`'s shard, after the shard's
    /// housekeeping (see [`locked`](Self::locked)).
    fn with_shard<R>(
        &self,
        hash: u64,
        f: impl FnOnce(&mut Shard<K, V>, u64, &mut Garbage<K, V>) -> R,
    ) -> R {
        self.with_shard_at(hash, self.clock.now_ms(), f)
    }

    /// [`with_shard`](Self::with_shard) at a clock reading the caller took.
    fn with_shard_at<R>(
        &self,
        hash: u64,
        now: u64,
        f: impl FnOnce(&mut Shard<K, V>, u64, &mut Garbage<K, V>) -> R,
    ) -> R {
        self.locked(self.cell(hash), |shard, garbage| {
            shard.maintain(now, garbage);
            f(shard, now, garbage)
        })
    }

    /// Runs `f` under `cell`'s write lock, then reports and drops whatever left the
    /// shard once the lock is released (the garbage outlives the guard, also when `f`
    /// panics).
    fn locked<R>(
        &self,
        cell: &Cell<K, V>,
        f: impl FnOnce(&mut Shard<K, V>, &mut Garbage<K, V>) -> R,
    ) -> R {
        let (result, panic) = self.locked_catching(cell, f);
        if let Some(payload) = panic {
            std::panic::resume_unwind(payload);
        }
        result
    }

    /// [`locked`](Self::locked), returning a listener's panic instead of resuming
    /// it (for the operations that visit every shard and must finish first).
    fn locked_catching<R>(
        &self,
        cell: &Cell<K, V>,
        f: impl FnOnce(&mut Shard<K, V>, &mut Garbage<K, V>) -> R,
    ) -> (R, Option<Panic>) {
        // Declared before the guard, so dropped after it: if `f` panics
        // (a `retain` or `compute` closure, a weigher, `Eq`), what already
        // left the shard still reaches the listener, with no lock held.
        let mut pending = Unwinding {
            cache: self,
            garbage: Garbage::new(),
        };
        let (result, over) = {
            let mut shard = cell.write();
            let _held = crate::reentry::Held::enter(cell.addr());
            let result = f(&mut shard, &mut pending.garbage);
            shard.publish_weight();
            (result, shard.global_over(0))
        };
        if over {
            self.reclaim_lent(&mut pending.garbage);
        }
        let garbage = std::mem::replace(&mut pending.garbage, Garbage::new());
        (result, self.finish(garbage))
    }

    /// Runs `f` on every shard in turn under its write lock; a listener's panic is
    /// resumed only after the last shard is done.
    fn each_shard(&self, mut f: impl FnMut(&Cell<K, V>, &mut Shard<K, V>, &mut Garbage<K, V>)) {
        let mut first = None;
        for cell in self.cells.iter() {
            let ((), panic) = self.locked_catching(cell, |shard, garbage| f(cell, shard, garbage));
            if let Some(payload) = panic {
                first.get_or_insert(payload);
            }
        }
        if let Some(payload) = first {
            std::panic::resume_unwind(payload);
        }
    }

    /// Keeps only the entries for which `keep` returns true. Expired entries are
    /// removed without being shown to `keep`.
    ///
    /// **Locking behaviour:** `keep` runs under each shard's write lock in turn; do
    /// not call into this cache from it. If it panics, the entries already removed
    /// stay removed and the cache stays consistent.
    ///
    /// ```
    /// let cache = larder::Cache::new(10);
    /// for i in 0..6 { cache.insert(i, i * 10); }
    /// cache.retain(|k, _| k % 2 == 0);
    /// assert_eq!(cache.len(), 3);
    /// ```
    pub fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        let now = self.clock.now_ms();
        self.each_shard(|_, shard, garbage| shard.retain(now, &mut keep, garbage));
    }

    /// Removes every entry (the listener sees each as [`RemovalCause::Removed`]).
    ///
    /// **Locking behaviour:** each shard's write lock in turn.
    ///
    /// ```
    /// let cache = larder::Cache::new(10);
    /// cache.insert(1, 1);
    /// cache.clear();
    /// assert!(cache.is_empty());
    /// ```
    pub fn clear(&self) {
        self.each_shard(|cell, shard, garbage| {
            cell.flights.invalidate_all();
            shard.clear(garbage);
        });
    }

    /// Reclaims every expired entry now (writes already do this a few slots at a
    /// time; call this to free memory at a moment of your choosing).
    ///
    /// **Locking behaviour:** each shard's write lock in turn.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (clock, hand) = larder::Clock::manual();
    /// let cache = larder::Cache::builder().max_entries(10).clock(clock).build()?;
    /// cache.insert_with_ttl(1, 1, Duration::from_secs(1));
    /// hand.advance(Duration::from_secs(1));
    /// cache.run_pending_tasks();
    /// assert_eq!(cache.stats().expirations, 1);
    /// # Ok::<(), larder::BuildError>(())
    /// ```
    pub fn run_pending_tasks(&self) {
        let now = self.clock.now_ms();
        self.each_shard(|_, shard, garbage| {
            shard.maintain(now, garbage);
            shard.sweep_all(now, garbage);
        });
    }

    /// Reclaims expired entries among the next `slots` slots of each shard
    /// that holds entries with a TTL, from where the last sweep of that shard
    /// stopped, so that repeated calls go round every slot. Writes already
    /// sweep a few slots at a time; a cache that is read more than written, or
    /// idle, keeps expired entries (and their memory) until a read meets them
    /// or this runs. A server calls it from a timer, as memcached's LRU crawler
    /// reclaims expired items in the background. Each reclaimed entry reaches
    /// the eviction listener as [`RemovalCause::Expired`]. Returns how many
    /// were reclaimed.
    ///
    /// **Locking behaviour:** each shard's write lock in turn, for at most
    /// `slots` slot checks.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (clock, hand) = larder::Clock::manual();
    /// let cache = larder::Cache::builder().max_entries(100).shards(1).clock(clock).build()?;
    /// for i in 0..10 {
    ///     cache.insert_with_ttl(i, i, Duration::from_secs(1));
    /// }
    /// hand.advance(Duration::from_secs(1));
    /// // Four slots checked: at most four entries reclaimed.
    /// let first = cache.sweep_expired(4);
    /// assert!(first <= 4);
    /// assert_eq!(cache.len() as u64, 10 - first);
    /// // Enough checks to go round the whole table.
    /// assert_eq!(first + cache.sweep_expired(1_000), 10);
    /// assert!(cache.is_empty());
    /// # Ok::<(), larder::BuildError>(())
    /// ```
    pub fn sweep_expired(&self, slots: usize) -> u64 {
        let now = self.clock.now_ms();
        let mut reclaimed = 0;
        self.each_shard(|_, shard, garbage| {
            if shard.has_timed() {
                reclaimed += shard.sweep(now, slots, garbage);
            }
        });
        reclaimed
    }

    /// The number of entries stored, including expired ones not yet reclaimed.
    ///
    /// **Locking behaviour:** each shard's read lock in turn.
    pub fn len(&self) -> usize {
        self.cells.iter().map(|c| c.read().len()).sum()
    }

    /// Whether the cache holds no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The total weight of the entries stored (equal to [`len`](Self::len) without a
    /// weigher).
    ///
    /// **Locking behaviour:** each shard's read lock in turn.
    pub fn weight(&self) -> u64 {
        self.cells.iter().map(|c| c.read().table.weight).sum()
    }

    /// The capacity (entries, or weight): the builder's, or the last one
    /// [`set_capacity`](Self::set_capacity) set.
    pub fn capacity(&self) -> u64 {
        self.capacity.load(Relaxed)
    }

    /// Changes the capacity (entries, or weight, as the builder set it) of a
    /// live cache. Growing takes effect at once; shrinking evicts, shard by
    /// shard, until each holds its new share, as if the entries had been
    /// inserted into a cache of the new size (the eviction listener hears of
    /// each one). The shards keep their number, so each gets an exact share
    /// as at build time, and an entry heavier than its shard's new share is
    /// evicted. An adaptive cache's shadows start their simulations over at
    /// the new scale.
    ///
    /// # Errors
    /// [`CapacityError`] when `capacity` is below the shard count (every
    /// shard needs room for one unit); nothing changes.
    ///
    /// **Locking behaviour:** each shard's write lock in turn; concurrent
    /// calls take turns, and the eviction listener runs once every shard is
    /// done and the turn is over. Do not call it from a closure that runs
    /// under one of this cache's shard locks (`compute`, `retain`,
    /// `get_with`): the call panics when it reaches that shard, leaving the
    /// shards before it resized (their evictions are reported) and, when
    /// shrinking, `capacity()` at the old value; and if another thread is
    /// resizing at the time, the two wait for each other for ever.
    ///
    /// ```
    /// let cache = larder::Cache::builder().max_entries(100).shards(2).build()?;
    /// for i in 0..100 {
    ///     cache.insert(i, i);
    /// }
    /// cache.set_capacity(10)?;
    /// assert_eq!(cache.len(), 10);
    /// assert_eq!(cache.capacity(), 10);
    /// assert!(cache.set_capacity(1).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn set_capacity(&self, capacity: u64) -> Result<(), CapacityError> {
        let shards = self.cells.len();
        if capacity < shards as u64 {
            return Err(CapacityError { capacity, shards });
        }
        // Whatever leaves a shard is reported once every shard is resized
        // and the turn is over, so that a listener may call back in (even to
        // resize again). Declared before the turn, so dropped after it: if a
        // shard's lock panics part-way (this thread holds it, see "Locking
        // behaviour"), what the shards before it evicted is still reported.
        let mut evicted = Unwinding {
            cache: self,
            garbage: Garbage::new(),
        };
        let turn = self.resizing.lock();
        // Published before the shards grow and after they shrink, so that
        // `weight()` never reads above `capacity()`.
        let shrinking = capacity < self.capacity.load(Relaxed);
        if !shrinking {
            self.capacity.store(capacity, Relaxed);
        }
        if let Some(shadow) = &self.shadow {
            shadow.set_capacity(capacity);
        }
        if let Some(lending) = &self.lending {
            lending.set_capacity(capacity);
        }
        let now = self.clock.now_ms();
        for (i, cell) in self.cells.iter().enumerate() {
            let (share, slot_hint) = shard_share(capacity, shards, i, self.by_entries);
            let mut shard = cell.write();
            let _held = crate::reentry::Held::enter(cell.addr());
            shard.set_capacity(share, slot_hint, now, &mut evicted.garbage);
            shard.publish_weight();
        }
        self.reclaim_lent(&mut evicted.garbage);
        if shrinking {
            self.capacity.store(capacity, Relaxed);
        }
        drop(turn);
        let garbage = std::mem::replace(&mut evicted.garbage, Garbage::new());
        if let Some(payload) = self.finish(garbage) {
            std::panic::resume_unwind(payload);
        }
        Ok(())
    }

    /// The most slots any shard has (full, dead or free): how many slots a
    /// [`sweep_expired`](Self::sweep_expired) must cover to go round them all
    /// (for the store's crawler, and tests).
    #[doc(hidden)]
    pub fn slot_count(&self) -> usize {
        self.cells
            .iter()
            .map(|c| c.read().table.slab.len())
            .max()
            .unwrap_or(0)
    }

    /// The number of shards.
    pub fn shard_count(&self) -> usize {
        self.cells.len()
    }

    /// The eviction policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Counts of what the cache has done since it was built.
    ///
    /// **Locking behaviour:** each shard's read lock in turn.
    ///
    /// ```
    /// let cache = larder::Cache::new(10);
    /// cache.insert(1, 1);
    /// cache.get(&1);
    /// cache.get(&2);
    /// let s = cache.stats();
    /// assert_eq!((s.hits, s.misses, s.inserts), (1, 1, 1));
    /// ```
    pub fn stats(&self) -> Stats {
        let mut s = Stats::default();
        (s.hits, s.misses) = self.counts.split();
        for cell in self.cells.iter() {
            let c = cell.read().counters;
            s.inserts += c.inserts;
            s.updates += c.updates;
            s.evictions += c.evictions;
            s.expirations += c.expirations;
            s.removals += c.removals;
            s.rejections += c.rejections;
        }
        self.loads.add_to(&mut s);
        s
    }

    /// Heap bytes the cache's own structures hold (the shards' tables, policy
    /// state), not counting heap memory owned by keys and values.
    ///
    /// **Locking behaviour:** each shard's read lock in turn.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.cells)
            + std::mem::size_of_val(&*self.counts)
            + self
                .cells
                .iter()
                .map(|c| c.read().heap_bytes())
                .sum::<usize>()
            + self.shadow.as_ref().map_or(0, |s| s.heap_bytes())
    }

    /// Stores entries read back from a snapshot, each `(hash, key, value,
    /// ttl_ms, hint)` (`ttl_ms` left to live, `None`: never expires), with
    /// their policy hints (see `Shard::restore`). Entries of one shard are
    /// stored under one hold of its lock, at most [`RESTORE_RUN`] at a time, in
    /// the order given for each key. Returns how many were stored and how many
    /// were not (expired, too heavy, or refused as too cold; those are dropped
    /// here, with no lock held).
    ///
    /// **Locking behaviour:** each shard's write lock in turn, for one run;
    /// the weigher runs before.
    pub(crate) fn restore_many(&self, mut jobs: Vec<(u64, K, V, Option<u64>, u8)>) -> (u64, u64) {
        // Stable: two records of one key (a save that met a write) keep their
        // order, the later one winning.
        jobs.sort_by_key(|job| self.shard_index(job.0));
        let mut runs = Vec::new();
        let mut at = 0;
        while at < jobs.len() {
            let shard = self.shard_index(jobs[at].0);
            let len = jobs[at..]
                .iter()
                .take(RESTORE_RUN)
                .take_while(|job| self.shard_index(job.0) == shard)
                .count();
            runs.push((shard, len));
            at += len;
        }
        let mut jobs = jobs.into_iter().map(|(hash, key, value, ttl, hint)| {
            let weight = self.weigh(&key, &value);
            (hash, key, value, ttl, hint, weight)
        });
        let (mut stored, mut refused) = (0u64, 0u64);
        let mut run = Vec::with_capacity(RESTORE_RUN);
        for (shard, len) in runs {
            run.extend(jobs.by_ref().take(len));
            let cell = &self.cells[shard];
            let now = self.clock.now_ms();
            let mut cold = Vec::new();
            self.locked(cell, |sh, garbage| {
                sh.maintain(now, garbage);
                // Each insert's table probe is a cache miss; these loads overlap
                // them all before the first insert needs its group.
                std::hint::black_box(sh.warm(run.iter().map(|job| short_hash(job.0))));
                for (hash, key, value, ttl, hint, weight) in run.drain(..) {
                    self.flights(hash).invalidate(hash, &key);
                    let deadline = sh.deadline_for(now, ttl);
                    let h32 = short_hash(hash);
                    match sh.restore(key, value, h32, weight, deadline, hint, now, garbage) {
                        Ok(true) => stored += 1,
                        Ok(false) => refused += 1,
                        Err(kv) => {
                            refused += 1;
                            cold.push(kv);
                        }
                    }
                }
            });
            drop(cold);
        }
        (stored, refused)
    }

    /// Whether the capacity counts entries (no weigher), not weight units.
    pub(crate) fn bounded_by_entries(&self) -> bool {
        self.weigher.is_none()
    }

    /// Sizes each shard whose index `mine` accepts for about `entries`
    /// entries in all (its share, and never past its expected size), so a
    /// restore does not grow the tables in many small steps.
    ///
    /// **Locking behaviour:** each shard's write lock in turn.
    pub(crate) fn reserve_for_restore(&self, entries: u64, mine: impl Fn(usize) -> bool) {
        let per_shard = entries / self.cells.len() as u64;
        // Hashes do not split exactly: an eighth more, as the tables grow anyway.
        let per_shard = usize::try_from(per_shard + per_shard / 8).unwrap_or(usize::MAX);
        for (i, cell) in self.cells.iter().enumerate() {
            if mine(i) {
                cell.write().reserve(per_shard);
            }
        }
    }

    /// Shows `f` the live entries of shard `shard` from place `from` of its
    /// hash order on (start at 0), under the shard's read lock, about
    /// `max_slots` slots at most (see `Shard::visit_slice`; deadlines are on
    /// this cache's clock). Returns the place to continue from, `None` when
    /// the shard is done.
    ///
    /// **Locking behaviour:** `f` runs under the shard's read lock: the bounded
    /// slice is what keeps a snapshot from stalling writers.
    pub(crate) fn visit_slice(
        &self,
        shard: usize,
        from: u64,
        max_slots: u32,
        f: impl FnMut(&K, &V, u64, u8) -> bool,
    ) -> Option<u64> {
        let cell = &self.cells[shard];
        let now = self.clock.now_ms();
        let guard = cell.read();
        let _held = crate::reentry::Held::enter(cell.addr());
        guard.visit_slice(from, max_slots, now, f)
    }

    /// Shows `f` the entries at the front of every shard's eviction queues
    /// (see `PolicyState::fronts`), one shard's read lock at a time: what
    /// memcached's `stats items` calls the tail of the LRU.
    #[cfg(feature = "memcached")]
    pub(crate) fn for_each_front(&self, mut f: impl FnMut(&K, &V)) {
        for cell in self.cells.iter() {
            let guard = cell.read();
            let _held = crate::reentry::Held::enter(cell.addr());
            let table = &guard.table;
            table.policy.fronts(&table.slab, |idx| {
                let entry = table.slab.entry(idx);
                f(&entry.key, &entry.value);
            });
        }
    }

    /// The index of the shard `key` maps to (tests place keys in chosen shards).
    #[doc(hidden)]
    pub fn shard_of<Q>(&self, key: &Q) -> usize
    where
        K: Borrow<Q>,
        Q: Hash + ?Sized,
    {
        self.shard_index(self.hash(key))
    }

    /// How many times the shards' tables were rebuilt (grown, or cleared of
    /// displacement and dead slots), moving their entries. For tests.
    #[doc(hidden)]
    pub fn table_rebuilds(&self) -> usize {
        self.cells
            .iter()
            .map(|c| c.read().table.slab.rebuilds)
            .sum()
    }

    /// Checks every internal invariant and panics if one is broken. For tests and
    /// fuzzing; O(n).
    #[doc(hidden)]
    pub fn validate(&self) {
        for cell in self.cells.iter() {
            cell.read().validate();
        }
    }
}

/// Shard `i`'s exact share of `capacity` over `shards` (shares differ by at
/// most one and add up to the capacity), and its slot hint.
fn shard_share(capacity: u64, shards: usize, i: usize, by_entries: bool) -> (u64, usize) {
    let n = shards as u64;
    let share = capacity / n + u64::from((i as u64) < capacity % n);
    let slot_hint = if by_entries {
        usize::try_from(share).unwrap_or(usize::MAX)
    } else {
        usize::MAX
    };
    (share, slot_hint)
}

/// Why [`Cache::set_capacity`] refused a capacity: below the shard count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CapacityError {
    /// The capacity asked for.
    pub capacity: u64,
    /// The cache's shard count, the least capacity it can take.
    pub shards: usize,
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "capacity {} is below the shard count {} (each shard needs room for one unit)",
            self.capacity, self.shards
        )
    }
}

impl std::error::Error for CapacityError {}

impl<K, V> fmt::Debug for Cache<K, V> {
    /// Never blocks: a shard whose lock is held is shown as `<locked>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Shards<'a, K, V>(&'a [Cell<K, V>]);
        impl<K, V> fmt::Debug for Shards<'_, K, V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut list = f.debug_list();
                for cell in self.0 {
                    match cell.lock.try_read() {
                        Some(s) => list.entry(&format_args!(
                            "{{ len: {}, weight: {}/{} }}",
                            s.table.slab.live, s.table.weight, s.table.capacity
                        )),
                        None => list.entry(&format_args!("<locked>")),
                    };
                }
                list.finish()
            }
        }
        f.debug_struct("Cache")
            .field("capacity", &self.capacity.load(Relaxed))
            .field("policy", &self.policy)
            .field("time_to_live_ms", &self.ttl_ms)
            .field("adaptive", &self.shadow)
            .field("shards", &Shards(&self.cells))
            .finish()
    }
}

#[cfg(all(test, not(larder_loom)))]
mod tests {
    use super::*;

    /// Each shard's weight and capacity share.
    fn loads(cache: &Cache<u64, u32>) -> Vec<(u64, u64)> {
        cache
            .cells
            .iter()
            .map(|c| {
                let shard = c.read();
                (shard.table.weight, shard.table.capacity)
            })
            .collect()
    }

    /// The keys `for_each_front` shows, sorted.
    #[cfg(feature = "memcached")]
    fn fronts(cache: &Cache<u64, u32>) -> Vec<u64> {
        let mut keys = Vec::new();
        cache.for_each_front(|&k, _| keys.push(k));
        keys.sort_unstable();
        keys
    }

    /// Each policy shows the entry it would consider first for eviction:
    /// the oldest for CLOCK, the least recently used for LRU, and the
    /// oldest of each S3-FIFO queue; a read does not move an entry off a
    /// FIFO's front (only a set access bit), an LRU's it does.
    #[cfg(feature = "memcached")]
    #[test]
    fn for_each_front_shows_each_queues_next_candidate() {
        let build = |policy: Policy| -> Cache<u64, u32> {
            Cache::builder()
                .max_weight(100)
                .shards(1)
                .policy(policy)
                .build()
                .expect("valid builder")
        };
        for (policy, after_read) in [
            (Policy::clock(), vec![1]),
            (Policy::lru(), vec![2]),
            (Policy::s3fifo(), vec![1]),
            (Policy::adaptive(), vec![1]),
        ] {
            let name = format!("{policy:?}");
            let cache = build(policy);
            assert_eq!(fronts(&cache), Vec::<u64>::new(), "{name}");
            for k in 1..=3 {
                cache.insert(k, 0);
            }
            assert_eq!(fronts(&cache), [1], "{name}");
            assert!(cache.get(&1).is_some());
            assert_eq!(fronts(&cache), after_read, "{name}");
            cache.remove(&1);
            assert_eq!(fronts(&cache), [2], "{name}");
        }
    }

    /// The shadows rest once a workload has settled, and a new workload
    /// still moves the placement: the shadow test
    /// `a_loop_keeps_probation_and_a_recency_workload_switches`, run
    /// through a real cache (every key sampled at 256 entries).
    #[test]
    fn a_resting_adaptive_cache_still_follows_a_new_workload() {
        use crate::policy::Placement;
        let cache: Cache<u32, u32> = Cache::builder()
            .max_weight(256)
            .shards(1)
            .policy(Policy::adaptive())
            // A fixed seed: with a random one, how long the shadows rest on
            // this loop moved between 4,193 and 46,175 lookups.
            .hash_seed(7)
            .build()
            .expect("valid builder");
        let shadow = cache.shadow.clone().expect("adaptive");
        let read = |k: u32| {
            if cache.get(&k).is_none() {
                cache.insert(k, k);
            }
        };
        // A loop over 300 keys in 256 entries.
        let mut rested = 0;
        for _ in 0..200 {
            for k in 1_000_000..1_000_300 {
                read(k);
                rested += u32::from(shadow.is_resting());
            }
        }
        assert!(rested > 6_000, "rested for {rested} lookups of 60,000");
        let p = shadow.placement();
        assert!(matches!(p, Placement::Narrow | Placement::Guarded), "{p:?}");
        // Each key read twice, 100 keys apart, never again: recency wins.
        for i in 0..20_000u32 {
            read(i);
            read(i.wrapping_sub(100));
        }
        let p = shadow.placement();
        assert!(matches!(p, Placement::Recency | Placement::Wide), "{p:?}");
    }

    fn lending_cache() -> Cache<u64, u32> {
        let mut cache: Cache<u64, u32> = Cache::builder()
            .max_weight(8 * 1000)
            .weigher(|_, v: &u32| *v)
            .shards(8)
            .policy(Policy::clock())
            .build()
            .expect("valid builder");
        cache.lend_between_shards(false);
        cache
    }

    /// A shard may hold more than its share while the cache has room, and a
    /// shrink evicts each shard down to its own new share: the first version
    /// evicted whole shards in order until the total fitted, emptying the
    /// first half of them and leaving the rest at twice their share, where
    /// they stayed (found in review).
    #[test]
    fn lending_borrows_while_there_is_room_and_a_shrink_evicts_to_each_share() {
        let cache = lending_cache();
        // Keys of shard 0 only, to twice its share: borrowed, nothing evicted.
        let of_shard_0: Vec<u64> = (0..100_000u64)
            .filter(|k| cache.shard_index(cache.hash(k)) == 0)
            .take(20)
            .collect();
        for &k in &of_shard_0 {
            cache.insert(k, 100);
        }
        assert_eq!(cache.len(), 20);
        assert_eq!(loads(&cache)[0], (2000, 1000));
        // Fill the rest to the capacity and beyond.
        for k in 100_000..100_200u64 {
            cache.insert(k, 100);
        }
        assert!(cache.weight() <= 8000);
        cache.set_capacity(4000).expect("a valid capacity");
        let loads = loads(&cache);
        assert!(
            loads.iter().all(|&(w, cap)| cap == 500 && w <= cap),
            "{loads:?}"
        );
        assert!(
            loads.iter().all(|&(w, _)| w >= 400),
            "a shard emptied: {loads:?}"
        );
        cache.validate();
    }

    /// A shard within its share does not evict its own entries for room: its
    /// write takes the excess back from shards over their share.
    #[test]
    fn a_shard_within_its_share_takes_room_back_from_borrowers() {
        let cache = lending_cache();
        let keys_of = |shard: usize, n: usize| -> Vec<u64> {
            (0..1_000_000u64)
                .filter(|k| cache.shard_index(cache.hash(k)) == shard)
                .take(n)
                .collect()
        };
        // Shard 0 borrows the whole cache.
        for k in keys_of(0, 80) {
            cache.insert(k, 100);
        }
        assert_eq!(loads(&cache)[0].0, 8000);
        // Shard 1 fills its share: each write reclaims from shard 0.
        let ones = keys_of(1, 10);
        for &k in &ones {
            cache.insert(k, 100);
        }
        assert!(
            ones.iter().all(|k| cache.contains_key(k)),
            "shard 1 evicted its own"
        );
        let loads = loads(&cache);
        assert_eq!((loads[0].0, loads[1].0), (7000, 1000), "{loads:?}");
        cache.validate();
    }

    #[test]
    fn exact_lru_shards_have_one_reader_slot_and_the_others_one_per_cpu() {
        let build = |policy: Policy| -> Cache<u64, u64> {
            Cache::builder()
                .max_entries(1024)
                .policy(policy)
                .build()
                .expect("valid builder")
        };
        let lru = build(Policy::lru());
        assert!(lru.cells.iter().all(|c| c.lock.slots_in_use() == 1));
        for policy in [Policy::default(), Policy::clock(), Policy::s3fifo()] {
            let cache = build(policy);
            let n = crate::slotted::slot_count();
            assert!(cache.cells.iter().all(|c| c.lock.slots_in_use() == n));
        }
    }
}
