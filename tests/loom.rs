//! Loom models of the concurrent core. Run with
//! `RUSTFLAGS="--cfg larder_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom --features async,memcached`.
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

/// Two readers on different slots of the shard's lock (loom numbers the
/// threads 0, 1, 2; the lock has two slots under loom) against a writer that
/// replaces the value: each reader sees the old value or the new one, whole,
/// and loom's cell checks that no read overlaps the write.
#[test]
fn readers_on_two_slots_vs_a_replace() {
    readers_vs_a_replace(Policy::clock(), |c, k| c.get(k));
}

/// An exact LRU's shards have one reader slot: readers on threads whose own
/// slots differ (`peek` reads under the read lock even there) share it, and
/// a writer that locks that one slot still excludes them all.
#[test]
fn exact_lru_peeks_from_two_threads_vs_a_replace() {
    readers_vs_a_replace(Policy::lru(), |c, k| c.peek(k));
}

type Pairs = Cache<u32, (u32, u32)>;

/// Two reader threads read key 1 with `read` while the main thread replaces
/// its value: each sees the old value or the new one, whole.
fn readers_vs_a_replace(policy: Policy, read: fn(&Pairs, &u32) -> Option<(u32, u32)>) {
    loom::model(move || {
        let cache: Arc<Pairs> = Arc::new(
            Cache::builder()
                .max_entries(2)
                .shards(1)
                .policy(policy.clone())
                .build()
                .unwrap(),
        );
        cache.insert(1, (1, 1));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let c = cache.clone();
                thread::spawn(move || read(&c, &1))
            })
            .collect();
        cache.insert(1, (2, 2));
        for r in readers {
            let seen = r.join().unwrap();
            assert!(matches!(seen, Some((1, 1)) | Some((2, 2))), "{seen:?}");
        }
        assert_eq!(read(&cache, &1), Some((2, 2)));
        cache.validate();
    });
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

/// A single-flight leader against a writer of the same key: whenever the insert
/// happens (before the load, during it, or after the value is stored) the insert
/// is what the cache holds at the end. The leader's caller gets one of the two.
#[test]
fn memoize_leader_vs_insert() {
    loom::model(|| {
        let cache: Arc<Cache<u32, u32>> =
            Arc::new(Cache::builder().max_entries(2).shards(1).build().unwrap());
        let c1 = cache.clone();
        let t = thread::spawn(move || c1.get_or_insert_with(1, || 10));
        cache.insert(1, 20);
        let got = t.join().unwrap();
        assert!(matches!(got, 10 | 20), "{got}");
        assert_eq!(cache.get(&1), Some(20));
        assert_eq!(cache.load_waiters(&1), 0);
        cache.validate();
    });
}

/// The loader raises a flag when it starts; a remove (or a clear) that comes after
/// the flag must not be undone by the leader storing its value.
fn leader_vs_invalidation(invalidate: fn(&Cache<u32, u32>)) {
    loom::model(move || {
        let cache: Arc<Cache<u32, u32>> =
            Arc::new(Cache::builder().max_entries(2).shards(1).build().unwrap());
        // A loom atomic, so that loom can switch threads right after the flag.
        let started = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let (c1, s1) = (cache.clone(), started.clone());
        let t = thread::spawn(move || {
            c1.get_or_insert_with(1, || {
                s1.store(1, SeqCst);
                10
            })
        });
        let began = started.load(SeqCst) == 1;
        invalidate(&cache);
        assert_eq!(t.join().unwrap(), 10);
        if began {
            assert_eq!(cache.get(&1), None, "the load undid a later invalidation");
        }
        cache.validate();
    });
}

#[test]
fn memoize_leader_vs_remove() {
    leader_vs_invalidation(|c| {
        c.remove(&1);
    });
}

#[test]
fn memoize_leader_vs_clear() {
    leader_vs_invalidation(|c| c.clear());
}

