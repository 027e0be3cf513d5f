//! Regression tests for the core's correctness rules: each one failed (or hung) on
//! the code before the rule was enforced. Time is a manual clock throughout.

use larder::{Cache, Clock, ManualClock, Op, Policy, RemovalCause};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

fn policies() -> [Policy; 4] {
    [
        Policy::adaptive(),
        Policy::s3fifo(),
        Policy::clock(),
        Policy::lru(),
    ]
}

type Log = Arc<Mutex<Vec<(u64, u64, RemovalCause)>>>;

/// A one-shard cache bounded by weight, where a value's weight is the value.
fn weighed(cap: u64, policy: Policy) -> (Cache<u64, u64>, ManualClock, Log) {
    let (clock, hand) = Clock::manual();
    let log: Log = Arc::default();
    let sink = log.clone();
    let cache = Cache::builder()
        .max_weight(cap)
        .weigher(|_, v: &u64| *v as u32)
        .policy(policy)
        .shards(1)
        .clock(clock)
        .eviction_listener(move |k, v, c| sink.lock().unwrap().push((*k, *v, c)))
        .build()
        .unwrap();
    (cache, hand, log)
}

fn message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

// --- A write never evicts the entry it writes ---------------------------------

#[test]
fn a_growing_write_never_evicts_itself() {
    for policy in policies() {
        for write in ["insert", "compute"] {
            let (c, _, log) = weighed(100, policy.clone());
            for k in 0..10 {
                c.insert(k, 10);
            }
            // Grow every key in turn (each to 30, 50, 70): whichever slot the policy
            // would pick next, the key being written is never the victim.
            for (round, w) in [30u64, 50, 70].into_iter().enumerate() {
                for k in 0..10 {
                    let k = k + 100 * round as u64;
                    c.insert(k, 10);
                    log.lock().unwrap().clear();
                    match write {
                        "insert" => c.insert(k, w),
                        _ => c.compute(k, |_| (Op::Put(w), ())),
                    }
                    assert_eq!(c.peek(&k), Some(w), "{policy:?} {write} {k} -> {w}");
                    let evicted_itself = log
                        .lock()
                        .unwrap()
                        .iter()
                        .any(|&(key, v, _)| key == k && v == w);
                    assert!(!evicted_itself, "{policy:?}: the listener saw {k} leave");
                    assert!(c.weight() <= 100);
                    c.validate();
                }
            }
        }
    }
}

#[test]
fn a_growing_write_keeps_the_entrys_place() {
    // An entry that grows keeps its access history: under exact LRU it is the most
    // recent afterwards, so the next eviction takes the least recent other key.
    let (c, _, _) = weighed(40, Policy::lru());
    for k in 0..4 {
        c.insert(k, 10);
    }
    c.insert(0, 20); // evicts 1 (the least recent other), keeps 0 as most recent
    assert_eq!(c.peek(&1), None);
    assert_eq!(c.peek(&0), Some(20));
    c.insert(9, 10); // evicts 2
    assert_eq!(c.peek(&2), None);
    assert_eq!(c.peek(&0), Some(20));
    c.validate();
}

// --- Zero TTLs, sub-millisecond TTLs, overflow --------------------------------

#[test]
fn a_zero_ttl_write_evicts_nothing_and_removes_the_old_value() {
    for policy in policies() {
        let (c, _, log) = weighed(2, policy.clone());
        c.insert(1, 1);
        c.insert(2, 1);
        c.insert_with_ttl(3, 1, Duration::ZERO);
        assert_eq!(
            (c.peek(&1), c.peek(&2), c.peek(&3)),
            (Some(1), Some(1), None)
        );
        assert_eq!(*log.lock().unwrap(), vec![(3, 1, RemovalCause::Expired)]);
        // Over an existing key: the old value goes, nothing else does.
        c.insert_with_ttl(1, 1, Duration::ZERO);
        assert_eq!((c.peek(&1), c.peek(&2)), (None, Some(1)), "{policy:?}");
        c.compute(2, |_| (Op::PutWithTtl(1, Some(Duration::ZERO)), ()));
        assert!(c.is_empty());
        assert_eq!(c.stats().evictions, 0);
        c.validate();
    }
}

