//! The memcached codec, specified by example: every case is one behaviour of
//! memcached's `doc/protocol.txt` (or of memcached's own parser where the
//! document is silent), as input bytes and the exact parse or reply.
#![cfg(feature = "memcached")]

use std::borrow::Cow;

use larder::memcached::{
    parse, parse_get_rest, parse_streaming, ErrorKind, Limits, MetaFlag, MetaFlags, MetaReturn,
    MetaStatus, ParseError, Request, Response, SetMode, Status, StoreCommand, Tokens, TooLarge,
};
use larder::memcached::{ArithmeticMode, ArithmeticOp};
use quickcheck::{Arbitrary, Gen, QuickCheck, TestResult};

fn limits() -> Limits {
    Limits::default()
}

fn complete(input: &[u8]) -> (Request<'_>, usize) {
    match parse(input, &limits()) {
        Ok(Status::Complete(request, consumed)) => (request, consumed),
        other => panic!(
            "{:?}: expected a complete request, got {other:?}",
            show(input)
        ),
    }
}

fn request(input: &[u8]) -> Request<'_> {
    let (request, consumed) = complete(input);
    assert_eq!(consumed, input.len(), "{:?}", show(input));
    request
}

fn error(input: &[u8]) -> ParseError {
    match parse(input, &limits()) {
        Err(e) => e,
        other => panic!("{:?}: expected an error, got {other:?}", show(input)),
    }
}

fn show(input: &[u8]) -> String {
    String::from_utf8_lossy(&input[..input.len().min(80)]).into_owned()
}

