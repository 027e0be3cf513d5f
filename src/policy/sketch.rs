//! A frequency sketch: approximate, aging access counts per key hash, for the
//! frequency-admission placement (TinyLFU, Einziger, Friedman and Manes, ACM ToS
//! 2017).
//!
//! A count-min sketch of 4-bit counters, [`ROWS`] rows: a key's estimate is the
//! smallest of its counters, one per row, so collisions can only overstate it.
//! Counters saturate at 15. After as many increments as [`SAMPLE`] times the
//! sketch's width every counter is halved, so the counts follow what is popular
//! lately, not forever.
//!
//! The sketch is written only under the shard's write lock: on a miss (the key
//! is stored) and when the policy folds an entry's access counter into it (when
//! the entry leaves probation or the main queue's hand passes it). Hits never
//! touch it; they bump the entry's own 2-bit counter as with every CLOCK-family
//! placement.

#![forbid(unsafe_code)]

/// Rows of counters; a key has one counter in each.
const ROWS: usize = 4;

/// Counters per u64 word.
const PER_WORD: usize = 16;

/// Counters per row for each entry the shard holds: with [`ROWS`] rows, 8 counters
/// (4 bytes) per entry. Caffeine's sketch has 16 per entry; on the shared traces,
/// with the frequency placement forced, 16 scored 0.12 points higher on average
/// than 8, and 4 about 0.6 lower, mostly on the frequency family.
const WIDTH_PER_ENTRY: usize = 2;

/// A shard of up to this many entries gets its sketch at full size at once.
const EAGER_ENTRIES: usize = 1 << 16;

/// The most entries a sketch is sized for (then 2^27 counters a row: the
/// multiply-shift in `cell` stays within 64 bits).
const MAX_ENTRIES: usize = 1 << 26;

/// The counters are halved after this many increments per entry the sketch is
/// sized for (TinyLFU's sample of 10 times the cache's size, as in Caffeine).
const SAMPLE_PER_ENTRY: u64 = 10;

/// Odd multipliers that spread a 32-bit hash over each row (any odd constants with
/// well-mixed bits do).
const SEEDS: [u64; ROWS] = [
    0x9E37_79B9_7F4A_7C15,
    0xC2B2_AE3D_27D4_EB4F,
    0x1656_67B1_9E37_79F9,
    0xD6E8_FEB8_6659_FD93,
];

#[derive(Debug, Default)]
pub(crate) struct Sketch {
    /// `ROWS` rows of `width` counters each, 16 to a word.
    words: Vec<u64>,
    /// Counters per row (a multiple of 16); 0 while unallocated.
    width: usize,
    /// Entries the sketch is sized for.
    entries: usize,
    /// Increments since the last halving.
    added: u64,
}

impl Sketch {
    pub(crate) fn new() -> Self {
        Sketch::default()
    }

    /// Sizes the sketch for a shard holding `live` entries out of at most `hint`
    /// (`usize::MAX`: bounded by weight, not known). A shard of up to
    /// [`EAGER_ENTRIES`] is sized for its hint at once; a larger one for twice
    /// what it holds, up to the hint, and one bounded by weight for what it
    /// holds, growing by half each time, so a capacity nothing fills
    /// (`max_entries(u64::MAX)`) allocates nothing up front. The counts are lost
    /// when it grows, O(log n) times while a shard fills. At most
    /// [`MAX_ENTRIES`].
    pub(crate) fn fit(&mut self, live: usize, hint: usize) {
        let want = if hint != usize::MAX {
            hint.min(live.saturating_mul(2).max(EAGER_ENTRIES))
        } else {
            live
        };
        let want = want.clamp(32, MAX_ENTRIES);
        if want > self.entries {
            let grown = (self.entries.saturating_mul(3) / 2).min(hint);
            let entries = want.max(grown).min(MAX_ENTRIES);
            self.entries = entries;
            self.width = entries
                .saturating_mul(WIDTH_PER_ENTRY)
                .next_multiple_of(PER_WORD);
            self.words = vec![0; ROWS * self.width / PER_WORD];
            self.added = 0;
        }
    }

    /// Sizes the sketch down to what [`fit`](Self::fit) would make for
    /// `live` entries from nothing, when that is smaller (see
    /// `Ghost::refit`). The counts are lost, as on growth.
    pub(crate) fn refit(&mut self, live: usize, hint: usize) {
        let mut fresh = Sketch::new();
        fresh.fit(live, hint);
        if fresh.entries < self.entries {
            *self = fresh;
        }
    }

