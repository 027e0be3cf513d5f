//! A ghost set: remembers (approximately) the hashes of entries recently evicted
//! from the probation queue, at two bytes per remembered entry.
//!
//! It is a direct-mapped table of 16-bit fingerprints: a hash picks one cell and the
//! cell holds a fingerprint of the hash. Inserting overwrites whatever the cell held,
//! so old ghosts fade at random as new ones arrive, which approximates a FIFO of the
//! table's size without storing links. A false positive (another key with the same
//! cell and fingerprint) admits a new key straight to the main queue; at 1 in 65,535
//! lookups even a long scan lets almost nothing through (8-bit fingerprints let one
//! scanned key in 255 displace the working set, which a test caught).

#![forbid(unsafe_code)]

#[derive(Debug)]
pub(crate) struct Ghost {
    cells: Vec<u16>,
}

impl Ghost {
    pub(crate) fn new() -> Self {
        Ghost { cells: Vec::new() }
    }

    /// Makes room for ghosts of about 80% of `live` entries (a little under the main
    /// queue's share), or of the shard's entry capacity `hint` when known. Grows only,
    /// by half; old fingerprints are lost on growth, which happens O(log n) times.
    pub(crate) fn fit(&mut self, live: usize, hint: usize) {
        let want = if hint != usize::MAX { hint } else { live };
        let want = (want * 4 / 5).max(16);
        if want > self.cells.len() {
            let grown = if hint != usize::MAX {
                want
            } else {
                want.max(self.cells.len() * 3 / 2)
            };
            self.cells = vec![0; grown];
        }
    }

    #[inline]
    fn locate(&self, hash: u32) -> (usize, u16) {
        // Multiply-shift onto 0..len from the high bits; the fingerprint uses the low.
        let mixed = u64::from(hash.wrapping_mul(0x9E37_79B1));
        let cell = ((mixed * self.cells.len() as u64) >> 32) as usize;
        (cell, (hash as u16).max(1))
    }

    pub(crate) fn insert(&mut self, hash: u32) {
        if self.cells.is_empty() {
            return;
        }
        let (cell, fp) = self.locate(hash);
        self.cells[cell] = fp;
    }

    /// Whether `hash` is remembered; forgets it if so.
    pub(crate) fn take(&mut self, hash: u32) -> bool {
        if self.cells.is_empty() {
            return false;
        }
        let (cell, fp) = self.locate(hash);
        if self.cells[cell] == fp {
            self.cells[cell] = 0;
            true
        } else {
            false
        }
    }

    pub(crate) fn clear(&mut self) {
        self.cells.iter_mut().for_each(|c| *c = 0);
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.cells.capacity() * 2
    }
}