fn set(key: &[u8], data: &'static [u8]) -> Request<'static> {
    let key: &'static [u8] = Box::leak(key.to_vec().into_boxed_slice());
    Request::Store {
        command: StoreCommand::Set,
        key,
        flags: 0,
        exptime: 0,
        data,
        noreply: false,
    }
}

fn flags(list: &[MetaFlag<'static>]) -> MetaFlags<'static> {
    list.iter().fold(MetaFlags::new(), |f, &flag| f.with(flag))
}

fn key(k: &'static [u8]) -> Cow<'static, [u8]> {
    Cow::Borrowed(k)
}

fn written(response: Response<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    response.write_to(&mut out);
    out
}

// ---------------------------------------------------------------- text: storage

#[test]
fn storage_commands_parse_with_their_data_block() {
    let cases: Vec<(&[u8], Request<'static>)> = vec![
        (
            b"set k 1 2 3\r\nabc\r\n",
            Request::Store {
                command: StoreCommand::Set,
                key: b"k",
                flags: 1,
                exptime: 2,
                data: b"abc",
                noreply: false,
            },
        ),
        (
            b"add k 0 0 1\r\nx\r\n",
            Request::Store {
                command: StoreCommand::Add,
                key: b"k",
                flags: 0,
                exptime: 0,
                data: b"x",
                noreply: false,
            },
        ),
        (
            b"replace k 0 0 1\r\nx\r\n",
            Request::Store {
                command: StoreCommand::Replace,
                key: b"k",
                flags: 0,
                exptime: 0,
                data: b"x",
                noreply: false,
            },
        ),
        (
            b"append k 0 0 1\r\nx\r\n",
            Request::Store {
                command: StoreCommand::Append,
                key: b"k",
                flags: 0,
                exptime: 0,
                data: b"x",
                noreply: false,
            },
        ),
        (
            b"prepend k 0 0 1\r\nx\r\n",
            Request::Store {
                command: StoreCommand::Prepend,
                key: b"k",
                flags: 0,
                exptime: 0,
                data: b"x",
                noreply: false,
            },
        ),
        (
            b"cas k 0 0 1 99\r\nx\r\n",
            Request::Store {
                command: StoreCommand::Cas { unique: 99 },
                key: b"k",
                flags: 0,
                exptime: 0,
                data: b"x",
                noreply: false,
            },
        ),
        (
            b"cas k 0 0 1 18446744073709551615 noreply\r\nx\r\n",
            Request::Store {
                command: StoreCommand::Cas { unique: u64::MAX },
                key: b"k",
                flags: 0,
                exptime: 0,
                data: b"x",
                noreply: true,
            },
        ),
        (
            b"set k 4294967295 0 0\r\n\r\n",
            Request::Store {
                command: StoreCommand::Set,
                key: b"k",
                flags: u32::MAX,
                exptime: 0,
                data: b"",
                noreply: false,
            },
        ),
        (
            b"set k 0 -1 1\r\nx\r\n",
            Request::Store {
                command: StoreCommand::Set,
                key: b"k",
                flags: 0,
                exptime: -1,
                data: b"x",
                noreply: false,
            },
        ),
        (
            b"set k 0 2592000 1\r\nx\r\n",
            Request::Store {
                command: StoreCommand::Set,
                key: b"k",
                flags: 0,
                exptime: 2_592_000,
                data: b"x",
                noreply: false,
            },
        ),
        (
            b"set k 0 0 1 noreply\r\nx\r\n",
            Request::Store {
                command: StoreCommand::Set,
                key: b"k",
                flags: 0,
                exptime: 0,
                data: b"x",
                noreply: true,
            },
        ),
        (
            b"set k 0 0 4\r\n\r\n\r\n\r\n",
            Request::Store {
                command: StoreCommand::Set,
                key: b"k",
                flags: 0,
                exptime: 0,
                data: b"\r\n\r\n",
                noreply: false,
            },
        ),
        (
            b"set k 0 0 3\r\n\x00\xff\n\r\n",
            Request::Store {
                command: StoreCommand::Set,
                key: b"k",
                flags: 0,
                exptime: 0,
                data: b"\x00\xff\n",
                noreply: false,
            },
        ),
        (
            b"  set   k  0 0 1  \r\nx\r\n",
            Request::Store {
                command: StoreCommand::Set,
                key: b"k",
                flags: 0,
                exptime: 0,
                data: b"x",
                noreply: false,
            },
        ),
        (
            b"set k 0 0 1\nx\r\n",
            Request::Store {
                command: StoreCommand::Set,
                key: b"k",
                flags: 0,
                exptime: 0,
                data: b"x",
                noreply: false,
            },
        ),
        (
            b"set \xc3\xa9t\xc3\xa9 0 0 1\r\nx\r\n",
            Request::Store {
                command: StoreCommand::Set,
                key: "été".as_bytes(),
                flags: 0,
                exptime: 0,
                data: b"x",
                noreply: false,
            },
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(request(input), expected, "{}", show(input));
    }
}

#[test]
fn an_unknown_sixth_storage_token_is_ignored_like_memcached() {
    assert_eq!(request(b"set k 0 0 1 please\r\nx\r\n"), set(b"k", b"x"));
}

#[test]
fn key_of_250_bytes_is_accepted_and_251_is_rejected() {
    let k250 = vec![b'a'; 250];
    let line = [b"set ".as_slice(), &k250, b" 0 0 1\r\nx\r\n"].concat();
    assert_eq!(request(&line), set(&k250, b"x"));
    let k251 = vec![b'a'; 251];
    let line = [b"set ".as_slice(), &k251, b" 0 0 1\r\nx\r\n"].concat();
    let e = error(&line);
    assert_eq!(e.kind(), ErrorKind::BadFormat);
    assert_eq!(e.discard(), line.len() - 3, "only the line is discarded");
    for cmd in [
        &b"get "[..],
        b"touch ",
        b"delete ",
        b"incr ",
        b"mg ",
        b"md ",
        b"ma ",
    ] {
        let ok = [
            cmd,
            &k250,
            if cmd == b"touch " || cmd == b"incr " {
                b" 1\r\n"
            } else {
                b"\r\n"
            },
        ]
        .concat();
        assert!(parse(&ok, &limits()).is_ok(), "{}", show(&ok));
        let bad = [
            cmd,
            &k251,
            if cmd == b"touch " || cmd == b"incr " {
                b" 1\r\n"
            } else {
                b"\r\n"
            },
        ]
        .concat();
        assert_eq!(error(&bad).kind(), ErrorKind::BadFormat, "{}", show(&bad));
    }
}

#[test]
fn a_configured_key_limit_applies() {
    let small = Limits {
        max_key_len: 3,
        ..Limits::default()
    };
    assert!(parse(b"get abc\r\n", &small).is_ok());
    assert_eq!(
        parse(b"get abcd\r\n", &small).unwrap_err().kind(),
        ErrorKind::BadFormat
    );
}

#[test]
fn storage_data_must_end_in_crlf_or_it_is_a_bad_data_chunk() {
    // Data longer than declared: memcached reads exactly <bytes>+2 and checks.
    let e = error(b"set k 0 0 1\r\nxyz\r\n");
    assert_eq!(e.kind(), ErrorKind::BadDataChunk);
    assert_eq!(e.discard(), 16);
    assert!(!e.is_fatal());
    assert!(!e.noreply());
    // Missing \r before \n.
    assert_eq!(
        error(b"set k 0 0 1\r\nx\nA").kind(),
        ErrorKind::BadDataChunk
    );
    // noreply silences it, as memcached's out_string does.
    assert!(error(b"set k 0 0 1 noreply\r\nxyz\r\n").noreply());
}

#[test]
fn a_declared_size_over_the_item_limit_is_too_large_and_swallows_the_block() {
    let input = b"set big 3 0 1048577\r\n";
    let (req, consumed) = complete(input);
    assert_eq!(
        consumed,
        input.len(),
        "the data has not arrived and is not needed"
    );
    let Request::TooLarge(too_large) = req else {
        panic!("{req:?}")
    };
    assert_eq!(too_large.key(), b"big");
    assert_eq!(too_large.swallow(), 1_048_579);
    assert!(!too_large.noreply());
    assert!(
        too_large.removes_old_value(),
        "a failed set drops the old value"
    );
    assert_eq!(
        too_large,
        TooLarge::Text {
            command: StoreCommand::Set,
            key: b"big",
            flags: 3,
            exptime: 0,
            size: 1_048_577,
            noreply: false
        }
    );
    let Request::TooLarge(add) = request(b"add big 0 0 2000000 noreply\r\n") else {
        panic!()
    };
    assert!(add.noreply());
    assert!(!add.removes_old_value());
    assert_eq!(
        written(Response::Error(ErrorKind::TooLarge)),
        b"SERVER_ERROR object too large for cache\r\n"
    );
}

#[test]
fn exactly_the_item_limit_is_not_too_large() {
    let small = Limits {
        max_item_size: 4,
        ..Limits::default()
    };
    assert!(matches!(
        parse(b"set k 0 0 4\r\nabcd\r\n", &small),
        Ok(Status::Complete(Request::Store { .. }, 19))
    ));
    assert!(matches!(
        parse(b"set k 0 0 5\r\n", &small),
        Ok(Status::Complete(Request::TooLarge(_), 13))
    ));
}

#[test]
fn a_split_storage_request_is_partial_until_its_last_byte() {
    let input = b"set k 0 0 5\r\nhello\r\n";
    for end in 0..input.len() {
        assert_eq!(
            parse(&input[..end], &limits()),
            Ok(Status::Partial),
            "prefix {end}"
        );
    }
    assert_eq!(complete(input).1, input.len());
}

// ---------------------------------------------------------------- text: retrieval

#[test]
fn retrieval_commands_borrow_their_keys() {
    let Request::Get { cas, touch, keys } = request(b"get a bb ccc\r\n") else {
        panic!()
    };
    assert!(!cas);
    assert_eq!(touch, None);
    assert_eq!(keys.iter().collect::<Vec<_>>(), [&b"a"[..], b"bb", b"ccc"]);
    assert_eq!(
        request(b"gets a\r\n"),
        Request::Get {
            cas: true,
            touch: None,
            keys: Tokens::new(b"a")
        }
    );
    assert_eq!(
        request(b"gat 10 a b\r\n"),
        Request::Get {
            cas: false,
            touch: Some(10),
            keys: Tokens::new(b"a b")
        }
    );
    assert_eq!(
        request(b"gats -1 a\r\n"),
        Request::Get {
            cas: true,
            touch: Some(-1),
            keys: Tokens::new(b"a")
        }
    );
    assert_eq!(
        request(b"get   a    b  \r\n"),
        Request::Get {
            cas: false,
            touch: None,
            keys: Tokens::new(b"a b")
        }
    );
    assert_eq!(
        request(b"get a\n"),
        Request::Get {
            cas: false,
            touch: None,
            keys: Tokens::new(b"a")
        }
    );
}

#[test]
fn gat_with_no_keys_is_valid_and_answers_end() {
    assert_eq!(
        request(b"gat 10\r\n"),
        Request::Get {
            cas: false,
            touch: Some(10),
            keys: Tokens::new(b"")
        }
    );
}

#[test]
fn get_with_any_number_of_keys_on_one_buffered_line_is_one_request() {
    let mut line = b"get".to_vec();
    for _ in 0..20_000 {
        line.extend_from_slice(b" k");
    }
    line.extend_from_slice(b"\r\n");
    let Request::Get { keys, .. } = request(&line) else {
        panic!()
    };
    assert_eq!(keys.len(), 20_000);
}

#[test]
fn a_get_line_longer_than_its_cap_is_parsed_in_pieces_as_its_keys_arrive() {
    let limit = limits().max_get_line_len;
    let mut line = b"gets".to_vec();
    while line.len() <= limit + 100 {
        line.extend_from_slice(b" key");
    }
    // `parse` keeps its contract: a line over its cap is too long.
    assert_eq!(
        parse(&line, &limits()).unwrap_err().kind(),
        ErrorKind::LineTooLong
    );
    let Ok(Status::Complete(Request::LongGet { cas, touch, keys }, used)) =
        parse_streaming(&line, &limits())
    else {
        panic!("not a long get")
    };
    assert!((cas, touch) == (true, None));
    assert!(used <= limit && line[..used].ends_with(b" "));
    let head_keys = keys.len();
    assert_eq!(head_keys, (used - 5) / 4);
    // The rest gives the remaining keys and then the end.
    line.extend_from_slice(b"\r\nmn\r\n");
    let rest = &line[used..];
    let Ok(Status::Complete(more, n)) = parse_get_rest(rest, &limits()) else {
        panic!()
    };
    assert!(more.last);
    assert_eq!(&rest[n..], b"mn\r\n");
    assert_eq!(head_keys + more.keys.len(), (line.len() - 10) / 4);
    assert_eq!(parse_get_rest(b"ke", &limits()), Ok(Status::Partial));
}

/// memcached refuses no control byte in a key but NUL (which ends its
/// command line early): keys with tabs, `\r`, DEL or memcaslap's `0x10`
/// prefix parse as keys, in storage commands, gets and meta commands.
#[test]
fn keys_with_control_bytes_parse_as_memcached_parses_them() {
    for key in [
        b"a\x01b".as_slice(),
        b"a\tb",
        b"a\rb",
        b"a\x7fb",
        b"\x10\x10\x10\x10\x10\x10\x10\x10fKY1MGtvFH",
    ] {
        let set = [b"set ".as_slice(), key, b" 0 0 1\r\nx\r\n"].concat();
        assert_eq!(complete(&set).0, self::set(key, b"x"), "{key:?}");
        let get = [b"get ".as_slice(), key, b"\r\n"].concat();
        let Request::Get { keys, .. } = request(&get) else {
            panic!("{key:?}")
        };
        assert_eq!(keys.iter().collect::<Vec<_>>(), [key], "{key:?}");
        let mg = [b"mg ".as_slice(), key, b" v\r\n"].concat();
        assert!(matches!(request(&mg), Request::MetaGet { .. }), "{key:?}");
        // In the rest of a long get line, whole or still arriving.
        let rest = [b"a ".as_slice(), key, b" b"].concat();
        let Ok(Status::Complete(piece, used)) = parse_get_rest(&rest, &limits()) else {
            panic!("{key:?}")
        };
        assert_eq!(piece.keys.iter().collect::<Vec<_>>(), [&b"a"[..], key]);
        assert_eq!(used, rest.len() - 1);
        let arriving = [b"a ".as_slice(), key].concat();
        assert!(parse_get_rest(&arriving, &limits()).is_ok(), "{key:?}");
    }
}

#[test]
fn a_bad_key_in_a_long_get_line_refuses_the_rest_of_the_line() {
    let limits = limits();
    let too_long = vec![b'k'; 251];
    let e = parse_get_rest(&[b"a b ".as_slice(), &too_long].concat(), &limits).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadFormat);
    assert!(e.rest_of_line(), "the line's end has not arrived");
    let e = parse_get_rest(b"a \x00 b\r\nmn\r\n", &limits).unwrap_err();
    assert_eq!(
        (e.kind(), e.discard(), e.rest_of_line()),
        (ErrorKind::BadFormat, 7, false)
    );
    let head = [b"get ".as_slice(), &vec![b'k'; limits.max_get_line_len]].concat();
    let e = parse_streaming(&head, &limits).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BadFormat);
    assert!(e.rest_of_line() && !e.is_fatal());
}

// ---------------------------------------------------------------- text: others

#[test]
fn one_line_commands_parse_to_their_requests() {
    let cases: Vec<(&[u8], Request<'static>)> = vec![
        (
            b"delete k\r\n",
            Request::Delete {
                key: b"k",
                noreply: false,
            },
        ),
        (
            b"delete k noreply\r\n",
            Request::Delete {
                key: b"k",
                noreply: true,
            },
        ),
        (
            b"delete k 0\r\n",
            Request::Delete {
                key: b"k",
                noreply: false,
            },
        ),
        (
            b"delete k 0 noreply\r\n",
            Request::Delete {
                key: b"k",
                noreply: true,
            },
        ),
        (
            b"incr k 1\r\n",
            Request::Arithmetic {
                op: ArithmeticOp::Incr,
                key: b"k",
                delta: 1,
                noreply: false,
            },
        ),
        (
            b"decr k 18446744073709551615 noreply\r\n",
            Request::Arithmetic {
                op: ArithmeticOp::Decr,
                key: b"k",
                delta: u64::MAX,
                noreply: true,
            },
        ),
        (
            b"touch k 100\r\n",
            Request::Touch {
                key: b"k",
                exptime: 100,
                noreply: false,
            },
        ),
        (
            b"touch k -1 noreply\r\n",
            Request::Touch {
                key: b"k",
                exptime: -1,
                noreply: true,
            },
        ),
        (
            b"flush_all\r\n",
            Request::FlushAll {
                delay: None,
                noreply: false,
            },
        ),
        (
            b"flush_all 0\r\n",
            Request::FlushAll {
                delay: Some(0),
                noreply: false,
            },
        ),
        (
            b"flush_all 30 noreply\r\n",
            Request::FlushAll {
                delay: Some(30),
                noreply: true,
            },
        ),
        (
            b"flush_all noreply\r\n",
            Request::FlushAll {
                delay: None,
                noreply: true,
            },
        ),
        (b"version\r\n", Request::Version),
        (
            b"verbosity 1\r\n",
            Request::Verbosity {
                level: 1,
                noreply: false,
            },
        ),
        (
            b"verbosity 2 noreply\r\n",
            Request::Verbosity {
                level: 2,
                noreply: true,
            },
        ),
        (
            b"stats\r\n",
            Request::Stats {
                args: Tokens::new(b""),
            },
        ),
        (
            b"stats settings\r\n",
            Request::Stats {
                args: Tokens::new(b"settings"),
            },
        ),
        (
            b"stats items\r\n",
            Request::Stats {
                args: Tokens::new(b"items"),
            },
        ),
        (
            b"stats slabs\r\n",
            Request::Stats {
                args: Tokens::new(b"slabs"),
            },
        ),
        (
            b"stats conns\r\n",
            Request::Stats {
                args: Tokens::new(b"conns"),
            },
        ),
        (
            b"stats reset\r\n",
            Request::Stats {
                args: Tokens::new(b"reset"),
            },
        ),
        (
            b"stats detail dump\r\n",
            Request::Stats {
                args: Tokens::new(b"detail dump"),
            },
        ),
        (
            b"stats cachedump 1 10\r\n",
            Request::Stats {
                args: Tokens::new(b"cachedump 1 10"),
            },
        ),
        (b"quit\r\n", Request::Quit),
        (b"shutdown\r\n", Request::Shutdown { graceful: false }),
        (
            b"shutdown graceful\r\n",
            Request::Shutdown { graceful: true },
        ),
        (
            b"cache_memlimit 64\r\n",
            Request::CacheMemlimit {
                megabytes: 64,
                noreply: false,
            },
        ),
        (
            b"cache_memlimit 64 noreply\r\n",
            Request::CacheMemlimit {
                megabytes: 64,
                noreply: true,
            },
        ),
        (b"mn\r\n", Request::MetaNoop),
        (b"mn extra\r\n", Request::MetaNoop),
    ];
    for (input, expected) in cases {
        assert_eq!(request(input), expected, "{}", show(input));
    }
    let Request::Stats { args } = request(b"stats detail on\r\n") else {
        panic!()
    };
    assert_eq!(args.first(), Some(&b"detail"[..]));
}

#[test]
fn malformed_lines_map_to_memcacheds_exact_errors() {
    let k251 = [b"get ".as_slice(), &[b'x'; 251], b"\r\n"].concat();
    let cases: Vec<(&[u8], ErrorKind)> = vec![
        (b"bogus\r\n", ErrorKind::UnknownCommand),
        (b"misbehave\r\n", ErrorKind::UnknownCommand),
        (b"GET a\r\n", ErrorKind::UnknownCommand),
        (b"\r\n", ErrorKind::UnknownCommand),
        (b"\n", ErrorKind::UnknownCommand),
        (b"     \r\n", ErrorKind::UnknownCommand),
        (b"g\r\n", ErrorKind::UnknownCommand),
        (b"get\r\n", ErrorKind::UnknownCommand),
        (b"gets   \r\n", ErrorKind::UnknownCommand),
        (b"gat\r\n", ErrorKind::UnknownCommand),
        (b"gat soon k\r\n", ErrorKind::InvalidExptime),
        (b"set k 0 0\r\n", ErrorKind::UnknownCommand),
        (b"set k 0 0 1 noreply extra\r\n", ErrorKind::UnknownCommand),
        (b"set k abc 0 1\r\n", ErrorKind::BadFormat),
        (b"set k 0 abc 1\r\n", ErrorKind::BadFormat),
        (b"set k 0 0 abc\r\n", ErrorKind::BadFormat),
        (b"set k -1 0 1\r\n", ErrorKind::BadFormat),
        (b"set k 4294967296 0 1\r\n", ErrorKind::BadFormat),
        (b"set k 0 0 -1\r\n", ErrorKind::BadFormat),
        (b"set k 0 0 4294967295\r\n", ErrorKind::BadFormat),
        (b"set k 0 0 2147483646\r\n", ErrorKind::BadFormat),
        (
            b"set k 0 0 99999999999999999999999\r\n",
            ErrorKind::BadFormat,
        ),
        (b"set k 0 1.5 1\r\n", ErrorKind::BadFormat),
        (b"set k +1 0 1\r\n", ErrorKind::BadFormat),
        (b"set a\x00b 0 0 1\r\n", ErrorKind::BadFormat),
        (b"cas k 0 0 1\r\n", ErrorKind::UnknownCommand),
        (b"cas k 0 0 1 abc\r\n", ErrorKind::BadFormat),
        (b"cas k 0 0 1 -5\r\n", ErrorKind::BadFormat),
        (b"incr k\r\n", ErrorKind::UnknownCommand),
        (b"incr k abc\r\n", ErrorKind::InvalidDelta),
        (b"incr k -1\r\n", ErrorKind::InvalidDelta),
        (b"decr k 18446744073709551616\r\n", ErrorKind::InvalidDelta),
        (b"incr k 1 noreply extra\r\n", ErrorKind::UnknownCommand),
        (b"incr a\x00 1\r\n", ErrorKind::BadFormat),
        (b"touch k\r\n", ErrorKind::UnknownCommand),
        (b"touch k later\r\n", ErrorKind::InvalidExptime),
        (b"delete\r\n", ErrorKind::UnknownCommand),
        (b"delete k 5\r\n", ErrorKind::DeleteUsage),
        (b"delete k 0 0\r\n", ErrorKind::DeleteUsage),
        (b"delete k 0 noreply extra\r\n", ErrorKind::UnknownCommand),
        (b"verbosity\r\n", ErrorKind::UnknownCommand),
        (b"verbosity loud\r\n", ErrorKind::BadFormat),
        (b"cache_memlimit\r\n", ErrorKind::UnknownCommand),
        (b"cache_memlimit lots\r\n", ErrorKind::UnknownCommand),
        (b"flush_all soon\r\n", ErrorKind::InvalidExptime),
        (b"flush_all 1 2 3\r\n", ErrorKind::UnknownCommand),
        (b"shutdown now\r\n", ErrorKind::InvalidShutdownMode),
        (b"shutdown graceful now\r\n", ErrorKind::InvalidShutdownMode),
        (b"get a\x00b\r\n", ErrorKind::BadFormat),
        (b"get a b\x00c\r\n", ErrorKind::BadFormat),
        (&k251, ErrorKind::BadFormat),
    ];
    for (input, kind) in cases {
        let e = error(input);
        assert_eq!(e.kind(), kind, "{}", show(input));
        assert_eq!(
            e.discard(),
            input.len(),
            "{}: the line, and only it, is discarded",
            show(input)
        );
        assert!(!e.is_fatal(), "{}", show(input));
    }
}

#[test]
fn error_lines_are_memcacheds_exact_text() {
    let cases = [
        (ErrorKind::UnknownCommand, "ERROR"),
        (ErrorKind::BadFormat, "CLIENT_ERROR bad command line format"),
        (ErrorKind::BadDataChunk, "CLIENT_ERROR bad data chunk"),
        (ErrorKind::LineTooLong, "CLIENT_ERROR line too long"),
        (
            ErrorKind::TooLarge,
            "SERVER_ERROR object too large for cache",
        ),
        (
            ErrorKind::InvalidExptime,
            "CLIENT_ERROR invalid exptime argument",
        ),
        (
            ErrorKind::InvalidDelta,
            "CLIENT_ERROR invalid numeric delta argument",
        ),
        (
            ErrorKind::DeleteUsage,
            "CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]",
        ),
        (
            ErrorKind::InvalidShutdownMode,
            "CLIENT_ERROR invalid shutdown mode",
        ),
        (
            ErrorKind::BadMetaToken,
            "CLIENT_ERROR bad token in command line format",
        ),
        (ErrorKind::DuplicateFlag, "CLIENT_ERROR duplicate flag"),
        (ErrorKind::InvalidFlag, "CLIENT_ERROR invalid flag"),
        (
            ErrorKind::InvalidOrDuplicateFlag,
            "CLIENT_ERROR invalid or duplicate flag",
        ),
        (ErrorKind::KeyDecode, "CLIENT_ERROR error decoding key"),
        (
            ErrorKind::ModeTokenLength,
            "CLIENT_ERROR incorrect length for M token",
        ),
        (
            ErrorKind::InvalidSetMode,
            "CLIENT_ERROR invalid mode for ms M token",
        ),
        (
            ErrorKind::InvalidArithmeticMode,
            "CLIENT_ERROR invalid mode for ma M token",
        ),
        (
            ErrorKind::InvalidInitial,
            "CLIENT_ERROR invalid numeric initial value",
        ),
        (
            ErrorKind::InvalidDeltaToken,
            "CLIENT_ERROR invalid numeric delta value",
        ),
        (
            ErrorKind::OpaqueTooLong,
            "CLIENT_ERROR opaque token too long",
        ),
    ];
    for (kind, text) in cases {
        assert_eq!(kind.to_string(), text);
        assert_eq!(
            written(Response::Error(kind)),
            format!("{text}\r\n").into_bytes()
        );
    }
}

#[test]
fn noreply_on_a_malformed_line_silences_the_error_as_memcached_does() {
    assert!(error(b"set k 0 0 abc noreply\r\n").noreply());
    assert!(error(b"set k 0 0 noreply\r\n").noreply());
    assert!(error(b"delete k 1 noreply\r\n").noreply());
    assert!(error(b"incr k x noreply\r\n").noreply());
    assert!(error(b"touch k x noreply\r\n").noreply());
    assert!(error(b"verbosity noreply\r\n").noreply());
    // A wrong token count is caught before memcached looks for noreply.
    assert!(!error(b"set k 0 noreply\r\n").noreply());
    assert!(
        !error(b"mg k z q\r\n").noreply(),
        "meta errors are always sent"
    );
}

#[test]
fn a_rejected_text_storage_line_leaves_its_data_to_be_parsed_as_a_command() {
    let input = b"set k 0 0 abc\r\nhello\r\n";
    let e = error(input);
    assert_eq!(e.discard(), 15);
    assert_eq!(error(&input[15..]).kind(), ErrorKind::UnknownCommand);
}

// ---------------------------------------------------------------- framing and limits

#[test]
fn bare_newline_ends_a_command_line_like_memcached() {
    assert_eq!(complete(b"version\nquit\n"), (Request::Version, 8));
}

#[test]
fn pipelined_requests_parse_one_at_a_time() {
    let input = b"set a 0 0 1\r\n1\r\nget a\r\nmn\r\n";
    let (first, n1) = complete(input);
    assert_eq!(first, set(b"a", b"1"));
    let (second, n2) = complete(&input[n1..]);
    assert!(matches!(second, Request::Get { .. }));
    let (third, n3) = complete(&input[n1 + n2..]);
    assert_eq!(third, Request::MetaNoop);
    assert_eq!(n1 + n2 + n3, input.len());
}

#[test]
fn incomplete_input_is_partial() {
    let cases: [&[u8]; 9] = [
        b"",
        b"g",
        b"get a",
        b"get a\r",
        b"set k 0 0 5\r\n",
        b"set k 0 0 5\r\nhel",
        b"set k 0 0 5\r\nhello\r",
        b"ms k 2 T1\r\nhi",
        b"mg k v",
    ];
    for input in cases {
        assert_eq!(
            parse(input, &limits()),
            Ok(Status::Partial),
            "{}",
            show(input)
        );
    }
}

#[test]
fn a_line_at_the_limit_waits_and_one_byte_over_is_fatal() {
    let limit = limits().max_line_len;
    let at = vec![b'x'; limit];
    assert_eq!(parse(&at, &limits()), Ok(Status::Partial));
    let at_cr = [at.as_slice(), b"\r"].concat();
    assert_eq!(
        parse(&at_cr, &limits()),
        Ok(Status::Partial),
        "the \\r may precede \\n"
    );
    let over = vec![b'x'; limit + 1];
    let e = parse(&over, &limits()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::LineTooLong);
    assert!(e.is_fatal());
    let complete_over = [over.as_slice(), b"\r\n"].concat();
    assert_eq!(
        parse(&complete_over, &limits()).unwrap_err().kind(),
        ErrorKind::LineTooLong
    );
    let complete_at = [at.as_slice(), b"\r\n"].concat();
    assert_eq!(
        error(&complete_at).kind(),
        ErrorKind::UnknownCommand,
        "at the limit it is an ordinary line"
    );
}

#[test]
fn leading_spaces_do_not_earn_the_get_line_allowance() {
    let line = [vec![b' '; 2100].as_slice(), b"get k"].concat();
    assert_eq!(
        parse(&line, &limits()).unwrap_err().kind(),
        ErrorKind::LineTooLong
    );
}

// ---------------------------------------------------------------- meta

#[test]
fn every_meta_flag_parses() {
    let Request::MetaGet { key: k, flags: f } =
        request(b"mg Zm9v b c f h k l s t v u q I x Oabc N30\r\n")
    else {
        panic!()
    };
    assert_eq!(&*k, b"foo");
    assert_eq!(f.len(), 15);
    assert!(f.base64_key() && f.invalidate() && f.remove_value());
    let order: Vec<u8> = f.iter().map(|x| x.letter()).collect();
    assert_eq!(order, b"bcfhklstvuqIxON");
    let Request::MetaGet { flags: f, .. } = request(b"mg k R10 T-1 C5 E6 F7 MS J8 D9\r\n") else {
        panic!()
    };
    assert_eq!((f.recache(), f.ttl()), (Some(10), Some(-1)));
    assert_eq!(
        (f.compare_cas(), f.new_cas(), f.client_flags()),
        (Some(5), Some(6), Some(7))
    );
    assert_eq!(
        (f.mode(), f.initial(), f.delta()),
        (Some(b'S'), Some(8), Some(9))
    );
}

#[test]
fn seventeen_meta_flags_is_the_most_memcached_accepts() {
    assert!(
        matches!(request(b"mg k c f h k l s t v u q I x T1 N1 R1 C1 E1\r\n"), Request::MetaGet { flags, .. } if flags.len() == 17)
    );
}

#[test]
fn meta_get_with_every_plain_flag() {
    let req = request(b"mg foo c f h k l s t v u q Oop N30 R10 T-1\r\n");
    let expected = flags(&[
        MetaFlag::ReturnCas,
        MetaFlag::ReturnFlags,
        MetaFlag::ReturnHit,
        MetaFlag::ReturnKey,
        MetaFlag::ReturnLastAccess,
        MetaFlag::ReturnSize,
        MetaFlag::ReturnTtl,
        MetaFlag::ReturnValue,
        MetaFlag::NoBump,
        MetaFlag::Quiet,
        MetaFlag::Opaque(b"op"),
        MetaFlag::Vivify(30),
        MetaFlag::Recache(10),
        MetaFlag::Ttl(-1),
    ]);
    assert_eq!(
        req,
        Request::MetaGet {
            key: key(b"foo"),
            flags: expected
        }
    );
    let Request::MetaGet { flags: f, .. } = req else {
        panic!()
    };
    assert!(f.return_cas() && f.return_flags() && f.return_hit() && f.return_key());
    assert!(f.return_last_access() && f.return_size() && f.return_ttl() && f.return_value());
    assert!(f.no_bump() && f.quiet() && !f.invalidate() && !f.base64_key());
    assert_eq!(
        (f.vivify(), f.recache(), f.ttl(), f.opaque()),
        (Some(30), Some(10), Some(-1), Some(&b"op"[..]))
    );
    let order: Vec<u8> = f.iter().map(|x| x.letter()).collect();
    assert_eq!(order, b"cfhklstvuqONRT");
}

#[test]
fn meta_flags_keep_request_order_for_the_reply() {
    let Request::MetaGet { flags: f, .. } = request(b"mg k v t c O9 k\r\n") else {
        panic!()
    };
    let order: Vec<u8> = f.iter().map(|x| x.letter()).collect();
    assert_eq!(order, b"vtcOk");
}

#[test]
fn meta_set_parses_modes_and_value_flags() {
    let cases: Vec<(&[u8], MetaFlags<'static>, SetMode)> = vec![
        (b"ms k 2\r\nhi\r\n", flags(&[]), SetMode::Set),
        (
            b"ms k 2 T90 F1\r\nhi\r\n",
            flags(&[MetaFlag::Ttl(90), MetaFlag::ClientFlags(1)]),
            SetMode::Set,
        ),
        (
            b"ms k 2 ME\r\nhi\r\n",
            flags(&[MetaFlag::Mode(b'E')]),
            SetMode::Add,
        ),
        (
            b"ms k 2 MA\r\nhi\r\n",
            flags(&[MetaFlag::Mode(b'A')]),
            SetMode::Append,
        ),
        (
            b"ms k 2 MP\r\nhi\r\n",
            flags(&[MetaFlag::Mode(b'P')]),
            SetMode::Prepend,
        ),
        (
            b"ms k 2 MR\r\nhi\r\n",
            flags(&[MetaFlag::Mode(b'R')]),
            SetMode::Replace,
        ),
        (
            b"ms k 2 MS\r\nhi\r\n",
            flags(&[MetaFlag::Mode(b'S')]),
            SetMode::Set,
        ),
        (
            b"ms k 2 Ma\r\nhi\r\n",
            flags(&[MetaFlag::Mode(b'a')]),
            SetMode::Append,
        ),
        (
            b"ms k 2 C5 E6 I q k c Oz\r\nhi\r\n",
            flags(&[
                MetaFlag::CompareCas(5),
                MetaFlag::NewCas(6),
                MetaFlag::Invalidate,
                MetaFlag::Quiet,
                MetaFlag::ReturnKey,
                MetaFlag::ReturnCas,
                MetaFlag::Opaque(b"z"),
            ]),
            SetMode::Set,
        ),
    ];
    for (input, expected, mode) in cases {
        let req = request(input);
        assert_eq!(
            req,
            Request::MetaSet {
                key: key(b"k"),
                flags: expected,
                data: b"hi"
            },
            "{}",
            show(input)
        );
        let Request::MetaSet { flags: f, .. } = req else {
            panic!()
        };
        assert_eq!(f.set_mode(), Some(mode));
    }
}

#[test]
fn meta_set_accepts_the_legacy_size_flag() {
    assert_eq!(
        request(b"ms k S2 T5\r\nhi\r\n"),
        Request::MetaSet {
            key: key(b"k"),
            flags: flags(&[MetaFlag::Ttl(5)]),
            data: b"hi"
        }
    );
}

#[test]
fn meta_set_over_the_item_limit_is_too_large_and_swallows_the_block() {
    let (req, consumed) = complete(b"ms big 2000000 T1 q\r\n");
    assert_eq!(consumed, 21);
    let Request::TooLarge(t) = req else {
        panic!("{req:?}")
    };
    assert_eq!(t.swallow(), 2_000_002);
    assert!(!t.noreply(), "meta errors are sent even in quiet mode");
    assert!(t.removes_old_value());
}

#[test]
fn meta_delete_and_arithmetic_parse_their_flags() {
    assert_eq!(
        request(b"md k q I T30 x C9 E10 k Oo\r\n"),
        Request::MetaDelete {
            key: key(b"k"),
            flags: flags(&[
                MetaFlag::Quiet,
                MetaFlag::Invalidate,
                MetaFlag::Ttl(30),
                MetaFlag::RemoveValue,
                MetaFlag::CompareCas(9),
                MetaFlag::NewCas(10),
                MetaFlag::ReturnKey,
                MetaFlag::Opaque(b"o")
            ]),
        }
    );
    let req = request(b"ma k N0 J10 D5 MD T60 v t c\r\n");
    assert_eq!(
        req,
        Request::MetaArithmetic {
            key: key(b"k"),
            flags: flags(&[
                MetaFlag::Vivify(0),
                MetaFlag::Initial(10),
                MetaFlag::Delta(5),
                MetaFlag::Mode(b'D'),
                MetaFlag::Ttl(60),
                MetaFlag::ReturnValue,
                MetaFlag::ReturnTtl,
                MetaFlag::ReturnCas
            ]),
        }
    );
    let Request::MetaArithmetic { flags: f, .. } = req else {
        panic!()
    };
    assert_eq!(f.arithmetic_mode(), Some(ArithmeticMode::Decr));
    assert_eq!((f.initial(), f.delta()), (Some(10), Some(5)));
    for (mode, expected) in [
        ("I", ArithmeticMode::Incr),
        ("+", ArithmeticMode::Incr),
        ("-", ArithmeticMode::Decr),
    ] {
        let line = format!("ma k M{mode}\r\n");
        let Request::MetaArithmetic { flags: f, .. } = request(line.as_bytes()) else {
            panic!()
        };
        assert_eq!(f.arithmetic_mode(), Some(expected));
    }
    let Request::MetaArithmetic { flags: f, .. } = request(b"ma k\r\n") else {
        panic!()
    };
    assert_eq!(
        (f.arithmetic_mode(), f.delta()),
        (Some(ArithmeticMode::Incr), None)
    );
}

#[test]
fn base64_keys_are_decoded() {
    // "テスト" in base64, as in memcached's meta protocol examples.
    let req = request(b"mg 44OG44K544OI b v k\r\n");
    let Request::MetaGet { key: k, flags: f } = req else {
        panic!()
    };
    assert_eq!(&*k, "テスト".as_bytes());
    assert!(f.base64_key());
    assert_eq!(
        request(b"ms AAEC 1 b\r\nx\r\n"),
        Request::MetaSet {
            key: Cow::Owned(vec![0, 1, 2]),
            flags: flags(&[MetaFlag::Base64Key]),
            data: b"x"
        }
    );
    assert_eq!(
        request(b"me AAEC b\r\n"),
        Request::MetaDebug {
            key: Cow::Owned(vec![0, 1, 2]),
            base64: true
        }
    );
    assert_eq!(
        request(b"me foo\r\n"),
        Request::MetaDebug {
            key: key(b"foo"),
            base64: false
        }
    );
}

#[test]
fn meta_errors_map_to_memcacheds_exact_errors() {
    let long_opaque = [b"mg k O".as_slice(), &[b'9'; 32], b"\r\n"].concat();
    let max_opaque = [b"mg k O".as_slice(), &[b'9'; 31], b"\r\n"].concat();
    assert!(
        parse(&max_opaque, &limits()).is_ok(),
        "an O token of 32 bytes is accepted"
    );
    let cases: Vec<(&[u8], ErrorKind)> = vec![
        (b"mg\r\n", ErrorKind::UnknownCommand),
        (b"mz k\r\n", ErrorKind::UnknownCommand),
        (b"mg k z\r\n", ErrorKind::InvalidFlag),
        (b"mg k \xff\r\n", ErrorKind::DuplicateFlag),
        (b"mg k v v\r\n", ErrorKind::DuplicateFlag),
        (b"mg k T1 T2\r\n", ErrorKind::DuplicateFlag),
        (b"mg k Tabc\r\n", ErrorKind::BadMetaToken),
        (b"mg k N\r\n", ErrorKind::BadMetaToken),
        (b"mg k R1x\r\n", ErrorKind::BadMetaToken),
        (b"mg k Cabc\r\n", ErrorKind::BadMetaToken),
        (b"mg k E-1\r\n", ErrorKind::BadMetaToken),
        (b"mg k Fx\r\n", ErrorKind::BadFormat),
        (b"mg k Jx\r\n", ErrorKind::InvalidInitial),
        (b"mg k Dx\r\n", ErrorKind::InvalidDeltaToken),
        (b"mg k Tabc z\r\n", ErrorKind::InvalidFlag),
        (b"mg k Tabc Jx\r\n", ErrorKind::InvalidInitial),
        (b"mg k MEE\r\n", ErrorKind::ModeTokenLength),
        (b"mg k M\r\n", ErrorKind::ModeTokenLength),
        (b"mg k b\r\n", ErrorKind::KeyDecode),
        (b"mg a\x00 v\r\n", ErrorKind::BadFormat),
        (&long_opaque, ErrorKind::OpaqueTooLong),
        (
            b"mg k c f h k l s t v u q I x T1 N1 R1 C1 E1 F1\r\n",
            ErrorKind::TooManyFlags,
        ),
        (
            b"ms k 1 c f h k l s t v u q I x T1 N1 R1 C1 E1\r\n",
            ErrorKind::TooManyFlags,
        ),
        (b"md k z\r\n", ErrorKind::InvalidOrDuplicateFlag),
        (b"md k q q\r\n", ErrorKind::InvalidOrDuplicateFlag),
        (b"md k Tx\r\n", ErrorKind::InvalidOrDuplicateFlag),
        (b"ma k Dabc\r\n", ErrorKind::InvalidOrDuplicateFlag),
        (b"ma k J-1\r\n", ErrorKind::InvalidOrDuplicateFlag),
        (b"ma k MX\r\n", ErrorKind::InvalidArithmeticMode),
        (b"ma\r\n", ErrorKind::UnknownCommand),
        (b"md\r\n", ErrorKind::UnknownCommand),
        (b"ms\r\n", ErrorKind::UnknownCommand),
        (b"ms k\r\n", ErrorKind::BadFormat),
        (b"ms k T1\r\n", ErrorKind::BadFormat),
        (b"ms k Sx\r\n", ErrorKind::BadMetaToken),
        (b"ms k -1\r\n", ErrorKind::BadFormat),
        (b"ms k 2147483646\r\n", ErrorKind::BadFormat),
        (b"me\r\n", ErrorKind::BadFormat),
        (b"me k b\r\n", ErrorKind::BadFormat),
    ];
    for (input, kind) in cases {
        let e = error(input);
        assert_eq!(e.kind(), kind, "{}", show(input));
        assert_eq!(e.discard(), input.len(), "{}", show(input));
        assert!(!e.noreply() && !e.is_fatal());
    }
}

#[test]
fn a_rejected_meta_set_swallows_its_data_block_even_before_it_arrives() {
    let cases: Vec<(&[u8], ErrorKind)> = vec![
        (b"ms k 2 z\r\n", ErrorKind::InvalidFlag),
        (b"ms k 2 MX\r\n", ErrorKind::InvalidSetMode),
        (b"ms k 2 Fabc\r\n", ErrorKind::BadFormat),
        (b"ms k 2 b\r\n", ErrorKind::KeyDecode),
        (b"ms k 2 v v\r\n", ErrorKind::DuplicateFlag),
        (b"ms k 2 Ttomorrow\r\n", ErrorKind::BadMetaToken),
    ];
    for (input, kind) in cases {
        let e = error(input);
        assert_eq!(e.kind(), kind, "{}", show(input));
        assert_eq!(
            e.discard(),
            input.len() + 4,
            "{}: line + 2 data bytes + \\r\\n",
            show(input)
        );
    }
}

#[test]
fn a_meta_set_block_without_crlf_is_a_bad_data_chunk() {
    let e = error(b"ms k 2 q\r\nhello\r\n");
    assert_eq!(e.kind(), ErrorKind::BadDataChunk);
    assert_eq!(e.discard(), 14);
    assert!(!e.noreply(), "sent even with q");
}

// ---------------------------------------------------------------- responses

#[test]
fn text_responses_are_composed_exactly() {
    let cases: Vec<(Response<'static>, &[u8])> = vec![
        (Response::Stored, b"STORED\r\n"),
        (Response::NotStored, b"NOT_STORED\r\n"),
        (Response::Exists, b"EXISTS\r\n"),
        (Response::NotFound, b"NOT_FOUND\r\n"),
        (Response::Deleted, b"DELETED\r\n"),
        (Response::Touched, b"TOUCHED\r\n"),
        (Response::Ok, b"OK\r\n"),
        (Response::End, b"END\r\n"),
        (Response::Reset, b"RESET\r\n"),
        (
            Response::Value {
                key: b"k",
                flags: 5,
                data: b"abc",
                cas: None,
            },
            b"VALUE k 5 3\r\nabc\r\n",
        ),
        (
            Response::Value {
                key: b"k",
                flags: 0,
                data: b"",
                cas: Some(18_446_744_073_709_551_615),
            },
            b"VALUE k 0 0 18446744073709551615\r\n\r\n",
        ),
        (
            Response::Value {
                key: b"k",
                flags: u32::MAX,
                data: b"\r\n",
                cas: Some(0),
            },
            b"VALUE k 4294967295 2 0\r\n\r\n\r\n",
        ),
        (Response::Number(0), b"0\r\n"),
        (Response::Number(u64::MAX), b"18446744073709551615\r\n"),
        (Response::Version("1.6.21"), b"VERSION 1.6.21\r\n"),
        (
            Response::Stat {
                name: "version",
                value: "1.6.21",
            },
            b"STAT version 1.6.21\r\n",
        ),
        (
            Response::StatNumber {
                name: "curr_items",
                value: 42,
            },
            b"STAT curr_items 42\r\n",
        ),
        (Response::Error(ErrorKind::UnknownCommand), b"ERROR\r\n"),
        (
            Response::ClientError("cannot increment or decrement non-numeric value"),
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
        ),
        (
            Response::ServerError("out of memory storing object"),
            b"SERVER_ERROR out of memory storing object\r\n",
        ),
        (
            Response::Line("MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m"),
            b"MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n",
        ),
    ];
    for (response, expected) in cases {
        assert_eq!(written(response), expected, "{response:?}");
    }
}

#[test]
fn meta_responses_are_composed_exactly() {
    let cases: Vec<(Response<'static>, &[u8])> = vec![
        (
            Response::Meta {
                status: MetaStatus::Header,
                flags: &[],
            },
            b"HD\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Miss,
                flags: &[],
            },
            b"EN\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::NotFound,
                flags: &[],
            },
            b"NF\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::NotStored,
                flags: &[],
            },
            b"NS\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Exists,
                flags: &[],
            },
            b"EX\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Noop,
                flags: &[],
            },
            b"MN\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Value(b"hi"),
                flags: &[],
            },
            b"VA 2\r\nhi\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Value(b"hi"),
                flags: &[MetaReturn::Ttl(78), MetaReturn::ClientFlags(1)],
            },
            b"VA 2 t78 f1\r\nhi\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Value(b""),
                flags: &[
                    MetaReturn::ClientFlags(0),
                    MetaReturn::Cas(2),
                    MetaReturn::Win,
                ],
            },
            b"VA 0 f0 c2 W\r\n\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Value(b"data"),
                flags: &[
                    MetaReturn::Ttl(29),
                    MetaReturn::Cas(777),
                    MetaReturn::Win,
                    MetaReturn::Stale,
                ],
            },
            b"VA 4 t29 c777 W X\r\ndata\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Header,
                flags: &[
                    MetaReturn::Ttl(-1),
                    MetaReturn::Size(2),
                    MetaReturn::AlreadyWon,
                ],
            },
            b"HD t-1 s2 Z\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Header,
                flags: &[
                    MetaReturn::Hit(true),
                    MetaReturn::Hit(false),
                    MetaReturn::LastAccess(5),
                ],
            },
            b"HD h1 h0 l5\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Miss,
                flags: &[
                    MetaReturn::Opaque(b"123"),
                    MetaReturn::Key {
                        key: b"foo",
                        base64: false,
                    },
                ],
            },
            b"EN O123 kfoo\r\n",
        ),
        (
            Response::Meta {
                status: MetaStatus::Value(b"hi"),
                flags: &[MetaReturn::Key {
                    key: b"\xe3\x83\x86\xe3\x82\xb9\xe3\x83\x88",
                    base64: true,
                }],
            },
            b"VA 2 k44OG44K544OI b\r\nhi\r\n",
        ),
        (
            Response::MetaDebug {
                key: b"foo",
                base64: false,
                exp: -1,
                last_access: 3,
                cas: 9,
                fetched: false,
                class: 1,
                size: 68,
            },
            b"ME foo exp=-1 la=3 cas=9 fetch=no cls=1 size=68\r\n",
        ),
        (
            Response::MetaDebug {
                key: &[0, 1, 2],
                base64: true,
                exp: 10,
                last_access: 0,
                cas: 1,
                fetched: true,
                class: 2,
                size: 70,
            },
            b"ME AAEC exp=10 la=0 cas=1 fetch=yes cls=2 size=70\r\n",
        ),
    ];
    for (response, expected) in cases {
        assert_eq!(written(response), expected, "{response:?}");
    }
}