#[test]
fn a_sub_millisecond_ttl_stores_a_live_entry() {
    let (c, hand, _) = weighed(2, Policy::default());
    c.insert_with_ttl(1, 1, Duration::from_micros(500));
    assert_eq!(c.get(&1), Some(1));
    hand.advance(Duration::from_millis(1));
    assert_eq!(c.get(&1), None);
}

#[test]
fn capacities_near_u64_max_do_not_overflow() {
    for policy in policies() {
        for by_weight in [false, true] {
            let b = Cache::builder().policy(policy.clone());
            let c: Cache<u64, u64> = if by_weight {
                b.max_weight(u64::MAX).weigher(|_, v| *v as u32).build()
            } else {
                b.max_entries(u64::MAX).build()
            }
            .unwrap();
            for k in 0..100 {
                c.insert(k, u64::from(u32::MAX >> 4));
            }
            assert_eq!(c.len(), 100);
            c.validate();
        }
    }
}

// --- TTLs longer than a u32 of milliseconds ----------------------------------

#[test]
fn ttls_of_any_length_are_kept_to_the_millisecond() {
    let (clock, hand) = Clock::manual();
    let c: Cache<u64, u64> = Cache::builder()
        .max_entries(100)
        .clock(clock)
        .build()
        .unwrap();
    let day = Duration::from_secs(86_400);
    let ttls = [day * 40, day * 60, day * 365, day * 365 * 30];
    for (k, ttl) in ttls.iter().enumerate() {
        c.insert_with_ttl(k as u64, 1, *ttl);
    }
    assert_eq!(c.get_with_ttl(&1), Some((1, Some(day * 60))));
    // Writes every day move the shards' time base several times.
    for d in 1..=61u32 {
        hand.advance(day);
        c.insert(1000 + u64::from(d), 0);
        for (k, ttl) in ttls.iter().enumerate() {
            let left = ttl.saturating_sub(day * d);
            let expect = (!left.is_zero()).then_some((1, Some(left)));
            assert_eq!(c.get_with_ttl(&(k as u64)), expect, "day {d} key {k}");
        }
        c.validate();
    }
    // One millisecond short of the deadline, then at it.
    c.insert_with_ttl(7, 7, day * 50 + Duration::from_millis(3));
    hand.advance(day * 50 + Duration::from_millis(2));
    c.insert(2000, 0);
    assert_eq!(c.get(&7), Some(7));
    hand.advance(Duration::from_millis(1));
    assert_eq!(c.get(&7), None);
    // A far deadline can be shortened and lengthened again.
    c.insert_with_ttl(8, 8, day * 100);
    assert!(c.touch(&8, Some(Duration::from_secs(1))));
    assert_eq!(c.get_with_ttl(&8), Some((8, Some(Duration::from_secs(1)))));
    assert!(c.touch(&8, Some(day * 100)));
    assert_eq!(c.get_with_ttl(&8), Some((8, Some(day * 100))));
    c.validate();
}

// --- Expired entries go before live ones ---------------------------------------

#[test]
fn expired_entries_are_reclaimed_before_live_ones_are_evicted() {
    for policy in policies() {
        let (clock, hand) = Clock::manual();
        let log: Log = Arc::default();
        let sink = log.clone();
        let c: Cache<u64, u64> = Cache::builder()
            .max_entries(1000)
            .shards(1)
            .policy(policy.clone())
            .clock(clock)
            .eviction_listener(move |k, v, cause| sink.lock().unwrap().push((*k, *v, cause)))
            .build()
            .unwrap();
        // Half the cache lives forever, half expires; the expiring half is written
        // last, so no policy would pick it first on its own.
        for k in 0..500 {
            c.insert(k, k);
            c.get(&k);
        }
        for k in 500..1000 {
            c.insert_with_ttl(k, k, Duration::from_secs(10));
            c.get(&k);
        }
        hand.advance(Duration::from_secs(10));
        for k in 1000..1500 {
            c.insert(k, k);
        }
        for k in 0..500 {
            assert_eq!(c.peek(&k), Some(k), "{policy:?}: live key {k} evicted");
        }
        let log = log.lock().unwrap();
        assert!(log
            .iter()
            .all(|&(_, _, cause)| cause == RemovalCause::Expired));
        assert_eq!(c.stats().evictions, 0, "{policy:?}");
        c.validate();
    }
}

