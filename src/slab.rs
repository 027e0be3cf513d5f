//! Index-linked storage for one shard's entries.
//!
//! Entries live inline in a `Vec` of slots and are named by `u32` indices, never by
//! pointers: the index table maps a hash to a slot, and the policies link slots into
//! queues through each slot's `next` field. A slot is either full (an entry) or empty;
//! an empty slot is either on the free list or still threaded through a policy queue
//! (a *dead* slot, left behind by a removal and reclaimed when the queue passes it).
//!
//! Layout: for `u64 -> u64` an [`Entry`] is 32 bytes and a [`Slot`] is too (the empty
//! variant hides in the niche of the non-zero hash).

#![forbid(unsafe_code)]

use crate::sync::AtomicU32;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering::Relaxed;

/// Slot vectors of unknown final size double up to this many slots, then grow by
/// an eighth.
const GENTLE_FROM: usize = 1024;

/// The end of a list.
pub(crate) const NIL: u32 = u32::MAX;

/// Bits 0..28 of `meta`: the entry's weight.
pub(crate) const WEIGHT_MASK: u32 = (1 << 28) - 1;
/// The largest weight an entry may have.
pub(crate) const MAX_WEIGHT: u32 = WEIGHT_MASK;
const FREQ_SHIFT: u32 = 28;
const FREQ_MASK: u32 = 0b11 << FREQ_SHIFT;
const QUEUE_SHIFT: u32 = 30;
const QUEUE_MASK: u32 = 0b11 << QUEUE_SHIFT;

/// One cached entry.
pub(crate) struct Entry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// The low 32 bits of the key's hash (forced non-zero), kept so that table resizes
    /// and removals never call the key's `Hash` again.
    pub(crate) hash: NonZeroU32,
    /// Expiry tick relative to the shard's time base; 0 means "never".
    pub(crate) deadline: u32,
    /// Weight (28 bits) | access counter (2 bits) | queue id (2 bits). The counter is
    /// bumped under the shard's *read* lock with a relaxed load and store; every other
    /// bit changes only under the write lock, so a racing reader can never clobber it.
    pub(crate) meta: AtomicU32,
    /// Policy queue link.
    pub(crate) next: u32,
}

impl<K, V> Entry<K, V> {
    pub(crate) fn new(key: K, value: V, hash: NonZeroU32, weight: u32, deadline: u32) -> Self {
        Entry {
            key,
            value,
            hash,
            deadline,
            meta: AtomicU32::new(weight & WEIGHT_MASK),
            next: NIL,
        }
    }

    #[inline]
    pub(crate) fn weight(&self) -> u32 {
        self.meta.load(Relaxed) & WEIGHT_MASK
    }

    #[inline]
    pub(crate) fn freq(&self) -> u32 {
        (self.meta.load(Relaxed) & FREQ_MASK) >> FREQ_SHIFT
    }

    #[inline]
    pub(crate) fn queue(&self) -> u32 {
        (self.meta.load(Relaxed) & QUEUE_MASK) >> QUEUE_SHIFT
    }

    /// Records a hit: saturating increment of the access counter up to `max`.
    /// Called under the read lock; stores only when the value changes so a hot entry
    /// does not bounce its cache line between readers.
    #[inline]
    pub(crate) fn bump(&self, max: u32) {
        let m = self.meta.load(Relaxed);
        if (m & FREQ_MASK) >> FREQ_SHIFT < max {
            self.meta.store(m + (1 << FREQ_SHIFT), Relaxed);
        }
    }

    #[inline]
    pub(crate) fn set_freq(&self, freq: u32) {
        let m = self.meta.load(Relaxed);
        self.meta.store(
            (m & !FREQ_MASK) | ((freq << FREQ_SHIFT) & FREQ_MASK),
            Relaxed,
        );
    }

    #[inline]
    pub(crate) fn set_queue(&self, queue: u32) {
        let m = self.meta.load(Relaxed);
        self.meta.store(
            (m & !QUEUE_MASK) | ((queue << QUEUE_SHIFT) & QUEUE_MASK),
            Relaxed,
        );
    }

    #[inline]
    pub(crate) fn set_weight(&self, weight: u32) {
        let m = self.meta.load(Relaxed);
        self.meta
            .store((m & !WEIGHT_MASK) | (weight & WEIGHT_MASK), Relaxed);
    }
}

/// A slot of the slab.
pub(crate) enum Slot<K, V> {
    Full(Entry<K, V>),
    /// `queued`: still threaded through a policy queue (dead), else on the free list.
    Empty {
        next: u32,
        queued: bool,
    },
}

impl<K, V> Slot<K, V> {
    #[inline]
    pub(crate) fn next(&self) -> u32 {
        match self {
            Slot::Full(e) => e.next,
            Slot::Empty { next, .. } => *next,
        }
    }

    #[inline]
    pub(crate) fn set_next(&mut self, to: u32) {
        match self {
            Slot::Full(e) => e.next = to,
            Slot::Empty { next, .. } => *next = to,
        }
    }
}

/// The slot vector, its free list and its counts.
pub(crate) struct Slab<K, V> {
    slots: Vec<Slot<K, V>>,
    free: u32,
    /// Full slots.
    pub(crate) live: u32,
    /// Empty slots still threaded through a policy queue.
    pub(crate) dead: u32,
    /// A soft ceiling for growth: the slot vector grows by doubling but never past
    /// this (when it is known), so a cache of `n` entries does not keep `2n` slots.
    growth_cap: usize,
}