#[test]
fn responses_compose_into_bytes_mut_too() {
    let mut out = bytes::BytesMut::new();
    Response::Stored.write_to(&mut out);
    assert_eq!(&out[..], b"STORED\r\n");
}

// ---------------------------------------------------------------- requests composed

#[test]
fn requests_are_composed_exactly() {
    let cases: Vec<(Request<'static>, &[u8])> = vec![
        (set(b"k", b"v"), b"set k 0 0 1\r\nv\r\n"),
        (
            Request::Store {
                command: StoreCommand::Cas { unique: 7 },
                key: b"k",
                flags: 1,
                exptime: -1,
                data: b"",
                noreply: true,
            },
            b"cas k 1 -1 0 7 noreply\r\n\r\n",
        ),
        (
            Request::Get {
                cas: false,
                touch: None,
                keys: Tokens::new(b"a b"),
            },
            b"get a b\r\n",
        ),
        (
            Request::Get {
                cas: true,
                touch: Some(5),
                keys: Tokens::new(b"a"),
            },
            b"gats 5 a\r\n",
        ),
        (
            Request::Delete {
                key: b"k",
                noreply: true,
            },
            b"delete k noreply\r\n",
        ),
        (
            Request::Arithmetic {
                op: ArithmeticOp::Decr,
                key: b"k",
                delta: 3,
                noreply: false,
            },
            b"decr k 3\r\n",
        ),
        (
            Request::Touch {
                key: b"k",
                exptime: 9,
                noreply: false,
            },
            b"touch k 9\r\n",
        ),
        (
            Request::FlushAll {
                delay: Some(10),
                noreply: true,
            },
            b"flush_all 10 noreply\r\n",
        ),
        (
            Request::Verbosity {
                level: 1,
                noreply: false,
            },
            b"verbosity 1\r\n",
        ),
        (
            Request::Stats {
                args: Tokens::new(b"detail on"),
            },
            b"stats detail on\r\n",
        ),
        (
            Request::Shutdown { graceful: true },
            b"shutdown graceful\r\n",
        ),
        (
            Request::CacheMemlimit {
                megabytes: 100,
                noreply: true,
            },
            b"cache_memlimit 100 noreply\r\n",
        ),
        (
            Request::MetaGet {
                key: Cow::Owned(vec![0xff]),
                flags: flags(&[
                    MetaFlag::Base64Key,
                    MetaFlag::ReturnValue,
                    MetaFlag::Opaque(b"1"),
                ]),
            },
            b"mg /w== b v O1\r\n",
        ),
        (
            Request::MetaSet {
                key: key(b"k"),
                flags: flags(&[MetaFlag::Mode(b'E'), MetaFlag::Ttl(30)]),
                data: b"hi",
            },
            b"ms k 2 ME T30\r\nhi\r\n",
        ),
        (
            Request::MetaDelete {
                key: key(b"k"),
                flags: flags(&[MetaFlag::Invalidate]),
            },
            b"md k I\r\n",
        ),
        (
            Request::MetaArithmetic {
                key: key(b"k"),
                flags: flags(&[MetaFlag::Delta(2)]),
            },
            b"ma k D2\r\n",
        ),
        (Request::MetaNoop, b"mn\r\n"),
    ];
    for (req, expected) in cases {
        let mut out = Vec::new();
        req.write_to(&mut out);
        assert_eq!(out, expected, "{req:?}");
        assert_eq!(request(&out), req, "round trip of {req:?}");
    }
}

