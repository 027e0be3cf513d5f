//! Everything that runs under one shard lock.
//!
//! A shard is a [`Table`] (a hash table holding the entries, the eviction
//! policy's state and the shard's share of the weight bound) plus time: deadlines,
//! sweeps for expired entries, and the counters and removed entries a cache reports. Nothing here calls user
//! code except `Eq` (inside lookups, before any mutation, so a panic leaves the shard
//! as it was) and `Clone` on the read path. Values and keys that leave the shard are
//! handed back in a [`Garbage`] list so the caller can drop them, and run the eviction
//! listener, after the lock is released.
//!
//! Time: deadlines are `u32` millisecond ticks relative to the shard's `base_ms`.
//! When the clock runs `REBASE_AFTER` ticks past the base, the next write moves the
//! base forward and shifts every deadline (an O(n) pass once every ~12 days), so
//! deadlines never overflow however long the cache lives. A deadline too far ahead
//! for a `u32` (a TTL of more than about 37 days) is stored as [`FAR`] in the slot
//! and exactly, as `u64` ticks, in a side table of the shard (`far`); a rebase moves
//! it back into the slot once it fits. So every TTL is kept to the millisecond, and
//! the common case pays nothing for the rare one.
//!
//! Expired entries are reclaimed before live ones are evicted: the shard keeps a
//! lower bound of its earliest deadline, and when a write must evict while that
//! bound has passed, it first sweeps the whole shard for expired entries (at most
//! once per `live / 4` writes, so the sweep costs O(1) amortised per write).

#![forbid(unsafe_code)]

use crate::policy::shadow::Shadow;
use crate::policy::table::Table;
use crate::policy::{Placement, Policy};
use crate::slab::{Entry, Slot};
use crate::sync::{Arc, AtomicU64};
use crate::RemovalCause;
use std::borrow::Borrow;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering::Relaxed;

/// Ticks past the base after which a write rebases the shard's deadlines.
const REBASE_AFTER: u64 = 1 << 30;

/// The slot deadline of an entry whose deadline does not fit in a `u32`: the real one
/// is in the shard's `far` table. Far beyond any relative time a slot sees between
/// two rebases, so the policies (which read slot deadlines) treat it as not expired.
pub(crate) const FAR: u32 = u32::MAX;

/// Slots a write examines for expired entries when its shard holds entries with a
/// deadline.
pub const SWEEP_STEP: u32 = 8;

/// The stored hash: the low 32 bits of the full hash, never zero.
#[inline]
pub(crate) fn short_hash(h: u64) -> NonZeroU32 {
    NonZeroU32::new(h as u32).unwrap_or(NonZeroU32::MIN)
}

/// Operation counts that change only under the write lock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counters {
    pub(crate) inserts: u64,
    pub(crate) updates: u64,
    pub(crate) evictions: u64,
    pub(crate) expirations: u64,
    pub(crate) removals: u64,
    pub(crate) rejections: u64,
}

/// Keys and values that left a shard, to be dropped (and reported to the listener)
/// once the lock is released. Holds the first item inline so the common case of one
/// eviction per insert does not allocate.
pub(crate) struct Garbage<K, V> {
    first: Option<(K, V, RemovalCause)>,
    rest: Vec<(K, V, RemovalCause)>,
    /// A key that was not stored (the incoming key of an update).
    pub(crate) spare_key: Option<K>,
    /// A new key the adaptive policy's shadows sample (its hash and weight), for
    /// them to see once the shard's lock is released.
    pub(crate) sampled_insert: Option<(NonZeroU32, u32)>,
}

impl<K, V> Garbage<K, V> {
    pub(crate) fn new() -> Self {
        Garbage {
            first: None,
            rest: Vec::new(),
            spare_key: None,
            sampled_insert: None,
        }
    }

    pub(crate) fn push(&mut self, key: K, value: V, cause: RemovalCause) {
        if self.first.is_none() {
            self.first = Some((key, value, cause));
        } else {
            self.rest.push((key, value, cause));
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.first.is_none() && self.spare_key.is_none() && self.sampled_insert.is_none()
    }

    /// Every removed item, in the order removed.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = (K, V, RemovalCause)> + '_ {
        self.first.take().into_iter().chain(self.rest.drain(..))
    }

    /// Removes the last item pushed (used by `remove` to hand the value back).
    pub(crate) fn pop(&mut self) -> Option<(K, V, RemovalCause)> {
        self.rest.pop().or_else(|| self.first.take())
    }
}

