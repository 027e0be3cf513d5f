//! Exercises the cache the way a service would and prints what it did.
//!
//! `cargo run --release --example quickstart`

use larder::{Cache, Op, Policy, RemovalCause};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() -> Result<(), larder::BuildError> {
    let evicted = Arc::new(AtomicU64::new(0));
    let counter = evicted.clone();
    let cache: Arc<Cache<u64, Arc<String>>> = Arc::new(
        Cache::builder()
            .max_entries(50_000)
            .policy(Policy::default())
            .time_to_live(Duration::from_secs(60))
            .eviction_listener(move |_, _, cause| {
                if cause == RemovalCause::Evicted {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
            .build()?,
    );

    // Two threads read a skewed key space and fill misses, like a read-through cache.
    let start = Instant::now();
    let workers: Vec<_> = (0..2u64)
        .map(|t| {
            let cache = cache.clone();
            std::thread::spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ t;
                for _ in 0..1_000_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Squaring a uniform number skews towards small keys.
                    let u = (x >> 11) as f64 / (1u64 << 53) as f64;
                    let key = (u * u * 500_000.0) as u64;
                    if cache.get(&key).is_none() {
                        cache.insert(key, Arc::new(format!("value {key}")));
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().expect("worker panicked");
    }
    let elapsed = start.elapsed();

    // An atomic counter through compute.
    for _ in 0..10 {
        cache.compute(u64::MAX, |cur| {
            let n = cur.map_or(0, |e| e.value().parse::<u64>().unwrap_or(0)) + 1;
            (Op::Put(Arc::new(n.to_string())), ())
        });
    }

    let s = cache.stats();
    println!("2 threads x 1,000,000 get-or-insert in {elapsed:.2?}");
    println!(
        "len {} / capacity {}, shards {}, policy {:?}",
        cache.len(),
        cache.capacity(),
        cache.shard_count(),
        cache.policy()
    );
    println!(
        "hits {} misses {} (hit ratio {:.1}%), inserts {}, updates {}, evictions {} (listener saw {})",
        s.hits,
        s.misses,
        100.0 * s.hit_ratio(),
        s.inserts,
        s.updates,
        s.evictions,
        evicted.load(Ordering::Relaxed)
    );
    println!("counter = {:?}", cache.get(&u64::MAX));
    Ok(())
}
