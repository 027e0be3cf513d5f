//! The server end to end: a third-party client (the `memcache` crate, over
//! the ASCII protocol and over its default, the binary protocol) for every
//! command family, and raw sockets for what a client
//! library hides (pipelining, meta commands, limits, timeouts). Servers run
//! in-process on 127.0.0.1 port 0, except where the test needs a process of
//! its own (signals, exit codes, memory).
#![cfg(feature = "server")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use larder::memcached::StoreConfig;
use larder::server::{Server, ServerConfig};

mod common;

use common::{read_to_close, read_until, request, TestServer, PATIENCE};

// ---- the memcache crate, one command family per test ----------------------

#[test]
fn client_set_then_get_returns_the_value_and_a_miss_is_none() {
    let server = TestServer::default();
    let client = server.client();
    client.set("greeting", "hello", 0).unwrap();
    assert_eq!(
        client.get::<String>("greeting").unwrap().as_deref(),
        Some("hello")
    );
    assert_eq!(client.get::<String>("nothing").unwrap(), None);
    client.set("number", 42u64, 0).unwrap();
    assert_eq!(client.get::<u64>("number").unwrap(), Some(42));
}

#[test]
fn client_set_and_get_a_value_larger_than_one_read_batch() {
    let server = TestServer::default();
    let client = server.client();
    let value: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    client.set("big", &value[..], 0).unwrap();
    assert_eq!(client.get::<Vec<u8>>("big").unwrap(), Some(value));
}

#[test]
fn client_gets_returns_every_present_key() {
    let server = TestServer::default();
    let client = server.client();
    client.set("a", "1", 0).unwrap();
    client.set("b", "2", 0).unwrap();
    let got: HashMap<String, String> = client.gets(&["a", "b", "missing"]).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got["a"], "1");
    assert_eq!(got["b"], "2");
}

#[test]
fn client_cas_succeeds_with_the_current_unique_and_fails_after_a_change() {
    let server = TestServer::default();
    let client = server.client();
    client.set("k", "v1", 0).unwrap();
    let (_, _, cas): (String, u32, Option<u64>) = client.get("k").unwrap().unwrap();
    let cas = cas.unwrap();
    assert!(client.cas("k", "v2", 0, cas).unwrap());
    assert!(!client.cas("k", "v3", 0, cas).unwrap());
    assert_eq!(client.get::<String>("k").unwrap().as_deref(), Some("v2"));
}

#[test]
fn client_add_only_adds_and_replace_only_replaces() {
    let server = TestServer::default();
    let client = server.client();
    // The crate maps NOT_STORED to Ok(()), so check what was stored.
    client.replace("k", "r", 0).unwrap();
    assert_eq!(client.get::<String>("k").unwrap(), None);
    client.add("k", "a", 0).unwrap();
    client.add("k", "b", 0).unwrap();
    assert_eq!(client.get::<String>("k").unwrap().as_deref(), Some("a"));
    client.replace("k", "c", 0).unwrap();
    assert_eq!(client.get::<String>("k").unwrap().as_deref(), Some("c"));
}

#[test]
fn client_append_and_prepend_extend_the_value() {
    let server = TestServer::default();
    let client = server.client();
    client.set("k", "mid", 0).unwrap();
    client.append("k", "-end").unwrap();
    client.prepend("k", "start-").unwrap();
    assert_eq!(
        client.get::<String>("k").unwrap().as_deref(),
        Some("start-mid-end")
    );
    client.append("missing", "x").unwrap();
    assert_eq!(client.get::<String>("missing").unwrap(), None);
}

#[test]
fn client_increment_and_decrement_count_and_clamp_at_zero() {
    let server = TestServer::default();
    let client = server.client();
    client.set("n", 10u64, 0).unwrap();
    assert_eq!(client.increment("n", 5).unwrap(), 15);
    assert_eq!(client.decrement("n", 3).unwrap(), 12);
    assert_eq!(client.decrement("n", 100).unwrap(), 0);
    assert!(client.increment("missing", 1).is_err());
}

