//! memcached's server settings that change what the store answers, each
//! checked against a fresh [`Store`] on a manual clock: `-F` (no
//! `flush_all`), `-B` (the protocols spoken), `-R` (requests per turn),
//! `cache_memlimit` (a live memory limit), `stats cachedump`, `stats
//! settings`, and reclaiming expired items in the background.
#![cfg(feature = "memcached")]

use std::time::Duration;

use larder::memcached::binary::{self, Opcode, StatusCode};
use larder::memcached::{Outcome, Protocols, Session, Store, StoreConfig};
use larder::{Clock, ManualClock};

const START: u64 = 1_700_000_000;

fn store(config: StoreConfig) -> (Store, ManualClock) {
    let (clock, hand) = Clock::manual();
    let store = Store::new(StoreConfig {
        clock,
        unix_time: Some(START),
        ..config
    })
    .expect("valid config");
    (store, hand)
}

fn small() -> StoreConfig {
    StoreConfig {
        memory_limit: 1 << 20,
        max_item_size: 1024,
        shards: Some(4),
        ..StoreConfig::default()
    }
}

/// Feeds `input` to a fresh session until it is consumed; the replies.
fn talk(store: &Store, input: &[u8]) -> Vec<u8> {
    talk_in(store, &mut Session::new(), input)
}

fn talk_in(store: &Store, session: &mut Session, mut input: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while !input.is_empty() {
        let progress = store.process(session, input, &mut out);
        assert!(
            progress.consumed > 0,
            "stuck at {:?}",
            String::from_utf8_lossy(input)
        );
        input = &input[progress.consumed..];
        if progress.outcome != Outcome::Continue {
            break;
        }
    }
    out
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).expect("text reply")
}

/// The value of `name` in a stats reply.
fn stat(reply: &str, name: &str) -> Option<String> {
    reply.lines().find_map(|line| {
        let mut words = line.split(' ');
        (words.next() == Some("STAT") && words.next() == Some(name))
            .then(|| words.next().unwrap_or("").to_owned())
    })
}

#[test]
fn with_flush_disabled_flush_all_is_refused_counted_and_changes_nothing() {
    let (store, _hand) = store(StoreConfig {
        flush_enabled: false,
        ..small()
    });
    let reply = text(talk(
        &store,
        b"set k 0 0 1\r\nv\r\nflush_all\r\nflush_all 10\r\nflush_all noreply\r\nget k\r\n",
    ));
    assert_eq!(
        reply,
        "STORED\r\nCLIENT_ERROR flush_all not allowed\r\n\
         CLIENT_ERROR flush_all not allowed\r\nVALUE k 0 1\r\nv\r\nEND\r\n"
    );
    let stats = text(talk(&store, b"stats\r\n"));
    assert_eq!(stat(&stats, "cmd_flush").as_deref(), Some("3"));
    let settings = text(talk(&store, b"stats settings\r\n"));
    assert_eq!(stat(&settings, "flush_enabled").as_deref(), Some("no"));

    // The binary FLUSH gets memcached's answer for it: an auth error.
    let mut out = Vec::new();
    let mut wire = Vec::new();
    binary::Request::bare(Opcode::Flush).write_to(&mut wire);
    let _ = store.process(&mut Session::new(), &wire, &mut out);
    let larder::memcached::Status::Complete(response, _) =
        binary::parse_response(&out).expect("a response")
    else {
        panic!("partial response");
    };
    assert_eq!(response.status, StatusCode::AUTH_ERROR);
    assert_eq!(response.value, b"Auth failure.");
    // memcached does not count a refused binary FLUSH.
    let stats = text(talk(
        &store, b"stats
",
    ));
    assert_eq!(stat(&stats, "cmd_flush").as_deref(), Some("3"));
    assert_eq!(
        text(talk(&store, b"get k\r\n")),
        "VALUE k 0 1\r\nv\r\nEND\r\n"
    );
}

