//! A thin owning pointer for an item's block: one of the library's two
//! modules with unsafe code (the other is the shards' lock,
//! `src/slotted.rs`; the server binary's `mallopt` call aside).
//!
//! The store keeps one block per item in the cache's slot. A `Box<[u8]>` is
//! a pointer and a length, 16 bytes; an enum of it and a second box needs
//! no more, but no less either. [`Thin`] is 8 bytes: one pointer, either to
//! a byte block that starts with its own length (a LEB128 varint, one byte
//! below 128 bytes and two below 16 KiB), or, tagged in its lowest bit, to a
//! boxed `L`. Eight bytes less per slot is eight bytes less per item, and a
//! little more with the table's spare slots (`tests/memcached_memory.rs`
//! and `BENCHMARKS.md` have the figures).
//!
//! The invariants every `unsafe` block below relies on:
//! 1. `ptr` is never null and comes from one of the two constructors, which
//!    never change afterwards; nothing writes through it once built.
//! 2. Bit 0 of its address is 1 exactly when it points (one byte past) a
//!    live `L` from `Box::into_raw`; `L` is aligned to at least 2.
//! 3. Otherwise it points at an allocation of [`BYTES_ALIGN`], of exactly
//!    `varint_len(n) + n` bytes, all initialised: the varint `n`, then the
//!    `n` bytes of the block.
//! 4. The pointer is owned: dropped once, by `Drop`.

#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

use std::alloc::{self, Layout};
use std::marker::PhantomData;
use std::ptr::NonNull;

use super::item::put_varint;

/// The alignment byte blocks are allocated at, so that their addresses are
/// even and bit 0 can tag the boxed kind.
const BYTES_ALIGN: usize = 2;

/// The longest byte block: its length takes at most 3 varint bytes.
pub(crate) const MAX_BYTES: usize = (1 << 21) - 1;

/// An owned byte block or boxed `L`, behind one pointer.
pub(crate) struct Thin<L> {
    ptr: NonNull<u8>,
    _owns: PhantomData<Box<L>>,
}