#[test]
fn client_delete_removes_and_reports_whether_the_key_existed() {
    let server = TestServer::default();
    let client = server.client();
    client.set("k", "v", 0).unwrap();
    assert!(client.delete("k").unwrap());
    assert!(!client.delete("k").unwrap());
    assert_eq!(client.get::<String>("k").unwrap(), None);
}

#[test]
fn client_touch_reports_whether_the_key_exists() {
    let server = TestServer::default();
    let client = server.client();
    client.set("k", "v", 0).unwrap();
    assert!(client.touch("k", 3600).unwrap());
    assert!(!client.touch("missing", 3600).unwrap());
    assert_eq!(client.get::<String>("k").unwrap().as_deref(), Some("v"));
}

#[test]
fn client_flush_empties_the_cache() {
    let server = TestServer::default();
    let client = server.client();
    client.set("a", "1", 0).unwrap();
    client.set("b", "2", 0).unwrap();
    client.flush().unwrap();
    assert_eq!(client.get::<String>("a").unwrap(), None);
    assert_eq!(client.get::<String>("b").unwrap(), None);
    client.set("c", "3", 0).unwrap();
    client.flush_with_delay(3600).unwrap();
    assert_eq!(client.get::<String>("c").unwrap().as_deref(), Some("3"));
}

/// The crate's ASCII `stats` stops at the first line (it returns an empty
/// map from memcached too), so stats are read raw, after the crate's traffic.
#[test]
fn stats_report_memcacheds_fields_after_client_traffic() {
    let server = TestServer::start(ServerConfig {
        threads: 2,
        store: StoreConfig {
            memory_limit: 8 << 20,
            ..StoreConfig::default()
        },
        ..ServerConfig::default()
    });
    let client = server.client();
    client.set("k", "v", 0).unwrap();
    let _ = client.get::<String>("k").unwrap();
    let mut conn = server.connect();
    let text = request(&mut conn, b"stats\r\n", b"END\r\n");
    let stats: HashMap<&str, &str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    assert_eq!(stats["pid"], std::process::id().to_string());
    assert_eq!(stats["curr_connections"], "2");
    assert_eq!(stats["total_connections"], "2");
    assert_eq!(stats["rejected_connections"], "0");
    assert_eq!(stats["threads"], "2");
    assert_eq!(stats["cmd_get"], "1");
    assert_eq!(stats["get_hits"], "1");
    assert_eq!(stats["curr_items"], "1");
    assert_eq!(stats["limit_maxbytes"], (8u64 << 20).to_string());
    for name in ["uptime", "time", "version", "evictions", "bytes"] {
        assert!(stats.contains_key(name), "no {name}");
    }
}

#[test]
fn client_version_is_memcacheds_release_number() {
    let server = TestServer::default();
    let versions = server.client().version().unwrap();
    assert_eq!(versions.len(), 1);
    assert_eq!(versions[0].1, larder::memcached::MEMCACHED_VERSION);
    // libmemcached reads a non-zero major, a minor and a micro number, and
    // Perl's version->parse takes nothing else.
    let numbers: Vec<&str> = versions[0].1.split('.').collect();
    assert_eq!(numbers, ["1", "6", "18"]);
}

// ---- the memcache crate over the binary protocol ---------------------------

#[test]
fn binary_client_set_get_and_miss() {
    let server = TestServer::default();
    let client = server.binary_client();
    client.set("greeting", "hello", 0).unwrap();
    assert_eq!(
        client.get::<String>("greeting").unwrap().as_deref(),
        Some("hello")
    );
    assert_eq!(client.get::<String>("nothing").unwrap(), None);
    let value: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    client.set("big", &value[..], 0).unwrap();
    assert_eq!(client.get::<Vec<u8>>("big").unwrap(), Some(value));
}

