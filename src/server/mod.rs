//! A memcached-compatible server over a [`Store`] (feature `server`), on TCP
//! or a Unix domain socket ([`ServerConfig::unix_socket`]).
//!
//! This is the only module that touches sockets and the only one that uses
//! tokio. It owns the listener and one task per connection; everything about
//! the protocol is the adapter's: each connection feeds its read buffer to
//! [`Store::process`] and writes what that produced.
//!
//! # Invariants
//! - A connection never buffers more than [`ServerConfig::max_input`] bytes
//!   of requests; no request the parser accepts is larger (a multi-get of
//!   any length is answered as it arrives), so a client that reaches the cap
//!   is sending garbage and is answered and closed.
//! - Replies are buffered up to about [`ServerConfig::output_limit`] bytes
//!   (plus one value) before they are written; while a write is pending the
//!   connection reads nothing, so a client that never reads holds at most
//!   that much (and its kernel socket buffers), and is closed once a write
//!   makes no progress for [`ServerConfig::write_timeout`]. Values are
//!   written from the cache's own buffers (vectored writes), not copied.
//! - All connections' buffers together stay within
//!   [`ServerConfig::conn_buffer_budget`] plus a free 16 KiB each way per
//!   connection: a read buffer grows only when its growth fits the budget
//!   (otherwise the connection stops reading until budget is given back), and
//!   a reply batch beyond the free part takes only budget that is free. A
//!   connection holding nothing beyond its free part can always answer a
//!   small command, so a spent budget never stops the server.
//! - Fairness: a connection yields to the runtime after every batch of
//!   [`BATCH_INPUT`] bytes of requests or `output_limit` bytes of replies,
//!   so one pipelining client cannot starve the others on its worker.
//! - At most [`ServerConfig::conn_limit`] connections are served; the next
//!   ones get `ERROR Too many open connections` and are closed.
//! - A connection that completes no command for
//!   [`ServerConfig::idle_timeout`] is closed (memcached's `idle_timeout`
//!   also counts from the last command), which covers slowloris clients that
//!   trickle a partial command.
//!
//! ```no_run
//! use larder::server::{Server, ServerConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Server::bind(ServerConfig {
//!     listen: "127.0.0.1:0".parse()?,
//!     ..ServerConfig::default()
//! })
//! .await?;
//! eprintln!("listening on {}", server.local_addr());
//! server.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod budget;
mod conn;
mod metrics;
mod repl;
mod stats;

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::memcached::store::repl::Role;
use crate::memcached::{Store, StoreConfig, StoreError};
use crate::sync::Arc;
pub use metrics::{
    render_metrics, CONN_DEADLINE as METRICS_CONN_DEADLINE,
    HEADER_TIMEOUT as METRICS_HEADER_TIMEOUT, MAX_SCRAPERS,
};
use stats::Shared;

/// What the server answers to `version` (and reports in `stats`):
/// [`MEMCACHED_VERSION`](crate::memcached::MEMCACHED_VERSION), the memcached
/// release whose behaviour larder-server reproduces, in memcached's own
/// `major.minor.micro` form. Clients parse it: libmemcached-based ones
/// (`memcstat`, pylibmc, PHP's memcached) refuse a version that does not
/// start with a number, and Perl's `version->parse` (Cache::Memcached::Fast's
/// `server_versions`) refuses anything after the numbers, as
/// `1.6.0-larder-0.1.0` was. larder's own version is `larder_version` in
/// `stats`.
///
/// ```
/// assert_eq!(larder::server::VERSION, "1.6.18");
/// ```
pub const VERSION: &str = crate::memcached::MEMCACHED_VERSION;

/// How long the accept loop pauses after a failed accept.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Bytes of buffered requests a connection handles in one batch before it
/// yields to the runtime.
pub const BATCH_INPUT: usize = 64 << 10;

