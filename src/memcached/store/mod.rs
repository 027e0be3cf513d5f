//! The executor: runs parsed [`Request`]s against a cache of memcached items
//! and writes memcached's replies.
//!
//! A [`Store`] is a [`Cache`](crate::Cache) of memcached items plus what memcached
//! keeps beside its hash table: the CAS counter, the `flush_all` epoch, and
//! the statistics. It is `Sync`: share one store between all connections.
//! Per-connection parsing state lives in a [`Session`].
//!
//! # Invariants
//! - Every read-modify-write command (`add`, `replace`, `append`, `prepend`,
//!   `cas`, `incr`/`decr`, `touch`, `gat`, and the meta commands that change
//!   an item) runs under its shard's write lock (the cache's `compute`), so it
//!   is atomic with respect to every other command on the same key.
//! - An item's weight is what it costs in memory: its block (header, key and
//!   value, in the arena slot it takes, or on the heap as the allocator
//!   rounds it for long ones) plus [`ITEM_OVERHEAD`]; the store refuses an
//!   item heavier than a shard's share of the memory limit before the cache
//!   sees it, so nothing reported as stored is dropped on the way in.
//! - CAS uniques come from one counter: unique and increasing (unless a
//!   client chooses one with the meta `E` flag).
//! - An item stored before a `flush_all` took effect is never returned.
//! - Every change to an item goes through `mutate` (the cache's
//!   `compute_keyed`), which, on a primary with replicas, records the item's
//!   resulting state in the replication backlog under the same shard lock
//!   (see `repl.rs`); a replica refuses client writes and applies only the
//!   primary's records.
//!
//! # Where this differs from memcached
//! - Time has millisecond resolution: a TTL of 10 s expires 10 s after the
//!   store, and a delayed `flush_all` takes effect at its deadline (memcached
//!   works in whole seconds and flushes one second early). Far-future TTLs are
//!   kept exactly.
//! - `cache_memlimit` resizes at once: shrinking evicts until the items fit
//!   (memcached frees slab pages over time); without evictions (`-M`)
//!   nothing is evicted, and stores are refused until enough items are
//!   deleted or expire. It is refused
//!   (`MEMLIMIT_ADJUST_FAILED`) when a shard's share could no longer hold the
//!   largest item.
//! - `slabs` and `lru` parse with memcached's argument rules and error lines
//!   but change nothing; `lru_crawler` drives the background expiry sweep and
//!   `metadump` lists the items (see `admin.rs` for each answer);
//!   `watch` and `lru_crawler mgdump` are unknown commands (`ERROR`).
//! - `get_expired` counts the plain reads (`get`, `gets`, `mg` without `T`
//!   or `N`, `me`, binary gets) that meet an expired item not yet reclaimed;
//!   the read unlinks it, which larder's listener also counts in `reclaimed`
//!   and `expired_unfetched`. memcached counts every lookup that meets one:
//!   also `gat`/`gats`, `touch`, `mg` with `T`/`N`, counters, `delete` and
//!   stores, which here find it gone without counting; and it keeps an item
//!   stored already expired, which larder does not. `get_flushed` counts
//!   only the rare lookup that meets a flushed item before `flush_all` has
//!   reclaimed it (reclaiming is eager).
//! - Memory: each item is one block of a 4-24 byte header, key and value, in
//!   a slot of the store's arena (size classes 8 or 16 bytes apart, with no
//!   header of their own) up to 1 KiB, on the heap beyond, plus
//!   [`ITEM_OVERHEAD`] bytes in the
//!   cache (memcached: a 48–56 byte header and slab-class rounding), all
//!   counted against `memory_limit`. Slab and
//!   item statistics describe one pseudo slab class, `1`; `stats cachedump
//!   1 N` lists its items.
//! - `mg`: `T` is applied before any return flag is computed (memcached
//!   applies flags in order, so `t` before `T` shows the old TTL there). A
//!   vivified miss (`N`) counts as a miss. `h`/`l` are kept per item; the
//!   access time is updated with a compare-and-swap that may lose a race
//!   (harmless: another reader just set it).
//! - `ma` with `q` suppresses `HD` only; a requested value (`v`) is sent.
//! - `ms` returns `O`, `k` and `c`; other return flags are ignored. `me`
//!   reports the remaining TTL as `exp`, the item's weight as `size`, and
//!   class 1.
//! - A counter value is decimal digits with optional surrounding whitespace
//!   (no sign), as memcached's `strtoull` reads it minus the sign.
//! - `stats` has no process or connection figures of its own: a server adds
//!   them through [`ServerStats`].

mod admin;
mod auth;
mod binary;
mod counters;
mod detail;
mod dump;
mod item;
mod meta;
mod numeric;
mod output;
pub(crate) mod repl;
mod session;
mod snapshot;
mod stats;
mod text;
mod thin;
mod time;

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use crate::cache::KeyedOp;
use crate::memcached::{Limits, Request};
use crate::sync::{Arc, AtomicBool, AtomicU32, AtomicU64};
use crate::{Cache, Clock, Occupied, Policy, RemovalCause};

use auth::Users;
pub use auth::{Credentials, CredentialsError};
use counters::{Counter, Counters};
use item::{Block, Head, ItemRef, Meta};
pub use item::{Item, ITEM_OVERHEAD};
pub use output::Output;
pub use session::{Progress, Session};
pub use snapshot::{Restored, SnapshotStatus};
pub use stats::{ServerStats, StatWriter};
use time::{Expiry, Time};

/// Bytes memcached 1.6.18 counts in an item beside its key and value, on a
/// 64-bit build: the item header (48), the CAS unique (8), the NUL after the
/// key (1) and the `\r\n` after the value (2). Nonzero client flags add 4.
/// See [`StoreConfig::count_item_header`].
pub const MEMCACHED_ITEM_HEADER: usize = 59;

/// The largest `max_item_size` a store accepts (item weights must stay below
/// 2^28).
pub const MAX_ITEM_SIZE: usize = 128 << 20;

