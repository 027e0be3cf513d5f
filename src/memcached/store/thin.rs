//! A four-byte owning handle for an item's block, and the arena the blocks
//! live in: one of the library's two modules with unsafe code (the other is
//! the shards' lock, `src/slotted.rs`; the server binary's `mallopt` call
//! aside).
//!
//! # Why a handle, and why an arena
//! The store keeps one block per item as the cache's key, and a 4-byte state
//! word as its value. With an 8-byte pointer for the key the cache's slot is
//! 28 bytes, which its 8-byte alignment pads to 32; with a 4-byte handle it
//! is 24, with no padding. At the table's 70-87.5% fill that is 9-11 bytes
//! less per item, on items of ~100-200 bytes.
//!
//! A handle names an 8-byte *unit* of the arena: the top 20 bits a page
//! (32 KiB, so 32 GiB in all), the low 12 the unit within it. Pages are cut
//! into the slots of one size class each, classes 8 bytes apart up to 512
//! bytes and 16 apart up to [`DIRECT_MAX`]. A slot has no header of its own,
//! where glibc's malloc puts an 8-byte size word before every chunk and
//! rounds to 16: a 120-byte block costs 120 bytes and a tenth of a percent
//! of its page, not 128, and a 121-byte one 128, not 144.
//!
//! Larger byte blocks, and boxed values (the store's large items), live on
//! the heap as before, and their 8-byte pointer sits in a slot of the
//! arena's two pointer classes: 8 bytes more per item, under 1% of items
//! that large. So do byte blocks made once half the page numbers are in
//! use (16 GiB of slots), so that the other half can name 2 billion more
//! items in pointer slots: handles run out only past that, where an
//! allocation fails as an out-of-memory does.
//!
//! # The arena's structures
//! - `PAGES`, a table from page number to the page's address, its low bits
//!   tagged with what the page's slots hold (bytes, a pointer to bytes, a
//!   pointer to a boxed value). A read resolves a handle with one load from
//!   it, lock-free: the handle reached the reader through the shard's lock,
//!   after the page was published.
//! - Per class, a mutex over the list of its pages with a free slot. Every
//!   allocation and free takes the class's lock (memcached takes one lock
//!   for all its classes); nothing on the read path does.
//! - Per page, a header (32 bytes reserved, 20 used): its class, the slots
//!   in use, the head of its free list (threaded through the free slots'
//!   first four bytes), how far it has been carved, and where it is in its
//!   class's list of pages with room.
//!
//! A page whose last slot is freed goes back to the heap unless it is its
//! class's only page with room (so one item coming and going does not
//! allocate and free a page each time), and each class in use keeps that
//! one page (at most 97 x 32 KiB, 3 MiB, for the whole process). Slots
//! freed in a class stay with it until their page empties, as in
//! memcached's slab classes: a store whose item sizes shift would keep the
//! old sizes' pages, each holding a few survivors (a review measured an
//! 8 MiB store filled with 100-byte items, 90% of them deleted at random,
//! then filled with 300-byte ones: 12.4 MiB of pages with `bytes` at
//! 8 MiB). So, like memcached, the arena has a page mover
//! ([`Arena::start_drain`], driven by `Store::move_pages`): a class whose
//! pages with room hold a page's worth of free slots has its sparsest page
//! taken out of its list, each live item copied to a free slot of the same
//! class and swapped in by the store under its shard's write lock, and the
//! page freed once its last slot goes. The store's `bytes` counts live
//! items only; `arena_bytes` reports the pages.
//!
//! # Invariants every `unsafe` block below relies on
//! 1. A handle is live from `alloc` to `free`, owned by exactly one
//!    [`Thin`], and its page stays allocated while any handle in it is
//!    live (a page is freed only when its `used` count reaches zero).
//! 2. `PAGES[p]` is null or the address of a live page allocated with
//!    [`page_layout`], tagged with its kind; it changes only under the
//!    page's class lock, and only while no handle in the page is live.
//! 3. A page's header fields other than `class` change only under its
//!    class's lock; `class` is set before the page is published and never
//!    changes.
//! 4. A live slot of the bytes kind holds a varint `n` and `n` initialised
//!    bytes, written before the handle is returned and never after. A live
//!    slot of a pointer kind holds a pointer, written the same way, to a
//!    heap block of `varint + n` bytes (at [`HEAP_ALIGN`]) or a `Box<L>` of
//!    the `Thin<L>` that owns the handle.
//! 5. A free slot's first four bytes are its free list's next unit (0 for
//!    none), read and written only under the class's lock.
//! 6. A page being drained (`open_at == DRAINING`) is in no open list, so
//!    none of its slots is handed out, and holds one `used` count of the
//!    mover's own until the drain ends, so it stays allocated.

#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

use std::alloc::{self, Layout};
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::ptr;
use std::sync::atomic::AtomicPtr;
use std::sync::atomic::AtomicU32;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use parking_lot::Mutex;

use super::item::{alloc_size, put_varint};

/// The arena's allocation unit, and the alignment of every slot.
const UNIT: usize = 8;
/// Bits of a handle that name a unit within a page.
const UNIT_BITS: u32 = 12;
/// Units per page.
const PAGE_UNITS: u32 = 1 << UNIT_BITS;
/// Bytes per page (32 KiB).
const PAGE: usize = UNIT << UNIT_BITS;
/// The most pages: every handle is a `u32`.
const MAX_PAGES: usize = 1 << (32 - UNIT_BITS);
/// Units of a page's header; no slot starts at unit 0, so no handle is 0.
const HEAD_UNITS: u32 = 4;
const _: () = assert!(std::mem::size_of::<PageHead>() <= HEAD_UNITS as usize * UNIT);

/// The largest byte block (length varint included) kept in a slot of its
/// own size; longer ones live on the heap behind a pointer slot. Above this
/// glibc's rounding costs at most 2% of a block, and the pointer under 1%.
pub(crate) const DIRECT_MAX: usize = 1024;

/// The longest byte block: its length takes at most 3 varint bytes.
pub(crate) const MAX_BYTES: usize = (1 << 21) - 1;

/// The alignment of the heap blocks behind pointer slots.
const HEAP_ALIGN: usize = 1;

/// What a page's slots hold, tagged in the low bits of its `PAGES` entry.
const BYTES: usize = 0;
const HEAP_BYTES: usize = 1;
const BOXED: usize = 2;
const KIND_MASK: usize = 0b11;

/// The class of heap-block pointers, and of boxed-value pointers.
const HEAP_CLASS: usize = 0;
const BOXED_CLASS: usize = 1;
/// The first class of byte blocks (16 bytes).
const FIRST_BYTES: usize = 2;
/// Classes 8 bytes apart up to this size, 16 apart beyond it.
const FINE_UP_TO: usize = 512;
/// Every class: the two pointer classes, then the byte classes.
const CLASSES: usize = FIRST_BYTES + (FINE_UP_TO / 8 - 1) + (DIRECT_MAX - FINE_UP_TO) / 16;