/// What a [`Server`] is built from. Start from [`ServerConfig::default`].
///
/// ```
/// use std::time::Duration;
/// use larder::server::ServerConfig;
///
/// let config = ServerConfig {
///     conn_limit: 64,
///     idle_timeout: Some(Duration::from_secs(30)),
///     ..ServerConfig::default()
/// };
/// assert_eq!(config.listen.to_string(), "127.0.0.1:11211");
/// ```
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Where to listen (memcached's `-l` and `-p`). Default
    /// `127.0.0.1:11211`: never all interfaces unless asked. Port 0 picks a
    /// free port; [`Server::local_addr`] tells which.
    pub listen: SocketAddr,
    /// More addresses to listen on, beside `listen`, for the same service
    /// (memcached's `-l A,B` or repeated `-l`): say `[::1]:11211` beside
    /// `127.0.0.1:11211`, so that clients resolving `localhost` to either
    /// family connect. One with port 0 takes the port `listen` got. Each
    /// must bind, or [`Server::bind`] fails. Default empty.
    pub also_listen: Vec<SocketAddr>,
    /// Listen on this Unix domain socket instead (memcached's `-s` and
    /// `-a`): as with memcached, `listen` is then not bound at all. Unix
    /// only. Default `None`.
    pub unix_socket: Option<UnixSocketConfig>,
    /// Where to serve Prometheus metrics (`GET /metrics`, larder-server's
    /// `--metrics-listen`), if anywhere. Default `None`: off. Port 0 picks a
    /// free port; [`Server::metrics_addr`] tells which.
    pub metrics_listen: Option<SocketAddr>,
    /// Most connections served at once (memcached's `-c`). Default 1024.
    pub conn_limit: usize,
    /// Close a connection that completes no command for this long. `None`
    /// never does. Default 300 s.
    pub idle_timeout: Option<Duration>,
    /// Close a connection when writing its replies makes no progress for
    /// this long (the client stopped reading). `None` waits forever (memory
    /// stays bounded: the connection stops reading too). Default 300 s.
    pub write_timeout: Option<Duration>,
    /// Bytes of replies buffered before they are written (the session's
    /// output limit). Default 256 KiB.
    pub output_limit: usize,
    /// Bytes all connections together may use for read buffers and reply
    /// batches beyond a free 16 KiB each way per connection (larder-server's
    /// `--conn-buffer-budget`). A connection that needs more waits, reading
    /// nothing, until others give budget back; its reply batches shrink to
    /// the free part. Large values in replies are shared with the cache and
    /// not charged. Default 64 MiB: room for 256 connections' full reply
    /// batches, or 32 half-sent 1 MiB values, whatever `-c` is, so buffer
    /// memory stays within `memory_limit` + this + about 40 KiB per
    /// connection.
    pub conn_buffer_budget: usize,
    /// Bytes of unprocessed requests a connection may buffer. `None`: twice
    /// the item size limit plus the longest get line, room for any request
    /// and the start of the next.
    pub max_input: Option<usize>,
    /// How long [`Server::run`] waits for open connections after shutdown
    /// is asked before it returns anyway. Default 5 s.
    pub shutdown_grace: Duration,
    /// Worker threads of the runtime the server runs on; only reported
    /// (`threads` in `stats`). Default 4.
    pub threads: usize,
    /// Most requests answered for one connection before the others on its
    /// worker get a turn (memcached's `-R`; each turn given up counts in
    /// `conn_yields`). Default `None`: a turn ends when a batch's output or
    /// input window is full.
    pub reqs_per_event: Option<usize>,
    /// How often a background task reclaims expired items, a slice of each
    /// shard at a time (as memcached's LRU crawler does), so that an idle or
    /// read-mostly server frees their memory and `curr_items`/`bytes` count
    /// live items. Default 1 s; `None`: only writes and reads reclaim.
    pub expiry_sweep: Option<Duration>,
    /// The listening socket's backlog of connections not yet accepted
    /// (memcached's `-b`, reported as `tcp_backlog`). Default 1024.
    pub listen_backlog: u32,
    /// Logging to stderr: 0 errors only, 1 also rejected and timed-out
    /// connections, 2 also every connection, 3 also I/O details.
    pub verbosity: u8,
    /// Snapshots (larder-server's `--snapshot`): restore when
    /// [`Server::run`] starts, save periodically and when it stops. Default
    /// `None`: the cache starts empty and is lost at exit.
    pub snapshot: Option<SnapshotConfig>,
    /// Replication (larder-server's `--replica-of`, `--repl-backlog`,
    /// `--promote-after`; see docs/high-availability.md). Default: a
    /// primary with a 16 MiB backlog, used once a replica attaches.
    pub replication: ReplicationConfig,
    /// The item store. Its `server_stats` is replaced by the server's.
    /// The default differs from [`StoreConfig::default`] only in `version`,
    /// which is [`VERSION`].
    pub store: StoreConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 11211)),
            also_listen: Vec::new(),
            unix_socket: None,
            metrics_listen: None,
            conn_limit: 1024,
            idle_timeout: Some(Duration::from_secs(300)),
            write_timeout: Some(Duration::from_secs(300)),
            output_limit: 256 << 10,
            conn_buffer_budget: 64 << 20,
            max_input: None,
            shutdown_grace: Duration::from_secs(5),
            threads: 4,
            reqs_per_event: None,
            expiry_sweep: Some(Duration::from_secs(1)),
            listen_backlog: 1024,
            verbosity: 0,
            snapshot: None,
            replication: ReplicationConfig::default(),
            store: StoreConfig {
                version: VERSION.into(),
                ..StoreConfig::default()
            },
        }
    }
}