#[test]
fn flush_enabled_by_default() {
    let (store, _hand) = store(small());
    let reply = text(talk(&store, b"set k 0 0 1\r\nv\r\nflush_all\r\nget k\r\n"));
    assert_eq!(reply, "STORED\r\nOK\r\nEND\r\n");
    let settings = text(talk(&store, b"stats settings\r\n"));
    assert_eq!(stat(&settings, "flush_enabled").as_deref(), Some("yes"));
    assert_eq!(
        stat(&settings, "binding_protocol").as_deref(),
        Some("auto-negotiate")
    );
    assert_eq!(stat(&settings, "domain_socket").as_deref(), Some("NULL"));
    assert_eq!(stat(&settings, "auth_enabled_sasl").as_deref(), Some("no"));
}

#[test]
fn a_binary_only_store_reads_text_as_a_bad_binary_header_and_closes() {
    let (store, _hand) = store(StoreConfig {
        protocols: Protocols::Binary,
        ..small()
    });
    let mut session = Session::new();
    let mut out = Vec::new();
    // Fewer than 24 bytes: not yet a header.
    let progress = store.process(&mut session, b"get k\r\n", &mut out);
    assert_eq!(progress.consumed, 0);
    assert_eq!(session.is_binary(), Some(true));
    let garbage = b"Here's a bunch of garbage that doesn't look like the bin prot.";
    let progress = store.process(&mut session, garbage, &mut out);
    assert_eq!(progress.outcome, Outcome::Close);
}

#[test]
fn a_text_only_store_answers_a_binary_request_as_text() {
    let (store, _hand) = store(StoreConfig {
        protocols: Protocols::Text,
        ..small()
    });
    let mut wire = Vec::new();
    binary::Request::bare(Opcode::Noop).write_to(&mut wire);
    wire.extend_from_slice(b"\r\nversion\r\n");
    let mut session = Session::new();
    let reply = talk_in(&store, &mut session, &wire);
    assert_eq!(session.is_binary(), Some(false));
    assert!(
        reply.starts_with(b"ERROR"),
        "{:?}",
        String::from_utf8_lossy(&reply)
    );
    let settings = text(talk(&store, b"stats settings\r\n"));
    assert_eq!(
        stat(&settings, "binding_protocol").as_deref(),
        Some("ascii")
    );
}

#[test]
fn a_request_limit_stops_each_call_after_that_many_requests() {
    let (store, _hand) = store(small());
    let mut session = Session::new().with_request_limit(2);
    let input = b"set a 0 0 1\r\n1\r\nset b 0 0 1\r\n2\r\nget a b\r\nversion\r\n";
    let mut out = Vec::new();
    let first = store.process(&mut session, input, &mut out);
    assert_eq!(first.consumed, 32);
    assert_eq!(out, b"STORED\r\nSTORED\r\n");
    let second = store.process(&mut session, &input[first.consumed..], &mut out);
    assert_eq!(first.consumed + second.consumed, input.len());
    let out = text(out);
    assert!(
        out.starts_with(
            "STORED\r\nSTORED\r\nVALUE a 0 1\r\n1\r\nVALUE b 0 1\r\n2\r\nEND\r\nVERSION "
        ),
        "{out}"
    );
    assert_eq!(out.matches("\r\n").count(), 8);

    // Binary requests count the same way.
    let mut wire = Vec::new();
    for _ in 0..3 {
        binary::Request::bare(Opcode::Noop).write_to(&mut wire);
    }
    let mut session = Session::new().with_request_limit(1);
    let mut out = Vec::new();
    let progress = store.process(&mut session, &wire, &mut out);
    assert_eq!(progress.consumed, 24);
    assert_eq!(out.len(), 24);
}

