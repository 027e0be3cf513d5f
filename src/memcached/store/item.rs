//! What the store keeps per key, and what one item costs in memory.
//!
//! An item is one block, the cache's key: a small header, the key, and the
//! value ([`Block`]), in a slot of the store's arena, named by a 4-byte
//! handle (see [`thin`](super::thin)). The cache's value is one 4-byte
//! atomic word ([`Meta`]): the access state (last access, fetched, stale, win
//! token sent), which reads change under the shard's read lock. With both
//! 4 bytes the cache's slot for an item is 24 bytes, with no padding. The
//! expiry is the cache's own deadline, and reads go through the cache's
//! visitor, so a hit copies the value straight from the block into the
//! reply, under the read lock.
//!
//! A value of [`LARGE_FROM`] bytes or more lives in a [`Bytes`] of its own
//! instead, so a reply can share it with the cache rather than copy it (one
//! reference-count increment), and a connection that drains slowly holds a
//! reference, not a copy.

use crate::sync::AtomicU32;
use std::borrow::Borrow;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};
use std::time::Duration;

use bytes::Bytes;

use super::output::Sink;
use super::thin::{self, Held, Thin};

/// The bytes one item costs beyond its block (header, key and value, in its
/// arena slot with its share of the slot's page): the cache's slot for it,
/// its share of the table's spare room, and the eviction policy's
/// bookkeeping.
///
/// | part | bytes |
/// |---|---|
/// | the slot: block handle 4, state word 4, hash 4, deadline 4, policy word 4, link 4 | 24 |
/// | the table's spare slots and control bytes: 5–12 with thousands of items per shard (at most 87.5% full, 70% just after growing by a quarter); more with 64–128 items per shard, where whole groups of 15 slots round it up | 5–12 |
/// | policy state (ghost fingerprints, queue vectors), averaged | ~4 |
///
/// Measured on x86-64, 2026-12-03:
/// - from the outside: `larder-server -m M` filled to 4 x what fits, at `M`
///   = 56, 60, 64, 68 and 72; RSS less the empty server's, over the items
///   held, less the block's slot. 31.9–37.2 bytes (mean 34.9) with 10-byte
///   values, 35.4–41.1 (mean 37.7) with 100-byte values; the spread is
///   where the tables stand in their growth.
/// - with a counting allocator (`tests/memcached_memory.rs`, which checks
///   that a full store asks for no more than its limit): 30–34 bytes with
///   10-byte values, 38.4 with 100-byte values at an 8 MiB limit.
///
/// 39 covers the allocator's count at every point the test takes. Against
/// the outside measure it is 1.3 bytes over the mean at 100-byte values and
/// 4.1 over at 10-byte ones: a store's `bytes` runs from 1% under to 11%
/// over what its items really hold, and 1% (100 B) to 6% (10 B) over on
/// average. (With the 8-byte block pointers and 8-byte state
/// word before, it was 45, on top of glibc's 16-byte rounding and 8-byte
/// chunk header.) That is with the server's allocator settings (one arena, a
/// fixed mapping threshold; see `larder-server`'s `malloc` module): a
/// program that embeds the store with glibc's defaults can hold more, as
/// replaced tables leave holes in the heap.
pub const ITEM_OVERHEAD: u32 = 39;

/// Values this long or longer are kept apart from the item's header, in a
/// buffer replies share instead of copying.
pub(crate) const LARGE_FROM: usize = 4096;

/// Header bytes before the key: the key's length.
const KEY_AT: usize = 1;
/// The most header bytes after the key: the field byte, then client flags,
/// CAS and flush epoch as LEB128 varints (5, 10 and 5 bytes at most).
const MAX_FIELDS: usize = 21;
/// The field byte's low bits: the client flags themselves when below this
/// (most clients use flags 0 to 4 or so), or this, and the flags follow as a
/// varint.
const FLAGS_FOLLOW: u8 = 0b111;
/// The field byte's high bits (from bit 3): the flush epoch itself when
/// below this (the count of `flush_all`s the store has seen), or this, and
/// the epoch follows as a varint.
const EPOCH_FOLLOWS: u8 = 0b1_1111;
const EPOCH_SHIFT: u32 = 3;

