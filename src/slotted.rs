//! The shards' reader-writer lock, whose readers on different CPUs write
//! different cache lines.
//!
//! Taking an ordinary reader-writer lock for reading is an atomic
//! read-modify-write of its one state word. Two threads that read the same
//! shard therefore take turns owning that word's cache line, even though
//! neither changes anything the other reads: with 65,536 keys in cache,
//! two threads reading larder with one lock word per shard ran *slower*
//! than one (27.8 against 43.7 M gets/s in `examples/read_probe.rs`), and a
//! striped `RwLock<HashMap>` no faster than one, while the same map with a
//! reader lock per thread ran 115 M gets/s.
//!
//! [`SlottedRwLock`] keeps one plain lock per *slot*, each on cache lines of
//! its own, and a thread always reads through the same slot (picked
//! round-robin when the thread first reads, [`thread_index`]). A reader
//! takes its slot's lock for reading; a writer takes every slot's lock for
//! writing, in slot order, so it excludes all readers and every other writer
//! (two writers meet at slot 0, and no thread holds more than one slot's read
//! lock, so there is no lock-order cycle). Reads are as cheap as before and
//! stop sharing lines; writes cost one lock per slot, which is why a cache
//! whose hits take the write lock (exact LRU) keeps a single slot, and the
//! slot count follows the CPU count ([`read_slots`]).
//!
//! The data sits in an `UnsafeCell` beside the slots, so handing out `&T`
//! under one slot's read lock and `&mut T` under all slots' write locks is
//! the one thing this module does unsafely; the slot locks themselves are
//! ordinary guards. Under `--cfg larder_loom` the slots are loom's locks and
//! the cell is loom's, which checks every access against those rules
//! (`tests/loom.rs` runs the caches' models with two slots).

#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

use crate::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::fmt;
use std::ops::{Deref, DerefMut};

/// The most slots a lock has: a write takes them all, so more slots make
/// writes dearer while the readers they separate run on at most as many CPUs.
pub(crate) const MAX_SLOTS: usize = 8;

/// How many slots a shard's lock gets: one per CPU (a power of two, at most
/// [`MAX_SLOTS`]), or one when the cache's hits write anyway.
pub(crate) fn read_slots(hits_take_write_lock: bool) -> usize {
    if hits_take_write_lock {
        return 1;
    }
    // Two under the model checker, so that its runs cover the slot protocol.
    #[cfg(larder_loom)]
    let cpus: usize = 2;
    #[cfg(not(larder_loom))]
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpus.next_power_of_two().min(MAX_SLOTS)
}

/// This thread's index, the same for its whole life: a round-robin count of
/// the threads that asked, so that the first threads to use a cache spread
/// over its slots (and its hit counters).
#[cfg(not(larder_loom))]
#[inline]
pub(crate) fn thread_index() -> usize {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // `const`, with no destructor: each access is one thread-relative load.
    std::thread_local! {
        static INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(usize::MAX) };
    }
    INDEX.with(|index| {
        let mut i = index.get();
        if i == usize::MAX {
            i = NEXT.fetch_add(1, Relaxed) & (usize::MAX >> 1);
            index.set(i);
        }
        i
    })
}

/// This thread's index under the model checker: loom's own number for the
/// thread, the same in every execution of a model (a global counter would
/// not be, nor would the id's hash, which covers the execution too). Only
/// its `Debug` form shows the number.
#[cfg(larder_loom)]
pub(crate) fn thread_index() -> usize {
    let id = format!("{:?}", loom::thread::current().id());
    id.bytes().filter(u8::is_ascii_digit).fold(0usize, |n, d| {
        n.wrapping_mul(10).wrapping_add(usize::from(d - b'0'))
    })
}

/// One slot's lock, on cache lines of its own.
#[repr(align(128))]
struct Slot(RwLock<()>);

#[cfg(not(larder_loom))]
type Data<T> = std::cell::UnsafeCell<T>;
#[cfg(larder_loom)]
type Data<T> = loom::cell::UnsafeCell<T>;

