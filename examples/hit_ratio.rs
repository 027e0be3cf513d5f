//! Hit ratios of larder's policies and of its peers on the shared access traces.
//!
//! `cargo run --release --example hit_ratio -- [TRACES_DIR] [options]`
//!
//! Replays every trace described in `TRACES_DIR/README.md` (default: `$LARDER_TRACES`,
//! else `../shared/traces` next to the repository) at the README's three cache sizes:
//! `get` each key, `insert` it with weight 1 on a miss, one thread, cold misses
//! counted. Prints a markdown table (hit % per contender, with the README's LRU and
//! OPT columns) and the means per trace group and over all rows.
//!
//! Two decoding checks make the run fail (exit 1, `MISMATCH` lines): the decoded
//! request and unique-key counts must be the README's, and larder's `lru` and the `lru`
//! crate must agree exactly and match the README's LRU column to its one decimal.
//!
//! Options:
//! - `--trace NAME[,NAME..]` (repeatable): only these traces (`loop`, `P6`, …).
//! - `--contender NAME[,NAME..]`: only these columns (`lru`, `clock`, `s3fifo`,
//!   `default`, `quick_cache`, `moka`, `lru-crate`).
//! - `--jobs N`: replay N traces at once (default 1, to be gentle on shared machines).
//! - `--threads N [--policy P] [--shards S] [--window W] [--repeat R]`: instead of
//!   the table, replay each trace with larder's policy P (default `default`) on S
//!   shards (default 1) from N threads taking the requests round-robin, next to the
//!   single-thread replay (both the mean of R runs, default 1); the target is a hit
//!   ratio within 0.5 points of single-thread (exit 1 if missed). The threads meet at
//!   a barrier after every W requests of the trace (default 64) so that their
//!   interleaving stays close to the trace's order; `--window 0` lets them run free,
//!   which replays a different order (one thread can run far ahead). An exact-LRU
//!   control column shows what the interleaving alone does. Run `r` (from 0) of
//!   both replays seeds the hasher with `S + r` (`--seed S`, default 0), so that the
//!   two differ only in the interleaving.
//! - `--seed S`: seed larder's hasher (default: random per cache, so the table moves
//!   a little from run to run; see `CacheBuilder::hash_seed`).
//! - `--sharded`: larder's caches keep the builder's default shard count (four per
//!   CPU, at least 32 units each, more for large caches) instead of one shard: what a
//!   user gets, with each
//!   shard running the policy on its share of the keys and capacity.

#![allow(missing_docs)]

#[path = "trace/mod.rs"]
mod trace;

use larder::Policy;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;
use trace::{Category, Replay, TraceSpec};

/// The columns, in order.
const CONTENDERS: [&str; 8] = [
    "lru",
    "clock",
    "s3fifo",
    "adaptive",
    "default",
    "quick_cache",
    "moka",
    "lru-crate",
];

/// How far (points) a multi-thread replay may fall from single-thread.
const THREADS_TARGET: f64 = 0.5;

fn header(name: &str) -> String {
    match name {
        "quick_cache" => "quick_cache (unsync)".to_string(),
        "moka" => "moka (sync)".to_string(),
        "lru-crate" => "`lru` crate".to_string(),
        policy => format!("larder {policy}"),
    }
}

fn larder_policy(name: &str) -> Option<Policy> {
    match name {
        "lru" => Some(Policy::lru()),
        "clock" => Some(Policy::clock()),
        "s3fifo" => Some(Policy::s3fifo()),
        "adaptive" => Some(Policy::adaptive()),
        "default" => Some(Policy::default()),
        _ => None,
    }
}