/// Low 29 bits of the state: second of the last access, counted from the
/// store's start (17 years' worth; later seconds read as the last one).
const ACCESS_MASK: u32 = (1 << 29) - 1;
/// Fetched since it was stored.
pub(crate) const FETCHED: u32 = 1 << 29;
/// Marked stale by `md … I` (or stored stale by `ms … I`).
pub(crate) const STALE: u32 = 1 << 30;
/// A win token (`W`) was handed out for this item.
pub(crate) const TOKEN_SENT: u32 = 1 << 31;

/// The longest key a block can hold.
pub(crate) const MAX_KEY: usize = u8::MAX as usize;

/// One stored item, the cache's key: header, key and value in one arena
/// slot behind a 4-byte handle, or, for a large value, the header and key
/// with the value beside them.
///
/// Layout: `[key length: u8][key][field byte][flags][cas][epoch][value]`,
/// the three numbers as LEB128 varints, flags and epoch only when they do
/// not fit the field byte (3 bits for flags below 7, 5 for epochs below 31):
/// most items have small flags, a small epoch and a CAS far below 2^64, so
/// the header after the key is usually 2 to 6 bytes, not 16, which often
/// moves a small item into a smaller size class. The block's own length
/// prefix (see [`thin`](super::thin)) comes before it. A block
/// compares and hashes as its key, so the cache finds it by a `&[u8]`.
pub(crate) struct Block(Thin<Large>);

/// The parts of an item with a large value.
pub(crate) struct Large {
    head: Box<[u8]>,
    value: Bytes,
}

/// The fields of a new block, besides its value.
#[derive(Clone, Copy)]
pub(crate) struct Head<'a> {
    pub(crate) key: &'a [u8],
    pub(crate) flags: u32,
    pub(crate) cas: u64,
    pub(crate) epoch: u32,
}

/// A block's header, built on the stack: the key's length byte, and the
/// bytes after the key (field byte, flags, CAS, epoch).
struct Encoded<'a> {
    key_len: [u8; KEY_AT],
    key: &'a [u8],
    fields: [u8; MAX_FIELDS],
    fields_len: usize,
}

impl Encoded<'_> {
    /// The header as the pieces it is written from.
    fn parts(&self) -> [&[u8]; 3] {
        [&self.key_len, self.key, &self.fields[..self.fields_len]]
    }
}

impl<'a> Head<'a> {
    /// The header bytes.
    ///
    /// # Panics
    /// If the key is longer than [`MAX_KEY`] (the store checks first).
    fn encode(&self) -> Encoded<'a> {
        let mut buf = [0; MAX_FIELDS];
        let mut at = 1;
        let flags = match u8::try_from(self.flags) {
            Ok(small) if small < FLAGS_FOLLOW => small,
            _ => {
                at = put_varint(&mut buf, at, u64::from(self.flags));
                FLAGS_FOLLOW
            }
        };
        at = put_varint(&mut buf, at, self.cas);
        let epoch = match u8::try_from(self.epoch) {
            Ok(small) if small < EPOCH_FOLLOWS => small,
            _ => {
                at = put_varint(&mut buf, at, u64::from(self.epoch));
                EPOCH_FOLLOWS
            }
        };
        buf[0] = flags | epoch << EPOCH_SHIFT;
        Encoded {
            key_len: [u8::try_from(self.key.len()).expect("key checked by the store")],
            key: self.key,
            fields: buf,
            fields_len: at,
        }
    }
}

/// The key of the item whose block holds `bytes` (as the page mover copies
/// them out of the arena); `None` if they are too short to be one.
pub(crate) fn key_in(bytes: &[u8]) -> Option<&[u8]> {
    let len = usize::from(*bytes.first()?);
    bytes.get(KEY_AT..KEY_AT + len)
}

impl Block {
    /// A block whose value is the concatenation of `parts`.
    ///
    /// # Panics
    /// If the key is longer than [`MAX_KEY`] (the store checks first).
    pub(crate) fn new(head: Head<'_>, parts: &[&[u8]]) -> Block {
        let value_len: usize = parts.iter().map(|p| p.len()).sum();
        let head = head.encode();
        if value_len < LARGE_FROM {
            return Block(Thin::bytes(&head.parts(), parts));
        }
        Block::large(&head, Bytes::from(parts.concat()))
    }

