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
//! [`SlottedRwLock`] counts its readers in *slots*, each on cache lines of
//! its own, and a thread always reads through the same slot (picked
//! round-robin when the thread first uses a cache, [`here`]; threads one
//! slot count apart in that order share a slot, and a lock made with fewer
//! slots takes the thread's slot modulo its own count).
//!
//! - A reader adds one to its slot's count, then looks at the writers'
//!   flag: clear, it reads; set, it takes its count back and waits on the
//!   writers' gate (a parking_lot lock), shared, for the writer to finish.
//! - A writer takes the gate exclusively (which orders writers), sets the
//!   flag, then waits until every slot's count is zero: it spins briefly,
//!   then parks until a leaving reader, which sees the flag, wakes it.
//!
//! Both halves are sequentially consistent (an add and a load, a store and
//! loads), so of a reader and a writer that meet, at least one sees the
//! other: the reader backs off or the writer waits. Reads cost an add and
//! a subtract on the thread's own line, as a slot's lock did; a write costs
//! the gate, one flag store and a load per slot. Until session 11 each slot
//! was a reader-writer lock that every write took exclusively, one locked
//! instruction per slot each way: with 8 slots (any machine of 8 or more
//! CPUs) inserts ran at 5.7 M ops/s where 2 slots ran 8.4; now 8.6 either
//! way (`examples/insert_probe.rs`, slot count forced; BENCHMARKS.md).
//!
//! The slot count still follows the CPU count ([`slot_count`]): slots
//! separate readers on different CPUs, and a writer loads every slot's
//! line. A lock for data that nearly every access writes can have one slot
//! ([`SlottedRwLock::with_slots`]): its readers then take the gate shared
//! and count nothing, a plain reader-writer lock (an exact LRU's shards,
//! whose hits take the write lock).
//!
//! The data sits in an `UnsafeCell` beside the slots, so this module does
//! two things unsafely: it hands out `&T` to counted readers and `&mut T`
//! to the writer that drained them, and its guards let go of what they hold
//! when dropped (on the thread that took it: the guards are `!Send`, as
//! parking_lot's). Under `--cfg larder_loom` the gate is loom's lock, the
//! counts and flag loom's atomics, and the cell is loom's, which checks
//! every access (`tests/loom.rs` runs the caches' models with two slots,
//! and the exact-LRU ones with one). loom models sequentially consistent
//! accesses as acquire-release only, so there the two halves each end with
//! a sequentially consistent fence, which loom does model (`model_fence`);
//! without it, or without the writer's wait, the models fail. A writer
//! under loom yields instead of parking.

#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

use crate::sync::{AtomicBool, AtomicUsize};
#[cfg(larder_loom)]
use crate::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::Ordering::SeqCst;

/// The most slots a lock has: a write loads every slot's count (a line a
/// reader on another CPU last wrote), so more slots make writes dearer
/// while the readers they separate run on at most as many CPUs.
pub(crate) const MAX_SLOTS: usize = 8;

// A reader's slot is its thread's slot masked by the lock's count, and by
// `MAX_SLOTS - 1` to show the index in bounds: both must be powers of two.
const _: () = assert!(MAX_SLOTS.is_power_of_two());

/// How many slots a lock has unless asked for fewer: one per CPU, as a power
/// of two, at most [`MAX_SLOTS`]. One count for the whole process, so that a
/// thread's slot is known before it looks at a lock (a count read from each
/// lock and a modulo by it cost the in-cache hit path 8%: 56 against 61 M
/// gets/s; a mask by the lock's own count, which is all a read does now, cost
/// nothing measurable).
pub(crate) fn slot_count() -> usize {
    #[cfg(not(larder_loom))]
    {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        settle(&COUNT, || {
            let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
            cpus.next_power_of_two().min(MAX_SLOTS)
        })
    }
    // Two under the model checker, so that its runs cover the slot protocol.
    #[cfg(larder_loom)]
    2
}

/// The count in `count`, set from `compute` by the first caller to store
/// one; every caller returns that count. Callers may count differently
/// (`available_parallelism` follows the calling thread's CPU affinity and
/// the cgroup quota of the moment), and threads that kept counts of their
/// own would spread unevenly over the slots. (Soundness does not rest on it
/// any more: a reader masks its slot by the lock's own count.)
#[cfg(not(larder_loom))]
fn settle(count: &std::sync::atomic::AtomicUsize, compute: impl FnOnce() -> usize) -> usize {
    use std::sync::atomic::Ordering::Relaxed;
    match count.load(Relaxed) {
        0 => {
            let n = compute();
            match count.compare_exchange(0, n, Relaxed, Relaxed) {
                Ok(_) => n,
                Err(kept) => kept,
            }
        }
        n => n,
    }
}

