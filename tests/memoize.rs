//! Single-flight loading: `get_or_insert_with` and its variants, `Memoized`,
//! `TryMemoized`. Loaders that must overlap with other callers wait until those
//! callers have really joined the load (`load_waiters`), never on a timer.

use larder::{Cache, Clock, Memoized, TryMemoized};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::Duration;

const THREADS: usize = 8;

fn cache(cap: u64) -> Arc<Cache<u64, u64>> {
    Arc::new(Cache::new(cap))
}

/// Spins (yielding) until `cond` holds.
fn wait_until(cond: impl Fn() -> bool) {
    while !cond() {
        thread::yield_now();
    }
}

#[test]
fn memoize_types_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Memoized<String, Arc<str>, fn(&String) -> Arc<str>>>();
    check::<TryMemoized<u64, u64, fn(&u64) -> Result<u64, String>>>();
}

#[test]
fn concurrent_misses_of_one_key_run_the_loader_once() {
    let cache = cache(100);
    let calls = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..THREADS)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            thread::spawn(move || {
                cache.get_or_insert_with(1, || {
                    calls.fetch_add(1, SeqCst);
                    // Every other caller is waiting on this load before it ends.
                    wait_until(|| cache.load_waiters(&1) == THREADS - 1);
                    42
                })
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 42);
    }
    assert_eq!(calls.load(SeqCst), 1);
    assert_eq!(cache.get(&1), Some(42));
    let s = cache.stats();
    assert_eq!((s.loads, s.load_failures), (1, 0));
    assert_eq!(s.misses, THREADS as u64);
    assert_eq!(cache.load_waiters(&1), 0);
}

#[test]
fn hit_returns_cached_value_without_calling_the_loader() {
    let cache = cache(10);
    cache.insert(1, 10);
    assert_eq!(cache.get_or_insert_with(1, || unreachable!()), 10);
    let s = cache.stats();
    assert_eq!((s.hits, s.misses, s.loads), (1, 0, 0));
}

#[test]
fn loaded_value_is_stored_with_the_default_ttl() {
    let (clock, hand) = Clock::manual();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_entries(10)
        .time_to_live(Duration::from_secs(30))
        .clock(clock)
        .build()
        .unwrap();
    assert_eq!(cache.get_or_insert_with(1, || 10), 10);
    assert_eq!(
        cache.get_with_ttl(&1),
        Some((10, Some(Duration::from_secs(30))))
    );
    hand.advance(Duration::from_secs(30));
    assert_eq!(cache.get_or_insert_with(1, || 11), 11);
    assert_eq!(cache.stats().loads, 2);
}

#[test]
fn failed_load_is_not_cached_and_a_waiter_retries() {
    let cache = cache(100);
    let calls = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..2)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            thread::spawn(move || {
                cache.try_get_or_insert_with(1, || {
                    if calls.fetch_add(1, SeqCst) == 0 {
                        wait_until(|| cache.load_waiters(&1) == 1);
                        Err("backend down")
                    } else {
                        Ok(7)
                    }
                })
            })
        })
        .collect();
    let mut results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    results.sort();
    assert_eq!(results, vec![Ok(7), Err("backend down")]);
    assert_eq!(calls.load(SeqCst), 2);
    assert_eq!(cache.get(&1), Some(7));
    let s = cache.stats();
    assert_eq!((s.loads, s.load_failures), (1, 1));
}

#[test]
fn error_alone_leaves_nothing_behind() {
    let cache = cache(10);
    let r: Result<u64, &str> = cache.try_get_or_insert_with(1, || Err("no"));
    assert_eq!(r, Err("no"));
    assert!(cache.is_empty());
    assert_eq!(cache.load_waiters(&1), 0);
    assert_eq!(cache.try_get_or_insert_with(1, || Ok::<_, &str>(5)), Ok(5));
}

#[test]
fn panicking_loader_wakes_waiters_and_one_reloads() {
    let cache = cache(100);
    let calls = Arc::new(AtomicUsize::new(0));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (cache, calls) = (cache.clone(), calls.clone());
            thread::spawn(move || {
                cache.get_or_insert_with(1, || {
                    if calls.fetch_add(1, SeqCst) == 0 {
                        wait_until(|| cache.load_waiters(&1) == 3);
                        panic!("loader exploded");
                    }
                    9
                })
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join()).collect();
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    for r in results.into_iter().flatten() {
        assert_eq!(r, 9);
    }
    assert_eq!(calls.load(SeqCst), 2);
    assert_eq!(cache.get(&1), Some(9));
    let s = cache.stats();
    assert_eq!((s.loads, s.load_failures), (1, 1));
}

#[test]
fn panicking_loader_without_waiters_leaves_the_key_loadable() {
    let cache = cache(10);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        cache.get_or_insert_with(1, || panic!("boom"))
    }));
    assert!(r.is_err());
    assert_eq!(cache.load_waiters(&1), 0);
    assert_eq!(cache.get_or_insert_with(1, || 3), 3);
}