/// A page's list position when it has no free slot.
const NOT_OPEN: u32 = u32::MAX;
/// A page's list position while the page mover empties it: out of the open
/// list, so no slot of it is handed out.
const DRAINING: u32 = u32::MAX - 1;

/// The page table (see the module docs). Zeroed, so it costs no memory until
/// pages are used, from page 0 up.
static PAGES: [AtomicPtr<u8>; MAX_PAGES] = [const { AtomicPtr::new(ptr::null_mut()) }; MAX_PAGES];

/// The arena every [`Thin`] lives in.
static ARENA: Arena = Arena {
    pages: &PAGES,
    open: [const { Mutex::new(Open::new()) }; CLASSES],
    ids: Mutex::new(Ids {
        next: 0,
        free: Vec::new(),
    }),
    in_use: AtomicU32::new(0),
};

/// Pages cut into slots (one static instance; tests make small ones).
struct Arena {
    /// Page number to tagged page address.
    pages: &'static [AtomicPtr<u8>],
    /// Per class, its pages with a free slot.
    open: [Mutex<Open>; CLASSES],
    /// Page numbers: the next never used, and those given back.
    ids: Mutex<Ids>,
    /// Pages in use (read without the lock, for the direct-or-heap choice).
    in_use: AtomicU32,
}

struct Ids {
    next: u32,
    free: Vec<u32>,
}

/// A class's pages with a free slot, and what the page mover needs to know
/// of them without visiting each.
struct Open {
    pages: Vec<u32>,
    /// Free slots in `pages` (carved or not).
    free: usize,
    /// Where in `pages` the page mover looks next.
    cursor: usize,
}

impl Open {
    const fn new() -> Open {
        Open {
            pages: Vec::new(),
            free: 0,
            cursor: 0,
        }
    }
}

/// Pages the page mover looks at to pick one of a class, from where it
/// left off: the sparsest of a window, so that picking costs the same in a
/// class of any size.
const MOVER_WINDOW: usize = 64;

/// The start of every page. Atomics only so that nothing here is a data
/// race by construction; every field but `class` changes under the class's
/// lock (invariant 3).
#[repr(C)]
struct PageHead {
    class: AtomicU32,
    /// Slots handed out and not freed.
    used: AtomicU32,
    /// The first free slot's unit (0: none).
    free: AtomicU32,
    /// The first unit never handed out.
    carved: AtomicU32,
    /// Where the page is in its class's open list (`NOT_OPEN`: not there;
    /// `DRAINING`: its items are being moved out).
    open_at: AtomicU32,
    /// The mover (a store's id, never 0) whose move left items in the page
    /// that it could not re-home (another store's, or a block not yet in
    /// the table); 0 for none. That mover skips the page until a slot of it
    /// is freed, which clears this; other stores' movers do not.
    stuck: AtomicU32,
}

/// A page's layout. Aligned to 16, what malloc gives anyway: a larger
/// alignment sends glibc to `memalign`, which asks for more than a page and
/// so cannot reuse the exact hole a freed page leaves.
fn page_layout() -> Layout {
    Layout::from_size_align(PAGE, 16).expect("a 32 KiB page")
}

/// The size of a class's slots, in bytes.
const fn class_size(class: usize) -> usize {
    if class < FIRST_BYTES {
        8
    } else if class < FIRST_BYTES + FINE_UP_TO / 8 - 1 {
        (class - FIRST_BYTES + 2) * 8
    } else {
        FINE_UP_TO + (class - (FIRST_BYTES + FINE_UP_TO / 8 - 1) + 1) * 16
    }
}

/// The class of a byte block of `size` bytes (at most [`DIRECT_MAX`]).
fn class_of(size: usize) -> usize {
    debug_assert!(size <= DIRECT_MAX);
    if size <= FINE_UP_TO {
        FIRST_BYTES + size.max(16).div_ceil(8) - 2
    } else {
        FIRST_BYTES + FINE_UP_TO / 8 - 1 + (size - FINE_UP_TO).div_ceil(16) - 1
    }
}

/// Slots per page of a class.
const fn per_page(class: usize) -> u32 {
    (PAGE_UNITS - HEAD_UNITS) / (class_size(class) / UNIT) as u32
}

/// What one slot of a class costs: its page's bytes over its slots, so the
/// page's header and the tail too short for a slot are paid for.
fn slot_cost(class: usize) -> usize {
    PAGE.div_ceil(per_page(class) as usize)
}

/// The page's header.
///
/// # Safety
/// `base` is a live page (invariant 2).
unsafe fn head<'a>(base: *mut u8) -> &'a PageHead {
    // SAFETY: a live page starts with its initialised header, 16-aligned.
    unsafe { &*base.cast::<PageHead>() }
}

/// A slot's address.
#[inline]
fn slot_at(base: *mut u8, unit: u32) -> *mut u8 {
    base.wrapping_add(unit as usize * UNIT)
}

/// A handle's page number and unit.
#[inline]
fn split(handle: NonZeroU32) -> (usize, u32) {
    (
        (handle.get() >> UNIT_BITS) as usize,
        handle.get() & (PAGE_UNITS - 1),
    )
}

impl Arena {
    /// The page's address and kind.
    #[inline]
    fn page(&self, id: usize) -> (*mut u8, usize) {
        let tagged = self.pages[id].load(Acquire);
        (
            tagged.map_addr(|a| a & !KIND_MASK),
            tagged.addr() & KIND_MASK,
        )
    }

    /// A live handle's slot address and its page's kind.
    #[inline]
    fn slot(&self, handle: NonZeroU32) -> (*mut u8, usize) {
        let (id, unit) = split(handle);
        let (base, kind) = self.page(id);
        (slot_at(base, unit), kind)
    }

    /// Whether byte blocks should still get slots of their own size: until
    /// half the page numbers are in use.
    fn direct(&self) -> bool {
        self.in_use.load(Relaxed) < self.pages.len() as u32 / 2
    }

    /// The class a byte block of `size` bytes (varint included) takes a
    /// slot of, or `None` if it goes to the heap: too long, the page numbers
    /// half used, or a slot dearer than the heap block and its pointer
    /// (the largest classes, whose pages hold few slots). Taking the
    /// cheaper of the two keeps a block's cost rising with its length, so
    /// the longest header is the dearest.
    fn direct_class(&self, size: usize) -> Option<usize> {
        let class = (size <= DIRECT_MAX && self.direct()).then(|| class_of(size))?;
        (slot_cost(class) <= heap_cost(size)).then_some(class)
    }