impl<K, V> Slab<K, V> {
    pub(crate) fn new(growth_cap: usize) -> Self {
        Slab {
            slots: Vec::new(),
            free: NIL,
            live: 0,
            dead: 0,
            growth_cap,
        }
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    #[inline]
    pub(crate) fn slot(&self, idx: u32) -> &Slot<K, V> {
        &self.slots[idx as usize]
    }

    #[inline]
    pub(crate) fn slot_mut(&mut self, idx: u32) -> &mut Slot<K, V> {
        &mut self.slots[idx as usize]
    }

    /// The entry in a slot the caller knows is full.
    #[inline]
    pub(crate) fn entry(&self, idx: u32) -> &Entry<K, V> {
        match &self.slots[idx as usize] {
            Slot::Full(e) => e,
            Slot::Empty { .. } => unreachable!("slot {idx} is empty"),
        }
    }

    #[inline]
    pub(crate) fn entry_mut(&mut self, idx: u32) -> &mut Entry<K, V> {
        match &mut self.slots[idx as usize] {
            Slot::Full(e) => e,
            Slot::Empty { .. } => unreachable!("slot {idx} is empty"),
        }
    }

    #[inline]
    pub(crate) fn is_full(&self, idx: u32) -> bool {
        matches!(self.slots[idx as usize], Slot::Full(_))
    }

    /// Makes room for `slots` slots in all (a snapshot restore that knows its
    /// size), never past the growth cap.
    pub(crate) fn reserve(&mut self, slots: usize) {
        let want = slots.min(self.growth_cap);
        if want > self.slots.capacity() {
            self.slots.reserve_exact(want - self.slots.len());
        }
    }

    /// Stores `entry` in a free slot (or a new one) and returns its index.
    pub(crate) fn alloc(&mut self, entry: Entry<K, V>) -> u32 {
        self.live += 1;
        if self.free != NIL {
            let idx = self.free;
            self.free = self.slots[idx as usize].next();
            self.slots[idx as usize] = Slot::Full(entry);
            return idx;
        }
        if self.slots.len() == self.slots.capacity() {
            let cap = self.slots.capacity();
            // Double up to the expected size; past it (dead slots awaiting compaction
            // can push a full shard over), or past `GENTLE_FROM` slots when the size
            // is not known (a weight bound), grow by an eighth, still geometric: a
            // doubling leaves up to half the vector spare, which a weight-bounded
            // store would have to charge its items for. Large vectors grow by
            // `mremap` without copying.
            let doubling_until = if self.growth_cap == usize::MAX {
                GENTLE_FROM
            } else {
                self.growth_cap
            };
            let want = if cap < doubling_until {
                (cap * 2).max(4).min(doubling_until)
            } else {
                cap + (cap / 8).max(4)
            };
            self.slots.reserve_exact(want - cap);
        }
        let idx = self.slots.len() as u32;
        self.slots.push(Slot::Full(entry));
        idx
    }

    /// Empties a full slot and returns its entry. `queued` says whether a policy queue
    /// still threads through the slot (it becomes dead) or not (it goes on the free list).
    pub(crate) fn take(&mut self, idx: u32, queued: bool) -> Entry<K, V> {
        let next = self.slots[idx as usize].next();
        let slot = std::mem::replace(&mut self.slots[idx as usize], Slot::Empty { next, queued });
        self.live -= 1;
        if queued {
            self.dead += 1;
        } else {
            self.push_free(idx);
        }
        match slot {
            Slot::Full(e) => e,
            Slot::Empty { .. } => unreachable!("slot {idx} was already empty"),
        }
    }

    /// Returns a dead slot that a queue has just unlinked to the free list.
    pub(crate) fn reclaim_dead(&mut self, idx: u32) {
        debug_assert!(matches!(
            self.slots[idx as usize],
            Slot::Empty { queued: true, .. }
        ));
        self.dead -= 1;
        self.push_free(idx);
    }

    fn push_free(&mut self, idx: u32) {
        self.slots[idx as usize] = Slot::Empty {
            next: self.free,
            queued: false,
        };
        self.free = idx;
    }

    /// Removes every slot and returns the entries.
    pub(crate) fn drain(&mut self) -> impl Iterator<Item = Entry<K, V>> {
        self.free = NIL;
        self.live = 0;
        self.dead = 0;
        std::mem::take(&mut self.slots)
            .into_iter()
            .filter_map(|s| match s {
                Slot::Full(e) => Some(e),
                Slot::Empty { .. } => None,
            })
    }

    /// Heap bytes held by the slot vector.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<Slot<K, V>>()
    }

    /// Checks the free list against the slots (tests and fuzzing only).
    pub(crate) fn validate(&self) {
        let mut free = 0u32;
        let mut i = self.free;
        while i != NIL {
            assert!(matches!(
                self.slots[i as usize],
                Slot::Empty { queued: false, .. }
            ));
            free += 1;
            i = self.slots[i as usize].next();
            assert!(free as usize <= self.slots.len(), "free list cycles");
        }
        let full = self
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Full(_)))
            .count();
        let dead = self
            .slots
            .iter()
            .filter(|s| matches!(s, Slot::Empty { queued: true, .. }))
            .count();
        assert_eq!(full, self.live as usize);
        assert_eq!(dead, self.dead as usize);
        assert_eq!(full + dead + free as usize, self.slots.len());
    }
}