/// A Unix domain socket for a [`Server`] to listen on instead of TCP
/// (larder-server's `-s` and `-a`, as memcached's).
///
/// A socket file already at `path` that no server listens on (one a previous
/// run left: sockets are not removed at exit, as memcached does not remove
/// them) is replaced. [`Server::bind`] fails, leaving the file alone, when a
/// server is listening on it (memcached would take it over) or when it is
/// not a socket. The socket appears at `path` with `mode` already set: it is
/// bound in a private directory beside it and renamed into place.
///
/// ```
/// use larder::server::{ServerConfig, UnixSocketConfig};
///
/// let config = ServerConfig {
///     unix_socket: Some(UnixSocketConfig::new("/run/larder/larder.sock")),
///     ..ServerConfig::default()
/// };
/// assert_eq!(config.unix_socket.unwrap().mode, 0o700);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnixSocketConfig {
    /// The socket file.
    pub path: PathBuf,
    /// The socket file's permission bits (memcached's `-a`, octal on its
    /// command line; only the low nine bits count). A client needs write
    /// permission to connect. Default `0o700`: the server's user only.
    pub mode: u32,
}

impl UnixSocketConfig {
    /// A socket at `path` with mode `0o700`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        UnixSocketConfig {
            path: path.into(),
            mode: 0o700,
        }
    }
}

/// Where and how often a [`Server`] snapshots its store (see
/// [`Store::save_to_path`] for how a file is written safely).
///
/// ```
/// use std::time::Duration;
/// use larder::server::{ServerConfig, SnapshotConfig};
///
/// let config = ServerConfig {
///     snapshot: Some(SnapshotConfig {
///         interval: Some(Duration::from_secs(300)),
///         keep: 2,
///         ..SnapshotConfig::new("/var/lib/larder/cache.snap")
///     }),
///     ..ServerConfig::default()
/// };
/// assert_eq!(config.snapshot.unwrap().keep, 2);
/// ```
#[derive(Clone, Debug)]
pub struct SnapshotConfig {
    /// The snapshot file. Restored from when the server starts (falling back
    /// to older generations, then to an empty cache) and written when it
    /// stops.
    pub path: PathBuf,
    /// Also save every this long while serving. Default `None`: only at stop.
    pub interval: Option<Duration>,
    /// Older generations kept beside the newest (`PATH.1` … `PATH.<keep>`).
    /// Default 1.
    pub keep: usize,
}

impl SnapshotConfig {
    /// Snapshots to `path`, at stop only, keeping one older generation.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        SnapshotConfig {
            path: path.into(),
            interval: None,
            keep: 1,
        }
    }
}