struct QuickCache(quick_cache::unsync::Cache<u64, u64>);
impl Replay for QuickCache {
    fn hit(&mut self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    fn insert(&mut self, key: u64) {
        self.0.insert(key, key);
    }
}

/// Moka applies its policy in batches; draining after every insert makes its
/// capacity exact at each step, as for the others.
struct Moka(moka::sync::Cache<u64, u64>);
impl Replay for Moka {
    fn hit(&mut self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    fn insert(&mut self, key: u64) {
        self.0.insert(key, key);
        self.0.run_pending_tasks();
    }
}

struct LruCrate(lru::LruCache<u64, u64>);
impl Replay for LruCrate {
    fn hit(&mut self, key: u64) -> bool {
        self.0.get(&key).is_some()
    }
    fn insert(&mut self, key: u64) {
        self.0.put(key, key);
    }
}

/// Hits of `contender` replaying `keys` at `capacity`.
fn run(contender: &str, capacity: u64, keys: &[u64], opts: &Options) -> u64 {
    if let Some(policy) = larder_policy(contender) {
        let shards = (!opts.sharded).then_some(1);
        let mut cache = trace::larder_cache(capacity, policy, opts.seed, shards)
            .expect("a valid larder configuration");
        return trace::replay(&mut cache, keys);
    }
    match contender {
        "quick_cache" => trace::replay(
            &mut QuickCache(quick_cache::unsync::Cache::new(capacity as usize)),
            keys,
        ),
        "moka" => trace::replay(
            &mut Moka(moka::sync::Cache::builder().max_capacity(capacity).build()),
            keys,
        ),
        "lru-crate" => {
            let cap = NonZeroUsize::new(capacity as usize).expect("a capacity above zero");
            trace::replay(&mut LruCrate(lru::LruCache::new(cap)), keys)
        }
        other => unreachable!("unknown contender {other}"),
    }
}

struct Options {
    dir: PathBuf,
    traces: Vec<&'static TraceSpec>,
    contenders: Vec<&'static str>,
    jobs: usize,
    threads: usize,
    policy: &'static str,
    shards: usize,
    window: usize,
    repeat: usize,
    seed: Option<u64>,
    sharded: bool,
}

fn parse_args() -> Result<Options, String> {
    let mut dir = None;
    let mut traces: Vec<&'static TraceSpec> = Vec::new();
    let mut contenders: Vec<&'static str> = Vec::new();
    let mut jobs = 1;
    let mut threads = 1;
    let mut policy = "default";
    let mut shards = 1;
    let mut window = 64;
    let mut repeat = 1;
    let mut seed = None;
    let mut sharded = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.parse::<usize>()
                .ok()
                .filter(|&n| n > 0)
                .ok_or(format!("{name} needs a positive number, got {v:?}"))
        };
        match arg.as_str() {
            "--trace" => {
                for name in value("--trace")?.split(',') {
                    let names: Vec<_> = trace::TRACES.iter().map(|t| t.name).collect();
                    traces.push(trace::find(name).ok_or(format!(
                        "unknown trace {name:?}; known: {}",
                        names.join(", ")
                    ))?);
                }
            }
            "--contender" => {
                for name in value("--contender")?.split(',') {
                    contenders.push(CONTENDERS.iter().copied().find(|&c| c == name).ok_or(
                        format!(
                            "unknown contender {name:?}; known: {}",
                            CONTENDERS.join(", ")
                        ),
                    )?);
                }
            }
            "--policy" => {
                let name = value("--policy")?;
                policy = CONTENDERS[..5]
                    .iter()
                    .copied()
                    .find(|&c| c == name)
                    .ok_or(format!(
                        "--policy takes one of lru, clock, s3fifo, default, got {name:?}"
                    ))?;
            }
            "--jobs" => jobs = number("--jobs", value("--jobs")?)?,
            "--threads" => threads = number("--threads", value("--threads")?)?,
            "--shards" => shards = number("--shards", value("--shards")?)?,
            "--repeat" => repeat = number("--repeat", value("--repeat")?)?,
            "--sharded" => sharded = true,
            "--seed" => {
                let v = value("--seed")?;
                seed = Some(
                    v.parse()
                        .map_err(|_| format!("--seed needs a number, got {v:?}"))?,
                );
            }
            "--window" => {
                let v = value("--window")?;
                window = v
                    .parse()
                    .map_err(|_| format!("--window needs a number, got {v:?}"))?;
            }
            "-h" | "--help" => {
                return Err(
                    "usage: hit_ratio [TRACES_DIR] [--trace NAME,..] [--contender NAME,..] \
                     [--jobs N] [--threads N [--policy P] [--shards S] [--window W] [--repeat R]] [--seed S] [--sharded]"
                        .to_string(),
                )
            }
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            path if dir.is_none() => dir = Some(path.to_string()),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    if traces.is_empty() {
        traces = trace::TRACES.iter().collect();
    }
    if contenders.is_empty() {
        contenders = CONTENDERS.to_vec();
    }
    contenders.sort_by_key(|c| CONTENDERS.iter().position(|x| x == c));
    contenders.dedup();
    Ok(Options {
        dir: trace::traces_dir(dir.as_deref()),
        traces,
        contenders,
        jobs,
        threads,
        policy,
        shards,
        window,
        repeat,
        seed,
        sharded,
    })
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::FAILURE;
        }
    };
    if !opts.dir.is_dir() {
        eprintln!(
            "traces folder not found at {} (pass it as the first argument or set {})",
            opts.dir.display(),
            trace::ENV_VAR
        );
        return ExitCode::FAILURE;
    }
    let started = Instant::now();
    let ok = if opts.threads > 1 {
        threads_mode(&opts)
    } else {
        table_mode(&opts)
    };
    eprintln!("total time: {:.1} s", started.elapsed().as_secs_f64());
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One table row: a trace at one size.
struct Row {
    spec: &'static TraceSpec,
    size_index: usize,
    /// Hits per contender, in `Options::contenders` order.
    hits: Vec<u64>,
}

impl Row {
    fn percent(&self, contender: usize) -> f64 {
        trace::percent(self.hits[contender], self.spec.requests as usize)
    }
}

/// Runs `work` on every selected trace, `jobs` at a time, and returns its results in
/// trace order, or the first error.
fn per_trace<T: Send>(
    opts: &Options,
    work: impl Fn(&'static TraceSpec, Vec<u64>) -> T + Sync,
) -> Result<Vec<T>, String> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<T, String>>>> =
        Mutex::new((0..opts.traces.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..opts.jobs.min(opts.traces.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(&spec) = opts.traces.get(i) else {
                    break;
                };
                let result = load(&opts.dir, spec).map(|keys| work(spec, keys));
                results.lock().unwrap()[i] = Some(result);
            });
        }
    });
    results
        .into_inner()
        .unwrap()
        .into_iter()
        .map(|r| r.expect("every trace was run"))
        .collect()
}

