//! Object and byte hit ratios on the shared traces with sizes given to their keys.
//!
//! `cargo run --release --example sized_hit_ratio -- [TRACES_DIR] [--trace NAME,..]
//! [--sizes independent|popular-large|popular-small] [--seed S]`
//!
//! The traces carry no sizes, so each key gets one of memcached benchmark's seven
//! value sizes (10, 30, 100, 300, 1,000, 3,000 and 10,000 bytes, plus 50 bytes of
//! key and header each), a seventh of the keys each:
//! - `independent` (default): by a hash of the key, so size says nothing of
//!   popularity;
//! - `popular-large`: by popularity in the whole trace, the most requested seventh
//!   of the keys the largest (the case where keeping light entries longer costs
//!   most);
//! - `popular-small`: the reverse.
//!
//! Each trace is replayed at the README's three cache sizes, a cache of N entries
//! holding N times the mean item size in bytes: `get`, and `insert` weighed by size
//! on a miss, one thread. Contenders: larder's policies with that weigher (one
//! shard, as `hit_ratio`), quick_cache with the same weights, and `memcached-slab`,
//! a model of memcached's slab allocator without its page mover: 64 pages (each at
//! least the largest item), chunk classes 1.25 apart from 96 bytes, pages handed to
//! the class that needs one while any are free, then an exact LRU per class. Prints
//! object hit % and byte hit % per row and their means per trace group.

#![allow(missing_docs)]

#[path = "trace/mod.rs"]
mod trace;

use larder::Policy;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use trace::{Category, TraceSpec};

/// Value sizes, as `benches/memory_vs_memcached.py`'s mixed run writes them.
const VALUES: [u32; 7] = [10, 30, 100, 300, 1_000, 3_000, 10_000];
/// Bytes an item costs beyond its value (key and header), as a rough constant.
const ITEM_EXTRA: u32 = 50;