pub(crate) struct Shard<K, V> {
    /// The entries' table, policy state and weight bound.
    pub(crate) table: Table<K, V>,
    pub(crate) base_ms: u64,
    /// Entries with a deadline.
    timed: u32,
    sweep_cursor: u32,
    pub(crate) counters: Counters,
    pub(crate) mode: Mode,
    /// The shadows' sampling bits, copied here so that a lookup can tell whether its
    /// key is sampled without leaving the shard's cache lines (`NOT_SAMPLED`: no
    /// shadows). Refreshed on every insert of a new key.
    sample_bits: u32,
    /// Exact deadlines (relative ticks) of the entries whose slot says [`FAR`].
    far: std::collections::HashMap<u32, u64>,
    /// No entry's deadline is earlier than this (relative ticks; `u64::MAX`: none
    /// known). Lowered by every new deadline, made exact by a full sweep.
    next_expiry: u64,
    /// Writes since the last full sweep for expired entries.
    writes_since_sweep: u64,
    /// The capacity this shard shares with the others, and the weight it
    /// last published there (see [`Lending`]).
    lending: Option<(Arc<Lending>, u64)>,
}

/// Lets the shards of one cache hold more than their share of its capacity
/// while the cache as a whole has room, for caches of heavy entries (the
/// memcached store's items, up to a megabyte each).
///
/// Each shard owns an equal share of the capacity, so with only a few
/// entries per share the shards' loads differ by chance: 100 items of 1 MB
/// in 8 shards of 16 MB left one shard with more than its 15 and evicted 5
/// of them while the cache stood 74% full. With lending, a shard over its
/// share evicts only when the whole cache is over its capacity too; a shard
/// within its share never evicts its own entries for room, and when its
/// write puts the cache over, the write takes the excess back from shards
/// over their share (`Cache::reclaim_lent`) before it returns. So borrowed
/// room goes back to the shards that need their share, and a shrinking
/// capacity evicts each shard down to its own new share, as without lending.
/// Each shard adds the change in its weight to `used` as its write lock is
/// released, so `used` is exact but for writes under way in other shards:
/// concurrent writers overshoot the capacity by at most what they are
/// writing, and a reclaim skips a shard whose lock is busy (the next write
/// that finds the cache over reclaims again).
#[derive(Debug)]
pub(crate) struct Lending {
    /// The whole cache's capacity.
    capacity: AtomicU64,
    /// The weight of every shard's entries, as last published.
    used: AtomicU64,
    /// Where the next reclaim starts looking, so that reclaims spread over
    /// the shards.
    next: crate::sync::AtomicUsize,
    /// Whether live entries are kept when the cache is full (memcached's
    /// `-M`): nothing is evicted, and the store refuses what does not fit
    /// (see `Cache::room_for`).
    keep_live: bool,
}

impl Lending {
    #[cfg(any(test, feature = "memcached"))]
    pub(crate) fn new(capacity: u64, keep_live: bool) -> Lending {
        Lending {
            capacity: AtomicU64::new(capacity),
            used: AtomicU64::new(0),
            next: crate::sync::AtomicUsize::new(0),
            keep_live,
        }
    }

    /// Whether live entries are kept when the cache is full.
    pub(crate) fn keeps_live(&self) -> bool {
        self.keep_live
    }

    /// Whether `extra` more weight fits within the capacity, by the weights
    /// the shards last published.
    #[cfg(feature = "memcached")]
    pub(crate) fn has_room(&self, extra: u64) -> bool {
        self.used.load(Relaxed).saturating_add(extra) <= self.capacity.load(Relaxed)
    }

    /// The shard a reclaim starts from, of `shards`.
    pub(crate) fn next_victim(&self, shards: usize) -> usize {
        self.next.fetch_add(1, Relaxed) % shards
    }

    pub(crate) fn set_capacity(&self, capacity: u64) {
        self.capacity.store(capacity, Relaxed);
    }
}

const NOT_SAMPLED: u32 = u32::MAX;

/// Where an adaptive shard learns whether new entries skip probation.
#[derive(Debug, Clone)]
pub(crate) enum Mode {
    /// Always this placement (the non-adaptive policies).
    Fixed(Placement),
    /// The cache's shadows decide (and see this shard's new keys).
    Shadow(Arc<Shadow>),
}

