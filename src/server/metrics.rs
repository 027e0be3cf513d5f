//! The Prometheus endpoint (`--metrics-listen`): `GET /metrics` in the text
//! exposition format, with the Prometheus memcached exporter's metric names,
//! so dashboards and alerts written for the exporter work without a sidecar.
//!
//! Every scrape reads the same figures `stats`, `stats settings`, `stats
//! items` and `stats slabs` print (it runs those commands against the store
//! in-process), so the endpoint and the text protocol can never disagree.
//! A figure the store does not print is not exported: nothing here is made
//! up. The exposition format is `prometheus-client`'s and the HTTP/1 server
//! is `hyper`'s; this module only maps names.
//!
//! Differences from the exporter, all forced by the exposition library's
//! OpenMetrics rules: every counter's sample name ends in `_total` (the
//! exporter's names do too, except `memcached_uptime_seconds`, which is a
//! gauge here so its name stays the same).
//!
//! # Limits
//! At most [`MAX_SCRAPERS`] scrape connections are served at once (others are
//! closed at once). A client must send a request's headers within
//! [`HEADER_TIMEOUT`] of connecting or of its previous reply, so idle or
//! slowly-sending sockets cannot fill those places; and after
//! [`CONN_DEADLINE`] a connection finishes the request it is serving and is
//! closed (a keep-alive scrape is not cut in the middle).

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::stats::Shared;
use crate::memcached::Store;
use crate::sync::Arc;

/// Most scrape connections served at once.
pub const MAX_SCRAPERS: usize = 16;

/// How long one scrape connection may stay open.
pub const CONN_DEADLINE: Duration = Duration::from_secs(30);

/// How long a scrape connection may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// The content type of the OpenMetrics text `prometheus-client` writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Serves `GET /metrics` on `listener` until `stop` turns true.
pub(super) async fn serve(
    listener: TcpListener,
    store: Arc<Store>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StoreCollector {
        store: Arc::clone(&store),
    }));
    let registry = Arc::new(registry);
    let slots = Arc::new(Semaphore::new(MAX_SCRAPERS));
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    shared.log(1, format_args!("metrics: accept failed: {e}"));
                    tokio::time::sleep(super::ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
            shared.log(1, format_args!("metrics: {peer}: too many scrapers"));
            continue;
        };
        let registry = Arc::clone(&registry);
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |request| {
                let registry = Arc::clone(&registry);
                async move { Ok::<_, Infallible>(answer(&request, &registry)) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let served = tokio::select! {
                served = conn.as_mut() => served,
                () = tokio::time::sleep(CONN_DEADLINE) => {
                    // Finish the request in progress, if any, then close; a
                    // client that will not take its reply is dropped.
                    conn.as_mut().graceful_shutdown();
                    match tokio::time::timeout(HEADER_TIMEOUT, conn.as_mut()).await {
                        Ok(served) => served,
                        Err(_) => {
                            shared.log(1, format_args!("metrics: {peer}: closed after deadline"));
                            return;
                        }
                    }
                }
            };
            if let Err(e) = served {
                shared.log(1, format_args!("metrics: {peer}: {e}"));
            }
        });
    }
}

/// The reply to one HTTP request.
fn answer(request: &Request<Incoming>, registry: &Registry) -> Response<Full<Bytes>> {
    let reply = |status, body: &'static str| {
        let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
        *response.status_mut() = status;
        response
    };
    if request.uri().path() != "/metrics" {
        return reply(
            StatusCode::NOT_FOUND,
            "larder-server serves /metrics only\n",
        );
    }
    if request.method() != Method::GET && request.method() != Method::HEAD {
        let mut response = reply(StatusCode::METHOD_NOT_ALLOWED, "use GET\n");
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let mut body = String::with_capacity(8 << 10);
    if prometheus_client::encoding::text::encode(&mut body, registry).is_err() {
        return reply(StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n");
    }
    let mut response = Response::new(Full::new(Bytes::from(body)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(OPENMETRICS));
    response
}

/// Renders the store's metrics in the text exposition format, as the
/// endpoint serves them (without HTTP). For tests and embedders that serve
/// metrics their own way.
///
/// ```
/// use larder::memcached::{Store, StoreConfig};
///
/// let store = std::sync::Arc::new(Store::new(StoreConfig::default())?);
/// let text = larder::server::render_metrics(&store);
/// assert!(text.contains("memcached_current_items 0\n"));
/// assert!(text.ends_with("# EOF\n"));
/// # Ok::<(), larder::memcached::StoreError>(())
/// ```
pub fn render_metrics(store: &Arc<Store>) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(StoreCollector {
        store: Arc::clone(store),
    }));
    let mut body = String::new();
    // Writing to a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut body, &registry);
    body
}

