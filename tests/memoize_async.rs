//! Async single-flight loading (feature `async`) on a real executor (tokio, which the
//! library itself does not depend on). Loaders that must overlap with waiters poll
//! `load_waiters` (yielding to the executor), never a timer.

use larder::Cache;
use std::future::pending;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

const TASKS: usize = 8;

fn cache() -> Arc<Cache<u64, u64>> {
    Arc::new(Cache::new(100))
}

/// Yields to the executor until `key` has `n` waiters.
async fn until_waiters(cache: &Cache<u64, u64>, key: u64, n: usize) {
    while cache.load_waiters(&key) != n {
        tokio::task::yield_now().await;
    }
}

/// Spawns a task that misses `key` and leads its load with a future that never
/// completes; returns once that future is being polled.
async fn stuck_leader(cache: &Arc<Cache<u64, u64>>, key: u64) -> tokio::task::JoinHandle<u64> {
    let started = Arc::new(AtomicBool::new(false));
    let (c, s) = (cache.clone(), started.clone());
    let leader = tokio::spawn(async move {
        c.get_or_insert_with_async(key, async move {
            s.store(true, SeqCst);
            pending::<u64>().await
        })
        .await
    });
    while !started.load(SeqCst) {
        tokio::task::yield_now().await;
    }
    leader
}

async fn one_init_for_many_tasks(cache: Arc<Cache<u64, u64>>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                let c = cache.clone();
                cache
                    .get_or_insert_with_async(1, async move {
                        calls.fetch_add(1, SeqCst);
                        until_waiters(&c, 1, TASKS - 1).await;
                        42
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 42);
    }
    assert_eq!(calls.load(SeqCst), 1);
    let s = cache.stats();
    assert_eq!((s.loads, s.load_failures, s.misses), (1, 0, TASKS as u64));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_async_misses_run_init_once() {
    one_init_for_many_tasks(cache()).await;
}

/// On a one-thread executor a waiter that blocked its thread would starve the
/// leader forever; this finishes only because waiters yield.
#[tokio::test(flavor = "current_thread")]
async fn waiters_do_not_block_the_executor_thread() {
    one_init_for_many_tasks(cache()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_leader_hands_the_load_to_a_waiter() {
    let cache = cache();
    let leader = stuck_leader(&cache, 1).await;
    let c = cache.clone();
    let waiter = tokio::spawn(async move { c.get_or_insert_with_async(1, async { 7 }).await });
    until_waiters(&cache, 1, 1).await;
    leader.abort();
    assert!(leader.await.unwrap_err().is_cancelled());
    assert_eq!(waiter.await.unwrap(), 7);
    assert_eq!(cache.get(&1), Some(7));
    let s = cache.stats();
    assert_eq!((s.loads, s.load_failures), (1, 1));
}

#[tokio::test(flavor = "current_thread")]
async fn leader_future_dropped_by_select_hands_the_load_to_a_waiter() {
    let cache = cache();
    let c = cache.clone();
    let waiter = tokio::spawn(async move { c.get_or_insert_with_async(1, async { 8 }).await });
    tokio::select! {
        biased;
        _ = cache.get_or_insert_with_async(1, pending::<u64>()) => unreachable!(),
        _ = until_waiters(&cache, 1, 1) => {} // drops the leading future
    }
    assert_eq!(waiter.await.unwrap(), 8);
    assert_eq!(cache.get(&1), Some(8));
    assert_eq!(cache.load_waiters(&1), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_async_load_is_not_cached_and_a_waiter_retries() {
    let cache = cache();
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            tokio::spawn(async move {
                let c = cache.clone();
                cache
                    .try_get_or_insert_with_async(1, async move {
                        if calls.fetch_add(1, SeqCst) == 0 {
                            until_waiters(&c, 1, 1).await;
                            Err("backend down")
                        } else {
                            Ok(5)
                        }
                    })
                    .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    results.sort();
    assert_eq!(results, vec![Ok(5), Err("backend down")]);
    assert_eq!(calls.load(SeqCst), 2);
    assert_eq!(cache.get(&1), Some(5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_async_leader_hands_the_load_to_a_waiter() {
    let cache = cache();
    let started = Arc::new(AtomicBool::new(false));
    let (c, s) = (cache.clone(), started.clone());
    let leader = tokio::spawn(async move {
        let c2 = c.clone();
        c.get_or_insert_with_async(1, async move {
            s.store(true, SeqCst);
            until_waiters(&c2, 1, 1).await;
            panic!("init exploded")
        })
        .await
    });
    while !started.load(SeqCst) {
        tokio::task::yield_now().await;
    }
    let c = cache.clone();
    let waiter = tokio::spawn(async move { c.get_or_insert_with_async(1, async { 4 }).await });
    assert!(leader.await.unwrap_err().is_panic());
    assert_eq!(waiter.await.unwrap(), 4);
    assert_eq!(cache.get(&1), Some(4));
    let s = cache.stats();
    assert_eq!((s.loads, s.load_failures), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_waiter_does_not_disturb_the_load() {
    let cache = cache();
    let (started, release) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let (c, s, r) = (cache.clone(), started.clone(), release.clone());
    let leader = tokio::spawn(async move {
        c.get_or_insert_with_async(1, async move {
            s.store(true, SeqCst);
            while !r.load(SeqCst) {
                tokio::task::yield_now().await;
            }
            3
        })
        .await
    });
    while !started.load(SeqCst) {
        tokio::task::yield_now().await;
    }
    let c = cache.clone();
    let waiter = tokio::spawn(async move { c.get_or_insert_with_async(1, async { 99 }).await });
    until_waiters(&cache, 1, 1).await;
    waiter.abort();
    assert!(waiter.await.unwrap_err().is_cancelled());
    assert_eq!(cache.load_waiters(&1), 0);
    release.store(true, SeqCst);
    assert_eq!(leader.await.unwrap(), 3);
    assert_eq!(cache.get(&1), Some(3));
}

#[tokio::test(flavor = "current_thread")]
async fn async_load_uses_the_default_ttl() {
    let (clock, hand) = larder::Clock::manual();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_entries(10)
        .time_to_live(Duration::from_secs(5))
        .clock(clock)
        .build()
        .unwrap();
    assert_eq!(cache.get_or_insert_with_async(1, async { 1 }).await, 1);
    assert_eq!(
        cache.get_with_ttl(&1),
        Some((1, Some(Duration::from_secs(5))))
    );
    hand.advance(Duration::from_secs(5));
    assert_eq!(cache.get_or_insert_with_async(1, async { 2 }).await, 2);
}

/// A write to the key while the async load runs wins: the loaded value goes to
/// the caller, the cache keeps the write (insert, remove and clear alike).
#[test]
fn a_write_during_an_async_load_wins() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let c = cache();
        let inner = c.clone();
        let got = c
            .get_or_insert_with_async(1, async move {
                inner.insert(1, 99);
                7
            })
            .await;
        assert_eq!((got, c.get(&1)), (7, Some(99)));

        let inner = c.clone();
        let got = c
            .try_get_or_insert_with_async(2, async move {
                inner.insert(2, 5);
                inner.remove(&2);
                Ok::<_, ()>(7)
            })
            .await;
        assert_eq!((got, c.get(&2)), (Ok(7), None));

        let inner = c.clone();
        c.get_or_insert_with_async(3, async move {
            inner.clear();
            7
        })
        .await;
        assert_eq!(c.get(&3), None);
        // Untouched, a load is stored as before.
        c.get_or_insert_with_async(4, async { 7 }).await;
        assert_eq!(c.get(&4), Some(7));
    });
}
