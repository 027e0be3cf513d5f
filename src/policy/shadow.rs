//! Shadow caches that choose the adaptive policy's placement.
//!
//! The adaptive policy is S3-FIFO with one setting, a [`Placement`] of new entries:
//! - `Narrow`: probation first, main queue 97% (scan- and loop-resistant: a key must
//!   be hit in probation, or come back while remembered by the ghost set, before it
//!   may displace the main queue);
//! - `Recency`: straight into the main queue, which then is a CLOCK (wins when most
//!   keys are re-read soon after their first use and a small probation queue drops
//!   them before that second read);
//! - `Wide`: probation first, main queue 3% (a long FIFO: wins when keys are read
//!   about twice, close together, and then never again, where CLOCK and LRU keep a
//!   re-read key for a whole turn that it does not use);
//! - `Guarded`: probation of a few units, and a key remembered by the ghost set or
//!   hit in probation enters the main queue only if the main queue's next victim is
//!   cold (wins on loops and sweeps longer than the cache, where each admission
//!   displaces another key that is as sure to be hit);
//! - `Frequency`: as `Narrow`, but a key leaving probation enters the main queue
//!   only if a count-min sketch counts it more often than the main queue's next
//!   victim (TinyLFU admission; wins when popularity outlasts the main queue's
//!   turn). The sketch counts misses and, under the write lock, the hits recorded
//!   in the entries' counters, so hits still write nothing but the entry.
//!
//! Which is best depends on the workload and can change with it, and neither ghost
//! hits nor hit-rate trends tell it reliably (a loop longer than the cache makes ghost
//! hits plead for a bigger probation queue that would hit nothing; a hill climber on
//! the hit rate wandered on these traces and lost the loops).
//!
//! So the cache measures it: a hash-sampled subset of the keys (about 1 in 2^`bits`,
//! chosen so the sample fits [`SIM_CAPACITY`] weight units) is replayed through one
//! small [`Table`] (entries and policy: what a shard has, minus time) per
//! placement, running the real policy code at the cache's capacity scaled down by
//! the same factor (spatial sampling, as in SHARDS, Waldspurger et al.,
//! FAST 2015, and their miniature simulations, USENIX ATC 2017). After every period
//! of sampled lookups, each shadow's hits are added to 7/8 of its previous score, and
//! the placement with the best score takes over if it beats the current one by more
//! than one lookup in [`MARGIN`] (lookups counted as the whole cache's over the
//! sampling rate, or as the sample's if fewer: see [`Shadow::decide`]). The decay and the margin are there because each
//! switch costs the real cache a turnover of its contents (`Wide` drops most of the
//! main queue), which the shadows, each fixed in its placement, never pay. A cache
//! starts in the guarded placement ([`START`]) and decides first at the end of the
//! second period ([`FIRST_DECISION`]).
//!
//! Cost: a sampled lookup or insert is queued in its thread's [`Batch`] (after the
//! shard's lock is released, for both), and replayed with the batch under the
//! shadows' mutex as one lookup or insert in each shadow; an unsampled one costs a
//! multiply and a compare.
//! Memory: five tables of at most [`SIM_CAPACITY`] units (and the frequency
//! shadow's sketch), whatever the cache's size.

#![forbid(unsafe_code)]

use crate::cache::Lookups;
use crate::policy::table::Table;
use crate::policy::Placement;
use crate::sync::{Arc, AtomicU32, AtomicU64, Mutex};
use crate::Policy;
use std::num::NonZeroU32;
use std::sync::atomic::Ordering::Relaxed;

/// The shadows' capacity in weight units (entries, with the default weigher).
pub(crate) const SIM_CAPACITY: u64 = 1024;

/// Fewest entries a full shadow may hold before sampling gets denser (entries
/// heavier than one unit shrink what a shadow of `SIM_CAPACITY` units holds).
const MIN_SIM_ENTRIES: usize = 128;

/// The shadows, one per placement, in the order of [`Placement::ALL`].
const SHADOWS: usize = Placement::ALL.len();
/// Index of the narrow-probation shadow.
const PROBATION: usize = Placement::Narrow.index();
/// Each period, a shadow's score loses this fraction (1/`DECAY`) and gains the
/// period's hits: a memory of about `DECAY` periods. With 1/2, zigzag at 500 (whose
/// periods alternate between the recency shadow hitting 499 of 1,000 and hitting
/// none) flapped between two placements in 2 runs of 8 and lost 7 points.
const DECAY: u32 = 8;

/// A placement takes over when its score beats the current one's by more than one
/// (weighed) lookup in this many. Measured on the shared traces: 1/256 let multi1 at
/// 500 flap and lose 4 points; 1/16 cost sprite at 1000 two points.
const MARGIN: u32 = 32;

/// The margin between the two probation-first placements that differ only in the
/// probation's size (3% or a few units) and in when keys may enter the main queue:
/// switching between them turns over a few percent of the cache, not most of it, so a smaller
/// lead is worth taking. Measured on the shared traces: with [`MARGIN`] for every
/// pair, loop at 500 (where guarded leads narrow by 3% of lookups, right at the
/// margin) took 40 periods to switch, and with two threads sometimes never did
/// (-0.6 points); with 1/64 it switches within a few periods (+0.2, and gcc at 50
/// +1.1, sprite at 100 -0.4).
const MARGIN_NEAR: u32 = 64;

/// Decisions that keep the placement, each also its period's best and made
/// on evidence (see [`Shadow::decide`]), before the shadows rest: as many as
/// the scores remember, so that the placement has led over the whole of
/// their memory. A period without evidence neither counts nor resets them;
/// one the placement does not lead resets them.
const SETTLED: u32 = DECAY;

/// The longest rest, in periods' worth of the real cache's lookups. Rests
/// double from one period up to this while the placement holds (each drawn
/// up to half again longer), so that a settled cache pays for its shadows in
/// about 2 periods of every 22 (one to refill them, one to score), and a
/// change of workload that does not lower the hit ratio is seen within the
/// longest rest drawn, 24 periods.
const MAX_REST: u32 = 16;

/// Sampled lookups a thread lets pass, while the shadows rest, between two
/// looks at whether the rest is over (a look sums the lookup counters). A
/// thread looks at its first one too, so threads that live for a few
/// lookups each still end a rest.
#[cfg(not(larder_loom))]
const REST_CHECK: u32 = 64;