/// What a [`Store`] is built from. Start from [`StoreConfig::default`] and
/// change what you need.
///
/// ```
/// use larder::memcached::{Store, StoreConfig};
///
/// let (clock, _hand) = larder::Clock::manual();
/// let store = Store::new(StoreConfig {
///     memory_limit: 16 << 20,
///     clock,
///     unix_time: Some(1_700_000_000),
///     ..StoreConfig::default()
/// })?;
/// assert_eq!(store.limits().max_item_size, 1 << 20);
/// # Ok::<(), larder::memcached::StoreError>(())
/// ```
#[derive(Clone)]
pub struct StoreConfig {
    /// Bytes the items may use in all, overhead included (memcached's `-m`).
    /// Default 64 MiB.
    pub memory_limit: u64,
    /// Largest item a client may store (memcached's `-I`); larger ones get
    /// `SERVER_ERROR object too large for cache`. Counted as memcached 1.6
    /// counts it unless [`count_item_header`](Self::count_item_header) is
    /// off: the value, the key and memcached's item header together.
    /// Default 1 MiB, at most [`MAX_ITEM_SIZE`].
    pub max_item_size: usize,
    /// Whether `max_item_size` bounds the whole item as memcached 1.6.18
    /// (64-bit) counts it: value, key, and [`MEMCACHED_ITEM_HEADER`] bytes of
    /// header, 4 more when the client flags are not 0. So with `-I 1m` a
    /// value of 1 MiB is too large, as in memcached (clients' own test
    /// suites check this), and so is any value over `max_item_size` minus
    /// the key's length and 59. An append whose result would be over the
    /// limit is `NOT_STORED`, as in memcached. Default `true`; `false`
    /// bounds the value alone.
    pub count_item_header: bool,
    /// Shards of the underlying cache (a power of two). `None` picks the
    /// most shards, up to four per CPU, that still leave each shard room for
    /// two items of `max_item_size`: an item heavier than its shard's share
    /// of `memory_limit` cannot be stored.
    pub shards: Option<usize>,
    /// Eviction policy of the underlying cache.
    pub policy: Policy,
    /// The clock for TTLs. Tests pass [`Clock::manual`].
    pub clock: Clock,
    /// Unix time (seconds) at the moment the store is built, for absolute
    /// exptimes; it then advances with `clock`. `None`: the system's time.
    pub unix_time: Option<u64>,
    /// The first CAS unique handed out. Default 1.
    pub cas_start: u64,
    /// Whether `shutdown` is honoured (memcached's `-A`). Default `false`:
    /// it is answered with `ERROR: shutdown not enabled`.
    pub enable_shutdown: bool,
    /// Whether `flush_all` (and the binary `FLUSH`) is honoured. Default
    /// `true`; `false` is memcached's `-F`: `flush_all` is answered with
    /// `CLIENT_ERROR flush_all not allowed` (binary: status `0x0020`), and
    /// still counted in `cmd_flush`.
    pub flush_enabled: bool,
    /// Which protocols a session may speak (memcached's `-B`). Default
    /// [`Protocols::Auto`]: the first byte decides.
    pub protocols: Protocols,
    /// Whether the items may be listed (`stats cachedump`, `lru_crawler
    /// metadump`). Default `true`; `false` is memcached's `-X`: both are
    /// refused as memcached refuses them.
    pub dump_enabled: bool,
    /// Whether expired items are reclaimed in the background from the
    /// start (memcached's LRU crawler; see [`Store::crawler_enabled`]).
    /// Default `true`, as in memcached.
    pub lru_crawler: bool,
    /// SASL authentication for binary connections (memcached's `-S`):
    /// `None` (the default) answers the SASL commands `Unknown command` and
    /// lets every connection in; with [`Credentials`], a binary connection
    /// must authenticate with `PLAIN` before any request but `VERSION` is
    /// answered (see [`Credentials`] for the exchange). Text and meta have
    /// no authentication, so [`Store::new`] refuses SASL unless
    /// [`protocols`](Self::protocols) is [`Protocols::Binary`]
    /// ([`StoreError::SaslNeedsBinary`]), as memcached's `-S` refuses the
    /// ASCII protocol.
    pub sasl: Option<Credentials>,
    /// memcached's ASCII authentication (`-Y FILE`): `None` (the default)
    /// lets every text connection in; with [`Credentials`], a text
    /// connection's first request must be a `set` whose data is `user
    /// password`, answered `STORED` when they match (see
    /// `Store::ascii_authenticate`); until then every request is answered
    /// `CLIENT_ERROR unauthenticated`. [`Store::new`] refuses it unless
    /// [`protocols`](Self::protocols) is [`Protocols::Text`]
    /// ([`StoreError::AsciiAuthNeedsText`]), as memcached's `-Y` refuses the
    /// binary protocol.
    pub ascii_auth: Option<Credentials>,
    /// Whether live items are evicted to make room. Default `true`; `false`
    /// is memcached's `-M`: once the items fill `memory_limit`, a store
    /// that needs more room is refused with `SERVER_ERROR out of memory
    /// storing object` (binary: status `0x0082`), counted in
    /// `store_no_memory`, and a refused `set` drops the key's old value, as
    /// memcached does. Expired items are still reclaimed to make room.
    /// Writers checking at the same moment may overshoot the limit by what
    /// they write, and so may counters that grow by a digit, items that
    /// `mg … N` creates and a replica applying its primary's writes.
    pub evictions: bool,
    /// Whether the arena's page mover is to run in the background from the
    /// start (memcached's `slab_automove`; see [`Store::move_pages`]). The
    /// store only keeps the setting, which `slabs automove` changes; a
    /// server runs the mover while it is on. Default `true`.
    pub page_mover: bool,
    /// What `version` answers. Default
    /// [`MEMCACHED_VERSION`](crate::memcached::MEMCACHED_VERSION); `stats`
    /// also reports larder's own as `larder_version`.
    pub version: Cow<'static, str>,
    /// Parser limits (key and line lengths, keys per get).
    /// `limits.max_item_size` is replaced by [`max_item_size`](Self::max_item_size),
    /// and `limits.max_key_len` is at most 255 (an item stores its key's length
    /// in one byte; memcached's own limit is 250).
    pub limits: Limits,
    /// Statistics only the server knows (connections, threads, …), added to
    /// the `stats` replies.
    pub server_stats: Option<Arc<dyn ServerStats>>,
}

/// The protocols a session may speak (memcached's `-B`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocols {
    /// Text (with meta) or binary, decided by the session's first byte
    /// (`0x80`: binary). memcached's `-B auto`.
    #[default]
    Auto,
    /// Text and meta only: a binary request is read as a text line.
    Text,
    /// Binary only: a text request is a bad binary header, and the session
    /// is closed as memcached closes it.
    Binary,
}

