//! Model tests: random operation sequences against a reference model.
//!
//! - One shard with `Policy::lru()`: the model is an exact LRU list with TTLs, so it
//!   predicts every result, every eviction and every counter.
//! - Many shards, every policy: the model predicts what may be returned (never a
//!   stale or expired value), and the bounds and counter identities must hold.

use larder::{Cache, Clock, ManualClock, Policy};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Clone, Debug)]
enum Act {
    Insert(u8, u16),
    InsertTtl(u8, u16, u16),
    Get(u8),
    Remove(u8),
    Touch(u8, Option<u16>),
    Advance(u16),
}

impl Arbitrary for Act {
    fn arbitrary(g: &mut Gen) -> Self {
        let k = u8::arbitrary(g) % 12;
        match u8::arbitrary(g) % 12 {
            0..=2 => Act::Insert(k, u16::arbitrary(g)),
            3..=4 => Act::InsertTtl(k, u16::arbitrary(g), 1 + u16::arbitrary(g) % 50),
            5..=8 => Act::Get(k),
            9 => Act::Remove(k),
            10 => Act::Touch(k, Option::<u16>::arbitrary(g).map(|t| 1 + t % 50)),
            _ => Act::Advance(u16::arbitrary(g) % 30),
        }
    }
}

/// Exact LRU with deadlines; front = least recently used.
struct Model {
    cap: usize,
    now: u64,
    list: VecDeque<(u8, u16, Option<u64>)>,
    hits: u64,
    misses: u64,
    inserts: u64,
    updates: u64,
    evictions: u64,
    expirations: u64,
    removals: u64,
}

impl Model {
    fn pos(&self, k: u8) -> Option<usize> {
        self.list.iter().position(|e| e.0 == k)
    }
    fn expire(&mut self) {
        let now = self.now;
        let before = self.list.len();
        self.list.retain(|e| e.2.is_none_or(|d| now < d));
        self.expirations += (before - self.list.len()) as u64;
    }
    fn insert(&mut self, k: u8, v: u16, ttl: Option<u16>) {
        let deadline = ttl.map(|t| self.now + u64::from(t));
        if let Some(i) = self.pos(k) {
            self.list.remove(i);
            self.updates += 1;
        } else {
            if self.list.len() == self.cap {
                self.list.pop_front();
                self.evictions += 1;
            }
            self.inserts += 1;
        }
        self.list.push_back((k, v, deadline));
    }
}

fn manual_cache(cap: u64, shards: usize, policy: Policy) -> (Cache<u8, u16>, ManualClock) {
    let (clock, hand) = Clock::manual();
    let c = Cache::builder()
        .max_entries(cap)
        .shards(shards)
        .policy(policy)
        .clock(clock)
        .build()
        .unwrap();
    (c, hand)
}

fn exact_lru(cap: u8, acts: Vec<Act>) -> TestResult {
    let cap = 1 + u64::from(cap % 8);
    let (c, hand) = manual_cache(cap, 1, Policy::lru());
    let mut m = Model {
        cap: cap as usize,
        now: 0,
        list: VecDeque::new(),
        hits: 0,
        misses: 0,
        inserts: 0,
        updates: 0,
        evictions: 0,
        expirations: 0,
        removals: 0,
    };
    for act in acts {
        match act {
            Act::Insert(k, v) => {
                c.insert(k, v);
                m.insert(k, v, None);
            }
            Act::InsertTtl(k, v, t) => {
                c.insert_with_ttl(k, v, Duration::from_millis(u64::from(t)));
                m.insert(k, v, Some(t));
            }
            Act::Get(k) => {
                let want = m.pos(k).map(|i| {
                    let e = m.list.remove(i).unwrap();
                    m.list.push_back(e);
                    e.1
                });
                if want.is_some() {
                    m.hits += 1;
                } else {
                    m.misses += 1;
                }
                let got = c.get(&k);
                if got != want {
                    return TestResult::error(format!("get {k}: {got:?} != {want:?}"));
                }
            }
            Act::Remove(k) => {
                let want = m.pos(k).map(|i| m.list.remove(i).unwrap().1);
                if want.is_some() {
                    m.removals += 1;
                }
                let got = c.remove(&k);
                if got != want {
                    return TestResult::error(format!("remove {k}: {got:?} != {want:?}"));
                }
            }
            Act::Touch(k, t) => {
                let now = m.now;
                let want = m
                    .pos(k)
                    .map(|i| m.list[i].2 = t.map(|t| now + u64::from(t)));
                let got = c.touch(&k, t.map(|t| Duration::from_millis(u64::from(t))));
                if got != want.is_some() {
                    return TestResult::error(format!("touch {k}: {got} != {}", want.is_some()));
                }
            }
            Act::Advance(ms) => {
                hand.advance(Duration::from_millis(u64::from(ms)));
                m.now += u64::from(ms);
                // Sweeping at each tick keeps the cache's slots equal to the model's.
                c.run_pending_tasks();
                m.expire();
            }
        }
        c.validate();
        if c.len() != m.list.len() {
            return TestResult::error(format!("len {} != {}", c.len(), m.list.len()));
        }
    }
    let s = c.stats();
    let got = (
        s.hits,
        s.misses,
        s.inserts,
        s.updates,
        s.evictions,
        s.expirations,
        s.removals,
    );
    let want = (
        m.hits,
        m.misses,
        m.inserts,
        m.updates,
        m.evictions,
        m.expirations,
        m.removals,
    );
    if got != want {
        return TestResult::error(format!("stats {got:?} != {want:?}"));
    }
    TestResult::passed()
}

