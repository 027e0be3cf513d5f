//! Hit ratios on small shared traces: the default policy stays above floors set just
//! under what it measured when they were set, and `Policy::lru()` reproduces the
//! README's LRU column (which checks the decoders too).
//!
//! The traces live outside the repository (`../shared/traces`, or `$LARDER_TRACES`);
//! without them every test here prints why and passes. The full table is
//! `examples/hit_ratio.rs`.

#![allow(missing_docs)]

#[path = "../examples/trace/mod.rs"]
mod trace;

use larder::Policy;
use std::path::PathBuf;

/// The traces folder, or `None` after printing why the test is skipped.
fn traces_dir() -> Option<PathBuf> {
    let dir = trace::traces_dir(None);
    if dir.is_dir() {
        Some(dir)
    } else {
        println!(
            "skipped: traces folder not found at {} (set {} to run)",
            dir.display(),
            trace::ENV_VAR
        );
        None
    }
}

/// Replays `name` at its three README sizes with `policy`; returns the spec and the
/// hits at each size.
fn replay(name: &str, policy: &Policy) -> Option<(&'static trace::TraceSpec, [u64; 3])> {
    let dir = traces_dir()?;
    let spec = trace::find(name).expect("a trace the README lists");
    let keys = trace::load(&dir, spec).unwrap_or_else(|e| panic!("decoding {name}: {e}"));
    assert_eq!(trace::check_counts(spec, &keys), None);
    let hits = spec.sizes.map(|size| {
        let mut cache = trace::larder_cache(size, policy.clone(), Some(SEED), Some(1))
            .expect("a valid larder configuration");
        trace::replay(&mut cache, &keys)
    });
    Some((spec, hits))
}

/// Asserts the default policy's hit % at each size is at least `floors`.
fn default_policy_stays_above(name: &str, floors: [f64; 3]) {
    let Some((spec, hits)) = replay(name, &Policy::default()) else {
        return;
    };
    let mut failed = Vec::new();
    for ((size, hits), floor) in spec.sizes.iter().zip(hits).zip(floors) {
        let measured = trace::percent(hits, spec.requests as usize);
        println!("{name} at {size}: default policy {measured:.2}% (floor {floor:.2}%)");
        if measured < floor {
            failed.push(format!("{size}: {measured:.2}% < {floor:.2}%"));
        }
    }
    assert!(failed.is_empty(), "{name} below its floor at {failed:?}");
}

/// Asserts `Policy::lru()` gives the README's LRU column on `name`.
fn lru_policy_reproduces_readme(name: &str) {
    let Some((spec, hits)) = replay(name, &Policy::lru()) else {
        return;
    };
    for (i, hits) in hits.into_iter().enumerate() {
        let measured = trace::percent(hits, spec.requests as usize);
        println!(
            "{name} at {}: lru {measured:.3}% (README {:.1}%)",
            spec.sizes[i], spec.lru[i]
        );
        assert!(
            trace::matches_readme_lru(spec, i, hits),
            "{name} at {}: lru {measured:.3}% but the README says {:.1}%",
            spec.sizes[i],
            spec.lru[i]
        );
    }
}

#[test]
fn lru_policy_reproduces_the_readme_on_loop() {
    lru_policy_reproduces_readme("loop");
}

#[test]
fn lru_policy_reproduces_the_readme_on_cs() {
    lru_policy_reproduces_readme("cs");
}

#[test]
fn lru_policy_reproduces_the_readme_on_multi1() {
    lru_policy_reproduces_readme("multi1");
}

#[test]
fn lru_policy_reproduces_the_readme_on_zigzag() {
    lru_policy_reproduces_readme("zigzag");
}

#[test]
fn default_policy_resists_the_loop() {
    default_policy_stays_above("loop", FLOOR_LOOP);
}

#[test]
fn default_policy_resists_the_cs_loops() {
    default_policy_stays_above("cs", FLOOR_CS);
}

#[test]
fn default_policy_holds_on_multi1() {
    default_policy_stays_above("multi1", FLOOR_MULTI1);
}

#[test]
fn default_policy_holds_on_zigzag() {
    default_policy_stays_above("zigzag", FLOOR_ZIGZAG);
}

#[test]
fn default_policy_follows_recency_on_corda() {
    default_policy_stays_above("corda", FLOOR_CORDA);
}