    /// A block with its value apart.
    fn large(head: &Encoded<'_>, value: Bytes) -> Block {
        Block(Thin::boxed(Box::new(Large {
            head: head.parts().concat().into_boxed_slice(),
            value,
        })))
    }

    /// The same item under a new CAS unique and epoch (the value is shared
    /// when it is large, copied otherwise).
    pub(crate) fn with_cas(&self, cas: u64, epoch: u32) -> Block {
        let head = Head {
            key: self.key(),
            flags: self.flags(),
            cas,
            epoch,
        };
        match self.0.get() {
            Held::Bytes(_) => Block::new(head, &[self.value()]),
            Held::Boxed(large) => Block::large(&head.encode(), large.value.clone()),
        }
    }

    /// Its arena handle, by which the page mover knows it.
    pub(crate) fn handle(&self) -> std::num::NonZeroU32 {
        self.0.handle()
    }

    /// The same block in another slot of its size class, for the page
    /// mover (`None` for a block the mover does not move).
    pub(crate) fn relocated(&self) -> Option<Block> {
        self.0.relocated().map(Block)
    }

    /// Whether the value is kept apart, shared with replies.
    #[cfg(test)]
    fn is_large(&self) -> bool {
        matches!(self.0.get(), Held::Boxed(_))
    }

    /// The header, with the value after it if inline.
    #[inline]
    fn head(&self) -> &[u8] {
        match self.0.get() {
            Held::Bytes(b) => b,
            Held::Boxed(l) => &l.head,
        }
    }

    /// The key.
    #[inline]
    pub(crate) fn key(&self) -> &[u8] {
        let head = self.head();
        &head[KEY_AT..KEY_AT + usize::from(head[0])]
    }

    /// Flags, CAS, epoch, and where the header ends.
    fn fields(&self) -> (u32, u64, u32, usize) {
        let head = self.head();
        let at = KEY_AT + usize::from(head[0]);
        let field = head[at];
        let mut flags = u64::from(field & FLAGS_FOLLOW);
        let mut epoch = u64::from(field >> EPOCH_SHIFT);
        let mut at = at + 1;
        if flags == u64::from(FLAGS_FOLLOW) {
            (flags, at) = get_varint(head, at);
        }
        let (cas, mut at) = get_varint(head, at);
        if epoch == u64::from(EPOCH_FOLLOWS) {
            (epoch, at) = get_varint(head, at);
        }
        // Both were written from `u32`s.
        (flags as u32, cas, epoch as u32, at)
    }

    /// The client flags.
    pub(crate) fn flags(&self) -> u32 {
        self.fields().0
    }

    /// The CAS unique.
    pub(crate) fn cas(&self) -> u64 {
        self.fields().1
    }

    /// The store's flush epoch when the item was made (see `Store::flush_now`).
    pub(crate) fn epoch(&self) -> u32 {
        self.fields().2
    }

    /// The value.
    pub(crate) fn value(&self) -> &[u8] {
        match self.0.get() {
            Held::Bytes(b) => &b[self.fields().3..],
            Held::Boxed(l) => &l.value,
        }
    }

    /// What this block costs: its arena slot with its share of the page,
    /// and for a long or large one its heap blocks as glibc rounds them.
    pub(crate) fn cost(&self) -> usize {
        match self.0.get() {
            Held::Bytes(_) => self.0.cost(),
            Held::Boxed(l) => large_cost(l.head.len(), l.value.len()),
        }
    }

    /// Writes the value to a reply: shared if large, copied otherwise.
    pub(super) fn write_value<S: Sink>(&self, out: &mut S) {
        match self.0.get() {
            Held::Bytes(_) => out.lines().extend_from_slice(self.value()),
            Held::Boxed(l) => out.value(&l.value),
        }
    }

    /// The value as a `Bytes`: shared if large, copied otherwise.
    pub(crate) fn value_bytes(&self) -> Bytes {
        match self.0.get() {
            Held::Bytes(_) => Bytes::copy_from_slice(self.value()),
            Held::Boxed(l) => l.value.clone(),
        }
    }
}