/// Who the calling thread is to the locks and the hit counters.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Here {
    /// The thread's number: a round-robin count of the threads that asked,
    /// so that the first threads to use a cache spread over its hit counters.
    pub(crate) index: usize,
    /// Its slot: `index` modulo [`slot_count`]; a lock with fewer slots
    /// takes it modulo its own count.
    slot: usize,
}

/// The calling thread's [`Here`], the same for its whole life.
#[cfg(not(larder_loom))]
#[inline]
pub(crate) fn here() -> Here {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    // `const`, with no destructor: each access is a thread-relative load.
    std::thread_local! {
        static HERE: std::cell::Cell<Here> =
            const { std::cell::Cell::new(Here { index: usize::MAX, slot: 0 }) };
    }
    HERE.with(|cell| {
        let mut here = cell.get();
        if here.index == usize::MAX {
            let index = NEXT.fetch_add(1, Relaxed) & (usize::MAX >> 1);
            here = Here {
                index,
                slot: index & (slot_count() - 1),
            };
            cell.set(here);
        }
        here
    })
}

/// The calling thread's [`Here`] under the model checker, from loom's own
/// number for the thread, which is the same in every execution of a model
/// (a global counter would not be, nor would the id's hash, which covers the
/// execution too). Only its `Debug` form shows the number.
#[cfg(larder_loom)]
pub(crate) fn here() -> Here {
    let id = format!("{:?}", loom::thread::current().id());
    let index = id.bytes().filter(u8::is_ascii_digit).fold(0usize, |n, d| {
        n.wrapping_mul(10).wrapping_add(usize::from(d - b'0'))
    });
    Here {
        index,
        slot: index & (slot_count() - 1),
    }
}

/// Nothing in the normal build. The protocol's two halves (a reader adds
/// itself, then reads the writer's flag; a writer sets the flag, then reads
/// the counts) rest on sequentially consistent operations, which loom
/// models as acquire-release only; under loom a sequentially consistent
/// fence between the two halves, which it does model, gives the same
/// guarantee.
#[inline(always)]
fn model_fence() {
    #[cfg(larder_loom)]
    loom::sync::atomic::fence(SeqCst);
}

/// One slot's count of the readers in it, on cache lines of its own.
#[repr(align(128))]
struct Slot(AtomicUsize);

/// What writers change: the lock they take, and the flag that turns readers
/// away. With the slot count (read by every reader) on one line, apart from
/// the slots'.
#[repr(align(128))]
struct Gate {
    /// Writers hold it exclusively; a reader that meets a writer waits on it
    /// shared. With one slot, every reader takes it shared instead of
    /// counting (a plain reader-writer lock).
    #[cfg(not(larder_loom))]
    lock: parking_lot::RawRwLock,
    #[cfg(larder_loom)]
    lock: RwLock<()>,
    /// Set by a writer, under `lock`, before it waits for the counts to
    /// drain; cleared before it lets `lock` go. A `try_write` that finds a
    /// reader in sets it and clears it again at once.
    writing: AtomicBool,
    /// The slots in use, a power of two: a reader takes its thread's slot
    /// modulo this, a writer waits for them all. [`slot_count`], or 1 for
    /// data that every access writes (see [`with_slots`](SlottedRwLock::with_slots)).
    used: usize,
    /// Times a writer parked (tests only).
    #[cfg(all(test, not(larder_loom)))]
    parks: std::sync::atomic::AtomicUsize,
}

#[cfg(not(larder_loom))]
use parking_lot::lock_api::RawRwLock as _;

#[cfg(not(larder_loom))]
type Data<T> = std::cell::UnsafeCell<T>;
#[cfg(larder_loom)]
type Data<T> = loom::cell::UnsafeCell<T>;

/// Spins a writer makes on a slot whose readers have not left, before it
/// parks until one leaves.
const SPINS: u32 = 64;

/// A reader-writer lock whose readers spread over per-CPU slots (see the
/// module docs). No poisoning, as parking_lot's.
pub(crate) struct SlottedRwLock<T> {
    /// Inline, so that a read finds its slot without a pointer to follow or a
    /// bounds check; the first `gate.used` are in use.
    slots: [Slot; MAX_SLOTS],
    gate: Gate,
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
    /// A lock with [`slot_count`] reader slots.
    #[cfg(all(test, not(larder_loom)))]
    pub(crate) fn new(value: T) -> Self {
        Self::with_slots(value, slot_count())
    }