impl Protocols {
    /// memcached's name for the setting in `stats settings`
    /// (`binding_protocol`).
    pub fn name(self) -> &'static str {
        match self {
            Protocols::Auto => "auto-negotiate",
            Protocols::Text => "ascii",
            Protocols::Binary => "binary",
        }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            memory_limit: 64 << 20,
            max_item_size: 1 << 20,
            count_item_header: true,
            shards: None,
            policy: Policy::default(),
            clock: Clock::system(),
            unix_time: None,
            cas_start: 1,
            enable_shutdown: false,
            flush_enabled: true,
            protocols: Protocols::Auto,
            dump_enabled: true,
            lru_crawler: true,
            sasl: None,
            ascii_auth: None,
            evictions: true,
            page_mover: true,
            version: Cow::Borrowed(super::MEMCACHED_VERSION),
            limits: Limits::default(),
            server_stats: None,
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("memory_limit", &self.memory_limit)
            .field("max_item_size", &self.max_item_size)
            .field("count_item_header", &self.count_item_header)
            .field("shards", &self.shards)
            .field("policy", &self.policy)
            .field("clock", &self.clock)
            .field("unix_time", &self.unix_time)
            .field("cas_start", &self.cas_start)
            .field("enable_shutdown", &self.enable_shutdown)
            .field("flush_enabled", &self.flush_enabled)
            .field("protocols", &self.protocols)
            .field("dump_enabled", &self.dump_enabled)
            .field("lru_crawler", &self.lru_crawler)
            .field("sasl", &self.sasl)
            .field("ascii_auth", &self.ascii_auth)
            .field("evictions", &self.evictions)
            .field("version", &self.version)
            .field("limits", &self.limits)
            .field("server_stats", &self.server_stats.is_some())
            .finish()
    }
}

/// Why [`Store::new`] refused a [`StoreConfig`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// `memory_limit` is zero.
    ZeroMemoryLimit,
    /// `max_item_size` is zero or above [`MAX_ITEM_SIZE`].
    InvalidItemSize(usize),
    /// `shards` is not a power of two from 1 to [`MAX_SHARDS`](crate::MAX_SHARDS).
    InvalidShardCount(usize),
    /// [`StoreConfig::sasl`] is set but [`StoreConfig::protocols`] lets
    /// text connections in, which would not authenticate (memcached's
    /// "You cannot allow the ASCII protocol while using SASL").
    SaslNeedsBinary,
    /// [`StoreConfig::ascii_auth`] is set but [`StoreConfig::protocols`]
    /// lets binary connections in, which would not authenticate
    /// (memcached's "You cannot allow the BINARY protocol while using ascii
    /// authentication tokens").
    AsciiAuthNeedsText,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::ZeroMemoryLimit => f.write_str("the memory limit must not be zero"),
            StoreError::InvalidItemSize(n) => {
                write!(f, "max item size {n} is not between 1 and {MAX_ITEM_SIZE}")
            }
            StoreError::InvalidShardCount(n) => {
                write!(f, "shard count {n} is not a power of two in range")
            }
            StoreError::AsciiAuthNeedsText => f.write_str(
                "ASCII authentication needs the text protocol only (binary connections \
                 cannot authenticate with it)",
            ),
            StoreError::SaslNeedsBinary => f.write_str(
                "SASL authentication needs the binary protocol only (text connections \
                 cannot authenticate)",
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// CAS uniques at or above this were set by a client (`E`), never counted.
pub(super) const GENERATED_CAS_LIMIT: u64 = 1 << 63;

/// What the caller should do with the connection after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
#[non_exhaustive]
pub enum Outcome {
    /// Keep reading requests.
    Continue,
    /// Send what was written, then close the connection (`quit`, or a fatal
    /// protocol error).
    Close,
    /// `shutdown` (only when [`StoreConfig::enable_shutdown`]): stop the
    /// server; `graceful` asks to finish the open connections first.
    Shutdown {
        /// `shutdown graceful`.
        graceful: bool,
    },
    /// `replica sync`: a replica asks for the replication stream. A server
    /// hands the connection over to replication (see
    /// docs/high-availability.md); anything else closes it.
    Replicate {
        /// The history the replica holds, if any.
        id: Option<[u8; 40]>,
        /// The offset it holds it up to.
        offset: u64,
    },
}

/// What one [`Store::move_pages`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PageMoves {
    /// Pages emptied of items to move.
    pub pages_tried: u64,
    /// Pages that went back to the heap.
    pub pages_freed: u64,
    /// Items moved to another slot.
    pub items_moved: u64,
}

/// A memcached item store over a larder [`Cache`](crate::Cache).
///
/// Build one with [`Store::new`], share it (`Arc<Store>`) between
/// connections, and feed it bytes with [`Store::process`] or parsed requests
/// with [`Store::execute`].
///
/// **Locking behaviour:** each command takes the write lock (or, for plain
/// reads, the read lock) of its key's shard, one key at a time; a multi-key
/// `get` locks the keys' shards one after another. A hit's reply is written
/// from the item in place, under its shard's lock (a value of 4 KiB or more is
/// shared with the reply instead of copied). `flush_all` and `stats` lock every
/// shard in turn.
///
/// ```
/// use larder::memcached::{Session, Store, StoreConfig};
///
/// let store = Store::new(StoreConfig::default())?;
/// let mut session = Session::new();
/// let mut out = Vec::new();
/// let input = b"set greeting 0 0 5\r\nhello\r\nget greeting\r\n";
/// let progress = store.process(&mut session, input, &mut out);
/// assert_eq!(progress.consumed, input.len());
/// assert_eq!(out, b"STORED\r\nVALUE greeting 0 5\r\nhello\r\nEND\r\n");
/// # Ok::<(), larder::memcached::StoreError>(())
/// ```
pub struct Store {
    cache: Cache<Block, Meta>,
    time: Time,
    next_cas: AtomicU64,
    /// Bumped by every `flush_all` that takes effect: an item made under an
    /// older epoch was flushed.
    epoch: AtomicU32,
    /// A delayed `flush_all` deadline on the store clock (ms); 0 = none.
    flush_pending: AtomicU64,
    /// Held while a due delayed `flush_all` moves the epoch.
    flush_lock: crate::sync::Mutex<()>,
    counters: Arc<Counters>,
    limits: Limits,
    /// [`StoreConfig::count_item_header`].
    count_item_header: bool,
    /// Not [`StoreConfig::evictions`]: writers ask for room first.
    keep_live: bool,
    /// [`StoreConfig::sasl`] (see [`Store::set_sasl_users`]).
    sasl: Option<Users>,
    /// [`StoreConfig::ascii_auth`] (see [`Store::set_ascii_users`]).
    ascii_auth: Option<Users>,
    /// Heaviest item a shard can hold (its share of `memory_limit`).
    max_weight: AtomicU64,
    memory_limit: AtomicU64,
    enable_shutdown: bool,
    flush_enabled: bool,
    protocols: Protocols,
    crawler: AtomicBool,
    page_mover: AtomicBool,
    /// This store's id for the arena's page mover.
    mover: std::num::NonZeroU32,
    dump_enabled: bool,
    /// Held by `set_memory_limit`, so that the cache's capacity and the
    /// store's limits move together.
    resizing: crate::sync::Mutex<()>,
    version: Cow<'static, str>,
    server_stats: Option<Arc<dyn ServerStats>>,
    /// `stats detail`'s per-prefix counts.
    detail: detail::Detail,
    /// The last snapshot's outcome (see `snapshot.rs`).
    snapshot: snapshot::SnapshotState,
    /// Replication: role, backlog, figures (see `repl.rs`).
    repl: repl::Replication,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("cache", &self.cache)
            .field("memory_limit", &self.memory_limit)
            .field("limits", &self.limits)
            .field("next_cas", &self.next_cas.load(Relaxed))
            .finish_non_exhaustive()
    }
}