/// Where a new cache starts: the guarded placement. Before the shadows have seen
/// anything, the placement that changes the cache's contents only on evidence loses
/// least: it keeps the keys that filled the cache until one of them has had its turn
/// and gone unread, and admits a new key only once it is read again. Measured on the
/// shared traces against starting in narrow probation (both with [`FIRST_DECISION`]):
/// zigzag 1000 / 1500 48.00 / 72.05 (LRU 48.03 / 72.07; from narrow 45.97 / 70.13,
/// because narrow probation lets the keys remembered from the first sweep displace
/// the ones the second sweep ends on), cs +0.8 to +1.9; but multi1 500 / 1000 -0.8 /
/// -1.3 and web07 2000 / 4000 -1.1 / -1.3, where the keys that filled the cache are
/// worth less than the ones after them and the first decision comes late in a
/// short trace. Mean +0.05. Under heavy reordering (two threads up to 32 requests
/// apart) it held up worse on web07 at 1000 (-1.9 points against -0.3).
const START: Placement = Placement::Guarded;

/// The first decision comes at the end of the second period, not the first. The
/// first period holds the shadows' fill, in which every placement misses every new
/// key alike and the few hits after it decide alone: on zigzag at 1500 the first
/// period (the first sweep and half of the second) put the wide placement ahead, and
/// the detour through it cost 2.7 points. Its hits still count toward the scores.
const FIRST_DECISION: u32 = 2;

/// The divisor of the margin that `to` must lead `from` by.
fn margin_divisor(from: usize, to: usize) -> u32 {
    let near = |i: usize| matches!(Placement::ALL[i], Placement::Narrow | Placement::Guarded);
    if near(from) && near(to) {
        MARGIN_NEAR
    } else {
        MARGIN
    }
}

pub(crate) struct Shadow {
    /// The chosen placement, as an index into [`Placement::ALL`].
    placement: AtomicU32,
    /// The real cache's lookup counters (see [`Shadow::decide`]).
    seen: Arc<Lookups>,
    /// Sampling: a key is replayed when the top `bits` bits of its mixed hash are 0.
    bits: AtomicU32,
    /// Events a thread queues before replaying them: see [`batch_len`].
    batch: AtomicU32,
    /// While the shadows rest, the real cache's lookup count at which they
    /// wake; 0 while they run.
    rest_until: AtomicU64,
    sims: Mutex<Sims>,
}

struct Sims {
    capacity: u64,
    bits: u32,
    tables: [Table<u32, ()>; SHADOWS],
    hits: [u32; SHADOWS],
    lookups: u32,
    /// Hits per shadow and lookups, each period's counts added to 7/8 of the previous.
    scores: [u32; SHADOWS],
    /// Lookups, added up as the scores are: each period's the smaller of
    /// the sample's and the real cache's over the sampling rate (see
    /// [`Shadow::decide`]).
    weighed: u32,
    /// The real cache's lookup count when the period began.
    seen_at: u64,
    /// Periods ended so far.
    periods: u32,
    /// Decisions that kept the placement while it was also the best of its
    /// period (see [`SETTLED`]).
    kept: u32,
    /// Periods the next rest lasts.
    rest: u32,
    /// The period under way refills the shadows after a rest: it is not
    /// scored.
    warming: bool,
    /// A shadow took a new key in the period under way: one the real cache
    /// held, or one it stored (the shadows are still filling, or evicting).
    missed: bool,
    /// The real cache's hit count when the period began.
    hits_at: u64,
    /// The real cache's hits and lookups in the last scored period, kept
    /// through a rest to compare the rest's with.
    rested_on: (u64, u64),
}

impl Sims {
    /// Simulations of a cache of `capacity` units sampled at `bits`, from
    /// the real cache's `(hits, misses)` so far.
    fn new(capacity: u64, bits: u32, (hits_at, misses_at): (u64, u64)) -> Self {
        let seen_at = hits_at.wrapping_add(misses_at);
        let scaled = (capacity >> bits).max(1);
        let hint = usize::try_from(scaled).unwrap_or(usize::MAX);
        let tables = Placement::ALL.map(|_| Table::new(&Policy::s3fifo(), scaled, hint, 1));
        Sims {
            capacity,
            bits,
            tables,
            hits: [0; SHADOWS],
            lookups: 0,
            scores: [0; SHADOWS],
            weighed: 0,
            seen_at,
            periods: 0,
            kept: 0,
            rest: 1,
            warming: false,
            missed: false,
            hits_at,
            rested_on: (0, 0),
        }
    }

    /// Starts a period at the real cache's counts `hits` and `seen`.
    fn start_period(&mut self, hits: u64, seen: u64) {
        self.hits = [0; SHADOWS];
        self.lookups = 0;
        self.hits_at = hits;
        self.seen_at = seen;
    }

    /// Whether the real cache, resting since the last scored period (its
    /// counts were `hits_at` and `seen_at` then), has hit a smaller share
    /// of its lookups since, by more than one in [`MARGIN`], over at least
    /// a period's worth of them: the workload changed under the placement,
    /// and the shadows wake before the rest is over.
    fn worse_since(&self, hits: u64, seen: u64) -> bool {
        let (base_hits, base) = self.rested_on;
        let n = seen.wrapping_sub(self.seen_at);
        let since = hits.wrapping_sub(self.hits_at);
        let period = u64::from(self.period()) << self.bits;
        // Counters that stepped back (threads sharing a slot lose
        // increments) read as huge differences: no verdict from those.
        if base == 0 || base_hits > base || n < period || since > n || n > u64::MAX >> 8 {
            return false;
        }
        let since = u128::from(since);
        let (n, base_hits, base) = (u128::from(n), u128::from(base_hits), u128::from(base));
        // since / n + 1 / MARGIN < base_hits / base
        let margin = u128::from(MARGIN);
        since * base * margin + n * base < base_hits * n * margin
    }

    /// Sampled lookups between two decisions: twice what a shadow holds, so that a
    /// decision sees each shadow's contents turn over.
    fn period(&self) -> u32 {
        let held = self.tables[PROBATION].len().max(MIN_SIM_ENTRIES);
        u32::try_from(held * 2).unwrap_or(u32::MAX)
    }
}

impl std::fmt::Debug for Shadow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shadow")
            .field("placement", &self.placement())
            .field("bits", &self.bits.load(Relaxed))
            .finish_non_exhaustive()
    }
}