// --- A write during a load wins ---------------------------------------------

#[test]
fn an_insert_during_a_load_is_not_overwritten() {
    let c: Arc<Cache<u64, u64>> = Arc::new(Cache::new(10));
    let inner = c.clone();
    let got = c.get_or_insert_with(1, || {
        inner.insert(1, 99);
        7
    });
    assert_eq!(got, 7, "the caller gets what it loaded");
    assert_eq!(c.get(&1), Some(99), "the write during the load wins");
    assert_eq!(c.stats().loads, 1);
}

#[test]
fn a_remove_during_a_load_is_not_undone() {
    let c: Arc<Cache<u64, u64>> = Arc::new(Cache::new(10));
    let inner = c.clone();
    assert_eq!(
        c.get_or_insert_with(1, || {
            inner.remove(&1);
            7
        }),
        7
    );
    assert_eq!(c.get(&1), None);
}

#[test]
fn a_clear_or_compute_during_a_load_is_not_undone() {
    let c: Arc<Cache<u64, u64>> = Arc::new(Cache::new(10));
    let inner = c.clone();
    c.get_or_insert_with(1, || {
        inner.clear();
        7
    });
    assert_eq!(c.get(&1), None);
    let inner = c.clone();
    c.try_get_or_insert_with(2, || {
        inner.compute(2, |_| (Op::Put(5), ()));
        Ok::<_, ()>(7)
    })
    .unwrap();
    assert_eq!(c.get(&2), Some(5));
    // A compute that leaves the key alone does not count as a write.
    let inner = c.clone();
    c.get_or_insert_with(3, || {
        inner.compute(3, |_| (Op::Nop, ()));
        7
    });
    assert_eq!(c.get(&3), Some(7));
    // Writes to other keys do not stop a load from being stored.
    let inner = c.clone();
    c.get_or_insert_with(4, || {
        inner.insert(5, 5);
        inner.remove(&6);
        7
    });
    assert_eq!(c.get(&4), Some(7));
}

#[test]
fn a_write_during_a_load_reaches_waiters_but_is_kept() {
    // The leader's loader starts and waits; another caller joins the load; a
    // third thread writes the key; the loader finishes. Both callers get the
    // loaded value, the cache keeps the write.
    let c: Arc<Cache<u64, u64>> = Arc::new(Cache::new(10));
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let leader = {
        let c = c.clone();
        std::thread::spawn(move || {
            c.get_or_insert_with(1, move || {
                started_tx.send(()).unwrap();
                go_rx.recv().unwrap();
                7
            })
        })
    };
    started_rx.recv().unwrap();
    let waiter = {
        let c = c.clone();
        std::thread::spawn(move || c.get_or_insert_with(1, || 8))
    };
    while c.load_waiters(&1) == 0 {
        std::thread::yield_now();
    }
    c.insert(1, 99);
    go_tx.send(()).unwrap();
    assert_eq!(leader.join().unwrap(), 7);
    assert_eq!(waiter.join().unwrap(), 7);
    assert_eq!(c.get(&1), Some(99));
}

// --- Re-entrant calls panic instead of deadlocking ---------------------------

fn expect_reentry_panic(f: impl FnOnce()) {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("must panic");
    let msg = message(&*err);
    assert!(msg.contains("re-entrant"), "unexpected panic: {msg}");
}

