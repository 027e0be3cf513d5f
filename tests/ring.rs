//! `larder::ring` routes as twemproxy (ketama, fnv1a_64) does. The routes pinned
//! here were computed by `tests/cluster/ketama.py`, an independent Python
//! implementation that the cluster test checks against nutcracker itself.

use larder::ring::{fnv1a_64, Ring, RingBuilder, RingError};

fn twemproxy_example_pool() -> Ring {
    Ring::builder()
        .server("127.0.0.1:22121", 1)
        .server("127.0.0.1:22122", 1)
        .server("127.0.0.1:22123", 1)
        .build()
        .unwrap()
}

const KEYS: [&[u8]; 9] = [
    b"user:1",
    b"user:2",
    b"user:3",
    b"session:abc",
    "café".as_bytes(),
    b"a",
    b"foo",
    b"bar",
    &[b'x'; 250],
];

#[test]
fn keys_route_to_the_nodes_the_python_reference_computes() {
    let ring = twemproxy_example_pool();
    let routes: Vec<usize> = KEYS.iter().map(|k| ring.node_for(k)).collect();
    assert_eq!(routes, [0, 0, 0, 0, 1, 1, 0, 2, 2]);
}

#[test]
fn keys_of_an_ejected_node_route_as_the_python_reference_computes() {
    let ring = twemproxy_example_pool().without(1).unwrap();
    let routes: Vec<usize> = KEYS.iter().map(|k| ring.node_for(k)).collect();
    assert_eq!(routes, [0, 0, 0, 0, 0, 0, 0, 2, 2]);
}

#[test]
fn similar_keys_hash_close_together_under_fnv1a() {
    // Why the spread depends on the key set: FNV-1a barely separates keys
    // that differ in their last byte.
    assert_eq!(fnv1a_64(b"user:1"), 0x7508_1ceb);
    assert_eq!(fnv1a_64(b"user:2"), 0x7508_1e9e);
    assert_eq!(fnv1a_64(b"user:3"), 0x7508_2051);
    assert_eq!(fnv1a_64("café".as_bytes()), 0xcef6_bb89);
}

#[test]
fn public_types_are_send_sync_and_errors_are_std_errors() {
    fn check<T: Send + Sync + 'static>() {}
    fn error<E: std::error::Error + Send + Sync + 'static>() {}
    check::<Ring>();
    check::<RingBuilder>();
    error::<RingError>();
}