/// The most a block of this key and value length can cost, whatever its
/// fields (for checks made before the block exists; the weigher charges
/// each block as built, [`Block::cost`]): its cost at the longest header,
/// as a block's cost never falls as it grows (see [`thin::bytes_cost`]).
pub(crate) fn block_cost(key_len: usize, value_len: usize) -> usize {
    let head = KEY_AT + key_len + MAX_FIELDS;
    if value_len < LARGE_FROM {
        thin::bytes_cost(head + value_len)
    } else {
        large_cost(head, value_len)
    }
}

/// The box's arena slot, the box, the header, the value, and the value's
/// shared-owner record (made by its first shared reply).
fn large_cost(head_len: usize, value_len: usize) -> usize {
    thin::boxed_slot_cost()
        + alloc_size(std::mem::size_of::<Large>())
        + alloc_size(head_len)
        + alloc_size(value_len)
        + alloc_size(3 * std::mem::size_of::<usize>())
}

/// Writes `v` as a LEB128 varint at `buf[at..]`; returns where it ends.
pub(super) fn put_varint(buf: &mut [u8], mut at: usize, mut v: u64) -> usize {
    while v >= 0x80 {
        buf[at] = (v as u8) | 0x80;
        v >>= 7;
        at += 1;
    }
    buf[at] = v as u8;
    at + 1
}

/// Reads a LEB128 varint from `buf[at..]` (written by [`put_varint`]);
/// returns it and where it ends.
fn get_varint(buf: &[u8], mut at: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let b = buf[at];
        at += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return (v, at);
        }
        shift += 7;
    }
}

/// The memory a heap allocation of `n` bytes takes, as glibc's malloc lays
/// it out: an 8-byte size word, rounded up to 16 bytes, at least 32; whole
/// pages plus a 16-byte header for the large blocks it maps on their own.
/// Other allocators round to size classes of similar granularity.
pub(crate) fn alloc_size(n: usize) -> usize {
    const MMAP_FROM: usize = 128 * 1024;
    let chunk = ((n + 8).div_ceil(16) * 16).max(32);
    if chunk >= MMAP_FROM {
        // A mapped chunk: the rounded size plus another size word, in pages.
        (chunk + 8).div_ceil(4096) * 4096
    } else {
        chunk
    }
}

impl Borrow<[u8]> for Block {
    fn borrow(&self) -> &[u8] {
        self.key()
    }
}

impl Hash for Block {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // As `[u8]` hashes, so that a lookup by `&[u8]` finds the block.
        self.key().hash(state);
    }
}

impl PartialEq for Block {
    fn eq(&self, other: &Block) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Block {}

impl fmt::Debug for Block {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Block")
            .field("key", &String::from_utf8_lossy(self.key()))
            .field("len", &self.value().len())
            .field("flags", &self.flags())
            .field("cas", &self.cas())
            .finish()
    }
}

/// The cache's value for an item: its access state, which reads change
/// without the shard's write lock.
#[derive(Debug)]
pub(crate) struct Meta(AtomicU32);

impl Meta {
    pub(crate) fn new(state: u32) -> Meta {
        Meta(AtomicU32::new(state))
    }

    /// The state word of an item accessed at second `now` (of the store's
    /// uptime), with no flags.
    pub(crate) fn fresh(now: u32) -> u32 {
        now.min(ACCESS_MASK)
    }

    pub(crate) fn state(&self) -> u32 {
        self.0.load(Acquire)
    }

    /// Flag bits that a successor of this item inherits when it replaces it
    /// in place (stale value kept stale).
    pub(crate) fn sticky_bits(&self) -> u32 {
        self.state() & (STALE | TOKEN_SENT)
    }

    /// Records a fetch at second `now`; returns the state before it.
    ///
    /// A plain compare-and-swap that gives up when it races: a lost update of
    /// the access time is harmless, while a blind store could erase a win
    /// token set by another reader. Nothing is written when nothing changes,
    /// so a hot item's line stays shared between readers.
    pub(crate) fn record_fetch(&self, now: u32) -> u32 {
        let old = self.state();
        let new = (old & !ACCESS_MASK) | FETCHED | Meta::fresh(now);
        if new != old {
            let _ = self.0.compare_exchange(old, new, AcqRel, Relaxed);
        }
        old
    }

