//! What the server shares between its tasks: connection counters, traffic
//! totals, the table of open connections, the settings `stats` reports, the
//! log level, and the shutdown request.
//!
//! Traffic (`bytes_read`, `bytes_written`, `conn_yields`) is counted per
//! connection, in its own [`ConnSlot`], so busy connections on different
//! workers never write the same cache line; a closing connection adds its
//! totals to the server's, and `stats` sums the closed total and every open
//! slot. `stats reset` cannot zero other tasks' slots, so it records the
//! totals at that moment and later reports what came after.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::budget::Budget;
use super::{ServerConfig, UnixSocketConfig};
use crate::memcached::{ServerStats, Session, StatWriter};
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex};

/// What a connection is doing, for `stats conns` (memcached's state names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u64)]
pub(super) enum ConnState {
    /// Waiting for the next request.
    Waiting = 0,
    /// Answering the requests it has read.
    Working = 1,
    /// Writing replies the peer has not taken yet.
    Writing = 2,
    /// Waiting for the rest of a request whose command line has arrived (a
    /// storage command's data block, a binary request's body).
    Reading = 3,
}

impl ConnState {
    fn name(raw: u64) -> &'static str {
        match raw {
            0 => "conn_waiting",
            1 => "conn_parse_cmd",
            3 => "conn_nread",
            _ => "conn_mwrite",
        }
    }
}

/// Who is at the other end of a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Peer {
    Tcp(SocketAddr),
    /// A client of the Unix domain socket (such clients have no address).
    Unix,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Peer::Tcp(addr) => addr.fmt(f),
            Peer::Unix => f.write_str("unix client"),
        }
    }
}

/// Where the server listens, as `stats conns` names it (`tcp:ADDR:PORT` or
/// `unix:PATH`).
pub(super) struct Listening<'a>(&'a Shared);

impl fmt::Display for Listening<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.unix_socket {
            Some(unix) => write!(f, "unix:{}", unix.path.display()),
            None => write!(f, "tcp:{}", self.0.local_addr),
        }
    }
}

/// One open connection's figures, written only by its own task.
#[derive(Debug)]
pub(super) struct ConnSlot {
    id: u64,
    peer: Peer,
    bytes_read: AtomicU64,
    bytes_written: AtomicU64,
    yields: AtomicU64,
    /// Seconds since the server started, at the last completed command.
    last_command: AtomicU64,
    state: AtomicU64,
}

impl ConnSlot {
    pub(super) fn read(&self, n: usize) {
        self.bytes_read.fetch_add(n as u64, Relaxed);
    }

    pub(super) fn wrote(&self, n: usize) {
        self.bytes_written.fetch_add(n as u64, Relaxed);
    }

    pub(super) fn yielded(&self) {
        self.yields.fetch_add(1, Relaxed);
    }

    pub(super) fn set_state(&self, state: ConnState) {
        self.state.store(state as u64, Relaxed);
    }

    fn traffic(&self) -> Traffic {
        Traffic {
            bytes_read: self.bytes_read.load(Relaxed),
            bytes_written: self.bytes_written.load(Relaxed),
            conn_yields: self.yields.load(Relaxed),
        }
    }
}

/// Totals that only grow (so a reset is a baseline to subtract).
#[derive(Clone, Copy, Debug, Default)]
struct Traffic {
    bytes_read: u64,
    bytes_written: u64,
    conn_yields: u64,
}

impl Traffic {
    fn add(&mut self, other: Traffic) {
        self.bytes_read += other.bytes_read;
        self.bytes_written += other.bytes_written;
        self.conn_yields += other.conn_yields;
    }

    fn since(self, base: Traffic) -> Traffic {
        Traffic {
            bytes_read: self.bytes_read.saturating_sub(base.bytes_read),
            bytes_written: self.bytes_written.saturating_sub(base.bytes_written),
            conn_yields: self.conn_yields.saturating_sub(base.conn_yields),
        }
    }
}

/// The open connections and the traffic of the closed ones.
#[derive(Debug, Default)]
struct Conns {
    open: BTreeMap<u64, Arc<ConnSlot>>,
    next_id: u64,
    closed: Traffic,
    /// What `stats reset` subtracts.
    base: Traffic,
}

/// Counters that `stats reset` zeroes, kept as a baseline like [`Traffic`].
#[derive(Clone, Copy, Debug, Default)]
struct ResetBase {
    total_connections: u64,
    rejected_connections: u64,
    listen_disabled_num: u64,
    idle_kicks: u64,
}

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
    reqs_per_event: Option<usize>,
    expiry_sweep: Option<Duration>,
    listen_backlog: u32,
    /// Connections closed for idling past `idle_timeout`.
    idle_kicks: AtomicU64,
    idle_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    output_limit: usize,
    max_input: usize,
    shutdown_grace: Duration,
    /// `--snapshot-interval` in seconds (0: no periodic snapshots).
    snapshot_interval: u64,
    local_addr: SocketAddr,
    /// The Unix domain socket served instead of TCP.
    unix_socket: Option<UnixSocketConfig>,
    shutdown: watch::Sender<bool>,
    budget: Budget,
    started: Instant,
    conns: Mutex<Conns>,
    reset_base: Mutex<ResetBase>,
    /// False while the accept loop backs off after a failed accept.
    accepting: AtomicBool,
    listen_disabled_num: AtomicU64,
    listen_disabled_us: AtomicU64,
    metrics_addr: Option<SocketAddr>,
}