// ---------------------------------------------------------------- properties

/// An owned description of a request, generated at random and borrowed into
/// a [`Request`].
#[derive(Clone, Debug)]
enum Spec {
    Store {
        command: StoreCommand,
        key: Vec<u8>,
        flags: u32,
        exptime: i64,
        data: Vec<u8>,
        noreply: bool,
    },
    TooLarge {
        command: StoreCommand,
        key: Vec<u8>,
        flags: u32,
        exptime: i64,
        size: usize,
        noreply: bool,
    },
    Get {
        cas: bool,
        touch: Option<i64>,
        keys: Vec<u8>,
    },
    Delete {
        key: Vec<u8>,
        noreply: bool,
    },
    Arithmetic {
        incr: bool,
        key: Vec<u8>,
        delta: u64,
        noreply: bool,
    },
    Touch {
        key: Vec<u8>,
        exptime: i64,
        noreply: bool,
    },
    FlushAll {
        delay: Option<i64>,
        noreply: bool,
    },
    Version,
    Verbosity {
        level: u32,
        noreply: bool,
    },
    Stats {
        args: Vec<u8>,
    },
    Quit,
    Shutdown {
        graceful: bool,
    },
    CacheMemlimit {
        megabytes: u32,
        noreply: bool,
    },
    Meta {
        command: u8,
        key: Vec<u8>,
        flags: Vec<OwnedFlag>,
        data: Vec<u8>,
    },
    MetaNoop,
    MetaDebug {
        key: Vec<u8>,
        base64: bool,
    },
}

