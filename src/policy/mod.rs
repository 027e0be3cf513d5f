//! Eviction policies.
//!
//! A policy is chosen at build time with an opaque constructor ([`Policy::clock`],
//! [`Policy::lru`], [`Policy::s3fifo`], or the default) and lives per shard as a
//! [`PolicyState`]. Every policy works on slab indices only; none of them calls user
//! code. The CLOCK family (clock, s3fifo) learns from a 2-bit access counter in each
//! entry that hits bump under the shard's *read* lock; exact LRU has to move a list
//! node on every hit and so takes the write lock.

#![forbid(unsafe_code)]

mod ghost;
mod lru;
mod queue;
pub(crate) mod shadow;
mod sketch;
pub(crate) mod table;

use crate::slab::Slab;
use ghost::Ghost;
use lru::Lru;
use queue::Queue;
use sketch::Sketch;
use std::fmt;

/// An eviction policy, chosen with [`CacheBuilder::policy`](crate::CacheBuilder::policy).
///
/// | policy | hit path | strength |
/// |---|---|---|
/// | [`Policy::adaptive`] (default) | read lock, one relaxed store | picks, from measurement, scan resistance or recency |
/// | [`Policy::s3fifo`] | read lock, one relaxed store | scan- and loop-resistant, frequency-aware |
/// | [`Policy::clock`] | read lock, one relaxed store | second-chance CLOCK: close to LRU, cheaper |
/// | [`Policy::lru`] | **write lock** (list move) | exact least-recently-used order per shard |
///
/// ```
/// use larder::{Cache, Policy};
/// let cache: Cache<u32, u32> = Cache::builder().max_entries(100).policy(Policy::lru()).build()?;
/// # Ok::<(), larder::BuildError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Policy {
    pub(crate) kind: PolicyKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PolicyKind {
    Clock,
    Lru,
    S3Fifo,
    Adaptive,
}

impl Policy {
    /// Second-chance CLOCK: a FIFO where an entry hit since its last pass gets one more
    /// round instead of being evicted.
    pub fn clock() -> Policy {
        Policy {
            kind: PolicyKind::Clock,
        }
    }

    /// Exact LRU within each shard. Every hit takes the shard's write lock to move the
    /// entry, so reads scale worse than with the CLOCK-family policies.
    pub fn lru() -> Policy {
        Policy {
            kind: PolicyKind::Lru,
        }
    }

    /// S3-FIFO-style: new entries wait in a probation FIFO; those hit while there move
    /// to the main queue, a CLOCK with 2-bit counters; those not hit are evicted and
    /// remembered in a ghost set, so that if they come back soon they go straight to
    /// the main queue. New entries displace probation entries, and main-queue
    /// entries only slowly: the main queue (97% of the weight) loses entries when
    /// promotions push it past its share, and otherwise its hand moves one entry per
    /// 64 evictions, so that entries not hit for that long drain away. One-hit
    /// wonders and scans pass through probation without displacing the working set.
    /// While the main queue has room (warm-up, or after removals) and a new entry
    /// gets in without evicting another, it enters the main queue directly; one
    /// that displaced another waits in probation like the rest.
    ///
    /// Where entries differ in weight (a [`weigher`](crate::CacheBuilder::weigher)),
    /// an entry of at most half its shard's mean weight gets one more turn in
    /// either queue before it can be evicted (but under the default policy's
    /// frequency admission, where the sketch decides), as if it had been hit once:
    /// evicting one heavy entry makes room for several light ones, so for the
    /// same evidence of use a light entry is the cheaper one to keep (the
    /// reasoning of size-aware policies such as GDSF), and at half the mean its
    /// doubled stay costs no more room than an average entry's one turn. With every entry of one weight (the default
    /// weigher) nothing changes. On the shared traces with memcached-like sizes
    /// given to their keys (`examples/sized_hit_ratio.rs`, 42 rows) it raised the
    /// mean object hit ratio by 2.4 to 3.5 points under the default policy and 3.0
    /// to 3.5 under this one, whether popular keys were large, small or neither;
    /// the byte hit ratio moved -0.01 to +0.9 points (default) and -0.4 to -1.6
    /// (this one).
    pub fn s3fifo() -> Policy {
        Policy {
            kind: PolicyKind::S3Fifo,
        }
    }

    /// The default: [`Policy::s3fifo`] with one setting that the cache chooses by
    /// measuring, per cache and over time, among five placements of new entries:
    /// probation first with a main queue of 97% (scan- and loop-resistant: the
    /// `s3fifo` policy), the same with a probation of a few units and admission to
    /// the main queue (from probation or the ghost set) only over a cold main entry
    /// (loops and sweeps longer than the cache, where keeping one set beats churning
    /// it), straight into the
    /// main queue (a CLOCK: wins when most keys are re-read soon after first use), or
    /// probation first with a main queue of 3% (a long FIFO: wins when keys are read
    /// about twice, close together, and never again), or probation first with
    /// TinyLFU admission to the main queue (a key leaving probation displaces the
    /// main queue's next victim only if a frequency sketch counts it more often:
    /// wins when popularity lasts longer than the main queue's turn, as on block
    /// I/O traces). The sketch (4-bit counters, about 4 bytes per entry) exists
    /// only in a shard that has used that placement; hits never write it.
    ///
    /// To choose, the cache replays a hash-sampled subset of its keys (at most about
    /// 1,024 entries' worth, whatever the cache's size) through five small shadow
    /// caches, one per placement, and after every two shadow-fulls of lookups moves
    /// to the placement whose shadow has hit most lately, if by more than one lookup
    /// in 32. A new cache starts in the guarded placement, which changes what the
    /// cache holds only on evidence, and makes its first decision after two such
    /// periods. Sampled lookups and inserts are replayed through the five shadows
    /// (each thread queues its own and replays them 32 at a time under the shadows'
    /// mutex, so a thread's last few wait for its next ones); the others pay a
    /// multiply and a compare. In a cache of 1,024 entries
    /// or fewer every key is sampled, so every read also does a lookup in each
    /// shadow: such a cache reads about a quarter as fast as under
    /// [`Policy::clock`] (15 against 57 million reads a second on one thread in
    /// `examples/read_probe.rs`), and a cache of 8,192 entries, which samples
    /// one key in 8, about two thirds. Prefer [`Policy::s3fifo`] or
    /// [`Policy::clock`] for a small cache on a hot path.
    ///
    /// ```
    /// use larder::{Cache, Policy};
    /// let cache: Cache<u64, u64> = Cache::builder().max_entries(10_000).policy(Policy::adaptive()).build()?;
    /// # Ok::<(), larder::BuildError>(())
    /// ```
    pub fn adaptive() -> Policy {
        Policy {
            kind: PolicyKind::Adaptive,
        }
    }