    /// The counter of `hash` in `row`: (word index, shift).
    #[inline]
    fn cell(&self, hash: u32, row: usize) -> (usize, u32) {
        // Multiply-shift onto the row from the high bits of a per-row mix.
        let mixed = (u64::from(hash) ^ (u64::from(hash) << 32)).wrapping_mul(SEEDS[row]) >> 32;
        let col = ((mixed * self.width as u64) >> 32) as usize;
        let at = row * self.width + col;
        (at / PER_WORD, (at % PER_WORD) as u32 * 4)
    }

    /// The estimated count of `hash` (0 while unallocated).
    pub(crate) fn estimate(&self, hash: u32) -> u32 {
        if self.width == 0 {
            return 0;
        }
        (0..ROWS)
            .map(|row| {
                let (w, s) = self.cell(hash, row);
                ((self.words[w] >> s) & 0xF) as u32
            })
            .min()
            .unwrap_or(0)
    }

    /// Counts `n` more accesses of `hash` (nothing while unallocated).
    pub(crate) fn add(&mut self, hash: u32, n: u32) {
        if self.width == 0 || n == 0 {
            return;
        }
        for row in 0..ROWS {
            let (w, s) = self.cell(hash, row);
            let c = (self.words[w] >> s) & 0xF;
            let to = (c + u64::from(n)).min(15);
            self.words[w] = (self.words[w] & !(0xF << s)) | (to << s);
        }
        self.added += u64::from(n);
        if self.added >= SAMPLE_PER_ENTRY * self.entries as u64 {
            self.halve();
        }
    }

    /// Halves every counter.
    fn halve(&mut self) {
        self.added /= 2;
        for w in &mut self.words {
            *w = (*w >> 1) & 0x7777_7777_7777_7777;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.words.iter_mut().for_each(|w| *w = 0);
        self.added = 0;
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }
}

#[cfg(all(test, not(larder_loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_at_fifteen() {
        let mut s = Sketch::new();
        s.fit(0, 64);
        s.add(7, 3);
        assert_eq!(s.estimate(7), 3);
        s.add(7, 20);
        assert_eq!(s.estimate(7), 15);
        assert_eq!(s.estimate(8), 0);
    }

    #[test]
    fn counts_halve_after_ten_increments_per_entry() {
        let mut s = Sketch::new();
        s.fit(0, 64);
        s.add(7, 12);
        // 640 increments in all: the last one halves every counter.
        for _ in 0..640 - 12 - 1 {
            s.add(8, 1);
        }
        assert_eq!(s.estimate(7), 12);
        s.add(8, 1);
        assert_eq!(s.estimate(7), 6);
        assert_eq!(s.estimate(8), 7);
    }

    #[test]
    fn a_capacity_nothing_fills_allocates_by_what_is_held() {
        for hint in [usize::MAX / 2, usize::MAX / 8, 1 << 40, 10_000_000_000] {
            let mut s = Sketch::new();
            s.fit(10, hint);
            assert_eq!(s.heap_bytes(), EAGER_ENTRIES * 4, "hint {hint}");
            s.add(7, 2);
            assert_eq!(s.estimate(7), 2);
            s.fit(1_000_000, hint);
            assert_eq!(s.heap_bytes(), 2_000_000 * 4, "hint {hint}");
            s.fit(usize::MAX / 2, hint);
            assert_eq!(s.heap_bytes(), MAX_ENTRIES * 4, "hint {hint}");
            s.add(u32::MAX, 1);
            assert_eq!(s.estimate(u32::MAX), 1);
        }
    }

    #[test]
    fn four_bytes_per_entry_and_nothing_until_sized() {
        let mut s = Sketch::new();
        s.add(7, 3);
        assert_eq!(s.estimate(7), 0);
        assert_eq!(s.heap_bytes(), 0);
        s.fit(10, 1_000);
        assert_eq!(s.heap_bytes(), 4_000);
        // Bounded by weight: sized by what it holds, growing by half.
        let mut s = Sketch::new();
        s.fit(1_000, usize::MAX);
        s.fit(1_001, usize::MAX);
        assert_eq!(
            s.heap_bytes(),
            6_016,
            "3,008 counters a row: a multiple of 16"
        );
    }
}