fn load(dir: &Path, spec: &'static TraceSpec) -> Result<Vec<u64>, String> {
    let t = Instant::now();
    let keys = trace::load(dir, spec).map_err(|e| format!("{}: {e}", spec.name))?;
    if let Some(diff) = trace::check_counts(spec, &keys) {
        return Err(format!("MISMATCH {diff}"));
    }
    eprintln!(
        "{:>8}: decoded {} requests in {:.2} s",
        spec.name,
        keys.len(),
        t.elapsed().as_secs_f64()
    );
    Ok(keys)
}

fn table_mode(opts: &Options) -> bool {
    let rows = per_trace(opts, |spec, keys| {
        let t = Instant::now();
        let rows: Vec<Row> = (0..3)
            .map(|size_index| Row {
                spec,
                size_index,
                hits: opts
                    .contenders
                    .iter()
                    .map(|c| run(c, spec.sizes[size_index], &keys, opts))
                    .collect(),
            })
            .collect();
        eprintln!(
            "{:>8}: replayed in {:.2} s",
            spec.name,
            t.elapsed().as_secs_f64()
        );
        rows
    });
    let rows: Vec<Row> = match rows {
        Ok(rows) => rows.into_iter().flatten().collect(),
        Err(msg) => {
            println!("{msg}");
            return false;
        }
    };

    let mut head = String::new();
    let mut rule = "|---|---:|".to_string();
    for c in &opts.contenders {
        head += &format!(" {} |", header(c));
        rule += "---:|";
    }
    head += " README LRU | README OPT |";
    rule += "---:|---:|";
    if opts.sharded {
        println!("larder caches: the builder's default shard count (`--sharded`)");
        println!();
    }
    println!("| trace | size |{head}");
    println!("{rule}");
    for row in &rows {
        let mut line = format!("| {} | {} |", row.spec.name, row.spec.sizes[row.size_index]);
        for i in 0..row.hits.len() {
            line += &format!(" {:.2} |", row.percent(i));
        }
        println!(
            "{line} {:.1} | {:.1} |",
            row.spec.lru[row.size_index], row.spec.opt[row.size_index]
        );
    }

    println!();
    println!("Mean hit % per group (each trace counts at its 3 sizes):");
    println!();
    println!("| group | rows |{head}");
    println!("{rule}");
    let groups = Category::ALL
        .iter()
        .map(|&cat| (cat.label(), Some(cat)))
        .chain([("all", None)]);
    for (label, cat) in groups {
        let members: Vec<&Row> = rows
            .iter()
            .filter(|r| cat.is_none_or(|c| r.spec.category == c))
            .collect();
        if members.is_empty() {
            continue;
        }
        let mean = |f: &dyn Fn(&Row) -> f64| {
            members.iter().map(|r| f(r)).sum::<f64>() / members.len() as f64
        };
        let mut line = format!("| {label} | {} |", members.len());
        for i in 0..opts.contenders.len() {
            line += &format!(" {:.2} |", mean(&|r| r.percent(i)));
        }
        println!(
            "{line} {:.2} | {:.2} |",
            mean(&|r| r.spec.lru[r.size_index]),
            mean(&|r| r.spec.opt[r.size_index])
        );
    }

    println!();
    decoding_check(opts, &rows)
}