/// Sampling bits for a cache of `capacity` units: the fewest that scale it
/// down to at most `SIM_CAPACITY`.
fn sampling_bits(capacity: u64) -> u32 {
    let mut bits = 0;
    while bits < 24 && capacity >> bits > SIM_CAPACITY {
        bits += 1;
    }
    bits
}

/// Mixes the stored 32-bit hash so that sampling does not pick the keys that the
/// index or the ghost set treat alike.
#[inline]
fn mix(hash: NonZeroU32) -> u32 {
    hash.get().wrapping_mul(0x2C1B_3C6D).rotate_left(7)
}

impl Shadow {
    /// Shadows for a cache of `capacity` weight units that counts its
    /// lookups in `seen`.
    pub(crate) fn new(capacity: u64, seen: Arc<Lookups>) -> Self {
        let bits = sampling_bits(capacity);
        let sims = Sims::new(capacity, bits, seen.split());
        Shadow {
            placement: AtomicU32::new(START.index() as u32),
            seen,
            bits: AtomicU32::new(bits),
            batch: AtomicU32::new(batch_len(0)),
            rest_until: AtomicU64::new(0),
            sims: Mutex::new(sims),
        }
    }

    /// The cache's capacity changed: the simulations start over at the new
    /// scale (the chosen placement stays until they decide again).
    pub(crate) fn set_capacity(&self, capacity: u64) {
        let mut sims = self.sims.lock();
        // Keep the denser sampling heavy entries taught (`insert_locked`): as
        // many bits fewer than the default as before.
        let learned = sampling_bits(sims.capacity).saturating_sub(sims.bits);
        let bits = sampling_bits(capacity).saturating_sub(learned);
        *sims = Sims::new(capacity, bits, self.seen.split());
        self.bits.store(bits, Relaxed);
        self.rest_until.store(0, Relaxed);
    }

    /// Whether the shadows rest (see [`Shadow::decide`]).
    #[inline]
    pub(crate) fn is_resting(&self) -> bool {
        self.rest_until.load(Relaxed) != 0
    }

    /// Where new entries should go.
    #[inline]
    pub(crate) fn placement(&self) -> Placement {
        Placement::ALL[self.placement.load(Relaxed) as usize]
    }

    #[cfg(all(test, not(larder_loom)))]
    fn sampled(&self, hash: NonZeroU32) -> bool {
        Shadow::sampled_at(self.bits(), hash)
    }

    /// Whether a key with this hash is sampled at `bits`.
    #[inline]
    pub(crate) fn sampled_at(bits: u32, hash: NonZeroU32) -> bool {
        bits == 0 || mix(hash) >> (32 - bits) == 0
    }

    /// The current sampling bits (one key in 2^bits is sampled).
    pub(crate) fn bits(&self) -> u32 {
        self.bits.load(Relaxed)
    }

    /// A lookup of the key with this hash: a hit on an entry of `weight` in the real
    /// cache, or a miss (`weight` 0). A shadow that misses where the real cache hit
    /// stores the key as a cache-aside caller would have; where both missed, the
    /// real insert that follows reaches the shadows through [`Shadow::on_insert`].
    /// Applied at once (the buffered path is [`Shadow::record_lookup`]).
    #[cfg(all(test, not(larder_loom)))]
    pub(crate) fn on_lookup(&self, hash: NonZeroU32, weight: u32) {
        self.seen.count(0, weight > 0);
        self.stay_awake();
        if self.sampled(hash) {
            self.replay(&[Event::lookup(hash, weight)]);
        }
    }

    /// A sampled lookup (see [`Shadow::on_lookup`]), queued in this thread's
    /// batch (see [`Batch`]).
    #[inline]
    pub(crate) fn record_lookup(this: &Arc<Shadow>, hash: NonZeroU32, weight: u32) {
        Shadow::record(this, Event::lookup(hash, weight));
    }

    /// A new key with this hash and weight, already known to be sampled, was
    /// stored in the real cache (called with no shard lock held): queued in this
    /// thread's batch behind the lookups before it.
    #[inline]
    pub(crate) fn record_insert(this: &Arc<Shadow>, hash: NonZeroU32, weight: u32) {
        Shadow::record(this, Event::insert(hash, weight));
    }

    /// Replays `events`, in order, under the shadows' mutex. Events for keys
    /// the current sampling leaves out are skipped: queued before a
    /// [`set_capacity`](Self::set_capacity) or a resampling changed the rate,
    /// or recorded by a shard whose copy of the rate was not yet refreshed.
    fn replay(&self, events: &[Event]) {
        let mut sims = self.sims.lock();
        let sims = &mut *sims;
        for event in events {
            // Resting (the batch's own lookups may have started the rest,
            // or it was queued before): the rest of it is dropped, as the
            // events recorded during the rest are. `rest_until` changes only
            // under this mutex.
            if self.is_resting() {
                break;
            }
            let (hash, weight) = (event.hash(), event.weight());
            if !Shadow::sampled_at(sims.bits, hash) {
                continue;
            }
            if event.is_insert() {
                self.insert_locked(sims, hash, weight);
            } else {
                self.lookup_locked(sims, hash, weight);
            }
        }
        // The next batches' length follows what the shadows now hold (they
        // fill, or start over after a resize or a resampling).
        let batch = batch_len(sims.tables[PROBATION].len());
        if self.batch.load(Relaxed) != batch {
            self.batch.store(batch, Relaxed);
        }
    }

    fn lookup_locked(&self, sims: &mut Sims, hash: NonZeroU32, weight: u32) {
        for (i, placement) in Placement::ALL.into_iter().enumerate() {
            let table = &mut sims.tables[i];
            if let Some(idx) = table.find_noting(hash, &hash.get()) {
                table.touch_locked(idx);
                sims.hits[i] += 1;
            } else if weight > 0 {
                // The real cache held it and this shadow did not. (A key
                // the real cache missed too is no evidence of filling until
                // it is stored: `insert_locked` counts that. A lookup of a
                // key that is never stored misses in every shadow alike.)
                sims.missed = true;
                table.insert_new(hash.get(), (), hash, weight, placement);
            }
        }
        sims.lookups += 1;
        if sims.lookups >= sims.period() {
            self.decide(sims);
        }
    }