fn default_shards(memory_limit: u64, max_item_size: usize) -> usize {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut shards = (cpus * 4).next_power_of_two().min(crate::MAX_SHARDS);
    let need = 2 * u64::from(weight(item::MAX_KEY, max_item_size));
    while shards > 1 && memory_limit / (shards as u64) < need {
        shards /= 2;
    }
    shards
}

/// The result of looking an item up for a read.
enum Lookup<R> {
    /// What the reader made of the live item it found.
    Hit(R),
    Miss,
    /// Present but invalidated by `flush_all`.
    Flushed,
}

impl Store {
    /// Builds a store.
    ///
    /// # Errors
    /// [`StoreError`] when the memory limit is zero, the item size is out of
    /// range, or the shard count is not a power of two.
    ///
    /// ```
    /// use larder::memcached::{Store, StoreConfig, StoreError};
    ///
    /// let bad = StoreConfig { max_item_size: 0, ..StoreConfig::default() };
    /// assert_eq!(Store::new(bad).unwrap_err(), StoreError::InvalidItemSize(0));
    /// ```
    pub fn new(config: StoreConfig) -> Result<Store, StoreError> {
        if config.memory_limit == 0 {
            return Err(StoreError::ZeroMemoryLimit);
        }
        if config.max_item_size == 0 || config.max_item_size > MAX_ITEM_SIZE {
            return Err(StoreError::InvalidItemSize(config.max_item_size));
        }
        if config.sasl.is_some() && config.protocols != Protocols::Binary {
            return Err(StoreError::SaslNeedsBinary);
        }
        if config.ascii_auth.is_some() && config.protocols != Protocols::Text {
            return Err(StoreError::AsciiAuthNeedsText);
        }
        let shards = match config.shards {
            Some(n) if n == 0 || n > crate::MAX_SHARDS || !n.is_power_of_two() => {
                return Err(StoreError::InvalidShardCount(n));
            }
            Some(n) => n,
            None => default_shards(config.memory_limit, config.max_item_size),
        };
        let counters = Arc::new(Counters::new());
        let listener_counters = Arc::clone(&counters);
        let time = Time::new(config.clock.clone(), config.unix_time);
        let listener_time = time.clone();
        let mut cache = Cache::builder()
            .max_weight(config.memory_limit)
            .weigher(|block: &Block, _: &Meta| block_weight(block))
            .shards(shards)
            .policy(config.policy.clone())
            .clock(config.clock.clone())
            .eviction_listener(move |_: &Block, meta: &Meta, cause| {
                let unfetched = meta.state() & item::FETCHED == 0;
                match cause {
                    RemovalCause::Evicted => {
                        listener_counters.bump(Counter::Evictions);
                        let now = listener_time.uptime_secs(listener_time.now_ms());
                        let age = now.saturating_sub(Meta::last_access(meta.state()));
                        listener_counters.set_evicted_age(u64::from(age));
                        if unfetched {
                            listener_counters.bump(Counter::EvictedUnfetched);
                        }
                    }
                    RemovalCause::Expired => {
                        listener_counters.bump(Counter::Reclaimed);
                        if unfetched {
                            listener_counters.bump(Counter::ExpiredUnfetched);
                        }
                    }
                    _ => {}
                }
            })
            .build()
            .map_err(|_| StoreError::InvalidShardCount(shards))?;
        // Items weigh up to a megabyte, so a shard's share may hold only a
        // few: the shards lend each other room, and the store evicts only
        // when `memory_limit` is reached, not when a share is.
        cache.lend_between_shards(!config.evictions);
        let max_weight = config.memory_limit / cache.shard_count() as u64;
        let limits = Limits {
            max_item_size: config.max_item_size,
            // An item's key length is one byte: the parser refuses longer keys
            // (`CLIENT_ERROR`) rather than the store failing to hold them.
            max_key_len: config.limits.max_key_len.min(item::MAX_KEY),
            ..config.limits
        };
        Ok(Store {
            cache,
            time,
            next_cas: AtomicU64::new(config.cas_start),
            epoch: AtomicU32::new(0),
            flush_pending: AtomicU64::new(0),
            flush_lock: crate::sync::Mutex::new(()),
            counters,
            limits,
            count_item_header: config.count_item_header,
            keep_live: !config.evictions,
            sasl: config.sasl.clone().map(Users::new),
            ascii_auth: config.ascii_auth.clone().map(Users::new),
            max_weight: AtomicU64::new(max_weight),
            memory_limit: AtomicU64::new(config.memory_limit),
            enable_shutdown: config.enable_shutdown,
            flush_enabled: config.flush_enabled,
            protocols: config.protocols,
            crawler: AtomicBool::new(config.lru_crawler),
            page_mover: AtomicBool::new(config.page_mover),
            mover: thin::new_mover(),
            dump_enabled: config.dump_enabled,
            resizing: crate::sync::Mutex::new(()),
            version: config.version,
            server_stats: config.server_stats,
            detail: detail::Detail::new(),
            snapshot: snapshot::SnapshotState::new(),
            repl: repl::Replication::new(),
        })
    }