#[test]
fn cache_memlimit_grows_and_shrinks_the_store_and_evicts_to_fit() {
    let (store, _hand) = store(StoreConfig {
        memory_limit: 64 << 20,
        max_item_size: 1 << 20,
        shards: Some(4),
        ..StoreConfig::default()
    });
    let value = vec![b'x'; 100_000];
    let mut input = Vec::new();
    for i in 0..300 {
        input.extend_from_slice(format!("set key{i} 0 0 {} noreply\r\n", value.len()).as_bytes());
        input.extend_from_slice(&value);
        input.extend_from_slice(b"\r\n");
    }
    assert!(talk(&store, &input).is_empty());
    let before = text(talk(&store, b"stats\r\n"));
    assert_eq!(stat(&before, "curr_items").as_deref(), Some("300"));
    assert_eq!(stat(&before, "evictions").as_deref(), Some("0"));

    assert_eq!(text(talk(&store, b"cache_memlimit 8\r\n")), "OK\r\n");
    let after = text(talk(&store, b"stats\r\n"));
    let held: u64 = stat(&after, "curr_items").unwrap().parse().unwrap();
    let bytes: u64 = stat(&after, "bytes").unwrap().parse().unwrap();
    let evictions: u64 = stat(&after, "evictions").unwrap().parse().unwrap();
    assert!(held < 84 && held > 60, "held {held}");
    assert!(bytes <= 8 << 20, "bytes {bytes}");
    assert_eq!(held + evictions, 300);
    assert_eq!(stat(&after, "limit_maxbytes").as_deref(), Some("8388608"));
    let settings = text(talk(&store, b"stats settings\r\n"));
    assert_eq!(stat(&settings, "maxbytes").as_deref(), Some("8388608"));
    store.validate();

    // Room again after growing.
    assert_eq!(text(talk(&store, b"cache_memlimit 64\r\n")), "OK\r\n");
    assert!(talk(&store, &input).is_empty());
    let grown = text(talk(&store, b"stats\r\n"));
    assert_eq!(stat(&grown, "curr_items").as_deref(), Some("300"));
    store.validate();

    // memcached's refusals: below 8 MiB, and a figure in bytes.
    assert_eq!(
        text(talk(&store, b"cache_memlimit 7\r\n")),
        "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m\r\n"
    );
    assert_eq!(
        text(talk(&store, b"cache_memlimit 2000000000\r\n")),
        "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes\r\n"
    );
    assert_eq!(store.memory_limit(), 64 << 20);
}

#[test]
fn a_memory_limit_too_small_for_the_largest_item_is_refused() {
    let (store, _hand) = store(StoreConfig {
        memory_limit: 64 << 20,
        max_item_size: 4 << 20,
        shards: Some(4),
        ..StoreConfig::default()
    });
    // 8 MiB over 4 shards leaves 2 MiB a shard: no room for a 4 MiB item.
    assert_eq!(
        text(talk(&store, b"cache_memlimit 8\r\n")),
        "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n"
    );
    assert_eq!(store.memory_limit(), 64 << 20);
    // 16 MiB leaves exactly 4 MiB a shard: a 4 MiB value and its header do
    // not fit either. 32 MiB does.
    assert_eq!(
        text(talk(&store, b"cache_memlimit 16\r\n")),
        "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust\r\n"
    );
    assert_eq!(text(talk(&store, b"cache_memlimit 32\r\n")), "OK\r\n");
    assert_eq!(store.memory_limit(), 32 << 20);
}

#[test]
fn cachedump_lists_live_items_with_size_and_expiry() {
    let (store, hand) = store(small());
    let reply = talk(
        &store,
        b"set forever 0 0 5\r\nhello\r\nset brief 0 100 2\r\nhi\r\nset gone 0 1 1\r\nx\r\n\
          ms d2luZQ== 3 b\r\nabc\r\n",
    );
    assert_eq!(text(reply), "STORED\r\nSTORED\r\nSTORED\r\nHD\r\n");
    hand.advance(Duration::from_secs(1));
    let dump = text(talk(&store, b"stats cachedump 1 0\r\n"));
    let mut lines: Vec<&str> = dump.lines().collect();
    assert_eq!(lines.pop(), Some("END"));
    lines.sort_unstable();
    let brief_expiry = START + 100;
    assert_eq!(
        lines,
        [
            format!("ITEM brief [2 b; {brief_expiry} s]"),
            "ITEM forever [5 b; 0 s]".to_owned(),
            "ITEM wine [3 b; 0 s]".to_owned(),
        ]
    );
    // A limit, another class, and memcached's argument errors.
    let one = text(talk(&store, b"stats cachedump 1 1\r\n"));
    assert_eq!(one.lines().count(), 2);
    assert_eq!(text(talk(&store, b"stats cachedump 2 0\r\n")), "END\r\n");
    assert_eq!(
        text(talk(&store, b"stats cachedump 64 0\r\n")),
        "CLIENT_ERROR Illegal slab id\r\n"
    );
    assert_eq!(
        text(talk(&store, b"stats cachedump 1\r\n")),
        "CLIENT_ERROR bad command line\r\n"
    );
}