    /// Ends a period: picks the placement whose shadow scores best, if by more than
    /// the margin.
    ///
    /// Rests: the placement seldom changes once a workload has settled, yet
    /// the shadows cost every sampled lookup five table operations (every
    /// lookup of a cache of up to [`SIM_CAPACITY`] units, which read four to
    /// seven times slower than under a fixed policy, and scaled to no second
    /// thread, all of them replaying under one mutex). So once the placement
    /// has held for [`SETTLED`] decisions, each time also the best of its
    /// own period and made on full shadows (or on a period in which no
    /// shadow took a new key), the shadows stop replaying for a number of
    /// periods' worth of the real cache's lookups, doubling from one up to
    /// [`MAX_REST`] while it keeps holding. On waking they refill for a
    /// period that is not scored (their contents are as old as the rest),
    /// then score one; a period whose best is not the placement keeps them
    /// awake, with rests back to one period, until it has held again. A rest
    /// also ends early when the real cache's hit ratio since it began falls
    /// more than one lookup in [`MARGIN`] under its last scored period's
    /// (see `Sims::worse_since`): a workload that hits less wakes them after
    /// a period's worth of lookups, or later when the rest is old and the
    /// fall small (the ratio is the whole rest's). The rest of the batch
    /// that started a rest, and batches flushed during it, are dropped;
    /// other threads' part-filled batches are replayed after it, into the
    /// refill period, which is not scored.
    fn decide(&self, sims: &mut Sims) {
        let (real_hits, real_misses) = self.seen.split();
        let seen = real_hits.wrapping_add(real_misses);
        let period_hits = real_hits.wrapping_sub(sims.hits_at);
        // While the shadows fill, every placement keeps every new key and
        // they tie, whatever the workload: such a period is no evidence that
        // the placement suits it. A period counts toward a rest once the
        // shadows are full (7/8 of their units, or no room for another entry
        // of their mean weight: they evict), or if no shadow took a new key
        // (the keys fit: any placement hits them all).
        let full = |t: &Table<u32, ()>| {
            let (weight, capacity) = (u128::from(t.weight), u128::from(t.capacity));
            let mean = weight / t.len().max(1) as u128;
            weight * 8 >= capacity * 7 || weight + mean > capacity
        };
        let evidence = !std::mem::take(&mut sims.missed) || sims.tables.iter().all(full);
        if sims.warming {
            sims.warming = false;
            sims.start_period(real_hits, seen);
            return;
        }
        // Scores remember about DECAY periods, so a placement must win over several:
        // each switch costs the real cache a turnover that the shadows, fixed in
        // their placements, do not pay.
        for i in 0..SHADOWS {
            sims.scores[i] = sims.scores[i] - sims.scores[i] / DECAY + sims.hits[i];
        }
        // The margin is a share of the period's lookups, counted as the whole
        // cache's over the sampling rate when that is fewer than the sample's.
        // A sample is a few keys, and one very hot key among them (Zipf's most
        // popular, say) can outnumber all the others together: it hits in
        // every shadow alike, so it adds nothing to their differences, but
        // counted in sampled lookups it swelled the margin until no placement
        // could clear it (on a Zipf(0.99) stream over 1M keys, capacity 100k,
        // 4 hash seeds in 150 kept the start placement for good, 4 points
        // under the others). Where the sample holds fewer lookups than its
        // share (it missed the hot keys, the usual case under skew), its own
        // count stays the measure, as before: what its shadows differ on is
        // all it has seen.
        // The counters are plain stores per thread slot, and threads that
        // share a slot can lose each other's increments, so the total may
        // even step back: the wrapped difference is then huge and the
        // minimum below takes the sample's count for that period.
        let period_lookups = seen.wrapping_sub(sims.seen_at);
        let real = period_lookups >> sims.bits;
        let expected = u32::try_from(real).unwrap_or(u32::MAX).min(sims.lookups);
        sims.weighed = (sims.weighed - sims.weighed / DECAY).saturating_add(expected);
        let current = self.placement.load(Relaxed) as usize;
        let best = (0..SHADOWS)
            .max_by_key(|&i| sims.scores[i])
            .unwrap_or(current);
        let margin = (sims.weighed / margin_divisor(current, best)).max(2);
        sims.periods = sims.periods.saturating_add(1);
        let switch =
            sims.periods >= FIRST_DECISION && sims.scores[best] > sims.scores[current] + margin;
        if switch {
            self.placement.store(best as u32, Relaxed);
        }
        // Whether the placement also led this period alone (within the
        // period's share of the margin).
        let period_best = (0..SHADOWS)
            .max_by_key(|&i| sims.hits[i])
            .unwrap_or(current);
        let period_margin = (expected / margin_divisor(current, period_best)).max(2);
        let led = sims.hits[current] + period_margin >= sims.hits[period_best];
        if switch || !led {
            sims.kept = 0;
            sims.rest = 1;
        } else if sims.periods >= FIRST_DECISION && evidence {
            sims.kept += 1;
        }
        if sims.kept >= SETTLED {
            // The rest's length varies by up to half again, so that the
            // periods scored between rests do not fall on the same phase of
            // a periodic workload each time (a loop, a zigzag), which would
            // score the placements on that phase alone.
            let lookups = u64::from(sims.period()) << sims.bits;
            let rest = lookups * u64::from(sims.rest);
            let jitter = u64::from(mix(
                NonZeroU32::new(seen as u32 | 1).unwrap_or(NonZeroU32::MIN)
            ));
            let rest = rest + ((rest / 2).saturating_mul(jitter) >> 32);
            let until = seen.saturating_add(rest).max(1);
            sims.rested_on = match period_lookups <= u64::MAX >> 8 {
                true => (period_hits, period_lookups),
                false => (0, 0),
            };
            self.rest_until.store(until, Relaxed);
            sims.rest = (sims.rest * 2).min(MAX_REST);
            // Waking, one scored period that holds rests again.
            sims.kept = SETTLED - 1;
        }
        sims.start_period(real_hits, seen);
    }

    /// While the shadows rest: every [`REST_CHECK`]th sampled lookup a
    /// thread records looks whether the rest is over, and the first to find
    /// it over wakes the shadows.
    #[cold]
    fn rest(&self) {
        #[cfg(not(larder_loom))]
        {
            let due = REST_TICKS.with(|ticks| {
                let t = ticks.get();
                ticks.set(t.wrapping_add(1));
                t % REST_CHECK == 0
            });
            if !due {
                return;
            }
        }
        self.wake_if_due();
    }