/// A listening socket on `addr` with `backlog` pending connections, set up
/// as `TcpListener::bind` sets it up (address reuse on Unix).
fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    // An IPv6 address is that family alone, as memcached binds it, so that
    // `-l 0.0.0.0,::` (or `127.0.0.1,::1`) can bind both on one port.
    #[cfg(unix)]
    if addr.is_ipv6() {
        nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv6V6Only, &true)?;
    }
    socket.bind(addr)?;
    socket.listen(backlog)
}

/// The socket a [`Server`] accepts connections on.
enum Listener {
    /// `listen` first, then `also_listen`; and where the next accept
    /// starts looking, so that a busy listener does not starve the others.
    Tcp(Vec<TcpListener>, std::sync::atomic::AtomicUsize),
    #[cfg(unix)]
    Unix(tokio::net::UnixListener),
}

impl Listener {
    /// Accepts the next connection and hands it to its task.
    async fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(listeners, next) => {
                // Whichever listener has a connection waiting, starting
                // after the one that had the last (every Pending poll
                // registers the task's waker with its listener).
                let start = next.load(std::sync::atomic::Ordering::Relaxed);
                let n = listeners.len();
                let (i, accepted) = std::future::poll_fn(|cx| {
                    (0..n)
                        .map(|k| (start + k) % n)
                        .find_map(|i| match listeners[i].poll_accept(cx) {
                            std::task::Poll::Ready(accepted) => Some((i, accepted)),
                            std::task::Poll::Pending => None,
                        })
                        .map_or(std::task::Poll::Pending, std::task::Poll::Ready)
                })
                .await;
                next.store((i + 1) % n, std::sync::atomic::Ordering::Relaxed);
                let (stream, peer) = accepted?;
                Ok(Accepted::Tcp(stream, peer))
            }
            #[cfg(unix)]
            Listener::Unix(listener) => Ok(Accepted::Unix(listener.accept().await?.0)),
        }
    }
}

enum Accepted {
    Tcp(tokio::net::TcpStream, SocketAddr),
    #[cfg(unix)]
    Unix(tokio::net::UnixStream),
}

/// Binds the Unix domain socket `config` asks for, with `backlog` pending
/// connections.
///
/// What may be at the path first: nothing; a socket no server listens on
/// (one a previous run left: replaced); a socket a server is listening on
/// (refused, `AddrInUse`: memcached would take it over, orphaning that
/// server); anything else (refused, and left alone).
///
/// The socket is bound in a private directory beside the path (mode 0700,
/// so no other user can reach or swap it), given `config.mode` there, set
/// listening, and then renamed into place. So it never appears at the path
/// with other permissions than asked (memcached sets its umask around its
/// bind instead; the umask is the whole process's), and changing its mode
/// never follows a link another user put in a shared directory.
#[cfg(unix)]
fn listen_unix(config: &UnixSocketConfig, backlog: u32) -> io::Result<Listener> {
    use nix::sys::socket::{self, AddressFamily, Backlog, SockFlag, SockType, UnixAddr};
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::{DirBuilderExt, FileTypeExt, PermissionsExt};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let path = &config.path;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::AddrInUse,
                        "a server is listening on that socket",
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e),
            }
        }
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "a file that is not a socket is in the way",
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let parent = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => std::path::Path::new("."),
    };
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let private = parent.join(format!(".larder-{}-{n}", std::process::id()));
    std::fs::DirBuilder::new().mode(0o700).create(&private)?;
    let inner = private.join("s");
    let bound = (|| {
        let fd = socket::socket(
            AddressFamily::Unix,
            SockType::Stream,
            SockFlag::SOCK_CLOEXEC,
            None,
        )?;
        socket::bind(fd.as_raw_fd(), &UnixAddr::new(&inner)?)?;
        let mode = std::fs::Permissions::from_mode(config.mode & 0o777);
        std::fs::set_permissions(&inner, mode)?;
        let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
        socket::listen(&fd, Backlog::new(backlog).unwrap_or(Backlog::MAXCONN))?;
        std::fs::rename(&inner, path)?;
        let listener = std::os::unix::net::UnixListener::from(fd);
        listener.set_nonblocking(true)?;
        tokio::net::UnixListener::from_std(listener).map(Listener::Unix)
    })();
    let _ = std::fs::remove_file(&inner);
    let _ = std::fs::remove_dir(&private);
    bound
}