    /// Takes a slot of `class` and has `fill` write it, under the class's
    /// lock (so the page mover, which reads live slots under that lock,
    /// never meets one half written); returns its handle.
    fn alloc_slot(&self, class: usize, fill: impl FnOnce(*mut u8)) -> NonZeroU32 {
        let units = (class_size(class) / UNIT) as u32;
        let mut open = self.open[class].lock();
        let id = match open.pages.last() {
            Some(&id) => id,
            None => self.new_page(class, &mut open),
        };
        let (base, _) = self.page(id as usize);
        // SAFETY: pages in an open list are live (invariant 2).
        let h = unsafe { head(base) };
        let unit = match h.free.load(Relaxed) {
            0 => {
                let unit = h.carved.load(Relaxed);
                h.carved.store(unit + units, Relaxed);
                unit
            }
            unit => {
                // SAFETY: invariant 5: a free slot of this live page, under
                // its class's lock; slots are 8-aligned.
                let next = unsafe { slot_at(base, unit).cast::<u32>().read() };
                h.free.store(next, Relaxed);
                unit
            }
        };
        h.used.fetch_add(1, Relaxed);
        open.free -= 1;
        if h.free.load(Relaxed) == 0 && h.carved.load(Relaxed) + units > PAGE_UNITS {
            // Full: out of the open list (it is the last entry).
            open.pages.pop();
            h.open_at.store(NOT_OPEN, Relaxed);
        }
        fill(slot_at(base, unit));
        drop(open);
        NonZeroU32::new((id << UNIT_BITS) | unit).expect("no slot at unit 0")
    }

    /// Allocates and publishes a page of `class`, opened at the end of
    /// `open`.
    fn new_page(&self, class: usize, open: &mut Open) -> u32 {
        let id = {
            let mut ids = self.ids.lock();
            match ids.free.pop() {
                Some(id) => id,
                None if (ids.next as usize) < self.pages.len() => {
                    ids.next += 1;
                    ids.next - 1
                }
                // Every page number in use: byte blocks went to the heap at
                // half (`direct`), so this takes 2 billion pointer slots
                // more, 300 GB and up of items.
                None => alloc::handle_alloc_error(page_layout()),
            }
        };
        // SAFETY: the layout has a non-zero size.
        let base = unsafe { alloc::alloc(page_layout()) };
        if base.is_null() {
            alloc::handle_alloc_error(page_layout());
        }
        let head = PageHead {
            class: AtomicU32::new(class as u32),
            used: AtomicU32::new(0),
            free: AtomicU32::new(0),
            carved: AtomicU32::new(HEAD_UNITS),
            open_at: AtomicU32::new(open.pages.len() as u32),
            stuck: AtomicU32::new(0),
        };
        // SAFETY: a fresh allocation of 32 KiB, 16-aligned, with room for the
        // header (asserted at compile time), written before anyone else can
        // see the page.
        unsafe { base.cast::<PageHead>().write(head) };
        let kind = match class {
            HEAP_CLASS => HEAP_BYTES,
            BOXED_CLASS => BOXED,
            _ => BYTES,
        };
        self.pages[id as usize].store(base.map_addr(|a| a | kind), Release);
        self.in_use.fetch_add(1, Relaxed);
        open.pages.push(id);
        open.free += per_page(class) as usize;
        id
    }

    /// Gives a slot back; frees its page when that leaves it empty and its
    /// class has another page with room.
    ///
    /// # Safety
    /// `handle` is live, from this arena, and owned by the caller, who never
    /// uses it again.
    unsafe fn free_slot(&self, handle: NonZeroU32) {
        let (id, unit) = split(handle);
        let (base, _) = self.page(id);
        // SAFETY: invariant 1: the page of a live handle is live.
        let h = unsafe { head(base) };
        let class = h.class.load(Relaxed) as usize;
        let mut open = self.open[class].lock();
        // SAFETY: invariant 5: the slot is the caller's and becomes free
        // here, under its class's lock; 8-aligned.
        unsafe {
            slot_at(base, unit)
                .cast::<u32>()
                .write(h.free.load(Relaxed))
        };
        h.free.store(unit, Relaxed);
        h.stuck.store(0, Relaxed);
        let used = h.used.load(Relaxed) - 1;
        h.used.store(used, Relaxed);
        match h.open_at.load(Relaxed) {
            // The mover holds a count of its own while it empties the page
            // and gives the page back itself (`finish_drain`); its slots are
            // counted free when it comes back to the list.
            DRAINING => return,
            NOT_OPEN => {
                h.open_at.store(open.pages.len() as u32, Relaxed);
                open.pages.push(id as u32);
            }
            _ => {}
        }
        open.free += 1;
        if used == 0 && open.pages.len() > 1 {
            let at = h.open_at.load(Relaxed) as usize;
            self.unlist(&mut open, at, class);
            // SAFETY: invariant 2: no handle in the page is live (`used` is
            // 0), and the page is out of its class's list.
            unsafe { self.release_page(id, base) };
        }
    }

    /// Takes the page at `at` out of its class's open list `open`, with
    /// its free slots.
    fn unlist(&self, open: &mut Open, at: usize, class: usize) {
        let (base, _) = self.page(open.pages[at] as usize);
        // SAFETY: pages in an open list are live.
        let used = unsafe { head(base) }.used.load(Relaxed) as usize;
        open.free -= per_page(class) as usize - used;
        open.pages.swap_remove(at);
        if let Some(&moved) = open.pages.get(at) {
            let (other, _) = self.page(moved as usize);
            // SAFETY: pages in an open list are live.
            unsafe { head(other) }.open_at.store(at as u32, Relaxed);
        }
    }

    /// Gives page `id` back to the heap and its number to the free list.
    ///
    /// # Safety
    /// The caller holds the page's class lock, no handle in the page is
    /// live, and the page is in no open list.
    unsafe fn release_page(&self, id: usize, base: *mut u8) {
        self.pages[id].store(ptr::null_mut(), Release);
        // SAFETY: the caller's contract (invariant 2); the page was
        // allocated with this layout.
        unsafe { alloc::dealloc(base, page_layout()) };
        self.in_use.fetch_sub(1, Relaxed);
        self.ids.lock().free.push(id as u32);
    }

    /// Whether a class's pages with room (`open`) hold a page's worth of
    /// free slots, over two pages or more: what the page mover needs to
    /// empty one of them into the others.
    fn movable(open: &Open, class: usize) -> bool {
        open.pages.len() >= 2 && open.free >= per_page(class) as usize
    }

