//! What the store keeps per key, and what one item costs in memory.
//!
//! An [`Item`] is a shared pointer to an immutable record (value, client
//! flags, CAS unique, store sequence) plus two atomic words that reads may
//! change without the shard's write lock: the expiry (changed only under the
//! write lock, by `touch`-like commands, so that it always mirrors the cache's
//! own deadline) and the access state (last access, fetched, stale,
//! win-token-sent). Cloning an item is one reference-count increment, which is
//! what the cache's read path does under its read lock.

use std::fmt;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use bytes::Bytes;

use crate::sync::{Arc, AtomicU64};

/// The bytes one item costs beyond its key and value, counted in its weight
/// so that [`StoreConfig::memory_limit`](super::StoreConfig::memory_limit)
/// bounds the memory the store really uses.
///
/// Measured on x86-64 with a counting allocator (`tests/memcached_memory.rs`
/// checks the bound; figures per item, 100,000 small items, 8 shards; measured
/// with the earlier hashbrown index, which cost a few bytes more):
///
/// | part | bytes |
/// |---|---|
/// | the cache's slab slot for `(Bytes, Item)`: key handle 32, item pointer 8, hash, deadline, policy word, link | 56 |
/// | slab growth slack (vectors double; ~30% spare at this fill, up to 100% just after a doubling) | 17–56 |
/// | index (twelve 5-byte slots per 64-byte line at up to 85% load) and policy state (ghost fingerprints) | 7–9 |
/// | the shared item record: two counts, value handle 32, flags, CAS, sequence, expiry, state | 88 |
/// | the remainder the counting allocator sees (ghost sets, queue vectors) | ~60 |
/// | allocator headers and 16-byte rounding of the three heap blocks (key, record, value) | ~50 |
///
/// The allocator counted 231 bytes per item beyond key and value; with
/// headers and the growth peaks the worst case is about 310, so the constant
/// is 320. memcached's own header is 48–56 bytes plus slab-class rounding: a
/// small item costs more here, a large one about the same. Most of the
/// difference is the shared record, which exists because the cache hands
/// values out by clone; a read-locked visitor in the core (see the crate's
/// notes) would let the record live inline in the slot.
pub const ITEM_OVERHEAD: u32 = 320;

/// Low 32 bits of the state: second of the last access, counted from the
/// store's start.
const ACCESS_MASK: u64 = u32::MAX as u64;
/// Fetched since it was stored.
pub(crate) const FETCHED: u64 = 1 << 32;
/// Marked stale by `md … I` (or stored stale by `ms … I`).
pub(crate) const STALE: u64 = 1 << 33;
/// A win token (`W`) was handed out for this item.
pub(crate) const TOKEN_SENT: u64 = 1 << 34;

struct Record {
    value: Bytes,
    flags: u32,
    cas: u64,
    /// Global store sequence, for `flush_all` (items older than the flush
    /// point are invalid). Separate from `cas`, which clients may choose.
    seq: u64,
    /// Expiry on the store's clock in milliseconds; 0 = never.
    expires_at: AtomicU64,
    /// Last access (low 32 bits) and the flag bits above.
    state: AtomicU64,
}

/// One stored item: a value with its client flags and CAS unique.
///
/// Items are cheap to clone (a reference count) and immutable except for
/// access bookkeeping; every change to a key stores a new item.
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
#[derive(Clone)]
pub struct Item(Arc<Record>);

impl Item {
    pub(crate) fn new(
        value: Bytes,
        flags: u32,
        cas: u64,
        seq: u64,
        expires_at: u64,
        state: u64,
    ) -> Item {
        Item(Arc::new(Record {
            value,
            flags,
            cas,
            seq,
            expires_at: AtomicU64::new(expires_at),
            state: AtomicU64::new(state),
        }))
    }

    /// The value.
    pub fn value(&self) -> &Bytes {
        &self.0.value
    }

    /// The client flags.
    pub fn flags(&self) -> u32 {
        self.0.flags
    }

    /// The CAS unique.
    pub fn cas(&self) -> u64 {
        self.0.cas
    }

    pub(crate) fn seq(&self) -> u64 {
        self.0.seq
    }

    pub(crate) fn expires_at(&self) -> u64 {
        self.0.expires_at.load(Relaxed)
    }

    /// Only under the shard's write lock, together with the cache's deadline.
    pub(crate) fn set_expires_at(&self, at: u64) {
        self.0.expires_at.store(at, Relaxed);
    }

    pub(crate) fn state(&self) -> u64 {
        self.0.state.load(Acquire)
    }

    /// Flag bits that a successor of this item inherits when it replaces it
    /// in place (stale value kept stale).
    pub(crate) fn sticky_bits(&self) -> u64 {
        self.state() & (STALE | TOKEN_SENT)
    }

    /// Records a fetch at second `now`; returns the state before it.
    ///
    /// A plain compare-and-swap that gives up when it races: a lost update of
    /// the access time is harmless, while a blind store could erase a win
    /// token set by another reader.
    pub(crate) fn record_fetch(&self, now: u32) -> u64 {
        let old = self.state();
        let new = (old & !ACCESS_MASK) | FETCHED | u64::from(now);
        if new != old {
            let _ = self.0.state.compare_exchange(old, new, AcqRel, Relaxed);
        }
        old
    }

    /// Claims the win token; `true` for exactly one caller per item.
    pub(crate) fn claim_token(&self) -> bool {
        self.0.state.fetch_or(TOKEN_SENT, AcqRel) & TOKEN_SENT == 0
    }

    /// The second of the last access, from a state word.
    pub(crate) fn last_access(state: u64) -> u32 {
        (state & ACCESS_MASK) as u32
    }
}

impl fmt::Debug for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Item")
            .field("len", &self.0.value.len())
            .field("flags", &self.0.flags)
            .field("cas", &self.0.cas)
            .finish_non_exhaustive()
    }
}
