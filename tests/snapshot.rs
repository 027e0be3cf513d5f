//! Snapshots of the core cache: `Cache::save` / `Cache::restore` round trips,
//! expiry across the downtime, policy hints, and fault injection (every
//! truncation and random byte flips are refused with a typed error, and no
//! damaged record is ever stored).

use larder::snapshot::{SnapshotError, SnapshotOptions};
use larder::{Cache, Clock, Policy};
use quickcheck::{Arbitrary, Gen, QuickCheck};
use std::collections::HashMap;
use std::time::Duration;

fn cache(cap: u64, clock: &Clock) -> Cache<u32, Vec<u8>> {
    Cache::builder()
        .max_entries(cap)
        .clock(clock.clone())
        .build()
        .unwrap()
}

fn save(c: &Cache<u32, Vec<u8>>, opts: &SnapshotOptions) -> Vec<u8> {
    let mut file = Vec::new();
    c.save_with(&mut file, &larder::snapshot::Plain, opts)
        .unwrap();
    file
}

#[test]
fn values_and_remaining_ttls_survive_a_round_trip() {
    let (clock, hand) = Clock::manual();
    let a = cache(1000, &clock);
    a.insert(1, b"forever".to_vec());
    a.insert_with_ttl(2, b"minute".to_vec(), Duration::from_secs(60));
    hand.advance(Duration::from_secs(10));
    let mut file = Vec::new();
    let saved = a.save(&mut file).unwrap();
    assert_eq!(saved.entries, 2);
    assert_eq!(saved.bytes, file.len() as u64);

    let b = cache(1000, &clock);
    let loaded = b.restore(&file[..]).unwrap();
    assert_eq!((loaded.loaded, loaded.expired), (2, 0));
    assert_eq!(loaded.bytes, file.len() as u64);
    assert_eq!(b.get_with_ttl(&1), Some((b"forever".to_vec(), None)));
    assert_eq!(
        b.get_with_ttl(&2),
        Some((b"minute".to_vec(), Some(Duration::from_secs(50))))
    );
}

#[test]
fn a_ttl_that_lapses_while_down_is_gone_and_a_longer_one_survives() {
    let (clock_a, _hand_a) = Clock::manual();
    let a = cache(100, &clock_a);
    a.insert_with_ttl(5, b"five".to_vec(), Duration::from_secs(5));
    a.insert_with_ttl(200, b"two hundred".to_vec(), Duration::from_secs(200));
    let mut file = Vec::new();
    a.save(&mut file).unwrap();

    // A new process whose (manual) wall clock reads 10 s later.
    let (clock_b, hand_b) = Clock::manual();
    hand_b.advance(Duration::from_secs(10));
    let b = cache(100, &clock_b);
    let report = b.restore(&file[..]).unwrap();
    assert_eq!((report.loaded, report.expired), (1, 1));
    assert_eq!(b.get(&5), None);
    assert_eq!(
        b.get_with_ttl(&200),
        Some((b"two hundred".to_vec(), Some(Duration::from_secs(190))))
    );
}

#[test]
fn metadata_and_save_time_come_back() {
    let (clock, _hand) = Clock::manual();
    let a = cache(10, &clock);
    let opts = SnapshotOptions::new()
        .unix_now_ms(1_800_000_000_000)
        .meta(b"cas=42".to_vec());
    let file = save(&a, &opts);
    let report = cache(10, &clock)
        .restore_with(&file[..], &larder::snapshot::Plain, &SnapshotOptions::new())
        .unwrap();
    assert_eq!(report.meta, b"cas=42");
    assert_eq!(report.saved_at_unix_ms, 1_800_000_000_000);
}