    /// The parser limits to use with this store (what [`Store::process`]
    /// uses).
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A copy of the item stored under `key`, as `get` would return it
    /// (counted as a get, marks the item fetched). The value is copied, or
    /// shared if it is 4 KiB or more.
    ///
    /// **Locking behaviour:** the key's shard read lock (write lock under
    /// [`Policy::lru`]).
    ///
    /// ```
    /// use larder::memcached::{Store, StoreConfig};
    ///
    /// let store = Store::new(StoreConfig::default())?;
    /// assert!(store.get(b"nothing").is_none());
    /// # Ok::<(), larder::memcached::StoreError>(())
    /// ```
    pub fn get(&self, key: &[u8]) -> Option<Item> {
        let now = self.time.now_ms();
        self.apply_pending_flush(now);
        self.counters.bump(Counter::CmdGet);
        let secs = self.time.uptime_secs(now);
        match self.read(key, true, |item| {
            item.meta.record_fetch(secs);
            Item::copy_of(item.block)
        }) {
            Lookup::Hit(item) => {
                self.counters.bump(Counter::GetHits);
                Some(item)
            }
            Lookup::Miss | Lookup::Flushed => {
                self.counters.bump(Counter::GetMisses);
                None
            }
        }
    }

    /// Number of items held, including expired ones not yet reclaimed (what
    /// `stats` reports as `curr_items`).
    ///
    /// **Locking behaviour:** every shard's read lock in turn.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether the store holds no items.
    ///
    /// **Locking behaviour:** every shard's read lock in turn.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Bytes charged against the memory limit (what `stats` reports as
    /// `bytes`).
    ///
    /// **Locking behaviour:** every shard's read lock in turn.
    pub fn bytes(&self) -> u64 {
        self.cache.weight()
    }

    /// Checks the store's invariants and panics if one is broken. For tests
    /// and fuzzing; O(n).
    #[doc(hidden)]
    pub fn validate(&self) {
        self.cache.validate();
        assert!(
            self.cache.weight() <= self.memory_limit(),
            "memory limit exceeded"
        );
    }

    /// Runs one request, appending its reply (if any) to `out`.
    ///
    /// For [`Request::TooLarge`] the reply is written and the old value
    /// dropped where memcached drops it, but skipping the data block that
    /// follows is the caller's job ([`TooLarge::swallow`](crate::memcached::TooLarge::swallow));
    /// [`Store::process`] does it for you.
    ///
    /// A request has no connection here, so [`StoreConfig::ascii_auth`] is
    /// not applied: a caller running requests one by one authenticates its
    /// connections itself ([`Store::process`] applies it).
    ///
    /// **Locking behaviour:** see [`Store`].
    ///
    /// ```
    /// use larder::memcached::{parse, Outcome, Status, Store, StoreConfig};
    ///
    /// let store = Store::new(StoreConfig::default())?;
    /// let Ok(Status::Complete(request, _)) = parse(b"version\r\n", store.limits()) else {
    ///     unreachable!()
    /// };
    /// let mut out = Vec::new();
    /// assert_eq!(store.execute(&request, &mut out), Outcome::Continue);
    /// assert_eq!(out, b"VERSION 1.6.18\r\n");
    /// # Ok::<(), larder::memcached::StoreError>(())
    /// ```
    pub fn execute(&self, request: &Request<'_>, out: &mut Vec<u8>) -> Outcome {
        let now = self.time.now_ms();
        self.apply_pending_flush(now);
        if self.repl.read_only() {
            if let Some(noreply) = repl::changes_items(request) {
                if !noreply {
                    crate::memcached::Response::ServerError(repl::READ_ONLY).write_to(out);
                }
                return Outcome::Continue;
            }
        }
        match request {
            Request::MetaGet { key, flags } => self.meta_get(key, flags, now, out),
            Request::MetaSet { key, flags, data } => self.meta_set(key, flags, data, now, out),
            Request::MetaDelete { key, flags } => self.meta_delete(key, flags, now, out),
            Request::MetaArithmetic { key, flags } => self.meta_arithmetic(key, flags, now, out),
            Request::MetaNoop => self.meta_noop(out),
            Request::MetaDebug { key, base64 } => self.meta_debug(key, *base64, now, out),
            text => return self.execute_text(text, now, out),
        }
        Outcome::Continue
    }

    // ---- shared helpers -------------------------------------------------

    /// Moves the CAS counter past `cas`, a unique a snapshot or a primary
    /// holds, so that this node never hands it out again. Uniques from
    /// [`GENERATED_CAS_LIMIT`] up can only have come from a client's `E` (a
    /// counter would take centuries to get there): they do not move the
    /// counter, which would otherwise run to the end of the space and wrap
    /// around to uniques clients still hold.
    pub(super) fn lift_cas_counter(&self, cas: u64) {
        if cas < GENERATED_CAS_LIMIT {
            self.next_cas.fetch_max(
                cas.saturating_add(1).max(1),
                std::sync::atomic::Ordering::AcqRel,
            );
        }
    }

    fn next_cas(&self) -> u64 {
        match self.next_cas.fetch_add(1, Relaxed) {
            // The counter wrapped (only a client's `E` near 2^64, carried by a
            // snapshot or a promotion, gets it there): 0 means "no CAS" on the
            // wire, so it is never handed out.
            0 => self.next_cas.fetch_add(1, Relaxed),
            cas => cas,
        }
    }

    /// A new item whose value is the concatenation of `parts`: CAS from `cas`
    /// or the counter, the current flush epoch.
    fn new_block(&self, key: &[u8], parts: &[&[u8]], flags: u32, cas: Option<u64>) -> Block {
        self.block_in(self.epoch.load(Acquire), key, parts, flags, cas)
    }

    /// A new item made from `old` (append, incr, a stale mark): it keeps
    /// `old`'s flush epoch, so that if a `flush_all` took effect after `old`
    /// was found live, the new item is as flushed as `old` (that flush's pass
    /// over this shard, still to come, removes it).
    fn derived_block(&self, old: &Block, parts: &[&[u8]], flags: u32, cas: Option<u64>) -> Block {
        self.block_in(old.epoch(), old.key(), parts, flags, cas)
    }