#[derive(Clone, Debug)]
enum OwnedFlag {
    Simple(u8),
    Opaque(Vec<u8>),
    Signed(u8, i64),
    Unsigned(u8, u64),
    ClientFlags(u32),
    Mode(u8),
}

const KEY_BYTES: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_:-.{}";

fn gen_key(g: &mut Gen) -> Vec<u8> {
    let len = if u8::arbitrary(g) % 16 == 0 {
        250
    } else {
        1 + usize::arbitrary(g) % 20
    };
    (0..len).map(|_| *g.choose(KEY_BYTES).unwrap()).collect()
}

fn gen_keys(g: &mut Gen, min: usize) -> Vec<u8> {
    let n = min + usize::arbitrary(g) % 5;
    let keys: Vec<Vec<u8>> = (0..n).map(|_| gen_key(g)).collect();
    keys.join(&b' ')
}

fn gen_meta_flags(g: &mut Gen, command: u8, base64: bool) -> Vec<OwnedFlag> {
    let mut letters: Vec<u8> = b"cfhklstvuqIxONRTCEFJDM".to_vec();
    // Shuffle, then keep a prefix: distinct letters in random order.
    for i in (1..letters.len()).rev() {
        let j = usize::arbitrary(g) % (i + 1);
        letters.swap(i, j);
    }
    let keep = usize::arbitrary(g) % 14;
    let mut out: Vec<OwnedFlag> = letters[..keep]
        .iter()
        .map(|&l| match l {
            b'O' => OwnedFlag::Opaque(
                (0..usize::arbitrary(g) % 32)
                    .map(|_| *g.choose(KEY_BYTES).unwrap())
                    .collect(),
            ),
            b'N' | b'R' | b'T' => OwnedFlag::Signed(l, i64::arbitrary(g)),
            b'C' | b'E' | b'J' | b'D' => OwnedFlag::Unsigned(l, u64::arbitrary(g)),
            b'F' => OwnedFlag::ClientFlags(u32::arbitrary(g)),
            b'M' => OwnedFlag::Mode(match command {
                b's' => *g.choose(b"EAPRSeaprs").unwrap(),
                b'a' => *g.choose(b"I+D-id").unwrap(),
                _ => *g.choose(KEY_BYTES).unwrap(),
            }),
            other => OwnedFlag::Simple(other),
        })
        .collect();
    if base64 {
        let at = usize::arbitrary(g) % (out.len() + 1);
        out.insert(at, OwnedFlag::Simple(b'b'));
    }
    out
}