/// A reader-writer lock whose readers spread over per-CPU slots (see the
/// module docs). No poisoning, as parking_lot's.
pub(crate) struct SlottedRwLock<T> {
    slots: Box<[Slot]>,
    /// `slots.len() - 1` (the count is a power of two).
    mask: usize,
    data: Data<T>,
}

// SAFETY: the lock hands out `&T` to several threads at once (readers) and
// `&mut T` to one (a writer), as `std::sync::RwLock` does, under the same
// bounds: sending the lock moves the `T` (`Send`); sharing it shares `&T`
// between readers (`Sync`) and lets any thread take `&mut T` (`Send`).
unsafe impl<T: Send> Send for SlottedRwLock<T> {}
// SAFETY: as above.
unsafe impl<T: Send + Sync> Sync for SlottedRwLock<T> {}

impl<T> SlottedRwLock<T> {
    /// A lock with `slots` reader slots (rounded up to a power of two, at
    /// least 1 and at most [`MAX_SLOTS`]).
    pub(crate) fn new(value: T, slots: usize) -> Self {
        let n = slots.clamp(1, MAX_SLOTS).next_power_of_two();
        SlottedRwLock {
            slots: (0..n).map(|_| Slot(RwLock::new(()))).collect(),
            mask: n - 1,
            data: Data::new(value),
        }
    }

    /// The slot this thread reads through.
    #[inline]
    fn slot(&self) -> &Slot {
        &self.slots[thread_index() & self.mask]
    }

    /// Read access: this thread's slot, shared.
    #[inline]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        let slot = self.slot().0.read();
        self.reading(slot)
    }

    /// [`read`](Self::read), or `None` if a writer holds or waits for this
    /// thread's slot.
    #[inline]
    pub(crate) fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        let slot = self.slot().0.try_read()?;
        Some(self.reading(slot))
    }

    /// Write access: every slot, exclusively, in slot order.
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        let mut held: [Option<RwLockWriteGuard<'_, ()>>; MAX_SLOTS] = Default::default();
        for (slot, h) in self.slots.iter().zip(&mut held) {
            *h = Some(slot.0.write());
        }
        self.writing(held)
    }

    /// [`write`](Self::write), or `None` if any slot is held (what it took
    /// so far is let go).
    pub(crate) fn try_write(&self) -> Option<WriteGuard<'_, T>> {
        let mut held: [Option<RwLockWriteGuard<'_, ()>>; MAX_SLOTS] = Default::default();
        for (slot, h) in self.slots.iter().zip(&mut held) {
            *h = Some(slot.0.try_write()?);
        }
        Some(self.writing(held))
    }

    #[inline]
    fn reading<'a>(&'a self, slot: RwLockReadGuard<'a, ()>) -> ReadGuard<'a, T> {
        ReadGuard {
            #[cfg(not(larder_loom))]
            // SAFETY: `slot` is a read lock on one of this lock's slots, held
            // as long as the guard lives (it is the guard's field). A `&mut T`
            // exists only in a `WriteGuard`, which holds every slot's write
            // lock, so none can exist while `slot` is held; shared references
            // may alias.
            data: unsafe { &*self.data.get() },
            #[cfg(larder_loom)]
            data: self.data.get(),
            _slot: slot,
        }
    }

    fn writing<'a>(
        &'a self,
        held: [Option<RwLockWriteGuard<'a, ()>>; MAX_SLOTS],
    ) -> WriteGuard<'a, T> {
        debug_assert!(held.iter().take(self.slots.len()).all(Option::is_some));
        WriteGuard {
            #[cfg(not(larder_loom))]
            // SAFETY: `held` holds every slot's write lock (the callers fill
            // one per slot), for as long as the guard lives. Readers need one
            // slot's read lock and writers all slots' write locks, so no other
            // reference to the data exists until the guard drops.
            data: unsafe { &mut *self.data.get() },
            #[cfg(larder_loom)]
            data: self.data.get_mut(),
            _held: held,
        }
    }
}

impl<T: Default> Default for SlottedRwLock<T> {
    fn default() -> Self {
        SlottedRwLock::new(T::default(), 1)
    }
}