    /// Claims the win token; `true` for exactly one caller per item.
    pub(crate) fn claim_token(&self) -> bool {
        self.0.fetch_or(TOKEN_SENT, AcqRel) & TOKEN_SENT == 0
    }

    /// The second of the last access, from a state word.
    pub(crate) fn last_access(state: u32) -> u32 {
        state & ACCESS_MASK
    }
}

/// A stored item seen in place, under its shard's lock.
pub(crate) struct ItemRef<'a> {
    pub(crate) block: &'a Block,
    pub(crate) meta: &'a Meta,
    /// Time left before it expires (`None`: never).
    pub(crate) ttl: Option<Duration>,
}

impl ItemRef<'_> {
    /// The expiry on the store clock in milliseconds (0: never), given the
    /// store clock's `now`.
    pub(crate) fn expires_at(&self, now_ms: u64) -> u64 {
        self.ttl.map_or(0, |t| {
            now_ms
                .saturating_add(u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
                .max(1)
        })
    }
}

/// A copy of one stored item: its value, client flags and CAS unique, as
/// [`Store::get`](super::Store::get) returns it.
///
/// ```
/// use larder::memcached::{Store, StoreConfig};
///
/// let store = Store::new(StoreConfig::default())?;
/// let mut out = Vec::new();
/// let _ = store.process(&mut Default::default(), b"set k 7 0 2\r\nhi\r\n", &mut out);
/// let item = store.get(b"k").expect("just stored");
/// assert_eq!((&item.value()[..], item.flags()), (&b"hi"[..], 7));
/// # Ok::<(), larder::memcached::StoreError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Item {
    value: Bytes,
    flags: u32,
    cas: u64,
}

impl Item {
    pub(crate) fn copy_of(block: &Block) -> Item {
        Item {
            value: block.value_bytes(),
            flags: block.flags(),
            cas: block.cas(),
        }
    }

    /// The value.
    pub fn value(&self) -> &Bytes {
        &self.value
    }

    /// The client flags.
    pub fn flags(&self) -> u32 {
        self.flags
    }

    /// The CAS unique.
    pub fn cas(&self) -> u64 {
        self.cas
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(key: &[u8]) -> Head<'_> {
        Head {
            key,
            flags: 0xdead_beef,
            cas: 42,
            epoch: 7,
        }
    }