impl Arbitrary for Spec {
    fn arbitrary(g: &mut Gen) -> Self {
        let commands = [
            &b"set"[..],
            b"add",
            b"replace",
            b"append",
            b"prepend",
            b"cas",
        ];
        let store_command = |g: &mut Gen| match *g.choose(&commands).unwrap() {
            b"set" => StoreCommand::Set,
            b"add" => StoreCommand::Add,
            b"replace" => StoreCommand::Replace,
            b"append" => StoreCommand::Append,
            b"prepend" => StoreCommand::Prepend,
            _ => StoreCommand::Cas {
                unique: u64::arbitrary(g),
            },
        };
        match u8::arbitrary(g) % 17 {
            0 | 1 => Spec::Store {
                command: store_command(g),
                key: gen_key(g),
                flags: u32::arbitrary(g),
                exptime: i64::arbitrary(g),
                data: Vec::arbitrary(g),
                noreply: bool::arbitrary(g),
            },
            2 => Spec::TooLarge {
                command: store_command(g),
                key: gen_key(g),
                flags: u32::arbitrary(g),
                exptime: i64::arbitrary(g),
                size: (1 << 20) + 1 + usize::arbitrary(g) % 1000,
                noreply: bool::arbitrary(g),
            },
            3 => {
                let touch = if bool::arbitrary(g) {
                    Some(i64::arbitrary(g))
                } else {
                    None
                };
                let min = usize::from(touch.is_none());
                Spec::Get {
                    cas: bool::arbitrary(g),
                    touch,
                    keys: gen_keys(g, min),
                }
            }
            4 => Spec::Delete {
                key: gen_key(g),
                noreply: bool::arbitrary(g),
            },
            5 => Spec::Arithmetic {
                incr: bool::arbitrary(g),
                key: gen_key(g),
                delta: u64::arbitrary(g),
                noreply: bool::arbitrary(g),
            },
            6 => Spec::Touch {
                key: gen_key(g),
                exptime: i64::arbitrary(g),
                noreply: bool::arbitrary(g),
            },
            7 => Spec::FlushAll {
                delay: Option::arbitrary(g),
                noreply: bool::arbitrary(g),
            },
            8 => g
                .choose(&[Spec::Version, Spec::Quit, Spec::MetaNoop])
                .unwrap()
                .clone(),
            9 => Spec::Verbosity {
                level: u32::arbitrary(g),
                noreply: bool::arbitrary(g),
            },
            10 => Spec::Stats {
                args: gen_keys(g, 0),
            },
            11 => Spec::Shutdown {
                graceful: bool::arbitrary(g),
            },
            12 => Spec::CacheMemlimit {
                megabytes: u32::arbitrary(g),
                noreply: bool::arbitrary(g),
            },
            13 => {
                let base64 = bool::arbitrary(g);
                let key = if base64 {
                    (0..1 + usize::arbitrary(g) % 40)
                        .map(|_| u8::arbitrary(g))
                        .collect()
                } else {
                    gen_key(g)
                };
                Spec::MetaDebug { key, base64 }
            }
            _ => {
                let command = *g.choose(b"gsda").unwrap();
                let base64 = bool::arbitrary(g);
                let key = if base64 {
                    (0..1 + usize::arbitrary(g) % 60)
                        .map(|_| u8::arbitrary(g))
                        .collect()
                } else {
                    gen_key(g)
                };
                let flags = gen_meta_flags(g, command, base64);
                let data = if command == b's' {
                    Vec::arbitrary(g)
                } else {
                    Vec::new()
                };
                Spec::Meta {
                    command,
                    key,
                    flags,
                    data,
                }
            }
        }
    }
}