impl<T> fmt::Debug for SlottedRwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlottedRwLock")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Shared access through one slot. Declared data first: under loom the
/// access it records must end before the slot's lock is let go.
pub(crate) struct ReadGuard<'a, T> {
    #[cfg(not(larder_loom))]
    data: &'a T,
    #[cfg(larder_loom)]
    data: loom::cell::ConstPtr<T>,
    _slot: RwLockReadGuard<'a, ()>,
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        #[cfg(not(larder_loom))]
        return self.data;
        #[cfg(larder_loom)]
        // SAFETY: as in `SlottedRwLock::reading`; loom checks it.
        unsafe {
            self.data.deref()
        }
    }
}

/// Exclusive access, holding every slot (data first, as in [`ReadGuard`]).
pub(crate) struct WriteGuard<'a, T> {
    #[cfg(not(larder_loom))]
    data: &'a mut T,
    #[cfg(larder_loom)]
    data: loom::cell::MutPtr<T>,
    _held: [Option<RwLockWriteGuard<'a, ()>>; MAX_SLOTS],
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        #[cfg(not(larder_loom))]
        return self.data;
        #[cfg(larder_loom)]
        // SAFETY: as in `SlottedRwLock::writing`; loom checks it.
        unsafe {
            self.data.deref()
        }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        #[cfg(not(larder_loom))]
        return self.data;
        #[cfg(larder_loom)]
        // SAFETY: as in `SlottedRwLock::writing`; loom checks it.
        unsafe {
            self.data.deref()
        }
    }
}

#[cfg(all(test, not(larder_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;

    #[test]
    fn slot_counts_are_powers_of_two_within_bounds() {
        for asked in [0, 1, 2, 3, 5, 8, 9, 100] {
            let lock = SlottedRwLock::new(0u32, asked);
            let n = lock.slots.len();
            assert!(n.is_power_of_two() && n <= MAX_SLOTS, "{asked} -> {n}");
            assert_eq!(lock.mask, n - 1);
        }
        assert_eq!(read_slots(true), 1);
        assert!(read_slots(false).is_power_of_two());
    }

    #[test]
    fn a_writer_excludes_readers_of_every_slot_and_other_writers() {
        let lock = SlottedRwLock::new(5u32, 4);
        {
            let mut w = lock.write();
            *w += 1;
            // Every slot is held: no read through any slot, no second writer.
            for slot in lock.slots.iter() {
                assert!(slot.0.try_read().is_none());
            }
            assert!(lock.try_read().is_none());
            assert!(lock.try_write().is_none());
        }
        assert_eq!(*lock.read(), 6);
        let r = lock.read();
        assert!(lock.try_write().is_none(), "a reader blocks writers");
        // A failed try_write let go of the slots it had taken: other slots
        // still read.
        for slot in lock.slots.iter() {
            assert!(slot.0.try_read().is_some());
        }
        drop(r);
        assert!(lock.try_write().is_some());
    }

    #[test]
    fn threads_spread_over_slots_and_never_see_a_torn_write() {
        // A writer keeps two fields equal; readers on several threads (so
        // several slots) check them. A reader that got in beside the writer
        // would see them differ.
        let lock = Arc::new(SlottedRwLock::new((0u64, 0u64), 4));
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..3)
            .map(|_| {
                let (lock, stop) = (Arc::clone(&lock), Arc::clone(&stop));
                std::thread::spawn(move || {
                    let mut seen = 0u64;
                    while !stop.load(SeqCst) {
                        let g = lock.read();
                        assert_eq!(g.0, g.1, "a read overlapped a write");
                        seen = seen.max(g.0);
                    }
                    seen
                })
            })
            .collect();
        // Miri runs this too, far slower.
        let writes = if cfg!(miri) { 200 } else { 20_000 };
        for _ in 0..writes {
            let mut w = lock.write();
            w.0 += 1;
            std::hint::spin_loop();
            w.1 += 1;
        }
        stop.store(true, SeqCst);
        for r in readers {
            assert!(r.join().expect("reader panicked") <= writes);
        }
        assert_eq!(*lock.read(), (writes, writes));
    }

    #[test]
    fn a_thread_keeps_its_index() {
        let here = thread_index();
        assert_eq!(thread_index(), here);
        let there = std::thread::spawn(thread_index).join().unwrap();
        assert_ne!(here, there, "threads are numbered in turn");
    }
}