/// larder `lru` and the `lru` crate must agree exactly, and both match the README.
fn decoding_check(opts: &Options, rows: &[Row]) -> bool {
    let col = |name| opts.contenders.iter().position(|c| *c == name);
    let lru_cols: Vec<(&str, usize)> = ["lru", "lru-crate"]
        .into_iter()
        .filter_map(|name| col(name).map(|i| (name, i)))
        .collect();
    if lru_cols.is_empty() {
        println!("decoding check skipped: neither `lru` nor `lru-crate` was run");
        return true;
    }
    let mut ok = true;
    for row in rows {
        let readme = row.spec.lru[row.size_index];
        let size = row.spec.sizes[row.size_index];
        let at = format!("{} at {size}", row.spec.name);
        for &(name, i) in &lru_cols {
            if !trace::matches_readme_lru(row.spec, row.size_index, row.hits[i]) {
                println!(
                    "MISMATCH {at}: {} {} hits = {:.3}% vs README LRU {readme:.1}%",
                    header(name),
                    row.hits[i],
                    row.percent(i)
                );
                ok = false;
            }
        }
        if let [(_, a), (_, b)] = lru_cols[..] {
            if row.hits[a] != row.hits[b] {
                println!(
                    "MISMATCH {at}: larder lru {} hits vs `lru` crate {} hits",
                    row.hits[a], row.hits[b]
                );
                ok = false;
            }
        }
        let erratum = trace::README_LRU_ERRATA
            .iter()
            .find(|&&(name, at, _)| name == row.spec.name && at == size);
        if let Some(&(_, _, exact)) = erratum {
            println!(
                "note: README LRU erratum at {at}: exact LRU gives {exact} hits = {:.3}%, \
                 README says {readme:.1}%; checked against the exact hits",
                trace::percent(exact, row.spec.requests as usize)
            );
        }
    }
    if ok {
        let names: Vec<String> = lru_cols.iter().map(|(n, _)| header(n)).collect();
        let agree = if names.len() == 2 {
            " agree exactly and"
        } else {
            ""
        };
        println!(
            "decoding check passed: {}{agree} match the README's LRU column on all {} rows",
            names.join(" and "),
            rows.len()
        );
    }
    ok
}