    /// A lock with `slots` reader slots, rounded up to a power of two and
    /// at most [`MAX_SLOTS`]. One slot makes it a plain reader-writer lock:
    /// for data that nearly every access writes (an exact LRU's, whose hits
    /// reorder it), where counting readers apart only adds to each write.
    pub(crate) fn with_slots(value: T, slots: usize) -> Self {
        SlottedRwLock {
            slots: std::array::from_fn(|_| Slot(AtomicUsize::new(0))),
            gate: Gate {
                #[cfg(not(larder_loom))]
                lock: parking_lot::RawRwLock::INIT,
                #[cfg(larder_loom)]
                lock: RwLock::new(()),
                writing: AtomicBool::new(false),
                used: slots.clamp(1, MAX_SLOTS).next_power_of_two(),
                #[cfg(all(test, not(larder_loom)))]
                parks: std::sync::atomic::AtomicUsize::new(0),
            },
            data: Data::new(value),
        }
    }

    /// How many slots are in use.
    #[cfg(all(test, not(larder_loom)))]
    pub(crate) fn slots_in_use(&self) -> usize {
        self.gate.used
    }

    /// The slots in use.
    fn used(&self) -> &[Slot] {
        &self.slots[..self.gate.used]
    }

    /// Whether readers count themselves in slots (else they take the gate).
    #[inline]
    fn counted(&self) -> bool {
        self.gate.used > 1
    }

    /// The calling thread's slot: its own modulo the slots in use, which
    /// every writer waits for.
    #[inline]
    fn slot(&self, here: Here) -> &Slot {
        // `used` is a power of two no larger than `MAX_SLOTS`, so the index
        // is below `used`; the second mask is a no-op that shows the
        // compiler it is in bounds.
        &self.slots[here.slot & (self.gate.used - 1) & (MAX_SLOTS - 1)]
    }