#[test]
fn different_keys_in_one_shard_load_in_parallel() {
    let cache: Arc<Cache<u64, u64>> =
        Arc::new(Cache::builder().max_entries(100).shards(1).build().unwrap());
    // Each loader waits for the other: if one blocked the other, neither would return.
    let both = Arc::new(Barrier::new(2));
    let handles: Vec<_> = [1u64, 2]
        .into_iter()
        .map(|key| {
            let (cache, both) = (cache.clone(), both.clone());
            thread::spawn(move || {
                cache.get_or_insert_with(key, || {
                    both.wait();
                    key * 100
                })
            })
        })
        .collect();
    let got: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(got, vec![100, 200]);
    assert_eq!(cache.stats().loads, 2);
}

#[test]
fn loader_may_use_the_cache_for_other_keys() {
    let cache: Cache<u64, u64> = Cache::builder().max_entries(10).shards(1).build().unwrap();
    let v = cache.get_or_insert_with(1, || {
        cache.insert(3, 30);
        cache.get_or_insert_with(2, || 20) + cache.get(&3).unwrap()
    });
    assert_eq!(v, 50);
    assert_eq!(cache.len(), 3);
}

#[test]
fn loaded_value_too_heavy_to_store_is_still_returned() {
    let cache: Cache<u64, u64> = Cache::builder()
        .max_weight(10)
        .weigher(|_, v| *v as u32)
        .shards(1)
        .build()
        .unwrap();
    assert_eq!(cache.get_or_insert_with(1, || 100), 100);
    assert!(!cache.contains_key(&1));
    assert_eq!(cache.stats().rejections, 1);
}

#[test]
fn ttl_chosen_by_the_loader_applies() {
    let (clock, hand) = Clock::manual();
    let cache: Cache<&str, u64> = Cache::builder()
        .max_entries(10)
        .time_to_live(Duration::from_secs(1))
        .clock(clock)
        .build()
        .unwrap();
    let short = cache.get_or_insert_with_ttl("short", || (1, Some(Duration::from_secs(10))));
    let forever = cache.get_or_insert_with_ttl("forever", || (2, None));
    assert_eq!((short, forever), (1, 2));
    assert_eq!(
        cache.get_with_ttl("short"),
        Some((1, Some(Duration::from_secs(10))))
    );
    assert_eq!(cache.get_with_ttl("forever"), Some((2, None)));
    hand.advance(Duration::from_secs(10));
    assert_eq!(cache.get("short"), None);
    assert_eq!(cache.get("forever"), Some(2));
    let again = cache.get_or_insert_with_ttl("short", || (3, Some(Duration::from_secs(10))));
    assert_eq!(again, 3);
    assert_eq!(cache.stats().loads, 3);
}

#[test]
fn load_time_is_measured_by_the_cache_clock() {
    let (clock, hand) = Clock::manual();
    let cache: Cache<u64, u64> = Cache::builder()
        .max_entries(10)
        .clock(clock)
        .build()
        .unwrap();
    cache.get_or_insert_with(1, || {
        hand.advance(Duration::from_millis(250));
        1
    });
    let r: Result<u64, ()> = cache.try_get_or_insert_with(2, || {
        hand.advance(Duration::from_millis(50));
        Err(())
    });
    assert!(r.is_err());
    let s = cache.stats();
    assert_eq!((s.loads, s.load_failures), (1, 1));
    assert_eq!(s.load_time, Duration::from_millis(300));
}

#[test]
fn memoized_calls_the_function_once_per_key() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let square = Arc::new(Memoized::new(Cache::new(100), move |n: &u64| {
        counted.fetch_add(1, SeqCst);
        n * n
    }));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let square = square.clone();
            thread::spawn(move || (0..10).map(|n| square.get(&n)).sum::<u64>())
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), 285);
    }
    assert_eq!(calls.load(SeqCst), 10);
    assert_eq!(square.cache().stats().loads, 10);
}

#[test]
fn memoized_hits_borrow_the_key() {
    let m = Memoized::new(Cache::new(10), |s: &String| s.len());
    let k = "hello".to_string();
    assert_eq!(m.get(&k), 5);
    assert_eq!(m.get(&k), 5);
    assert_eq!(m.cache().stats().hits, 1);
    assert!(format!("{m:?}").starts_with("Memoized"));
}

#[test]
fn try_memoized_caches_successes_only() {
    let calls = AtomicUsize::new(0);
    let parse = TryMemoized::new(Cache::new(10), |s: &&str| {
        calls.fetch_add(1, SeqCst);
        s.parse::<u32>().map_err(|_| "not a number")
    });
    assert_eq!(parse.get(&"12"), Ok(12));
    assert_eq!(parse.get(&"12"), Ok(12));
    assert_eq!(parse.get(&"x"), Err("not a number"));
    assert_eq!(parse.get(&"x"), Err("not a number"));
    assert_eq!(calls.load(SeqCst), 3);
    assert_eq!(parse.cache().len(), 1);
    let s = parse.cache().stats();
    assert_eq!((s.loads, s.load_failures), (1, 2));
}