    /// Whether hits need the write lock.
    pub(crate) fn exclusive_hits(&self) -> bool {
        self.kind == PolicyKind::Lru
    }
}

impl Default for Policy {
    /// The default policy: currently [`Policy::adaptive`].
    fn default() -> Self {
        Policy::adaptive()
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.kind {
            PolicyKind::Clock => "clock",
            PolicyKind::Lru => "lru",
            PolicyKind::S3Fifo => "s3fifo",
            PolicyKind::Adaptive => "adaptive",
        };
        write!(f, "Policy::{name}")
    }
}

/// In probation.
const SMALL: u32 = 0;
/// In the main queue, and passed by its hand at least once.
const MAIN: u32 = 1;
/// In the main queue, not yet passed by its hand.
const MAIN_NEW: u32 = 2;
/// In probation, and sent round it once more for being light (see
/// [`S3Fifo::light`]).
const SMALL_PASSED: u32 = 3;

/// Whether a queue tag names probation.
#[inline]
fn in_probation(queue: u32) -> bool {
    queue == SMALL || queue == SMALL_PASSED
}

/// Where an S3-FIFO shard puts new entries, and how it splits its weight; the
/// adaptive policy switches between these (see `shadow`), the others keep `Narrow`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Placement {
    /// Probation first, main queue 97% of the weight: scan- and loop-resistant.
    Narrow,
    /// Straight to the main queue: a CLOCK, for keys re-read soon after first use.
    Recency,
    /// Probation first, main queue 3%: a long FIFO in which a key re-read once is
    /// not kept for a whole turn, as CLOCK (and LRU) would keep it.
    Wide,
    /// Probation of a few units (see [`guarded_probation`]), and a returning ghost or
    /// a key hit in probation enters the main queue only when the main queue has
    /// room or its next victim is cold: passed by the hand at least once and not hit
    /// since. For loops and sweeps longer than the cache, where every admission
    /// would displace another key that is as sure to be hit.
    Guarded,
    /// Probation first, main queue 97%, and a key leaving probation enters the
    /// main queue only if a frequency sketch (see `sketch`) counts it more often
    /// than the main queue's next victim: TinyLFU admission.
    Frequency,
}

impl Placement {
    pub(crate) const ALL: [Placement; 5] = [
        Placement::Narrow,
        Placement::Recency,
        Placement::Wide,
        Placement::Guarded,
        Placement::Frequency,
    ];

    /// This placement's position in [`Placement::ALL`] (declaration order).
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

/// One shard's policy state.
#[derive(Debug)]
pub(crate) enum PolicyState {
    Clock(Queue),
    Lru(Lru),
    S3Fifo(S3Fifo),
}

#[derive(Debug)]
pub(crate) struct S3Fifo {
    small: Queue,
    main: Queue,
    ghost: Ghost,
    /// The main queue's share of the weight (97%; 3% when `Placement::Wide`, all but
    /// [`guarded_probation`] units when `Placement::Guarded`);
    /// probation has the rest, and more while the main queue is below its share.
    main_cap: u64,
    narrow_cap: u64,
    wide_cap: u64,
    guarded_cap: u64,
    /// The guarded placement's probation units ([`guarded_probation`]).
    guard: u64,
    /// The placement `main_cap` was set for.
    placement: Placement,
    /// New entries skip probation (`Placement::Recency`).
    recency: bool,
    /// Ghost returns and probation hits must find a cold main victim, or room
    /// (`Placement::Guarded`).
    guarded: bool,
    /// Admission by the sketch's counts (`Placement::Frequency`).
    frequency: bool,
    /// Access counts, allocated the first time the frequency placement is set and
    /// kept counting from then on.
    sketch: Sketch,
    small_weight: u64,
    main_weight: u64,
    /// The shard's capacity in entries, if bounded by entries (else `usize::MAX`).
    entries_hint: usize,
    /// Probation evictions since the main queue's hand last moved.
    ticks: u32,
    /// The insert under way evicted a live entry to make room (set from
    /// [`PolicyState::before_insert`] on), other than by the aging move
    /// ([`AGE_EVERY`]). A new entry then starts in probation even if
    /// the main queue has room for it: room in the main queue is for a cache
    /// that is filling, and a key that had to displace another to get in
    /// competes in probation like any other new key. Where every entry weighs
    /// one unit this changes next to nothing (an eviction frees one unit and
    /// the main queue stays full; on the shared traces s3fifo's hits are
    /// unchanged and the default's moved by at most 0.14 points on 4 rows of
    /// 42). Where weights differ, probation's share can be lighter than the
    /// next entry, so room for it comes out of the main queue; taking that
    /// room made the main queue a FIFO of keys read once (measured with
    /// sizes, `examples/sized_hit_ratio`: the default policy's loop at 500
    /// hit none of its lookups, and 65% with this rule). The aging move puts
    /// a stale main entry in place of the probation victim, and the new key
    /// may take its room, as it did before this rule.
    displaced: bool,
}

/// Every this many probation evictions, the main queue's hand moves one entry (see
/// `S3Fifo::main_hand`). Without it the main queue, which new entries never
/// displace, kept entries that had gone cold forever once promotions stopped (after a
/// phase change, or on a loop longer than the ghost's memory). Measured on the shared
/// traces (s3fifo / default): every 64 evictions lifts P6 (a workstation trace with
/// phases) by 2.4 / 0.7 points at 8,192 entries and 1.8 / 0.3 at 32,768, and costs
/// about a point on cs at 800 (a loop); every 32 gains a little more on P6 but costs
/// the default a point on zigzag, and every 1 to 8 costs the loops up to 28 points
/// (hot loop entries, hit once per pass, are aged faster than they are hit).
const AGE_EVERY: u32 = 64;

/// The fewest weight units the narrow placement's probation queue keeps (unless the
/// shard is smaller). Promotion asks whether a key is read again while in probation;
/// in a queue of one to three entries that means within one to three insertions,
/// which the order of a few concurrent callers decides. Measured with two threads
/// taking the requests of cs (100 entries, probation 3) round-robin: 0.63 points
/// under one thread with no floor, 0.18 with 4, 0.01 with 8; but 8 costs
/// single-threaded cs 0.28 and swim 0.4. The guarded placement splits this floor
/// over the shards (see [`guarded_probation`]).
const MIN_PROBATION: u64 = 4;

/// The guarded placement's probation queue, in weight units, in a cache of `shards`
/// shards: [`MIN_PROBATION`] units split over the shards, at least one.
///
/// The placement exists for loops and sweeps over more keys than the cache holds,
/// where every key is read as often as every other and any fixed set of keys hits as
/// well as any other: the best a policy can do is keep one set and not churn it. So
/// a key the ghost set remembers enters the main queue only over a cold main entry,
/// and so does a key hit while in probation (a sweep that turns re-reads the keys at
/// the turn within a few requests, and promoting them churned the main queue: 4
/// units without this guard cost zigzag at 1500 12 points). Probation entries are
/// never hit on a loop, so each unit of probation costs a loop one unit of main
/// queue. The size is then set by concurrency: "hit while in probation" must not
/// hang on the order of a few concurrent requests. One unit meant "read again before
/// the next miss", and with two threads taking the requests round-robin cs at 100
/// and 800 lost 0.8 and 1.3 points and zigzag at 1500 1.0; 4 units: 0.26, 0.03 and
/// 0.03. Two threads' neighbouring requests meet in the same shard one time in
/// `shards`, so a sharded cache needs less, and gives less: 4 units in each of 8
/// shards of 62 entries cost loop at 500 2.4 points.
fn guarded_probation(shards: usize) -> u64 {
    (MIN_PROBATION / shards.max(1) as u64).max(1)
}

/// The main queue's share of `capacity` when probation keeps `probation_pct`
/// percent, and at least `min_probation` units.
fn main_share(capacity: u64, probation_pct: u64, min_probation: u64) -> u64 {
    let probation = percent(capacity, probation_pct)
        .max(min_probation)
        .min(capacity);
    capacity - probation
}

/// `pct` percent of `capacity`, rounded down, for any capacity (no overflow near
/// `u64::MAX`).
fn percent(capacity: u64, pct: u64) -> u64 {
    (u128::from(capacity) * u128::from(pct) / 100) as u64
}

/// Whether the entry in `idx` is past its deadline at `now` (relative ticks).
#[inline]
fn expired<K, V>(slab: &Slab<K, V>, idx: u32, now: u64) -> bool {
    let d = slab.entry(idx).deadline;
    d != 0 && now >= u64::from(d)
}

impl PolicyState {
    pub(crate) fn new(policy: &Policy, capacity: u64, entries_hint: usize, shards: usize) -> Self {
        match policy.kind {
            PolicyKind::Clock => PolicyState::Clock(Queue::new()),
            PolicyKind::Lru => PolicyState::Lru(Lru::new()),
            PolicyKind::S3Fifo | PolicyKind::Adaptive => {
                let narrow_cap = main_share(capacity, 3, MIN_PROBATION);
                let guard = guarded_probation(shards);
                PolicyState::S3Fifo(S3Fifo {
                    small: Queue::new(),
                    main: Queue::new(),
                    ghost: Ghost::new(),
                    main_cap: narrow_cap,
                    narrow_cap,
                    wide_cap: percent(capacity, 3),
                    guarded_cap: main_share(capacity, 0, guard),
                    guard,
                    placement: Placement::Narrow,
                    recency: false,
                    guarded: false,
                    frequency: false,
                    sketch: Sketch::new(),
                    small_weight: 0,
                    main_weight: 0,
                    entries_hint,
                    ticks: 0,
                    displaced: false,
                })
            }
        }
    }