    /// Ends any rest at once, without a refill (the unbuffered test paths,
    /// [`Shadow::on_lookup`] and [`Shadow::on_insert`], replay every event:
    /// tests of the decisions themselves; rests are tested through the
    /// buffered path).
    #[cfg(all(test, not(larder_loom)))]
    fn stay_awake(&self) {
        let _sims = self.sims.lock();
        self.rest_until.store(0, Relaxed);
    }

    /// Wakes resting shadows if their rest is over or the real cache's hit
    /// ratio fell (see [`Shadow::decide`]).
    fn wake_if_due(&self) {
        let mut sims = self.sims.lock();
        let until = self.rest_until.load(Relaxed);
        if until == 0 {
            return;
        }
        let (hits, misses) = self.seen.split();
        let seen = hits.wrapping_add(misses);
        if seen < until && !sims.worse_since(hits, seen) {
            return;
        }
        sims.start_period(hits, seen);
        sims.warming = true;
        self.rest_until.store(0, Relaxed);
    }

    /// A new key with this hash and weight was stored in the real cache.
    /// Applied at once (the buffered path is [`Shadow::record_insert`]).
    #[cfg(all(test, not(larder_loom)))]
    pub(crate) fn on_insert(&self, hash: NonZeroU32, weight: u32) {
        self.stay_awake();
        if self.sampled(hash) {
            self.replay(&[Event::insert(hash, weight)]);
        }
    }

    fn insert_locked(&self, sims: &mut Sims, hash: NonZeroU32, weight: u32) {
        for (table, placement) in sims.tables.iter_mut().zip(Placement::ALL) {
            if table.find_noting(hash, &hash.get()).is_none() {
                sims.missed = true;
                table.insert_new(hash.get(), (), hash, weight, placement);
            }
        }
        // Heavy entries leave a full shadow with too few keys to judge by: sample
        // twice as many keys (and start the shadows over).
        let probe = &sims.tables[PROBATION];
        if sims.bits > 0
            && probe.weight + u64::from(weight) > probe.capacity
            && probe.len() < MIN_SIM_ENTRIES
        {
            let bits = sims.bits - 1;
            *sims = Sims::new(sims.capacity, bits, self.seen.split());
            self.bits.store(bits, Relaxed);
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        let sims = self.sims.lock();
        sims.tables.iter().map(Table::heap_bytes).sum()
    }
}

/// The most events a thread queues before replaying them (see [`Batch`]).
#[cfg(not(larder_loom))]
const BATCH: usize = 32;

/// A batch is at most this fraction (1/`REORDER`) of the entries the
/// shadows hold.
const REORDER: usize = 32;

/// Events a thread queues before replaying them, for shadows that hold
/// `held` entries: a [`REORDER`]th of them, at least 1 and at most [`BATCH`].
///
/// Batches reorder the shadows' stream: with two threads, each thread's
/// events arrive a batch at a time, so two requests the real cache saw side
/// by side can reach the shadows a batch apart. In shadows of 1,024 entries
/// a batch of 32 is 3% of them, but a cache of 100 entries (every key
/// sampled, shadows of 100) saw its reuse distances moved by a third: with
/// two threads, cs at 100 read 1.3 points under one thread (`hit_ratio
/// --threads 2 --window 8`), and 0.5 or less with events replayed one by
/// one. Counted in entries, not weight units, so that shadows of heavy
/// entries (which hold few) get short batches too; shadows that are still
/// filling, or start over, replay their events one at a time until they
/// hold enough.
fn batch_len(held: usize) -> u32 {
    #[cfg(not(larder_loom))]
    let most = BATCH;
    #[cfg(larder_loom)]
    let most = 1;
    // In 1..=32: the cast cannot truncate.
    (held / REORDER).clamp(1, most) as u32
}

/// A sampled lookup or insert, packed: the hash in the high half, the weight
/// (28 bits at most) above the lowest bit, which is set for an insert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Event(u64);

impl Event {
    fn lookup(hash: NonZeroU32, weight: u32) -> Self {
        debug_assert!(weight <= crate::slab::MAX_WEIGHT);
        Event(u64::from(hash.get()) << 32 | u64::from(weight) << 1)
    }

    fn insert(hash: NonZeroU32, weight: u32) -> Self {
        Event(Event::lookup(hash, weight).0 | 1)
    }

    fn hash(self) -> NonZeroU32 {
        NonZeroU32::new((self.0 >> 32) as u32).unwrap_or(NonZeroU32::MIN)
    }

    fn weight(self) -> u32 {
        self.0 as u32 >> 1
    }