/// The concurrency target: two threads taking a trace's requests round-robin
/// hit within half a point of one thread. Concurrency changes the hit ratio mostly
/// through the order in which the cache sees the operations, so this test replays
/// that order deterministically (not modelled: two readers bumping one entry's
/// counter at once can lose a bump, and the shadows see a lookup just after the
/// shard's lock is released, so possibly after another caller's operation): two
/// callers take the requests round-robin, meet every 8 requests (as
/// `examples/hit_ratio.rs --threads 2 --window 8` does with real threads), and their
/// steps (a `get`, or the `insert` after a miss) interleave in an order drawn from a
/// fixed seed. Real threads gave a flaky test: cs at 100 moves by 0.35 to 0.5 and a
/// busy machine changes the interleaving.
///
/// The rows are where the order matters most: cs at 100 (a probation queue of a few
/// entries), corda at 32 (reuse distances that cluster at the cache's size), cs at
/// 800 and zigzag at 1500 (the guarded placement, whose probation decides on a read
/// within a few requests). With real threads they were 0.63, 1.01, 0.72 and 1.03
/// points under before the narrow probation floor, the 3% wide main queue and the
/// guarded probation of 4 units. Each side is the mean of six runs with paired hash
/// seeds and interleavings.
#[test]
fn two_callers_hit_within_half_a_point_of_one() {
    let Some(dir) = traces_dir() else {
        return;
    };
    const RUNS: u64 = 6;
    for (name, size) in [("cs", 100), ("corda", 32), ("cs", 800), ("zigzag", 1500)] {
        let spec = trace::find(name).expect("a trace the README lists");
        let keys = trace::load(&dir, spec).unwrap_or_else(|e| panic!("decoding {name}: {e}"));
        let (mut one, mut two) = (0, 0);
        for seed in 0..RUNS {
            let build = || {
                trace::larder_cache(size, Policy::default(), Some(seed), Some(1))
                    .expect("a valid larder configuration")
            };
            one += trace::replay(&mut build(), &keys);
            two += trace::replay_interleaved(&build(), &keys, 2, 8, seed);
        }
        let requests = keys.len() * RUNS as usize;
        let (one, two) = (trace::percent(one, requests), trace::percent(two, requests));
        println!("{name} at {size}: one caller {one:.2}%, two interleaved {two:.2}%");
        assert!(
            (two - one).abs() <= 0.5,
            "{name} at {size}: two callers {two:.2}% vs one {one:.2}%"
        );
    }
}

// Floors: about a point under the lowest of five runs of the adaptive default policy
// when they were set (2026-11-22, with random hash seeds: loop 500 moves by 2 points
// between seeds, zigzag 1500 by 8, the rest by under half a point; the caches here now
// use one fixed seed, so a run is repeatable). Raised 2026-12-01 (loop 500, zigzag
// 1500, corda 32) to about a point under the fixed-seed figures, after the wide
// placement's main queue went from 10% to 3% and narrow and guarded got a smaller
// margin between them; raised again (loop 500 and 1000, zigzag 1500) when the guarded
// placement's probation shrank to one unit (zigzag 1500 went from 49.7 to 68.1: a
// guarded main queue that is not churned holds as many keys of each sweep as LRU).
// Kept (2026-12-02) when guarded probation grew to 4 units with guarded promotions:
// loop 500 / 1000 48.95 / 98.30, cs 800 46.32, zigzag 1500 67.43. Then a new cache
// started in the guarded placement and first decided after two periods: raised cs
// (7.09 / 23.80 / 47.09) and zigzag (48.00 / 72.05 at 1000 / 1500, LRU 48.03 / 72.07),
// lowered multi1 (54.72 / 66.18 / 83.14: the guarded start's cost).
// zigzag and corda are where the recency and wide placements must take over (narrow
// probation alone gets 11.2 / 23.8 on zigzag 500 / 1000 and 0.02 / 0.06 on corda
// 32 / 128; corda 32 needs the wide one: CLOCK gets 16.7 there, LRU 19.6); loop 1000
// and cs 800 are where the guarded one must (narrow gets 92.0 and 44); loop, cs and
// multi1 are where recency and wide must not. Raise the floors as the policy improves.
/// The hasher seed of every cache here, so that each run makes the same decisions.
const SEED: u64 = 1;
const FLOOR_LOOP: [f64; 3] = [23.0, 48.0, 97.5];
const FLOOR_CS: [f64; 3] = [6.0, 22.8, 46.0];
const FLOOR_MULTI1: [f64; 3] = [53.7, 65.2, 82.3];
const FLOOR_ZIGZAG: [f64; 3] = [22.0, 47.0, 71.0];
const FLOOR_CORDA: [f64; 3] = [0.0, 32.0, 32.0];
