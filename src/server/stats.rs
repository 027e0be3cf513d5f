//! What the server shares between its tasks: connection counters, the
//! settings `stats` reports, the log level, and the shutdown request.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::sync::watch;

use super::budget::Budget;
use super::ServerConfig;
use crate::memcached::{ServerStats, StatWriter};
use crate::sync::AtomicU64;

/// Shared by the accept loop, every connection, and the store's `stats`.
pub(super) struct Shared {
    curr_connections: AtomicU64,
    total_connections: AtomicU64,
    rejected_connections: AtomicU64,
    /// Rejected sockets still being closed politely.
    rejecting: AtomicU64,
    conn_limit: u64,
    threads: u64,
    verbosity: u8,
    idle_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    output_limit: usize,
    max_input: usize,
    shutdown_grace: Duration,
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    budget: Budget,
}

impl Shared {
    pub(super) fn new(config: &ServerConfig, local_addr: SocketAddr) -> Shared {
        let limits = &config.store.limits;
        let max_input = config.max_input.unwrap_or(
            2 * config.store.max_item_size + limits.max_get_line_len.max(limits.max_line_len) + 4,
        );
        Shared {
            curr_connections: AtomicU64::new(0),
            total_connections: AtomicU64::new(0),
            rejected_connections: AtomicU64::new(0),
            rejecting: AtomicU64::new(0),
            conn_limit: config.conn_limit as u64,
            threads: config.threads as u64,
            verbosity: config.verbosity,
            idle_timeout: config.idle_timeout,
            write_timeout: config.write_timeout,
            output_limit: config.output_limit.max(1),
            max_input,
            shutdown_grace: config.shutdown_grace,
            local_addr,
            shutdown: watch::channel(false).0,
            // Room for at least one largest request, or it could never be read.
            budget: Budget::new(config.conn_buffer_budget.max(max_input)),
        }
    }

    /// Writes a log line to stderr when the verbosity is at least `level`.
    pub(super) fn log(&self, level: u8, message: fmt::Arguments<'_>) {
        if self.verbosity >= level {
            eprintln!("larder-server: {message}");
        }
    }

    /// Counts a new connection unless the limit is reached.
    pub(super) fn try_open(&self) -> bool {
        let opened = self
            .curr_connections
            .fetch_update(Relaxed, Relaxed, |n| (n < self.conn_limit).then_some(n + 1))
            .is_ok();
        if opened {
            self.total_connections.fetch_add(1, Relaxed);
        } else {
            self.rejected_connections.fetch_add(1, Relaxed);
        }
        opened
    }

    pub(super) fn close(&self) {
        self.curr_connections.fetch_sub(1, Relaxed);
    }

    /// Counts a rejected socket being closed politely, unless too many are.
    pub(super) fn try_start_rejecting(&self) -> bool {
        self.rejecting
            .fetch_update(Relaxed, Relaxed, |n| {
                (n < self.conn_limit.max(64)).then_some(n + 1)
            })
            .is_ok()
    }

    pub(super) fn done_rejecting(&self) {
        self.rejecting.fetch_sub(1, Relaxed);
    }

    pub(super) fn curr_connections(&self) -> u64 {
        self.curr_connections.load(Relaxed)
    }

    pub(super) fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    pub(super) fn write_timeout(&self) -> Option<Duration> {
        self.write_timeout
    }

    pub(super) fn output_limit(&self) -> usize {
        self.output_limit
    }

    /// The memory budget of all connection buffers.
    pub(super) fn budget(&self) -> &Budget {
        &self.budget
    }

    pub(super) fn max_input(&self) -> usize {
        self.max_input
    }

    pub(super) fn shutdown_grace(&self) -> Duration {
        self.shutdown_grace
    }

    /// Asks the server to stop (the `shutdown` command).
    pub(super) fn request_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub(super) fn shutdown_requested(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }
}

/// CPU time of this process from `/proc/self/stat`, as (user, system)
/// seconds; `None` where that file does not exist.
fn rusage() -> Option<(f64, f64)> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name, which may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13
    // after the name; Linux reports them in USER_HZ (100 per second).
    let user: f64 = fields.nth(11)?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user / 100.0, system / 100.0))
}

impl ServerStats for Shared {
    fn general(&self, stats: &mut StatWriter<'_>) {
        if let Some((user, system)) = rusage() {
            stats.display("rusage_user", format_args!("{user:.6}"));
            stats.display("rusage_system", format_args!("{system:.6}"));
        }
        stats.number("max_connections", self.conn_limit);
        stats.number("curr_connections", self.curr_connections());
        stats.number("total_connections", self.total_connections.load(Relaxed));
        stats.number(
            "rejected_connections",
            self.rejected_connections.load(Relaxed),
        );
        stats.number("connection_structures", self.curr_connections());
        stats.number("threads", self.threads);
        stats.number("conn_buffer_bytes", self.budget.used());
    }

    fn settings(&self, stats: &mut StatWriter<'_>) {
        stats.number("maxconns", self.conn_limit);
        stats.number("tcpport", u64::from(self.local_addr.port()));
        stats.number("udpport", 0);
        stats.display("inter", self.local_addr.ip());
        stats.number("verbosity", u64::from(self.verbosity));
        stats.number("num_threads", self.threads);
        stats.number("idle_timeout", self.idle_timeout.map_or(0, |t| t.as_secs()));
        stats.number("conn_buffer_budget", self.budget.limit());
    }
}
