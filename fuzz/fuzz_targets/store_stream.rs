//! Parser and executor on arbitrary byte streams against a live, small
//! store: the stream is cut into reads at arbitrary points and the clock
//! moves between them. Never panics; the store's invariants hold after every
//! read; consumed bytes never exceed what was buffered.
#![no_main]

use std::time::Duration;

use larder::memcached::{Outcome, Session, Store, StoreConfig};
use larder::Clock;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&control, stream)) = data.split_first() else {
        return;
    };
    let (clock, hand) = Clock::manual();
    let store = Store::new(StoreConfig {
        memory_limit: 4096,
        max_item_size: 256,
        clock,
        unix_time: Some(1_700_000_000),
        ..StoreConfig::default()
    })
    .expect("valid config");
    let mut session = Session::new().with_output_limit(1 << 16);
    let mut buffered = Vec::new();
    let mut out = Vec::new();
    // Reads of 1..=16 bytes (from the control byte), advancing the clock by
    // the last byte of each read, in seconds.
    let step = usize::from(control % 16) + 1;
    for chunk in stream.chunks(step) {
        buffered.extend_from_slice(chunk);
        loop {
            out.clear();
            let progress = store.process(&mut session, &buffered, &mut out);
            assert!(progress.consumed <= buffered.len());
            buffered.drain(..progress.consumed);
            store.validate();
            if progress.outcome != Outcome::Continue {
                return;
            }
            if (progress.consumed == 0 && !session.is_resuming()) || buffered.is_empty() {
                break;
            }
        }
        hand.advance(Duration::from_secs(u64::from(chunk[chunk.len() - 1] % 4)));
    }
});