    /// The page mover's first step: picks the page whose items are the
    /// best to move out, takes it out of its class's list so that no slot
    /// of it is handed out, and copies out its live items.
    ///
    /// A page is moved only when the other pages of its class with room
    /// have free slots for all of its items: exactly when its class's free
    /// slots add up to a page or more (the free slots of the other pages,
    /// `free - (per_page - used)`, are at least `used`). So a move needs no
    /// new page (unless concurrent stores take the free slots first), and
    /// each one that empties its page leaves the class a page's worth of
    /// free slots fewer: moves stop. Of such classes, the one with the most
    /// bytes in free slots that has a page
    /// `mover` is not stuck on; of its pages, the one with the fewest items
    /// among [`MOVER_WINDOW`] looked at from where the last pick left off.
    /// Byte classes only: a pointer class's slot is 8 bytes, and its heap
    /// block may be freed before its slot is.
    ///
    /// The page keeps one count of its own until the drain ends
    /// ([`Drain::finish`], or its drop), so it stays allocated however its
    /// slots go.
    fn start_drain(&self, mover: NonZeroU32) -> Option<Drain<'_>> {
        // The classes with a page's worth of free slots, most free bytes
        // first (each class's figures read under its lock in turn; they move
        // on meanwhile, so each is checked again below).
        let mut classes: Vec<(usize, usize)> = (FIRST_BYTES..CLASSES)
            .filter_map(|class| {
                let open = self.open[class].lock();
                Self::movable(&open, class).then_some((open.free * class_size(class), class))
            })
            .collect();
        classes.sort_unstable_by(|a, b| b.cmp(a));
        // The first with a page this mover has not given up on.
        classes
            .into_iter()
            .find_map(|(_, class)| self.drain_in(class, mover))
    }

    /// [`start_drain`](Self::start_drain) in `class`: `None` if it no longer
    /// qualifies, or its window holds only pages `mover` is stuck on.
    fn drain_in(&self, class: usize, mover: NonZeroU32) -> Option<Drain<'_>> {
        let units = (class_size(class) / UNIT) as u32;
        let mut open = self.open[class].lock();
        if !Self::movable(&open, class) {
            return None;
        }
        // The sparsest page not stuck for this mover, of a window from
        // where the last pick left off.
        let n = open.pages.len();
        let start = open.cursor % n;
        let mut pick: Option<(usize, u32)> = None;
        for at in (start..n).chain(0..start).take(MOVER_WINDOW) {
            let (base, _) = self.page(open.pages[at] as usize);
            // SAFETY: pages in an open list are live.
            let h = unsafe { head(base) };
            let used = h.used.load(Relaxed);
            if h.stuck.load(Relaxed) != mover.get() && pick.is_none_or(|(_, u)| used < u) {
                pick = Some((at, used));
            }
        }
        open.cursor = start + MOVER_WINDOW;
        let (at, _) = pick?;
        let id = open.pages[at];
        self.unlist(&mut open, at, class);
        let (base, _) = self.page(id as usize);
        // SAFETY: the page was in the open list, so it is live; it stays
        // live while it holds the mover's count (invariant 6).
        let h = unsafe { head(base) };
        h.open_at.store(DRAINING, Relaxed);
        h.used.fetch_add(1, Relaxed);
        // The free slots, from the free list (invariant 5, under the lock).
        let mut is_free = [0u64; (PAGE_UNITS / 64) as usize];
        let mut unit = h.free.load(Relaxed);
        while unit != 0 {
            is_free[unit as usize / 64] |= 1 << (unit % 64);
            // SAFETY: invariant 5: a free slot of this live page.
            unit = unsafe { slot_at(base, unit).cast::<u32>().read() };
        }
        let mut drain = Drain {
            arena: self,
            mover,
            id: id as usize,
            class,
            data: Vec::new(),
            blocks: Vec::new(),
            finished: false,
        };
        let carved = h.carved.load(Relaxed);
        for unit in (HEAD_UNITS..carved).step_by(units as usize) {
            if is_free[unit as usize / 64] & (1 << (unit % 64)) != 0 {
                continue;
            }
            // SAFETY: invariant 4: a carved slot not in the free list is
            // live and holds its varint and bytes, all written under this
            // lock before the slot was handed out (`alloc_slot`), never
            // after; no slot of this page is freed while the lock is held.
            let bytes = unsafe { read_bytes(slot_at(base, unit)) };
            let start = drain.data.len();
            drain.data.extend_from_slice(bytes);
            let handle = NonZeroU32::new((id << UNIT_BITS) | unit).expect("no slot at unit 0");
            drain.blocks.push((handle, start..drain.data.len()));
        }
        Some(drain)
    }

    /// The page mover's last step: lets go of the page's own count, and
    /// gives the page back if that empties it (true), or returns it to its
    /// class's list, marked stuck, if some items could not be moved.
    fn finish_drain(&self, id: usize, class: usize, mover: NonZeroU32) -> bool {
        let mut open = self.open[class].lock();
        let (base, _) = self.page(id);
        // SAFETY: the mover's count kept the page live (invariant 6).
        let h = unsafe { head(base) };
        let used = h.used.load(Relaxed) - 1;
        h.used.store(used, Relaxed);
        if used == 0 {
            // SAFETY: no handle in it is live, it is out of the open list
            // (`DRAINING`), and the class's lock is held.
            unsafe { self.release_page(id, base) };
            return true;
        }
        h.open_at.store(open.pages.len() as u32, Relaxed);
        h.stuck.store(mover.get(), Relaxed);
        open.pages.push(id as u32);
        open.free += per_page(class) as usize - used as usize;
        false
    }
}

/// A page being emptied by the page mover: its live items' bytes, copied
/// out when it was picked.
/// It ends with [`finish`](Drain::finish), or when dropped.
pub(crate) struct Drain<'a> {
    arena: &'a Arena,
    mover: NonZeroU32,
    id: usize,
    class: usize,
    data: Vec<u8>,
    blocks: Vec<(NonZeroU32, std::ops::Range<usize>)>,
    finished: bool,
}

impl Drop for Drain<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.arena.finish_drain(self.id, self.class, self.mover);
        }
    }
}

impl Drain<'_> {
    /// Ends the move: whether the page went back to the heap (every item
    /// in it moved or gone), else it is back in its class's list.
    pub(crate) fn finish(mut self) -> bool {
        self.finished = true;
        self.arena.finish_drain(self.id, self.class, self.mover)
    }

    /// Each live item's handle and bytes, as they were when it was picked.
    pub(crate) fn blocks(&self) -> impl Iterator<Item = (NonZeroU32, &[u8])> + '_ {
        self.blocks.iter().map(|(h, r)| (*h, &self.data[r.clone()]))
    }
}

/// Picks a page of the process's arena for `mover` (a store's id) to
/// empty (see `Arena::start_drain`).
pub(crate) fn start_drain(mover: NonZeroU32) -> Option<Drain<'static>> {
    ARENA.start_drain(mover)
}

/// A new mover id, for a store (never 0; they wrap after 4 billion stores,
/// when an id may be shared, which costs at most a skipped page).
pub(crate) fn new_mover() -> NonZeroU32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    loop {
        if let Some(id) = NonZeroU32::new(NEXT.fetch_add(1, Relaxed)) {
            return id;
        }
    }
}