const CONTENDERS: [&str; 6] = [
    "lru",
    "clock",
    "s3fifo",
    "default",
    "quick_cache",
    "memcached-slab",
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sizing {
    Independent,
    PopularLarge,
    PopularSmall,
}

/// Each key's item size in bytes.
fn sizes(keys: &[u64], sizing: Sizing) -> HashMap<u64, u32> {
    let item = |class: usize| VALUES[class] + ITEM_EXTRA;
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for &k in keys {
        *counts.entry(k).or_default() += 1;
    }
    if sizing == Sizing::Independent {
        return counts
            .into_keys()
            .map(|k| {
                let h = k.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
                (k, item((h % VALUES.len() as u64) as usize))
            })
            .collect();
    }
    // Most requested first; ties by key, so the order is the same every run.
    let mut ranked: Vec<(u64, u64)> = counts.into_iter().collect();
    ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let n = ranked.len();
    ranked
        .iter()
        .enumerate()
        .map(|(rank, &(k, _))| {
            let class = rank * VALUES.len() / n;
            let class = match sizing {
                Sizing::PopularLarge => VALUES.len() - 1 - class,
                _ => class,
            };
            (k, item(class))
        })
        .collect()
}

/// Hits and bytes hit of one replay.
#[derive(Clone, Copy, Default)]
struct Score {
    hits: u64,
    byte_hits: u64,
}

/// A cache under test: look a key up, store it with its size.
trait SizedCache {
    fn hit(&mut self, key: u64) -> bool;
    fn insert(&mut self, key: u64, size: u32);
}

impl SizedCache for larder::Cache<u64, u32> {
    fn hit(&mut self, key: u64) -> bool {
        self.get(&key).is_some()
    }
    fn insert(&mut self, key: u64, size: u32) {
        larder::Cache::insert(self, key, size);
    }
}

#[derive(Clone)]
struct BySize;
impl quick_cache::Weighter<u64, u32> for BySize {
    fn weight(&self, _: &u64, size: &u32) -> u64 {
        u64::from(*size)
    }
}

struct QuickCache(quick_cache::unsync::Cache<u64, u32, BySize>);
impl SizedCache for QuickCache {
    fn hit(&mut self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    fn insert(&mut self, key: u64, size: u32) {
        self.0.insert(key, size);
    }
}

/// memcached's slab allocator, reduced: see the module docs.
struct Slabs {
    page: u64,
    free_pages: u64,
    /// Per class: chunk size, chunks it has pages for, its LRU (key to nothing).
    classes: Vec<(u64, u64, lru::LruCache<u64, ()>)>,
    /// Where each stored key lives.
    class_of: HashMap<u64, usize>,
}

impl Slabs {
    fn new(capacity: u64) -> Slabs {
        let largest = u64::from(VALUES[VALUES.len() - 1] + ITEM_EXTRA);
        let page = (capacity / 64).max(largest);
        let mut chunks = Vec::new();
        let mut chunk = 96u64;
        while chunk < page {
            chunks.push(chunk);
            chunk = (chunk * 5 / 4).div_ceil(8) * 8;
        }
        chunks.push(page);
        Slabs {
            page,
            free_pages: (capacity / page).max(1),
            classes: chunks
                .into_iter()
                .map(|c| (c, 0, lru::LruCache::unbounded()))
                .collect(),
            class_of: HashMap::new(),
        }
    }
}

impl SizedCache for Slabs {
    fn hit(&mut self, key: u64) -> bool {
        match self.class_of.get(&key) {
            Some(&c) => self.classes[c].2.get(&key).is_some(),
            None => false,
        }
    }
    fn insert(&mut self, key: u64, size: u32) {
        let size = u64::from(size);
        let Some(c) = self.classes.iter().position(|(chunk, _, _)| *chunk >= size) else {
            return;
        };
        let (chunk, chunks, lru) = &mut self.classes[c];
        if lru.len() as u64 >= *chunks {
            if self.free_pages > 0 {
                self.free_pages -= 1;
                *chunks += self.page / *chunk;
            } else if let Some((old, ())) = lru.pop_lru() {
                self.class_of.remove(&old);
            } else {
                return;
            }
        }
        lru.put(key, ());
        self.class_of.insert(key, c);
    }
}

fn replay(cache: &mut impl SizedCache, keys: &[u64], size: &HashMap<u64, u32>) -> Score {
    let mut score = Score::default();
    for &key in keys {
        let s = size[&key];
        if cache.hit(key) {
            score.hits += 1;
            score.byte_hits += u64::from(s);
        } else {
            cache.insert(key, s);
        }
    }
    score
}

fn run(
    contender: &str,
    capacity: u64,
    mean: u64,
    keys: &[u64],
    size: &HashMap<u64, u32>,
    seed: u64,
) -> Score {
    let policy = match contender {
        "lru" => Some(Policy::lru()),
        "clock" => Some(Policy::clock()),
        "s3fifo" => Some(Policy::s3fifo()),
        "default" => Some(Policy::default()),
        _ => None,
    };
    if let Some(policy) = policy {
        let mut cache = larder::Cache::builder()
            .max_weight(capacity)
            .weigher(|_: &u64, size: &u32| *size)
            .policy(policy)
            .shards(1)
            .hash_seed(seed)
            .build()
            .expect("a valid larder configuration");
        return replay(&mut cache, keys, size);
    }
    match contender {
        "quick_cache" => {
            // Its item estimate sizes its ghost list: the entries the cache
            // holds on average.
            let items = (capacity / mean.max(1)).max(16) as usize;
            let mut cache = QuickCache(quick_cache::unsync::Cache::with_weighter(
                items, capacity, BySize,
            ));
            replay(&mut cache, keys, size)
        }
        "memcached-slab" => replay(&mut Slabs::new(capacity), keys, size),
        other => unreachable!("unknown contender {other}"),
    }
}

struct Options {
    dir: PathBuf,
    traces: Vec<&'static TraceSpec>,
    sizing: Sizing,
    seed: u64,
}

fn parse_args() -> Result<Options, String> {
    let mut dir = None;
    let mut traces = Vec::new();
    let mut sizing = Sizing::Independent;
    let mut seed = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--trace" => {
                for name in value("--trace")?.split(',') {
                    traces.push(trace::find(name).ok_or(format!("unknown trace {name:?}"))?);
                }
            }
            "--sizes" => {
                sizing = match value("--sizes")?.as_str() {
                    "independent" => Sizing::Independent,
                    "popular-large" => Sizing::PopularLarge,
                    "popular-small" => Sizing::PopularSmall,
                    other => return Err(format!("unknown --sizes {other:?}")),
                }
            }
            "--seed" => {
                let v = value("--seed")?;
                seed = v
                    .parse()
                    .map_err(|_| format!("--seed needs a number, got {v:?}"))?;
            }
            "-h" | "--help" => {
                return Err("usage: sized_hit_ratio [TRACES_DIR] [--trace NAME,..] \
                     [--sizes independent|popular-large|popular-small] [--seed S]"
                    .into())
            }
            other if other.starts_with('-') => {
                return Err(format!("unexpected argument {other:?}"))
            }
            path => dir = Some(path.to_string()),
        }
    }
    if traces.is_empty() {
        traces = trace::TRACES.iter().collect();
    }
    Ok(Options {
        dir: trace::traces_dir(dir.as_deref()),
        traces,
        sizing,
        seed,
    })
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if !opts.dir.join("README.md").exists() {
        eprintln!(
            "traces folder not found at {} (pass it as the first argument or set {})",
            opts.dir.display(),
            trace::ENV_VAR
        );
        return ExitCode::from(2);
    }
    let mut head = String::from("| trace | size |");
    let mut rule = String::from("|---|---:|");
    for c in CONTENDERS {
        head += &format!(" {c} obj | bytes |");
        rule += "---:|---:|";
    }
    println!("{head}\n{rule}");
    // Per category, per contender: sums of object and byte hit %, and rows.
    let mut sums: Vec<(Vec<(f64, f64)>, usize)> =
        vec![(vec![(0.0, 0.0); CONTENDERS.len()], 0); Category::ALL.len()];
    for spec in &opts.traces {
        let keys = match trace::load(&opts.dir, spec) {
            Ok(keys) => keys,
            Err(e) => {
                eprintln!("{}: {e}", spec.name);
                return ExitCode::FAILURE;
            }
        };
        let size = sizes(&keys, opts.sizing);
        let mean = size.values().map(|&s| u64::from(s)).sum::<u64>() / size.len() as u64;
        let bytes: u64 = keys.iter().map(|k| u64::from(size[k])).sum();
        for &entries in &spec.sizes {
            let capacity = entries * mean;
            let mut line = format!("| {} | {entries} |", spec.name);
            let group = Category::ALL
                .iter()
                .position(|c| *c == spec.category)
                .expect("every category is in ALL");
            let (cat, rows) = &mut sums[group];
            *rows += 1;
            for (i, c) in CONTENDERS.into_iter().enumerate() {
                let score = run(c, capacity, mean, &keys, &size, opts.seed);
                let obj = 100.0 * score.hits as f64 / keys.len() as f64;
                let byt = 100.0 * score.byte_hits as f64 / bytes as f64;
                cat[i].0 += obj;
                cat[i].1 += byt;
                line += &format!(" {obj:.2} | {byt:.2} |");
            }
            println!("{line}");
        }
    }
    println!("\n| group | rows |{}", &head["| trace | size |".len()..]);
    println!("|---|---:|{}", &rule["|---|---:|".len()..]);
    let mut all = (vec![(0.0, 0.0); CONTENDERS.len()], 0);
    for (category, (cat, rows)) in Category::ALL.into_iter().zip(&sums) {
        if *rows == 0 {
            continue;
        }
        let mut line = format!("| {} | {rows} |", category.label());
        for (i, (o, b)) in cat.iter().enumerate() {
            line += &format!(" {:.2} | {:.2} |", o / *rows as f64, b / *rows as f64);
            all.0[i].0 += o;
            all.0[i].1 += b;
        }
        all.1 += rows;
        println!("{line}");
    }
    let mut line = format!("| all | {} |", all.1);
    for (o, b) in &all.0 {
        line += &format!(" {:.2} | {:.2} |", o / all.1 as f64, b / all.1 as f64);
    }
    println!("{line}");
    ExitCode::SUCCESS
}
