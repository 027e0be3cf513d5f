//! The memcached path end to end: parse + execute + compose, per request, on
//! one thread. Run: `cargo bench --features memcached --bench codec`.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use larder::memcached::binary::{Extras, Opcode, Request, Value};
use larder::memcached::{Session, Store, StoreConfig};

fn store_with(keys: usize) -> Store {
    let store = Store::new(StoreConfig::default()).expect("default config");
    let mut out = Vec::new();
    let mut session = Session::new();
    for i in 0..keys {
        let request = format!("set key:{i} 0 0 100\r\n{}\r\n", "v".repeat(100));
        let _ = store.process(&mut session, request.as_bytes(), &mut out);
    }
    store
}

fn run(store: &Store, session: &mut Session, input: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let progress = store.process(session, input, out);
    assert_eq!(progress.consumed, input.len());
}

fn bench(c: &mut Criterion) {
    let store = store_with(1000);
    let mut session = Session::new();
    let mut out = Vec::with_capacity(64 << 10);

    let mut group = c.benchmark_group("memcached");
    group.throughput(Throughput::Elements(1));
    group.bench_function("get hit", |b| {
        b.iter(|| run(&store, &mut session, b"get key:42\r\n", &mut out));
    });
    group.bench_function("mg hit v", |b| {
        b.iter(|| run(&store, &mut session, b"mg key:42 v f\r\n", &mut out));
    });
    let set = format!("set key:7 0 0 100\r\n{}\r\n", "x".repeat(100));
    group.bench_function("set 100 B", |b| {
        b.iter(|| run(&store, &mut session, set.as_bytes(), &mut out));
    });
    let sets: Vec<String> = (0..1000)
        .map(|i| format!("set new:{i} 0 0 100\r\n{}\r\n", "x".repeat(100)))
        .collect();
    group.bench_function("set 100 B, new keys", |b| {
        let mut i = 0;
        b.iter_batched(
            || {
                i = (i + 1) % sets.len();
                sets[i].as_bytes()
            },
            |input| run(&store, &mut session, input, &mut out),
            BatchSize::SmallInput,
        );
    });
    let multiget = {
        let mut line = String::from("get");
        for i in 0..100 {
            line.push_str(&format!(" key:{i}"));
        }
        line.push_str("\r\n");
        line
    };
    group.throughput(Throughput::Elements(100));
    group.bench_function("get 100 keys", |b| {
        b.iter(|| run(&store, &mut session, multiget.as_bytes(), &mut out));
    });
    group.finish();

    // The same requests over the binary protocol, on a binary session.
    let mut binary = Session::new();
    let encode = |request: Request<'_>| {
        let mut wire = Vec::new();
        request.write_to(&mut wire);
        wire
    };
    let get = encode(Request {
        key: b"key:42",
        ..Request::bare(Opcode::Get)
    });
    let value = vec![b'x'; 100];
    let set = encode(Request {
        key: b"key:7",
        extras: Extras::Store {
            flags: 0,
            exptime: 0,
        },
        value: Value::Data(&value),
        ..Request::bare(Opcode::Set)
    });
    let mut group = c.benchmark_group("memcached binary");
    group.throughput(Throughput::Elements(1));
    group.bench_function("GET hit", |b| {
        b.iter(|| run(&store, &mut binary, &get, &mut out));
    });
    group.bench_function("SET 100 B", |b| {
        b.iter(|| run(&store, &mut binary, &set, &mut out));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
