//! `memory_limit` bounds what the store really allocates: a counting global
//! allocator checks that `ITEM_OVERHEAD` covers an item's true cost.
//!
//! The allocator sees requested sizes, not the allocator's own headers and
//! rounding; the store charges each item's block as it is stored (its slot
//! in the store's arena, whose 32 KiB pages the allocator sees whole, or a
//! heap block as malloc rounds it) plus `ITEM_OVERHEAD`. It does see the
//! unused capacity of the slot vectors, which a resident-set measure would
//! not.
#![cfg(feature = "memcached")]

use std::sync::{Mutex, PoisonError};

use larder::memcached::{Session, Store, StoreConfig, ITEM_OVERHEAD};

#[path = "../benches/common/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::in_use;

/// The allocation counter is process-wide, and the test harness runs tests
/// on parallel threads: two measurements at once would each count the other's
/// items (one alone reads ~195 B per small item, ~255 B beside the other).
/// Every measurement holds this lock from its first reading to its last.
static MEASURING: Mutex<()> = Mutex::new(());

/// Stores `n` items with `value_len`-byte values; returns heap growth per item
/// held, and the store's own figure per item.
fn measure(memory_limit: u64, n: usize, value_len: usize) -> (f64, f64, usize) {
    // A measurement that failed has poisoned the lock, but its store was
    // dropped while unwinding, so it leaves nothing behind to count.
    let _alone = MEASURING.lock().unwrap_or_else(PoisonError::into_inner);
    let before = in_use();
    let store = Store::new(StoreConfig {
        memory_limit,
        ..StoreConfig::default()
    })
    .unwrap();
    let mut session = Session::new();
    let mut out = Vec::new();
    let value = vec![b'v'; value_len];
    let mut request = Vec::new();
    for i in 0..n {
        request.clear();
        request.extend_from_slice(format!("set key:{i:08} 0 0 {value_len}\r\n").as_bytes());
        request.extend_from_slice(&value);
        request.extend_from_slice(b"\r\n");
        out.clear();
        let _ = store.process(&mut session, &request, &mut out);
        assert_eq!(out, b"STORED\r\n");
    }
    drop((out, request, value));
    let used = (in_use() - before) as f64;
    let held = store.len();
    let charged = store.bytes() as f64;
    (used / held as f64, charged / held as f64, held)
}

/// The cache's tables grow in steps, and just after a step they hold the most
/// spare room: the item counts below land at different points of the steps
/// (the default shards' tables, 8 on 2 CPUs, double up to 64 entries each,
/// then grow by a quarter).
#[test]
fn small_items_cost_no_more_than_they_are_charged() {
    for n in [7_000, 14_000, 28_000, 55_000, 100_000] {
        let (real, charged, held) = measure(256 << 20, n, 10);
        assert_eq!(held, n);
        eprintln!(
            "{n} small items: {real:.1} B real, {charged:.1} B charged (overhead {ITEM_OVERHEAD})"
        );
        assert!(real <= charged, "{n} items: {real} > {charged}");
    }
}

#[test]
fn a_full_store_stays_within_its_memory_limit() {
    for (limit, value_len) in [(6 << 20, 10), (8 << 20, 100), (12 << 20, 10)] {
        let n = 4 * limit as usize / (value_len + 60);
        let (real, _, held) = measure(limit, n, value_len);
        let total = real * held as f64;
        eprintln!(
            "full store: {held} items of {value_len} B, {:.2} MiB real of {} MiB",
            total / (1 << 20) as f64,
            limit >> 20
        );
        assert!(total <= limit as f64, "{total} > {limit}");
    }
}

/// Sends one request line (and its data block) and returns the reply.
fn ask(store: &Store, session: &mut Session, request: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = store.process(session, request, &mut out);
    out
}