impl Spec {
    fn request(&self) -> Request<'_> {
        match self {
            Spec::Store {
                command,
                key,
                flags,
                exptime,
                data,
                noreply,
            } => Request::Store {
                command: *command,
                key,
                flags: *flags,
                exptime: *exptime,
                data,
                noreply: *noreply,
            },
            Spec::TooLarge {
                command,
                key,
                flags,
                exptime,
                size,
                noreply,
            } => Request::TooLarge(TooLarge::Text {
                command: *command,
                key,
                flags: *flags,
                exptime: *exptime,
                size: *size,
                noreply: *noreply,
            }),
            Spec::Get { cas, touch, keys } => Request::Get {
                cas: *cas,
                touch: *touch,
                keys: Tokens::new(keys),
            },
            Spec::Delete { key, noreply } => Request::Delete {
                key,
                noreply: *noreply,
            },
            Spec::Arithmetic {
                incr,
                key,
                delta,
                noreply,
            } => Request::Arithmetic {
                op: if *incr {
                    ArithmeticOp::Incr
                } else {
                    ArithmeticOp::Decr
                },
                key,
                delta: *delta,
                noreply: *noreply,
            },
            Spec::Touch {
                key,
                exptime,
                noreply,
            } => Request::Touch {
                key,
                exptime: *exptime,
                noreply: *noreply,
            },
            Spec::FlushAll { delay, noreply } => Request::FlushAll {
                delay: *delay,
                noreply: *noreply,
            },
            Spec::Version => Request::Version,
            Spec::Verbosity { level, noreply } => Request::Verbosity {
                level: *level,
                noreply: *noreply,
            },
            Spec::Stats { args } => Request::Stats {
                args: Tokens::new(args),
            },
            Spec::Quit => Request::Quit,
            Spec::Shutdown { graceful } => Request::Shutdown {
                graceful: *graceful,
            },
            Spec::CacheMemlimit { megabytes, noreply } => Request::CacheMemlimit {
                megabytes: *megabytes,
                noreply: *noreply,
            },
            Spec::MetaNoop => Request::MetaNoop,
            Spec::MetaDebug { key, base64 } => Request::MetaDebug {
                key: Cow::Borrowed(key),
                base64: *base64,
            },
            Spec::Meta {
                command,
                key,
                flags: owned,
                data,
            } => {
                let mut flags = MetaFlags::new();
                for flag in owned {
                    flags.set(match flag {
                        OwnedFlag::Simple(l) => match l {
                            b'b' => MetaFlag::Base64Key,
                            b'c' => MetaFlag::ReturnCas,
                            b'f' => MetaFlag::ReturnFlags,
                            b'h' => MetaFlag::ReturnHit,
                            b'k' => MetaFlag::ReturnKey,
                            b'l' => MetaFlag::ReturnLastAccess,
                            b's' => MetaFlag::ReturnSize,
                            b't' => MetaFlag::ReturnTtl,
                            b'v' => MetaFlag::ReturnValue,
                            b'u' => MetaFlag::NoBump,
                            b'q' => MetaFlag::Quiet,
                            b'I' => MetaFlag::Invalidate,
                            _ => MetaFlag::RemoveValue,
                        },
                        OwnedFlag::Opaque(v) => MetaFlag::Opaque(v),
                        OwnedFlag::Signed(b'N', v) => MetaFlag::Vivify(*v),
                        OwnedFlag::Signed(b'R', v) => MetaFlag::Recache(*v),
                        OwnedFlag::Signed(_, v) => MetaFlag::Ttl(*v),
                        OwnedFlag::Unsigned(b'C', v) => MetaFlag::CompareCas(*v),
                        OwnedFlag::Unsigned(b'E', v) => MetaFlag::NewCas(*v),
                        OwnedFlag::Unsigned(b'J', v) => MetaFlag::Initial(*v),
                        OwnedFlag::Unsigned(_, v) => MetaFlag::Delta(*v),
                        OwnedFlag::ClientFlags(v) => MetaFlag::ClientFlags(*v),
                        OwnedFlag::Mode(m) => MetaFlag::Mode(*m),
                    });
                }
                let key = Cow::Borrowed(key.as_slice());
                match command {
                    b'g' => Request::MetaGet { key, flags },
                    b's' => Request::MetaSet { key, flags, data },
                    b'd' => Request::MetaDelete { key, flags },
                    _ => Request::MetaArithmetic { key, flags },
                }
            }
        }
    }
}

