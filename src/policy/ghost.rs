//! A ghost set: remembers (approximately) the hashes of entries recently evicted
//! from the probation queue, at two bytes per remembered entry.
//!
//! It is a direct-mapped table of 16-bit fingerprints: a hash picks one cell and the
//! cell holds a fingerprint of the hash. Inserting overwrites whatever the cell held,
//! so old ghosts fade at random as new ones arrive, which approximates a FIFO of the
//! table's size without storing links. False positives (another key with the same cell
//! and fingerprint) are about 1 in 65,535 and only cost a slightly wrong placement.

#![forbid(unsafe_code)]

#[derive(Debug)]
pub(crate) struct Ghost {
    cells: Vec<u16>,
    bits: u32,
}

impl Ghost {
    pub(crate) fn new() -> Self {
        Ghost {
            cells: Vec::new(),
            bits: 0,
        }
    }

    /// Makes room for about `entries` ghosts (grows only, by powers of two).
    pub(crate) fn fit(&mut self, entries: usize) {
        let want = entries.max(16).next_power_of_two();
        if want > self.cells.len() {
            // Old fingerprints are lost on growth; it happens O(log n) times.
            self.cells = vec![0; want];
            self.bits = want.trailing_zeros();
        }
    }

    #[inline]
    fn locate(&self, hash: u32) -> (usize, u16) {
        let mixed = hash.wrapping_mul(0x9E37_79B1);
        let cell = if self.bits == 0 {
            0
        } else {
            (mixed >> (32 - self.bits)) as usize
        };
        (cell, (hash as u16) | 1)
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