/// Replays each trace with `opts.threads` threads taking requests round-robin, next
/// to one thread, for larder's `opts.policy` and, as a control, for exact LRU: LRU
/// has no policy state to race on, so its difference is what the interleaving alone
/// does to the request order.
fn threads_mode(opts: &Options) -> bool {
    let n = opts.threads;
    let build = |capacity, policy: &str, seed| {
        let policy = larder_policy(policy).expect("checked when parsing");
        trace::larder_cache(capacity, policy, Some(seed), Some(opts.shards))
    };
    // Mean hit % over `opts.repeat` runs of one thread and of `n` threads; run `r` of
    // each seeds its hasher alike, so that only the interleaving differs.
    let base = opts.seed.unwrap_or(0);
    let measure = |policy: &str, capacity, keys: &[u64]| {
        let (mut single, mut multi) = (0, 0);
        for r in 0..opts.repeat as u64 {
            let seed = base.wrapping_add(r);
            single += trace::replay(&mut build(capacity, policy, seed)?, keys);
            multi += trace::replay_threads(&build(capacity, policy, seed)?, keys, n, opts.window);
        }
        let requests = keys.len() * opts.repeat;
        Ok::<_, larder::BuildError>((
            trace::percent(single, requests),
            trace::percent(multi, requests),
        ))
    };
    let rows = per_trace(opts, |spec, keys| {
        spec.sizes
            .iter()
            .map(|&capacity| {
                let (single, multi) = measure(opts.policy, capacity, &keys)?;
                let (lru_single, lru_multi) = measure("lru", capacity, &keys)?;
                Ok((spec, capacity, single, multi, lru_multi - lru_single))
            })
            .collect::<Result<Vec<_>, larder::BuildError>>()
    });
    let rows = match rows {
        Ok(rows) => rows,
        Err(msg) => {
            println!("{msg}");
            return false;
        }
    };
    let meet = match opts.window {
        0 => "never".to_string(),
        w => format!("every {w} requests"),
    };
    println!(
        "larder {} ({} shard(s)): 1 thread vs {n} threads taking requests round-robin, \
         meeting {meet}; mean of {} run(s), hash seeds {base} to {}",
        opts.policy,
        opts.shards,
        opts.repeat,
        base.wrapping_add(opts.repeat as u64 - 1)
    );
    println!();
    println!(
        "| trace | size | 1 thread | {n} threads | difference | exact LRU's difference (control) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    let mut missed = 0;
    for rows in rows {
        let rows = match rows {
            Ok(rows) => rows,
            Err(e) => {
                println!("cannot build the cache: {e}");
                return false;
            }
        };
        for (spec, capacity, single, multi, control) in rows {
            let diff = multi - single;
            let mark = if diff.abs() > THREADS_TARGET {
                missed += 1;
                " OVER"
            } else {
                ""
            };
            println!(
                "| {} | {capacity} | {single:.2} | {multi:.2} | {diff:+.2}{mark} | {control:+.2} |",
                spec.name
            );
        }
    }
    println!();
    if missed == 0 {
        println!("within {THREADS_TARGET} points of single-thread on every row");
        true
    } else {
        println!(
            "TARGET MISSED on {missed} row(s): more than {THREADS_TARGET} points from \
             single-thread (compare the control column: the interleaving alone moves exact LRU)"
        );
        false
    }
}
