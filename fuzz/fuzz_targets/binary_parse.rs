//! The binary parser on arbitrary bytes (made to start with the request
//! magic): never panics, never claims more bytes than it was given, never
//! returns a key or value past the limits, writes back exactly the bytes it
//! parsed (bar the ignored data type and vbucket fields), and refuses only
//! with memcached's statuses. The same bytes then run through a small store
//! as a binary connection, whose invariants must hold.
#![no_main]

use larder::memcached::binary::{self, StatusCode, Value};
use larder::memcached::{Limits, Outcome, Session, Status, Store, StoreConfig};
use larder::Clock;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = data.to_vec();
    if let Some(first) = input.first_mut() {
        *first = binary::REQUEST_MAGIC;
    }
    let limits = Limits {
        max_item_size: 256,
        ..Limits::default()
    };
    match binary::parse(&input, &limits) {
        Ok(Status::Complete(request, used)) => {
            assert!(used >= binary::HEADER_LEN && used <= input.len());
            assert!(request.key.len() <= limits.max_key_len);
            match request.value {
                Value::Data(value) => assert!(value.len() <= limits.max_item_size),
                Value::TooLarge(len) => assert!(len > limits.max_item_size),
            }
            let mut wire = Vec::new();
            request.write_to(&mut wire);
            let mut parsed = input[..used].to_vec();
            parsed[5..8].fill(0);
            assert_eq!(wire, parsed);
        }
        Ok(Status::Partial) => {}
        Err(error) => {
            let status = error.status();
            assert!(status == StatusCode::UNKNOWN_COMMAND || status == StatusCode::INVALID_ARGUMENTS);
            assert!(error.is_fatal() || error.discard() >= binary::HEADER_LEN);
        }
    }

    let (clock, _hand) = Clock::manual();
    let store = Store::new(StoreConfig {
        memory_limit: 4096,
        max_item_size: 256,
        clock,
        unix_time: Some(1_700_000_000),
        ..StoreConfig::default()
    })
    .expect("valid config");
    let mut session = Session::new().with_output_limit(1 << 16);
    let mut rest = &input[..];
    let mut out = Vec::new();
    loop {
        out.clear();
        let progress = store.process(&mut session, rest, &mut out);
        assert!(progress.consumed <= rest.len());
        rest = &rest[progress.consumed..];
        store.validate();
        if progress.outcome != Outcome::Continue || progress.consumed == 0 || rest.is_empty() {
            break;
        }
    }
});