#[test]
fn reclaiming_expired_items_frees_them_without_a_request() {
    let (store, hand) = store(small());
    let mut input = Vec::new();
    for i in 0..200 {
        input.extend_from_slice(format!("set t{i} 0 10 1 noreply\r\nx\r\n").as_bytes());
        input.extend_from_slice(format!("set p{i} 0 0 1 noreply\r\nx\r\n").as_bytes());
    }
    assert!(talk(&store, &input).is_empty());
    hand.advance(Duration::from_secs(10));
    let before = text(talk(&store, b"stats\r\n"));
    assert_eq!(stat(&before, "curr_items").as_deref(), Some("400"));
    store.reclaim_expired(usize::MAX);
    let after = text(talk(&store, b"stats\r\n"));
    assert_eq!(stat(&after, "curr_items").as_deref(), Some("200"));
    assert_eq!(stat(&after, "reclaimed").as_deref(), Some("200"));
    assert_eq!(stat(&after, "expired_unfetched").as_deref(), Some("200"));
    store.validate();
}

/// `lru_crawler metadump` lines, parsed into (key, the rest).
fn dump_lines(reply: &str) -> Vec<(String, String)> {
    let body = reply.strip_suffix("END\r\n").expect("ends with END");
    body.split_terminator('\n')
        .map(|line| {
            let (key, rest) = line.split_once(' ').expect("fields");
            (
                key.strip_prefix("key=").expect("key=").to_owned(),
                rest.to_owned(),
            )
        })
        .collect()
}

#[test]
fn metadump_lists_every_live_item_in_memcacheds_format() {
    let (store, hand) = store(small());
    let reply = talk(
        &store,
        b"set plain 0 0 3\r\nabc\r\nset timed 0 100 1\r\nx\r\nset gone 0 1 1\r\nx\r\n\
          set 'odd/key' 0 0 1\r\nx\r\nget plain\r\n",
    );
    assert!(text(reply).ends_with("END\r\n"));
    hand.advance(Duration::from_secs(2));
    let mut lines = dump_lines(&text(talk(&store, b"lru_crawler metadump all\r\n")));
    lines.sort();
    let keys: Vec<&str> = lines.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["%27odd%2Fkey%27", "plain", "timed"]);
    let plain = &lines[1].1;
    assert!(
        plain.starts_with(&format!("exp=-1 la={START} cas=1 fetch=yes cls=1 size=")),
        "{plain}"
    );
    let timed = &lines[2].1;
    assert!(
        timed.starts_with(&format!(
            "exp={} la={START} cas=2 fetch=no cls=1 ",
            START + 100
        )),
        "{timed}"
    );
    // `hash` and a list naming class 1 dump the same; other classes nothing.
    assert_eq!(
        dump_lines(&text(talk(&store, b"lru_crawler metadump hash\r\n"))).len(),
        3
    );
    assert_eq!(
        dump_lines(&text(talk(&store, b"lru_crawler metadump 3,1\r\n"))).len(),
        3
    );
    assert_eq!(text(talk(&store, b"lru_crawler metadump 2\r\n")), "END\r\n");
    assert_eq!(
        text(talk(&store, b"lru_crawler metadump 64\r\n")),
        "BADCLASS invalid class id\r\n"
    );
}