/// Reads the store's `stats` groups on every scrape.
struct StoreCollector {
    store: Arc<Store>,
}

impl fmt::Debug for StoreCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreCollector").finish_non_exhaustive()
    }
}

/// One `stats` group's `STAT name value` lines.
struct Group(HashMap<String, String>);

impl Group {
    /// The `stats` group named `group` (empty: the general one), read from
    /// the store directly: a connection's protocol and authentication
    /// (`-B binary`, `-S`, `-Y`) do not apply to the endpoint.
    fn read(store: &Store, group: &[u8]) -> Group {
        let out = store.stats_lines(group);
        let text = String::from_utf8_lossy(&out);
        let stats = text
            .lines()
            .filter_map(|line| line.strip_prefix("STAT "))
            .filter_map(|line| line.split_once(' '))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        Group(stats)
    }

    fn number(&self, name: &str) -> Option<u64> {
        self.0.get(name)?.parse().ok()
    }

    /// A `seconds.microseconds` figure (`rusage_*`).
    fn seconds(&self, name: &str) -> Option<f64> {
        self.0.get(name)?.parse().ok()
    }

    /// `(class, field, value)` for every `[prefix]<class>:<field> <number>`.
    fn per_class<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (u32, &'a str, u64)> + 'a {
        self.0.iter().filter_map(move |(name, value)| {
            let (class, field) = name.strip_prefix(prefix)?.split_once(':')?;
            Some((class.parse().ok()?, field, value.parse().ok()?))
        })
    }
}

/// A metric without labels read from one `stats` figure.
struct Plain {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    stat: &'static str,
}

const fn counter(name: &'static str, stat: &'static str, help: &'static str) -> Plain {
    Plain {
        name,
        help,
        kind: MetricType::Counter,
        stat,
    }
}

const fn gauge(name: &'static str, stat: &'static str, help: &'static str) -> Plain {
    Plain {
        name,
        help,
        kind: MetricType::Gauge,
        stat,
    }
}

/// From plain `stats`. Counter names are written without `_total`; the
/// encoder appends it to the samples.
const GENERAL: &[Plain] = &[
    gauge(
        "memcached_uptime_seconds",
        "uptime",
        "Number of seconds since the server started.",
    ),
    gauge(
        "memcached_time_seconds",
        "time",
        "Current UNIX time according to the server.",
    ),
    counter(
        "memcached_read_bytes",
        "bytes_read",
        "Total number of bytes read by this server from network.",
    ),
    counter(
        "memcached_written_bytes",
        "bytes_written",
        "Total number of bytes sent by this server to network.",
    ),
    gauge(
        "memcached_current_connections",
        "curr_connections",
        "Current number of open connections.",
    ),
    counter(
        "memcached_connections",
        "total_connections",
        "Total number of connections opened since the server started running.",
    ),
    counter(
        "memcached_connections_rejected",
        "rejected_connections",
        "Total number of connections rejected because the -c limit was reached.",
    ),
    counter(
        "memcached_connections_yielded",
        "conn_yields",
        "Total number of times a busy connection yielded to others.",
    ),
    counter(
        "memcached_connections_listener_disabled",
        "listen_disabled_num",
        "Number of times the server stopped accepting for a while (a failed accept).",
    ),
    gauge(
        "memcached_accepting_connections",
        "accepting_conns",
        "Whether the server is currently accepting new connections.",
    ),
    gauge(
        "memcached_current_bytes",
        "bytes",
        "Current number of bytes used to store items.",
    ),
    gauge(
        "memcached_limit_bytes",
        "limit_maxbytes",
        "Number of bytes this server is allowed to use for storage.",
    ),
    gauge(
        "memcached_current_items",
        "curr_items",
        "Current number of items stored by this instance.",
    ),
    counter(
        "memcached_items",
        "total_items",
        "Total number of items stored during the life of this instance.",
    ),
    counter(
        "memcached_items_evicted",
        "evictions",
        "Total number of valid items removed from cache to free memory for new items.",
    ),
    counter(
        "memcached_items_reclaimed",
        "reclaimed",
        "Total number of times an entry was stored using memory from an expired entry.",
    ),
    counter(
        "memcached_item_too_large",
        "store_too_large",
        "The number of times an item exceeded the max-item-size when being stored.",
    ),
    counter(
        "memcached_item_no_memory",
        "store_no_memory",
        "The number of times an item could not be stored due to no more memory.",
    ),
    gauge(
        "larder_connection_buffer_bytes",
        "conn_buffer_bytes",
        "Bytes of connection buffers charged against --conn-buffer-budget.",
    ),
    gauge(
        "larder_snapshot_last_unix_seconds",
        "snapshot_last_unix",
        "UNIX time the last snapshot save finished (0: none since start).",
    ),
    gauge(
        "larder_snapshot_last_ok",
        "snapshot_last_ok",
        "Whether the last snapshot save succeeded (1) or failed (0).",
    ),
    gauge(
        "larder_snapshot_last_success_timestamp_seconds",
        "snapshot_last_ok_unix",
        "UNIX time the last successful snapshot save finished (0: none since start).",
    ),
    counter(
        "larder_snapshot_failures",
        "snapshot_failures",
        "Snapshot saves that failed since the server started.",
    ),
    gauge(
        "larder_snapshot_bytes",
        "snapshot_bytes",
        "Size of the last successful snapshot.",
    ),
    gauge(
        "larder_snapshot_duration_milliseconds",
        "snapshot_duration_ms",
        "Time the last snapshot save took, fsync and rename included.",
    ),
    gauge(
        "larder_changes_since_snapshot",
        "changes_since_snapshot",
        "Client writes since the last successful snapshot began: what a crash now would lose.",
    ),
    gauge(
        "larder_repl_offset_bytes",
        "repl_offset",
        "Replication offset: bytes of changes this node has recorded (a primary) or applied (a replica).",
    ),
    gauge(
        "larder_repl_lag_milliseconds",
        "repl_lag_ms",
        "A replica: how far behind its primary it is (0 when caught up); a primary: the most any replica reported.",
    ),
    gauge(
        "larder_repl_lag_p99_milliseconds",
        "repl_lag_p99_ms",
        "A replica: 99th percentile of the delay from a change on the primary to its apply here, since start.",
    ),
    gauge(
        "larder_repl_link_up",
        "repl_link_up",
        "A replica: whether its link to the primary is up (1) or not (0).",
    ),
    gauge(
        "larder_repl_connected_replicas",
        "repl_connected_replicas",
        "Replicas streaming from this node.",
    ),
    counter(
        "larder_repl_full_syncs",
        "repl_full_syncs",
        "Full syncs (a snapshot, then the stream) this node served to replicas.",
    ),
    counter(
        "larder_repl_partial_syncs",
        "repl_partial_syncs",
        "Partial resyncs (from the backlog) this node served to replicas.",
    ),
    counter(
        "larder_repl_link_full_syncs",
        "repl_link_full_syncs",
        "Full syncs this node made with its primary, as a replica.",
    ),
    counter(
        "larder_repl_link_partial_syncs",
        "repl_link_partial_syncs",
        "Partial resyncs this node made with its primary, as a replica.",
    ),
    gauge(
        "larder_repl_backlog_bytes",
        "repl_backlog_bytes",
        "Bytes of recent changes the replication backlog holds.",
    ),
];

/// From `stats settings`.
const SETTINGS: &[Plain] = &[
    gauge(
        "memcached_max_connections",
        "maxconns",
        "Maximum number of clients allowed.",
    ),
    gauge(
        "larder_snapshot_interval_seconds",
        "snapshot_interval",
        "Seconds between periodic snapshots (--snapshot-interval; 0: none).",
    ),
];

/// From `stats slabs` (the figures that are not per class).
const SLABS: &[Plain] = &[gauge(
    "memcached_malloced_bytes",
    "total_malloced",
    "Bytes the store's accounting charges against the memory limit.",
)];

/// Per-class figures of `stats items` (`items:<class>:<field>`).
const ITEM_FIELDS: &[(&str, &str, MetricType, &str)] = &[
    (
        "number",
        "memcached_slab_current_items",
        MetricType::Gauge,
        "Number of items currently stored in this slab class.",
    ),
    (
        "age",
        "memcached_slab_items_age_seconds",
        MetricType::Gauge,
        "Seconds since the last access of the oldest item next in line for eviction.",
    ),
    (
        "mem_requested",
        "memcached_slab_mem_requested_bytes",
        MetricType::Gauge,
        "Number of bytes of memory actual items take up within a slab.",
    ),
    (
        "evicted",
        "memcached_slab_items_evicted",
        MetricType::Counter,
        "Total number of times an item had to be evicted from the LRU before it expired.",
    ),
    (
        "evicted_time",
        "memcached_slab_items_evicted_time_seconds",
        MetricType::Gauge,
        "Seconds the most recently evicted item had gone without an access when it was evicted.",
    ),
    (
        "evicted_unfetched",
        "memcached_slab_items_evicted_unfetched",
        MetricType::Counter,
        "Total number of items evicted and never fetched.",
    ),
    (
        "expired_unfetched",
        "memcached_slab_items_expired_unfetched",
        MetricType::Counter,
        "Total number of valid items expired which were never touched after being set.",
    ),
    (
        "reclaimed",
        "memcached_slab_items_reclaimed",
        MetricType::Counter,
        "Total number of items reclaimed.",
    ),
    (
        "outofmemory",
        "memcached_slab_items_outofmemory",
        MetricType::Counter,
        "Total number of items for this slab class that have triggered an out of memory error.",
    ),
];

/// Per-class figures of `stats slabs` (`<class>:<field>`).
const SLAB_FIELDS: &[(&str, &str, MetricType, &str)] = &[
    (
        "chunk_size",
        "memcached_slab_chunk_size_bytes",
        MetricType::Gauge,
        "Number of bytes allocated to each chunk within this slab class.",
    ),
    (
        "chunks_per_page",
        "memcached_slab_chunks_per_page",
        MetricType::Gauge,
        "Number of chunks within a single page for this slab class.",
    ),
    (
        "total_pages",
        "memcached_slab_current_pages",
        MetricType::Gauge,
        "Number of pages allocated to this slab class.",
    ),
    (
        "total_chunks",
        "memcached_slab_current_chunks",
        MetricType::Gauge,
        "Number of chunks allocated to this slab class.",
    ),
    (
        "used_chunks",
        "memcached_slab_chunks_used",
        MetricType::Gauge,
        "Number of chunks allocated to an item.",
    ),
    (
        "free_chunks",
        "memcached_slab_chunks_free",
        MetricType::Gauge,
        "Number of chunks not yet allocated items.",
    ),
    (
        "free_chunks_end",
        "memcached_slab_chunks_free_end",
        MetricType::Gauge,
        "Number of free chunks at the end of the last allocated page.",
    ),
];

/// The commands `memcached_commands_total` breaks down, with memcached's
/// hit and miss counters.
const COMMANDS: [&str; 6] = ["get", "delete", "incr", "decr", "cas", "touch"];

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let general = Group::read(&self.store, b"");
        let settings = Group::read(&self.store, b"settings");
        let items = Group::read(&self.store, b"items");
        let slabs = Group::read(&self.store, b"slabs");

