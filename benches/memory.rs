//! Bytes per entry of a full 1M-entry `u64 -> u64` cache, for larder and its peers.
//!
//! A counting global allocator records the heap in use before building each cache
//! and after inserting keys 0..1M into it (capacity 1M); the difference divided by
//! the entries actually held is the figure. Run: `cargo bench --bench memory`.

#![allow(missing_docs)]

mod common;

use common::*;

#[path = "common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::in_use;

const N: u64 = 1_000_000;

fn measure(
    name: &str,
    make: impl FnOnce() -> Box<dyn BenchCache>,
    len: impl Fn(&dyn BenchCache) -> u64,
) {
    let before = in_use();
    let cache = make();
    for k in 0..N {
        cache.insert(k, k);
    }
    let used = in_use() - before;
    let held = len(&*cache);
    println!(
        "| {name:<24} | {held:>9} | {:>8.1} MiB | {:>6.1} |",
        used as f64 / (1 << 20) as f64,
        used as f64 / held as f64
    );
    drop(cache);
}

fn count(c: &dyn BenchCache) -> u64 {
    (0..N).filter(|&k| c.get(k).is_some()).count() as u64
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    println!("| cache                    | entries   | heap         | B/entry |");
    println!("|--------------------------|-----------|--------------|---------|");
    measure(
        "larder (default)",
        || Box::new(larder(N, larder::Policy::default())),
        count,
    );
    measure(
        "larder clock",
        || Box::new(larder(N, larder::Policy::clock())),
        count,
    );
    measure(
        "larder lru",
        || Box::new(larder(N, larder::Policy::lru())),
        count,
    );
    measure("quick_cache", || Box::new(quick(N)), count);
    measure("moka", || Box::new(moka(N)), |c| count(c));
    measure("Mutex<lru::LruCache>", || Box::new(mutex_lru(N)), count);
    measure(
        "striped RwLock<HashMap>",
        || Box::new(Striped::new(16)),
        count,
    );
}