    /// The highest value hits may push an entry's access counter to.
    pub(crate) fn max_freq(&self) -> u32 {
        match self {
            PolicyState::Clock(_) => 1,
            PolicyState::Lru(_) => 0,
            PolicyState::S3Fifo(_) => 3,
        }
    }

    /// A new capacity (and entries hint) for the shard: the queues' shares
    /// follow it. Entries stay where they are; the shard evicts any excess.
    pub(crate) fn set_capacity(&mut self, capacity: u64, entries_hint: usize) {
        if let PolicyState::S3Fifo(s) = self {
            let narrow_cap = main_share(capacity, 3, MIN_PROBATION);
            if entries_hint < s.entries_hint || narrow_cap < s.narrow_cap {
                // Shrinking: the ghost set and the sketch only ever grow, and
                // would remember keys for the old size. They start over and
                // size themselves as entries arrive.
                s.ghost = Ghost::new();
                s.sketch = Sketch::new();
            }
            s.narrow_cap = narrow_cap;
            s.wide_cap = percent(capacity, 3);
            s.guarded_cap = main_share(capacity, 0, s.guard);
            s.entries_hint = entries_hint;
            let placement = s.placement;
            self.set_placement(placement);
        }
    }

    /// Sets where new entries go (S3-FIFO only; the others ignore it).
    pub(crate) fn set_placement(&mut self, placement: Placement) {
        if let PolicyState::S3Fifo(s) = self {
            s.placement = placement;
            s.recency = placement == Placement::Recency;
            s.guarded = placement == Placement::Guarded;
            s.frequency = placement == Placement::Frequency;
            s.main_cap = match placement {
                Placement::Wide => s.wide_cap,
                Placement::Guarded => s.guarded_cap,
                _ => s.narrow_cap,
            };
        }
    }

    /// An insert is about to make room for a new entry, to be placed by
    /// `placement`: from here to [`on_insert`](Self::on_insert), evictions
    /// tell it whether the entry displaced another (see `S3Fifo::displaced`).
    pub(crate) fn before_insert(&mut self, placement: Placement) {
        self.set_placement(placement);
        if let PolicyState::S3Fifo(s) = self {
            s.displaced = false;
        }
    }

    /// The table was rebuilt smaller, for `live` entries: the structures
    /// sized by how many entries the table held shrink with it.
    pub(crate) fn on_shrink(&mut self, live: usize) {
        if let PolicyState::S3Fifo(s) = self {
            s.ghost.refit(live, s.entries_hint);
            if s.frequency {
                s.sketch.refit(live, s.entries_hint);
            }
        }
    }

    /// A new entry was stored in `idx`.
    pub(crate) fn on_insert<K, V>(&mut self, slab: &mut Slab<K, V>, idx: u32) {
        match self {
            PolicyState::Clock(q) => q.push_back(slab, idx),
            PolicyState::Lru(l) => l.push_back(slab, idx),
            PolicyState::S3Fifo(s) => {
                let e = slab.entry(idx);
                let w = u64::from(e.weight());
                s.ghost.fit(slab.live as usize, s.entries_hint);
                if s.frequency {
                    s.sketch.fit(slab.live as usize, s.entries_hint);
                }
                // A new key is a miss: count it (once the sketch exists).
                s.sketch.add(e.hash.get(), 1);
                // A ghost comes back to the main queue; while the main queue has room
                // (warm-up) there is nothing to protect, so new entries go there too,
                // unless they displaced an entry to get in (see `displaced`).
                let returning = !s.frequency && s.ghost.take(e.hash.get()) && s.admits(slab, w);
                let to_main =
                    returning || (!s.displaced && s.main_weight + w <= s.main_cap) || s.recency;
                e.set_queue(if to_main { MAIN_NEW } else { SMALL });
                s.enqueue(slab, idx);
            }
        }
    }

