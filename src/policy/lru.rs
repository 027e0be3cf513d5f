//! Exact LRU: a doubly linked list over slab slots, most recently used at the tail.
//!
//! The forward links live in the slab (`next`); the backward links in a side vector
//! indexed by slot, so only caches that choose LRU pay for them. Every hit moves the
//! entry to the tail, so hits under this policy take the shard's write lock.

#![forbid(unsafe_code)]

use crate::slab::{Remap, Slab, NIL};

#[derive(Debug)]
pub(crate) struct Lru {
    head: u32,
    tail: u32,
    prev: Vec<u32>,
}

impl Lru {
    pub(crate) fn new() -> Self {
        Lru {
            head: NIL,
            tail: NIL,
            prev: Vec::new(),
        }
    }

    pub(crate) fn push_back<K, V>(&mut self, slab: &mut Slab<K, V>, idx: u32) {
        if self.prev.len() < slab.len() {
            self.prev.resize(slab.len(), NIL);
        }
        slab.slot_mut(idx).set_next(NIL);
        self.prev[idx as usize] = self.tail;
        if self.tail == NIL {
            self.head = idx;
        } else {
            slab.slot_mut(self.tail).set_next(idx);
        }
        self.tail = idx;
    }

    pub(crate) fn unlink<K, V>(&mut self, slab: &mut Slab<K, V>, idx: u32) {
        let prev = self.prev[idx as usize];
        let next = slab.slot(idx).next();
        if prev == NIL {
            self.head = next;
        } else {
            slab.slot_mut(prev).set_next(next);
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.prev[next as usize] = prev;
        }
        slab.slot_mut(idx).set_next(NIL);
        self.prev[idx as usize] = NIL;
    }

    pub(crate) fn touch<K, V>(&mut self, slab: &mut Slab<K, V>, idx: u32) {
        if self.tail != idx {
            self.unlink(slab, idx);
            self.push_back(slab, idx);
        }
    }

    /// The least recently used slot, left in place.
    #[cfg(feature = "memcached")]
    pub(crate) fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// The least recently used slot, unlinked.
    pub(crate) fn pop_front<K, V>(&mut self, slab: &mut Slab<K, V>) -> Option<u32> {
        let idx = self.head;
        if idx == NIL {
            return None;
        }
        self.unlink(slab, idx);
        Some(idx)
    }

    /// Relinks the list, in the same order, after a rebuild moved its entries.
    pub(crate) fn remap<K, V>(&mut self, slab: &mut Slab<K, V>, remap: &Remap) {
        let mut cur = self.head;
        self.head = NIL;
        self.tail = NIL;
        // A new vector, not a cleared one: a table rebuilt smaller gives the
        // old one's room back.
        self.prev = vec![NIL; slab.len()];
        while cur != NIL {
            let to = remap.new_of(cur);
            if to != NIL {
                self.push_back(slab, to);
            }
            cur = remap.old_next[cur as usize];
        }
    }

    /// Slots from least to most recently used (tests only).
    pub(crate) fn for_each<K, V>(&self, slab: &Slab<K, V>, mut f: impl FnMut(u32)) {
        let mut cur = self.head;
        let mut prev = NIL;
        while cur != NIL {
            assert_eq!(self.prev[cur as usize], prev, "broken back link");
            f(cur);
            prev = cur;
            cur = slab.slot(cur).next();
        }
        assert_eq!(prev, self.tail);
    }
}

impl Lru {
    pub(crate) fn heap_bytes(&self) -> usize {
        self.prev.capacity() * 4
    }
}