#[cfg(not(unix))]
fn listen_unix(_: &UnixSocketConfig, _: u32) -> io::Result<Listener> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "Unix domain sockets need a Unix system",
    ))
}

/// A server's part in replication (see docs/high-availability.md).
///
/// ```
/// use std::time::Duration;
/// use larder::server::{ReplicationConfig, ServerConfig};
///
/// let config = ServerConfig {
///     replication: ReplicationConfig {
///         replica_of: Some("10.0.0.1:11211".into()),
///         promote_after: Some(Duration::from_secs(5)),
///         ..ReplicationConfig::default()
///     },
///     ..ServerConfig::default()
/// };
/// assert_eq!(config.replication.backlog, 16 << 20);
/// ```
#[derive(Clone, Debug)]
pub struct ReplicationConfig {
    /// Follow this primary (`HOST:PORT`) as a read-only replica. Default
    /// `None`: a primary.
    pub replica_of: Option<String>,
    /// Bytes of recent changes a primary keeps so that a replica that
    /// reconnects can resume instead of syncing in full (reserved at start,
    /// and resident only as it fills, which begins when the first replica
    /// attaches; a replica keeps one too, for its own replicas). A size that
    /// cannot be reserved is refused at start ([`ServerError::Backlog`]).
    /// Default 16 MiB.
    pub backlog: usize,
    /// A replica that has synced once and then cannot reach its primary
    /// for this long promotes itself to primary. Default `None`: only the
    /// `replica promote` command promotes.
    pub promote_after: Option<Duration>,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            replica_of: None,
            backlog: crate::memcached::store::repl::DEFAULT_BACKLOG,
            promote_after: None,
        }
    }
}

/// Why [`Server::bind`] failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum ServerError {
    /// The store configuration was refused.
    Store(StoreError),
    /// The listening socket could not be opened.
    Bind(SocketAddr, io::Error),
    /// The Unix domain socket ([`ServerConfig::unix_socket`]) could not be
    /// opened.
    BindUnix(PathBuf, io::Error),
    /// The replication backlog (`--repl-backlog`, this many bytes) could not
    /// be allocated.
    Backlog(usize),
}

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerError::Store(e) => write!(f, "invalid store configuration: {e}"),
            ServerError::Bind(addr, e) => write!(f, "cannot listen on {addr}: {e}"),
            ServerError::BindUnix(path, e) => {
                write!(f, "cannot listen on unix socket {}: {e}", path.display())
            }
            ServerError::Backlog(n) => {
                write!(f, "cannot allocate a replication backlog of {n} bytes")
            }
        }
    }
}

impl std::error::Error for ServerError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ServerError::Store(e) => Some(e),
            ServerError::Bind(_, e) | ServerError::BindUnix(_, e) => Some(e),
            ServerError::Backlog(_) => None,
        }
    }
}