#[test]
fn binary_client_multi_get_uses_getkq_and_skips_misses() {
    let server = TestServer::default();
    let client = server.binary_client();
    client.set("a", "1", 0).unwrap();
    client.set("b", "2", 0).unwrap();
    let got: HashMap<String, String> = client.gets(&["a", "missing", "b"]).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!((got["a"].as_str(), got["b"].as_str()), ("1", "2"));
}

#[test]
fn binary_client_cas_add_replace() {
    let server = TestServer::default();
    let client = server.binary_client();
    client.set("k", "v1", 0).unwrap();
    let (_, _, cas): (String, u32, Option<u64>) = client.get("k").unwrap().unwrap();
    let cas = cas.expect("binary GET returns the CAS");
    assert!(client.cas("k", "v2", 0, cas).unwrap());
    assert!(!client.cas("k", "v3", 0, cas).unwrap());
    assert_eq!(client.get::<String>("k").unwrap().as_deref(), Some("v2"));
    // Over binary the crate reports ADD on a present key and REPLACE on a
    // missing one as errors (status 2 and 1).
    assert!(client.add("k", "a", 0).is_err());
    assert!(client.replace("nope", "r", 0).is_err());
    client.add("fresh", "a", 0).unwrap();
    client.replace("fresh", "b", 0).unwrap();
    assert_eq!(client.get::<String>("fresh").unwrap().as_deref(), Some("b"));
}

#[test]
fn binary_client_append_prepend() {
    let server = TestServer::default();
    let client = server.binary_client();
    client.set("k", "mid", 0).unwrap();
    client.append("k", "-end").unwrap();
    client.prepend("k", "start-").unwrap();
    assert_eq!(
        client.get::<String>("k").unwrap().as_deref(),
        Some("start-mid-end")
    );
    assert!(client.append("missing", "x").is_err(), "NOT_STORED");
}

#[test]
fn binary_client_counters_create_count_and_clamp() {
    let server = TestServer::default();
    let client = server.binary_client();
    client.set("n", 10u64, 0).unwrap();
    assert_eq!(client.increment("n", 5).unwrap(), 15);
    assert_eq!(client.decrement("n", 3).unwrap(), 12);
    assert_eq!(client.decrement("n", 100).unwrap(), 0);
    // The crate sends initial 0, expiration 0: a missing counter is created.
    assert_eq!(client.increment("fresh", 7).unwrap(), 0);
    assert_eq!(client.increment("fresh", 7).unwrap(), 7);
    client.set("text", "abc", 0).unwrap();
    assert!(client.increment("text", 1).is_err(), "non-numeric");
}

#[test]
fn binary_client_delete_touch_flush() {
    let server = TestServer::default();
    let client = server.binary_client();
    client.set("k", "v", 0).unwrap();
    assert!(client.touch("k", 3600).unwrap());
    assert!(!client.touch("missing", 3600).unwrap());
    assert!(client.delete("k").unwrap());
    assert!(!client.delete("k").unwrap());
    client.set("a", "1", 0).unwrap();
    client.flush().unwrap();
    assert_eq!(client.get::<String>("a").unwrap(), None);
    client.set("c", "3", 0).unwrap();
    client.flush_with_delay(3600).unwrap();
    assert_eq!(client.get::<String>("c").unwrap().as_deref(), Some("3"));
}

#[test]
fn binary_client_version_and_stats() {
    let server = TestServer::default();
    let client = server.binary_client();
    client.set("k", "v", 0).unwrap();
    let _ = client.get::<String>("k").unwrap();
    let versions = client.version().unwrap();
    assert_eq!(versions[0].1, larder::memcached::MEMCACHED_VERSION);
    let stats = client.stats().unwrap();
    let stats = &stats[0].1;
    assert_eq!(stats["cmd_get"], "1");
    assert_eq!(stats["get_hits"], "1");
    assert_eq!(stats["curr_items"], "1");
    assert_eq!(stats["pid"], std::process::id().to_string());
}

