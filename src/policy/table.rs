//! The table a policy runs on: the slot table of entries (see `slab`), the
//! policy's state and a weight bound. No time: the shard builds deadlines, sweeps,
//! counters and the eviction listener's garbage on top of it, and the adaptive
//! policy's shadows use it bare (a sampled key space replayed at a scaled-down
//! capacity), so that neither the policies nor the shadows depend on the shard.
//!
//! Slot deadlines live in the entries (the policies skip an entry past its
//! deadline when choosing a victim), but a table never sets one: that is the
//! shard's business.

#![forbid(unsafe_code)]

use super::{Placement, Policy, PolicyState};
use crate::slab::{Entry, Remap, Slab, MAX_WEIGHT};
use std::borrow::Borrow;
use std::num::NonZeroU32;

pub(crate) struct Table<K, V> {
    pub(crate) slab: Slab<K, V>,
    pub(crate) policy: PolicyState,
    /// Expected most entries (the capacity when bounded by entries), for sizing.
    pub(crate) slot_hint: usize,
    pub(crate) capacity: u64,
    pub(crate) weight: u64,
    /// Highest value a read-locked hit may push an entry's counter to.
    pub(crate) max_freq: u32,
    /// Passes over the queues to reclaim dead slots so far (for tests).
    pub(crate) compactions: usize,
}

