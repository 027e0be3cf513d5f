//! Arbitrary bytes never panic the parser, which never claims more bytes than
//! it was given, and never returns a key outside the limits.
#![no_main]

use larder::memcached::{parse, parse_streaming, Limits, Request, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_item_size: 1024,
        ..Limits::default()
    };
    // `parse` never streams a long get line; `parse_streaming` is checked below.
    if let Ok(Status::Complete(request, _)) = parse(data, &limits) {
        assert!(!matches!(request, Request::LongGet { .. }));
    }
    match parse_streaming(data, &limits) {
        Ok(Status::Complete(request, consumed)) => {
            assert!(consumed > 0 && consumed <= data.len());
            let key_ok = |key: &[u8]| !key.is_empty() && key.len() <= limits.max_key_len;
            match &request {
                Request::Get { keys, .. } | Request::LongGet { keys, .. } => {
                    assert!(keys.iter().all(key_ok));
                }
                Request::Store { key, data: value, .. } => {
                    assert!(key_ok(key));
                    assert!(value.len() <= limits.max_item_size);
                }
                Request::Delete { key, .. }
                | Request::Arithmetic { key, .. }
                | Request::Touch { key, .. } => assert!(key_ok(key)),
                Request::MetaSet { key, data: value, .. } => {
                    assert!(key.len() <= limits.max_key_len);
                    assert!(value.len() <= limits.max_item_size);
                }
                Request::MetaGet { key, .. }
                | Request::MetaDelete { key, .. }
                | Request::MetaArithmetic { key, .. }
                | Request::MetaDebug { key, .. } => assert!(key.len() <= limits.max_key_len),
                Request::TooLarge(too_large) => assert!(too_large.swallow() > limits.max_item_size),
                _ => {}
            }
        }
        Ok(Status::Partial) => {}
        Err(error) => assert!(error.is_fatal() || error.discard() > 0),
    }
});