// ---- raw sockets ------------------------------------------------------------

#[test]
fn pipelined_requests_are_answered_in_order() {
    let server = TestServer::default();
    let mut conn = server.connect();
    let mut input = Vec::new();
    let mut want = String::new();
    for i in 0..2000 {
        input.extend_from_slice(
            format!("set k{i} 0 0 {}\r\n{i}\r\n", i.to_string().len()).as_bytes(),
        );
        input.extend_from_slice(format!("get k{i}\r\n").as_bytes());
        want.push_str(&format!(
            "STORED\r\nVALUE k{i} 0 {}\r\n{i}\r\nEND\r\n",
            i.to_string().len()
        ));
    }
    input.extend_from_slice(b"mn\r\n");
    want.push_str("MN\r\n");
    assert_eq!(request(&mut conn, &input, b"MN\r\n"), want);
}

#[test]
fn a_request_split_across_writes_is_answered_once_whole() {
    let server = TestServer::default();
    let mut conn = server.connect();
    for piece in [
        &b"se"[..],
        b"t k 0 0 5\r",
        b"\nhel",
        b"lo\r\nget",
        b" k\r\n",
    ] {
        conn.write_all(piece).unwrap();
        conn.flush().unwrap();
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        read_until(&mut conn, b"END\r\n"),
        "STORED\r\nVALUE k 0 5\r\nhello\r\nEND\r\n"
    );
}

#[test]
fn meta_commands_set_get_arithmetic_and_delete() {
    let server = TestServer::default();
    let mut conn = server.connect();
    let reply = request(
        &mut conn,
        b"ms k 2 T0 F5\r\nhi\r\nmg k v f\r\nms n 1\r\n7\r\nma n D3\r\nmg n v\r\nmd k\r\nmg k v\r\nmn\r\n",
        b"MN\r\n",
    );
    assert_eq!(
        reply,
        "HD\r\nVA 2 f5\r\nhi\r\nHD\r\nHD\r\nVA 2\r\n10\r\nHD\r\nEN\r\nMN\r\n"
    );
}

#[test]
fn a_huge_multi_get_is_answered_in_full_without_buffering_it_all() {
    let server = TestServer::start(ServerConfig {
        output_limit: 64 << 10,
        ..ServerConfig::default()
    });
    let mut conn = server.connect();
    let value = vec![b'x'; 100_000];
    let mut input = b"set big 0 0 100000\r\n".to_vec();
    input.extend_from_slice(&value);
    input.extend_from_slice(b"\r\n");
    assert_eq!(request(&mut conn, &input, b"\r\n"), "STORED\r\n");
    // 500 copies of a 100 kB value: 50 MB of replies to one line.
    let line = format!("get{}\r\n", " big".repeat(500));
    conn.write_all(line.as_bytes()).unwrap();
    let mut total = 0usize;
    let mut tail = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    while !tail.ends_with(b"END\r\n") {
        let n = common::read_some(&mut conn, &mut buf).unwrap();
        assert!(n > 0);
        total += n;
        tail.extend_from_slice(&buf[..n]);
        let keep = tail.len().saturating_sub(8);
        tail.drain(..keep);
    }
    let one = "VALUE big 0 100000\r\n".len() + 100_002;
    assert_eq!(total, 500 * one + 5);
    assert_eq!(server.stat("get_hits"), 500);
}

