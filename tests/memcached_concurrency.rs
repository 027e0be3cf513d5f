//! Read-modify-write commands are atomic under contention.
#![cfg(feature = "memcached")]

use std::sync::{Arc, Barrier};
use std::thread;

use larder::memcached::{Session, Store, StoreConfig};

fn send(store: &Store, input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let progress = store.process(&mut Session::new(), input, &mut out);
    assert_eq!(progress.consumed, input.len());
    out
}

#[test]
fn eight_threads_incrementing_one_key_lose_no_update() {
    let store = Arc::new(Store::new(StoreConfig::default()).unwrap());
    assert_eq!(send(&store, b"set n 0 0 1\r\n0\r\n"), b"STORED\r\n");
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                let mut session = Session::new();
                let mut out = Vec::new();
                for _ in 0..10_000 {
                    out.clear();
                    let _ = store.process(&mut session, b"incr n 1\r\n", &mut out);
                    assert!(
                        out[0].is_ascii_digit(),
                        "{:?}",
                        String::from_utf8_lossy(&out)
                    );
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        send(&store, b"get n\r\n"),
        b"VALUE n 0 5\r\n80000\r\nEND\r\n"
    );
    store.validate();
}

#[test]
fn meta_arithmetic_is_atomic_too() {
    let store = Arc::new(Store::new(StoreConfig::default()).unwrap());
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let store = Arc::clone(&store);
            thread::spawn(move || {
                for _ in 0..5_000 {
                    send(&store, b"ma n N0 q\r\n");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // The first vivify stores 0 without adding, so one increment is "lost" by design.
    assert_eq!(send(&store, b"mg n v\r\n"), b"VA 5\r\n19999\r\n");
}

#[test]
fn concurrent_cas_has_exactly_one_winner_per_round() {
    const THREADS: usize = 8;
    const ROUNDS: usize = 200;
    let store = Arc::new(Store::new(StoreConfig::default()).unwrap());
    assert_eq!(send(&store, b"set k 0 0 1\r\n0\r\n"), b"STORED\r\n");
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|id| {
            let store = Arc::clone(&store);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                let mut wins = Vec::with_capacity(ROUNDS);
                for round in 0..ROUNDS {
                    // Everyone reads the same unique...
                    let item = store.get(b"k").expect("k is never deleted");
                    barrier.wait();
                    // ...then everyone tries to swap it at once.
                    let value = format!("{round}:{id}");
                    let request =
                        format!("cas k 0 0 {} {}\r\n{value}\r\n", value.len(), item.cas());
                    let reply = send(&store, request.as_bytes());
                    match &reply[..] {
                        b"STORED\r\n" => wins.push(true),
                        b"EXISTS\r\n" => wins.push(false),
                        other => panic!("{:?}", String::from_utf8_lossy(other)),
                    }
                    barrier.wait();
                }
                wins
            })
        })
        .collect();
    let results: Vec<Vec<bool>> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    for round in 0..ROUNDS {
        let winners = results.iter().filter(|wins| wins[round]).count();
        assert_eq!(winners, 1, "round {round}");
    }
    store.validate();
}

#[test]
fn concurrent_add_stores_once() {
    const THREADS: usize = 8;
    let store = Arc::new(Store::new(StoreConfig::default()).unwrap());
    for round in 0..100 {
        let barrier = Arc::new(Barrier::new(THREADS));
        let stored: usize = (0..THREADS)
            .map(|_| {
                let store = Arc::clone(&store);
                let barrier = Arc::clone(&barrier);
                thread::spawn(move || {
                    barrier.wait();
                    let request = format!("add k{round} 0 0 1\r\nx\r\n");
                    usize::from(send(&store, request.as_bytes()) == b"STORED\r\n")
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(stored, 1, "round {round}");
    }
}