    fn block_in(
        &self,
        epoch: u32,
        key: &[u8],
        parts: &[&[u8]],
        flags: u32,
        cas: Option<u64>,
    ) -> Block {
        let head = Head {
            key,
            flags,
            cas: cas.unwrap_or_else(|| self.next_cas()),
            epoch,
        };
        Block::new(head, parts)
    }

    /// After a write whose block was made outside the shard's lock: if a whole
    /// `flush_all` ran in between, the block carries the old epoch and is dead
    /// on arrival; take it out rather than let it hold memory until read.
    fn after_unlocked_write(&self, block_epoch: u32, key: &[u8]) {
        if block_epoch != self.epoch.load(Acquire) {
            self.drop_flushed(key);
        }
    }

    /// The state word of an item stored now: accessed now, not fetched.
    fn fresh_state(&self, now_ms: u64) -> u32 {
        Meta::fresh(self.time.uptime_secs(now_ms))
    }

    /// Whether an item of these lengths and client flags is over
    /// `max_item_size` by memcached's count (see
    /// [`StoreConfig::count_item_header`]); a value alone over it never
    /// reaches the store (the parser swallows it).
    fn over_item_size(&self, key_len: usize, value_len: usize, flags: u32) -> bool {
        if !self.count_item_header {
            return false;
        }
        let header = MEMCACHED_ITEM_HEADER + if flags == 0 { 0 } else { 4 };
        key_len.saturating_add(value_len).saturating_add(header) > self.limits.max_item_size
    }

    /// Whether an item of these lengths can be stored at all.
    fn fits(&self, key_len: usize, value_len: usize) -> bool {
        key_len <= item::MAX_KEY
            && value_len <= self.limits.max_item_size
            && u64::from(weight(key_len, value_len)) <= self.max_weight.load(Relaxed)
    }

    /// Whether a new item of these lengths can be stored now: it
    /// [`fits`](Self::fits) at all, and there is [`room`](Self::room).
    fn storable(&self, key_len: usize, value_len: usize) -> bool {
        self.fits(key_len, value_len) && self.room(key_len, value_len)
    }

    /// Whether an item of these lengths fits without evicting anything
    /// (always true unless [`StoreConfig::evictions`] is off). May sweep
    /// expired items: call with no shard lock held.
    fn room(&self, key_len: usize, value_len: usize) -> bool {
        !self.keep_live || self.cache.room_for(u64::from(weight(key_len, value_len)))
    }

    /// [`room`](Self::room) for a caller under a shard's lock: by the
    /// weights published, sweeping nothing.
    fn room_locked(&self, key_len: usize, value_len: usize) -> bool {
        !self.keep_live || self.cache.has_room(u64::from(weight(key_len, value_len)))
    }

    /// The memory limit (`-m`, or the last `cache_memlimit`), in bytes.
    pub fn memory_limit(&self) -> u64 {
        self.memory_limit.load(Relaxed)
    }

    /// Changes the memory limit of a live store (memcached's
    /// `cache_memlimit`): growing takes effect at once, shrinking evicts
    /// until the items fit (unless [`StoreConfig::evictions`] is off: then
    /// nothing is evicted, and stores are refused until items are deleted
    /// or expire). Refused, changing nothing, when a shard's share
    /// of `bytes` could no longer hold the largest item (`max_item_size`
    /// with the longest key).
    ///
    /// **Locking behaviour:** the store's resize lock (concurrent calls take
    /// turns), then each shard's write lock in turn.
    ///
    /// ```
    /// use larder::memcached::{Store, StoreConfig};
    ///
    /// let store = Store::new(StoreConfig {
    ///     memory_limit: 64 << 20,
    ///     shards: Some(4),
    ///     ..StoreConfig::default()
    /// })?;
    /// assert!(store.set_memory_limit(32 << 20));
    /// assert_eq!(store.memory_limit(), 32 << 20);
    /// assert!(!store.set_memory_limit(1 << 20)); // 256 KiB a shard: no room for 1 MiB
    /// # Ok::<(), larder::memcached::StoreError>(())
    /// ```
    pub fn set_memory_limit(&self, bytes: u64) -> bool {
        let shards = self.cache.shard_count() as u64;
        let largest = u64::from(weight(item::MAX_KEY, self.limits.max_item_size));
        if bytes / shards < largest {
            return false;
        }
        // A concurrent store may briefly see the old per-item bound; the
        // cache itself refuses anything heavier than its shard's share.
        let _turn = self.resizing.lock();
        if self.cache.set_capacity(bytes).is_err() {
            return false;
        }
        self.memory_limit.store(bytes, Relaxed);
        self.max_weight.store(bytes / shards, Relaxed);
        true
    }

    /// Reclaims expired items among the next `slots` slots of each shard
    /// (see [`Cache::sweep_expired`]); each counts in `reclaimed` and
    /// `crawler_reclaimed`. A server calls it from a timer while
    /// [`crawler_enabled`](Self::crawler_enabled); `lru_crawler crawl`
    /// calls it over every slot.
    ///
    /// **Locking behaviour:** each shard's write lock in turn.
    pub fn reclaim_expired(&self, slots: usize) {
        let reclaimed = self.cache.sweep_expired(slots);
        self.counters.add(Counter::CrawlerReclaimed, reclaimed);
    }