/// A bound, not yet running, memcached server.
///
/// [`Server::bind`] opens the socket and builds the store; [`Server::run`]
/// serves until the future it is given completes, a client sends
/// `shutdown` (when enabled), or a fatal error.
pub struct Server {
    snapshot: Option<SnapshotConfig>,
    replication: ReplicationConfig,
    listener: Listener,
    metrics: Option<TcpListener>,
    store: Arc<Store>,
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// Builds the store and binds the listening socket.
    ///
    /// # Errors
    /// [`ServerError::Store`] for a store configuration [`Store::new`]
    /// refuses, [`ServerError::Bind`] when the address cannot be bound.
    ///
    /// ```
    /// use larder::server::{Server, ServerConfig};
    ///
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// runtime.block_on(async {
    ///     let server = Server::bind(ServerConfig {
    ///         listen: "127.0.0.1:0".parse()?,
    ///         ..ServerConfig::default()
    ///     })
    ///     .await?;
    ///     assert_ne!(server.local_addr().port(), 0);
    ///     Ok::<(), Box<dyn std::error::Error>>(())
    /// })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        // The TCP listener is bound first; the Unix socket last, once nothing
        // else can fail (binding it replaces a stale socket file).
        enum Pending<'a> {
            Tcp(Vec<TcpListener>),
            Unix(&'a UnixSocketConfig),
        }
        let (pending, local_addr) = match &config.unix_socket {
            None => {
                let listener = listen(config.listen, config.listen_backlog)
                    .map_err(|e| ServerError::Bind(config.listen, e))?;
                let local_addr = listener
                    .local_addr()
                    .map_err(|e| ServerError::Bind(config.listen, e))?;
                let mut listeners = vec![listener];
                for &addr in &config.also_listen {
                    let addr = match addr.port() {
                        0 => SocketAddr::new(addr.ip(), local_addr.port()),
                        _ => addr,
                    };
                    listeners.push(
                        listen(addr, config.listen_backlog)
                            .map_err(|e| ServerError::Bind(addr, e))?,
                    );
                }
                (Pending::Tcp(listeners), local_addr)
            }
            Some(unix) => (Pending::Unix(unix), config.listen),
        };
        let (metrics, metrics_addr) = match config.metrics_listen {
            None => (None, None),
            Some(addr) => {
                let bind_error = |e| ServerError::Bind(addr, e);
                let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
                let bound = listener.local_addr().map_err(bind_error)?;
                (Some(listener), Some(bound))
            }
        };
        let mut store_config = config.store.clone();
        let shared = Arc::new(Shared::new(&config, local_addr, metrics_addr));
        store_config.server_stats = Some(Arc::clone(&shared) as _);
        let store = Arc::new(Store::new(store_config).map_err(ServerError::Store)?);
        let role = if config.replication.replica_of.is_some() {
            Role::Replica
        } else {
            Role::Primary
        };
        store
            .replication()
            .configure(config.replication.backlog, role)
            .map_err(|_| ServerError::Backlog(config.replication.backlog))?;
        let listener = match pending {
            Pending::Tcp(listeners) => Listener::Tcp(listeners, Default::default()),
            Pending::Unix(unix) => listen_unix(unix, config.listen_backlog)
                .map_err(|e| ServerError::BindUnix(unix.path.clone(), e))?,
        };
        Ok(Server {
            replication: config.replication,
            snapshot: config.snapshot,
            listener,
            metrics,
            store,
            shared,
            local_addr,
        })
    }

    /// The address the server listens on (with the real port when bound to
    /// port 0). With [`ServerConfig::unix_socket`], no TCP address is
    /// bound: this is [`ServerConfig::listen`] as given, and
    /// [`unix_socket`](Self::unix_socket) is where the server listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Every TCP address the server listens on: [`local_addr`](Self::local_addr)
    /// first, then those of [`ServerConfig::also_listen`] (none with a Unix
    /// socket).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        match &self.listener {
            Listener::Tcp(listeners, _) => listeners
                .iter()
                .filter_map(|l| l.local_addr().ok())
                .collect(),
            #[cfg(unix)]
            Listener::Unix(_) => Vec::new(),
        }
    }

    /// The Unix domain socket the server listens on, when
    /// [`ServerConfig::unix_socket`] asked for one.
    pub fn unix_socket(&self) -> Option<&std::path::Path> {
        use crate::memcached::ServerStats;
        self.shared.domain_socket().map(|(path, _)| path)
    }

    /// Where the Prometheus endpoint listens, when
    /// [`ServerConfig::metrics_listen`] asked for one.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.shared.metrics_addr()
    }

    /// The store the server serves, to inspect or seed it in-process.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Accepts and serves connections until `shutdown` completes (or a
    /// client's `shutdown` command, when enabled), then stops accepting,
    /// closes idle connections, lets busy ones finish their batch, and
    /// returns once all are gone or [`ServerConfig::shutdown_grace`] has
    /// passed.
    ///
    /// With [`ServerConfig::snapshot`], the store is first restored from the
    /// snapshot (connections wait in the listen backlog meanwhile; a damaged
    /// or missing file is logged in one line and never stops the start),
    /// saved every `interval` while serving, and saved once more after the
    /// connections are gone. `shutdown` is first polled after the restore:
    /// install signal handlers before calling `run` (as larder-server does),
    /// so that a signal during a long restore is not handled by the default
    /// action.
    ///
    /// # Errors
    /// Never for a failed connection (those are logged and closed); only if
    /// the listener itself fails in a way retrying cannot fix.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> io::Result<()> {
        let Server {
            replication,
            snapshot,
            listener,
            metrics,
            store,
            shared,
            local_addr: _,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        // Metrics first: a scrape answers (and shows an empty store) while a
        // large snapshot restores.
        if let Some(listener) = metrics {
            let serve = metrics::serve(
                listener,
                Arc::clone(&store),
                Arc::clone(&shared),
                stop_rx.clone(),
            );
            tokio::spawn(serve);
        }
        if let Some(snap) = &snapshot {
            restore(&store, &shared, snap).await;
            if let Some(every) = snap.interval {
                let save = periodic_saves(
                    Arc::clone(&store),
                    Arc::clone(&shared),
                    snap.clone(),
                    every,
                    stop_rx.clone(),
                );
                tokio::spawn(save);
            }
        }
        if let Some(every) = shared.expiry_sweep() {
            tokio::spawn(sweep_expired(Arc::clone(&store), every, stop_rx.clone()));
        }
        tokio::spawn(move_pages(Arc::clone(&store), stop_rx.clone()));
        if let Some(primary) = replication.replica_of {
            let config = repl::LinkConfig {
                primary,
                promote_after: replication.promote_after,
            };
            shared.log(
                1,
                format_args!("replication: a read-only replica of {}", config.primary),
            );
            let (store, shared) = (Arc::clone(&store), Arc::clone(&shared));
            std::thread::Builder::new()
                .name("larder-repl-link".into())
                .spawn(move || repl::run_link(store, shared, config))?;
        }
        // Every connection task holds a sender; `recv` returns `None` once
        // they are all gone.
        let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
        let mut requested = shared.shutdown_requested();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                _ = requested.changed() => break,
                accepted = listener.accept() => match accepted {
                    Ok(Accepted::Tcp(stream, peer)) => {
                        let peer = stats::Peer::Tcp(peer);
                        conn::spawn(stream, peer, &store, &shared, &stop_rx, &alive_tx);
                    }
                    #[cfg(unix)]
                    Ok(Accepted::Unix(stream)) => {
                        let peer = stats::Peer::Unix;
                        conn::spawn(stream, peer, &store, &shared, &stop_rx, &alive_tx);
                    }
                    Err(e) => {
                        shared.log(1, format_args!("accept failed: {e}"));
                        // Out of file descriptors and the like: back off
                        // instead of spinning (memcached's "listen
                        // disabled", counted as it counts it).
                        shared.listen_disabled(ACCEPT_BACKOFF);
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        shared.listen_enabled();
                    }
                },
            }
        }
        drop(listener);
        shared.log(
            1,
            format_args!(
                "shutting down; {} connection(s) open",
                shared.curr_connections()
            ),
        );
        let _ = stop_tx.send(true);
        store
            .replication()
            .stopping
            .store(true, std::sync::atomic::Ordering::Release);
        drop(alive_tx);
        let drained = tokio::time::timeout(shared.shutdown_grace(), alive_rx.recv()).await;
        if drained.is_err() {
            shared.log(
                1,
                format_args!(
                    "{} connection(s) still open after the grace period",
                    shared.curr_connections()
                ),
            );
        }
        if let Some(snap) = snapshot {
            save(&store, &shared, &snap, 0).await;
        }
        Ok(())
    }
}