    /// An entry read back from a snapshot was stored in `idx`: it takes the
    /// access counter and queue tag `hint` recorded (see `Shard::hint_of`), as far
    /// as this policy has them, and joins its queue as the most recent. Exact LRU
    /// keeps no per-entry standing: restored entries queue in the order they come.
    pub(crate) fn on_restore<K, V>(&mut self, slab: &mut Slab<K, V>, idx: u32, hint: u8) {
        let freq = u32::from(hint & 0b11).min(self.max_freq());
        match self {
            PolicyState::Clock(q) => {
                slab.entry(idx).set_freq(freq);
                q.push_back(slab, idx);
            }
            PolicyState::Lru(l) => l.push_back(slab, idx),
            PolicyState::S3Fifo(s) => {
                let queue = match u32::from(hint >> 2) & 0b11 {
                    MAIN => MAIN,
                    MAIN_NEW => MAIN_NEW,
                    SMALL_PASSED => SMALL_PASSED,
                    _ => SMALL,
                };
                let e = slab.entry(idx);
                e.set_freq(freq);
                e.set_queue(queue);
                s.enqueue(slab, idx);
            }
        }
    }

    /// The entry in `idx` was taken out of the policy (`on_remove`, then
    /// `Slab::take`) and stored again, in this slot, with its access counter and
    /// queue tag as they were: queue it again as the most recent of its queue.
    pub(crate) fn on_relink<K, V>(&mut self, slab: &mut Slab<K, V>, idx: u32) {
        match self {
            PolicyState::Clock(q) => q.push_back(slab, idx),
            PolicyState::Lru(l) => l.push_back(slab, idx),
            PolicyState::S3Fifo(s) => s.enqueue(slab, idx),
        }
    }

    /// A hit seen under the write lock (exclusive-hit policies, and updates).
    pub(crate) fn on_hit_locked<K, V>(&mut self, slab: &mut Slab<K, V>, idx: u32) {
        match self {
            PolicyState::Lru(l) => l.touch(slab, idx),
            _ => {
                let max = self.max_freq();
                slab.entry(idx).bump(max);
            }
        }
    }

    /// The value of the entry in `idx` was replaced. Exact LRU makes it the most
    /// recent; the CLOCK family leaves its access counter alone: a write says the key
    /// is in use but not that it will be read, and two callers that both missed a key
    /// and both stored it (a common race) must not look like a miss and a hit.
    pub(crate) fn on_update<K, V>(&mut self, slab: &mut Slab<K, V>, idx: u32) {
        if let PolicyState::Lru(l) = self {
            l.touch(slab, idx);
        }
    }

    /// The weight of the entry in `idx` changed from `old` to its current weight.
    pub(crate) fn on_reweigh<K, V>(&mut self, slab: &Slab<K, V>, idx: u32, old: u32) {
        if let PolicyState::S3Fifo(s) = self {
            let e = slab.entry(idx);
            let slot = if !in_probation(e.queue()) {
                &mut s.main_weight
            } else {
                &mut s.small_weight
            };
            *slot = *slot - u64::from(old) + u64::from(e.weight());
        }
    }

    /// The entry in `idx` is about to be removed (not by eviction). Returns whether a
    /// queue still threads through the slot (lazy removal).
    pub(crate) fn on_remove<K, V>(&mut self, slab: &mut Slab<K, V>, idx: u32) -> bool {
        match self {
            PolicyState::Clock(_) => true,
            PolicyState::Lru(l) => {
                l.unlink(slab, idx);
                false
            }
            PolicyState::S3Fifo(s) => {
                let e = slab.entry(idx);
                let w = u64::from(e.weight());
                if !in_probation(e.queue()) {
                    s.main_weight -= w;
                } else {
                    s.small_weight -= w;
                }
                true
            }
        }
    }

    /// Picks a victim, unlinks it and returns its slot. An expired entry met on the way
    /// is always the victim. Dead slots met on the way are reclaimed.
    pub(crate) fn evict<K, V>(&mut self, slab: &mut Slab<K, V>, now: u64) -> Option<u32> {
        match self {
            PolicyState::Clock(q) => loop {
                let idx = q.pop_front(slab)?;
                if !slab.is_full(idx) {
                    slab.reclaim_dead(idx);
                    continue;
                }
                let e = slab.entry(idx);
                if e.freq() > 0 && !expired(slab, idx, now) {
                    e.set_freq(0);
                    q.push_back(slab, idx);
                    continue;
                }
                return Some(idx);
            },
            PolicyState::Lru(l) => l.pop_front(slab),
            PolicyState::S3Fifo(s) => s.evict(slab, now),
        }
    }

    /// Shows `f` the entry at the front of each eviction queue: the next
    /// candidates for eviction, before any second chance a hit has earned
    /// them (one for CLOCK and LRU, two for the S3-FIFO queues). Changes
    /// nothing, so it runs under the shard's read lock.
    #[cfg(feature = "memcached")]
    pub(crate) fn fronts<K, V>(&self, slab: &Slab<K, V>, mut f: impl FnMut(u32)) {
        match self {
            PolicyState::Clock(q) => q.first_full(slab).into_iter().for_each(f),
            PolicyState::Lru(l) => l
                .front()
                .filter(|&idx| slab.is_full(idx))
                .into_iter()
                .for_each(f),
            PolicyState::S3Fifo(s) => {
                for q in [&s.small, &s.main] {
                    if let Some(idx) = q.first_full(slab) {
                        f(idx);
                    }
                }
            }
        }
    }

    /// Drops dead slots from the queues.
    pub(crate) fn compact<K, V>(&mut self, slab: &mut Slab<K, V>) {
        match self {
            PolicyState::Clock(q) => q.compact(slab),
            PolicyState::Lru(_) => {}
            PolicyState::S3Fifo(s) => {
                s.small.compact(slab);
                s.main.compact(slab);
            }
        }
    }

    /// Relinks the queues after a rebuild of the table moved its entries (see
    /// [`Slab::rehash`]).
    pub(crate) fn remap<K, V>(&mut self, slab: &mut Slab<K, V>, remap: &crate::slab::Remap) {
        match self {
            PolicyState::Clock(q) => q.remap(slab, remap),
            PolicyState::Lru(l) => l.remap(slab, remap),
            PolicyState::S3Fifo(s) => {
                s.small.remap(slab, remap);
                s.main.remap(slab, remap);
            }
        }
    }