#[test]
fn compute_calling_into_its_own_shard_panics() {
    for policy in policies() {
        let c: Cache<u64, u64> = Cache::builder()
            .max_entries(10)
            .shards(1)
            .policy(policy)
            .build()
            .unwrap();
        c.insert(1, 1);
        expect_reentry_panic(|| c.compute(1, |_| (Op::Put(c.get(&1).unwrap_or(0)), ())));
        expect_reentry_panic(|| c.compute(1, |_| (Op::Nop, c.insert(2, 2))));
        expect_reentry_panic(|| {
            c.compute(1, |_| (Op::Nop, c.len()));
        });
        expect_reentry_panic(|| c.retain(|_, _| c.contains_key(&1)));
        // A visitor runs under the read lock: writing to its shard would deadlock.
        expect_reentry_panic(|| {
            c.get_with(&1, |v| c.insert(2, *v));
        });
        // The cache is usable afterwards, and unchanged.
        assert_eq!(c.get(&1), Some(1));
        assert_eq!(c.len(), 1);
        c.validate();
    }
}

/// A visitor that reads its own shard again while a writer waits for the
/// visitor's slot of the shard's lock: the writer (which has taken the slots
/// before it) blocks the second read, which waits for the visitor itself.
/// The read panics instead of deadlocking, for every reader slot.
#[test]
fn a_visitor_reading_its_shard_while_a_writer_waits_panics() {
    use std::sync::atomic::AtomicBool;
    // Enough threads to give the visitor each reader slot in turn.
    for _ in 0..8 {
        let c: Arc<Cache<u64, u64>> =
            Arc::new(Cache::builder().max_entries(10).shards(1).build().unwrap());
        c.insert(1, 1);
        let reading = Arc::new(AtomicBool::new(false));
        let writer = {
            let (c, reading) = (c.clone(), reading.clone());
            std::thread::spawn(move || {
                while !reading.load(SeqCst) {
                    std::thread::yield_now();
                }
                c.insert(2, 2);
            })
        };
        let visitor = {
            let c = c.clone();
            std::thread::spawn(move || {
                catch_unwind(AssertUnwindSafe(|| {
                    c.get_with(&1, |_| {
                        reading.store(true, SeqCst);
                        // `Debug` shows a shard this thread cannot read at once.
                        while !format!("{c:?}").contains("<locked>") {
                            std::thread::yield_now();
                        }
                        c.get(&1)
                    })
                }))
            })
        };
        let err = visitor
            .join()
            .unwrap()
            .expect_err("the second read must panic");
        assert!(message(&*err).contains("re-entrant"), "{}", message(&*err));
        writer.join().unwrap();
        assert_eq!((c.get(&1), c.get(&2)), (Some(1), Some(2)));
        c.validate();
    }
}

#[test]
fn a_weigher_calling_into_the_cache_from_compute_panics() {
    let slot: Arc<OnceLock<Arc<Cache<u64, u64>>>> = Arc::default();
    let seen = slot.clone();
    let c = Arc::new(
        Cache::builder()
            .max_weight(100)
            .shards(1)
            .weigher(move |_, v: &u64| {
                if *v == 13 {
                    seen.get().map_or(1, |c| c.len() as u32)
                } else {
                    1
                }
            })
            .build()
            .unwrap(),
    );
    slot.set(c.clone()).unwrap();
    c.insert(1, 1);
    expect_reentry_panic(|| c.compute(1, |_| (Op::Put(13), ())));
    assert_eq!(c.get(&1), Some(1));
    c.validate();
}

#[test]
fn nested_computes_on_other_shards_are_allowed() {
    let c: Cache<u64, u64> = Cache::builder()
        .max_entries(1000)
        .shards(8)
        .build()
        .unwrap();
    // Find two keys in different shards by trying: a nested compute on another
    // shard must work; one on the outer key's shard must panic.
    let mut ok = 0;
    let mut panicked = 0;
    for k in 1..50u64 {
        let r = catch_unwind(AssertUnwindSafe(|| {
            c.compute(0, |_| (Op::Put(1), c.compute(k, |_| (Op::Put(k), ()))))
        }));
        match r {
            Ok(()) => ok += 1,
            Err(e) => {
                assert!(message(&*e).contains("re-entrant"));
                panicked += 1;
            }
        }
    }
    assert!(ok > 0 && panicked > 0, "{ok} {panicked}");
    c.validate();
}