/// A reply's fingerprint (FNV-1a), so that the test keeps 8 bytes per
/// survivor where the allocator counts them, not the reply.
fn fingerprint(reply: &[u8]) -> u64 {
    reply.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The arena keeps one size class per page, so when the sizes stored shift
/// the old size's pages stay, each holding a few survivors (a review's
/// case: fill with 100-byte items, delete 90% at random, fill to the limit
/// with 300-byte ones). The page mover moves the survivors together and
/// gives the pages back, after which the store holds no more than its limit
/// again; every survivor reads back as it was, CAS included.
#[test]
fn a_store_whose_item_sizes_shift_gives_the_old_sizes_pages_back() {
    let _alone = MEASURING.lock().unwrap_or_else(PoisonError::into_inner);
    let limit: u64 = 8 << 20;
    let small = 4 * limit as usize / 160;
    // The survivors' fingerprints, allocated before the count starts.
    let mut held = Vec::with_capacity(small / 8);
    let before = in_use();
    let store = Store::new(StoreConfig {
        memory_limit: limit,
        ..StoreConfig::default()
    })
    .unwrap();
    let mut session = Session::new();
    let empty = (in_use() - before) as u64;
    let value = |i: usize, len: usize| -> Vec<u8> {
        (0..len).map(|j| b'a' + ((i * 31 + j) % 26) as u8).collect()
    };
    for i in 0..small {
        let mut request = format!("set small:{i:08} {} 0 100\r\n", i % 5).into_bytes();
        request.extend_from_slice(&value(i, 100));
        request.extend_from_slice(b"\r\n");
        assert_eq!(ask(&store, &mut session, &request), b"STORED\r\n");
    }
    // Nine in ten of what is held go, at random (a fixed LCG).
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for i in 0..small {
        let key = format!("small:{i:08}");
        let reply = ask(&store, &mut session, format!("gets {key}\r\n").as_bytes());
        if reply == b"END\r\n" {
            continue;
        }
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        if (seed >> 33) % 10 == 0 {
            held.push((i, fingerprint(&reply)));
        } else {
            let _ = ask(&store, &mut session, format!("delete {key}\r\n").as_bytes());
        }
    }
    assert!(
        (1_000..small / 8).contains(&held.len()),
        "{} survivors held",
        held.len()
    );
    // Then 300-byte items, up to the limit.
    let mut large = 0;
    while store.bytes() + 1_000 < limit {
        let mut request = format!("set large:{large:08} 0 0 300\r\n").into_bytes();
        request.extend_from_slice(&value(large, 300));
        request.extend_from_slice(b"\r\n");
        assert_eq!(ask(&store, &mut session, &request), b"STORED\r\n");
        large += 1;
    }
    let mib = |n: u64| n as f64 / f64::from(1 << 20);
    let used = (in_use() - before) as u64;
    eprintln!(
        "after the shift: {} items ({} survivors, {large} large), {:.2} MiB allocated, \
         {:.2} MiB charged, {:.2} MiB of arena pages",
        store.len(),
        held.len(),
        mib(used),
        mib(store.bytes()),
        mib(store.arena_bytes()),
    );
    // What the items' slots cost, and what the arena may hold beyond that
    // once the mover is done: less than a page of free slots in each class
    // in use (two here: the 100- and 300-byte items).
    let slots = |store: &Store| store.bytes() - store.len() as u64 * u64::from(ITEM_OVERHEAD);
    let spare = 2 * (32 << 10);
    assert!(
        store.arena_bytes() > slots(&store) + (1 << 20),
        "the shift should have left the small items' pages behind"
    );
    assert!(used > limit + limit / 4, "{used} of {limit}");
    // Until no class has a page's worth of free slots.
    let mut freed = 0;
    let mut moved = 0;
    loop {
        let moves = store.move_pages(64);
        freed += moves.pages_freed;
        moved += moves.items_moved;
        if moves.pages_tried == 0 {
            break;
        }
    }
    let used = (in_use() - before) as u64;
    eprintln!(
        "after the mover: {:.2} MiB allocated, {:.2} MiB of arena pages for {:.2} MiB of \
         slots; {freed} pages freed, {moved} items moved",
        mib(used),
        mib(store.arena_bytes()),
        mib(slots(&store)),
    );
    assert!(store.arena_bytes() <= slots(&store) + spare);
    // The bound: within 1.1 x the limit and a fixed baseline (the
    // empty store's allocations).
    assert!(
        used <= limit + limit / 10 + empty,
        "{used} > 1.1 x {limit} + {empty}"
    );
    // Every survivor reads back unchanged: value, flags and CAS.
    for (i, print) in &held {
        let now = ask(
            &store,
            &mut session,
            format!("gets small:{i:08}\r\n").as_bytes(),
        );
        assert_eq!(fingerprint(&now), *print, "small:{i:08}: {now:?}");
    }
    let stats = String::from_utf8(ask(&store, &mut session, b"stats\r\n")).unwrap();
    assert!(
        stats.contains(&format!("STAT slabs_moved {freed}\r\n")),
        "{stats}"
    );
    assert!(stats.contains(&format!("STAT slab_reassign_rescues {moved}\r\n")));
}

/// Two stores in one process share the arena, so their items share pages.
/// Each store's mover moves only its own items: a page holding both is
/// emptied by the two movers together, the second finishing what the
/// first could not.
#[test]
fn two_stores_movers_together_empty_the_pages_they_share() {
    let _alone = MEASURING.lock().unwrap_or_else(PoisonError::into_inner);
    let config = || StoreConfig {
        memory_limit: 64 << 20,
        ..StoreConfig::default()
    };
    let (x, y) = (Store::new(config()).unwrap(), Store::new(config()).unwrap());
    let (mut sx, mut sy) = (Session::new(), Session::new());
    let n = 20_000;
    let set = |store: &Store, session: &mut Session, i: usize| {
        let mut request = format!("set shared:{i:06} 0 0 100\r\n").into_bytes();
        request.extend_from_slice(&[b'a' + (i % 26) as u8; 100]);
        request.extend_from_slice(b"\r\n");
        assert_eq!(ask(store, session, &request), b"STORED\r\n");
    };
    // Interleaved, so that every page holds items of both.
    for i in 0..n {
        set(&x, &mut sx, i);
        set(&y, &mut sy, i);
    }
    for i in (0..n).filter(|i| i % 10 != 0) {
        let delete = format!("delete shared:{i:06}\r\n");
        assert_eq!(ask(&x, &mut sx, delete.as_bytes()), b"DELETED\r\n");
        assert_eq!(ask(&y, &mut sy, delete.as_bytes()), b"DELETED\r\n");
    }
    let before = x.arena_bytes();
    let settle = |store: &Store| while store.move_pages(64).pages_tried > 0 {};
    settle(&x);
    settle(&y);
    settle(&x);
    let after = x.arena_bytes();
    eprintln!("two stores: {before} -> {after} bytes of arena pages");
    assert!(after * 3 < before, "{before} -> {after}");
    for i in (0..n).step_by(10) {
        for (store, session) in [(&x, &mut sx), (&y, &mut sy)] {
            let reply = ask(store, session, format!("get shared:{i:06}\r\n").as_bytes());
            let value = [b'a' + (i % 26) as u8; 100];
            assert!(
                reply.windows(100).any(|w| w == value),
                "shared:{i:06}: {reply:?}"
            );
        }
    }
}

#[test]
fn with_mixed_sizes_light_items_are_held_longer_than_heavy_ones() {
    // memory_vs_memcached.py's mixed run, in small: values of 10 to 10,000
    // bytes in random order, written once and never read, four times what
    // fits. Eviction gives an item of at most half the mean weight one more
    // turn, so the store holds light items about twice as often as heavy
    // ones (a size-blind queue holds the mix written, about as many of
    // each: 728 of the 10-byte values against 573 of the 10,000-byte ones
    // before), and more items in all: memcached, whose smallest slab
    // classes each get a page of their own, held 42,604 items of this mix at
    // -m 64 where larder-server held 34,967 before and 53,576 after.
    // Its allocations would count in a measurement running beside it (the
    // address sanitizer's run, slow enough for them to overlap, read 219 B
    // per small item where 72 are charged): it holds the lock too.
    let _alone = MEASURING.lock().unwrap_or_else(PoisonError::into_inner);
    const SIZES: [usize; 7] = [10, 30, 100, 300, 1_000, 3_000, 10_000];
    let store = Store::new(StoreConfig {
        memory_limit: 8 << 20,
        ..StoreConfig::default()
    })
    .unwrap();
    let mut session = Session::new();
    let mean = SIZES.iter().sum::<usize>() / SIZES.len();
    let n = 4 * (8 << 20) / (mean + 14);
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let sizes: Vec<usize> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            SIZES[(state % SIZES.len() as u64) as usize]
        })
        .collect();
    for (i, &size) in sizes.iter().enumerate() {
        let mut request = format!("set key:{i:08} 0 0 {size} noreply\r\n").into_bytes();
        request.resize(request.len() + size, b'v');
        request.extend_from_slice(b"\r\n");
        let mut out = Vec::new();
        let _ = store.process(&mut session, &request, &mut out);
        assert!(out.is_empty(), "{}", String::from_utf8_lossy(&out));
    }
    let mut held = [0usize; SIZES.len()];
    for (i, &size) in sizes.iter().enumerate() {
        let reply = ask(
            &store,
            &mut session,
            format!("mg key:{i:08}\r\n").as_bytes(),
        );
        if reply.starts_with(b"HD") {
            held[SIZES.iter().position(|&s| s == size).unwrap()] += 1;
        }
    }
    let (lightest, heaviest) = (held[0], held[SIZES.len() - 1]);
    assert!(store.bytes() <= 8 << 20);
    assert!(
        lightest >= 2 * heaviest,
        "held per size {held:?}: light items should outlast heavy ones"
    );
}