    /// Forgets every entry (the slab is being cleared); the ghost set keeps its
    /// allocation and the weight shares their sizes.
    pub(crate) fn clear(&mut self) {
        match self {
            PolicyState::Clock(q) => *q = Queue::new(),
            PolicyState::Lru(l) => *l = Lru::new(),
            PolicyState::S3Fifo(s) => {
                s.small = Queue::new();
                s.main = Queue::new();
                s.ghost.clear();
                s.sketch.clear();
                s.small_weight = 0;
                s.main_weight = 0;
                s.ticks = 0;
                s.displaced = false;
            }
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            PolicyState::Clock(_) => 0,
            PolicyState::Lru(l) => l.heap_bytes(),
            PolicyState::S3Fifo(s) => s.ghost.heap_bytes() + s.sketch.heap_bytes(),
        }
    }

    /// Checks that the queues hold exactly the full and dead slots, and the weights
    /// add up (tests and fuzzing only).
    pub(crate) fn validate<K, V>(&self, slab: &Slab<K, V>, weight: u64) {
        let mut seen = vec![false; slab.len()];
        let mut full = 0u32;
        let mut dead = 0u32;
        let mut visit = |idx: u32| {
            assert!(!seen[idx as usize], "slot {idx} queued twice");
            seen[idx as usize] = true;
            if slab.is_full(idx) {
                full += 1;
            } else {
                dead += 1;
            }
        };
        match self {
            PolicyState::Clock(q) => q.for_each(slab, &mut visit),
            PolicyState::Lru(l) => l.for_each(slab, &mut visit),
            PolicyState::S3Fifo(s) => {
                let (mut sw, mut mw) = (0u64, 0u64);
                s.small.for_each(slab, |i| {
                    visit(i);
                    if slab.is_full(i) {
                        assert!(in_probation(slab.entry(i).queue()));
                        sw += u64::from(slab.entry(i).weight());
                    }
                });
                s.main.for_each(slab, |i| {
                    visit(i);
                    if slab.is_full(i) {
                        assert!(!in_probation(slab.entry(i).queue()));
                        mw += u64::from(slab.entry(i).weight());
                    }
                });
                assert_eq!(sw, s.small_weight);
                assert_eq!(mw, s.main_weight);
                assert_eq!(sw + mw, weight);
            }
        }
        assert_eq!(full, slab.live, "a live entry is not queued");
        assert_eq!(dead, slab.dead, "a dead slot is not queued");
    }
}

impl S3Fifo {
    /// Appends the entry in `idx` to the queue its tag names, counting its weight.
    fn enqueue<K, V>(&mut self, slab: &mut Slab<K, V>, idx: u32) {
        let e = slab.entry(idx);
        let w = u64::from(e.weight());
        if !in_probation(e.queue()) {
            self.main_weight += w;
            self.main.push_back(slab, idx);
        } else {
            self.small_weight += w;
            self.small.push_back(slab, idx);
        }
    }

    /// Whether an entry of `weight` weighs at most half the shard's mean
    /// (`uncounted`: weight of entries out of the queues' totals but still
    /// live, such as the one being looked at). A queue's hand passes such an
    /// entry once before it may evict it, as if it had been hit once: where
    /// entries differ in weight, evicting one heavy entry makes room for
    /// several light ones, so for the same evidence of use a light entry is
    /// cheaper to keep (the reasoning of size-aware policies such as GDSF).
    /// The extra turn doubles the entry's stay, so it is given only where
    /// that costs no more room-time than an average entry's one turn: at half
    /// the mean or less. Entries a few percent apart (a CAS value one byte
    /// longer) are treated alike, and where every entry weighs the same (the
    /// default weigher's one unit) nothing changes.
    #[inline]
    fn light<K, V>(&self, slab: &Slab<K, V>, weight: u64, uncounted: u64) -> bool {
        let total = self.small_weight + self.main_weight + uncounted;
        2 * u128::from(weight) * u128::from(slab.live) <= u128::from(total)
    }

    /// Whether an entry can be [`light`](Self::light) at all here: the mean
    /// weight is 2 units or more. Checked first, with no load from the
    /// entries, so that shards of one-unit entries (the default weigher)
    /// take exactly the path they took before the rule; below a mean of 2
    /// only an entry of weight 0, which costs nothing to keep or to evict,
    /// could have counted as light.
    #[inline]
    fn sized<K, V>(&self, slab: &Slab<K, V>, uncounted: u64) -> bool {
        self.small_weight + self.main_weight + uncounted >= 2 * u64::from(slab.live)
    }

    /// Whether the main queue's next victim is cold: the hand has passed it at least
    /// once (an entry the hand has not reached yet has not had its turn to be hit,
    /// and on a sweep that turns it is the next to be needed) and it has not been hit
    /// since. Measured on one shard: zigzag at 1500 +1.0 point, P6 at 32768 +1.3.
    fn main_front_cold<K, V>(&self, slab: &Slab<K, V>) -> bool {
        self.main.first_full(slab).is_none_or(|idx| {
            let e = slab.entry(idx);
            e.freq() == 0 && e.queue() == MAIN
        })
    }

    /// Whether a proven key (one hit in probation, or back from the ghost set) of
    /// weight `w` may enter the main queue: always, except in the guarded placement,
    /// which admits it only into room or over a cold entry.
    fn admits<K, V>(&self, slab: &Slab<K, V>, w: u64) -> bool {
        !self.guarded || self.main_weight + w <= self.main_cap || self.main_front_cold(slab)
    }

    /// Moves the main queue's hand one entry: an entry hit since the hand last
    /// passed keeps its place (its counter decremented, `Ok(None)`); one that was not
    /// (or has expired) is unlinked and returned as the victim. `Err(())` when the
    /// main queue is empty.
    ///
    /// `aging`: this is the [`AGE_EVERY`] move, not a main queue past its share.
    /// In the guarded placement that move spares an entry the hand has not passed
    /// yet (marking it passed): the guard keeps such an entry's victims safe from
    /// ghosts, and a key the hand drops before its turn can then come back only
    /// over a cold entry, which may not exist for a long time. The first keys a
    /// cache stores were dropped that way: filled with its whole key space,
    /// hottest first, and then read with Zipf(0.99) `get`s, a sharded default
    /// cache evicted the hottest keys at the fill (a shard that overflows ages its
    /// main queue) and hit 97.8% for good, where s3fifo, whose ghosts return
    /// freely, hit 99.98% (tests/preloaded_zipf.rs).
    fn main_hand<K, V>(
        &mut self,
        slab: &mut Slab<K, V>,
        now: u64,
        aging: bool,
    ) -> Result<Option<u32>, ()> {
        loop {
            let idx = self.main.pop_front(slab).ok_or(())?;
            if !slab.is_full(idx) {
                slab.reclaim_dead(idx);
                continue;
            }
            let e = slab.entry(idx);
            let f = e.freq();
            let spared = f > 0
                || (self.sized(slab, 0)
                    && e.queue() == MAIN_NEW
                    && self.light(slab, u64::from(e.weight()), 0))
                || (aging && self.guarded && e.queue() == MAIN_NEW);
            if spared && !expired(slab, idx, now) {
                if f > 0 {
                    self.sketch.add(e.hash.get(), 1);
                }
                e.set_freq(f.saturating_sub(1));
                e.set_queue(MAIN);
                self.main.push_back(slab, idx);
                return Ok(None);
            }
            self.main_weight -= u64::from(e.weight());
            return Ok(Some(idx));
        }
    }