    #[test]
    fn a_block_keeps_every_field() {
        let extremes = Head {
            key: &[b'k'; MAX_KEY],
            flags: u32::MAX,
            cas: u64::MAX,
            epoch: u32::MAX,
        };
        let b = Block::new(extremes, &[b"v"]);
        assert_eq!((b.key(), b.value()), (&[b'k'; MAX_KEY][..], &b"v"[..]));
        assert_eq!(
            (b.flags(), b.cas(), b.epoch()),
            (u32::MAX, u64::MAX, u32::MAX)
        );
        for len in [0, 1, 100, LARGE_FROM - 1, LARGE_FROM, 3 * LARGE_FROM] {
            let value = vec![b'x'; len];
            let b = Block::new(head(b"key"), &[&value[..len / 2], &value[len / 2..]]);
            assert_eq!(b.key(), b"key");
            assert_eq!((b.flags(), b.cas(), b.epoch()), (0xdead_beef, 42, 7));
            assert!(b.cost() >= len);
            assert_eq!(b.value(), &value[..]);
            assert_eq!(b.is_large(), len >= LARGE_FROM);
            let c = b.with_cas(9, 8);
            assert_eq!(
                (c.key(), c.cas(), c.epoch(), c.value()),
                (&b"key"[..], 9, 8, &value[..])
            );
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "ten thousand blocks, slow under Miri")]
    fn every_field_combination_round_trips_and_costs_what_block_cost_allows() {
        let keys: Vec<Vec<u8>> = [1, 2, 14, 128, MAX_KEY]
            .iter()
            .map(|&n| (0..n).map(|i| b'a' + (i % 26) as u8).collect())
            .collect();
        let flagss = [0, 1, 6, 7, 127, 128, 0xdead_beef, u32::MAX];
        let cass = [0, 1, 127, 128, 1 << 21, 1 << 34, u64::MAX];
        let epochs = [0, 1, 30, 31, 127, 128, u32::MAX];
        // Around 1,000 bytes a block is near the arena's largest class,
        // where a slot can cost more than a heap block.
        let lens = [0, 1, 100, 995, 1003, 1007, 1010, LARGE_FROM - 1, LARGE_FROM];
        for key in &keys {
            for &flags in &flagss {
                for &cas in &cass {
                    for &epoch in &epochs {
                        for &len in &lens {
                            let value: Vec<u8> = (0..len).map(|i| (i * 31) as u8).collect();
                            let head = Head {
                                key,
                                flags,
                                cas,
                                epoch,
                            };
                            let parts: Vec<&[u8]> = value.chunks(len / 5 + 1).collect();
                            let b = Block::new(head, &parts);
                            assert_eq!(b.key(), &key[..]);
                            assert_eq!((b.flags(), b.cas(), b.epoch()), (flags, cas, epoch));
                            assert_eq!(b.value(), &value[..]);
                            assert_eq!(b.is_large(), len >= LARGE_FROM);
                            assert!(b.cost() <= block_cost(key.len(), len));
                            let c = b.with_cas(cas ^ 1, epoch ^ 1);
                            assert_eq!((c.key(), c.value()), (&key[..], &value[..]));
                            assert_eq!(
                                (c.flags(), c.cas(), c.epoch()),
                                (flags, cas ^ 1, epoch ^ 1)
                            );
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn small_flags_and_epochs_cost_no_header_byte() {
        let block = |flags, epoch| {
            let head = Head {
                key: &[b'k'; 14],
                flags,
                cas: 1 << 20,
                epoch,
            };
            Block::new(head, &[&[b'v'; 100]])
        };
        // Length prefix, key length, key, field byte, a 3-byte CAS, value: a
        // 120-byte block, in a 120-byte slot (its share of the arena page,
        // 121 bytes), where a flags or epoch byte more takes a 128-byte one.
        for (flags, epoch) in [(0, 0), (6, 0), (0, 30), (2, 5)] {
            assert_eq!(
                block(flags, epoch).cost(),
                121,
                "flags {flags}, epoch {epoch}"
            );
        }
        assert_eq!(block(7, 0).cost(), 129);
        assert_eq!(block(0, 31).cost(), 129);
    }

    #[test]
    fn a_block_hashes_and_compares_as_its_key() {
        let s = ahash::RandomState::new();
        let b = Block::new(head(b"k1"), &[b"v"]);
        assert_eq!(s.hash_one(&b), s.hash_one(&b"k1"[..]));
        assert!(b == Block::new(head(b"k1"), &[b"other"]));
        assert!(b != Block::new(head(b"k2"), &[b"v"]));
    }

    #[test]
    fn an_inline_block_is_one_arena_slot_of_its_charged_size() {
        let typical = Head {
            key: &[b'k'; 14],
            flags: 0,
            cas: 1 << 34,
            epoch: 0,
        };
        let b = Block::new(typical, &[&[b'v'; 100]]);
        let Held::Bytes(bytes) = b.0.get() else {
            panic!("small values are inline")
        };
        // Key length, key, field byte, CAS, value; the varint length before.
        assert_eq!(bytes.len(), 1 + 14 + 1 + 5 + 100);
        // A 128-byte slot: 255 to a 32 KiB page, after its header.
        assert_eq!(b.cost(), 129);
        assert!(b.cost() <= block_cost(14, 100));
        assert_eq!(alloc_size(122), 144);
        assert_eq!(alloc_size(120), 128);
        // Mapped chunks, as glibc 2.36 sizes them (checked with
        // `malloc_usable_size`): 163,817 bytes take 41 pages, 163,816 take 40.
        assert_eq!(alloc_size(163_817), 167_936);
        assert_eq!(alloc_size(163_816), 163_840);
        assert_eq!(alloc_size(135_150), 139_264);
        assert_eq!(std::mem::size_of::<Block>(), 4);
        // The cache's slot for an item: handle, state word, hash, deadline,
        // policy word, link, with no padding.
        assert_eq!(std::mem::size_of::<crate::slab::Slot<Block, Meta>>(), 24);
    }
}