        // The endpoint answers from inside the server, so it is up.
        let up = ConstGauge::new(1i64);
        up.encode(encoder.encode_descriptor(
            "memcached_up",
            "Could the memcached server be reached.",
            None,
            up.metric_type(),
        )?)?;
        if let Some(version) = general.0.get("version") {
            let mut family = encoder.encode_descriptor(
                "memcached_version",
                "The version of this memcached server.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(1i64)
                .encode(family.encode_family(&[("version", version.as_str())])?)?;
        }
        if let (Some(role), Some(id)) = (general.0.get("role"), general.0.get("repl_id")) {
            let mut family = encoder.encode_descriptor(
                "larder_repl_role",
                "This node's replication role (primary or replica) and replication id.",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(1i64).encode(
                family.encode_family(&[("role", role.as_str()), ("repl_id", id.as_str())])?,
            )?;
        }
        for (name, stat, help) in [
            (
                "memcached_process_user_cpu_seconds",
                "rusage_user",
                "Accumulated user time for this process.",
            ),
            (
                "memcached_process_system_cpu_seconds",
                "rusage_system",
                "Accumulated system time for this process.",
            ),
        ] {
            if let Some(seconds) = general.seconds(stat) {
                let metric = ConstCounter::new(seconds);
                metric.encode(encoder.encode_descriptor(
                    name,
                    help,
                    None,
                    metric.metric_type(),
                )?)?;
            }
        }
        for (group, table) in [(&general, GENERAL), (&settings, SETTINGS), (&slabs, SLABS)] {
            for plain in table {
                if let Some(value) = group.number(plain.stat) {
                    let metric =
                        encoder.encode_descriptor(plain.name, plain.help, None, plain.kind)?;
                    encode_value(metric, plain.kind, value)?;
                }
            }
        }
        encode_commands(&mut encoder, &general)?;

        for (group, prefix, fields) in [(&items, "items:", ITEM_FIELDS), (&slabs, "", SLAB_FIELDS)]
        {
            let mut figures: Vec<_> = group.per_class(prefix).collect();
            figures.sort_unstable();
            for &(field, name, kind, help) in fields {
                let mut rows = figures.iter().filter(|f| f.1 == field).peekable();
                if rows.peek().is_none() {
                    continue;
                }
                let mut family = encoder.encode_descriptor(name, help, None, kind)?;
                for &(class, _, value) in rows {
                    let class = class.to_string();
                    encode_value(
                        family.encode_family(&[("slab", class.as_str())])?,
                        kind,
                        value,
                    )?;
                }
            }
        }
        encode_slab_commands(&mut encoder, &slabs)
    }
}

/// `memcached_commands_total{command, status}` as the exporter computes it:
/// hits and misses per command, `cas` `badval`, `flush` as `cmd_flush`, and
/// `set` as `cmd_set` less the `cas` commands (which memcached counts in
/// `cmd_set` too).
fn encode_commands(encoder: &mut DescriptorEncoder<'_>, general: &Group) -> fmt::Result {
    let mut rows: Vec<(&str, &str, u64)> = Vec::new();
    for command in COMMANDS {
        for (status, suffix) in [("hit", "_hits"), ("miss", "_misses")] {
            if let Some(n) = general.number(&format!("{command}{suffix}")) {
                rows.push((command, status, n));
            }
        }
    }
    let number = |name| general.number(name).unwrap_or(0);
    if let Some(n) = general.number("cas_badval") {
        rows.push(("cas", "badval", n));
    }
    if let Some(n) = general.number("cmd_flush") {
        rows.push(("flush", "hit", n));
    }
    if let Some(n) = general.number("cmd_set") {
        let cas = number("cas_misses") + number("cas_hits") + number("cas_badval");
        rows.push(("set", "hit", n.saturating_sub(cas)));
    }
    let mut family = encoder.encode_descriptor(
        "memcached_commands",
        "Total number of all requests broken down by command (get, set, etc.) and status.",
        None,
        MetricType::Counter,
    )?;
    for (command, status, n) in rows {
        let labels = [("command", command), ("status", status)];
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// `memcached_slab_commands_total{slab, command, status}` from `stats
/// slabs`' per-class hit counters.
fn encode_slab_commands(encoder: &mut DescriptorEncoder<'_>, slabs: &Group) -> fmt::Result {
    let mut figures: Vec<_> = slabs.per_class("").collect();
    figures.sort_unstable();
    let mut rows = Vec::new();
    for &(class, field, value) in &figures {
        let row = match field.strip_suffix("_hits") {
            Some(command) if COMMANDS.contains(&command) => (command, "hit", value),
            _ if field == "cas_badval" => ("cas", "badval", value),
            _ if field == "cmd_set" => {
                let cas = |name| {
                    figures
                        .iter()
                        .find(|f| f.0 == class && f.1 == name)
                        .map_or(0, |f| f.2)
                };
                (
                    "set",
                    "hit",
                    value.saturating_sub(cas("cas_hits") + cas("cas_badval")),
                )
            }
            _ => continue,
        };
        rows.push((class.to_string(), row));
    }
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = encoder.encode_descriptor(
        "memcached_slab_commands",
        "Total number of all requests broken down by command (get, set, etc.) and status per slab.",
        None,
        MetricType::Counter,
    )?;
    for (class, (command, status, n)) in &rows {
        let labels = [
            ("slab", class.as_str()),
            ("command", command),
            ("status", status),
        ];
        ConstCounter::new(*n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn encode_value(
    encoder: prometheus_client::encoding::MetricEncoder<'_>,
    kind: MetricType,
    value: u64,
) -> fmt::Result {
    match kind {
        MetricType::Counter => ConstCounter::new(value).encode(encoder),
        _ => ConstGauge::new(value).encode(encoder),
    }
}