    /// The main queue's next victim under frequency admission, left at the
    /// queue's front: the hand passes entries hit since it last passed them (each
    /// pass counts one hit in the sketch and takes one off the entry's counter),
    /// and stops at the first that was not, or that has expired.
    fn main_victim<K, V>(&mut self, slab: &mut Slab<K, V>, now: u64) -> Option<u32> {
        loop {
            let idx = self.main.first_full(slab)?;
            let e = slab.entry(idx);
            let f = e.freq();
            if f == 0 || expired(slab, idx, now) {
                return Some(idx);
            }
            self.sketch.add(e.hash.get(), 1);
            e.set_freq(f - 1);
            e.set_queue(MAIN);
            // Pops the dead slots ahead of it too.
            while let Some(i) = self.main.pop_front(slab) {
                if i == idx {
                    break;
                }
                slab.reclaim_dead(i);
            }
            self.main.push_back(slab, idx);
        }
    }

    /// TinyLFU admission of the probation entry in `cand` (already out of
    /// probation, with no room for it in the main queue): it enters the main queue if
    /// the sketch counts it more often than the main queue's next victim, which is
    /// then evicted instead. Returns the slot evicted.
    fn admit_by_frequency<K, V>(&mut self, slab: &mut Slab<K, V>, cand: u32, now: u64) -> u32 {
        let hash = slab.entry(cand).hash.get();
        let victim = self.main_victim(slab, now);
        let wins = victim.is_some_and(|v| {
            expired(slab, v, now)
                || self.sketch.estimate(hash) > self.sketch.estimate(slab.entry(v).hash.get())
        });
        let Some(v) = victim.filter(|_| wins) else {
            self.ghost.insert(hash);
            return cand;
        };
        while let Some(i) = self.main.pop_front(slab) {
            if i == v {
                break;
            }
            slab.reclaim_dead(i);
        }
        self.main_weight -= u64::from(slab.entry(v).weight());
        let e = slab.entry(cand);
        e.set_freq(0);
        e.set_queue(MAIN_NEW);
        self.enqueue(slab, cand);
        v
    }

    fn evict<K, V>(&mut self, slab: &mut Slab<K, V>, now: u64) -> Option<u32> {
        let (idx, aged) = self.pick_victim(slab, now)?;
        // An expired victim was dead already: it leaves room as a removal
        // does.
        self.displaced |= !aged && !expired(slab, idx, now);
        Some(idx)
    }

    /// [`evict`](Self::evict)'s victim, and whether the aging hand chose it.
    fn pick_victim<K, V>(&mut self, slab: &mut Slab<K, V>, now: u64) -> Option<(u32, bool)> {
        loop {
            if self.small_weight == 0 && self.main_weight == 0 {
                return None;
            }
            // New entries compete only with probation: the main queue gives up
            // entries only when promotions and ghost returns push it past its share.
            let from_small = (self.main_weight <= self.main_cap && self.small_weight > 0)
                || self.main_weight == 0;
            if from_small {
                // Saturating: under frequency admission nothing resets it.
                self.ticks = self.ticks.saturating_add(1);
                // Frequency admission ages by halving its sketch instead: a main
                // entry leaves only for a candidate counted more often.
                if self.ticks >= AGE_EVERY && !self.frequency {
                    // A main entry not hit for a whole turn of the hand goes in place
                    // of the probation entry.
                    self.ticks = 0;
                    if let Ok(Some(idx)) = self.main_hand(slab, now, true) {
                        return Some((idx, true));
                    }
                }
                let idx = self.small.pop_front(slab)?;
                if !slab.is_full(idx) {
                    slab.reclaim_dead(idx);
                    continue;
                }
                let e = slab.entry(idx);
                let w = u64::from(e.weight());
                self.small_weight -= w;
                if expired(slab, idx, now) {
                    return Some((idx, false));
                }
                let f = e.freq();
                let hash = e.hash.get();
                self.sketch.add(hash, f);
                if self.frequency && self.main_weight + w > self.main_cap {
                    return Some((self.admit_by_frequency(slab, idx, now), false));
                }
                if (f > 0 || self.frequency) && self.admits(slab, w) {
                    e.set_freq(0);
                    e.set_queue(MAIN_NEW);
                    self.enqueue(slab, idx);
                    continue;
                }
                if self.light(slab, w, w) && e.queue() == SMALL {
                    e.set_queue(SMALL_PASSED);
                    self.enqueue(slab, idx);
                    // Not an eviction: the main queue ages by evictions.
                    self.ticks = self.ticks.saturating_sub(1);
                    continue;
                }
                self.ghost.insert(hash);
                return Some((idx, false));
            }
            if let Some(idx) = self.main_hand(slab, now, false).ok()? {
                return Some((idx, false));
            }
        }
    }
}

#[cfg(all(test, not(larder_loom)))]
mod tests {
    use super::table::Table;
    use super::*;
    use std::num::NonZeroU32;

    fn hash(k: u32) -> NonZeroU32 {
        NonZeroU32::new(k.wrapping_mul(0x9E37_79B9) | 1).unwrap()
    }

    /// A table of 16 entries that stays in `placement`.
    struct Fixed(Table<u32, ()>, Placement);

    fn table(placement: Placement) -> Fixed {
        Fixed(Table::new(&Policy::s3fifo(), 16, 16, 1), placement)
    }

    impl Fixed {
        fn find(&self, h: NonZeroU32, k: &u32) -> Option<u32> {
            self.0.find(h, k)
        }
    }

    /// Looks `k` up as a cache-aside caller would: a hit marks it, a miss stores it.
    fn access(shard: &mut Fixed, k: u32) -> bool {
        let h = hash(k);
        if let Some(idx) = shard.0.find(h, &k) {
            shard.0.touch_locked(idx);
            true
        } else {
            assert!(shard.0.insert_new(k, (), h, 1, shard.1));
            shard.0.validate(false);
            false
        }
    }

    fn held(shard: &Fixed, keys: std::ops::Range<u32>) -> usize {
        keys.filter(|&k| shard.find(hash(k), &k).is_some()).count()
    }