#[test]
fn connections_over_the_limit_are_told_and_closed() {
    let server = TestServer::start(ServerConfig {
        conn_limit: 2,
        ..ServerConfig::default()
    });
    let mut first = server.connect();
    let mut second = server.connect();
    assert!(request(&mut first, b"version\r\n", b"\r\n").starts_with("VERSION "));
    assert!(request(&mut second, b"version\r\n", b"\r\n").starts_with("VERSION "));
    let mut third = server.connect();
    assert_eq!(
        read_to_close(&mut third),
        b"ERROR Too many open connections\r\n"
    );
    drop(first);
    // `stats` itself needs a slot: wait until the first one is given back.
    let start = Instant::now();
    loop {
        let mut conn = server.connect();
        // Either the stats and a close (quit), or the rejection and a close.
        let _ = conn.write_all(b"stats\r\nquit\r\n");
        let reply = read_to_close(&mut conn);
        let text = String::from_utf8_lossy(&reply);
        if let Some(line) = text
            .lines()
            .find(|l| l.starts_with("STAT rejected_connections "))
        {
            let rejected: u64 = line.rsplit(' ').next().unwrap().parse().unwrap();
            assert!(rejected >= 1);
            break;
        }
        assert!(start.elapsed() < PATIENCE, "no slot came back: {text}");
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn an_idle_connection_holding_a_partial_command_is_closed() {
    let server = TestServer::start(ServerConfig {
        idle_timeout: Some(Duration::from_millis(300)),
        ..ServerConfig::default()
    });
    let mut conn = server.connect();
    conn.write_all(b"set k 0 0 10\r\nhal").unwrap();
    let start = Instant::now();
    assert_eq!(read_to_close(&mut conn), b"");
    assert!(start.elapsed() < PATIENCE);
}

#[test]
fn a_slowloris_trickling_bytes_is_closed_after_the_idle_timeout() {
    let server = TestServer::start(ServerConfig {
        idle_timeout: Some(Duration::from_millis(500)),
        ..ServerConfig::default()
    });
    let mut conn = server.connect();
    conn.set_write_timeout(Some(PATIENCE)).unwrap();
    let start = Instant::now();
    // One byte of a never-ending key every 50 ms: the connection is busy but
    // completes no command.
    let closed = loop {
        if conn.write_all(b"g").is_err() || start.elapsed() > PATIENCE {
            break start.elapsed() <= PATIENCE;
        }
        thread::sleep(Duration::from_millis(50));
        if server.stat("curr_connections") == 1 {
            // Only the stats connection is left.
            break true;
        }
    };
    assert!(closed, "the trickling connection stayed open");
}

#[test]
fn an_active_connection_outlives_the_idle_timeout() {
    let server = TestServer::start(ServerConfig {
        idle_timeout: Some(Duration::from_millis(300)),
        ..ServerConfig::default()
    });
    let mut conn = server.connect();
    for _ in 0..10 {
        assert_eq!(request(&mut conn, b"mn\r\n", b"\r\n"), "MN\r\n");
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn quit_closes_the_connection_without_a_reply() {
    let server = TestServer::default();
    let mut conn = server.connect();
    conn.write_all(b"quit\r\n").unwrap();
    assert_eq!(read_to_close(&mut conn), b"");
}

#[test]
fn a_line_over_the_limit_is_an_error_and_closes() {
    let server = TestServer::default();
    let mut conn = server.connect();
    conn.write_all(&vec![b'a'; 10_000]).unwrap();
    let reply = read_to_close(&mut conn);
    assert!(
        reply.starts_with(b"CLIENT_ERROR") || reply.starts_with(b"ERROR"),
        "{reply:?}"
    );
    let mut fresh = server.connect();
    assert!(request(&mut fresh, b"version\r\n", b"\r\n").starts_with("VERSION "));
}

#[test]
fn the_shutdown_command_stops_the_server_when_enabled() {
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let server = Server::bind(ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                store: StoreConfig {
                    enable_shutdown: true,
                    ..StoreConfig::default()
                },
                ..ServerConfig::default()
            })
            .await
            .unwrap();
            tx.send(server.local_addr()).unwrap();
            server.run(std::future::pending()).await.unwrap();
        });
    });
    let addr = rx.recv_timeout(PATIENCE).unwrap();
    let mut conn = TcpStream::connect(addr).unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    conn.write_all(b"shutdown\r\n").unwrap();
    let start = Instant::now();
    while !thread.is_finished() {
        assert!(start.elapsed() < PATIENCE, "still running");
        thread::sleep(Duration::from_millis(20));
    }
    thread.join().unwrap();
    assert!(TcpStream::connect(addr).is_err());
}