#[test]
fn a_metadump_pauses_at_the_output_limit_and_resumes() {
    let (store, _hand) = store(StoreConfig {
        memory_limit: 64 << 20,
        ..small()
    });
    let mut input = Vec::new();
    for i in 0..5_000 {
        input.extend_from_slice(format!("set key{i} 0 0 1 noreply\r\nx\r\n").as_bytes());
    }
    assert!(talk(&store, &input).is_empty());
    let mut session = Session::new().with_output_limit(4096);
    let request = b"lru_crawler metadump all\r\nversion\r\n";
    let mut reply = Vec::new();
    let mut pos = 0;
    let mut calls = 0;
    while pos < request.len() {
        let mut out = Vec::new();
        let progress = store.process(&mut session, &request[pos..], &mut out);
        assert!(
            out.len() < 4096 + 200,
            "a call writes about the limit: {}",
            out.len()
        );
        assert!(progress.consumed > 0 || session.is_resuming());
        pos += progress.consumed;
        reply.extend_from_slice(&out);
        calls += 1;
    }
    assert!(calls > 50, "{calls} calls");
    let reply = text(reply);
    let (dump, version) = reply.split_at(reply.find("END\r\n").unwrap() + 5);
    assert!(version.starts_with("VERSION "));
    let mut keys: Vec<String> = dump_lines(dump).into_iter().map(|(k, _)| k).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 5_000, "every item once");
}

#[test]
fn a_metadump_behind_other_requests_is_refused() {
    let (store, _hand) = store(small());
    assert_eq!(
        text(talk(&store, b"mg foo v\r\nlru_crawler metadump all\r\n")),
        "EN\r\nERROR cannot pipeline other commands before metadump\r\n"
    );
}

#[test]
fn the_crawler_reclaims_on_a_crawl_and_can_be_turned_off() {
    let (store, hand) = store(StoreConfig {
        lru_crawler: false,
        ..small()
    });
    let settings = text(talk(&store, b"stats settings\r\n"));
    assert_eq!(stat(&settings, "lru_crawler").as_deref(), Some("no"));
    assert!(!store.crawler_enabled());
    assert_eq!(text(talk(&store, b"lru_crawler enable\r\n")), "OK\r\n");
    assert!(store.crawler_enabled());
    let settings = text(talk(&store, b"stats settings\r\n"));
    assert_eq!(stat(&settings, "lru_crawler").as_deref(), Some("yes"));

    let mut input = Vec::new();
    for i in 0..30 {
        input.extend_from_slice(
            format!("set s{i} 0 1 2 noreply\r\nok\r\nset i{i} 0 0 2 noreply\r\nok\r\n").as_bytes(),
        );
    }
    assert!(talk(&store, &input).is_empty());
    hand.advance(Duration::from_secs(3));
    assert_eq!(text(talk(&store, b"lru_crawler crawl 2\r\n")), "OK\r\n");
    let slabs = text(talk(&store, b"stats slabs\r\n"));
    assert_eq!(stat(&slabs, "1:used_chunks").as_deref(), Some("60"));
    assert_eq!(text(talk(&store, b"lru_crawler crawl 1\r\n")), "OK\r\n");
    let slabs = text(talk(&store, b"stats slabs\r\n"));
    assert_eq!(stat(&slabs, "1:used_chunks").as_deref(), Some("30"));
    let items = text(talk(&store, b"stats items\r\n"));
    assert_eq!(
        stat(&items, "items:1:crawler_reclaimed").as_deref(),
        Some("30")
    );
    assert_eq!(text(talk(&store, b"lru_crawler disable\r\n")), "OK\r\n");
    assert!(!store.crawler_enabled());
}

#[test]
fn with_dumps_disabled_neither_dump_lists_anything() {
    let (store, _hand) = store(StoreConfig {
        dump_enabled: false,
        ..small()
    });
    let _ = talk(&store, b"set k 0 0 1\r\nx\r\n");
    assert_eq!(
        text(talk(&store, b"stats cachedump 1 0\r\n")),
        "CLIENT_ERROR stats cachedump not allowed\r\n"
    );
    assert_eq!(
        text(talk(&store, b"lru_crawler metadump all\r\n")),
        "ERROR metadump not allowed\r\n"
    );
}