/// Restores the store from the newest good generation of the snapshot, and
/// says in one line what happened.
async fn restore(store: &Arc<Store>, shared: &Arc<Shared>, snap: &SnapshotConfig) {
    let (s, path, keep) = (Arc::clone(store), snap.path.clone(), snap.keep);
    let started = std::time::Instant::now();
    let restored = match tokio::task::spawn_blocking(move || s.restore_from_path(&path, keep)).await
    {
        Ok(restored) => restored,
        Err(e) => {
            shared.log(
                0,
                format_args!("snapshot restore failed: {e}; starting empty"),
            );
            return;
        }
    };
    let refused: Vec<String> = restored
        .refused
        .iter()
        .map(|(path, e)| format!("{} refused ({e})", path.display()))
        .collect();
    let refused = if refused.is_empty() {
        String::new()
    } else {
        format!("{}; ", refused.join("; "))
    };
    match &restored.from {
        Some((path, report)) => shared.log(
            0,
            format_args!(
                "snapshot: {refused}restored {} items from {} in {} ms ({} expired while down)",
                report.loaded,
                path.display(),
                started.elapsed().as_millis(),
                report.expired,
            ),
        ),
        None if refused.is_empty() => shared.log(
            0,
            format_args!(
                "snapshot: no snapshot at {}; starting empty",
                snap.path.display()
            ),
        ),
        None => shared.log(0, format_args!("snapshot: {refused}starting empty")),
    }
}