#[test]
fn one_shard_lru_matches_exact_model() {
    QuickCheck::new()
        .tests(3_000)
        .quickcheck(exact_lru as fn(u8, Vec<Act>) -> TestResult);
}

fn bounded(cap: u8, shards: u8, policy: u8, acts: Vec<Act>) -> TestResult {
    let cap = u64::from(cap % 20);
    let shards = 1usize << (shards % 4);
    let policy = [
        Policy::adaptive(),
        Policy::s3fifo(),
        Policy::clock(),
        Policy::lru(),
    ][usize::from(policy % 4)]
    .clone();
    let (c, hand) = manual_cache(cap, shards, policy);
    // What each key may hold: its last written value and deadline (None: removed).
    let mut last: [Option<(u16, Option<u64>)>; 12] = [None; 12];
    let mut now = 0u64;
    let mut gets = 0u64;
    for act in acts {
        match act {
            Act::Insert(k, v) => {
                c.insert(k, v);
                last[usize::from(k)] = Some((v, None));
            }
            Act::InsertTtl(k, v, t) => {
                c.insert_with_ttl(k, v, Duration::from_millis(u64::from(t)));
                last[usize::from(k)] = Some((v, Some(now + u64::from(t))));
            }
            Act::Get(k) => {
                gets += 1;
                if let Some(v) = c.get(&k) {
                    match last[usize::from(k)] {
                        Some((want, deadline)) if want == v && deadline.is_none_or(|d| now < d) => {
                        }
                        other => {
                            return TestResult::error(format!(
                                "get {k} = {v}, model {other:?} at {now}"
                            ))
                        }
                    }
                }
            }
            Act::Remove(k) => {
                c.remove(&k);
                last[usize::from(k)] = None;
            }
            Act::Touch(k, t) => {
                if c.touch(&k, t.map(|t| Duration::from_millis(u64::from(t)))) {
                    match &mut last[usize::from(k)] {
                        Some((_, d)) => *d = t.map(|t| now + u64::from(t)),
                        None => return TestResult::error(format!("touched removed key {k}")),
                    }
                }
            }
            Act::Advance(ms) => {
                hand.advance(Duration::from_millis(u64::from(ms)));
                now += u64::from(ms);
            }
        }
        c.validate();
        if c.len() as u64 > cap || c.weight() > cap {
            return TestResult::error(format!("over capacity: {} > {cap}", c.len()));
        }
    }
    let s = c.stats();
    if s.hits + s.misses != gets {
        return TestResult::error(format!(
            "{} hits + {} misses != {gets} gets",
            s.hits, s.misses
        ));
    }
    // Every stored entry is still here or left exactly once.
    if s.inserts != c.len() as u64 + s.evictions + s.expirations + s.removals {
        return TestResult::error(format!("entries not conserved: {s:?}, len {}", c.len()));
    }
    TestResult::passed()
}

#[test]
fn many_shards_keep_bounds_ttl_and_counters() {
    QuickCheck::new()
        .tests(3_000)
        .quickcheck(bounded as fn(u8, u8, u8, Vec<Act>) -> TestResult);
}