/// What a [`Thin`] holds.
pub(crate) enum Held<'a, L> {
    Bytes(&'a [u8]),
    Boxed(&'a L),
}

// SAFETY: a `Thin` owns its bytes (plain data) or its `L` as a `Box<L>` does,
// and hands out only shared references to them.
unsafe impl<L: Send> Send for Thin<L> {}
// SAFETY: as above; `&Thin` gives only `&[u8]` and `&L`.
unsafe impl<L: Sync> Sync for Thin<L> {}

impl<L> Thin<L> {
    /// A byte block holding the concatenation of `head`'s parts, then
    /// `body`'s.
    ///
    /// # Panics
    /// If the parts together are longer than [`MAX_BYTES`] (the store keeps
    /// longer values boxed).
    pub(crate) fn bytes(head: &[&[u8]], body: &[&[u8]]) -> Thin<L> {
        let parts = || head.iter().chain(body).copied();
        // Checked: a wrapped sum would pass the limit and size the allocation
        // below what the copies write.
        let n = parts()
            .try_fold(0usize, |n, p| n.checked_add(p.len()))
            .filter(|&n| n <= MAX_BYTES);
        let Some(n) = n else {
            panic!("a thin byte block of more than {MAX_BYTES} bytes")
        };
        let mut prefix = [0u8; 3];
        let at = put_len(&mut prefix, n);
        let layout = bytes_layout(at + n);
        // SAFETY: the layout's size is at least 1 (the varint).
        let raw = unsafe { alloc::alloc(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            alloc::handle_alloc_error(layout)
        };
        let mut to = 0;
        for part in std::iter::once(&prefix[..at]).chain(parts()) {
            // SAFETY: the allocation is `at + n` bytes long and the parts add
            // up to that, so every copy stays inside it; a fresh allocation
            // cannot overlap a borrowed slice.
            unsafe {
                std::ptr::copy_nonoverlapping(part.as_ptr(), raw.add(to), part.len());
            }
            to += part.len();
        }
        debug_assert_eq!(to, at + n);
        Thin {
            ptr,
            _owns: PhantomData,
        }
    }

    /// A boxed `L`, tagged.
    pub(crate) fn boxed(b: Box<L>) -> Thin<L> {
        const { assert!(std::mem::align_of::<L>() >= 2, "bit 0 must be free") };
        let raw = Box::into_raw(b).cast::<u8>();
        // One past the start of a live allocation of at least 2 bytes, and
        // `wrapping_add` keeps the provenance.
        let tagged = raw.wrapping_add(1);
        Thin {
            ptr: NonNull::new(tagged).expect("a box is not at address usize::MAX"),
            _owns: PhantomData,
        }
    }

    fn is_boxed(&self) -> bool {
        self.ptr.as_ptr().addr() & 1 == 1
    }

    /// What it holds.
    #[inline]
    pub(crate) fn get(&self) -> Held<'_, L> {
        let raw = self.ptr.as_ptr();
        if self.is_boxed() {
            // SAFETY: invariant 2: untagged, this is the `Box<L>`'s pointer,
            // live while `self` is, and never written through.
            return Held::Boxed(unsafe { &*raw.wrapping_sub(1).cast::<L>() });
        }
        // SAFETY: invariant 3: the varint is initialised and at most 3 bytes,
        // and the `n` bytes after it are inside the allocation, initialised,
        // and never written once built.
        unsafe {
            let (n, at) = get_len(raw);
            Held::Bytes(std::slice::from_raw_parts(raw.add(at), n))
        }
    }
}

impl<L> Drop for Thin<L> {
    fn drop(&mut self) {
        let raw = self.ptr.as_ptr();
        if self.is_boxed() {
            // SAFETY: invariants 2 and 4: the pointer came from
            // `Box::into_raw` and is dropped here only.
            drop(unsafe { Box::from_raw(raw.wrapping_sub(1).cast::<L>()) });
            return;
        }
        // SAFETY: invariant 3: the varint is readable, and it gives back the
        // size the block was allocated with, at the same alignment; invariant
        // 4: freed once.
        unsafe {
            let (n, at) = get_len(raw);
            alloc::dealloc(raw, bytes_layout(at + n));
        }
    }
}

/// The layout of a byte block of `size` bytes, varint included.
fn bytes_layout(size: usize) -> Layout {
    Layout::from_size_align(size, BYTES_ALIGN).expect("at most MAX_BYTES + 3")
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

/// The bytes a byte block of `n` bytes asks the allocator for.
pub(crate) fn bytes_size(n: usize) -> usize {
    let mut prefix = [0u8; 3];
    put_len(&mut prefix, n) + n
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

    #[test]
    fn byte_blocks_of_every_varint_length_read_back() {
        // Miri interprets every byte copied: the largest blocks only natively.
        let big: &[usize] = if cfg!(miri) {
            &[]
        } else {
            &[70_000, MAX_BYTES]
        };
        let small = [0, 1, 2, 127, 128, 129, 16_383, 16_384];
        for &n in small.iter().chain(big) {
            let data: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
            let (a, b) = data.split_at(n / 3);
            let t: Thin<Tracked> = Thin::bytes(&[a, &[]], &[b]);
            match t.get() {
                Held::Bytes(got) => assert_eq!(got, &data[..], "n = {n}"),
                Held::Boxed(_) => panic!("a byte block read as boxed"),
            }
            assert_eq!(
                bytes_size(n),
                n + if n < 128 {
                    1
                } else if n < 16_384 {
                    2
                } else {
                    3
                }
            );
        }
    }

    #[test]
    fn a_boxed_value_reads_back_and_drops_once() {
        let drops = Arc::new(AtomicUsize::new(0));
        let t = Thin::boxed(Box::new(Tracked(drops.clone(), 0xbeef)));
        assert!(matches!(t.get(), Held::Boxed(Tracked(_, 0xbeef))));
        let moved = vec![t];
        assert_eq!(drops.load(Relaxed), 0);
        drop(moved);
        assert_eq!(drops.load(Relaxed), 1);
    }

    #[test]
    fn it_is_one_pointer_with_a_niche() {
        assert_eq!(std::mem::size_of::<Thin<Tracked>>(), 8);
        assert_eq!(std::mem::size_of::<Option<Thin<Tracked>>>(), 8);
    }

    #[test]
    #[cfg_attr(miri, ignore = "2 MiB of copies under Miri")]
    #[should_panic(expected = "a thin byte block of")]
    fn a_block_past_the_limit_is_refused() {
        let big = vec![0u8; MAX_BYTES + 1];
        let _: Thin<Tracked> = Thin::bytes(&[], &[&big]);
    }

    #[test]
    fn blocks_are_shared_across_threads() {
        let t: Arc<Thin<Tracked>> = Arc::new(Thin::bytes(&[b"shared"], &[]));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let t = t.clone();
                std::thread::spawn(move || matches!(t.get(), Held::Bytes(b"shared")))
            })
            .collect();
        assert!(readers.into_iter().all(|r| r.join().unwrap()));
    }
}