// ---- the binary ---------------------------------------------------------------

/// `larder-server` as a child process, killed when dropped.
struct Binary {
    child: Child,
    addr: SocketAddr,
}

impl Binary {
    fn start(args: &[&str]) -> Binary {
        let mut command = Command::new(env!("CARGO_BIN_EXE_larder-server"));
        command.args(["-p", "0"]).args(args);
        Binary::spawn(command)
    }

    /// Starts `command` and waits for its `listening on` line.
    fn spawn(mut command: Command) -> Binary {
        let mut child = command.stderr(Stdio::piped()).spawn().unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        // Keep draining stderr so logging never blocks the server.
        thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        Binary { child, addr }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream
    }

    fn curr_connections(&self) -> u64 {
        let mut conn = self.connect();
        let text = request(&mut conn, b"stats\r\n", b"END\r\n");
        text.lines()
            .find_map(|l| l.strip_prefix("STAT curr_connections "))
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_binary_rejects_bad_flags_with_status_2_and_a_usage_line() {
    for args in [&["--bogus"][..], &["-p", "nope"], &["-m"], &["-I", "5g"]] {
        let output = Command::new(env!("CARGO_BIN_EXE_larder-server"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("usage: larder-server"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn the_binary_prints_help_and_version() {
    let help = Command::new(env!("CARGO_BIN_EXE_larder-server"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("--idle-timeout"));
    let version = Command::new(env!("CARGO_BIN_EXE_larder-server"))
        .arg("--version")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        concat!("larder-server ", env!("CARGO_PKG_VERSION"))
    );
}

#[cfg(unix)]
#[test]
fn the_binary_stops_cleanly_on_sigterm() {
    let mut server = Binary::start(&[]);
    let mut conn = server.connect();
    assert!(request(&mut conn, b"version\r\n", b"\r\n").starts_with("VERSION "));
    let killed = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(start.elapsed() < PATIENCE, "still running after SIGTERM");
        thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    // The open connection was closed, not reset mid-reply.
    assert_eq!(read_to_close(&mut conn), b"");
}

#[cfg(target_os = "linux")]
#[test]
fn a_client_that_never_reads_is_disconnected_with_bounded_memory() {
    let server = Binary::start(&["--idle-timeout", "1", "-m", "64"]);
    let mut setup = server.connect();
    let mut input = b"set big 0 0 500000\r\n".to_vec();
    input.extend(std::iter::repeat_n(b'x', 500_000));
    input.extend_from_slice(b"\r\n");
    assert_eq!(request(&mut setup, &input, b"\r\n"), "STORED\r\n");
    drop(setup);
    let before = server.rss_kib();
    // Ask for 4000 x 500 kB = 2 GB of replies and never read any of it.
    let mut greedy = server.connect();
    greedy.set_write_timeout(Some(PATIENCE)).unwrap();
    let line = b"get big big big big big big big big big big\r\n".repeat(400);
    let _ = greedy.write_all(&line);
    let start = Instant::now();
    let mut peak = 0;
    loop {
        peak = peak.max(server.rss_kib());
        if server.curr_connections() == 1 {
            break;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the greedy client is still connected"
        );
        thread::sleep(Duration::from_millis(50));
    }
    // Replies are buffered ~256 kB at a time (plus one value); allow 32 MB
    // for allocator slack, far below the 2 GB asked for.
    assert!(
        peak < before + 32 * 1024,
        "RSS went from {before} kB to {peak} kB"
    );
    drop(greedy);
}

/// The value of `name` in a stats reply.
fn stat_of(text: &str, name: &str) -> String {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("STAT {name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
        .to_owned()
}

#[test]
fn the_binary_takes_memcacheds_f_b_r_and_backlog_flags() {
    let server = Binary::start(&["-F", "-R", "1", "-b", "77", "-B", "ascii"]);
    let mut conn = server.connect();
    let settings = request(&mut conn, b"stats settings\r\n", b"END\r\n");
    assert_eq!(stat_of(&settings, "tcp_backlog"), "77");
    assert_eq!(stat_of(&settings, "reqs_per_event"), "1");
    assert_eq!(stat_of(&settings, "binding_protocol"), "ascii");
    assert_eq!(stat_of(&settings, "flush_enabled"), "no");
    assert_eq!(
        request(&mut conn, b"flush_all\r\n", b"\r\n"),
        "CLIENT_ERROR flush_all not allowed\r\n"
    );
    // Six pipelined sets, at most one answered per turn: five turns given up.
    let sets = b"set k 0 0 1\r\nv\r\n".repeat(6);
    let replies = request(&mut conn, &sets, &b"STORED\r\n".repeat(6));
    assert_eq!(replies, "STORED\r\n".repeat(6));
    let stats = request(&mut conn, b"stats\r\n", b"END\r\n");
    let yields: u64 = stat_of(&stats, "conn_yields").parse().unwrap();
    assert!(yields >= 5, "conn_yields {yields}");
}

#[test]
fn a_binary_only_server_closes_a_text_client() {
    let server = Binary::start(&["-B", "binary"]);
    let mut conn = server.connect();
    conn.write_all(b"Here's a bunch of garbage that doesn't look like the bin prot.")
        .unwrap();
    assert_eq!(read_to_close(&mut conn), b"");
}

#[test]
fn idle_kicks_count_connections_closed_for_idling() {
    let server = Binary::start(&["-o", "idle_timeout=1"]);
    let mut watcher = server.connect();
    let stats = request(&mut watcher, b"stats\r\n", b"END\r\n");
    assert_eq!(stat_of(&stats, "idle_kicks"), "0");
    let mut idle = server.connect();
    assert_eq!(read_to_close(&mut idle), b"");
    let mut fresh = server.connect();
    let stats = request(&mut fresh, b"stats\r\n", b"END\r\n");
    // The watcher idled out too, unless it was kicked after this reply.
    let kicks: u64 = stat_of(&stats, "idle_kicks").parse().unwrap();
    assert!(kicks >= 1, "idle_kicks {kicks}");
}

#[test]
fn the_port_file_names_the_port_chosen() {
    let file = std::env::temp_dir().join(format!("larder-port-{}", std::process::id()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_larder-server"));
    command
        .args(["-p", "-1"])
        .env("MEMCACHED_PORT_FILENAME", &file);
    let server = Binary::spawn(command);
    let written = std::fs::read_to_string(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    assert_eq!(written, format!("TCP INET: {}\n", server.addr.port()));
}

/// `also_listen` (memcached's `-l A,B`): the server answers on every
/// address; one given port 0 takes the port `listen` got, so a client
/// resolving `localhost` to `::1` finds the server on the same port.
#[test]
fn a_server_answers_on_every_address_it_listens_on() {
    let v6 = std::net::TcpListener::bind("[::1]:0").is_ok();
    let also: SocketAddr = if v6 { "[::1]:0" } else { "127.0.0.2:0" }.parse().unwrap();
    if !v6 && std::net::TcpListener::bind("127.0.0.2:0").is_err() {
        eprintln!("neither ::1 nor 127.0.0.2 can be bound here: nothing to check");
        return;
    }
    let server = TestServer::start(ServerConfig {
        also_listen: vec![also],
        ..ServerConfig::default()
    });
    let other = SocketAddr::new(also.ip(), server.addr.port());
    for addr in [server.addr, other] {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(PATIENCE)).unwrap();
        assert_eq!(
            request(&mut conn, b"set k 0 0 1\r\nx\r\nget k\r\n", b"END\r\n"),
            "STORED\r\nVALUE k 0 1\r\nx\r\nEND\r\n",
            "{addr}"
        );
    }
}
