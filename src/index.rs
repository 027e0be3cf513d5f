//! The index of one shard: a hash table from a key's 32-bit hash to the slab slot
//! holding the entry, in the style of folly's F14 tables.
//!
//! Slots are grouped twelve to a 64-byte cache line: twelve one-byte tags (the high bit
//! marks a used slot, the low seven bits come from the hash), an overflow counter,
//! and twelve `u32` slot indices. A lookup reads one line in the common case: it
//! compares the tags of the key's home group in one go, checks the candidates, and
//! moves to the next group only if the home group's overflow counter says some entry
//! whose home it is was placed further on. Removal clears the slot and decrements the
//! counters along the removed entry's probe path, so there are no tombstones.
//!
//! Compared with `hashbrown::HashTable<u32>` this saves one cache miss per lookup (tags
//! and indices share a line) and memory: the group count need not be a power of two
//! (the home group is picked by multiply-shift), so the table is sized to the shard's
//! capacity at up to 85% load instead of doubling — about 6.3 bytes per entry.

#![forbid(unsafe_code)]

const WIDTH: usize = 12;
/// Maximum load: `LOAD_NUM / LOAD_DEN` (85%). At 90% the displacement left behind
/// by deletions forced a rebuild every few hundred operations under churn; at 85% it
/// is one per ~20n operations, at about 6.3 bytes per entry.
const LOAD_NUM: usize = 17;
const LOAD_DEN: usize = 20;
const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Group {
    tags: [u8; WIDTH],
    /// Entries whose probe passed this group (saturating: 255 means "unknown, many").
    overflow: u8,
    _pad: [u8; 3],
    slots: [u32; WIDTH],
}

const EMPTY: Group = Group {
    tags: [0; WIDTH],
    overflow: 0,
    _pad: [0; 3],
    slots: [0; WIDTH],
};

impl Group {
    /// A bit mask (bit `i` set: slot `i` may hold `tag`). May have false positives,
    /// never false negatives; callers confirm.
    #[inline]
    fn candidates(&self, tag: u8) -> u32 {
        let t = &self.tags;
        let lo = u64::from_le_bytes([t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7]]);
        let hi = u64::from(u32::from_le_bytes([t[8], t[9], t[10], t[11]]));
        let pattern = LOW_BITS * u64::from(tag);
        byte_mask(zero_bytes(lo ^ pattern)) | (byte_mask(zero_bytes(hi ^ pattern)) & 0xF) << 8
    }

    #[inline]
    fn first_free(&self) -> Option<usize> {
        self.tags.iter().position(|&t| t == 0)
    }
}

