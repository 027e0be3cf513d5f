//! A ghost set: remembers (approximately) the hashes of entries recently evicted
//! from the probation queue, at two bytes per remembered entry.
//!
//! It is a set-associative table of 16-bit fingerprints: a hash picks a set of four
//! cells, and each set is a tiny FIFO (a new fingerprint pushes the set's oldest out).
//! That approximates one FIFO of the table's size without storing links; a
//! direct-mapped table (one cell per set) forgets too early and cost a point of hit
//! ratio on a Zipf workload. A false positive (another key with the same
//! cell and fingerprint) admits a new key straight to the main queue; at 1 in 65,535
//! lookups even a long scan lets almost nothing through (8-bit fingerprints let one
//! scanned key in 255 displace the working set, which a test caught).

#![forbid(unsafe_code)]

/// Cells per set.
const WAYS: usize = 4;

#[derive(Debug)]
pub(crate) struct Ghost {
    cells: Vec<u16>,
}

impl Ghost {
    pub(crate) fn new() -> Self {
        Ghost { cells: Vec::new() }
    }

    /// Makes room for ghosts of half as many entries as the shard holds (`live`), or
    /// as its entry capacity `hint` when known (measured on the shared traces: half
    /// the capacity beat 80%, 100% and 150% with this admission rule). Grows only,
    /// by half; old fingerprints are lost on growth, which happens O(log n) times.
    ///
    /// A known capacity is reached in doublings of the live count rather than at
    /// the first insert, so a huge capacity (`max_entries(u64::MAX)`) allocates
    /// nothing up front. Nothing is lost by it: an entry-bounded shard evicts
    /// nothing, and so remembers no ghost, until it holds `hint` entries, and by
    /// then the set has its full size.
    pub(crate) fn fit(&mut self, live: usize, hint: usize) {
        let want = if hint != usize::MAX {
            hint.min(live.max(16).saturating_mul(2))
        } else {
            live
        };
        let want = (want / 2).max(16);
        if want > self.cells.len() {
            let grown = if hint != usize::MAX {
                want
            } else {
                want.max(self.cells.len() * 3 / 2)
            };
            self.cells = vec![0; grown.next_multiple_of(WAYS)];
        }
    }

    /// Sizes the set down to what [`fit`](Self::fit) would make for `live`
    /// entries from nothing, when that is smaller: for a table that has just
    /// been rebuilt smaller (see `Slab::should_shrink`), whose set was sized
    /// for the many more entries it held before. The fingerprints are lost,
    /// as on growth.
    pub(crate) fn refit(&mut self, live: usize, hint: usize) {
        let mut fresh = Ghost::new();
        fresh.fit(live, hint);
        if fresh.cells.len() < self.cells.len() {
            *self = fresh;
        }
    }

    /// The first cell of the hash's set of `WAYS` cells, and its fingerprint.
    #[inline]
    fn locate(&self, hash: u32) -> (usize, u16) {
        // Multiply-shift onto the sets from the high bits; the fingerprint uses the low.
        let sets = (self.cells.len() / WAYS) as u64;
        let mixed = u64::from(hash.wrapping_mul(0x9E37_79B1));
        let set = ((mixed * sets) >> 32) as usize;
        (set * WAYS, (hash as u16).max(1))
    }

    pub(crate) fn insert(&mut self, hash: u32) {
        if self.cells.is_empty() {
            return;
        }
        let (at, fp) = self.locate(hash);
        // Each set is a tiny FIFO: the oldest fingerprint falls out of the front.
        let set = &mut self.cells[at..at + WAYS];
        set.copy_within(1.., 0);
        set[WAYS - 1] = fp;
    }

    /// Whether `hash` is remembered; forgets it if so.
    pub(crate) fn take(&mut self, hash: u32) -> bool {
        if self.cells.is_empty() {
            return false;
        }
        let (at, fp) = self.locate(hash);
        let set = &mut self.cells[at..at + WAYS];
        match set.iter().position(|&c| c == fp) {
            Some(i) => {
                set[i] = 0;
                true
            }
            None => false,
        }
    }

    pub(crate) fn clear(&mut self) {
        self.cells.iter_mut().for_each(|c| *c = 0);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.cells.capacity() * 2
    }
}