#[test]
fn a_restore_into_a_smaller_cache_keeps_the_hottest() {
    for policy in [Policy::s3fifo(), Policy::clock(), Policy::adaptive()] {
        let (clock, _hand) = Clock::manual();
        let a: Cache<u32, Vec<u8>> = Cache::builder()
            .max_entries(1000)
            .shards(1)
            .policy(policy.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        for k in 0..1000 {
            a.insert(k, vec![1]);
        }
        // Keys divisible by 10 are hot.
        for _ in 0..3 {
            for k in (0..1000).step_by(10) {
                assert!(a.get(&k).is_some());
            }
        }
        let mut file = Vec::new();
        a.save(&mut file).unwrap();
        let b: Cache<u32, Vec<u8>> = Cache::builder()
            .max_entries(200)
            .shards(2)
            .policy(policy.clone())
            .clock(clock.clone())
            .build()
            .unwrap();
        let report = b.restore(&file[..]).unwrap();
        let hot_kept = (0..1000)
            .step_by(10)
            .filter(|k| b.peek(k).is_some())
            .count();
        assert_eq!(hot_kept, 100, "{policy:?}: {report:?}");
        assert!(b.len() <= 200);
        b.validate();
    }
}

#[test]
fn a_snapshot_of_other_types_is_refused_with_decode() {
    let (clock, _hand) = Clock::manual();
    let a = cache(10, &clock);
    a.insert(1, vec![1, 2, 3]);
    let mut file = Vec::new();
    a.save(&mut file).unwrap();
    let b: Cache<u64, Vec<u8>> = Cache::new(10);
    assert!(matches!(
        b.restore(&file[..]),
        Err(SnapshotError::Decode(_))
    ));
}

#[test]
fn a_foreign_or_future_file_is_refused() {
    let b: Cache<u32, Vec<u8>> = Cache::new(10);
    assert!(matches!(
        b.restore(&b"GIF89a and so on"[..]),
        Err(SnapshotError::Decode(_))
    ));
    assert!(matches!(b.restore(&b""[..]), Err(SnapshotError::Truncated)));
    let (clock, _hand) = Clock::manual();
    let mut file = save(&cache(10, &clock), &SnapshotOptions::new());
    file[8] = 9;
    assert!(matches!(
        b.restore(&file[..]),
        Err(SnapshotError::Version(9))
    ));
}

/// A cache of 600 entries with values of 1 to 500 bytes and some TTLs, saved
/// in blocks of about 4 KiB (so a snapshot of ~150 KiB has dozens of blocks).
fn damaged_fixture() -> (Clock, HashMap<u32, Vec<u8>>, Vec<u8>) {
    let (clock, _hand) = Clock::manual();
    let a = cache(10_000, &clock);
    let mut model = HashMap::new();
    for k in 0..600u32 {
        let v: Vec<u8> = (0..(k * 7919 % 500 + 1)).map(|i| (i ^ k) as u8).collect();
        if k % 3 == 0 {
            a.insert_with_ttl(k, v.clone(), Duration::from_secs(u64::from(k) + 100));
        } else {
            a.insert(k, v.clone());
        }
        model.insert(k, v);
    }
    let file = save(&a, &SnapshotOptions::new().block_bytes(4096));
    (clock, model, file)
}

/// Loads `file` into a fresh cache: it must be refused with a typed error,
/// and whatever was stored before the damage was found must be intact.
fn assert_refused(clock: &Clock, model: &HashMap<u32, Vec<u8>>, file: &[u8], what: &str) {
    let b = cache(10_000, clock);
    match b.restore(file) {
        Ok(r) => panic!("{what}: a damaged snapshot was accepted ({r:?})"),
        Err(SnapshotError::Io(e)) => panic!("{what}: untyped error {e}"),
        Err(_) => {}
    }
    for k in 0..600u32 {
        if let Some(v) = b.peek(&k) {
            assert_eq!(Some(&v), model.get(&k), "{what}: damaged value stored");
        }
    }
    b.validate();
}

#[test]
fn every_truncation_at_a_4k_boundary_is_refused() {
    let (clock, model, file) = damaged_fixture();
    assert!(file.len() > 100 << 10, "fixture too small: {}", file.len());
    let mut cuts = 0;
    for cut in (0..file.len()).step_by(4096) {
        assert_refused(&clock, &model, &file[..cut], &format!("cut at {cut}"));
        cuts += 1;
    }
    // And every cut inside the last 64 bytes (end frame and last block's tail).
    for cut in file.len() - 64..file.len() {
        assert_refused(&clock, &model, &file[..cut], &format!("cut at {cut}"));
        cuts += 1;
    }
    assert!(cuts > 80);
    // The undamaged file loads completely.
    let b = cache(10_000, &clock);
    assert_eq!(b.restore(&file[..]).unwrap().loaded, 600);
}

#[test]
fn a_thousand_random_byte_flips_are_all_refused() {
    let (clock, model, file) = damaged_fixture();
    // A fixed xorshift sequence: the same positions every run.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut kinds = HashMap::new();
    for i in 0..1000 {
        let at = (next() % file.len() as u64) as usize;
        let flip = (next() % 255 + 1) as u8;
        let mut bad = file.clone();
        bad[at] ^= flip;
        let b = cache(10_000, &clock);
        let err = b.restore(&bad[..]).expect_err("damaged file accepted");
        *kinds.entry(std::mem::discriminant(&err)).or_insert(0u32) += 1;
        assert!(
            !matches!(err, SnapshotError::Io(_)),
            "flip {i} at {at}: untyped {err}"
        );
        for k in 0..600u32 {
            if let Some(v) = b.peek(&k) {
                assert_eq!(
                    Some(&v),
                    model.get(&k),
                    "flip {i} at {at}: damaged value stored"
                );
            }
        }
    }
    assert!(!kinds.is_empty());
}

#[test]
fn bytes_after_the_end_are_refused() {
    let (clock, _model, mut file) = damaged_fixture();
    file.push(0);
    assert!(matches!(
        cache(10_000, &clock).restore(&file[..]),
        Err(SnapshotError::Decode(_))
    ));
}

#[derive(Clone, Debug)]
enum Act {
    Put(u16, Vec<u8>),
    PutTtl(u16, Vec<u8>, u16),
    Get(u16),
    Remove(u16),
    Advance(u16),
}

impl Arbitrary for Act {
    fn arbitrary(g: &mut Gen) -> Self {
        let k = u16::arbitrary(g) % 200;
        match u8::arbitrary(g) % 10 {
            0..=3 => Act::Put(k, Vec::arbitrary(g)),
            4..=5 => Act::PutTtl(k, Vec::arbitrary(g), 1 + u16::arbitrary(g) % 100),
            6..=7 => Act::Get(k),
            8 => Act::Remove(k),
            _ => Act::Advance(u16::arbitrary(g) % 50),
        }
    }
}

/// Save → restore gives back exactly the live entries, with the same values
/// and the same remaining TTLs, whatever the cache went through.
#[test]
fn quickcheck_save_restore_round_trips_exactly() {
    fn prop(acts: Vec<Act>, block_small: bool, down_secs: u8) -> bool {
        let (clock, hand) = Clock::manual();
        let a: Cache<u16, Vec<u8>> = Cache::builder()
            .max_entries(64)
            .clock(clock.clone())
            .build()
            .unwrap();
        for act in acts {
            match act {
                Act::Put(k, v) => a.insert(k, v),
                Act::PutTtl(k, v, s) => a.insert_with_ttl(k, v, Duration::from_secs(s.into())),
                Act::Get(k) => {
                    a.get(&k);
                }
                Act::Remove(k) => {
                    a.remove(&k);
                }
                Act::Advance(s) => hand.advance(Duration::from_secs(s.into())),
            }
        }
        let opts = if block_small {
            SnapshotOptions::new().block_bytes(1)
        } else {
            SnapshotOptions::new()
        };
        let mut file = Vec::new();
        a.save_with(&mut file, &larder::snapshot::Plain, &opts)
            .unwrap();
        // Down for a while: entries that expire meanwhile must not come back.
        hand.advance(Duration::from_secs(down_secs.into()));
        let b: Cache<u16, Vec<u8>> = Cache::builder()
            .max_entries(64)
            .shards(1)
            .clock(clock.clone())
            .build()
            .unwrap();
        b.restore(&file[..]).unwrap();
        b.validate();
        (0..200u16).all(|k| a.get_with_ttl(&k) == b.get_with_ttl(&k))
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(prop as fn(Vec<Act>, bool, u8) -> bool);
}

/// The memcached store's snapshot, with manual clocks: the second store's
/// wall clock reads 10 s after the first's.
#[cfg(feature = "memcached")]
mod store {
    use larder::memcached::{Session, Store, StoreConfig};
    use larder::snapshot::SnapshotError;
    use larder::Clock;

    fn store_at(unix: u64) -> (Store, larder::ManualClock) {
        let (clock, hand) = Clock::manual();
        let store = Store::new(StoreConfig {
            clock,
            unix_time: Some(unix),
            ..StoreConfig::default()
        })
        .unwrap();
        (store, hand)
    }

    fn run(store: &Store, input: &str) -> String {
        let mut out = Vec::new();
        let _ = store.process(&mut Session::new(), input.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ttls_are_absolute_times_across_a_restore() {
        let (a, _) = store_at(1_700_000_000);
        run(
            &a,
            "set five 1 5 1\r\na\r\nset long 2 200 1\r\nb\r\nset never 3 0 1\r\nc\r\n",
        );
        let mut file = Vec::new();
        assert_eq!(a.save(&mut file).unwrap().entries, 3);
        let (b, _) = store_at(1_700_000_010);
        let report = b.restore(&file[..]).unwrap();
        assert_eq!((report.loaded, report.expired), (2, 1));
        assert_eq!(run(&b, "mg five v\r\n"), "EN\r\n");
        assert_eq!(run(&b, "mg long t f v\r\n"), "VA 1 t190 f2\r\nb\r\n");
        assert_eq!(run(&b, "mg never t f v\r\n"), "VA 1 t-1 f3\r\nc\r\n");
    }

    #[test]
    fn cas_uniques_after_a_restore_never_repeat() {
        let (a, _) = store_at(1_700_000_000);
        for i in 0..50 {
            run(&a, &format!("set k{i} 0 0 1\r\nx\r\n"));
        }
        // A client-chosen CAS above the counter (meta `E`) counts too.
        assert_eq!(run(&a, "ms chosen 1 E900\r\ny\r\n"), "HD\r\n");
        let highest = a.get(b"chosen").unwrap().cas();
        assert_eq!(highest, 900);
        let mut file = Vec::new();
        a.save(&mut file).unwrap();
        let (b, _) = store_at(1_700_000_000);
        b.restore(&file[..]).unwrap();
        assert_eq!(b.get(b"k7").unwrap().value().as_ref(), b"x");
        run(&b, "set new 0 0 1\r\nz\r\n");
        assert!(b.get(b"new").unwrap().cas() > highest);
    }

    #[test]
    fn a_pending_flush_keeps_its_wall_clock_deadline() {
        let (a, _) = store_at(1_700_000_000);
        run(&a, "set k 0 0 1\r\nx\r\nflush_all 5\r\n");
        let mut file = Vec::new();
        a.save(&mut file).unwrap();
        // Restored 2 s later: the flush is still 3 s away.
        let (b, hand) = store_at(1_700_000_002);
        b.restore(&file[..]).unwrap();
        assert!(b.get(b"k").is_some());
        hand.advance(std::time::Duration::from_millis(2_999));
        assert!(b.get(b"k").is_some());
        hand.advance(std::time::Duration::from_millis(1));
        assert!(b.get(b"k").is_none());
    }

    #[test]
    fn a_plain_cache_snapshot_is_not_a_store_snapshot() {
        let cache: larder::Cache<u64, u64> = larder::Cache::new(10);
        cache.insert(1, 1);
        let mut file = Vec::new();
        cache.save(&mut file).unwrap();
        let (b, _) = store_at(1_700_000_000);
        assert!(matches!(
            b.restore(&file[..]),
            Err(SnapshotError::Decode(_))
        ));
    }

    #[test]
    fn stats_report_the_last_save_and_the_changes_since() {
        let (a, _) = store_at(1_700_000_000);
        let dir = std::env::temp_dir().join(format!("larder-store-stats-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        run(&a, "set k 0 0 1\r\nx\r\ndelete k\r\n");
        let stats = run(&a, "stats\r\n");
        assert!(stats.contains("STAT snapshot_last_ok 0\r\n"), "{stats}");
        assert!(
            stats.contains("STAT changes_since_snapshot 2\r\n"),
            "{stats}"
        );
        let report = a.save_to_path(&dir.join("s"), 1).unwrap();
        run(&a, "set k 0 0 1\r\nx\r\n");
        let stats = run(&a, "stats\r\n");
        assert!(stats.contains("STAT snapshot_last_ok 1\r\n"), "{stats}");
        assert!(
            stats.contains(&format!("STAT snapshot_bytes {}\r\n", report.bytes)),
            "{stats}"
        );
        assert!(
            stats.contains("STAT changes_since_snapshot 1\r\n"),
            "{stats}"
        );
        // A save that cannot write its file is reported, and changes stay.
        assert!(a
            .save_to_path(&dir.join("missing-dir").join("s"), 1)
            .is_err());
        let status = a.snapshot_status();
        assert!(!status.last_ok);
        assert_eq!((status.failures, status.changes_since), (1, 1));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

/// A file of many records that will never be stored (here all expired) must
/// not make a weight-bounded cache size its tables for them: its capacity is
/// in weight units and says nothing of how many entries fit.
#[test]
fn expired_records_do_not_size_a_weight_bounded_cache() {
    let (clock, hand) = Clock::manual();
    let a = cache(200_000, &clock);
    for k in 0..200_000u32 {
        a.insert_with_ttl(k, Vec::new(), Duration::from_secs(1));
    }
    let file = save(&a, &SnapshotOptions::new());
    hand.advance(Duration::from_secs(5));
    let b: Cache<u32, Vec<u8>> = Cache::builder()
        .max_weight(1 << 40)
        .weigher(|_: &u32, v: &Vec<u8>| 1 + v.len() as u32)
        .clock(clock.clone())
        .build()
        .unwrap();
    let empty = b.heap_bytes();
    b.restore_with(&file[..], &larder::snapshot::Plain, &SnapshotOptions::new())
        .unwrap();
    assert_eq!(b.len(), 0);
    // 200,000 entries' worth of slots and index would be megabytes.
    assert!(
        b.heap_bytes() < empty + (1 << 20),
        "{} bytes reserved for nothing",
        b.heap_bytes() - empty
    );
}

/// A file sink that, at each block the save writes (between slices, with no
/// lock held), waits until the inserting thread has stored `step` more keys.
struct Interleaved {
    file: Vec<u8>,
    inserted: std::sync::Arc<std::sync::atomic::AtomicU32>,
    writer_done: std::sync::Arc<std::sync::atomic::AtomicBool>,
    step: u32,
}

impl std::io::Write for Interleaved {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use std::sync::atomic::Ordering::SeqCst;
        let want = self.inserted.load(SeqCst) + self.step;
        while self.inserted.load(SeqCst) < want && !self.writer_done.load(SeqCst) {
            std::thread::yield_now();
        }
        self.file.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A save walks each shard a slice at a time, releasing the lock between
/// slices, while writers may grow the table (which moves every entry). Every
/// entry present all through the save must be in the file, once.
#[test]
fn a_save_while_inserts_rebuild_the_tables_keeps_every_older_entry() {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
    use std::sync::Arc;
    let c: Arc<Cache<u32, u32>> = Arc::new(
        Cache::builder()
            .max_weight(1 << 30)
            .weigher(|_, _| 1)
            .shards(2)
            .build()
            .unwrap(),
    );
    for k in 0..20_000u32 {
        c.insert(k, k);
    }
    let rebuilds_before = c.table_rebuilds();
    let (inserted, done, writer_done) = (
        Arc::new(AtomicU32::new(0)),
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicBool::new(false)),
    );
    let writer = {
        let (c, inserted, done, writer_done) = (
            c.clone(),
            inserted.clone(),
            done.clone(),
            writer_done.clone(),
        );
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !done.load(SeqCst) && n < 2_000_000 {
                c.insert(1_000_000 + n, n);
                n += 1;
                inserted.store(n, SeqCst);
            }
            writer_done.store(true, SeqCst);
            n
        })
    };
    let mut sink = Interleaved {
        file: Vec::new(),
        inserted,
        writer_done,
        step: 200,
    };
    c.save_with(
        &mut sink,
        &larder::snapshot::Plain,
        &SnapshotOptions::new().block_bytes(2048),
    )
    .unwrap();
    done.store(true, SeqCst);
    let added = writer.join().unwrap();
    assert!(
        c.table_rebuilds() > rebuilds_before,
        "no table was rebuilt during the save"
    );
    let copy: Cache<u32, u32> = Cache::builder()
        .max_weight(1 << 30)
        .weigher(|_, _| 1)
        .build()
        .unwrap();
    let report = copy.restore(&sink.file[..]).unwrap();
    for k in 0..20_000u32 {
        assert_eq!(copy.peek(&k), Some(k), "key {k} missing from the save");
    }
    // Each record once: the file holds the old keys and some of the new ones.
    assert_eq!(
        report.loaded as usize,
        copy.len(),
        "a record was saved twice"
    );
    assert!(copy.len() as u32 <= 20_000 + added);
}