    /// Read access: this thread's slot, shared.
    #[cfg(all(test, not(larder_loom)))]
    pub(crate) fn read(&self) -> ReadGuard<'_, T> {
        self.read_as(here())
    }

    /// Read access, or `None` if a writer holds or waits for the lock (or a
    /// `try_write` is looking at the counts at that moment).
    #[inline]
    pub(crate) fn try_read(&self) -> Option<ReadGuard<'_, T>> {
        self.try_read_as(here())
    }

    /// [`try_read`](Self::try_read) for the thread `here` (the caller's own
    /// [`here`]).
    ///
    /// A counted reader adds itself to its slot, then looks for a writer;
    /// a writer sets its flag, then looks at the counts. Both steps are
    /// sequentially consistent, so at least one of the two sees the other:
    /// the reader leaves again, or the writer waits for it.
    #[inline]
    pub(crate) fn try_read_as(&self, here: Here) -> Option<ReadGuard<'_, T>> {
        if !self.counted() {
            #[cfg(not(larder_loom))]
            return self.gate.lock.try_lock_shared().then(|| self.reading(None));
            #[cfg(larder_loom)]
            return self
                .gate
                .lock
                .try_read()
                .map(|held| self.reading(None, Some(held)));
        }
        let slot = self.slot(here);
        slot.0.fetch_add(1, SeqCst);
        model_fence();
        if !self.gate.writing.load(SeqCst) {
            #[cfg(not(larder_loom))]
            return Some(self.reading(Some(slot)));
            #[cfg(larder_loom)]
            return Some(self.reading(Some(slot), None));
        }
        self.leave(slot);
        None
    }

    /// Read access for the thread `here` (the caller's own [`here`]).
    #[inline]
    pub(crate) fn read_as(&self, here: Here) -> ReadGuard<'_, T> {
        if let Some(guard) = self.try_read_as(here) {
            return guard;
        }
        self.read_slow(here)
    }

    /// A read that met a writer: waits on the gate, shared, which the writer
    /// holds, and counts itself in while holding it, when no writer can be
    /// in (a writer sets its flag only with the gate held exclusively).
    #[cold]
    fn read_slow(&self, here: Here) -> ReadGuard<'_, T> {
        #[cfg(not(larder_loom))]
        {
            self.gate.lock.lock_shared();
            if !self.counted() {
                return self.reading(None);
            }
            let slot = self.slot(here);
            slot.0.fetch_add(1, SeqCst);
            // SAFETY: locked shared just above, by this thread.
            unsafe { self.gate.lock.unlock_shared() };
            self.reading(Some(slot))
        }
        #[cfg(larder_loom)]
        {
            let held = self.gate.lock.read();
            if !self.counted() {
                return self.reading(None, Some(held));
            }
            let slot = self.slot(here);
            slot.0.fetch_add(1, SeqCst);
            drop(held);
            self.reading(Some(slot), None)
        }
    }

    /// A counted reader leaves its slot; the last to leave wakes a writer
    /// that may be waiting for the slot to drain (it sees the flag of any
    /// writer whose wait saw its count, by the argument in `drain`).
    #[inline]
    fn leave(&self, slot: &Slot) {
        let last = slot.0.fetch_sub(1, SeqCst) == 1;
        model_fence();
        if last && self.gate.writing.load(SeqCst) {
            self.wake_writer();
        }
    }

    /// Write access: the gate exclusively, then, for a counted lock, the
    /// flag, and a wait until every slot's readers have left.
    pub(crate) fn write(&self) -> WriteGuard<'_, T> {
        #[cfg(not(larder_loom))]
        self.gate.lock.lock_exclusive();
        #[cfg(larder_loom)]
        let held = self.gate.lock.write();
        if self.counted() {
            self.raise_flag();
            for slot in self.used() {
                self.drain(slot);
            }
        }
        #[cfg(not(larder_loom))]
        return self.writing();
        #[cfg(larder_loom)]
        return self.writing(held);
    }

    /// A writer holding the gate turns new readers away; the fence is
    /// loom's stand-in for the store's sequential consistency.
    #[inline]
    fn raise_flag(&self) {
        self.gate.writing.store(true, SeqCst);
        model_fence();
    }

    /// [`write`](Self::write), or `None` if another writer holds the gate or
    /// a reader is in (the flag is then cleared again).
    pub(crate) fn try_write(&self) -> Option<WriteGuard<'_, T>> {
        #[cfg(not(larder_loom))]
        let held = self.gate.lock.try_lock_exclusive();
        #[cfg(larder_loom)]
        let held = self.gate.lock.try_write()?;
        #[cfg(not(larder_loom))]
        if !held {
            return None;
        }
        if self.counted() {
            self.raise_flag();
            if self.used().iter().any(|slot| slot.0.load(SeqCst) != 0) {
                self.gate.writing.store(false, SeqCst);
                #[cfg(not(larder_loom))]
                // SAFETY: this call took the gate exclusively just above.
                unsafe {
                    self.gate.lock.unlock_exclusive()
                };
                return None;
            }
        }
        #[cfg(not(larder_loom))]
        return Some(self.writing());
        #[cfg(larder_loom)]
        return Some(self.writing(held));
    }

    /// Waits until `slot` has no reader: spins a little (a read holds its
    /// slot for a lookup and a clone), then parks until a reader that
    /// leaves wakes it (a read may run a caller's closure). Under loom it
    /// yields instead (parking is not modelled).
    fn drain(&self, slot: &Slot) {
        let mut spins = 0;
        while slot.0.load(SeqCst) != 0 {
            if cfg!(larder_loom) || spins < SPINS {
                spins += 1;
                #[cfg(larder_loom)]
                loom::thread::yield_now();
                #[cfg(not(larder_loom))]
                std::hint::spin_loop();
            } else {
                self.park_until_drained(slot);
            }
        }
    }

    /// Parks until a leaving reader wakes this writer, unless `slot` has
    /// drained by the time the check runs.
    #[cfg_attr(larder_loom, allow(unused_variables, clippy::unused_self))]
    fn park_until_drained(&self, slot: &Slot) {
        #[cfg(test)]
        #[cfg(not(larder_loom))]
        self.gate.parks.fetch_add(1, SeqCst);
        #[cfg(not(larder_loom))]
        // SAFETY: the key is this lock's flag, an address no other
        // parking_lot user parks on; the callbacks neither panic nor call
        // into parking_lot. The check runs under the key's queue lock, which
        // a leaving reader's wake takes too, after its count went down and
        // it saw the flag: a reader that leaves after the check finds this
        // thread parked, one that left before it fails the check, so no wake
        // is lost.
        unsafe {
            parking_lot_core::park(
                self.park_key(),
                || slot.0.load(SeqCst) != 0,
                || {},
                |_, _| {},
                parking_lot_core::DEFAULT_PARK_TOKEN,
                None,
            );
        }
    }

    /// Wakes the writer parked in [`drain`](Self::drain), if any.
    #[cold]
    fn wake_writer(&self) {
        #[cfg(not(larder_loom))]
        // SAFETY: the key is this lock's own (see `drain`).
        unsafe {
            parking_lot_core::unpark_all(self.park_key(), parking_lot_core::DEFAULT_UNPARK_TOKEN);
        }
    }

    #[cfg(not(larder_loom))]
    fn park_key(&self) -> usize {
        std::ptr::addr_of!(self.gate.writing) as usize
    }

    /// The guard of a read, through `slot` (counted in) or the gate (held
    /// shared).
    #[cfg(not(larder_loom))]
    #[inline]
    fn reading<'a>(&'a self, slot: Option<&'a Slot>) -> ReadGuard<'a, T> {
        ReadGuard {
            lock: self,
            slot,
            _not_send: std::marker::PhantomData,
        }
    }

    #[cfg(larder_loom)]
    fn reading<'a>(
        &'a self,
        slot: Option<&'a Slot>,
        held: Option<RwLockReadGuard<'a, ()>>,
    ) -> ReadGuard<'a, T> {
        ReadGuard {
            data: Some(self.data.get()),
            lock: self,
            slot,
            _held: held,
        }
    }

    /// The guard of a write, which the caller has taken the gate (and
    /// drained the slots) for.
    #[cfg(not(larder_loom))]
    fn writing(&self) -> WriteGuard<'_, T> {
        WriteGuard {
            lock: self,
            _not_send: std::marker::PhantomData,
        }
    }

    #[cfg(larder_loom)]
    fn writing<'a>(&'a self, held: RwLockWriteGuard<'a, ()>) -> WriteGuard<'a, T> {
        WriteGuard {
            data: Some(self.data.get_mut()),
            lock: self,
            _held: held,
        }
    }
}