/// The bytes the process's arena holds in pages.
pub(crate) fn arena_bytes() -> u64 {
    u64::from(ARENA.in_use.load(Relaxed)) * PAGE as u64
}

/// An owned byte block or boxed `L`, behind a four-byte handle.
pub(crate) struct Thin<L> {
    handle: NonZeroU32,
    _owns: PhantomData<Box<L>>,
}

/// What a [`Thin`] holds.
pub(crate) enum Held<'a, L> {
    Bytes(&'a [u8]),
    Boxed(&'a L),
}

// `Thin` is `Send` and `Sync` exactly when `Box<L>` is (its `PhantomData`):
// it owns its bytes (plain data) or its `L` as a box does, hands out only
// shared references to them, and the arena is behind locks and atomics.

impl<L> Thin<L> {
    /// A byte block holding the concatenation of `head`'s parts, then
    /// `body`'s.
    ///
    /// # Panics
    /// If the parts together are longer than [`MAX_BYTES`] (the store keeps
    /// longer values boxed).
    pub(crate) fn bytes(head: &[&[u8]], body: &[&[u8]]) -> Thin<L> {
        let parts = || head.iter().chain(body).copied();
        // Checked: a wrapped sum would pass the limit and size the block
        // below what the copies write.
        let n = parts()
            .try_fold(0usize, |n, p| n.checked_add(p.len()))
            .filter(|&n| n <= MAX_BYTES);
        let Some(n) = n else {
            panic!("a thin byte block of more than {MAX_BYTES} bytes")
        };
        let mut prefix = [0u8; 3];
        let at = put_len(&mut prefix, n);
        let write = |to: *mut u8| {
            let mut written = 0;
            for part in std::iter::once(&prefix[..at]).chain(parts()) {
                // SAFETY: the slot or heap block holds at least `at + n`
                // bytes and the parts add up to that, so every copy stays
                // inside it; fresh memory cannot overlap a borrowed slice.
                unsafe {
                    ptr::copy_nonoverlapping(part.as_ptr(), to.add(written), part.len());
                }
                written += part.len();
            }
            debug_assert_eq!(written, at + n);
        };
        let handle = if let Some(class) = ARENA.direct_class(at + n) {
            ARENA.alloc_slot(class, write)
        } else {
            let layout = heap_layout(at + n);
            // SAFETY: the layout's size is at least 1 (the varint).
            let raw = unsafe { alloc::alloc(layout) };
            if raw.is_null() {
                alloc::handle_alloc_error(layout);
            }
            write(raw);
            // SAFETY: a fresh 8-byte, 8-aligned slot of the pointer class.
            ARENA.alloc_slot(HEAP_CLASS, |slot| unsafe {
                slot.cast::<*mut u8>().write(raw)
            })
        };
        Thin {
            handle,
            _owns: PhantomData,
        }
    }

    /// A boxed `L`.
    pub(crate) fn boxed(b: Box<L>) -> Thin<L> {
        let raw = Box::into_raw(b);
        // SAFETY: a fresh 8-byte, 8-aligned slot of the pointer class.
        let handle = ARENA.alloc_slot(BOXED_CLASS, |slot| unsafe {
            slot.cast::<*mut L>().write(raw)
        });
        Thin {
            handle,
            _owns: PhantomData,
        }
    }

    /// Its handle: the same for as long as it lives.
    pub(crate) fn handle(&self) -> NonZeroU32 {
        self.handle
    }

    /// A copy of a byte block in another slot of its class, for the page
    /// mover: the same bytes at the same cost. `None` for a block behind a
    /// pointer slot (those pages are not moved).
    pub(crate) fn relocated(&self) -> Option<Thin<L>> {
        let (slot, kind) = ARENA.slot(self.handle);
        if kind != BYTES {
            return None;
        }
        // SAFETY: invariant 4: a live byte slot, owned by `self`.
        let (n, at) = unsafe { get_len(slot) };
        let handle = ARENA.alloc_slot(class_of(at + n), |to| {
            // SAFETY: both slots are of the same class, so `to` holds the
            // `at + n` bytes read from `slot`, which is live (`self`) and
            // another slot than the fresh `to`.
            unsafe { ptr::copy_nonoverlapping(slot, to, at + n) }
        });
        Some(Thin {
            handle,
            _owns: PhantomData,
        })
    }

    /// What it holds.
    #[inline]
    pub(crate) fn get(&self) -> Held<'_, L> {
        let (slot, kind) = ARENA.slot(self.handle);
        // SAFETY: invariants 1 and 4: the slot is live while `self` is, and
        // holds what its page's kind says, initialised and never written
        // again; a pointer slot's pointer is to a live heap block or box.
        unsafe {
            match kind {
                BOXED => Held::Boxed(&*slot.cast::<*const L>().read()),
                HEAP_BYTES => Held::Bytes(read_bytes(slot.cast::<*const u8>().read())),
                _ => Held::Bytes(read_bytes(slot)),
            }
        }
    }

    /// What the block costs: its slot, as a share of its page, and the heap
    /// block behind a pointer slot (as glibc rounds it; a boxed value's own
    /// allocations are the caller's to count).
    pub(crate) fn cost(&self) -> usize {
        let (slot, kind) = ARENA.slot(self.handle);
        match kind {
            BYTES => {
                // SAFETY: invariant 4: a live byte slot.
                let len = unsafe { get_len(slot) };
                slot_cost(class_of(len.0 + len.1))
            }
            HEAP_BYTES => {
                // SAFETY: invariant 4: a live pointer slot to a live heap
                // block that starts with its length.
                let len = unsafe { get_len(slot.cast::<*const u8>().read()) };
                heap_cost(len.0 + len.1)
            }
            _ => slot_cost(BOXED_CLASS),
        }
    }
}

impl<L> Drop for Thin<L> {
    fn drop(&mut self) {
        let (slot, kind) = ARENA.slot(self.handle);
        // SAFETY: invariants 1 and 4: the slot is live and owned by `self`,
        // dropped here once; a pointer slot's pointer came from
        // `Box::into_raw` (boxed) or from `alloc` with `heap_layout` of the
        // length it starts with.
        unsafe {
            match kind {
                BOXED => drop(Box::from_raw(slot.cast::<*mut L>().read())),
                HEAP_BYTES => {
                    let raw = slot.cast::<*mut u8>().read();
                    let (n, at) = get_len(raw);
                    alloc::dealloc(raw, heap_layout(at + n));
                }
                _ => {}
            }
            ARENA.free_slot(self.handle);
        }
    }
}

