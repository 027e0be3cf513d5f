//! Snapshot speed of the memcached store (what `larder-server --snapshot`
//! does at stop and start, without the sockets), run by hand in release:
//!
//! ```text
//! cargo run --release --features memcached --example store_snapshot_bench -- [ITEMS] [DIR] [MODE]
//! ```
//!
//! MODE `both` (the default) saves and restores in one process; `save` fills,
//! saves to DIR/larder-store-ITEMS.snap and keeps the file; `restore` restores
//! that file in a fresh process (what a restarted server does) and removes it.
//!
//! Stores ITEMS (default 10,000,000) items of 16-byte keys and 100-byte
//! values through `Store::process`, saves them with `Store::save_to_path` to
//! DIR (default /dev/shm) and restores them into a new store with
//! `Store::restore_from_path`, printing items/s and MB/s of each.
#![forbid(unsafe_code)]

use std::time::Instant;

use larder::memcached::{Session, Store, StoreConfig};

fn store(items: u64) -> Store {
    Store::new(StoreConfig {
        // Weight per item: key + value + ITEM_OVERHEAD, with room to spare.
        memory_limit: items * 480 + (64 << 20),
        ..StoreConfig::default()
    })
    .expect("valid config")
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let items: u64 = args.next().map_or(Ok(10_000_000), |a| a.parse())?;
    let dir = args.next().unwrap_or_else(|| "/dev/shm".into());
    let mode = args.next().unwrap_or_else(|| "both".into());
    if !["both", "save", "restore"].contains(&mode.as_str()) {
        return Err(format!("MODE must be both, save or restore, not {mode}").into());
    }
    let name = match mode.as_str() {
        "both" => format!("larder-store-{}.snap", std::process::id()),
        _ => format!("larder-store-{items}.snap"),
    };
    let path = std::path::Path::new(&dir).join(name);
    if mode == "restore" {
        return restore(items, &path);
    }

    let a = store(items);
    let t = Instant::now();
    let mut session = Session::new();
    let mut input = Vec::with_capacity(1 << 20);
    let mut out = Vec::new();
    let value = [b'v'; 100];
    let mut i = 0;
    while i < items {
        input.clear();
        for _ in 0..4096.min(items - i) {
            input.extend_from_slice(format!("set k{i:015} 0 0 100 noreply\r\n").as_bytes());
            input.extend_from_slice(&value);
            input.extend_from_slice(b"\r\n");
            i += 1;
        }
        out.clear();
        let progress = a.process(&mut session, &input, &mut out);
        assert_eq!(progress.consumed, input.len());
    }
    println!(
        "stored {} items in {:.2} s",
        a.len(),
        t.elapsed().as_secs_f64()
    );

    let t = Instant::now();
    let saved = a.save_to_path(&path, 0)?;
    let s = t.elapsed().as_secs_f64();
    println!(
        "save_to_path:      {:>10.0} items/s  {:>6.0} MB/s  ({} items, {} bytes, {:.2} s)",
        saved.entries as f64 / s,
        saved.bytes as f64 / s / 1e6,
        saved.entries,
        saved.bytes,
        s
    );
    if mode == "save" {
        std::process::exit(0);
    }
    // Not dropped: freeing millions of items would leave the allocator's free
    // lists to be consolidated during the restore, which a restarted process
    // (the case measured) does not have.
    std::mem::forget(a);
    restore(items, &path)
}

/// Restores `path` into a new store and prints the rate.
fn restore(items: u64, path: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let b = store(items);
    let t = Instant::now();
    let restored = b.restore_from_path(path, 0);
    let s = t.elapsed().as_secs_f64();
    let (_, report) = restored.from.ok_or("restore failed")?;
    println!(
        "restore_from_path: {:>10.0} items/s  {:>6.0} MB/s  ({} items, {:.2} s)",
        report.loaded as f64 / s,
        report.bytes as f64 / s / 1e6,
        report.loaded,
        s
    );
    assert_eq!(b.len() as u64, items);
    std::fs::remove_file(path)?;
    // Skip freeing millions of items one by one: the process ends here.
    std::process::exit(0);
}