/// Thousands of keys through a cache whose weight bound never binds (so the
/// model is exact): the tables grow many times, removals leave dead slots in
/// the policy queues, churn forces rebuilds, and every rebuild moves every
/// entry. Every read must see the last value written, and a snapshot walk
/// (which spans rebuilds only between calls, but goes by hash order) must
/// carry every entry over exactly once.
/// (The actions come from a generator of their own: quickcheck's vectors are a
/// few hundred actions, too few to grow a table many times.)
fn grows_and_rebuilds_exactly(seed: u64, policy: u8, shards: u8) -> TestResult {
    let policy = match policy % 4 {
        0 => Policy::lru(),
        1 => Policy::clock(),
        2 => Policy::s3fifo(),
        _ => Policy::default(),
    };
    let c: Cache<u16, u32> = Cache::builder()
        .max_weight(1 << 20)
        .weigher(|_, _| 1)
        .shards(1 << (shards % 3))
        .policy(policy)
        .build()
        .unwrap();
    let mut model = std::collections::HashMap::new();
    let mut g = Gen::new(1 << 16);
    let keys = 500 + (seed % 3000) as u16;
    for step in 0..6_000u32 {
        let r = u64::arbitrary(&mut g);
        let k = (r >> 8) as u16 % keys;
        match r % 8 {
            0..=3 => {
                c.insert(k, step);
                model.insert(k, step);
            }
            4 | 5 => {
                if c.remove(&k) != model.remove(&k) {
                    return TestResult::error(format!("remove {k} at {step}"));
                }
            }
            _ => {
                if c.get(&k) != model.get(&k).copied() {
                    return TestResult::error(format!("get {k} at {step}"));
                }
            }
        }
        if step % 1_000 == 0 {
            c.validate();
        }
    }
    c.validate();
    if c.len() != model.len() {
        return TestResult::error(format!("len {} != {}", c.len(), model.len()));
    }
    let mut file = Vec::new();
    c.save(&mut file).unwrap();
    let copy: Cache<u16, u32> = Cache::builder()
        .max_weight(1 << 20)
        .weigher(|_, _| 1)
        .build()
        .unwrap();
    copy.restore(&file[..]).unwrap();
    for (k, v) in &model {
        if copy.peek(k) != Some(*v) {
            return TestResult::error(format!("restored {k}"));
        }
    }
    TestResult::from_bool(copy.len() == model.len())
}

#[test]
fn tables_grow_and_rebuild_without_losing_or_mixing_entries() {
    QuickCheck::new()
        .tests(60)
        .quickcheck(grows_and_rebuilds_exactly as fn(u64, u8, u8) -> TestResult);
}

/// The same under a weight bound that binds, with weights that change on
/// replacement (a heavier value is taken out of the policy and linked again
/// while others are evicted) and TTLs beyond the slots' 32-bit deadlines
/// (kept in a side table by position): rebuilds must carry both along. The
/// clock moves a day at a time, so those deadlines pass: a read returns
/// nothing, or the last value written if its deadline has not passed.
fn bounded_tables_rebuild_without_stale_reads(seed: u64, policy: u8) -> TestResult {
    let policy = match policy % 4 {
        0 => Policy::lru(),
        1 => Policy::clock(),
        2 => Policy::s3fifo(),
        _ => Policy::default(),
    };
    let (clock, hand) = Clock::manual();
    let c: Cache<u16, u32> = Cache::builder()
        .max_weight(2_000)
        .weigher(|_, v: &u32| v % 4 + 1)
        .shards(2)
        .policy(policy)
        .clock(clock)
        .build()
        .unwrap();
    // Key -> (last value, its deadline in ms on the manual clock).
    let mut last: std::collections::HashMap<u16, (u32, Option<u64>)> = Default::default();
    let mut now_ms = 0u64;
    let mut g = Gen::new(1 << 16);
    let keys = 1_000 + (seed % 3000) as u16;
    for step in 0..6_000u32 {
        let r = u64::arbitrary(&mut g);
        let k = (r >> 8) as u16 % keys;
        let v = (r >> 32) as u32;
        match r % 10 {
            0..=3 => {
                c.insert(k, v);
                last.insert(k, (v, None));
            }
            4 => {
                // 50 to 90 days (and half an hour, off the day boundaries):
                // more than a slot's 32-bit deadline holds (49.7 days).
                let secs = (50 + (r >> 40) % 40) * 86_400 + 1_800;
                c.insert_with_ttl(k, v, Duration::from_secs(secs));
                last.insert(k, (v, Some(now_ms + secs * 1_000)));
            }
            5 => {
                c.remove(&k);
                last.remove(&k);
            }
            6 => {
                hand.advance(Duration::from_secs(86_400));
                now_ms += 86_400_000;
            }
            _ => {
                let got = c.get(&k);
                let want = match last.get(&k) {
                    Some(&(_, Some(deadline))) if now_ms >= deadline => None,
                    Some(&(v, _)) => Some(v),
                    None => None,
                };
                if got.is_some() && got != want {
                    return TestResult::error(format!("get {k} at {step}: {got:?}, {want:?}"));
                }
            }
        }
        if step % 500 == 0 {
            c.validate();
        }
    }
    c.validate();
    TestResult::from_bool(c.weight() <= 2_000)
}

#[test]
fn bounded_tables_rebuild_without_losing_far_deadlines_or_serving_stale_values() {
    QuickCheck::new()
        .tests(60)
        .quickcheck(bounded_tables_rebuild_without_stale_reads as fn(u64, u8) -> TestResult);
}