/// The `n` bytes after the varint at `raw`.
///
/// # Safety
/// `raw` points at a varint `n` written by [`put_len`] and `n` initialised
/// bytes after it, none written while the slice lives.
#[inline]
unsafe fn read_bytes<'a>(raw: *const u8) -> &'a [u8] {
    // SAFETY: the caller's contract.
    unsafe {
        let (n, at) = get_len(raw);
        std::slice::from_raw_parts(raw.add(at), n)
    }
}

/// The layout of a heap byte block of `size` bytes, varint included.
fn heap_layout(size: usize) -> Layout {
    Layout::from_size_align(size, HEAP_ALIGN).expect("at most MAX_BYTES + 3")
}

/// Writes `n` (at most [`MAX_BYTES`]) as a LEB128 varint; returns its length.
fn put_len(buf: &mut [u8; 3], n: usize) -> usize {
    put_varint(buf, 0, n as u64)
}

/// Reads the varint [`put_len`] wrote at `raw`; returns it and its length.
///
/// # Safety
/// `raw` points at a varint written by [`put_len`], all of its bytes
/// readable.
#[inline]
unsafe fn get_len(raw: *const u8) -> (usize, usize) {
    let mut n = 0usize;
    for at in 0..3 {
        // SAFETY: the caller's contract: this byte belongs to the varint,
        // which ends at the first byte below 0x80, at most the third.
        let b = unsafe { *raw.add(at) };
        n |= usize::from(b & 0x7f) << (7 * at);
        if b & 0x80 == 0 {
            return (n, at + 1);
        }
    }
    unreachable!("a thin block's length takes at most 3 bytes")
}

/// What a byte block of `size` bytes (varint included) costs on the heap:
/// its pointer slot and the block as glibc rounds it.
fn heap_cost(size: usize) -> usize {
    slot_cost(HEAP_CLASS) + alloc_size(size)
}

/// What a byte block of `n` bytes costs if made now (see [`Thin::cost`]):
/// for checks made before it exists. It never falls as `n` grows.
///
/// Between this call and the block's making, the arena may pass the point
/// where byte blocks go to the heap; a block of at most [`DIRECT_MAX`] bytes
/// then costs up to 25 bytes more than said here. The store's checks that
/// use this (does an item fit a shard at all) cannot be turned by that: the
/// arena gets there only with 16 GiB of slots in use, and a shard of such a
/// store has room for a great many blocks of 1 KiB.
pub(crate) fn bytes_cost(n: usize) -> usize {
    let mut prefix = [0u8; 3];
    let size = put_len(&mut prefix, n) + n;
    match ARENA.direct_class(size) {
        Some(class) => slot_cost(class),
        None => heap_cost(size),
    }
}

/// What the smallest block costs (a slot of the smallest class).
pub(crate) fn smallest_cost() -> usize {
    slot_cost(FIRST_BYTES)
}