    /// Moves items out of sparse pages of the item arena so that the pages
    /// go back to the heap; at most `max_pages` pages are tried. Returns
    /// what was done. A server calls it from a timer while
    /// [`page_mover_enabled`](Self::page_mover_enabled).
    ///
    /// Why: the arena keeps items of one size class per 32 KiB page, and a
    /// page goes back only when its last item goes. When the sizes stored
    /// shift (100-byte items deleted, 300-byte ones stored), the old size's
    /// pages stay, each holding a few items, and the process holds more
    /// than `bytes` says. The mover is memcached's slab page mover for
    /// this. A page is moved only when the rest of its class has free slots
    /// for all of its items, which is when the class's free slots add up
    /// to a page or more; so a move needs no new page (unless other writers
    /// take the free slots first), and a class in steady use (a few free
    /// slots between evictions and stores) is left alone. Each item is
    /// copied to a free slot of its class and takes its
    /// new place under its shard's write lock, one item at a time: readers
    /// see the same item before and after, its CAS, flags, expiry and
    /// place in the eviction order unchanged, and nothing is counted but
    /// `slabs_moved` (pages given back) and `slab_reassign_rescues` (items
    /// moved).
    ///
    /// The arena is the process's: a page may hold items of another
    /// [`Store`] in the same process. Those are left where they are, and
    /// the page goes back to its class; this store's mover does not try it
    /// again until one of its items goes, but the other store's mover may
    /// (and moves its own items out).
    ///
    /// **Locking behaviour:** each size class's lock in turn, then for each
    /// item moved, its shard's write lock.
    ///
    /// ```
    /// use larder::memcached::{Store, StoreConfig};
    ///
    /// let store = Store::new(StoreConfig::default())?;
    /// let moved = store.move_pages(8);
    /// assert!(moved.pages_freed <= 8);
    /// # Ok::<(), larder::memcached::StoreError>(())
    /// ```
    pub fn move_pages(&self, max_pages: usize) -> PageMoves {
        let mut done = PageMoves::default();
        for _ in 0..max_pages {
            let Some(drain) = thin::start_drain(self.mover) else {
                break;
            };
            for (handle, bytes) in drain.blocks() {
                let Some(key) = item::key_in(bytes) else {
                    continue;
                };
                // Only the block copied out: the key may have a newer one.
                let old = self.cache.swap_key(key, |cur: &Block| {
                    if cur.handle() == handle {
                        cur.relocated()
                    } else {
                        None
                    }
                });
                if old.is_some() {
                    done.items_moved += 1;
                }
                // The old block goes here, after the shard's lock.
                drop(old);
            }
            done.pages_tried += 1;
            if drain.finish() {
                done.pages_freed += 1;
            }
        }
        self.counters.add(Counter::SlabsMoved, done.pages_freed);
        self.counters.add(Counter::SlabRescues, done.items_moved);
        done
    }

    /// Whether the page mover is to run in the background
    /// ([`StoreConfig::page_mover`], `slabs automove 0|1|2`).
    pub fn page_mover_enabled(&self) -> bool {
        self.page_mover.load(Relaxed)
    }

    /// Bytes the process's item arena holds in pages (32 KiB each), free
    /// slots included; items too large for it live on the heap and are not
    /// in this figure. `stats` reports it as `arena_bytes`.
    pub fn arena_bytes(&self) -> u64 {
        thin::arena_bytes()
    }

    /// Whether expired items are to be reclaimed in the background: the
    /// state of memcached's LRU crawler (`lru_crawler enable|disable`,
    /// `-o lru_crawler|no_lru_crawler`), which larder's background sweep
    /// stands for.
    pub fn crawler_enabled(&self) -> bool {
        self.crawler.load(Relaxed)
    }

    fn is_live(&self, block: &Block) -> bool {
        block.epoch() == self.epoch.load(Acquire)
    }

    /// Splits the entry `compute_keyed` shows into the live item and whether a
    /// flushed one is in the way (and should go if nothing replaces it).
    fn live<'a>(
        &self,
        cur: Option<(&'a Block, Occupied<'a, Meta>)>,
    ) -> (Option<ItemRef<'a>>, bool) {
        match cur {
            Some((block, o)) if self.is_live(block) => (
                Some(ItemRef {
                    block,
                    meta: o.value(),
                    ttl: o.ttl(),
                }),
                false,
            ),
            Some(_) => (None, true),
            None => (None, false),
        }
    }

    /// Finds a live item and runs `f` on it under its shard's read lock;
    /// `bump` tells the eviction policy (`f` records the fetch, after reading
    /// the state it needs).
    fn read<R>(&self, key: &[u8], bump: bool, f: impl FnOnce(ItemRef<'_>) -> R) -> Lookup<R> {
        let found = self.cache.visit_keyed(key, bump, |block, meta, ttl| {
            if !self.is_live(block) {
                return None;
            }
            Some(f(ItemRef {
                block,
                meta,
                ttl: ttl(),
            }))
        });
        match found {
            Some(Some(r)) => Lookup::Hit(r),
            Some(None) => {
                self.drop_flushed(key);
                Lookup::Flushed
            }
            None => {
                // memcached counts a fetch that finds its item expired, and
                // unlinks the item.
                if self.cache.reclaim_expired_key(key) {
                    self.counters.bump(Counter::GetExpired);
                }
                Lookup::Miss
            }
        }
    }

    /// Removes `key` if it still holds a flushed item.
    fn drop_flushed(&self, key: &[u8]) {
        self.cache.compute_keyed(key, |cur| match cur {
            Some((block, _)) if !self.is_live(block) => (KeyedOp::Remove, ()),
            _ => (KeyedOp::Nop, ()),
        });
    }

    /// Stores `block` with `expiry`, unconditionally.
    fn put(expiry: Expiry, block: Block, state: u32) -> KeyedOp<Block, Meta> {
        match expiry {
            Expiry::Expired => KeyedOp::Remove,
            e => KeyedOp::PutWithTtl(Some(block), Meta::new(state), e.ttl()),
        }
    }

    /// Stores `block` keeping the old entry's expiry.
    fn replace(block: Block, state: u32) -> KeyedOp<Block, Meta> {
        KeyedOp::Put(Some(block), Meta::new(state))
    }

    /// Removes `key` (after a refused store, so a stale value does not outlive
    /// a failed overwrite).
    fn forget(&self, key: &[u8]) {
        self.remove_recorded(key);
    }

    /// `flush_all` now: items stored so far become invalid, and their memory
    /// is reclaimed. An item made before the flush but stored after it carries
    /// the old epoch, so it is never returned either.
    fn flush_now(&self) {
        self.bump_epoch_recorded();
        self.cache.retain(|block, _| self.is_live(block));
    }

    /// Turns a delayed `flush_all` whose time has come into a flush. Runs
    /// before every command; a command that finds the deadline due waits
    /// until the epoch has moved, so any item stored after the deadline
    /// carries the new epoch.
    fn apply_pending_flush(&self, now_ms: u64) {
        let pending = self.flush_pending.load(Acquire);
        if pending == 0 || now_ms < pending {
            return;
        }
        // The epoch moves before the deadline is cleared, and under a lock: a
        // command that sees the deadline due waits here until the epoch has
        // moved, so nothing stored after the deadline carries the old epoch.
        {
            let _one = self.flush_lock.lock();
            if self.flush_pending.load(Acquire) != pending {
                return;
            }
            self.bump_epoch_recorded();
            self.flush_pending.store(0, Release);
        }
        self.cache.retain(|block, _| self.is_live(block));
    }
}