/// High bit set in each byte of `x` that may be zero (exact for the lowest zero byte).
#[inline]
fn zero_bytes(x: u64) -> u64 {
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// Packs the high bits of each byte into the low 8 bits.
#[inline]
fn byte_mask(x: u64) -> u32 {
    ((x >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56) as u32
}

#[inline]
fn tag_of(hash: u32) -> u8 {
    0x80 | (hash as u8 & 0x7F)
}

pub(crate) struct Index {
    groups: Vec<Group>,
    len: usize,
    /// Sum over the entries of how many groups each sits past its home. Deletions
    /// never move entries back, so under churn this creeps up; when it passes
    /// `settled + len` (`settled`: what a fresh build of the same entries had) the
    /// table is rebuilt in place. Amortised O(1): the creep takes many operations, and
    /// measuring against `settled` keeps colliding hashes from rebuilding every time.
    displaced: usize,
    settled: usize,
    /// In-place rebuilds so far (for tests).
    rebuilds: usize,
}

impl Index {
    pub(crate) const fn new() -> Self {
        Index {
            groups: Vec::new(),
            len: 0,
            displaced: 0,
            settled: 0,
            rebuilds: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    #[inline]
    fn home(&self, hash: u32) -> usize {
        // Multiply-shift onto 0..groups; the tag uses the low bits, this the high ones.
        let mixed = hash.wrapping_mul(0x9E37_79B9) as u64;
        ((mixed * self.groups.len() as u64) >> 32) as usize
    }

    #[inline]
    fn next(&self, g: usize) -> usize {
        if g + 1 == self.groups.len() {
            0
        } else {
            g + 1
        }
    }

    /// The slot index stored for `hash` for which `eq` holds.
    #[inline]
    pub(crate) fn find(&self, hash: u32, mut eq: impl FnMut(u32) -> bool) -> Option<u32> {
        if self.groups.is_empty() {
            return None;
        }
        let tag = tag_of(hash);
        let mut g = self.home(hash);
        for _ in 0..self.groups.len() {
            let group = &self.groups[g];
            let mut m = group.candidates(tag);
            while m != 0 {
                let i = m.trailing_zeros() as usize;
                m &= m - 1;
                if group.tags[i] == tag && eq(group.slots[i]) {
                    return Some(group.slots[i]);
                }
            }
            if group.overflow == 0 {
                return None;
            }
            g = self.next(g);
        }
        None
    }

    /// Adds `slot` under `hash` (the caller knows the key is absent). `hash_of` gives
    /// the stored hash of any slot already indexed, for growing. `want` is a hint of
    /// how many entries the table should be able to hold (used when growing).
    pub(crate) fn insert(
        &mut self,
        hash: u32,
        slot: u32,
        want: usize,
        hash_of: impl Fn(u32) -> u32,
    ) {
        let slots = self.groups.len() * WIDTH;
        if (self.len + 1) * LOAD_DEN > slots * LOAD_NUM {
            // Double while small, then grow by a quarter: geometric either way, so
            // every entry is moved a bounded number of times however large the shard
            // gets (a rebuild moves the whole table, so growing by a fixed step made
            // filling a 10M-item store quadratic: 17 s, and 10 s with this). Never
            // past the expected size when that is known and enough: a full
            // entries-bounded shard then holds its index at the maximum load.
            let step = if self.len < 1 << 16 {
                self.len
            } else {
                self.len / 4
            };
            let mut grown = (self.len + step).max(16);
            if want > self.len {
                grown = grown.min(want);
            }
            self.resize(grown.max(self.len + 1), &hash_of);
        } else if self.displaced > self.settled + self.len + 64 {
            self.rebuilds += 1;
            self.resize(slots * LOAD_NUM / LOAD_DEN, &hash_of);
        }
        self.place(hash, slot);
        self.len += 1;
    }

    fn place(&mut self, hash: u32, slot: u32) {
        let tag = tag_of(hash);
        let mut g = self.home(hash);
        loop {
            if let Some(i) = self.groups[g].first_free() {
                let group = &mut self.groups[g];
                group.tags[i] = tag;
                group.slots[i] = slot;
                return;
            }
            let group = &mut self.groups[g];
            group.overflow = group.overflow.saturating_add(1);
            self.displaced += 1;
            g = self.next(g);
        }
    }

    /// Reads the first byte of `hash`'s home group and returns it: a batch of
    /// these, issued back to back, brings the groups of many coming inserts
    /// into cache with their misses overlapped (safe code has no prefetch).
    #[inline]
    pub(crate) fn touch(&self, hash: u32) -> u8 {
        match self.groups.is_empty() {
            true => 0,
            false => self.groups[self.home(hash)].tags[0],
        }
    }

    /// Makes room for `entries` at the maximum load in one rebuild, if there is
    /// less (a snapshot restore that knows its size skips the step-wise growth).
    pub(crate) fn reserve(&mut self, entries: usize, hash_of: impl Fn(u32) -> u32) {
        if entries * LOAD_DEN > self.groups.len() * WIDTH * LOAD_NUM {
            self.resize(entries.max(self.len), &hash_of);
        }
    }

    /// Rebuilds the table with room for `entries` at the maximum load.
    fn resize(&mut self, entries: usize, hash_of: &impl Fn(u32) -> u32) {
        let groups = (entries * LOAD_DEN).div_ceil(WIDTH * LOAD_NUM).max(1);
        let old = std::mem::replace(&mut self.groups, vec![EMPTY; groups]);
        self.displaced = 0;
        for group in &old {
            for i in 0..WIDTH {
                if group.tags[i] != 0 {
                    let slot = group.slots[i];
                    self.place(hash_of(slot), slot);
                }
            }
        }
        self.settled = self.displaced;
    }

    /// Removes `slot`, stored under `hash`. Returns whether it was there.
    pub(crate) fn remove(&mut self, hash: u32, slot: u32) -> bool {
        if self.groups.is_empty() {
            return false;
        }
        let tag = tag_of(hash);
        let home = self.home(hash);
        let mut g = home;
        for _ in 0..self.groups.len() {
            let group = &mut self.groups[g];
            let hit = (0..WIDTH).find(|&i| group.tags[i] == tag && group.slots[i] == slot);
            if let Some(i) = hit {
                group.tags[i] = 0;
                self.len -= 1;
                // Undo the overflow marks this entry left on the groups it passed.
                let mut p = home;
                while p != g {
                    let pg = &mut self.groups[p];
                    if pg.overflow != u8::MAX {
                        pg.overflow -= 1;
                    }
                    self.displaced -= 1;
                    p = self.next(p);
                }
                return true;
            }
            if group.overflow == 0 {
                return false;
            }
            g = self.next(g);
        }
        false
    }

    pub(crate) fn clear(&mut self) {
        self.groups = Vec::new();
        self.len = 0;
        self.displaced = 0;
        self.settled = 0;
    }

    /// Every stored slot index.
    pub(crate) fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        self.groups.iter().flat_map(|g| {
            (0..WIDTH)
                .filter(move |&i| g.tags[i] != 0)
                .map(move |i| g.slots[i])
        })
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<Group>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hash(i: u32) -> u32 {
        i.wrapping_mul(0x85EB_CA6B).rotate_left(13) ^ 0x5bd1_e995
    }

    #[test]
    fn group_is_one_cache_line() {
        assert_eq!(std::mem::size_of::<Group>(), 64);
        assert_eq!(std::mem::align_of::<Group>(), 64);
    }

    #[test]
    fn candidates_never_miss_a_tag() {
        let mut g = EMPTY;
        for (i, t) in [
            0x80u8, 0x81, 0xFF, 0x80, 0, 0x90, 0x80, 0x81, 0xAA, 0x80, 0, 0x80,
        ]
        .iter()
        .enumerate()
        {
            g.tags[i] = *t;
        }
        for tag in 0x80..=0xFFu8 {
            let m = g.candidates(tag);
            for i in 0..WIDTH {
                if g.tags[i] == tag {
                    assert!(m & (1 << i) != 0, "tag {tag:#x} slot {i}");
                }
            }
            assert_eq!(m >> WIDTH, 0);
        }
    }

    #[test]
    fn insert_find_remove_with_heavy_collisions() {
        let mut idx = Index::new();
        // Few distinct hashes force long overflow chains.
        let h = |s: u32| hash(s % 7);
        for s in 0..2_000u32 {
            idx.insert(h(s), s, 0, h);
            assert_eq!(idx.find(h(s), |x| x == s), Some(s));
        }
        for s in (0..2_000u32).step_by(3) {
            assert!(idx.remove(h(s), s));
            assert!(!idx.remove(h(s), s));
        }
        for s in 0..2_000u32 {
            let want = if s % 3 == 0 { None } else { Some(s) };
            assert_eq!(idx.find(h(s), |x| x == s), want);
        }
        assert_eq!(idx.len(), 2_000 - 667);
        assert_eq!(idx.slots().count(), idx.len());
    }

    #[test]
    fn churn_keeps_lookups_exact_and_memory_flat() {
        let mut idx = Index::new();
        let mut live = std::collections::HashSet::new();
        for s in 0..1_000u32 {
            idx.insert(hash(s), s, 1_000, hash);
            live.insert(s);
        }
        let bytes = idx.heap_bytes();
        for s in 1_000..50_000u32 {
            let gone = s - 1_000;
            assert!(idx.remove(hash(gone), gone));
            live.remove(&gone);
            idx.insert(hash(s), s, 1_000, hash);
            live.insert(s);
        }
        assert_eq!(idx.heap_bytes(), bytes);
        for s in 48_000..50_000u32 {
            assert_eq!(idx.find(hash(s), |x| x == s).is_some(), live.contains(&s));
        }
        // Overflow counters are back to what the live entries need.
        let mut fresh = Index::new();
        for &s in &live {
            fresh.insert(hash(s), s, 1_000, hash);
        }
        let total = |i: &Index| i.groups.iter().map(|g| u32::from(g.overflow)).sum::<u32>();
        assert_eq!(total(&idx) as usize, idx.displaced);
        assert!(
            idx.displaced <= idx.len() + 64,
            "{} displaced",
            idx.displaced
        );
        // Rebuilds are rare: at most one per ten thousand operations here.
        assert!(idx.rebuilds <= 10, "{} rebuilds", idx.rebuilds);
    }

    #[test]
    fn sized_by_hint_at_the_maximum_load() {
        let mut idx = Index::new();
        for s in 0..125_000u32 {
            idx.insert(hash(s), s, 125_000, hash);
        }
        let per_entry = idx.heap_bytes() as f64 / 125_000.0;
        assert!(per_entry < 6.4, "{per_entry} bytes per entry");
    }
}