/// Two shards: a clear (which visits the shards one after the other) against
/// inserts into both. Every value is dropped exactly once, old keys are gone, and
/// each new key is there or not depending on its shard's order.
#[test]
fn clear_vs_inserts_on_two_shards() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let cache: Arc<Cache<u32, Counted>> =
            Arc::new(Cache::builder().max_entries(8).shards(2).build().unwrap());
        let mk = |id| Counted {
            id,
            drops: drops.clone(),
        };
        // One old and one new key in each shard.
        let in_shard = |s: usize, skip: u32| (skip..).find(|k| cache.shard_of(k) == s).unwrap();
        let (old0, old1) = (in_shard(0, 0), in_shard(1, 0));
        let (new0, new1) = (in_shard(0, old0 + 1), in_shard(1, old1 + 1));
        cache.insert(old0, mk(1));
        cache.insert(old1, mk(2));
        let (a, b) = (mk(3), mk(4));
        let c1 = cache.clone();
        let t = thread::spawn(move || {
            c1.insert(new0, a);
            c1.insert(new1, b);
        });
        cache.clear();
        t.join().unwrap();
        assert!(!cache.contains_key(&old0) && !cache.contains_key(&old1));
        let kept = cache.len();
        assert!(kept <= 2);
        assert_eq!(drops.load(SeqCst), 4 - kept);
        cache.validate();
        drop(cache);
        assert_eq!(drops.load(SeqCst), 4);
    });
}

/// An async leader cancelled after its first poll hands the load over to a
/// waiting task, which completes with its own value.
#[cfg(feature = "async")]
#[test]
fn async_waiter_takes_over_from_a_cancelled_leader() {
    use std::future::Future;
    use std::task::{Context, Poll};
    loom::model(|| {
        let cache: Arc<Cache<u32, u32>> =
            Arc::new(Cache::builder().max_entries(2).shards(1).build().unwrap());
        let c1 = cache.clone();
        let t = thread::spawn(move || {
            loom::future::block_on(c1.get_or_insert_with_async(1, async { 20 }))
        });
        {
            // Lead (or join, or find the value) and never finish: the loader's
            // future stays pending, then the whole call is dropped.
            let call = cache.get_or_insert_with_async(1, std::future::pending::<u32>());
            let mut call = std::pin::pin!(call);
            let mut cx = Context::from_waker(std::task::Waker::noop());
            if let Poll::Ready(v) = call.as_mut().poll(&mut cx) {
                assert_eq!(v, 20);
            }
        }
        assert_eq!(t.join().unwrap(), 20);
        assert_eq!(cache.get(&1), Some(20));
        assert_eq!(cache.load_waiters(&1), 0);
        cache.validate();
    });
}

/// The memcached store: a `set` against a `flush_all`. A set that starts after
/// the flush has returned is never hidden by it; the store stays consistent.
#[cfg(feature = "memcached")]
#[test]
fn store_flush_all_vs_set() {
    use larder::memcached::{Session, Store, StoreConfig};
    loom::model(|| {
        let store = Arc::new(
            Store::new(StoreConfig {
                memory_limit: 64 << 10,
                shards: Some(1),
                unix_time: Some(1_700_000_000),
                ..StoreConfig::default()
            })
            .unwrap(),
        );
        let flushed = Arc::new(loom::sync::atomic::AtomicUsize::new(0));
        let (s1, f1) = (store.clone(), flushed.clone());
        let t = thread::spawn(move || {
            let after_flush = f1.load(SeqCst) == 1;
            let mut out = Vec::new();
            let _ = s1.process(&mut Session::new(), b"set k 0 0 1\r\na\r\n", &mut out);
            assert_eq!(out, b"STORED\r\n");
            after_flush
        });
        let mut out = Vec::new();
        let _ = store.process(&mut Session::new(), b"flush_all\r\n", &mut out);
        assert_eq!(out, b"OK\r\n");
        flushed.store(1, SeqCst);
        let set_after_flush = t.join().unwrap();
        if set_after_flush {
            assert!(
                store.get(b"k").is_some(),
                "a set after flush_all was hidden"
            );
        }
        store.validate();
    });
}