impl Shared {
    pub(super) fn new(
        config: &ServerConfig,
        local_addr: SocketAddr,
        metrics_addr: Option<SocketAddr>,
    ) -> Shared {
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
            reqs_per_event: config.reqs_per_event,
            expiry_sweep: config.expiry_sweep,
            listen_backlog: config.listen_backlog,
            idle_kicks: AtomicU64::new(0),
            idle_timeout: config.idle_timeout,
            write_timeout: config.write_timeout,
            output_limit: config.output_limit.max(1),
            max_input,
            shutdown_grace: config.shutdown_grace,
            snapshot_interval: config
                .snapshot
                .as_ref()
                .and_then(|s| s.interval)
                .map_or(0, |d| d.as_secs()),
            local_addr,
            unix_socket: config.unix_socket.clone(),
            shutdown: watch::channel(false).0,
            // Room for at least one largest request, or it could never be read.
            budget: Budget::new(config.conn_buffer_budget.max(max_input)),
            started: Instant::now(),
            conns: Mutex::new(Conns::default()),
            reset_base: Mutex::new(ResetBase::default()),
            accepting: AtomicBool::new(true),
            listen_disabled_num: AtomicU64::new(0),
            listen_disabled_us: AtomicU64::new(0),
            metrics_addr,
        }
    }

    /// Adds an open connection to the `stats conns` table.
    ///
    /// **Locking behaviour:** the connection table's mutex, briefly.
    pub(super) fn register(&self, peer: Peer) -> Arc<ConnSlot> {
        let mut conns = self.conns.lock();
        conns.next_id += 1;
        let slot = Arc::new(ConnSlot {
            id: conns.next_id,
            peer,
            bytes_read: AtomicU64::new(0),
            bytes_written: AtomicU64::new(0),
            yields: AtomicU64::new(0),
            last_command: AtomicU64::new(self.started.elapsed().as_secs()),
            state: AtomicU64::new(ConnState::Waiting as u64),
        });
        conns.open.insert(slot.id, Arc::clone(&slot));
        slot
    }

    /// Removes a closed connection, keeping its traffic in the totals.
    ///
    /// **Locking behaviour:** the connection table's mutex, briefly.
    pub(super) fn unregister(&self, slot: &ConnSlot) {
        let mut conns = self.conns.lock();
        if conns.open.remove(&slot.id).is_some() {
            conns.closed.add(slot.traffic());
        }
    }

    /// Records that `slot` just completed a command at `now`.
    pub(super) fn command_done(&self, slot: &ConnSlot, now: Instant) {
        let secs = now.saturating_duration_since(self.started).as_secs();
        slot.last_command.store(secs, Relaxed);
    }

    /// Traffic since the last `stats reset`.
    fn traffic(&self) -> Traffic {
        let conns = self.conns.lock();
        let mut total = conns.closed;
        for slot in conns.open.values() {
            total.add(slot.traffic());
        }
        total.since(conns.base)
    }

    /// The accept loop stopped accepting (a failed accept: out of file
    /// descriptors and the like) and backs off for `pause`: memcached's
    /// "listen disabled".
    pub(super) fn listen_disabled(&self, pause: Duration) {
        self.listen_disabled_num.fetch_add(1, Relaxed);
        self.accepting.store(false, Relaxed);
        let micros = u64::try_from(pause.as_micros()).unwrap_or(u64::MAX);
        self.listen_disabled_us.fetch_add(micros, Relaxed);
    }

    /// The accept loop accepts again.
    pub(super) fn listen_enabled(&self) {
        self.accepting.store(true, Relaxed);
    }

    /// Where the Prometheus endpoint listens, if it does.
    pub(super) fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Writes a log line to stderr when the verbosity is at least `level`.
    /// A line stderr cannot take is dropped: a closed stderr must not end
    /// the connection that logs (`eprintln!` would panic in its task).
    pub(super) fn log(&self, level: u8, message: fmt::Arguments<'_>) {
        if self.verbosity >= level {
            use std::io::Write as _;
            let _ = writeln!(std::io::stderr(), "larder-server: {message}");
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

    pub(super) fn expiry_sweep(&self) -> Option<Duration> {
        self.expiry_sweep.filter(|every| !every.is_zero())
    }

    /// Counts a connection closed for idling (`idle_kicks`).
    pub(super) fn idle_kicked(&self) {
        self.idle_kicks.fetch_add(1, Relaxed);
    }

    /// The session a new connection starts with.
    pub(super) fn session(&self) -> Session {
        let session = Session::new().with_output_limit(self.output_limit);
        match self.reqs_per_event {
            Some(limit) => session.with_request_limit(limit),
            None => session,
        }
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

/// CPU time of this process as (user, system) `(seconds, microseconds)`,
/// from `getrusage`; `None` where it fails.
fn rusage() -> Option<((i64, i64), (i64, i64))> {
    use nix::sys::resource::{getrusage, UsageWho};
    let usage = getrusage(UsageWho::RUSAGE_SELF).ok()?;
    // `suseconds_t` is i64 here but narrower on some targets.
    #[allow(clippy::useless_conversion)]
    let split = |t: nix::sys::time::TimeVal| (i64::from(t.tv_sec()), i64::from(t.tv_usec()));
    Some((split(usage.user_time()), split(usage.system_time())))
}

impl ServerStats for Shared {
    fn domain_socket(&self) -> Option<(&Path, u32)> {
        self.unix_socket
            .as_ref()
            .map(|unix| (unix.path.as_path(), unix.mode))
    }

    fn general(&self, stats: &mut StatWriter<'_>) {
        // memcached prints a `struct timeval` as seconds.microseconds, and
        // the Prometheus exporter parses exactly that shape.
        if let Some(((us, uu), (ss, su))) = rusage() {
            stats.display("rusage_user", format_args!("{us}.{uu:06}"));
            stats.display("rusage_system", format_args!("{ss}.{su:06}"));
        }
        let base = *self.reset_base.lock();
        let traffic = self.traffic();
        stats.number("max_connections", self.conn_limit);
        stats.number("curr_connections", self.curr_connections());
        stats.number(
            "total_connections",
            self.total_connections
                .load(Relaxed)
                .saturating_sub(base.total_connections),
        );
        stats.number(
            "rejected_connections",
            self.rejected_connections
                .load(Relaxed)
                .saturating_sub(base.rejected_connections),
        );
        stats.number("connection_structures", self.curr_connections());
        stats.number("bytes_read", traffic.bytes_read);
        stats.number("bytes_written", traffic.bytes_written);
        stats.number("accepting_conns", u64::from(self.accepting.load(Relaxed)));
        stats.number(
            "listen_disabled_num",
            self.listen_disabled_num
                .load(Relaxed)
                .saturating_sub(base.listen_disabled_num),
        );
        stats.number(
            "time_in_listen_disabled_us",
            self.listen_disabled_us.load(Relaxed),
        );
        stats.number("threads", self.threads);
        stats.number("conn_yields", traffic.conn_yields);
        stats.number(
            "idle_kicks",
            self.idle_kicks
                .load(Relaxed)
                .saturating_sub(base.idle_kicks),
        );
        stats.number("conn_buffer_bytes", self.budget.used());
    }

    fn settings(&self, stats: &mut StatWriter<'_>) {
        stats.number("maxconns", self.conn_limit);
        // With a Unix socket, memcached still reports its -p and -l.
        stats.number("tcpport", u64::from(self.local_addr.port()));
        stats.number("udpport", 0);
        stats.display("inter", self.local_addr.ip());
        stats.number("verbosity", u64::from(self.verbosity));
        stats.number("num_threads", self.threads);
        stats.number("idle_timeout", self.idle_timeout.map_or(0, |t| t.as_secs()));
        stats.number("tcp_backlog", u64::from(self.listen_backlog));
        stats.number(
            "reqs_per_event",
            self.reqs_per_event.map_or(0, |n| n as u64),
        );
        stats.number("conn_buffer_budget", self.budget.limit());
        stats.number("snapshot_interval", self.snapshot_interval);
        stats.text("maxconns_fast", "yes");
        match self.metrics_addr {
            Some(addr) => stats.display("metrics_listen", addr),
            None => stats.text("metrics_listen", "none"),
        }
    }

    /// memcached's `stats conns`: the listener, then one block per open
    /// connection, numbered in the order they were accepted (memcached
    /// numbers them by file descriptor).
    fn conns(&self, stats: &mut StatWriter<'_>) {
        let now = self.started.elapsed().as_secs();
        let listener = Listening(self);
        stats.display("0:addr", &listener);
        stats.text("0:state", "conn_listening");
        let conns = self.conns.lock();
        for slot in conns.open.values() {
            let id = slot.id;
            match slot.peer {
                Peer::Tcp(addr) => stats.display(&format!("{id}:addr"), format_args!("tcp:{addr}")),
                // A Unix client has no address of its own: the socket's path.
                Peer::Unix => stats.display(&format!("{id}:addr"), &listener),
            }
            stats.display(&format!("{id}:listen_addr"), &listener);
            stats.text(
                &format!("{id}:state"),
                ConnState::name(slot.state.load(Relaxed)),
            );
            let idle = now.saturating_sub(slot.last_command.load(Relaxed));
            stats.number(&format!("{id}:secs_since_last_cmd"), idle);
        }
    }

    fn reset(&self) {
        *self.reset_base.lock() = ResetBase {
            total_connections: self.total_connections.load(Relaxed),
            rejected_connections: self.rejected_connections.load(Relaxed),
            listen_disabled_num: self.listen_disabled_num.load(Relaxed),
            idle_kicks: self.idle_kicks.load(Relaxed),
        };
        let mut conns = self.conns.lock();
        let mut total = conns.closed;
        for slot in conns.open.values() {
            total.add(slot.traffic());
        }
        conns.base = total;
    }
}
