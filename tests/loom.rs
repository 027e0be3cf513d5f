//! Loom models of the concurrent core. Run with
//! `RUSTFLAGS="--cfg larder_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom`.
//!
//! Each model is one scenario on a one-shard cache of capacity <= 2, so loom can
//! explore every interleaving of the lock and atomic operations involved.
#![cfg(larder_loom)]

use larder::{Cache, Clock, Policy};
use loom::thread;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// A value that counts how often values were made and dropped.
#[derive(Debug)]
struct Counted {
    id: u32,
    drops: Arc<AtomicUsize>,
}

impl Clone for Counted {
    fn clone(&self) -> Self {
        Counted {
            id: self.id,
            drops: self.drops.clone(),
        }
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, SeqCst);
    }
}

fn small(cap: u64, policy: Policy) -> Arc<Cache<u32, Counted>> {
    Arc::new(
        Cache::builder()
            .max_entries(cap)
            .shards(1)
            .policy(policy)
            .build()
            .unwrap(),
    )
}

fn policies() -> [Policy; 2] {
    [Policy::adaptive(), Policy::lru()]
}

#[test]
fn insert_insert_same_key() {
    for policy in policies() {
        loom::model(move || {
            let drops = Arc::new(AtomicUsize::new(0));
            let cache = small(2, policy.clone());
            let mk = |id| Counted {
                id,
                drops: drops.clone(),
            };
            let (a, b) = (mk(1), mk(2));
            let c1 = cache.clone();
            let t = thread::spawn(move || c1.insert(7, a));
            cache.insert(7, b);
            t.join().unwrap();
            let got = cache.get(&7).map(|v| v.id);
            assert!(matches!(got, Some(1) | Some(2)));
            assert_eq!(cache.len(), 1);
            cache.validate();
            // The loser was dropped once; the clone from `get` once.
            assert_eq!(drops.load(SeqCst), 2);
            drop(cache);
            assert_eq!(drops.load(SeqCst), 3);
        });
    }
}

#[test]
fn insert_remove() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let cache = small(2, Policy::default());
        let v = Counted {
            id: 1,
            drops: drops.clone(),
        };
        let c1 = cache.clone();
        let t = thread::spawn(move || c1.insert(1, v));
        let removed = cache.remove(&1).map(|v| v.id);
        t.join().unwrap();
        // Either the remove came first (the insert stays) or second (it took the value).
        match removed {
            Some(1) => assert_eq!(cache.len(), 0),
            None => assert_eq!(cache.get(&1).map(|v| v.id), Some(1)),
            other => panic!("removed {other:?}"),
        }
        cache.validate();
        drop(cache);
        // One value; `get` may have made one clone.
        let made = if removed.is_some() { 1 } else { 2 };
        assert_eq!(drops.load(SeqCst), made);
    });
}

#[test]
fn get_evict_drops_each_value_once() {
    for policy in policies() {
        loom::model(move || {
            let drops = Arc::new(AtomicUsize::new(0));
            let cache = small(1, policy.clone());
            cache.insert(
                1,
                Counted {
                    id: 1,
                    drops: drops.clone(),
                },
            );
            let v2 = Counted {
                id: 2,
                drops: drops.clone(),
            };
            let c1 = cache.clone();
            let t = thread::spawn(move || c1.get(&1).map(|v| v.id));
            cache.insert(2, v2); // evicts 1
            let seen = t.join().unwrap();
            assert!(matches!(seen, None | Some(1)));
            assert!(!cache.contains_key(&1));
            assert_eq!(cache.len(), 1);
            cache.validate();
            let clones = usize::from(seen.is_some());
            // value 1 (evicted) and the reader's clone, if any.
            assert_eq!(drops.load(SeqCst), 1 + clones);
            drop(cache);
            assert_eq!(drops.load(SeqCst), 2 + clones);
        });
    }
}

#[test]
fn concurrent_inserts_never_exceed_the_bound() {
    loom::model(|| {
        let cache: Arc<Cache<u32, u32>> =
            Arc::new(Cache::builder().max_entries(2).shards(1).build().unwrap());
        let c1 = cache.clone();
        let t = thread::spawn(move || {
            c1.insert(1, 1);
            c1.insert(2, 2);
        });
        cache.insert(3, 3);
        cache.insert(4, 4);
        t.join().unwrap();
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.weight(), 2);
        assert_eq!(cache.stats().evictions, 2);
        cache.validate();
    });
}

#[test]
fn expire_touch() {
    loom::model(|| {
        let (clock, hand) = Clock::manual();
        let cache: Arc<Cache<u32, u32>> = Arc::new(
            Cache::builder()
                .max_entries(2)
                .shards(1)
                .clock(clock)
                .build()
                .unwrap(),
        );
        cache.insert_with_ttl(1, 1, Duration::from_millis(10));
        let t = thread::spawn(move || hand.advance(Duration::from_millis(10)));
        let touched = cache.touch(&1, Some(Duration::from_millis(100)));
        t.join().unwrap();
        // A touch that saw the entry alive extended it past the advance; one that
        // came after the advance found it expired.
        assert_eq!(cache.get(&1).is_some(), touched);
        cache.validate();
    });
}

/// Two waiters and one loader race for one key (as three threads, any of which may
/// lead): the loader runs exactly once and everyone gets its value.
#[test]
fn get_or_insert_with_loads_once_for_three_callers() {
    loom::model(|| {
        let cache: Arc<Cache<u32, u32>> =
            Arc::new(Cache::builder().max_entries(2).shards(1).build().unwrap());
        let calls = Arc::new(AtomicUsize::new(0));
        let call = |cache: Arc<Cache<u32, u32>>, calls: Arc<AtomicUsize>| {
            move || {
                cache.get_or_insert_with(1, || {
                    calls.fetch_add(1, SeqCst);
                    10
                })
            }
        };
        let t1 = thread::spawn(call(cache.clone(), calls.clone()));
        let t2 = thread::spawn(call(cache.clone(), calls.clone()));
        assert_eq!(call(cache.clone(), calls.clone())(), 10);
        assert_eq!(t1.join().unwrap(), 10);
        assert_eq!(t2.join().unwrap(), 10);
        assert_eq!(calls.load(SeqCst), 1);
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.load_waiters(&1), 0);
        cache.validate();
    });
}

/// As above, but the first loader fails: exactly one caller sees the error, the
/// others get the value of the second (and last) loader.
#[test]
fn try_get_or_insert_with_failure_hands_over_to_a_waiter() {
    loom::model(|| {
        let cache: Arc<Cache<u32, u32>> =
            Arc::new(Cache::builder().max_entries(2).shards(1).build().unwrap());
        let calls = Arc::new(AtomicUsize::new(0));
        let call = |cache: Arc<Cache<u32, u32>>, calls: Arc<AtomicUsize>| {
            move || {
                cache.try_get_or_insert_with(1, || {
                    if calls.fetch_add(1, SeqCst) == 0 {
                        Err(())
                    } else {
                        Ok(10)
                    }
                })
            }
        };
        let t1 = thread::spawn(call(cache.clone(), calls.clone()));
        let t2 = thread::spawn(call(cache.clone(), calls.clone()));
        let results = [
            call(cache.clone(), calls.clone())(),
            t1.join().unwrap(),
            t2.join().unwrap(),
        ];
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
        assert_eq!(results.iter().filter(|r| **r == Ok(10)).count(), 2);
        assert_eq!(calls.load(SeqCst), 2);
        assert_eq!(cache.get(&1), Some(10));
        assert_eq!(cache.load_waiters(&1), 0);
        cache.validate();
    });
}
