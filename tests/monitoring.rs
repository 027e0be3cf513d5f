//! What monitoring tools see: every `stats` group they send answers to the
//! end, the traffic and CPU figures are real, and the Prometheus endpoint
//! serves the memcached exporter's metric names with the same values.
#![cfg(feature = "server")]

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;

use common::{read_to_close, read_until, request, TestServer, PATIENCE};
use larder::server::ServerConfig;

fn with_metrics() -> TestServer {
    TestServer::start(ServerConfig {
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    })
}

/// `stats [group]` on `conn`, as a map of its `STAT` lines.
fn stats(conn: &mut TcpStream, group: &str) -> HashMap<String, String> {
    let line = if group.is_empty() {
        "stats\r\n".to_string()
    } else {
        format!("stats {group}\r\n")
    };
    let text = request(conn, line.as_bytes(), b"END\r\n");
    text.lines()
        .filter_map(|l| l.strip_prefix("STAT "))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Sends one HTTP/1.1 request to the metrics endpoint; returns the status
/// line, the headers and the body.
fn http(server: &TestServer, method: &str, path: &str) -> (String, String, String) {
    let mut conn = TcpStream::connect(server.metrics.expect("metrics are on")).unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    let head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).unwrap();
    let reply = String::from_utf8(read_to_close(&mut conn)).unwrap();
    let (head, body) = reply.split_once("\r\n\r\n").unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap();
    (status.to_string(), headers.to_lowercase(), body.to_string())
}

fn metrics(server: &TestServer) -> String {
    let (status, headers, body) = http(server, "GET", "/metrics");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(headers.contains("content-type: application/openmetrics-text"));
    body
}