    #[test]
    fn a_full_table_that_removes_and_inserts_in_turn_rebuilds_rarely() {
        // Removals leave dead slots in the queues, and dead slots take room in
        // the table: a full table must not rebuild (or compact) on every insert.
        for policy in [Policy::clock(), Policy::s3fifo(), Policy::lru()] {
            let mut t: Table<u32, ()> = Table::new(&policy, 1_000, 1_000, 1);
            for k in 0..1_000u32 {
                assert!(t.insert_new(k, (), hash(k), 1, Placement::Narrow));
            }
            let passes = t.slab.rebuilds + t.compactions;
            for k in 1_000..21_000u32 {
                let gone = k - 1_000;
                if let Some(idx) = t.find(hash(gone), &gone) {
                    t.detach(idx);
                }
                assert!(t.insert_new(k, (), hash(k), 1, Placement::Narrow));
            }
            t.validate(false);
            let passes = t.slab.rebuilds + t.compactions - passes;
            // One pass (a rebuild or a compaction) per eighth of the entries
            // removed, or fewer.
            assert!(passes <= 20_000 / 125 + 2, "{policy:?}: {passes} passes");
            assert_eq!(t.len(), 1_000);
        }
    }

    #[test]
    fn a_few_removals_while_a_table_fills_do_not_shrink_its_growth_steps() {
        // A dead slot in a filling table once made the rebuild grow it by an
        // eighth instead of the geometric step: three times the rebuilds.
        let rebuilds = |remove_every: u32| {
            let mut t: Table<u32, ()> = Table::new(&Policy::clock(), u64::MAX, usize::MAX, 1);
            for k in 0..100_000u32 {
                assert!(t.insert_new(k, (), hash(k), 1, Placement::Narrow));
                if k % remove_every == 0 {
                    if let Some(idx) = t.find(hash(k / 2), &(k / 2)) {
                        t.detach(idx);
                    }
                }
            }
            t.validate(false);
            t.slab.rebuilds
        };
        let (plain, removing) = (rebuilds(u32::MAX), rebuilds(100));
        assert!(removing <= plain + 2, "{removing} rebuilds against {plain}");
    }

    #[test]
    fn frequency_admission_under_a_capacity_nothing_fills_allocates_by_use() {
        // `max_entries(u64::MAX)` over 1 to 64 shards: each shard's hint is
        // astronomic. Choosing the frequency placement must neither panic nor
        // allocate a sketch for the hint.
        for shards in [1u64, 2, 4, 64] {
            let share = u64::MAX / shards;
            let hint = usize::try_from(share).unwrap_or(usize::MAX);
            let mut s = Fixed(
                Table::new(&Policy::s3fifo(), share, hint, shards as usize),
                Placement::Frequency,
            );
            s.0.policy.set_placement(Placement::Frequency);
            for round in 0..3 {
                for k in 0..5_000 {
                    assert_eq!(access(&mut s, k), round > 0, "shards {shards}");
                }
            }
            let heap = s.0.policy.heap_bytes();
            assert!(
                heap < 1 << 20,
                "shards {shards}: {heap} bytes of policy state"
            );
        }
    }

    #[test]
    fn frequency_admission_keeps_a_hot_set_through_a_one_hit_flood() {
        // 32 hot keys in a cache of 64, read twice each; then 5,000 keys read
        // once each, and the hot keys read once after every 200 of them. The
        // frequency placement keeps every hot key: a one-time key is counted once
        // and a hot one more often, so the one-time keys never win admission. A
        // CLOCK (the recency placement) turns over three times between two reads
        // of a hot key and drops them all.
        for (placement, at_least, at_most) in
            [(Placement::Frequency, 32, 32), (Placement::Recency, 0, 0)]
        {
            let mut s = Fixed(Table::new(&Policy::s3fifo(), 64, 64, 1), placement);
            for _ in 0..2 {
                for k in 0..32 {
                    access(&mut s, k);
                }
            }
            let mut next = 1000;
            let mut hot_hits = 0;
            for _ in 0..25 {
                for _ in 0..200 {
                    assert!(!access(&mut s, next));
                    next += 1;
                }
                let held = held(&s, 0..32);
                hot_hits += (0..32).filter(|&k| access(&mut s, k)).count();
                assert!(
                    (at_least..=at_most).contains(&held),
                    "{placement:?}: {held}"
                );
            }
            if placement == Placement::Frequency {
                assert_eq!(hot_hits, 25 * 32);
            }
        }
    }

    #[test]
    fn placement_indices_match_their_order() {
        for (i, p) in Placement::ALL.into_iter().enumerate() {
            assert_eq!(p.index(), i, "{p:?}");
        }
    }

    #[test]
    fn guarded_ghosts_do_not_displace_entries_the_hand_has_not_passed() {
        // A sweep over 20 keys in 16 entries fills the main queue (12 entries) with
        // keys 0..12; keys 12..20 pass through probation (4) and the ghost set. The
        // sweep then turns: 15..12 come back from the ghost set. Keys 0..12 have not
        // been hit yet only because their turn has not come, so they must stay.
        let mut s = table(Placement::Guarded);
        for k in 0..20 {
            assert!(!access(&mut s, k));
        }
        assert_eq!(held(&s, 0..12), 12);
        for k in (12..16).rev() {
            assert!(!access(&mut s, k));
        }
        assert_eq!(held(&s, 0..12), 12);
        for k in (0..12).rev() {
            assert!(access(&mut s, k));
        }
        // The narrow placement lets the same ghosts in over the oldest entries.
        let mut s = table(Placement::Narrow);
        for k in (0..20).chain((12..16).rev()) {
            access(&mut s, k);
        }
        assert!(held(&s, 0..12) < 12);
    }

    #[test]
    fn guarded_aging_passes_an_entry_once_before_it_can_evict_it() {
        // Keys 0..12 fill the main queue and are never read. One-time keys then
        // pass through probation; every 64 of them move the main hand one entry.
        // In the guarded placement the first turn only marks keys 0..12 as passed
        // (the guard would keep them out if they came back), the second takes them.
        // The narrow placement, whose ghosts come back freely, takes them at once.
        for (placement, after_one_turn) in [(Placement::Guarded, 12), (Placement::Narrow, 0)] {
            let mut s = table(placement);
            for k in 0..12 {
                access(&mut s, k);
            }
            assert_eq!(held(&s, 0..12), 12);
            let mut next = 1000;
            // The first four fill probation without an eviction.
            for _ in 0..64 * 12 + 4 {
                access(&mut s, next);
                next += 1;
            }
            assert_eq!(held(&s, 0..12), after_one_turn, "{placement:?}: first turn");
            for _ in 0..64 * 12 {
                access(&mut s, next);
                next += 1;
            }
            assert_eq!(held(&s, 0..12), 0, "{placement:?}: second turn");
        }
    }

    /// The victims' keys, in order, of evicting everything from `t`.
    fn drain(t: &mut Table<u32, ()>) -> Vec<u32> {
        std::iter::from_fn(|| t.evict(0).map(|(_, e)| e.key)).collect()
    }

