//! Whatever parses, composed back into bytes, parses to the same request
//! using exactly those bytes.
#![no_main]

use larder::memcached::{parse, Limits, Request, Status};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let Ok(Status::Complete(request, _)) = parse(data, &limits) else {
        return;
    };
    let mut composed = Vec::new();
    request.write_to(&mut composed);
    match parse(&composed, &limits) {
        Ok(Status::Complete(again, consumed)) => {
            assert_eq!(again, request, "{:?}", String::from_utf8_lossy(&composed));
            if !matches!(request, Request::TooLarge(_)) {
                assert_eq!(consumed, composed.len());
            }
        }
        other => panic!("{other:?} for {:?}", String::from_utf8_lossy(&composed)),
    }
});