#[test]
fn the_exporters_four_stats_commands_each_end_with_end_on_one_connection() {
    let server = TestServer::default();
    let mut conn = server.connect();
    request(&mut conn, b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    for _ in 0..3 {
        for command in ["stats", "stats slabs", "stats items", "stats settings"] {
            let reply = request(&mut conn, format!("{command}\r\n").as_bytes(), b"END\r\n");
            assert!(
                reply.lines().all(|l| l.starts_with("STAT ") || l == "END"),
                "{reply}"
            );
        }
    }
}

#[test]
fn stats_has_every_figure_the_exporter_needs() {
    let server = TestServer::default();
    let mut conn = server.connect();
    let general = stats(&mut conn, "");
    for name in [
        "cmd_set",
        "cas_hits",
        "cas_misses",
        "cas_badval",
        "rusage_user",
        "rusage_system",
        "bytes_read",
        "bytes_written",
        "accepting_conns",
        "listen_disabled_num",
        "conn_yields",
        "curr_connections",
        "total_connections",
        "rejected_connections",
        "limit_maxbytes",
    ] {
        assert!(general.contains_key(name), "no {name} in stats");
    }
    assert!(stats(&mut conn, "slabs").contains_key("total_malloced"));
    assert_eq!(stats(&mut conn, "settings")["maxconns"], "1024");
}

#[test]
fn rusage_is_seconds_dot_six_digit_microseconds() {
    let server = TestServer::default();
    let mut conn = server.connect();
    let general = stats(&mut conn, "");
    for name in ["rusage_user", "rusage_system"] {
        let (secs, micros) = general[name].split_once('.').unwrap();
        assert!(secs.parse::<u64>().is_ok(), "{name} = {}", general[name]);
        assert_eq!(micros.len(), 6, "{name} = {}", general[name]);
        assert!(micros.parse::<u32>().is_ok(), "{name} = {}", general[name]);
    }
}

#[test]
fn bytes_read_and_written_count_the_wire() {
    let server = TestServer::default();
    let mut conn = server.connect();
    request(&mut conn, b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    request(&mut conn, b"get k\r\n", b"END\r\n");
    // The stats line itself has been read when the figures are taken; its
    // reply has not been written yet.
    let general = stats(&mut conn, "");
    assert_eq!(general["bytes_read"], (16 + 7 + 7).to_string());
    assert_eq!(general["bytes_written"], (8 + 21).to_string());
}

#[test]
fn closed_connections_keep_their_traffic_in_the_totals() {
    let server = TestServer::default();
    let mut first = server.connect();
    request(&mut first, b"version\r\n", b"\r\n");
    first.shutdown(std::net::Shutdown::Both).unwrap();
    drop(first);
    let mut conn = server.connect();
    // Wait for the first connection to be gone; its bytes stay counted.
    let give_up = std::time::Instant::now() + PATIENCE;
    while stats(&mut conn, "")["curr_connections"] != "1" {
        assert!(
            std::time::Instant::now() < give_up,
            "the first connection never closed"
        );
        std::thread::yield_now();
    }
    let general = stats(&mut conn, "");
    let read: u64 = general["bytes_read"].parse().unwrap();
    assert!(read >= 9 + 7, "bytes_read {read}");
}

#[test]
fn stats_reset_zeroes_traffic_and_connection_totals() {
    let server = TestServer::default();
    let mut conn = server.connect();
    request(&mut conn, b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    request(&mut conn, b"stats reset\r\n", b"RESET\r\n");
    let general = stats(&mut conn, "");
    assert_eq!(general["bytes_read"], "7");
    assert_eq!(general["bytes_written"], "7");
    assert_eq!(general["total_connections"], "0");
    assert_eq!(general["cmd_set"], "0");
    assert_eq!(general["curr_connections"], "1");
}

#[test]
fn stats_conns_lists_the_listener_and_each_open_connection() {
    let server = TestServer::default();
    let mut other = server.connect();
    request(&mut other, b"version\r\n", b"\r\n");
    let mut conn = server.connect();
    let conns = stats(&mut conn, "conns");
    assert_eq!(conns["0:state"], "conn_listening");
    assert_eq!(conns["0:addr"], format!("tcp:{}", server.addr));
    let peers: Vec<_> = conns
        .iter()
        .filter(|(k, _)| k.ends_with(":addr") && !k.starts_with("0:"))
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(peers.len(), 2, "{conns:?}");
    assert!(peers.contains(&format!("tcp:{}", conn.local_addr().unwrap())));
    assert!(peers.contains(&format!("tcp:{}", other.local_addr().unwrap())));
    assert!(conns.values().any(|v| v == "conn_parse_cmd"), "{conns:?}");
}

#[test]
fn unknown_stats_groups_are_client_errors() {
    let server = TestServer::default();
    let mut conn = server.connect();
    assert_eq!(
        request(&mut conn, b"stats nonsense\r\n", b"\r\n"),
        "CLIENT_ERROR unknown stats group\r\n"
    );
    // The connection goes on.
    assert_eq!(
        request(&mut conn, b"stats sizes\r\n", b"END\r\n"),
        "STAT sizes_status disabled\r\nEND\r\n"
    );
}

#[test]
fn the_metrics_endpoint_is_off_by_default() {
    assert!(ServerConfig::default().metrics_listen.is_none());
    assert!(TestServer::default().metrics.is_none());
}

#[test]
fn the_metrics_endpoint_serves_the_exporters_names_with_the_stats_values() {
    let server = with_metrics();
    let mut conn = server.connect();
    request(&mut conn, b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    request(&mut conn, b"get k\r\nget nope\r\n", b"END\r\nEND\r\n");
    request(&mut conn, b"gets k\r\n", b"END\r\n");
    request(&mut conn, b"cas k 0 0 1 999\r\ny\r\n", b"EXISTS\r\n");
    let body = metrics(&server);
    for line in [
        "memcached_up 1",
        "memcached_current_items 1",
        "memcached_items_total 1",
        "memcached_limit_bytes 67108864",
        "memcached_max_connections 1024",
        "memcached_current_connections 1",
        "memcached_connections_total 1",
        "memcached_accepting_connections 1",
        "memcached_commands_total{command=\"get\",status=\"hit\"} 2",
        "memcached_commands_total{command=\"get\",status=\"miss\"} 1",
        "memcached_commands_total{command=\"cas\",status=\"badval\"} 1",
        // memcached counts cas in cmd_set; the exporter takes it out again.
        "memcached_commands_total{command=\"set\",status=\"hit\"} 1",
        "memcached_slab_current_items{slab=\"1\"} 1",
        // Nothing evicted yet.
        "memcached_slab_items_evicted_time_seconds{slab=\"1\"} 0",
        "memcached_slab_commands_total{slab=\"1\",command=\"get\",status=\"hit\"} 2",
    ] {
        assert!(body.lines().any(|l| l == line), "no {line:?} in\n{body}");
    }
    for name in [
        "memcached_process_user_cpu_seconds_total ",
        "memcached_process_system_cpu_seconds_total ",
        "memcached_read_bytes_total ",
        "memcached_written_bytes_total ",
        "memcached_uptime_seconds ",
        "memcached_malloced_bytes ",
        "memcached_connections_yielded_total ",
        "memcached_connections_listener_disabled_total ",
        "memcached_version{version=\"1.6.18\"",
        // Seconds since `k` was last read: 0 or 1 by the wall clock.
        "memcached_slab_items_age_seconds{slab=\"1\"} ",
    ] {
        assert!(
            body.lines().any(|l| l.starts_with(name)),
            "no {name:?} in\n{body}"
        );
    }
    assert!(body.ends_with("# EOF\n"));
}

#[test]
fn the_metrics_endpoint_counts_no_traffic_of_its_own_in_the_protocol_figures() {
    let server = with_metrics();
    let before = metrics(&server);
    let after = metrics(&server);
    let line = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("memcached_read_bytes_total "))
            .map(str::to_string)
    };
    assert_eq!(line(&before), Some("memcached_read_bytes_total 0".into()));
    assert_eq!(line(&before), line(&after));
}

#[test]
fn the_metrics_endpoint_refuses_other_paths_and_methods() {
    let server = with_metrics();
    assert_eq!(http(&server, "GET", "/").0, "HTTP/1.1 404 Not Found");
    assert_eq!(
        http(&server, "GET", "/metrics/x").0,
        "HTTP/1.1 404 Not Found"
    );
    let (status, headers, _) = http(&server, "POST", "/metrics");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    assert!(headers.contains("allow: get, head"));
}

#[test]
fn garbage_on_the_metrics_port_is_refused_and_the_endpoint_goes_on() {
    let server = with_metrics();
    let mut conn = TcpStream::connect(server.metrics.unwrap()).unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    conn.write_all(b"\x00\x01 not http at all\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    let _ = conn.read_to_end(&mut reply);
    assert!(!reply.starts_with(b"HTTP/1.1 200"));
    assert!(metrics(&server).contains("memcached_up 1"));
}

#[test]
fn a_scrape_keeps_its_connection_for_the_next_one() {
    let server = with_metrics();
    let mut conn = TcpStream::connect(server.metrics.unwrap()).unwrap();
    conn.set_read_timeout(Some(PATIENCE)).unwrap();
    for _ in 0..3 {
        conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let reply = read_until(&mut conn, b"# EOF\n");
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"));
    }
}

/// Sockets that connect and send only part of a request cannot hold the
/// endpoint: they are closed after the header timeout, and a scraper that
/// keeps trying gets through (without the timeout they held every place for
/// the whole connection deadline, longer than this test waits).
#[test]
fn slow_senders_cannot_hold_every_scrape_place() {
    use larder::server::{MAX_SCRAPERS, METRICS_HEADER_TIMEOUT};
    assert!(METRICS_HEADER_TIMEOUT < PATIENCE);
    let server = with_metrics();
    let addr = server.metrics.unwrap();
    let idle: Vec<TcpStream> = (0..MAX_SCRAPERS * 2)
        .map(|_| {
            let mut conn = TcpStream::connect(addr).unwrap();
            conn.write_all(b"GET /metrics HTTP/1.1\r\n").unwrap();
            conn
        })
        .collect();
    let start = std::time::Instant::now();
    let scraped = loop {
        let mut conn = TcpStream::connect(addr).unwrap();
        conn.set_read_timeout(Some(PATIENCE)).unwrap();
        let sent = conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let reply = read_to_close(&mut conn);
        if sent.is_ok() && reply.starts_with(b"HTTP/1.1 200 OK") {
            break true;
        }
        if start.elapsed() > PATIENCE {
            break false;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        scraped,
        "no scrape got through while slow senders held the endpoint"
    );
    drop(idle);
}

/// The endpoint reads the store's figures directly: a server whose
/// connections must authenticate (`-S`, `-Y`) or speak binary still exports
/// them (it used to send text `stats` through a connection's protocol, and
/// export nothing but `memcached_up`).
#[test]
fn the_metrics_endpoint_exports_the_figures_whatever_the_connections_protocol_and_login() {
    use larder::memcached::{Credentials, Protocols, StoreConfig};
    let mut users = Credentials::new();
    users.insert("u", "p");
    for store in [
        StoreConfig {
            protocols: Protocols::Binary,
            sasl: Some(users.clone()),
            ..StoreConfig::default()
        },
        StoreConfig {
            protocols: Protocols::Text,
            ascii_auth: Some(users.clone()),
            ..StoreConfig::default()
        },
    ] {
        let server = TestServer::start(ServerConfig {
            metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
            store,
            ..ServerConfig::default()
        });
        let body = metrics(&server);
        for line in [
            "memcached_current_items 0",
            "memcached_limit_bytes 67108864",
            "memcached_max_connections 1024",
        ] {
            assert!(body.lines().any(|l| l == line), "no {line:?} in\n{body}");
        }
    }
}