#[test]
fn a_listener_may_call_into_the_cache() {
    let slot: Arc<OnceLock<Arc<Cache<u64, u64>>>> = Arc::default();
    let seen = slot.clone();
    let lens = Arc::new(Mutex::new(Vec::new()));
    let sink = lens.clone();
    let c = Arc::new(
        Cache::builder()
            .max_entries(2)
            .shards(1)
            .eviction_listener(move |_, _, _| {
                let c = seen.get().unwrap();
                sink.lock().unwrap().push(c.len());
                c.get(&1);
            })
            .build()
            .unwrap(),
    );
    slot.set(c.clone()).unwrap();
    for k in 0..5 {
        c.insert(k, k);
    }
    assert_eq!(*lens.lock().unwrap(), vec![2, 2, 2]);
}

#[test]
fn a_loader_asking_for_its_own_key_panics() {
    let c: Arc<Cache<u64, u64>> = Arc::new(Cache::new(10));
    let inner = c.clone();
    let err = catch_unwind(AssertUnwindSafe(|| {
        c.get_or_insert_with(1, || inner.get_or_insert_with(1, || 2))
    }))
    .expect_err("must panic");
    assert!(
        message(&*err).contains("re-entrant load"),
        "{}",
        message(&*err)
    );
    // Nothing is left in flight: the next load runs.
    assert_eq!(c.get_or_insert_with(1, || 3), 3);
}

// --- A panicking listener does not cut an operation short -------------------

#[test]
fn a_panicking_listener_does_not_stop_clear_retain_or_sweeps() {
    let calls = Arc::new(AtomicUsize::new(0));
    // A fresh cache of 40 entries over 4 shards, with a listener that panics on
    // every call.
    let filled = || {
        let count = calls.clone();
        let (clock, hand) = Clock::manual();
        let c: Cache<u64, u64> = Cache::builder()
            .max_entries(400)
            .shards(4)
            .clock(clock)
            .eviction_listener(move |_, _, _| {
                count.fetch_add(1, SeqCst);
                panic!("listener");
            })
            .build()
            .unwrap();
        for k in 0..40 {
            c.insert_with_ttl(k, k, Duration::from_secs(1 + k % 2));
        }
        (c, hand)
    };

    let (c, _) = filled();
    let err = catch_unwind(AssertUnwindSafe(|| c.clear())).expect_err("resumed");
    assert_eq!(message(&*err), "listener");
    assert_eq!((c.len(), calls.swap(0, SeqCst)), (0, 40));
    c.validate();

    let (c, _) = filled();
    assert!(catch_unwind(AssertUnwindSafe(|| c.retain(|k, _| k % 2 == 0))).is_err());
    assert_eq!((c.len(), calls.swap(0, SeqCst)), (20, 20));
    c.validate();

    let (c, hand) = filled();
    hand.advance(Duration::from_secs(2));
    assert!(catch_unwind(AssertUnwindSafe(|| c.run_pending_tasks())).is_err());
    assert_eq!((c.len(), calls.swap(0, SeqCst)), (0, 40));
    c.validate();
}

#[test]
fn a_panicking_listener_sees_every_entry_of_one_write() {
    let calls = Arc::new(AtomicUsize::new(0));
    let count = calls.clone();
    let c: Cache<u64, u64> = Cache::builder()
        .max_weight(10)
        .weigher(|_, v| *v as u32)
        .shards(1)
        .policy(Policy::lru())
        .eviction_listener(move |_, _, _| {
            count.fetch_add(1, SeqCst);
            panic!("listener");
        })
        .build()
        .unwrap();
    for k in 0..5 {
        c.insert(k, 2);
    }
    // One insert evicts five entries: all five are reported.
    assert!(catch_unwind(AssertUnwindSafe(|| c.insert(9, 10))).is_err());
    assert_eq!(calls.load(SeqCst), 5);
    assert_eq!(c.len(), 1);
    c.validate();
}