impl<T> fmt::Debug for SlottedRwLock<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlottedRwLock")
            .field("slots", &self.used().len())
            .finish_non_exhaustive()
    }
}

/// parking_lot's marker for its guards: `!Send` (unless its `send_guard`
/// feature is on), as a raw lock must be unlocked on the thread that locked
/// it (its lock elision and deadlock detection keep per-thread state).
#[cfg(not(larder_loom))]
type NotSend = std::marker::PhantomData<
    <parking_lot::RawRwLock as parking_lot::lock_api::RawRwLock>::GuardMarker,
>;

/// Shared access, counted in a slot or holding the gate shared. Declared
/// data first: under loom the access it records must end before the lock is
/// let go.
///
/// The normal form reaches the data through the lock, never by a `&'a T`
/// field: a guard passed by value to a function that drops it lets the lock
/// go while the function still runs, and a reference field would claim the
/// data unchanged until the function returns (Miri reports the writer that
/// gets in as undefined behaviour). std's guards hold a pointer for the same
/// reason.
pub(crate) struct ReadGuard<'a, T> {
    #[cfg(larder_loom)]
    /// The access loom tracks; ended first when the guard drops.
    data: Option<loom::cell::ConstPtr<T>>,
    lock: &'a SlottedRwLock<T>,
    /// The slot counted in; `None`: the gate is held shared.
    slot: Option<&'a Slot>,
    #[cfg(not(larder_loom))]
    _not_send: NotSend,
    #[cfg(larder_loom)]
    _held: Option<RwLockReadGuard<'a, ()>>,
}

impl<T> Drop for ReadGuard<'_, T> {
    #[inline]
    fn drop(&mut self) {
        // Under loom, the recorded read ends before the lock is let go.
        #[cfg(larder_loom)]
        drop(self.data.take());
        match self.slot {
            Some(slot) => self.lock.leave(slot),
            #[cfg(not(larder_loom))]
            // SAFETY: the guard was made (`SlottedRwLock::reading`) with the
            // gate locked shared for it, and this is its only unlock.
            None => unsafe { self.lock.gate.lock.unlock_shared() },
            // loom's guard, `_held`, lets go of the gate.
            #[cfg(larder_loom)]
            None => {}
        }
    }
}

impl<T> Deref for ReadGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        #[cfg(not(larder_loom))]
        // SAFETY: the guard is counted in its slot (or holds the gate
        // shared) until it drops, and a `&mut T` is made only under a
        // `WriteGuard`, whose writer holds the gate and waited for every
        // slot to drain after setting its flag, which turns counted readers
        // away (see `try_read_as`): none exists while this `&T` lives (it
        // borrows the guard); shared references may alias.
        return unsafe { &*self.lock.data.get() };
        #[cfg(larder_loom)]
        // SAFETY: as in `SlottedRwLock::reading`; loom checks it.
        unsafe {
            self.data.as_ref().expect("until dropped").deref()
        }
    }
}

/// Exclusive access, holding the gate with every slot drained (data first,
/// and through the lock, as in [`ReadGuard`]).
pub(crate) struct WriteGuard<'a, T> {
    #[cfg(larder_loom)]
    /// The access loom tracks; ended first when the guard drops.
    data: Option<loom::cell::MutPtr<T>>,
    lock: &'a SlottedRwLock<T>,
    #[cfg(not(larder_loom))]
    _not_send: NotSend,
    #[cfg(larder_loom)]
    _held: RwLockWriteGuard<'a, ()>,
}

impl<T> Drop for WriteGuard<'_, T> {
    fn drop(&mut self) {
        // Under loom, the recorded write ends before the lock is let go.
        #[cfg(larder_loom)]
        drop(self.data.take());
        let lock = self.lock;
        if lock.counted() {
            lock.gate.writing.store(false, SeqCst);
        }
        #[cfg(not(larder_loom))]
        // SAFETY: the guard was made (`SlottedRwLock::writing`) with the gate
        // locked exclusively for it, and this is its only unlock.
        unsafe {
            lock.gate.lock.unlock_exclusive()
        };
        // Under loom, `_held` lets go of the gate after this.
    }
}

