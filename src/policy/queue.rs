//! Singly linked FIFO queues threaded through the slab's `next` links.
//!
//! Removal is lazy: an entry removed from the middle of a queue leaves a dead slot
//! behind, which is reclaimed when the queue's head reaches it or when the shard
//! compacts its queues (see `Shard::maybe_compact`). This keeps the per-entry cost of
//! a queue at one `u32`.

#![forbid(unsafe_code)]

use crate::slab::{Remap, Slab, NIL};

#[derive(Debug)]
pub(crate) struct Queue {
    head: u32,
    tail: u32,
}

impl Queue {
    pub(crate) const fn new() -> Self {
        Queue {
            head: NIL,
            tail: NIL,
        }
    }

    pub(crate) fn push_back<K, V>(&mut self, slab: &mut Slab<K, V>, idx: u32) {
        slab.slot_mut(idx).set_next(NIL);
        if self.tail == NIL {
            self.head = idx;
        } else {
            slab.slot_mut(self.tail).set_next(idx);
        }
        self.tail = idx;
    }

    /// The first live entry, skipping dead slots ahead of it (which the queue's
    /// next pops would reclaim without returning anything).
    pub(crate) fn first_full<K, V>(&self, slab: &Slab<K, V>) -> Option<u32> {
        let mut cur = self.head;
        while cur != NIL && !slab.is_full(cur) {
            cur = slab.slot(cur).next();
        }
        (cur != NIL).then_some(cur)
    }

    pub(crate) fn pop_front<K, V>(&mut self, slab: &mut Slab<K, V>) -> Option<u32> {
        let idx = self.head;
        if idx == NIL {
            return None;
        }
        self.head = slab.slot(idx).next();
        if self.head == NIL {
            self.tail = NIL;
        }
        Some(idx)
    }

    /// Unlinks every dead slot, freeing it in the table.
    pub(crate) fn compact<K, V>(&mut self, slab: &mut Slab<K, V>) {
        let mut cur = self.head;
        *self = Queue::new();
        while cur != NIL {
            let next = slab.slot(cur).next();
            if slab.is_full(cur) {
                self.push_back(slab, cur);
            } else {
                slab.reclaim_dead(cur);
            }
            cur = next;
        }
    }

    /// Relinks the queue, in the same order, after a rebuild moved its entries
    /// (dead slots are gone with the old table).
    pub(crate) fn remap<K, V>(&mut self, slab: &mut Slab<K, V>, remap: &Remap) {
        let mut cur = self.head;
        *self = Queue::new();
        while cur != NIL {
            let to = remap.new_of(cur);
            if to != NIL {
                self.push_back(slab, to);
            }
            cur = remap.old_next[cur as usize];
        }
    }

    /// Visits every slot in queue order (tests only).
    pub(crate) fn for_each<K, V>(&self, slab: &Slab<K, V>, mut f: impl FnMut(u32)) {
        let mut cur = self.head;
        let mut steps = 0usize;
        while cur != NIL {
            f(cur);
            steps += 1;
            assert!(steps <= slab.len(), "queue cycles");
            let next = slab.slot(cur).next();
            if next == NIL {
                assert_eq!(cur, self.tail, "tail is not the last node");
            }
            cur = next;
        }
    }
}