#[test]
fn crawls_and_dumps_are_refused_while_the_crawler_is_off() {
    let (store, _hand) = store(small());
    assert_eq!(
        text(talk(&store, b"lru_crawler enable\r\n")),
        "ERROR failed to start lru crawler thread\r\n"
    );
    assert_eq!(text(talk(&store, b"lru_crawler disable\r\n")), "OK\r\n");
    assert_eq!(text(talk(&store, b"lru_crawler disable\r\n")), "OK\r\n");
    assert_eq!(
        text(talk(&store, b"lru_crawler crawl all\r\n")),
        "CLIENT_ERROR lru crawler disabled\r\n"
    );
    assert_eq!(
        text(talk(&store, b"lru_crawler metadump all\r\n")),
        "CLIENT_ERROR lru crawler disabled\r\n"
    );
    assert_eq!(text(talk(&store, b"lru_crawler enable\r\n")), "OK\r\n");
    assert_eq!(
        text(talk(&store, b"lru_crawler metadump all\r\n")),
        "END\r\n"
    );
}

#[test]
fn cachedump_stops_at_two_mebibytes() {
    let (store, _hand) = store(StoreConfig {
        memory_limit: 256 << 20,
        ..small()
    });
    // Long and short keys mixed: after the first line that does not fit, a
    // shorter one would, but memcached stops there, and so must this.
    let mut input = Vec::new();
    let pad = "p".repeat(230);
    for i in 0..20_000 {
        let key = if i % 2 == 0 {
            format!("{pad}{i}")
        } else {
            format!("s{i}")
        };
        input.extend_from_slice(format!("set {key} 0 0 1 noreply\r\nx\r\n").as_bytes());
    }
    assert!(talk(&store, &input).is_empty());
    let dump = text(talk(&store, b"stats cachedump 1 0\r\n"));
    assert!(dump.ends_with("END\r\n"));
    let body = dump.len() - 5;
    assert!(body <= 2 << 20, "{body} bytes");
    let lines = dump.lines().count() - 1;
    assert!(lines < 20_000);
    assert!(dump.lines().all(|l| l == "END" || l.starts_with("ITEM ")));
    // It stopped at a long line that did not fit: less room is left than a
    // long line needs, and more than a short one would.
    let long_line = "ITEM ".len() + 230 + 5 + " [1 b; 0 s]\r\n".len();
    let room = (2 << 20) - body;
    assert!(room < long_line, "stopped early: {room} bytes left");
    // And nothing after it: the dump is the start of the store's order (the
    // order a metadump walks too), not a selection of what fitted.
    let dumped: Vec<&str> = dump
        .lines()
        .filter_map(|l| l.strip_prefix("ITEM ")?.split(' ').next())
        .collect();
    let meta = text(talk(&store, b"lru_crawler metadump all\r\n"));
    let all: Vec<String> = dump_lines(&meta).into_iter().map(|(k, _)| k).collect();
    assert_eq!(dumped, all[..dumped.len()]);
}

#[test]
fn concurrent_memory_limit_changes_leave_the_store_consistent() {
    let (store, _hand) = store(StoreConfig {
        memory_limit: 64 << 20,
        ..small()
    });
    std::thread::scope(|s| {
        for limit in [16u64, 48] {
            let store = &store;
            s.spawn(move || {
                for _ in 0..200 {
                    assert!(store.set_memory_limit(limit << 20));
                }
            });
        }
        s.spawn(|| {
            for i in 0..20_000 {
                let _ = talk(
                    &store,
                    format!("set k{i} 0 0 100 noreply\r\n{}\r\n", "v".repeat(100)).as_bytes(),
                );
            }
        });
    });
    let limit = store.memory_limit();
    assert!(limit == 16 << 20 || limit == 48 << 20);
    // The cache's capacity moved with the limit: filling past it evicts
    // down to it.
    for i in 0..400_000 {
        let _ = talk(
            &store,
            format!("set f{i} 0 0 100 noreply\r\n{}\r\n", "v".repeat(100)).as_bytes(),
        );
        if i % 50_000 == 0 {
            store.validate();
        }
    }
    let bytes: u64 = stat(&text(talk(&store, b"stats\r\n")), "bytes")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        bytes <= limit && bytes > limit - (limit / 8),
        "bytes {bytes} of {limit}"
    );
}