impl<K, V> Table<K, V>
where
    K: Eq,
{
    /// An empty table of `capacity` weight units, one of `shards` in its cache.
    pub(crate) fn new(policy: &Policy, capacity: u64, slot_hint: usize, shards: usize) -> Self {
        let policy = PolicyState::new(policy, capacity, slot_hint, shards);
        Table {
            slab: Slab::new(slot_hint),
            slot_hint,
            max_freq: policy.max_freq(),
            policy,
            capacity,
            weight: 0,
            compactions: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slab.live as usize
    }

    /// A new weight bound; the caller evicts any excess.
    pub(crate) fn set_capacity(&mut self, capacity: u64, slot_hint: usize) {
        self.capacity = capacity;
        self.slot_hint = slot_hint;
        self.slab.set_growth_cap(slot_hint);
        self.policy.set_capacity(capacity, slot_hint);
    }

    /// The slot holding `key`, if any.
    #[cfg(any(test, feature = "memcached"))]
    #[inline]
    pub(crate) fn find<Q>(&self, hash: NonZeroU32, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.find_entry(hash, key).map(|(idx, _)| idx)
    }

    /// [`find`](Self::find) for a write: the lookup's probe counts toward a
    /// rebuild of the table (see [`Slab::find_noting`]).
    #[inline]
    pub(crate) fn find_noting<Q>(&mut self, hash: NonZeroU32, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.slab
            .find_noting(hash.get(), |e| e.hash == hash && e.key.borrow() == key)
    }

    /// [`find`](Self::find), with the entry.
    #[inline(always)]
    pub(crate) fn find_entry<Q>(&self, hash: NonZeroU32, key: &Q) -> Option<(u32, &Entry<K, V>)>
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        self.slab
            .find_entry(hash.get(), |e| e.hash == hash && e.key.borrow() == key)
    }

    /// A hit under the write lock (exact LRU moves the entry).
    #[inline]
    pub(crate) fn touch_locked(&mut self, idx: u32) {
        self.policy.on_hit_locked(&mut self.slab, idx);
    }

    /// Whether an entry of this weight can be stored at all.
    #[inline]
    pub(crate) fn fits(&self, weight: u32) -> bool {
        weight <= MAX_WEIGHT && u64::from(weight) <= self.capacity
    }

    /// Puts `entry` in a slot and counts its weight; the policy is the caller's
    /// to tell (`on_insert`, `on_restore` or `on_relink`). Returns the slot, and
    /// the [`Remap`] if the table had to be rebuilt to make room (the policy has
    /// applied it; the caller applies it to any positions it holds).
    pub(crate) fn link(&mut self, entry: Entry<K, V>) -> (u32, Option<Remap>) {
        let remap = self.room_for_one();
        let weight = entry.weight();
        let idx = self.slab.alloc(entry);
        self.weight += u64::from(weight);
        (idx, remap)
    }

    /// Makes room for one more entry: reclaims dead slots if that is enough,
    /// else rebuilds the table (see [`Slab::rehash`]) and relinks the policy.
    fn room_for_one(&mut self) -> Option<Remap> {
        if !self.slab.needs_rehash() {
            return None;
        }
        // Reclaiming the dead slots costs a pass over the queues: worth it when
        // they are many (an eighth of the entries), else the rebuild drops them
        // and leaves room for as many (see `Slab::next_size`).
        if self.slab.dead > 0 && self.slab.dead >= self.slab.live / 8 {
            self.compactions += 1;
            self.policy.compact(&mut self.slab);
            if !self.slab.needs_rehash() {
                return None;
            }
        }
        let size = self.slab.next_size();
        Some(self.rehash(size))
    }

    /// Rebuilds the table with room for `entries` and relinks the policy's
    /// queues; the caller applies the returned [`Remap`] to any positions it
    /// holds.
    pub(crate) fn rehash(&mut self, entries: usize) -> Remap {
        let remap = self.slab.rehash(entries);
        self.policy.remap(&mut self.slab, &remap);
        remap
    }

    /// Takes the entry in `idx` out of the policy, the table and the
    /// weight (a removal, not an eviction: the policy unlinks it its own way).
    pub(crate) fn detach(&mut self, idx: u32) -> Entry<K, V> {
        let queued = self.policy.on_remove(&mut self.slab, idx);
        let e = self.slab.take(idx, queued);
        self.forget(&e);
        e
    }

    fn forget(&mut self, e: &Entry<K, V>) {
        self.weight -= u64::from(e.weight());
    }

    /// Whether `extra` more weight would overflow the capacity.
    #[inline]
    pub(crate) fn over(&self, extra: u64) -> bool {
        self.weight.saturating_add(extra) > self.capacity
    }

    /// Evicts the policy's next victim (`now`: relative ticks, for the policy's
    /// expiry check), returning the slot it left and the entry; `None` when the
    /// table is empty.
    pub(crate) fn evict(&mut self, now: u64) -> Option<(u32, Entry<K, V>)> {
        let idx = self.policy.evict(&mut self.slab, now)?;
        let e = self.slab.take(idx, false);
        self.forget(&e);
        Some((idx, e))
    }

    /// Compacts the policy queues when dead slots have piled up (amortised O(1): a
    /// pass costs O(live + dead) and runs only after `live / 4` removals).
    pub(crate) fn maybe_compact(&mut self) {
        if self.slab.dead > self.slab.live / 4 + 16 {
            self.compactions += 1;
            self.policy.compact(&mut self.slab);
        }
    }

    /// Rebuilds the table smaller when removals have left it mostly empty
    /// (see [`Slab::should_shrink`]); the caller applies the returned
    /// [`Remap`] to any positions it holds.
    pub(crate) fn maybe_shrink(&mut self) -> Option<Remap> {
        if !self.slab.should_shrink() {
            return None;
        }
        let size = self.slab.shrunk_size();
        let remap = self.rehash(size);
        self.policy.on_shrink(self.slab.live as usize);
        Some(remap)
    }

    /// Stores a key known to be absent, placed by `placement`, evicting as needed
    /// (the evicted entries are dropped). For tables without time or listeners:
    /// the shadows and the policies' tests. Returns false if `weight` can never fit.
    pub(crate) fn insert_new(
        &mut self,
        key: K,
        value: V,
        hash: NonZeroU32,
        weight: u32,
        placement: Placement,
    ) -> bool {
        if !self.fits(weight) {
            return false;
        }
        self.policy.before_insert(placement);
        while self.over(u64::from(weight)) && self.evict(0).is_some() {}
        self.maybe_compact();
        let (idx, _) = self.link(Entry::new(key, value, hash, weight, 0));
        self.policy.on_insert(&mut self.slab, idx);
        true
    }

    /// Forgets every entry, handing them to `drop_entry`.
    pub(crate) fn clear(&mut self, mut drop_entry: impl FnMut(Entry<K, V>)) {
        for e in self.slab.drain() {
            drop_entry(e);
        }
        self.policy.clear();
        self.weight = 0;
    }

    /// Bytes of heap this table holds for its own structures (not counting what
    /// keys and values own).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slab.heap_bytes() + self.policy.heap_bytes()
    }

    /// Checks the slot table, the weight and the policy's queues (tests and
    /// fuzzing only).
    /// `lends`: the shard may hold more than its capacity while the cache
    /// has room (see `shard::Lending`).
    pub(crate) fn validate(&self, lends: bool) {
        self.slab.validate();
        let mut weight = 0u64;
        for i in self.slab.full() {
            weight += u64::from(self.slab.entry(i).weight());
        }
        assert_eq!(weight, self.weight);
        assert!(lends || self.weight <= self.capacity, "over capacity");
        self.policy.validate(&self.slab, self.weight);
    }
}