/// What an item is charged against the memory limit: its block as stored
/// ([`Block::cost`]), plus the fixed overhead in the cache.
fn block_weight(block: &Block) -> u32 {
    u32::try_from(block.cost())
        .unwrap_or(u32::MAX)
        .saturating_add(ITEM_OVERHEAD)
}

/// The most an item of these lengths can weigh: the most its block can cost
/// ([`item::block_cost`]), plus the fixed overhead in the cache.
fn weight(key_len: usize, value_len: usize) -> u32 {
    u32::try_from(item::block_cost(key_len, value_len))
        .unwrap_or(u32::MAX)
        .saturating_add(ITEM_OVERHEAD)
}

#[cfg(all(test, not(larder_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::AcqRel;

    /// A value for `key`'s `version` that tells on itself: it names both,
    /// and its length depends on the key, so a reader can check that what it
    /// got is a whole value written for that key.
    fn versioned(key: usize, version: usize) -> Vec<u8> {
        let mut v = format!("{key}:{version}:").into_bytes();
        v.resize(40 + key % 50, b'a' + (key % 26) as u8);
        v
    }

    fn ask(store: &Store, session: &mut Session, request: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let _ = store.process(session, request, &mut out);
        out
    }

    fn set_versioned(store: &Store, session: &mut Session, key: usize, version: usize) {
        let value = versioned(key, version);
        let mut request = format!("set k{key} 0 0 {}\r\n", value.len()).into_bytes();
        request.extend_from_slice(&value);
        request.extend_from_slice(b"\r\n");
        assert_eq!(ask(store, session, &request), b"STORED\r\n");
    }

    /// The page mover runs while other threads read, overwrite and delete
    /// the items it moves: every read finds a whole value written for its
    /// key (or nothing, after a delete), and the mover moves items.
    #[test]
    #[cfg_attr(miri, ignore = "thousands of items")]
    fn items_read_whole_while_the_page_mover_moves_them() {
        const KEYS: usize = 20_000;
        let store = Arc::new(Store::new(StoreConfig::default()).unwrap());
        let mut session = Session::new();
        for key in 0..KEYS {
            set_versioned(&store, &mut session, key, 0);
        }
        // Nine in ten go, so the survivors' pages are sparse.
        for key in (0..KEYS).filter(|k| k % 10 != 0) {
            let _ = ask(
                &store,
                &mut session,
                format!("delete k{key}\r\n").as_bytes(),
            );
        }
        let done = Arc::new(AtomicBool::new(false));
        let check = |key: usize, reply: &[u8]| {
            if reply == b"END\r\n" {
                return;
            }
            let text = String::from_utf8_lossy(reply);
            let body = text.split("\r\n").nth(1).expect("a data line");
            let mut fields = body.splitn(3, ':');
            assert_eq!(fields.next(), Some(key.to_string().as_str()), "{text}");
            let version: usize = fields.next().unwrap().parse().unwrap();
            assert_eq!(body.as_bytes(), versioned(key, version), "{text}");
        };
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (store, done) = (Arc::clone(&store), Arc::clone(&done));
                std::thread::spawn(move || {
                    let mut session = Session::new();
                    let mut round = 0;
                    while !done.load(Acquire) {
                        round += 1;
                        for key in (w..KEYS).step_by(20) {
                            let reply =
                                ask(&store, &mut session, format!("get k{key}\r\n").as_bytes());
                            check(key, &reply);
                            match (key / 20 + round) % 7 {
                                0 => set_versioned(&store, &mut session, key, round),
                                1 => drop(ask(
                                    &store,
                                    &mut session,
                                    format!("delete k{key}\r\n").as_bytes(),
                                )),
                                _ => {}
                            }
                        }
                    }
                })
            })
            .collect();
        // Rounds of fillers stored and mostly deleted again, so the mover
        // keeps finding sparse pages, the workers' items among them.
        for round in 0..5 {
            for i in 0..KEYS {
                set_versioned(&store, &mut session, KEYS * (round + 1) + i, 0);
            }
            for i in (0..KEYS).filter(|i| i % 10 != 0) {
                let key = KEYS * (round + 1) + i;
                let _ = ask(
                    &store,
                    &mut session,
                    format!("delete k{key}\r\n").as_bytes(),
                );
            }
            // The workers' deletes may keep making sparse pages: a bound.
            for _ in 0..1_000 {
                if store.move_pages(2).pages_tried == 0 {
                    break;
                }
            }
        }
        done.store(true, Release);
        for w in workers {
            w.join().unwrap();
        }
        let moved = store.counters.get(Counter::SlabRescues);
        assert!(moved > 1_000, "the mover moved {moved}");
        for key in 0..KEYS {
            let reply = ask(&store, &mut session, format!("get k{key}\r\n").as_bytes());
            check(key, &reply);
        }
        store.cache.validate();
    }

    /// The window a concurrent `flush_all` can open: a command found `old`
    /// live, then the epoch moved before it built the new item. The new item
    /// must be as flushed as `old`, so the flush's pass removes it.
    #[test]
    fn an_item_made_from_a_flushed_one_is_flushed_too() {
        let store = Store::new(StoreConfig::default()).unwrap();
        let old = store.new_block(b"k", &[b"a"], 0, None);
        assert!(store.is_live(&old));
        store.epoch.fetch_add(1, AcqRel); // the flush takes effect here
        let appended = store.derived_block(&old, &[b"a", b"b"], 0, None);
        assert_eq!(appended.key(), b"k");
        assert!(
            !store.is_live(&appended),
            "append after a flush kept the old data"
        );
        let fresh = store.new_block(b"k", &[b"c"], 0, None);
        assert!(store.is_live(&fresh), "a new value after the flush is live");
    }

    /// A `set` whose block was made before a whole `flush_all` ran: dead on
    /// arrival, and taken out rather than left holding memory.
    #[test]
    fn a_dead_on_arrival_set_is_taken_out() {
        let store = Store::new(StoreConfig::default()).unwrap();
        let block = store.new_block(b"k", &[b"v"], 0, None);
        let epoch = block.epoch();
        store.flush_now();
        store.cache.insert(block, Meta::new(0));
        assert_eq!(store.len(), 1);
        store.after_unlocked_write(epoch, b"k");
        assert_eq!(store.len(), 0);
    }
}