    fn is_insert(self) -> bool {
        self.0 & 1 == 1
    }
}

/// The sampled events a thread has queued for one cache's shadows.
///
/// Replaying an event takes the shadows' mutex and works through five tables.
/// When every event took the mutex, a cache small enough to sample every key
/// (at most [`SIM_CAPACITY`] units) paid that on every read, and its threads
/// queued on the one mutex: two threads read fewer keys per second than one.
/// So a thread queues its events and replays them [`BATCH`] at a time (fewer
/// while the shadows hold under 1,024 entries: see [`batch_len`]), taking the
/// mutex once per batch. A thread's events keep their order, lookups and
/// inserts together; the threads' streams interleave a batch at a time. The
/// shadows all see the same stream, so what they compare stays fair.
///
/// A thread keeps one batch, for the cache it last recorded for: recording for
/// another cache replays the batch first, and so does the thread's exit. The
/// batch holds its cache's shadows weakly, so a dropped cache's events are
/// dropped with it.
///
/// Two costs of this: a thread's last few events (up to 31) wait until it
/// records more, records for another adaptive cache, or exits, so a worker
/// that goes quiet holds them back from the shadows; and a thread that
/// alternates between two adaptive caches replays a batch at every switch,
/// which saves nothing over the mutex per event (the shadows see the same
/// stream either way).
#[cfg(not(larder_loom))]
struct Batch {
    shadow: std::sync::Weak<Shadow>,
    events: [Event; BATCH],
    len: usize,
}

#[cfg(not(larder_loom))]
impl Batch {
    fn is_for(&self, shadow: &Arc<Shadow>) -> bool {
        std::ptr::eq(self.shadow.as_ptr(), Arc::as_ptr(shadow))
    }
}

#[cfg(not(larder_loom))]
impl Drop for Batch {
    fn drop(&mut self) {
        if self.len > 0 {
            if let Some(shadow) = self.shadow.upgrade() {
                shadow.replay(&self.events[..self.len]);
            }
        }
    }
}

#[cfg(not(larder_loom))]
thread_local! {
    static QUEUED: std::cell::RefCell<Option<Batch>> = const { std::cell::RefCell::new(None) };
    /// Sampled lookups this thread let pass while shadows rested (see
    /// [`Shadow::rest`]).
    static REST_TICKS: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl Shadow {
    /// Queues `event` in this thread's batch, replaying the batch when full.
    /// Replays at once if the thread has no batch to queue in (its
    /// thread-locals are being torn down).
    #[inline]
    fn record(this: &Arc<Shadow>, event: Event) {
        if this.is_resting() {
            this.rest();
            return;
        }
        #[cfg(not(larder_loom))]
        {
            let queued = QUEUED.try_with(|cell| {
                let Ok(mut slot) = cell.try_borrow_mut() else {
                    return false;
                };
                let batch = match &mut *slot {
                    Some(batch) if batch.is_for(this) => batch,
                    other => {
                        // Replays the other cache's batch (its `Drop`).
                        drop(other.take());
                        other.insert(Batch {
                            shadow: Arc::downgrade(this),
                            events: [Event(0); BATCH],
                            len: 0,
                        })
                    }
                };
                batch.events[batch.len] = event;
                batch.len += 1;
                if batch.len >= this.batch.load(Relaxed) as usize {
                    let len = std::mem::take(&mut batch.len);
                    this.replay(&batch.events[..len]);
                }
                true
            });
            if queued == Ok(true) {
                return;
            }
        }
        this.replay(&[event]);
    }

    /// Replays this thread's queued events, if they are for these shadows.
    #[cfg(all(test, not(larder_loom)))]
    pub(crate) fn flush_thread(this: &Arc<Shadow>) {
        QUEUED.with(|cell| {
            let mut slot = cell.borrow_mut();
            if slot.as_ref().is_some_and(|batch| batch.is_for(this)) {
                drop(slot.take());
            }
        });
    }
}

#[cfg(all(test, not(larder_loom)))]
mod tests {
    use super::*;

    /// Shadows for a cache of `capacity` units, with counters of their own.
    fn shadow(capacity: u64) -> Shadow {
        Shadow::new(capacity, Arc::new(Lookups::new()))
    }

    fn hash(i: u32) -> NonZeroU32 {
        NonZeroU32::new(i.wrapping_mul(0x9E37_79B9) | 1).unwrap()
    }

    fn lookups(shadow: &Shadow) -> u32 {
        let sims = shadow.sims.lock();
        sims.lookups + sims.periods * sims.period()
    }

    #[test]
    fn events_pack_and_unpack() {
        for weight in [0, 1, 1000, crate::slab::MAX_WEIGHT] {
            for h in [1, 2, 0x8000_0000, u32::MAX] {
                let h = NonZeroU32::new(h).unwrap();
                let l = Event::lookup(h, weight);
                let i = Event::insert(h, weight);
                assert_eq!((l.hash(), l.weight(), l.is_insert()), (h, weight, false));
                assert_eq!((i.hash(), i.weight(), i.is_insert()), (h, weight, true));
            }
        }
    }

    #[test]
    fn a_thread_replays_its_events_a_batch_at_a_time_and_in_order() {
        let shadow = Arc::new(shadow(1024));
        fill(&shadow, 1024);
        // A miss, the insert that follows it, then a hit: in this order the
        // shadows hold the key by the time of the hit.
        let h = hash(7);
        Shadow::record_lookup(&shadow, h, 0);
        Shadow::record_insert(&shadow, h, 1);
        Shadow::record_lookup(&shadow, h, 1);
        assert_eq!(lookups(&shadow), 0, "queued, not replayed");
        for i in 3..BATCH as u32 {
            Shadow::record_lookup(&shadow, hash(1000 + i), 0);
        }
        // The batch is full: replayed.
        assert_eq!(lookups(&shadow), BATCH as u32 - 1);
        let sims = shadow.sims.lock();
        assert!(sims.hits.iter().all(|&h| h == 1), "{:?}", sims.hits);
    }

    /// Fills `shadow` (every key sampled) with `n` keys, so that its
    /// threads' batches grow to `n / REORDER` events.
    fn fill(shadow: &Shadow, n: u32) {
        for i in 0..n {
            shadow.on_insert(hash(u32::MAX - i), 1);
        }
        assert_eq!(shadow.batch.load(Relaxed), batch_len(n as usize));
    }

    /// A lookup as the cache makes it: counted, then recorded if sampled
    /// (hits of `weight`; 0 is a miss, and the key is then stored).
    fn looked_up(shadow: &Arc<Shadow>, h: NonZeroU32, weight: u32) {
        shadow.seen.count(0, weight > 0);
        if shadow.sampled(h) {
            Shadow::record_lookup(shadow, h, weight);
            if weight == 0 {
                Shadow::record_insert(shadow, h, 1);
            }
        }
    }

    fn resting(shadow: &Shadow) -> bool {
        shadow.is_resting()
    }

    /// Reads the 50 keys `fill` stored in turn, all hits, until the shadows
    /// rest or `most` lookups were made; returns how many were.
    fn read_until_resting(shadow: &Arc<Shadow>, most: u32) -> u32 {
        let mut n = 0;
        while !resting(shadow) && n < most {
            looked_up(shadow, hash(u32::MAX - n % 50), 1);
            n += 1;
        }
        n
    }

    #[test]
    fn settled_shadows_rest_longer_each_time_and_refill_before_scoring() {
        // Every key sampled, 50 keys that every shadow holds: every
        // placement hits every lookup, so the start placement holds and
        // leads every period alike.
        let shadow = Arc::new(shadow(100));
        fill(&shadow, 50);
        let period = shadow.sims.lock().period();
        let n = read_until_resting(&shadow, 20 * period);
        assert!(resting(&shadow), "never rested");
        // The first decision at the end of the second period, then SETTLED
        // kept decisions in all: the shadows rest at the end of the ninth.
        assert_eq!(n, (FIRST_DECISION - 1 + SETTLED) * period);
        let mut longer = 0;
        for rest in [1, 2, 4] {
            let replayed = lookups(&shadow);
            let periods = shadow.sims.lock().periods;
            // Resting, nothing is replayed; the rest lasts `rest` periods'
            // worth of lookups (each thread looks every REST_CHECK).
            // (Each rest is drawn up to half again longer.)
            let mut n = 0;
            while resting(&shadow) {
                assert!(
                    n <= rest * period * 3 / 2 + REST_CHECK,
                    "rest {rest} overran"
                );
                looked_up(&shadow, hash(u32::MAX - n % 50), 1);
                n += 1;
            }
            assert!(n >= rest * period, "rest {rest} ended after {n}");
            longer += u32::from(n > rest * period + REST_CHECK);
            assert_eq!(lookups(&shadow), replayed, "replayed while resting");
            // Awake: a period that refills the shadows and is not scored,
            // then a scored one that holds and rests again, twice as long.
            assert!(shadow.sims.lock().warming);
            Shadow::flush_thread(&shadow);
            let n = read_until_resting(&shadow, 4 * period);
            assert_eq!(shadow.sims.lock().periods, periods + 1, "one period scored");
            assert!(n.abs_diff(2 * period) <= BATCH as u32, "{n} lookups awake");
            assert_eq!(shadow.sims.lock().rest, (rest * 4).min(MAX_REST));
        }
        assert!(longer > 0, "no rest was drawn longer than its periods");
    }

    #[test]
    fn lookups_of_keys_never_stored_do_not_keep_the_shadows_awake() {
        // The 50 keys fit, and every other lookup is of a key no one
        // stores: a miss in every shadow alike, which says nothing about
        // the placement, so the shadows still rest.
        let shadow = Arc::new(shadow(100));
        fill(&shadow, 50);
        let period = shadow.sims.lock().period();
        let mut n = 0;
        while !resting(&shadow) && n < 40 * period {
            looked_up(&shadow, hash(u32::MAX - n % 50), 1);
            shadow.seen.count(0, false);
            Shadow::record_lookup(&shadow, hash(n), 0);
            n += 1;
        }
        assert!(resting(&shadow), "never rested");
    }

    #[test]
    fn a_falling_hit_ratio_wakes_resting_shadows_early() {
        let shadow = Arc::new(shadow(100));
        fill(&shadow, 50);
        let period = shadow.sims.lock().period();
        // Through rests of one, two and four periods to one of eight.
        for _ in 0..3 {
            read_until_resting(&shadow, 20 * period);
            while resting(&shadow) {
                looked_up(&shadow, hash(u32::MAX), 1);
            }
            Shadow::flush_thread(&shadow);
        }
        read_until_resting(&shadow, 20 * period);
        assert!(resting(&shadow));
        assert_eq!(shadow.sims.lock().rest, 16, "this rest is of eight periods");
        // New keys, all misses: the shadows wake once a period's worth of
        // lookups shows it (at the next look), not after eight.
        let mut n = 0;
        while resting(&shadow) {
            looked_up(&shadow, hash(n), 0);
            n += 1;
        }
        assert!(n >= period && n <= period + REST_CHECK, "woke after {n}");
        // Nothing the thread had queued was replayed while they rested.
        assert!(shadow.sims.lock().warming);
    }

    #[test]
    fn batches_are_a_thirty_second_of_what_the_shadows_hold() {
        assert_eq!(batch_len(0), 1);
        assert_eq!(batch_len(100), 3);
        assert_eq!(batch_len(1024), BATCH as u32);
        assert_eq!(batch_len(usize::MAX), BATCH as u32);
        // A cache of 100 samples every key into shadows of 100: once they
        // are full, a batch is 3 events.
        let shadow = Arc::new(shadow(100));
        assert_eq!(shadow.batch.load(Relaxed), 1, "empty shadows");
        fill(&shadow, 100);
        let before = lookups(&shadow);
        Shadow::record_lookup(&shadow, hash(1), 0);
        Shadow::record_lookup(&shadow, hash(2), 0);
        assert_eq!(lookups(&shadow), before, "queued, not replayed");
        Shadow::record_lookup(&shadow, hash(3), 0);
        assert_eq!(lookups(&shadow), before + 3);
    }

    #[test]
    fn heavy_entries_make_short_batches() {
        // 1 MiB of 1,000-unit entries: the shadows end up sampling densely
        // enough to hold about 128 entries, and batches follow the entries
        // held, not the units.
        let shadow = shadow(1 << 20);
        for i in 0..200_000 {
            shadow.on_insert(hash(i), 1000);
        }
        let held = shadow.sims.lock().tables[PROBATION].len();
        let batch = shadow.batch.load(Relaxed);
        assert_eq!(batch, batch_len(held), "{held} entries held");
        assert!(batch <= 4, "a batch of {batch} for {held} entries");
    }

    #[test]
    fn another_cache_or_the_thread_exit_replays_a_batch() {
        let (a, b) = (Arc::new(shadow(1024)), Arc::new(shadow(1024)));
        fill(&a, 1024);
        fill(&b, 1024);
        let (a2, b2) = (Arc::clone(&a), Arc::clone(&b));
        std::thread::spawn(move || {
            Shadow::record_lookup(&a2, hash(1), 0);
            Shadow::record_lookup(&a2, hash(2), 0);
            // Recording for `b` replays `a`'s batch first.
            Shadow::record_lookup(&b2, hash(3), 0);
            assert_eq!(lookups(&a2), 2);
            assert_eq!(lookups(&b2), 0);
            // The thread's exit replays `b`'s.
        })
        .join()
        .unwrap();
        assert_eq!((lookups(&a), lookups(&b)), (2, 1));
    }

    #[test]
    fn events_for_dropped_shadows_are_dropped() {
        let a = Arc::new(shadow(1024));
        fill(&a, 1024);
        Shadow::record_lookup(&a, hash(1), 0);
        drop(a);
        let b = Arc::new(shadow(1024));
        Shadow::record_lookup(&b, hash(2), 0);
        Shadow::flush_thread(&b);
        assert_eq!(lookups(&b), 1);
    }

    /// `set_capacity` starts the simulations over at a new sampling rate: a
    /// thread's events queued before it (sampled at the old rate) must not
    /// bring keys outside the new sample into them.
    #[test]
    fn events_queued_before_a_resize_stay_out_of_the_new_simulations() {
        let shadow = Arc::new(shadow(1024)); // every key sampled
        shadow.set_capacity(1024);
        fill(&shadow, 1024);
        let unsampled: Vec<_> = (1..)
            .map(hash)
            .filter(|&h| !Shadow::sampled_at(sampling_bits(1 << 20), h))
            .take(8)
            .collect();
        for &h in &unsampled {
            Shadow::record_lookup(&shadow, h, 0);
            Shadow::record_insert(&shadow, h, 1);
        }
        // Grow: one key in 1,024 is sampled from now on.
        shadow.set_capacity(1 << 20);
        Shadow::flush_thread(&shadow);
        let sims = shadow.sims.lock();
        assert_eq!(sims.tables[PROBATION].len(), 0, "unsampled keys replayed");
        assert_eq!(sims.lookups, 0, "lookups from before the resize counted");
    }

    #[test]
    fn sampling_scales_with_the_capacity() {
        assert_eq!(shadow(1024).bits.load(Relaxed), 0);
        assert_eq!(shadow(1025).bits.load(Relaxed), 1);
        assert_eq!(shadow(1 << 20).bits.load(Relaxed), 10);
        assert_eq!(shadow(u64::MAX).bits.load(Relaxed), 24);
    }

    #[test]
    fn heavy_entries_make_sampling_denser() {
        // 1 MiB of weight sampled down to 1,024 units holds one 1,000-unit entry:
        // the shadow must sample more keys until it holds enough to judge by.
        let shadow = shadow(1 << 20);
        for i in 0..200_000 {
            shadow.on_insert(hash(i), 1000);
        }
        let bits = shadow.bits.load(Relaxed);
        assert!(bits < 4, "still sampling 1 key in 2^{bits}");
        let sims = shadow.sims.lock();
        assert!(sims.tables[PROBATION].len() >= MIN_SIM_ENTRIES / 2);
    }

    /// Replays `keys` as a cache-aside caller of a real cache that hits exactly
    /// where the probation shadow does.
    fn replay(shadow: &Shadow, keys: impl Iterator<Item = u32>) {
        for k in keys {
            let h = hash(k);
            let hit = shadow.sims.lock().tables[PROBATION].find(h, &h.get());
            let weight = u32::from(hit.is_some());
            shadow.on_lookup(h, weight);
            if weight == 0 {
                shadow.on_insert(h, 1);
            }
        }
    }

    #[test]
    fn the_first_decision_waits_for_the_second_period() {
        // Each key read twice, 10 keys apart, never again, in a cache of 64: once
        // the shadows are full (half-way through the first period of 256 lookups),
        // the recency shadow hits every second lookup and the probation-first ones
        // (whose probation holds 4 entries) never. Recency leads by the end of the
        // first period but takes over only at the end of the second.
        let shadow = shadow(64);
        let mut keys = (0..u32::MAX).flat_map(|i| [i, i.wrapping_sub(10)]);
        let mut step = |shadow: &Shadow| {
            let h = hash(keys.next().unwrap());
            let hit = shadow.sims.lock().tables[PROBATION].find(h, &h.get());
            shadow.on_lookup(h, u32::from(hit.is_some()));
            if hit.is_none() {
                shadow.on_insert(h, 1);
            }
        };
        while shadow.sims.lock().periods < 1 {
            step(&shadow);
        }
        let scores = shadow.sims.lock().scores;
        let guarded = Placement::Guarded.index();
        let recency = Placement::Recency.index();
        assert!(scores[recency] > scores[guarded] + 32, "{scores:?}");
        assert_eq!(shadow.placement(), START);
        while shadow.sims.lock().periods < FIRST_DECISION {
            step(&shadow);
        }
        let p = shadow.placement();
        assert!(matches!(p, Placement::Recency | Placement::Wide), "{p:?}");
    }

    #[test]
    fn a_sampled_hot_key_does_not_hold_back_a_better_placement() {
        // 16,384 units sampled 1 key in 16. Each key is read twice, 2,000 keys
        // apart (about 125 in the sample, beyond a 3% probation), and never
        // again: the recency and wide placements hit every second read, the
        // others almost none. Between two pairs one key, sampled,
        // is read 4 times: twice as many lookups as all the others, in the
        // whole stream, but 32 times as many as the other sampled keys. It hits
        // in every shadow alike; counted in sampled lookups, the margin it
        // swells is larger than the recency shadow's lead and the cache kept
        // its start placement.
        let shadow = shadow(1 << 14);
        assert_eq!(shadow.bits(), 4);
        let hot = (1..).find(|&k| shadow.sampled(hash(k))).unwrap();
        let keys = (2_000..52_000u32).flat_map(|i| {
            [i, i - 2_000]
                .into_iter()
                .chain(std::iter::repeat_n(hot, 4))
        });
        replay(&shadow, keys);
        let sims = shadow.sims.lock();
        assert!(sims.periods > 50, "{} periods", sims.periods);
        // The margin counted the whole stream's lookups over the sampling
        // rate: per step 6 lookups, of which 4 + 2/16 sampled, so a period
        // of `period()` sampled lookups holds period() * 6 / 4.125 in all,
        // and 1/16 of that is the period's share; `weighed` settles at
        // DECAY periods' worth (the sampled count would give 10 times it).
        let share = f64::from(sims.period()) * 6.0 / 4.125 / 16.0;
        let settled = f64::from(DECAY) * share;
        let weighed = f64::from(sims.weighed);
        assert!(
            (weighed - settled).abs() < settled / 4.0,
            "weighed {weighed}, expected about {settled}"
        );
        drop(sims);
        let p = shadow.placement();
        assert!(matches!(p, Placement::Recency | Placement::Wide), "{p:?}");
    }

    #[test]
    fn a_loop_keeps_probation_and_a_recency_workload_switches() {
        let shadow = shadow(256);
        assert_eq!(shadow.placement(), START);
        // A loop over 300 keys in 256 entries: CLOCK never hits, probation keeps
        // most of the loop.
        replay(&shadow, (0..200).flat_map(|_| 1_000_000..1_000_300u32));
        let p = shadow.placement();
        assert!(matches!(p, Placement::Narrow | Placement::Guarded), "{p:?}");
        // Each key read twice, 100 keys apart, never again: recency wins.
        replay(
            &shadow,
            (0..20_000u32).flat_map(|i| [i, i.wrapping_sub(100)]),
        );
        let p = shadow.placement();
        assert!(matches!(p, Placement::Recency | Placement::Wide), "{p:?}");
    }
}