impl<K, V> Shard<K, V>
where
    K: Eq,
{
    pub(crate) fn new(
        policy: &Policy,
        capacity: u64,
        slot_hint: usize,
        now: u64,
        mode: Mode,
        shards: usize,
    ) -> Self {
        Shard {
            table: Table::new(policy, capacity, slot_hint, shards),
            base_ms: now.saturating_sub(1),
            timed: 0,
            sweep_cursor: 0,
            counters: Counters::default(),
            sample_bits: match &mode {
                Mode::Shadow(shadow) => shadow.bits(),
                Mode::Fixed(_) => NOT_SAMPLED,
            },
            mode,
            far: std::collections::HashMap::new(),
            next_expiry: u64::MAX,
            writes_since_sweep: 0,
            lending: None,
        }
    }

    /// Makes this shard share its capacity with the others through
    /// `lending` (see [`Lending`]).
    #[cfg(any(test, feature = "memcached"))]
    pub(crate) fn lend_through(&mut self, lending: Arc<Lending>) {
        self.lending = Some((lending, 0));
        self.publish_weight();
    }

    /// Tells the other shards how this shard's weight changed (called as its
    /// write lock is released).
    #[inline]
    pub(crate) fn publish_weight(&mut self) {
        let weight = self.table.weight;
        if let Some((lending, published)) = &mut self.lending {
            if weight > *published {
                lending.used.fetch_add(weight - *published, Relaxed);
            } else if weight < *published {
                lending.used.fetch_sub(*published - weight, Relaxed);
            }
            *published = weight;
        }
    }

    /// Whether `extra` more weight needs an eviction first: over this
    /// shard's share, or for a lending cache over the whole cache's
    /// capacity.
    #[inline]
    fn must_evict(&self, extra: u64) -> bool {
        self.table.over(extra) && (self.lending.is_none() || self.global_over(extra))
    }

    /// Whether `extra` more weight here would put the whole cache over its
    /// capacity (a lending cache only; see [`Lending`]).
    pub(crate) fn global_over(&self, extra: u64) -> bool {
        self.lending.as_ref().is_some_and(|(lending, published)| {
            let others = lending.used.load(Relaxed).saturating_sub(*published);
            others
                .saturating_add(self.table.weight)
                .saturating_add(extra)
                > lending.capacity.load(Relaxed)
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether any entry has a deadline (if not, writes need not read the clock).
    #[inline]
    pub(crate) fn has_timed(&self) -> bool {
        self.timed > 0
    }

    /// Whether the adaptive policy's shadows sample the key with this hash.
    #[inline]
    pub(crate) fn samples(&self, hash: NonZeroU32) -> bool {
        self.sample_bits != NOT_SAMPLED && Shadow::sampled_at(self.sample_bits, hash)
    }

    /// A hit under the write lock (exact LRU moves the entry).
    #[inline]
    pub(crate) fn touch_locked(&mut self, idx: u32) {
        self.table.touch_locked(idx);
    }

    /// Current time relative to this shard's base.
    #[inline]
    pub(crate) fn rel(&self, now: u64) -> u64 {
        now.saturating_sub(self.base_ms)
    }

    /// The deadline of the full slot `idx` in relative ticks (0: never).
    #[inline]
    pub(crate) fn deadline_of(&self, idx: u32) -> u64 {
        match self.table.slab.entry(idx).deadline {
            FAR => self.far.get(&idx).copied().unwrap_or(u64::MAX),
            d => u64::from(d),
        }
    }

    /// Whether the entry in the full slot `idx` has expired at `now`.
    #[inline]
    pub(crate) fn is_expired(&self, idx: u32, now: u64) -> bool {
        let d = self.deadline_of(idx);
        d != 0 && self.rel(now) >= d
    }

    /// Remaining time to live of the entry in `idx`: `None` if it never expires.
    pub(crate) fn ttl_of(&self, idx: u32, now: u64) -> Option<std::time::Duration> {
        match self.deadline_of(idx) {
            0 => None,
            d => Some(std::time::Duration::from_millis(
                d.saturating_sub(self.rel(now)),
            )),
        }
    }

    /// A relative deadline for a TTL starting now (0: no deadline). A TTL of zero
    /// gives a deadline that has already passed.
    pub(crate) fn deadline_for(&self, now: u64, ttl_ms: Option<u64>) -> u64 {
        match ttl_ms {
            None => 0,
            Some(ttl) => self.rel(now).saturating_add(ttl).max(1),
        }
    }

    /// Whether a deadline from [`deadline_for`](Self::deadline_for) has passed
    /// already (a TTL of zero): such a value is never stored.
    #[inline]
    pub(crate) fn is_due(&self, deadline: u64, now: u64) -> bool {
        deadline != 0 && self.rel(now) >= deadline
    }

    /// Sets the deadline (relative ticks, 0: never) of the full slot `idx`, keeping
    /// the timed count, the far table and the earliest-deadline bound in step.
    pub(crate) fn set_deadline(&mut self, idx: u32, deadline: u64) {
        let old = self.table.slab.entry(idx).deadline;
        if old == FAR {
            self.far.remove(&idx);
        }
        match (old != 0, deadline != 0) {
            (false, true) => self.timed += 1,
            (true, false) => self.timed -= 1,
            _ => {}
        }
        let stored = match u32::try_from(deadline) {
            Ok(d) if d != FAR => d,
            _ => {
                self.far.insert(idx, deadline);
                FAR
            }
        };
        self.table.slab.entry_mut(idx).deadline = stored;
        if deadline != 0 {
            self.next_expiry = self.next_expiry.min(deadline);
        }
    }

    /// The slot holding `key`, if any (expired or not).
    #[cfg(feature = "memcached")]
    #[inline]
    pub(crate) fn find<Q>(&self, hash: NonZeroU32, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.table.find(hash, key)
    }

    /// The read path's lookup: the slot holding `key` and its entry, if the
    /// entry has not expired, with the time it was checked at. The clock is
    /// read only for an entry with a deadline (0 is returned as the time
    /// otherwise).
    #[inline(always)]
    pub(crate) fn find_fresh<Q>(
        &self,
        hash: NonZeroU32,
        key: &Q,
        clock: &crate::Clock,
    ) -> Option<(u32, &Entry<K, V>, u64)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let (idx, e) = self.table.find_entry(hash, key)?;
        if e.deadline == 0 {
            return Some((idx, e, 0));
        }
        let now = clock.now_ms();
        (!self.is_expired(idx, now)).then_some((idx, e, now))
    }

    /// The slot holding a live entry for `key`; an expired one found on the way is
    /// reclaimed.
    pub(crate) fn find_live<Q>(
        &mut self,
        hash: NonZeroU32,
        key: &Q,
        now: u64,
        garbage: &mut Garbage<K, V>,
    ) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        let idx = self.table.find_noting(hash, key)?;
        if self.is_expired(idx, now) {
            self.remove_slot(idx, RemovalCause::Expired, garbage);
            return None;
        }
        Some(idx)
    }

    /// Housekeeping done by every write: move the time base if due, and reclaim a few
    /// expired entries.
    pub(crate) fn maintain(&mut self, now: u64, garbage: &mut Garbage<K, V>) {
        self.writes_since_sweep += 1;
        if self.rel(now) >= REBASE_AFTER {
            self.rebase(now);
        }
        if self.timed > 0 {
            let _ = self.sweep(now, SWEEP_STEP as usize, garbage);
        }
    }

    fn rebase(&mut self, now: u64) {
        let new_base = now - 1;
        let shift = new_base - self.base_ms;
        let shifted = |d: u64| if d <= shift { 1 } else { d - shift };
        for i in 0..self.table.slab.len() as u32 {
            if let Slot::Full(e) = self.table.slab.slot_mut(i) {
                if e.deadline != 0 && e.deadline != FAR {
                    e.deadline = shifted(u64::from(e.deadline)) as u32;
                }
            }
        }
        // Far deadlines move back into their slots once they fit.
        let far = std::mem::take(&mut self.far);
        for (idx, d) in far {
            let d = shifted(d);
            match u32::try_from(d) {
                Ok(d32) if d32 != FAR => self.table.slab.entry_mut(idx).deadline = d32,
                _ => {
                    self.far.insert(idx, d);
                }
            }
        }
        if self.next_expiry != u64::MAX {
            self.next_expiry = shifted(self.next_expiry);
        }
        self.base_ms = new_base;
    }

    /// Examines up to `budget` slots from the sweep cursor, removing expired entries.
    /// Reclaims the expired entries among the next `budget` slots; how many.
    pub(crate) fn sweep(&mut self, now: u64, budget: usize, garbage: &mut Garbage<K, V>) -> u64 {
        let n = self.table.slab.len() as u32;
        let mut reclaimed = 0;
        if n == 0 {
            return reclaimed;
        }
        for _ in 0..budget.min(n as usize) {
            if self.sweep_cursor >= n {
                self.sweep_cursor = 0;
            }
            let idx = self.sweep_cursor;
            self.sweep_cursor += 1;
            if self.table.slab.is_full(idx) && self.is_expired(idx, now) {
                self.remove_slot(idx, RemovalCause::Expired, garbage);
                reclaimed += 1;
            }
        }
        reclaimed
    }

    /// Sweeps every slot, reclaiming the expired entries, and makes the
    /// earliest-deadline bound exact.
    pub(crate) fn sweep_all(&mut self, now: u64, garbage: &mut Garbage<K, V>) {
        let mut earliest = u64::MAX;
        for idx in 0..self.table.slab.len() as u32 {
            if !self.table.slab.is_full(idx) {
                continue;
            }
            if self.is_expired(idx, now) {
                self.remove_slot(idx, RemovalCause::Expired, garbage);
            } else {
                match self.deadline_of(idx) {
                    0 => {}
                    d => earliest = earliest.min(d),
                }
            }
        }
        self.next_expiry = earliest;
        self.writes_since_sweep = 0;
    }

    /// Removes the entry in `idx` (not an eviction: the policy unlinks it its own way).
    pub(crate) fn remove_slot(
        &mut self,
        idx: u32,
        cause: RemovalCause,
        garbage: &mut Garbage<K, V>,
    ) {
        let e = self.detach(idx);
        self.count(cause);
        garbage.push(e.key, e.value, cause);
    }

    /// Takes the entry in `idx` out of the policy, the slab and the shard's books,
    /// counting nothing.
    fn detach(&mut self, idx: u32) -> Entry<K, V> {
        let e = self.table.detach(idx);
        self.forget(idx, &e);
        e
    }

    /// The shard's bookkeeping for an entry that has left slot `idx` (the table
    /// did its own): deadlines.
    fn forget(&mut self, idx: u32, e: &Entry<K, V>) {
        if e.deadline != 0 {
            self.timed -= 1;
            if e.deadline == FAR {
                self.far.remove(&idx);
            }
        }
    }

    /// Counts an entry that left for `cause`.
    fn count(&mut self, cause: RemovalCause) {
        match cause {
            RemovalCause::Evicted => self.counters.evictions += 1,
            RemovalCause::Expired => self.counters.expirations += 1,
            RemovalCause::Removed => self.counters.removals += 1,
            RemovalCause::Replaced => {}
        }
    }

    /// A new capacity: evicts until the entries fit it.
    pub(crate) fn set_capacity(
        &mut self,
        capacity: u64,
        slot_hint: usize,
        now: u64,
        garbage: &mut Garbage<K, V>,
    ) {
        self.table.set_capacity(capacity, slot_hint);
        self.make_room(0, now, garbage);
    }

    /// Evicts until `extra` more weight fits within the capacity. Expired entries go
    /// first: before the first live entry would be evicted, a shard whose earliest
    /// deadline has passed sweeps itself (see the module docs for the amortisation).
    fn make_room(&mut self, extra: u64, now: u64, garbage: &mut Garbage<K, V>) {
        if self.must_evict(extra)
            && self.timed > 0
            && self.rel(now) >= self.next_expiry
            && self.writes_since_sweep >= u64::from(self.table.slab.live / 4)
        {
            self.sweep_all(now, garbage);
        }
        if self.keeps_live() {
            // memcached's `-M`: the store checked for room first
            // (`Cache::room_for`); writes racing it may overshoot a little.
            return;
        }
        let rel = self.rel(now);
        while self.must_evict(extra) && self.evict_one(rel, garbage) {}
    }

    /// Whether this shard keeps its live entries when the cache is full
    /// (a lending cache made so, see `Cache::lend_between_shards`).
    #[inline]
    fn keeps_live(&self) -> bool {
        self.lending.as_ref().is_some_and(|(l, _)| l.keeps_live())
    }

    /// Whether an entry here has expired and not been swept yet, as far as
    /// the earliest deadline tells.
    #[cfg(feature = "memcached")]
    pub(crate) fn expiry_due(&self, now: u64) -> bool {
        self.timed > 0 && self.rel(now) >= self.next_expiry
    }

    /// Evicts this shard's entries while it holds more than its share and the
    /// cache as a whole more than its capacity (see [`Lending`]): gives back
    /// room it borrowed, when a shard that had too little of its own to evict
    /// stored an entry anyway. Whether the cache is within its capacity now.
    pub(crate) fn shed_borrowed(&mut self, now: u64, garbage: &mut Garbage<K, V>) -> bool {
        let rel = self.rel(now);
        while self.must_evict(0) && self.evict_one(rel, garbage) {}
        self.publish_weight();
        !self.global_over(0)
    }

    /// Evicts the policy's next victim; false when the shard is empty.
    fn evict_one(&mut self, rel: u64, garbage: &mut Garbage<K, V>) -> bool {
        let Some((idx, e)) = self.table.evict(rel) else {
            return false;
        };
        let deadline = match e.deadline {
            FAR => self.far.get(&idx).copied().unwrap_or(u64::MAX),
            d => u64::from(d),
        };
        let cause = if deadline != 0 && rel >= deadline {
            RemovalCause::Expired
        } else {
            RemovalCause::Evicted
        };
        self.forget(idx, &e);
        self.count(cause);
        garbage.push(e.key, e.value, cause);
        true
    }

    /// Inserts or replaces. `weight` must be at least 1.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn insert(
        &mut self,
        key: K,
        value: V,
        hash: NonZeroU32,
        weight: u32,
        ttl_ms: Option<u64>,
        now: u64,
        garbage: &mut Garbage<K, V>,
    ) {
        self.maintain(now, garbage);
        let deadline = self.deadline_for(now, ttl_ms);
        let found = self.find_live(hash, &key, now, garbage);
        self.put(
            found,
            key,
            value,
            hash,
            weight,
            Some(deadline),
            now,
            garbage,
        );
    }

    /// Stores `value` for `key`, whose live slot (if any) is `found`: replaces it, or
    /// stores a new entry (`deadline: None` keeps an old entry's deadline and gives a
    /// new one none). A value whose deadline has already passed is not stored: it
    /// only removes the old value (the listener sees the old value as `Replaced` and
    /// the new one as `Expired`), and evicts nothing.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn put(
        &mut self,
        found: Option<u32>,
        key: K,
        value: V,
        hash: NonZeroU32,
        weight: u32,
        deadline: Option<u64>,
        now: u64,
        garbage: &mut Garbage<K, V>,
    ) {
        if deadline.is_some_and(|d| self.is_due(d, now)) {
            if let Some(idx) = found {
                self.remove_slot(idx, RemovalCause::Replaced, garbage);
                self.counters.updates += 1;
            }
            self.counters.expirations += 1;
            garbage.push(key, value, RemovalCause::Expired);
            return;
        }
        match found {
            Some(idx) => self.replace(idx, key, value, weight, deadline, now, garbage),
            None => self.insert_new(
                key,
                value,
                hash,
                weight,
                deadline.unwrap_or(0),
                now,
                garbage,
            ),
        }
    }

    /// Whether an entry of this weight can be stored at all.
    #[inline]
    fn fits(&self, weight: u32) -> bool {
        self.table.fits(weight)
    }

    /// Stores a key known to be absent.
    #[allow(clippy::too_many_arguments)]
    fn insert_new(
        &mut self,
        key: K,
        value: V,
        hash: NonZeroU32,
        weight: u32,
        deadline: u64,
        now: u64,
        garbage: &mut Garbage<K, V>,
    ) {
        if !self.fits(weight) {
            // Heavier than this shard's whole share: never stored.
            self.counters.rejections += 1;
            garbage.push(key, value, RemovalCause::Evicted);
            return;
        }
        let placement = match &self.mode {
            Mode::Fixed(placement) => *placement,
            Mode::Shadow(shadow) => shadow.placement(),
        };
        self.table.policy.before_insert(placement);
        self.make_room(u64::from(weight), now, garbage);
        self.maybe_compact();
        let idx = self.link(Entry::new(key, value, hash, weight, 0), deadline);
        if let Mode::Shadow(shadow) = &self.mode {
            // The event is recorded after this shard's lock is released (see
            // `Cache::finish`). The shadows' mutex may still be taken under a
            // shard lock, by another cache's batch replayed from a closure
            // run under this lock, but nothing else is locked while it is
            // held, so that cannot deadlock.
            self.sample_bits = shadow.bits();
            if Shadow::sampled_at(self.sample_bits, hash) {
                garbage.sampled_insert = Some((hash, weight));
            }
        }
        self.table.policy.on_insert(&mut self.table.slab, idx);
        self.counters.inserts += 1;
    }

    /// Stores an entry read back from a snapshot: like a new insert, except that
    /// the policy places it by `hint` (its queue and access counter when saved,
    /// see [`hint_of`](Self::hint_of)) instead of treating it as never seen, so a
    /// restored cache is not cold-ordered and a restore into a smaller cache
    /// evicts the colder entries first. A key already present is overwritten as
    /// by an insert. `deadline` is relative ticks (0: never). Returns whether
    /// the entry was stored, or hands it back when a full shard refused it as
    /// colder than what it holds (for the caller to drop after the lock).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn restore(
        &mut self,
        key: K,
        value: V,
        hash: NonZeroU32,
        weight: u32,
        deadline: u64,
        hint: u8,
        now: u64,
        garbage: &mut Garbage<K, V>,
    ) -> Result<bool, (K, V)> {
        if let Some(idx) = self.find_live(hash, &key, now, garbage) {
            self.put(
                Some(idx),
                key,
                value,
                hash,
                weight,
                Some(deadline),
                now,
                garbage,
            );
            return Ok(true);
        }
        if self.is_due(deadline, now) {
            garbage.push(key, value, RemovalCause::Expired);
            return Ok(false);
        }
        if !self.fits(weight) {
            self.counters.rejections += 1;
            garbage.push(key, value, RemovalCause::Evicted);
            return Ok(false);
        }
        // A full shard takes an entry that was never hit only into room: it would
        // otherwise evict entries that were (the policy's victim may be hot), and
        // a restore into a smaller cache must keep the hottest. Exact LRU keeps
        // no access counter; it restores in file order, evicting as inserts do.
        // A cache that keeps its live entries (memcached's `-M`) takes what
        // fits and no more.
        if self.keeps_live() && self.global_over(u64::from(weight)) {
            return Err((key, value));
        }
        let cold = hint & 0b11 == 0 && self.table.policy.max_freq() > 0;
        if cold && self.must_evict(u64::from(weight)) {
            return Err((key, value));
        }
        self.make_room(u64::from(weight), now, garbage);
        self.maybe_compact();
        let idx = self.link(Entry::new(key, value, hash, weight, 0), deadline);
        self.table
            .policy
            .on_restore(&mut self.table.slab, idx, hint);
        self.counters.inserts += 1;
        Ok(true)
    }

    /// Brings the table groups of the keys with these hashes into cache before
    /// a run of inserts (see `Slab::touch`); the result only keeps the reads
    /// from being optimised away.
    pub(crate) fn warm(&self, hashes: impl Iterator<Item = NonZeroU32>) -> u8 {
        hashes.fold(0u8, |acc, h| acc ^ self.table.slab.touch(h.get()))
    }

    /// Sizes the table for `entries` entries in all (a restore that knows how
    /// many are coming), never past the shard's expected size.
    pub(crate) fn reserve(&mut self, entries: usize) {
        let entries = entries.min(self.table.slot_hint);
        if entries > self.table.slab.max_load() {
            let remap = self.table.rehash(entries);
            self.moved(&remap);
        }
    }

    /// The policy standing of the full slot `idx` as a snapshot records it: the
    /// access counter in bits 0–1, the queue tag in bits 2–3.
    pub(crate) fn hint_of(&self, idx: u32) -> u8 {
        let e = self.table.slab.entry(idx);
        ((e.freq() & 0b11) | ((e.queue() & 0b11) << 2)) as u8
    }

    /// Calls `f` with the live entries of the next range of the table's hash
    /// order from `from` on (about `max_slots` slots; see `Slab::walk`), each
    /// with its deadline on the cache's clock (milliseconds, 0: never) and its
    /// [`hint_of`](Self::hint_of), until `f` returns false. Returns where to go
    /// on, or `None` once the walk reached the end. Entries expired at `now`
    /// are skipped. Consecutive calls show every entry present all through
    /// them exactly once, whatever rebuilds of the table happen between them.
    pub(crate) fn visit_slice(
        &self,
        from: u64,
        max_slots: u32,
        now: u64,
        mut f: impl FnMut(&K, &V, u64, u8) -> bool,
    ) -> Option<u64> {
        self.table.slab.walk(from, max_slots, |at| {
            if self.is_expired(at, now) {
                return true;
            }
            let e = self.table.slab.entry(at);
            let deadline = match self.deadline_of(at) {
                0 => 0,
                d => self.base_ms.saturating_add(d),
            };
            f(&e.key, &e.value, deadline, self.hint_of(at))
        })
    }

    /// Puts an entry (whose slot deadline is 0) in the table, with
    /// `deadline`; the policy is the caller's to tell.
    fn link(&mut self, entry: Entry<K, V>, deadline: u64) -> u32 {
        debug_assert_eq!(entry.deadline, 0);
        let (idx, remap) = self.table.link(entry);
        if let Some(remap) = remap {
            self.moved(&remap);
        }
        self.set_deadline(idx, deadline);
        idx
    }

    /// Applies a rebuild of the table (entries moved) to the positions the
    /// shard holds: the far deadlines, and the sweep's place (scaled).
    fn moved(&mut self, remap: &crate::slab::Remap) {
        if !self.far.is_empty() {
            self.far = self
                .far
                .drain()
                .map(|(idx, d)| (remap.new_of(idx), d))
                .collect();
        }
        // Positions follow the hash order, roughly: the sweep goes on from
        // about the same place in it rather than starting over.
        let (old, new) = (remap.map.len() as u64, self.table.slab.len() as u64);
        self.sweep_cursor = match old {
            0 => 0,
            old => (u64::from(self.sweep_cursor) * new / old) as u32,
        };
    }

    /// Takes the entry in `idx` out of the shard without counting a removal, for
    /// [`link`](Self::link) to put back: its deadline (relative ticks) is returned
    /// beside it and its slot deadline reset to 0.
    fn unlink(&mut self, idx: u32) -> (Entry<K, V>, u64) {
        let deadline = self.deadline_of(idx);
        let mut e = self.detach(idx);
        e.deadline = 0;
        (e, deadline)
    }

    /// Replaces the value of the live entry in `idx`; `deadline: None` keeps the old
    /// one. `key` is the caller's copy of the key, reported with the old value.
    ///
    /// A write never evicts the entry it writes: when the new value needs room, the
    /// entry is taken out of the policy's reach while others are evicted, then put
    /// back where it was (same queue, same access counter).
    #[allow(clippy::too_many_arguments)]
    fn replace(
        &mut self,
        mut idx: u32,
        key: K,
        value: V,
        weight: u32,
        deadline: Option<u64>,
        now: u64,
        garbage: &mut Garbage<K, V>,
    ) {
        if !self.fits(weight) {
            // Too heavy to keep: the old value is replaced, and the new one leaves at
            // once (counted as an update and an eviction).
            self.remove_slot(idx, RemovalCause::Replaced, garbage);
            self.counters.updates += 1;
            self.counters.evictions += 1;
            garbage.push(key, value, RemovalCause::Evicted);
            return;
        }
        let old_weight = self.table.slab.entry(idx).weight();
        if weight > old_weight && self.must_evict(u64::from(weight - old_weight)) {
            let (entry, old_deadline) = self.unlink(idx);
            self.make_room(u64::from(weight), now, garbage);
            self.maybe_compact();
            idx = self.link(entry, old_deadline);
            self.table.policy.on_relink(&mut self.table.slab, idx);
        }
        let e = self.table.slab.entry_mut(idx);
        let old_weight = e.weight();
        // The incoming key replaces the stored one (they are equal): a key type that
        // carries data of its own (the memcached store keeps a whole item in it)
        // updates with the value. The listener sees the old key with the old value.
        let old_key = std::mem::replace(&mut e.key, key);
        let old = std::mem::replace(&mut e.value, value);
        e.set_weight(weight);
        if let Some(d) = deadline {
            self.set_deadline(idx, d);
        }
        self.table.weight = self.table.weight - u64::from(old_weight) + u64::from(weight);
        self.table
            .policy
            .on_reweigh(&self.table.slab, idx, old_weight);
        self.table.policy.on_update(&mut self.table.slab, idx);
        self.counters.updates += 1;
        garbage.push(old_key, old, RemovalCause::Replaced);
        debug_assert!(self.table.weight <= self.table.capacity || self.lending.is_some());
    }

    /// Compacts the policy queues when dead slots have piled up (amortised O(1): a
    /// pass costs O(live + dead) and runs only after `live / 4` removals), and
    /// rebuilds the table smaller when removals have left it mostly empty
    /// (amortised the same way; see [`Slab::should_shrink`](crate::slab::Slab::should_shrink)).
    /// Called before an insert links its entry.
    fn maybe_compact(&mut self) {
        self.table.maybe_compact();
        if let Some(remap) = self.table.maybe_shrink() {
            self.moved(&remap);
        }
    }

    /// Removes everything, returning the entries.
    pub(crate) fn clear(&mut self, garbage: &mut Garbage<K, V>) {
        let removed = self.table.slab.live as u64;
        self.table
            .clear(|e| garbage.push(e.key, e.value, RemovalCause::Removed));
        self.far.clear();
        self.next_expiry = u64::MAX;
        self.timed = 0;
        self.sweep_cursor = 0;
        self.counters.removals += removed;
    }

    /// Visits every live entry; removes those for which `keep` says false.
    pub(crate) fn retain(
        &mut self,
        now: u64,
        keep: &mut impl FnMut(&K, &V) -> bool,
        garbage: &mut Garbage<K, V>,
    ) {
        for idx in 0..self.table.slab.len() as u32 {
            let (expired, kept) = match self.table.slab.slot(idx) {
                Slot::Full(e) => {
                    let expired = self.is_expired(idx, now);
                    (expired, expired || keep(&e.key, &e.value))
                }
                Slot::Empty { .. } => continue,
            };
            if expired {
                self.remove_slot(idx, RemovalCause::Expired, garbage);
            } else if !kept {
                self.remove_slot(idx, RemovalCause::Removed, garbage);
            }
        }
    }

    /// Bytes of heap this shard holds for its own structures (not counting what keys
    /// and values own).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
    }

    /// Checks every invariant of the shard (tests and fuzzing only).
    pub(crate) fn validate(&self) {
        self.table.validate(self.lending.is_some());
        let mut timed = 0u32;
        let mut far = 0usize;
        for i in self.table.slab.full() {
            let e = self.table.slab.entry(i);
            timed += u32::from(e.deadline != 0);
            if e.deadline == FAR {
                far += 1;
                assert!(self.far.contains_key(&i), "far slot {i} has no deadline");
            }
            let d = self.deadline_of(i);
            assert!(d == 0 || d >= self.next_expiry, "deadline before the bound");
        }
        assert_eq!(far, self.far.len(), "stale far deadlines");
        assert_eq!(timed, self.timed);
    }
}