fn encode(request: &Request<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    request.write_to(&mut out);
    out
}

fn quickcheck(tests: u64) -> QuickCheck {
    QuickCheck::new().tests(tests).max_tests(tests * 10)
}

#[test]
fn composed_requests_parse_back_to_themselves() {
    fn prop(spec: Spec) -> TestResult {
        let request = spec.request();
        let bytes = encode(&request);
        match parse(&bytes, &limits()) {
            Ok(Status::Complete(parsed, consumed))
                if parsed == request && consumed == bytes.len() =>
            {
                TestResult::passed()
            }
            other => TestResult::error(format!("{:?} -> {other:?}", show(&bytes))),
        }
    }
    quickcheck(2000).quickcheck(prop as fn(Spec) -> TestResult);
}

#[test]
fn a_request_stream_split_anywhere_parses_to_the_same_requests() {
    fn prop(specs: Vec<Spec>) -> TestResult {
        let requests: Vec<Request<'_>> = specs.iter().map(Spec::request).collect();
        let stream: Vec<u8> = requests.iter().flat_map(encode).collect();
        let mut at = 0;
        for expected in &requests {
            let len = encode(expected).len();
            // Every proper prefix of this request asks for more input.
            for end in at..at + len {
                if parse(&stream[at..end], &limits()) != Ok(Status::Partial) {
                    return TestResult::error(format!(
                        "prefix {} of {:?} is not partial",
                        end - at,
                        show(&stream[at..])
                    ));
                }
            }
            // With the request (and everything after it) buffered, it is complete.
            match parse(&stream[at..], &limits()) {
                Ok(Status::Complete(parsed, consumed))
                    if &parsed == expected && consumed == len =>
                {
                    at += len
                }
                other => {
                    return TestResult::error(format!("{:?} -> {other:?}", show(&stream[at..])))
                }
            }
        }
        TestResult::from_bool(at == stream.len())
    }
    quickcheck(300).quickcheck(prop as fn(Vec<Spec>) -> TestResult);
}

/// The invariants of both parsers; `parse` never returns a `LongGet`.
fn check_invariants(input: &[u8], limits: &Limits) -> Result<(), String> {
    if let Ok(Status::Complete(Request::LongGet { .. }, _)) = parse(input, limits) {
        return Err("parse streamed a long get".to_string());
    }
    check_invariants_of(parse, input, limits)?;
    check_invariants_of(parse_streaming, input, limits)
}

type Parser = for<'a> fn(&'a [u8], &Limits) -> Result<Status<Request<'a>>, ParseError>;

fn check_invariants_of(parse: Parser, input: &[u8], limits: &Limits) -> Result<(), String> {
    match parse(input, limits) {
        Ok(Status::Partial) => Ok(()),
        Ok(Status::Complete(request, consumed)) => {
            if consumed == 0 || consumed > input.len() {
                return Err(format!("consumed {consumed} of {}", input.len()));
            }
            let key_len = match &request {
                Request::Store { key, .. }
                | Request::Delete { key, .. }
                | Request::Touch { key, .. }
                | Request::Arithmetic { key, .. } => key.len(),
                Request::MetaGet { key, .. }
                | Request::MetaSet { key, .. }
                | Request::MetaDelete { key, .. }
                | Request::MetaArithmetic { key, .. }
                | Request::MetaDebug { key, .. } => key.len(),
                Request::Get { keys, .. } | Request::LongGet { keys, .. } => {
                    keys.iter().map(<[u8]>::len).max().unwrap_or(0)
                }
                Request::TooLarge(t) => t.key().len(),
                _ => 0,
            };
            if key_len > limits.max_key_len {
                return Err(format!("key of {key_len} bytes"));
            }
            if matches!(request, Request::LongGet { .. }) {
                // Only the start of its line: it has no bytes of its own to
                // read back.
                return Ok(());
            }
            // Whatever parses, composes to bytes that parse the same way.
            let again = encode(&request);
            match parse(&again, limits) {
                Ok(Status::Complete(reparsed, n)) if reparsed == request && n == again.len() => {
                    Ok(())
                }
                other => Err(format!("recomposed {:?} -> {other:?}", show(&again))),
            }
        }
        Err(e) if e.is_fatal() => Ok(()),
        Err(e) if e.discard() == 0 => Err("an error that discards nothing".to_string()),
        Err(_) => Ok(()),
    }
}

#[test]
fn arbitrary_bytes_never_panic_and_keep_the_invariants() {
    fn prop(input: Vec<u8>) -> TestResult {
        let small = Limits {
            max_line_len: 16,
            max_get_line_len: 32,
            max_item_size: 8,
            max_key_len: 4,
        };
        for limits in [Limits::default(), small] {
            if let Err(e) = check_invariants(&input, &limits) {
                return TestResult::error(format!("{:?}: {e}", show(&input)));
            }
        }
        TestResult::passed()
    }
    quickcheck(5000).quickcheck(prop as fn(Vec<u8>) -> TestResult);
}

#[test]
fn command_like_noise_never_panics_and_keeps_the_invariants() {
    fn prop(words: Vec<(u8, u8, u16)>) -> TestResult {
        // Plausible tokens glued with spaces and line ends hit deeper paths
        // than uniform bytes do.
        const TOKENS: &[&[u8]] = &[
            b"set",
            b"get",
            b"gat",
            b"cas",
            b"incr",
            b"delete",
            b"flush_all",
            b"mg",
            b"ms",
            b"md",
            b"ma",
            b"me",
            b"mn",
            b"stats",
            b"k",
            b"noreply",
            b"0",
            b"1",
            b"-1",
            b"2",
            b"b",
            b"v",
            b"q",
            b"T1",
            b"MA",
            b"MZ",
            b"O1",
            b"AAEC",
            b"x\x01",
            b"S2",
        ];
        const GLUE: &[&[u8]] = &[b" ", b"  ", b"\r\n", b"\n", b"\r", b""];
        let mut input = Vec::new();
        for (t, s, _) in &words {
            input.extend_from_slice(TOKENS[usize::from(*t) % TOKENS.len()]);
            input.extend_from_slice(GLUE[usize::from(*s) % GLUE.len()]);
        }
        let mut rest = &input[..];
        // Walk the whole stream the way a server would.
        loop {
            if let Err(e) = check_invariants(rest, &limits()) {
                return TestResult::error(format!("{:?}: {e}", show(rest)));
            }
            match parse(rest, &limits()) {
                Ok(Status::Complete(_, n)) => rest = &rest[n..],
                Err(e) if !e.is_fatal() => rest = &rest[e.discard().min(rest.len())..],
                _ => break,
            }
        }
        TestResult::passed()
    }
    quickcheck(3000).quickcheck(prop as fn(Vec<(u8, u8, u16)>) -> TestResult);
}

#[test]
fn public_types_are_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Request<'static>>();
    assert_send_sync::<Response<'static>>();
    assert_send_sync::<ParseError>();
    assert_send_sync::<Limits>();
}