#[test]
fn a_read_that_meets_an_expired_item_counts_in_get_expired_once() {
    let (store, hand) = store(small());
    let _ = talk(&store, b"set k 0 1 1\r\nx\r\n");
    hand.advance(Duration::from_secs(2));
    assert_eq!(
        text(talk(&store, b"get k\r\nget k\r\nget nothing\r\n")),
        "END\r\nEND\r\nEND\r\n"
    );
    let stats = text(talk(&store, b"stats\r\n"));
    // The first read unlinks it, as memcached's fetch does.
    assert_eq!(stat(&stats, "get_expired").as_deref(), Some("1"));
    assert_eq!(stat(&stats, "get_misses").as_deref(), Some("3"));
    assert_eq!(stat(&stats, "curr_items").as_deref(), Some("0"));
    // Meta reads count too.
    let _ = talk(&store, b"set m 0 1 1\r\nx\r\n");
    hand.advance(Duration::from_secs(2));
    assert_eq!(text(talk(&store, b"mg m v\r\n")), "EN\r\n");
    let stats = text(talk(&store, b"stats\r\n"));
    assert_eq!(stat(&stats, "get_expired").as_deref(), Some("2"));
}

#[test]
fn a_crawl_goes_round_every_slot_of_a_large_shard() {
    let (store, hand) = store(StoreConfig {
        memory_limit: 64 << 20,
        shards: Some(1),
        ..small()
    });
    let mut input = Vec::new();
    for i in 0..20_000 {
        input.extend_from_slice(format!("set t{i} 0 5 1 noreply\r\nx\r\n").as_bytes());
    }
    assert!(talk(&store, &input).is_empty());
    let _ = talk(&store, b"set keep 0 0 1\r\nx\r\n");
    hand.advance(Duration::from_secs(5));
    assert_eq!(text(talk(&store, b"lru_crawler crawl all\r\n")), "OK\r\n");
    let stats = text(talk(&store, b"stats\r\n"));
    assert_eq!(stat(&stats, "curr_items").as_deref(), Some("1"));
    assert_eq!(stat(&stats, "crawler_reclaimed").as_deref(), Some("20000"));
}

/// `slabs automove` switches the page mover as memcached's switches its
/// slab automover, and `stats settings` follows; a store configured
/// without it starts with it off.
#[test]
fn slabs_automove_switches_the_page_mover() {
    let (store, _hand) = store(small());
    assert!(store.page_mover_enabled());
    let settings = || text(talk(&store, b"stats settings\r\n"));
    assert_eq!(stat(&settings(), "slab_automove").as_deref(), Some("1"));
    assert_eq!(stat(&settings(), "slab_reassign").as_deref(), Some("yes"));
    assert_eq!(text(talk(&store, b"slabs automove 0\r\n")), "OK\r\n");
    assert!(!store.page_mover_enabled());
    assert_eq!(stat(&settings(), "slab_automove").as_deref(), Some("0"));
    assert_eq!(text(talk(&store, b"slabs automove 2\r\n")), "OK\r\n");
    assert!(store.page_mover_enabled());
    assert!(talk(&store, b"slabs automove 0 noreply\r\n").is_empty());
    assert!(!store.page_mover_enabled());
    let (off, _hand) = store_without_mover();
    assert!(!off.page_mover_enabled());
    assert_eq!(
        stat(&text(talk(&off, b"stats settings\r\n")), "slab_automove").as_deref(),
        Some("0")
    );
}

fn store_without_mover() -> (Store, ManualClock) {
    store(StoreConfig {
        page_mover: false,
        ..small()
    })
}