/// What a boxed value's slot costs (see [`Thin::cost`]).
pub(crate) fn boxed_slot_cost() -> usize {
    slot_cost(BOXED_CLASS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::sync::Arc;

    /// Counts its drops.
    struct Tracked(Arc<AtomicUsize>, #[allow(dead_code)] u16);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.fetch_add(1, Relaxed);
        }
    }

    fn read(t: &Thin<Tracked>) -> &[u8] {
        match t.get() {
            Held::Bytes(got) => got,
            Held::Boxed(_) => panic!("a byte block read as boxed"),
        }
    }

    #[test]
    fn byte_blocks_of_every_varint_length_and_place_read_back() {
        // Miri interprets every byte copied: the largest blocks only natively.
        let big: &[usize] = if cfg!(miri) {
            &[]
        } else {
            &[70_000, MAX_BYTES]
        };
        let small = [
            0, 1, 2, 15, 16, 127, 128, 129, 510, 1021, 1022, 16_383, 16_384,
        ];
        for &n in small.iter().chain(big) {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let (a, b) = data.split_at(n / 3);
            let t: Thin<Tracked> = Thin::bytes(&[a, &[]], &[b]);
            assert_eq!(read(&t), &data[..], "n = {n}");
            let size = n + if n < 128 {
                1
            } else if n < 16_384 {
                2
            } else {
                3
            };
            // The cheaper of a slot and a heap block with its pointer.
            let heap = slot_cost(HEAP_CLASS) + alloc_size(size);
            let expected = if size <= DIRECT_MAX {
                slot_cost(class_of(size)).min(heap)
            } else {
                heap
            };
            assert_eq!(t.cost(), expected, "n = {n}");
            assert_eq!(t.cost(), bytes_cost(n));
        }
    }

    #[test]
    fn a_longer_block_never_costs_less() {
        // The store prices an item before making it at its longest header:
        // sound only while cost never falls as a block grows, which the
        // largest classes (few slots per page, dearer than a heap block)
        // would break if blocks kept taking them.
        // Miri retags the 8 MiB page table on each look at it: there, the
        // lengths around the largest class only.
        let lengths = if cfg!(miri) { 1_015..1_030 } else { 0..5_000 };
        let mut last = 0;
        for n in lengths {
            let cost = bytes_cost(n);
            assert!(cost >= last, "{n} bytes cost {cost}, one less {last}");
            last = cost;
        }
        // Where the rule applies: the 1,024-byte class (31 slots a page,
        // 1,058 each) loses to the heap (9 + 1,040).
        assert_eq!(bytes_cost(1_022), slot_cost(HEAP_CLASS) + alloc_size(1_024));
        assert!(slot_cost(class_of(1_024)) > bytes_cost(1_022));
    }

    #[test]
    fn classes_cover_every_size_with_the_least_slot_that_fits() {
        assert_eq!(class_size(class_of(1)), 16);
        assert_eq!(class_size(CLASSES - 1), DIRECT_MAX);
        let mut last = 8;
        for class in FIRST_BYTES..CLASSES {
            let size = class_size(class);
            assert!(size > last && size % UNIT == 0, "class {class}");
            assert_eq!(class_of(size), class);
            assert_eq!(class_of(last + 1), class, "class {class}");
            last = size;
        }
        // A 120-byte block (a 100-byte value, 14-byte key) pays its own
        // bytes and its share of the page: 272 slots of a 32 KiB page.
        assert_eq!(slot_cost(class_of(120)), 121);
        assert_eq!(slot_cost(class_of(121)), 129);
    }

    #[test]
    fn a_boxed_value_reads_back_and_drops_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let t = Thin::boxed(Box::new(Tracked(drops.clone(), 0xbeef)));
        assert!(matches!(t.get(), Held::Boxed(Tracked(_, 0xbeef))));
        // An 8-byte slot, 4,092 to a page: 9 bytes with its share.
        assert_eq!(t.cost(), 9);
        let moved = vec![t];
        assert_eq!(drops.load(Relaxed), 0);
        drop(moved);
        assert_eq!(drops.load(Relaxed), 1);
    }

    #[test]
    fn a_relocated_block_reads_the_same_from_another_slot() {
        let t: Thin<Tracked> = Thin::bytes(&[b"key", b"head"], &[b"the value"]);
        let copy = t.relocated().expect("a byte block in a slot");
        assert_ne!(copy.handle(), t.handle());
        assert_eq!(read(&copy), b"keyheadthe value");
        assert_eq!(copy.cost(), t.cost());
        drop(t);
        assert_eq!(read(&copy), b"keyheadthe value");
        // Boxed values and heap blocks stay where they are.
        let drops = Arc::new(AtomicUsize::new(0));
        let boxed = Thin::boxed(Box::new(Tracked(drops.clone(), 1)));
        assert!(boxed.relocated().is_none());
        let long: Thin<Tracked> = Thin::bytes(&[], &[&[7u8; 2_000]]);
        assert!(long.relocated().is_none());
    }

    #[test]
    fn it_is_four_bytes_with_a_niche() {
        assert_eq!(std::mem::size_of::<Thin<Tracked>>(), 4);
        assert_eq!(std::mem::align_of::<Thin<Tracked>>(), 4);
        assert_eq!(std::mem::size_of::<Option<Thin<Tracked>>>(), 4);
    }

    #[test]
    #[cfg_attr(miri, ignore = "2 MiB of copies under Miri")]
    #[should_panic(expected = "a thin byte block of")]
    fn a_block_past_the_limit_is_refused() {
        let big = vec![0u8; MAX_BYTES + 1];
        let _: Thin<Tracked> = Thin::bytes(&[], &[&big]);
    }

    /// An arena of its own, so other tests' blocks do not move its counts.
    fn small_arena(pages: usize) -> Arena {
        let table: Vec<AtomicPtr<u8>> = (0..pages)
            .map(|_| AtomicPtr::new(ptr::null_mut()))
            .collect();
        Arena {
            pages: Box::leak(table.into_boxed_slice()),
            open: [const { Mutex::new(Open::new()) }; CLASSES],
            ids: Mutex::new(Ids {
                next: 0,
                free: Vec::new(),
            }),
            in_use: AtomicU32::new(0),
        }
    }

    /// A test arena gives back the pages its classes kept, and its table.
    impl Drop for Arena {
        fn drop(&mut self) {
            for (id, entry) in self.pages.iter().enumerate() {
                let (base, _) = self.page(id);
                if !base.is_null() {
                    // SAFETY: each test frees every slot it takes before its
                    // arena drops, so no handle in the page is live; the page
                    // was allocated with this layout.
                    unsafe { alloc::dealloc(base, page_layout()) };
                    entry.store(ptr::null_mut(), Relaxed);
                }
            }
            let table: *const [AtomicPtr<u8>] = self.pages;
            // SAFETY: only `small_arena`'s arenas drop (the static one never
            // does), and their tables come from `Box::leak`, used no more.
            drop(unsafe { Box::from_raw(table.cast_mut()) });
        }
    }

    #[test]
    fn freed_slots_are_reused_and_empty_pages_go_back() {
        let arena = small_arena(8);
        let class = class_of(1000);
        let per = per_page(class) as usize;
        let open = || arena.open[class].lock().pages.len();
        let in_use = || arena.in_use.load(Relaxed);
        let mut slots: Vec<_> = (0..per * 3 + 1)
            .map(|_| arena.alloc_slot(class, |_| {}))
            .collect();
        // Three full pages, and one with a slot used: the only open one.
        assert_eq!((in_use(), open()), (4, 1));
        let units: Vec<u32> = slots.iter().map(|&h| split(h).1).collect();
        assert!(units.iter().all(|u| (HEAD_UNITS..PAGE_UNITS).contains(u)));
        // Emptying the first page frees it: another page has room.
        for h in slots.drain(..per) {
            // SAFETY: a live handle of this arena, never used again.
            unsafe { arena.free_slot(h) };
        }
        assert_eq!((in_use(), open()), (3, 1), "the emptied page went back");
        check_free(&arena, class);
        // A slot freed in a full page opens it, and is the next one taken.
        let freed = slots.remove(per / 2);
        // SAFETY: as above.
        unsafe { arena.free_slot(freed) };
        assert_eq!(open(), 2);
        let again = arena.alloc_slot(class, |_| {});
        assert_eq!(again, freed, "the freed slot is taken first");
        assert_eq!(open(), 1, "and its page is full again");
        check_free(&arena, class);
        // The freed page's number is used again before a new one.
        let more: Vec<_> = (0..per).map(|_| arena.alloc_slot(class, |_| {})).collect();
        assert_eq!(in_use(), 4);
        assert!(more.iter().all(|&h| split(h).0 < 4), "page numbers reused");
        for h in slots.into_iter().chain(more).chain([again]) {
            // SAFETY: as above.
            unsafe { arena.free_slot(h) };
        }
        assert_eq!(
            (in_use(), open()),
            (1, 1),
            "the class keeps one page with room"
        );
    }

    /// Mover ids of two stores.
    const ME: NonZeroU32 = NonZeroU32::MIN;
    const THEM: NonZeroU32 = NonZeroU32::MIN.saturating_add(1);

    /// Checks a class's count of free slots against its pages.
    fn check_free(arena: &Arena, class: usize) {
        let open = arena.open[class].lock();
        let counted: usize = open
            .pages
            .iter()
            .map(|&id| {
                let (base, _) = arena.page(id as usize);
                // SAFETY: pages in an open list are live.
                per_page(class) as usize - unsafe { head(base) }.used.load(Relaxed) as usize
            })
            .sum();
        assert_eq!(open.free, counted, "class {class}'s free slots");
    }

    /// A byte block of a class under 128 bytes (one varint byte) in
    /// `arena`, every byte `tag`, written under the lock as `Thin::bytes`
    /// writes.
    fn block_in(arena: &Arena, class: usize, tag: u8) -> NonZeroU32 {
        let n = class_size(class) - 1;
        assert!(n < 128);
        arena.alloc_slot(class, |to| {
            // SAFETY: a fresh slot of `n + 1` bytes.
            unsafe {
                to.write(n as u8);
                ptr::write_bytes(to.add(1), tag, n);
            }
        })
    }

    #[test]
    fn the_page_mover_empties_the_sparsest_page_into_the_others() {
        let arena = small_arena(8);
        let class = class_of(64);
        let per = per_page(class) as usize;
        let page_of = |h: NonZeroU32| split(h).0;
        // Four pages; 90% of the first three's slots freed, so the class
        // has more than a page of free slots, and still does after one move.
        let mut live: Vec<(NonZeroU32, u8)> = (0..4 * per)
            .map(|i| (block_in(&arena, class, i as u8), i as u8))
            .collect();
        let mut kept = Vec::new();
        for (i, (h, tag)) in live.drain(..).enumerate() {
            if i < 3 * per && i % 10 != 0 {
                // SAFETY: a live handle of this arena, never used again.
                unsafe { arena.free_slot(h) };
            } else {
                kept.push((h, tag));
            }
        }
        // The page with the fewest items is picked (one of the first three).
        let counts: Vec<usize> = (0..4)
            .map(|p| kept.iter().filter(|(h, _)| page_of(*h) == p).count())
            .collect();
        check_free(&arena, class);
        let drain = arena.start_drain(ME).expect("more than a page free");
        check_free(&arena, class);
        let sparsest = (0..4).min_by_key(|&p| counts[p]).unwrap();
        assert_eq!(drain.id, sparsest);
        // It lists exactly the page's items, with their bytes.
        let listed: Vec<(NonZeroU32, Vec<u8>)> =
            drain.blocks().map(|(h, b)| (h, b.to_vec())).collect();
        assert_eq!(listed.len(), counts[sparsest]);
        for (h, bytes) in &listed {
            let tag = kept.iter().find(|(k, _)| k == h).expect("a live item").1;
            assert_eq!(bytes.len(), class_size(class) - 1);
            assert!(bytes.iter().all(|&b| b == tag));
        }
        // Nothing new lands in it while it drains.
        let extra = block_in(&arena, class, 0xee);
        assert_ne!(page_of(extra), drain.id);
        // Each item moved: a copy elsewhere, then the old slot freed.
        for (h, bytes) in &listed {
            let copy = block_in(&arena, class, bytes[0]);
            assert_ne!(page_of(copy), drain.id);
            kept.retain(|(k, _)| k != h);
            kept.push((copy, bytes[0]));
            // SAFETY: as above.
            unsafe { arena.free_slot(*h) };
        }
        let pages = arena.in_use.load(Relaxed);
        assert!(drain.finish(), "the emptied page goes back");
        check_free(&arena, class);
        assert_eq!(arena.in_use.load(Relaxed), pages - 1);
        // A drain that cannot move everything (an item another store holds)
        // puts its page back, stuck, and the mover leaves it alone until a
        // slot of it is freed.
        {
            let drain = arena.start_drain(ME).expect("still more than a page free");
            let page = drain.id;
            let (stay, _) = drain.blocks().next().expect("items to move");
            for (h, bytes) in drain.blocks().skip(1) {
                let copy = block_in(&arena, class, bytes[0]);
                kept.retain(|(k, _)| *k != h);
                kept.push((copy, bytes[0]));
                // SAFETY: as above.
                unsafe { arena.free_slot(h) };
            }
            assert!(!drain.finish(), "one item stayed");
            check_free(&arena, class);
            assert!(arena.start_drain(ME).is_none_or(|d| {
                let other = d.id != page;
                d.finish();
                other
            }));
            // Another store's mover may still try it (its items may be
            // that store's to move).
            let theirs = arena.start_drain(THEM).expect("the page, for them");
            assert_eq!(theirs.id, page);
            assert!(!theirs.finish());
            // SAFETY: as above.
            unsafe { arena.free_slot(stay) };
            kept.retain(|(k, _)| *k != stay);
        }
        for (h, _) in kept.into_iter().chain([(extra, 0)]) {
            // SAFETY: as above.
            unsafe { arena.free_slot(h) };
        }
        assert_eq!(arena.in_use.load(Relaxed), 1, "the class keeps one page");
        check_free(&arena, class);
    }

    #[test]
    fn pages_a_mover_is_stuck_on_do_not_keep_it_from_other_classes() {
        let arena = small_arena(16);
        // Makes `n` blocks of `class`, then frees those `free` picks.
        let fill = |class: usize, n: usize, free: &dyn Fn(usize) -> bool| {
            let all: Vec<_> = (0..n).map(|i| block_in(&arena, class, i as u8)).collect();
            let mut kept = Vec::new();
            for (i, h) in all.into_iter().enumerate() {
                if free(i) {
                    // SAFETY: a live handle of this arena, never used again.
                    unsafe { arena.free_slot(h) };
                } else {
                    kept.push(h);
                }
            }
            kept
        };
        // Class A: three pages a tenth full, whose items this mover cannot
        // move (another store's): each drain gives up, the pages stuck.
        let a = class_of(64);
        let mut held = fill(a, 3 * per_page(a) as usize, &|i| i % 10 != 0);
        while let Some(d) = arena.start_drain(ME) {
            assert_eq!(d.class, a);
            assert!(!d.finish());
        }
        // Class B: fewer free bytes than A, but a page's worth of free
        // slots over two pages: its drain comes next.
        let b = class_of(32);
        let per_b = per_page(b) as usize;
        held.extend(fill(b, per_b + 10, &|i| i < per_b && i % 2 == 0));
        {
            let (open_a, open_b) = (arena.open[a].lock(), arena.open[b].lock());
            assert_eq!((open_a.pages.len(), open_b.pages.len()), (3, 2));
            assert!(open_a.free * class_size(a) > open_b.free * class_size(b));
        }
        let drain = arena.start_drain(ME).expect("class B's page");
        assert_eq!(drain.class, b);
        drop(drain);
        check_free(&arena, a);
        check_free(&arena, b);
        for h in held {
            // SAFETY: as above.
            unsafe { arena.free_slot(h) };
        }
    }

    #[test]
    fn an_arena_short_of_page_numbers_stops_giving_byte_blocks_slots() {
        let arena = small_arena(8);
        // One page per class: three of eight page numbers leave room.
        let mut held: Vec<_> = (0..3)
            .map(|i| arena.alloc_slot(FIRST_BYTES + i, |_| {}))
            .collect();
        assert!(arena.direct());
        // The fourth reaches half.
        held.push(arena.alloc_slot(FIRST_BYTES + 3, |_| {}));
        assert!(!arena.direct());
        for h in held {
            // SAFETY: a live handle of this arena, never used again.
            unsafe { arena.free_slot(h) };
        }
        // Each class keeps its one page.
        assert!(!arena.direct());
    }

    #[test]
    fn blocks_are_made_read_and_freed_across_threads() {
        let t: Arc<Thin<Tracked>> = Arc::new(Thin::bytes(&[b"shared"], &[]));
        let n = if cfg!(miri) { 20 } else { 2_000 };
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let t = t.clone();
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    for i in 0..n {
                        let body = [w as u8, i as u8, (i >> 8) as u8];
                        mine.push(Thin::<Tracked>::bytes(&[b"k"], &[&body]));
                        if i % 3 == 0 {
                            mine.swap_remove(i % mine.len());
                        }
                    }
                    let all_intact = mine.iter().all(|b| read(b).len() == 4);
                    all_intact && matches!(t.get(), Held::Bytes(b"shared"))
                })
            })
            .collect();
        assert!(workers.into_iter().all(|r| r.join().unwrap()));
    }
}