impl<T> Deref for WriteGuard<'_, T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        #[cfg(not(larder_loom))]
        // SAFETY: the guard holds the gate exclusively, with every slot
        // drained and readers turned away, until it drops, so no reader or
        // other writer reaches the data meanwhile; this `&T` borrows the
        // guard, so no `&mut T` from it coexists.
        return unsafe { &*self.lock.data.get() };
        #[cfg(larder_loom)]
        // SAFETY: as in `SlottedRwLock::writing`; loom checks it.
        unsafe {
            self.data.as_ref().expect("until dropped").deref()
        }
    }
}

impl<T> DerefMut for WriteGuard<'_, T> {
    #[inline]
    fn deref_mut(&mut self) -> &mut T {
        #[cfg(not(larder_loom))]
        // SAFETY: as in `deref`; this `&mut T` borrows the guard mutably, so
        // it is the only reference to the data while it lives.
        return unsafe { &mut *self.lock.data.get() };
        #[cfg(larder_loom)]
        // SAFETY: as in `SlottedRwLock::writing`; loom checks it.
        unsafe {
            self.data.as_ref().expect("until dropped").deref()
        }
    }
}

#[cfg(all(test, not(larder_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::Arc;

    #[test]
    fn every_slot_a_reader_may_use_is_in_use() {
        let n = slot_count();
        assert!(n.is_power_of_two() && n <= MAX_SLOTS, "{n}");
        for (asked, expected) in [
            (0, 1),
            (1, 1),
            (2, 2),
            (3, 4),
            (5, 8),
            (8, 8),
            (9, 8),
            (100, 8),
        ] {
            let lock = SlottedRwLock::with_slots(0u32, asked);
            assert_eq!(lock.used().len(), expected, "asked for {asked}");
            // Whatever its slot, this thread reads through one in use.
            let at = lock.slot(here()) as *const Slot;
            assert!(lock.used().iter().any(|slot| std::ptr::eq(slot, at)));
        }
        assert_eq!(SlottedRwLock::new(0u32).used().len(), n);
        assert!(here().slot < n);
    }

    #[test]
    fn a_writer_shuts_out_every_threads_slot_whatever_the_lock_size() {
        // Every thread slot, in locks of every size, reads through a slot a
        // writer waits for (a one-slot lock's readers all take the gate).
        for asked in [1, 2, 4, 8] {
            let lock = SlottedRwLock::with_slots(0u32, asked);
            for s in 0..MAX_SLOTS {
                let me = Here { index: s, slot: s };
                let at = lock.slot(me) as *const Slot;
                assert!(
                    lock.used().iter().any(|slot| std::ptr::eq(slot, at)),
                    "{asked} slots: thread slot {s} reads through a slot no writer locks"
                );
                let w = lock.write();
                assert!(
                    lock.try_read_as(me).is_none(),
                    "{asked} slots: slot {s} read beside a writer"
                );
                drop(w);
                let r = lock.read_as(me);
                assert!(
                    lock.try_write().is_none(),
                    "{asked} slots: a writer beside slot {s}'s reader"
                );
                drop(r);
            }
        }
    }

    #[test]
    fn a_writer_excludes_readers_of_every_slot_and_other_writers() {
        for slots in [4, 1] {
            let lock = SlottedRwLock::with_slots(5u32, slots);
            let threads = |lock: &SlottedRwLock<u32>| -> Vec<bool> {
                (0..MAX_SLOTS)
                    .map(|s| lock.try_read_as(Here { index: s, slot: s }).is_some())
                    .collect()
            };
            {
                let mut w = lock.write();
                *w += 1;
                // No read through any slot, no second writer.
                assert!(threads(&lock).iter().all(|&read| !read), "{slots}");
                assert!(lock.try_write().is_none());
            }
            assert_eq!(*lock.read(), 6);
            let r = lock.read();
            assert!(lock.try_write().is_none(), "a reader blocks writers");
            // A failed try_write cleared its flag and let the gate go: every
            // slot still reads, and the counts are back where they were.
            assert!(threads(&lock).iter().all(|&read| read), "{slots}");
            if slots > 1 {
                let counts: usize = lock.used().iter().map(|s| s.0.load(SeqCst)).sum();
                assert_eq!(counts, 1, "only `r` is counted in");
            }
            drop(r);
            assert!(lock.try_write().is_some());
            assert!(!lock.gate.writing.load(SeqCst));
        }
    }

    #[test]
    fn a_writer_parked_behind_a_reader_is_woken_when_it_leaves() {
        // The reader holds its slot past the writer's spins, so the writer
        // parks; the reader's leaving must wake it.
        let lock = Arc::new(SlottedRwLock::with_slots(0u32, 2));
        let r = lock.read();
        let writer = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || *lock.write() += 1)
        };
        // Wait until the writer has parked (it spins first, then parks
        // until `r` leaves: it cannot get in before).
        while lock.gate.parks.load(SeqCst) == 0 {
            std::thread::yield_now();
        }
        assert!(lock.gate.writing.load(SeqCst));
        assert!(
            lock.try_read().is_none(),
            "a waiting writer turns readers away"
        );
        drop(r);
        writer.join().unwrap();
        assert_eq!(*lock.read(), 1);
    }

    #[test]
    fn readers_that_hold_their_slot_a_while_never_strand_a_parked_writer() {
        // Readers hold their slots for varying spins, so writers spin out and
        // park often; a lost wake-up would hang this test (no timing is
        // asserted). Writers mix `try_write` and `write`.
        let (reads, writes) = if cfg!(miri) {
            (50, 20)
        } else {
            (20_000, 2_000)
        };
        for slots in [2, 8] {
            let lock = Arc::new(SlottedRwLock::with_slots((0u64, 0u64), slots));
            let readers: Vec<_> = (0..4usize)
                .map(|t| {
                    let lock = Arc::clone(&lock);
                    std::thread::spawn(move || {
                        let me = Here { index: t, slot: t };
                        let mut x = t as u64 + 1;
                        for _ in 0..reads {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            let g = lock.read_as(me);
                            assert_eq!(g.0, g.1, "a read overlapped a write");
                            for _ in 0..(x % 256) {
                                std::hint::spin_loop();
                            }
                        }
                    })
                })
                .collect();
            let writers: Vec<_> = (0..2u64)
                .map(|t| {
                    let lock = Arc::clone(&lock);
                    std::thread::spawn(move || {
                        let mut done = 0;
                        for n in 0..writes {
                            let guard = if (n + t) % 3 == 0 {
                                lock.try_write()
                            } else {
                                Some(lock.write())
                            };
                            if let Some(mut w) = guard {
                                w.0 += 1;
                                w.1 += 1;
                                done += 1;
                            }
                        }
                        done
                    })
                })
                .collect();
            for r in readers {
                r.join().expect("reader panicked");
            }
            let done: u64 = writers.into_iter().map(|w| w.join().unwrap()).sum();
            assert_eq!(*lock.read(), (done, done));
            assert!(done >= 2 * (writes - writes / 3 - 1), "{done}");
        }
    }

    #[test]
    fn a_reader_that_meets_a_writer_waits_and_then_reads() {
        let lock = Arc::new(SlottedRwLock::with_slots(0u32, 2));
        let w = lock.write();
        let reader = {
            let lock = Arc::clone(&lock);
            std::thread::spawn(move || *lock.read())
        };
        // The reader cannot get in while `w` lives.
        std::thread::yield_now();
        let mut w = w;
        *w = 7;
        drop(w);
        assert_eq!(reader.join().unwrap(), 7);
    }

    #[test]
    fn threads_spread_over_slots_and_never_see_a_torn_write() {
        // A writer keeps two fields equal; readers on several threads (so
        // several slots, or the one slot of a one-slot lock) check them. A
        // reader that got in beside the writer would see them differ.
        for slots in [4, 1] {
            let lock = Arc::new(SlottedRwLock::with_slots((0u64, 0u64), slots));
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
            let writes = if cfg!(miri) { 100 } else { 20_000 };
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
    }

    /// `IsSend::<T>::VALUE`: whether `T` is `Send` (an inherent constant,
    /// which exists only for `Send` types, wins over the trait's `false`).
    struct IsSend<T: ?Sized>(std::marker::PhantomData<T>);
    trait NotSend {
        const VALUE: bool = false;
    }
    impl<T: ?Sized> NotSend for IsSend<T> {}
    #[allow(dead_code)]
    impl<T: ?Sized + Send> IsSend<T> {
        const VALUE: bool = true;
    }

    #[test]
    fn guards_stay_on_the_thread_that_locked() {
        // parking_lot's raw lock must be unlocked by the thread that locked
        // it (its own guards are `!Send`: lock elision and deadlock
        // detection keep per-thread state), and loom's and std's guards are
        // `!Send` too, so the crate must not be able to send one of ours.
        // Checked at compile time: a guard that turns `Send` fails the build.
        const {
            assert!(IsSend::<u32>::VALUE, "the probe sees Send types");
            assert!(
                !IsSend::<ReadGuard<'static, u32>>::VALUE,
                "ReadGuard is Send"
            );
            assert!(
                !IsSend::<WriteGuard<'static, u32>>::VALUE,
                "WriteGuard is Send"
            );
        }
    }

    /// Drops `guard` inside this call, then waits until `written` is set
    /// while `guard`, an argument, is still in scope.
    #[inline(never)]
    fn drop_then_wait<G>(guard: G, unlocked: &AtomicBool, written: &AtomicBool) {
        drop(guard);
        unlocked.store(true, SeqCst);
        while !written.load(SeqCst) {
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_guard_may_be_dropped_inside_a_call_it_was_passed_to() {
        // A guard passed by value and dropped inside the callee has let go of
        // the lock while the callee still runs. A `&T`/`&mut T` field in the
        // guard would claim the data stays unchanged (or unaliased) for the
        // whole call (`noalias`; a protector under Miri), which the writer
        // that gets in breaks; std's guards hold a pointer for this reason.
        // Miri reports the violation; a plain run only exercises the path.
        for exclusive in [false, true] {
            let lock = Arc::new(SlottedRwLock::with_slots(0u32, 2));
            let unlocked = Arc::new(AtomicBool::new(false));
            let written = Arc::new(AtomicBool::new(false));
            let writer = {
                let (lock, unlocked, written) = (
                    Arc::clone(&lock),
                    Arc::clone(&unlocked),
                    Arc::clone(&written),
                );
                std::thread::spawn(move || {
                    while !unlocked.load(SeqCst) {
                        std::thread::yield_now();
                    }
                    *lock.write() += 1;
                    written.store(true, SeqCst);
                })
            };
            if exclusive {
                drop_then_wait(lock.write(), &unlocked, &written);
            } else {
                drop_then_wait(lock.read(), &unlocked, &written);
            }
            writer.join().unwrap();
            assert_eq!(*lock.read(), 1);
        }
    }

    #[test]
    fn threads_that_count_at_once_agree_on_the_count() {
        // `available_parallelism` is per thread (its CPU affinity, and the
        // cgroup quota of the moment), so two threads that count at once can
        // count differently. The one whose count is not kept must still use
        // the kept one, or threads would spread unevenly over the slots.
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        let count = AtomicUsize::new(0);
        let mut theirs = 0;
        let mine = settle(&count, || {
            // Another thread counts 1 and stores it while this one counts.
            theirs = settle(&count, || 1);
            2
        });
        assert_eq!(mine, theirs, "two threads use different slot counts");
        assert_eq!(count.load(Relaxed), mine);
        assert_eq!(settle(&count, || 4), mine);
    }

    #[test]
    fn a_thread_keeps_its_index() {
        let me = here();
        assert_eq!((here().index, here().slot), (me.index, me.slot));
        let there = std::thread::spawn(here).join().unwrap();
        assert_ne!(me.index, there.index, "threads are numbered in turn");
        assert_eq!(there.slot, there.index % slot_count());
    }
}

/// The lock alone under loom (the caches' models in `tests/loom.rs` reach
/// it only through a cache, which tries `try_write` before `write`).
#[cfg(all(test, larder_loom))]
mod loom_lock {
    use super::*;
    use crate::sync::Arc;

    /// Spawns a thread that writes (adds one) and one that reads.
    fn a_writer_and_a_reader(
        lock: &Arc<SlottedRwLock<u32>>,
    ) -> (loom::thread::JoinHandle<()>, loom::thread::JoinHandle<u32>) {
        let writer = {
            let lock = Arc::clone(lock);
            loom::thread::spawn(move || *lock.write() += 1)
        };
        let reader = {
            let lock = Arc::clone(lock);
            loom::thread::spawn(move || *lock.read_as(here()))
        };
        (writer, reader)
    }

    /// Two writers and a counted reader: a writer's guard must clear the
    /// flag before it lets the gate go, or the second writer's flag is
    /// cleared under it and the reader gets in during its write.
    #[test]
    fn two_writers_and_a_reader() {
        loom::model(|| {
            let lock = Arc::new(SlottedRwLock::with_slots(0u32, 2));
            let (writer, reader) = a_writer_and_a_reader(&lock);
            *lock.write() += 1;
            writer.join().unwrap();
            assert!(reader.join().unwrap() <= 2);
            assert_eq!(*lock.read_as(here()), 2);
        });
    }

    /// A `try_write` that backs off from a reader, beside a reader and a
    /// blocking writer.
    #[test]
    fn a_try_write_beside_a_reader_and_a_writer() {
        loom::model(|| {
            let lock = Arc::new(SlottedRwLock::with_slots(0u32, 2));
            let (writer, reader) = a_writer_and_a_reader(&lock);
            let tried = lock.try_write().map(|mut w| *w += 1).is_some();
            writer.join().unwrap();
            let total = 1 + u32::from(tried);
            assert!(reader.join().unwrap() <= total);
            assert_eq!(*lock.read_as(here()), total);
        });
    }
}