/// Saves the store to the snapshot file; failures are logged at level 0,
/// successes at `level`.
async fn save(store: &Arc<Store>, shared: &Arc<Shared>, snap: &SnapshotConfig, level: u8) {
    let (s, path, keep) = (Arc::clone(store), snap.path.clone(), snap.keep);
    let result = tokio::task::spawn_blocking(move || s.save_to_path(&path, keep)).await;
    let took = store.snapshot_status().duration_ms;
    match result {
        Ok(Ok(report)) => shared.log(
            level,
            format_args!(
                "snapshot: saved {} items ({} bytes) to {} in {took} ms",
                report.entries,
                report.bytes,
                snap.path.display()
            ),
        ),
        Ok(Err(e)) => shared.log(
            0,
            format_args!(
                "snapshot: saving to {} failed: {e}; the previous snapshot is kept",
                snap.path.display()
            ),
        ),
        Err(e) => shared.log(0, format_args!("snapshot: save task failed: {e}")),
    }
}

/// Slots of each shard one sweep looks at: a shard of a million slots is gone
/// round in about four minutes at one sweep a second, and one sweep holds a
/// shard's lock for a few tens of microseconds.
const SWEEP_SLOTS: usize = 4096;

/// Reclaims expired items every `every` until the server stops.
async fn sweep_expired(store: Arc<Store>, every: Duration, mut stop: watch::Receiver<bool>) {
    let mut tick = ticks(every);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if store.crawler_enabled() {
                    store.reclaim_expired(SWEEP_SLOTS);
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// A timer for a background task: first tick one period from now, and a
/// tick missed while the task ran is not made up in a burst.
fn ticks(every: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// How often the page mover looks for sparse arena pages.
const MOVER_TICK: Duration = Duration::from_millis(100);
/// Pages it tries at a time, between looks at the clock.
const MOVER_PAGES: usize = 16;
/// The most time it takes per tick: a tenth of one core at most, spent only
/// while some size class holds a page's worth of free slots. A sparse page
/// costs about its items' copies (a few microseconds for a page a tenth
/// full), so this gives back hundreds of MiB a second after a shift in
/// item sizes, faster than clients can fill the new sizes' pages.
const MOVER_BUDGET: Duration = Duration::from_millis(10);

/// Runs the store's page mover (memcached's slab automove) while
/// `slabs automove` has it on, until the server stops. The moves copy
/// items under shard locks, so they run on the blocking pool, not on a
/// worker that serves connections.
async fn move_pages(store: Arc<Store>, mut stop: watch::Receiver<bool>) {
    let mut tick = ticks(MOVER_TICK);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                if store.page_mover_enabled() {
                    let store = Arc::clone(&store);
                    let _ = tokio::task::spawn_blocking(move || {
                        let start = std::time::Instant::now();
                        while store.move_pages(MOVER_PAGES).pages_tried == MOVER_PAGES as u64
                            && start.elapsed() < MOVER_BUDGET
                        {}
                    })
                    .await;
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Saves every `every` until the server stops.
async fn periodic_saves(
    store: Arc<Store>,
    shared: Arc<Shared>,
    snap: SnapshotConfig,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = ticks(every);
    loop {
        tokio::select! {
            _ = tick.tick() => save(&store, &shared, &snap, 1).await,
            _ = stop.changed() => return,
        }
    }
}
