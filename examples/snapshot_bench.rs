//! Snapshot speed of the core cache, run by hand in release:
//!
//! ```text
//! cargo run --release --example snapshot_bench -- [ENTRIES] [DIR]
//! ```
//!
//! Fills a cache with ENTRIES (default 10,000,000) entries of 16-byte keys and
//! 100-byte values, then measures:
//! - save to a file in DIR (default /dev/shm) and to `io::sink()`, entries/s and MB/s;
//! - restore from that file into an empty cache, entries/s and MB/s;
//! - the p50/p99/p999 of `get` latency on one reader thread, without a save and
//!   while another thread saves, and the process's peak RSS during the save
//!   against before it.
#![forbid(unsafe_code)]

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use larder::Cache;

type Key = [u8; 16];

fn key(i: u64) -> Key {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&i.to_le_bytes());
    k[8..].copy_from_slice(&(i.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
    k
}

fn value(i: u64) -> Box<[u8]> {
    let mut v = vec![(i % 251) as u8; 100];
    v[..8].copy_from_slice(&i.to_le_bytes());
    v.into_boxed_slice()
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

fn build(n: u64) -> Cache<Key, Box<[u8]>> {
    Cache::builder()
        .max_entries(n + n / 16)
        .build()
        .expect("valid")
}

/// Latencies (ns, sorted) of gets on random keys while `running` holds, into
/// `lat` (allocated beforehand, so that it does not count in the RSS figure).
fn measure_gets(
    cache: &Cache<Key, Box<[u8]>>,
    n: u64,
    running: &AtomicBool,
    mut lat: Vec<u64>,
) -> Vec<u64> {
    let mut x = 0x1234_5678_9ABC_DEF1u64;
    while running.load(Relaxed) && lat.len() < lat.capacity() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let k = key(x % n);
        let t = Instant::now();
        let hit = cache.get_with(&k, |v| v.len());
        lat.push(t.elapsed().as_nanos() as u64);
        assert_eq!(hit, Some(100));
    }
    lat.sort_unstable();
    lat
}

fn pct(lat: &[u64], p: f64) -> u64 {
    if lat.is_empty() {
        return 0;
    }
    lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map_or(Ok(10_000_000), |a| a.parse())?;
    let dir = args.next().unwrap_or_else(|| "/dev/shm".into());
    let path = std::path::Path::new(&dir).join(format!("larder-bench-{}.snap", std::process::id()));

    let t = Instant::now();
    let cache = build(n);
    for i in 0..n {
        cache.insert(key(i), value(i));
    }
    println!(
        "filled {} entries in {:.2} s",
        cache.len(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let report = cache.save(std::io::sink())?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "save to sink:  {:>10.0} entries/s  {:>7.0} MB/s  ({} entries, {} bytes, {:.2} s)",
        report.entries as f64 / s,
        report.bytes as f64 / s / 1e6,
        report.entries,
        report.bytes,
        s
    );

    let t = Instant::now();
    let report = cache.save(BufWriter::with_capacity(1 << 20, File::create(&path)?))?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "save to file:  {:>10.0} entries/s  {:>7.0} MB/s  ({:.2} s, {})",
        report.entries as f64 / s,
        report.bytes as f64 / s / 1e6,
        s,
        path.display()
    );

    // Gets without a save, then during saves (to the sink, so the page cache
    // does not count against RSS), and the RSS peak meanwhile.
    // `SNAPSHOT_BENCH_QUICK=1` skips this part (for profiling save and restore).
    let quick = std::env::var_os("SNAPSHOT_BENCH_QUICK").is_some();
    let running = AtomicBool::new(!quick);
    let lat_a = vec![0u64; 1 << 24];
    let lat_b = vec![0u64; 1 << 24];
    let (mut lat_a, mut lat_b) = (lat_a, lat_b);
    lat_a.clear();
    lat_b.clear();
    let base = std::thread::scope(|sc| {
        let h = sc.spawn(|| measure_gets(&cache, n, &running, lat_a));
        if !quick {
            std::thread::sleep(Duration::from_secs(3));
        }
        running.store(false, Relaxed);
        h.join().expect("reader")
    });
    let rss_before = rss_kb();
    let peak = AtomicU64::new(rss_before);
    let running = AtomicBool::new(!quick);
    let saving = AtomicBool::new(true);
    let (during, saves) = std::thread::scope(|sc| {
        let h = sc.spawn(|| measure_gets(&cache, n, &running, lat_b));
        let sampler = sc.spawn(|| {
            while saving.load(Relaxed) {
                peak.fetch_max(rss_kb(), Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let t = Instant::now();
        let mut saves = 0;
        while !quick && (t.elapsed() < Duration::from_secs(3) || saves == 0) {
            cache.save(std::io::sink()).expect("sink");
            saves += 1;
        }
        running.store(false, Relaxed);
        saving.store(false, Relaxed);
        sampler.join().expect("sampler");
        (h.join().expect("reader"), saves)
    });
    let peak = peak.load(Relaxed);
    println!(
        "get latency without a save: p50 {} ns  p99 {} ns  p999 {} ns  ({} gets)",
        pct(&base, 0.5),
        pct(&base, 0.99),
        pct(&base, 0.999),
        base.len()
    );
    println!(
        "get latency during saves:   p50 {} ns  p99 {} ns  p999 {} ns  ({} gets, {} saves)",
        pct(&during, 0.5),
        pct(&during, 0.99),
        pct(&during, 0.999),
        during.len(),
        saves
    );
    println!(
        "RSS before the save {} MB, peak during it {} MB (+{:.2}%)",
        rss_before / 1024,
        peak / 1024,
        (peak as f64 - rss_before as f64) * 100.0 / rss_before as f64
    );
    drop(base);
    drop(during);
    // Not dropped: freeing millions of entries leaves the allocator's free lists
    // to be consolidated during the restore, which a restarted process (the
    // case measured) does not have.
    std::mem::forget(cache);

    let restored = build(n);
    let t = Instant::now();
    let report = restored.restore(BufReader::with_capacity(1 << 20, File::open(&path)?))?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "restore:       {:>10.0} entries/s  {:>7.0} MB/s  ({} entries, {:.2} s)",
        report.loaded as f64 / s,
        report.bytes as f64 / s / 1e6,
        report.loaded,
        s
    );
    assert_eq!(restored.len() as u64, n);
    assert_eq!(
        restored.peek(&key(n / 2)).as_deref(),
        Some(&value(n / 2)[..])
    );
    std::fs::remove_file(&path)?;
    Ok(())
}