    #[test]
    fn an_entry_of_at_most_half_the_mean_weight_gets_one_more_turn() {
        for placement in [Placement::Narrow, Placement::Guarded, Placement::Recency] {
            // Main queue (the warm-up; 100 units of 104): keys 0..10
            // alternating 2 and 18 units, mean 10. The light ones (at most
            // half the mean) are passed once, so the heavy ones go first.
            let mut t = Table::new(&Policy::s3fifo(), 104, 16, 1);
            for k in 0..10 {
                let w = if k % 2 == 0 { 2 } else { 18 };
                assert!(t.insert_new(k, (), hash(k), w, placement));
            }
            t.validate(false);
            assert_eq!(
                drain(&mut t),
                [1, 3, 5, 7, 9, 0, 2, 4, 6, 8],
                "{placement:?}"
            );
            // 9 and 11 units, mean 10: neither is light, and the queue is a
            // FIFO (as before the rule, and as with equal weights).
            let mut t = Table::new(&Policy::s3fifo(), 104, 16, 1);
            for k in 0..10 {
                let w = if k % 2 == 0 { 9 } else { 11 };
                assert!(t.insert_new(k, (), hash(k), w, placement));
            }
            assert_eq!(drain(&mut t), (0..10).collect::<Vec<_>>(), "{placement:?}");
        }
        // Probation (narrow: 30 units of 1,000), once 97 keys of 10 units
        // fill the main queue: key 0 (2 units, light) is passed once, key 1
        // (28 units, not light) is not, so 1 goes before 0.
        let mut t = Table::new(&Policy::s3fifo(), 1_000, 128, 1);
        for k in 100..197 {
            assert!(t.insert_new(k, (), hash(k), 10, Placement::Narrow));
        }
        for (k, w) in [(0, 2), (1, 28)] {
            assert!(t.insert_new(k, (), hash(k), w, Placement::Narrow));
        }
        t.validate(false);
        assert_eq!(drain(&mut t)[..2], [1, 0]);
    }

    #[test]
    fn a_new_entry_that_displaced_another_starts_in_probation() {
        for placement in [Placement::Narrow, Placement::Guarded] {
            // Keys 0..4 of 240 units fill the main queue: 960 of its 970 or
            // 996 units (of 1,000).
            let mut t = Table::new(&Policy::s3fifo(), 1_000, 32, 1);
            for k in 0..4 {
                assert!(t.insert_new(k, (), hash(k), 240, placement));
            }
            // New keys of the same weight, each read once. Probation's share
            // (and the main queue's slack) cannot hold one, so room for the
            // first comes out of the main queue; it must still start in
            // probation rather than take that room as if the cache were
            // filling, and the keys after it displace it there. Taking the
            // room made the main queue a FIFO of keys never read again.
            for k in 100..120 {
                assert!(t.insert_new(k, (), hash(k), 240, placement));
                let idx = t.find(hash(k), &k).unwrap();
                assert!(
                    in_probation(t.slab.entry(idx).queue()),
                    "{placement:?}: key {k} skipped probation"
                );
                t.validate(false);
            }
            let kept = (0..4).filter(|k| t.find(hash(*k), k).is_some()).count();
            assert_eq!(kept, 3, "{placement:?}");
            // A removal leaves room that the next key takes without
            // evicting anything: into the main queue, as while filling.
            let gone = (0..4).find(|k| t.find(hash(*k), k).is_some()).unwrap();
            let idx = t.find(hash(gone), &gone).unwrap();
            t.detach(idx);
            let idx = t.find(hash(119), &119).unwrap();
            t.detach(idx);
            assert!(t.insert_new(200, (), hash(200), 240, placement));
            let idx = t.find(hash(200), &200).unwrap();
            assert_eq!(t.slab.entry(idx).queue(), MAIN_NEW, "{placement:?}");
            t.validate(false);
        }
        // The aging move evicts a stale main entry in place of a probation
        // one, and the new key may take its room, as before the rule. 100
        // unit-weight entries (main 97), then new keys never read again:
        // each evicts one; every 64th eviction is the aging move's.
        let mut t = Table::new(&Policy::s3fifo(), 100, 128, 1);
        for k in 0..100 {
            assert!(t.insert_new(k, (), hash(k), 1, Placement::Narrow));
        }
        let mut to_main = Vec::new();
        for k in 1_000..1_200 {
            assert!(t.insert_new(k, (), hash(k), 1, Placement::Narrow));
            let idx = t.find(hash(k), &k).unwrap();
            if t.slab.entry(idx).queue() == MAIN_NEW {
                to_main.push(k);
            }
        }
        // Every 64th new key follows an aging eviction and takes its room;
        // the others displaced a probation entry and start in probation.
        assert_eq!(to_main.len(), 200 / AGE_EVERY as usize, "{to_main:?}");
        assert!(to_main.windows(2).all(|w| w[1] - w[0] == AGE_EVERY));
        t.validate(false);
    }

    /// Reads `key` twice at once (as at the turn of a sweep), then pushes it out of
    /// probation (4 entries) with four new keys.
    fn hit_in_probation(s: &mut Fixed, key: u32, new_keys: std::ops::Range<u32>) {
        access(s, key);
        assert!(access(s, key));
        for k in new_keys {
            access(s, k);
        }
    }

    #[test]
    fn guarded_probation_hits_are_promoted_only_over_a_cold_entry() {
        // Not over an entry that was never hit but has not had its turn yet.
        let mut s = table(Placement::Guarded);
        for k in 0..12 {
            access(&mut s, k);
        }
        hit_in_probation(&mut s, 12, 100..104);
        assert_eq!(held(&s, 12..13), 0);
        assert_eq!(held(&s, 0..12), 12);
        // Nor over a hot one: fill the main queue (12 entries) and hit every entry.
        let mut s = table(Placement::Guarded);
        for k in 0..12 {
            access(&mut s, k);
        }
        for k in 0..12 {
            assert!(access(&mut s, k));
        }
        hit_in_probation(&mut s, 12, 100..104);
        assert_eq!(held(&s, 12..13), 0);
        assert_eq!(held(&s, 0..12), 12);
        // One-time keys age the main queue: one hand step per 64 probation
        // evictions, 12 steps in all, each taking an entry's hit and keeping it.
        for k in 1000..1000 + 64 * 12 {
            access(&mut s, k);
        }
        assert_eq!(held(&s, 0..12), 12);
        // Now the main queue's next victim is cold, and a probation hit goes in
        // over it (a new key, which the ghost set cannot know).
        hit_in_probation(&mut s, 50, 2000..2004);
        assert_eq!(held(&s, 50..51), 1);
        assert!(held(&s, 0..12) < 12);
    }
}
