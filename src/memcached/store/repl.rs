//! Replication's store side: the log of effects a primary records, and the
//! replica's way of applying it.
//!
//! A primary does not log commands, it logs what a command did to an item
//! once it took effect: the item's whole new state (key, value, client
//! flags, the CAS unique the primary gave it, its stale and win-token marks, its expiry
//! as an absolute unix time in milliseconds), or that the key went away, or
//! the key's new expiry, or a `flush_all`. Replaying such a log needs no
//! counter, clock or old value of the replica's own, so `incr` results, CAS
//! uniques and relative TTLs come out the same on every node, and replaying a
//! record twice (after a full sync that already held its effect) is harmless.
//!
//! Every change of an item is recorded under its shard's write lock, in the
//! same critical section that makes it, so two writers on one key are logged
//! in the order they took effect. A `flush_all` moves the flush epoch under
//! the backlog's lock, and a put is checked against the epoch under the same
//! lock: a put logged after a flush is live on the primary too.
//!
//! # The backlog
//! Records go into one bounded ring of bytes, the backlog, whose bytes are
//! numbered by an ever-growing offset. A replica asks for the bytes from its
//! offset on; once the ring has overwritten them it needs a full sync.
//! A replica keeps a backlog too, filled with the very bytes it applied, so
//! offsets mean the same thing along a chain of replicas and a replica of a
//! replica can resume from its own upstream.
//!
//! # Frames
//! `[kind: u8][body length: u32 LE][primary's unix ms: u64 LE][body]`. Frames
//! carry no checksum of their own: each stream message that carries them does
//! (a CRC-32 over the message's bytes, see `server::repl`), so the primary's
//! writers pay nothing for it and the link checksums a batch of frames in one
//! pass. Bodies (integers little-endian, a key as its length in one byte and
//! its bytes):
//!
//! | kind | body |
//! |---|---|
//! | 1 item | key, flags u32, CAS u64, marks u8 (bit 0: stale, bit 1: win token sent), expiry u64 (unix ms, 0 never), value |
//! | 2 delete | key |
//! | 3 touch | key, expiry u64 |
//! | 4 flush | (empty) |
//! | 5 delayed flush | deadline u64 (unix ms) |
//!
//! A frame that fails any check (kind, length, a key or value out of limits)
//! is an error: the replica drops the link and resyncs.

// Without the server nothing streams the log or runs a link: the store side
// still records (when told to) and applies, for its tests.
#![cfg_attr(not(feature = "server"), allow(dead_code))]

use std::fmt;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use super::item::{Block, Meta, STALE, TOKEN_SENT};
use super::time::Expiry;
use super::Store;
use crate::cache::KeyedOp;
use crate::memcached::binary::Opcode;
use crate::memcached::Request;
use crate::Occupied;

const ITEM: u8 = 1;
const DELETE: u8 = 2;
const TOUCH: u8 = 3;
const FLUSH: u8 = 4;
const FLUSH_AT: u8 = 5;

/// Bytes of a frame around its body: kind, length, time.
pub(crate) const FRAME_OVERHEAD: usize = 1 + 4 + 8;
/// Bytes of an item body besides its key and value.
const ITEM_FIXED: usize = 1 + 4 + 8 + 1 + 8;

/// What a read-only replica answers a write.
pub(crate) const READ_ONLY: &str = "read-only replica";

/// Whether a request changes items (refused on a read-only replica), and if
/// so whether it asked for no reply.
pub(crate) fn changes_items(request: &Request<'_>) -> Option<bool> {
    match request {
        Request::Store { noreply, .. }
        | Request::Delete { noreply, .. }
        | Request::Arithmetic { noreply, .. }
        | Request::Touch { noreply, .. }
        | Request::FlushAll { noreply, .. } => Some(*noreply),
        Request::TooLarge(t) => Some(t.noreply()),
        Request::Get { touch, .. } | Request::LongGet { touch, .. } if touch.is_some() => {
            Some(false)
        }
        Request::MetaGet { flags, .. } if flags.ttl().is_some() || flags.vivify().is_some() => {
            Some(false)
        }
        Request::MetaSet { .. } | Request::MetaDelete { .. } | Request::MetaArithmetic { .. } => {
            Some(false)
        }
        _ => None,
    }
}

/// Whether a binary opcode changes items.
pub(crate) fn binary_changes_items(op: Opcode) -> bool {
    matches!(
        op.base(),
        Opcode::Set
            | Opcode::Add
            | Opcode::Replace
            | Opcode::Append
            | Opcode::Prepend
            | Opcode::Delete
            | Opcode::Increment
            | Opcode::Decrement
            | Opcode::Flush
            | Opcode::Touch
            | Opcode::Gat
            | Opcode::GatK
    )
}

/// Default backlog size (`--repl-backlog`).
pub(crate) const DEFAULT_BACKLOG: usize = 16 << 20;

/// CAS uniques a promoted replica skips (see [`Store::promote`]): more than
/// a primary hands out in any lag a replica survives.
pub(crate) const PROMOTION_CAS_GAP: u64 = 1 << 32;

/// How long a busy stream reader waits before it takes what arrived.
pub(crate) const BUSY_POLL: Duration = Duration::from_millis(1);

/// Largest per-record lag the histogram tells apart, in milliseconds.
const LAG_BUCKETS: usize = 1024;

/// This node's part in replication.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    Primary,
    Replica,
}

impl Role {
    /// What `stats` calls it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Replica => "replica",
        }
    }
}

/// A replication id: 40 hex digits, fresh for every primary's history.
pub(crate) type ReplId = [u8; 40];

/// A fresh random replication id.
pub(crate) fn new_repl_id() -> ReplId {
    use std::hash::{BuildHasher, Hasher};
    let mut id = [0u8; 40];
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    for (i, chunk) in id.chunks_mut(16).enumerate() {
        let mut h = ahash::RandomState::new().build_hasher();
        h.write_u128(nanos);
        h.write_usize(i);
        h.write_u32(std::process::id());
        let word = h.finish();
        for (j, b) in chunk.iter_mut().enumerate() {
            let nibble = (word >> (4 * (j % 16))) & 0xf;
            *b = b"0123456789abcdef"[nibble as usize];
        }
    }
    id
}

/// Why a replication stream was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameError(pub(crate) &'static str);

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad replication frame: {}", self.0)
    }
}

impl std::error::Error for FrameError {}

/// The ring of recorded bytes.
struct Ring {
    buf: Vec<u8>,
    /// Offset just past the newest byte.
    end: u64,
    /// Bytes held (at most `buf.len()`).
    held: usize,
    id: ReplId,
    /// The id this node's history had before a promotion, and the offset
    /// where it ended: a replica of the old history may resume up to there.
    secondary: Option<(ReplId, u64)>,
    /// Bumped whenever the history is replaced (a replica's full sync, a
    /// promotion): streams of the old one end.
    generation: u64,
}

impl Ring {
    fn start(&self) -> u64 {
        self.end - self.held as u64
    }

    fn push(&mut self, bytes: &[u8]) {
        let cap = self.buf.len();
        if cap == 0 {
            self.end += bytes.len() as u64;
            return;
        }
        let bytes = if bytes.len() > cap {
            // Only the tail can be held.
            self.end += (bytes.len() - cap) as u64;
            &bytes[bytes.len() - cap..]
        } else {
            bytes
        };
        let at = (self.end % cap as u64) as usize;
        let first = bytes.len().min(cap - at);
        self.buf[at..at + first].copy_from_slice(&bytes[..first]);
        self.buf[..bytes.len() - first].copy_from_slice(&bytes[first..]);
        self.end += bytes.len() as u64;
        self.held = (self.held + bytes.len()).min(cap);
    }

    /// Copies up to `max` bytes from `from` into `out`; `None` if `from` is
    /// no longer (or not yet) held.
    fn read(&self, from: u64, max: usize, out: &mut Vec<u8>) -> Option<usize> {
        if from < self.start() || from > self.end {
            return None;
        }
        let n = ((self.end - from) as usize).min(max);
        let cap = self.buf.len();
        let at = (from % cap.max(1) as u64) as usize;
        let first = n.min(cap - at);
        out.extend_from_slice(&self.buf[at..at + first]);
        out.extend_from_slice(&self.buf[..n - first]);
        Some(n)
    }
}

/// What [`Replication::read`] found at an offset.
pub(crate) enum Read {
    /// This many bytes were appended.
    Bytes(usize),
    /// Nothing new yet (after waiting).
    Idle,
    /// The offset is gone from the backlog, or the history was replaced.
    Lost,
}

/// How a replica asking to resume at `(id, offset)` is answered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Resume {
    /// Stream from `offset` under the current id.
    Continue { id: ReplId, generation: u64 },
    /// The history or offset is unknown: a full sync is needed.
    Full,
}

/// A node's replication state: its role, the backlog, and the figures
/// `stats` reports.
pub(crate) struct Replication {
    ring: Mutex<Ring>,
    more: Condvar,
    /// Writers record (a primary with a backlog in use).
    recording: AtomicBool,
    role: AtomicU8,
    /// Bumped by a promotion: the replica's link to its primary ends.
    link_epoch: AtomicU64,
    /// Syncs this node served to its replicas.
    pub(crate) full_syncs: AtomicU64,
    pub(crate) partial_syncs: AtomicU64,
    /// Syncs this node made with its primary (as a replica).
    pub(crate) link_full_syncs: AtomicU64,
    pub(crate) link_partial_syncs: AtomicU64,
    pub(crate) connected_replicas: AtomicU64,
    /// A replica: whether its link to the primary is up.
    pub(crate) link_up: AtomicBool,
    /// A replica: the primary's time on the newest applied frame (unix ms).
    pub(crate) last_frame_ms: AtomicU64,
    /// A replica: whether it has applied all the primary had sent at its
    /// last heartbeat.
    pub(crate) caught_up: AtomicBool,
    /// A primary: the largest lag its replicas reported, in ms.
    pub(crate) replicas_lag_ms: AtomicU64,
    /// Per-frame apply lag (apply time minus the primary's time), in ms.
    lag_histogram: Vec<AtomicU64>,
    /// A primary: each replica link's last reported lag.
    replica_lags: Mutex<Vec<(u64, u64)>>,
    /// The server is stopping: replication threads end.
    pub(crate) stopping: AtomicBool,
    /// Readers waiting to be woken by the next write.
    sleepers: AtomicU64,
    /// Held by a replica's link while it applies a batch, and by a
    /// promotion: nothing from the old primary lands after the promotion.
    applying: Mutex<()>,
    /// A replica is loading a full sync (set and cleared under `applying`):
    /// a promotion waits for it to end rather than take half a snapshot.
    syncing: AtomicBool,
}

/// A full sync in progress on a replica (see [`Replication::begin_full_sync`]).
pub(crate) struct FullSync<'a>(&'a Replication);

impl Drop for FullSync<'_> {
    fn drop(&mut self) {
        let _applying = self.0.applying.lock();
        self.0.syncing.store(false, Release);
    }
}

impl Replication {
    pub(crate) fn new() -> Replication {
        Replication {
            ring: Mutex::new(Ring {
                buf: Vec::new(),
                end: 0,
                held: 0,
                id: new_repl_id(),
                secondary: None,
                generation: 0,
            }),
            more: Condvar::new(),
            recording: AtomicBool::new(false),
            role: AtomicU8::new(0),
            link_epoch: AtomicU64::new(0),
            full_syncs: AtomicU64::new(0),
            partial_syncs: AtomicU64::new(0),
            link_full_syncs: AtomicU64::new(0),
            link_partial_syncs: AtomicU64::new(0),
            connected_replicas: AtomicU64::new(0),
            link_up: AtomicBool::new(false),
            last_frame_ms: AtomicU64::new(0),
            caught_up: AtomicBool::new(false),
            replicas_lag_ms: AtomicU64::new(0),
            lag_histogram: (0..=LAG_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            replica_lags: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
            sleepers: AtomicU64::new(0),
            applying: Mutex::new(()),
            syncing: AtomicBool::new(false),
        }
    }

    /// Sets the backlog's size and this node's role (at start, before any
    /// command). A replica is read-only.
    ///
    /// # Errors
    /// When the backlog cannot be allocated.
    pub(crate) fn configure(
        &self,
        backlog: usize,
        role: Role,
    ) -> Result<(), std::collections::TryReserveError> {
        // Probe first: an allocation that fails inside `vec!` aborts the
        // process. The zeroed allocation that follows maps pages lazily, so
        // an unused backlog costs address space, not resident memory.
        Vec::<u8>::new().try_reserve_exact(backlog)?;
        let mut ring = self.ring.lock();
        ring.buf = vec![0; backlog];
        ring.held = 0;
        self.role.store(u8::from(role == Role::Replica), Release);
        Ok(())
    }

    pub(crate) fn role(&self) -> Role {
        if self.role.load(Acquire) == 1 {
            Role::Replica
        } else {
            Role::Primary
        }
    }

    /// Whether client writes are refused.
    pub(crate) fn read_only(&self) -> bool {
        self.role() == Role::Replica
    }

    pub(crate) fn link_epoch(&self) -> u64 {
        self.link_epoch.load(Acquire)
    }

    /// The current id and the offset past the newest byte.
    pub(crate) fn position(&self) -> (ReplId, u64) {
        let ring = self.ring.lock();
        (ring.id, ring.end)
    }

    /// Bytes the backlog holds.
    pub(crate) fn backlog_bytes(&self) -> u64 {
        self.ring.lock().held as u64
    }

    /// Before a full sync: a primary starts recording (when its first
    /// replica attaches; from then on every change is logged; a replica's
    /// backlog is fed by its link). Returns the generation, id and offset
    /// the sync starts from.
    pub(crate) fn start_sync(&self) -> (u64, ReplId, u64) {
        let ring = self.ring.lock();
        if self.role() == Role::Primary {
            self.recording.store(true, Release);
        }
        (ring.generation, ring.id, ring.end)
    }

    /// Whether the backlog holds this node's history (a primary that
    /// records, or any replica).
    fn backlog_valid(&self) -> bool {
        self.recording() || self.role() == Role::Replica
    }

    /// A replica link's lag (as its last acknowledgement said); `None`
    /// forgets the link.
    pub(crate) fn set_replica_lag(&self, link: u64, lag_ms: Option<u64>) {
        let mut lags = self.replica_lags.lock();
        lags.retain(|&(l, _)| l != link);
        if let Some(lag) = lag_ms {
            lags.push((link, lag));
        }
        let max = lags.iter().map(|&(_, lag)| lag).max().unwrap_or(0);
        self.replicas_lag_ms.store(max, Relaxed);
    }

    fn recording(&self) -> bool {
        self.recording.load(Acquire)
    }

    /// Where a replica asking for `(id, offset)` may resume, if anywhere.
    pub(crate) fn resume(&self, id: &[u8], offset: u64) -> Resume {
        let ring = self.ring.lock();
        let known = id == ring.id.as_slice()
            || ring
                .secondary
                .is_some_and(|(old, until)| id == old.as_slice() && offset <= until);
        if known && offset >= ring.start() && offset <= ring.end && self.backlog_valid() {
            Resume::Continue {
                id: ring.id,
                generation: ring.generation,
            }
        } else {
            Resume::Full
        }
    }

    /// Copies the bytes from `from` on (at most `max`) into `out`, waiting
    /// up to `wait` for some to arrive.
    ///
    /// A `busy` reader (one that found bytes last time) is not woken by each
    /// write: it sleeps [`BUSY_POLL`] and takes whatever arrived, so a
    /// stream of writes costs the writers no wake-ups and the link one send
    /// per poll. An idle reader is woken by the next write.
    pub(crate) fn read(
        &self,
        generation: u64,
        from: u64,
        max: usize,
        (wait, busy): (Duration, bool),
        out: &mut Vec<u8>,
    ) -> Read {
        let mut ring = self.ring.lock();
        if ring.generation == generation && from == ring.end {
            if busy {
                let _ = self.more.wait_for(&mut ring, BUSY_POLL.min(wait));
            } else {
                self.sleepers.fetch_add(1, Relaxed);
                let _ = self.more.wait_for(&mut ring, wait);
                self.sleepers.fetch_sub(1, Relaxed);
            }
        }
        if ring.generation != generation {
            return Read::Lost;
        }
        match ring.read(from, max, out) {
            Some(0) => Read::Idle,
            Some(n) => Read::Bytes(n),
            None => Read::Lost,
        }
    }

    /// Appends bytes (a recorded frame, or frames a replica applied).
    fn push(&self, ring: &mut Ring, bytes: &[u8]) {
        ring.push(bytes);
        // Readers count themselves in under the ring's lock, which the
        // caller holds: no wake-up is lost.
        if self.sleepers.load(Relaxed) > 0 {
            self.more.notify_all();
        }
    }

    /// A replica's link may apply a batch while it holds this; `None` once
    /// the node is a primary.
    pub(crate) fn applying(&self) -> Option<parking_lot::MutexGuard<'_, ()>> {
        let guard = self.applying.lock();
        (self.role() == Role::Replica).then_some(guard)
    }

    /// A replica appends the frames it applied.
    pub(crate) fn push_applied(&self, bytes: &[u8]) {
        let mut ring = self.ring.lock();
        self.push(&mut ring, bytes);
    }

    /// A replica takes on its primary's history after a full sync: id, and
    /// the offset the stream goes on from. Streams to its own replicas end.
    pub(crate) fn reset(&self, id: ReplId, offset: u64) {
        let mut ring = self.ring.lock();
        if self.role() == Role::Primary {
            return;
        }
        ring.id = id;
        ring.end = offset;
        ring.held = 0;
        ring.secondary = None;
        ring.generation += 1;
        self.more.notify_all();
    }

    /// A replica adopts a new id for the same history (its primary was
    /// promoted and resumed it under the new id).
    pub(crate) fn adopt(&self, id: ReplId) {
        let mut ring = self.ring.lock();
        if ring.id != id && self.role() == Role::Replica {
            let old = ring.id;
            ring.secondary = Some((old, ring.end));
            ring.id = id;
            ring.generation += 1;
            self.more.notify_all();
        }
    }

    /// Makes this replica a primary: a new id (the old one stays valid up to
    /// the current offset, so this node's own replicas resume), writable,
    /// recording. Returns `false` if it was a primary already.
    pub(crate) fn promote(&self) -> Result<(), &'static str> {
        let _applying = self.applying.lock();
        let mut ring = self.ring.lock();
        if self.role() == Role::Primary {
            return Err("not a replica");
        }
        if self.syncing.load(Acquire) {
            return Err("full sync in progress");
        }
        let old = ring.id;
        ring.secondary = Some((old, ring.end));
        ring.id = new_repl_id();
        ring.generation += 1;
        self.recording.store(true, Release);
        self.role.store(0, Release);
        self.link_epoch.fetch_add(1, AcqRel);
        self.link_up.store(false, Release);
        self.more.notify_all();
        Ok(())
    }

    /// A replica's link starts loading a full sync: `None` if the node was
    /// promoted meanwhile (the sync must not start). While the returned guard
    /// lives, a promotion is refused; dropping it (the sync ended, or failed)
    /// allows it again.
    pub(crate) fn begin_full_sync(&self) -> Option<FullSync<'_>> {
        let _applying = self.applying.lock();
        if self.role() != Role::Replica {
            return None;
        }
        self.syncing.store(true, Release);
        Some(FullSync(self))
    }

    /// Records one frame's apply lag.
    pub(crate) fn record_lag(&self, lag_ms: u64) {
        let bucket = (lag_ms as usize).min(LAG_BUCKETS);
        self.lag_histogram[bucket].fetch_add(1, Relaxed);
    }

    /// The 99th percentile of the per-frame apply lag so far, in ms (the
    /// last bucket means "at least" [`LAG_BUCKETS`]).
    pub(crate) fn lag_p99_ms(&self) -> u64 {
        let counts: Vec<u64> = self.lag_histogram.iter().map(|c| c.load(Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0;
        }
        let want = total - total / 100;
        let mut seen = 0;
        for (ms, n) in counts.iter().enumerate() {
            seen += n;
            if seen >= want {
                return ms as u64;
            }
        }
        LAG_BUCKETS as u64
    }

    /// The lag `stats` reports: a replica's behind its primary (0 when it
    /// has applied all the primary announced; the age of the newest applied
    /// frame otherwise, or while the link is down), a primary's the largest
    /// its replicas reported.
    pub(crate) fn lag_ms(&self, unix_now_ms: u64) -> u64 {
        match self.role() {
            Role::Primary => self.replicas_lag_ms.load(Relaxed),
            Role::Replica => {
                if self.link_up.load(Acquire) && self.caught_up.load(Acquire) {
                    return 0;
                }
                match self.last_frame_ms.load(Acquire) {
                    0 => 0,
                    at => unix_now_ms.saturating_sub(at),
                }
            }
        }
    }
}

/// Appends to `out` a frame of `kind` whose body is the concatenation of
/// `parts`.
fn frame(out: &mut Vec<u8>, kind: u8, unix_ms: u64, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    out.push(kind);
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out.extend_from_slice(&unix_ms.to_le_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
}

/// One decoded frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Effect<'a> {
    Item {
        key: &'a [u8],
        flags: u32,
        cas: u64,
        stale: bool,
        /// A win token was handed out for it (`mg ... N` or a stale item).
        token_sent: bool,
        expires_unix_ms: u64,
        value: &'a [u8],
    },
    Delete {
        key: &'a [u8],
    },
    Touch {
        key: &'a [u8],
        expires_unix_ms: u64,
    },
    Flush,
    FlushAt {
        unix_ms: u64,
    },
}

/// Encodes an effect as a frame (for tests and the encoder's own use).
pub(crate) fn encode(effect: &Effect<'_>, unix_ms: u64, out: &mut Vec<u8>) {
    match *effect {
        Effect::Item {
            key,
            flags,
            cas,
            stale,
            token_sent,
            expires_unix_ms,
            value,
        } => {
            let mut fixed = [0u8; ITEM_FIXED - 1];
            fixed[..4].copy_from_slice(&flags.to_le_bytes());
            fixed[4..12].copy_from_slice(&cas.to_le_bytes());
            fixed[12] = u8::from(stale) | u8::from(token_sent) << 1;
            fixed[13..21].copy_from_slice(&expires_unix_ms.to_le_bytes());
            let klen = [key.len() as u8];
            frame(out, ITEM, unix_ms, &[&klen, key, &fixed, value]);
        }
        Effect::Delete { key } => frame(out, DELETE, unix_ms, &[&[key.len() as u8], key]),
        Effect::Touch {
            key,
            expires_unix_ms,
        } => frame(
            out,
            TOUCH,
            unix_ms,
            &[&[key.len() as u8], key, &expires_unix_ms.to_le_bytes()],
        ),
        Effect::Flush => frame(out, FLUSH, unix_ms, &[]),
        Effect::FlushAt { unix_ms: at } => frame(out, FLUSH_AT, unix_ms, &[&at.to_le_bytes()]),
    }
}

/// Decodes the frame at the start of `buf`: the effect, the primary's time,
/// and the frame's length. `Ok(None)`: not all of it has arrived.
///
/// # Errors
/// A [`FrameError`] for an unknown kind, a body longer than `max_body`, a
/// body that does not parse.
pub(crate) fn decode(
    buf: &[u8],
    max_body: usize,
) -> Result<Option<(Effect<'_>, u64, usize)>, FrameError> {
    if buf.len() < FRAME_OVERHEAD {
        return Ok(None);
    }
    let kind = buf[0];
    if !(ITEM..=FLUSH_AT).contains(&kind) {
        return Err(FrameError("unknown kind"));
    }
    let len = u32::from_le_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
    if len > max_body {
        return Err(FrameError("body too long"));
    }
    let total = FRAME_OVERHEAD + len;
    if buf.len() < total {
        return Ok(None);
    }
    let mut ts = [0u8; 8];
    ts.copy_from_slice(&buf[5..13]);
    let unix_ms = u64::from_le_bytes(ts);
    let body = &buf[13..13 + len];
    let word = |b: &[u8]| -> Result<u64, FrameError> {
        let w: [u8; 8] = b.try_into().map_err(|_| FrameError("short field"))?;
        Ok(u64::from_le_bytes(w))
    };
    let key_of = split_key;
    let effect = match kind {
        ITEM => {
            let (key, rest) = key_of(body)?;
            if rest.len() < ITEM_FIXED - 1 {
                return Err(FrameError("short item"));
            }
            let flags = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let cas = word(&rest[4..12])?;
            let marks = rest[12];
            if marks > 3 {
                return Err(FrameError("unknown marks"));
            }
            Effect::Item {
                key,
                flags,
                cas,
                stale: marks & 1 != 0,
                token_sent: marks & 2 != 0,
                expires_unix_ms: word(&rest[13..21])?,
                value: &rest[21..],
            }
        }
        DELETE => {
            let (key, rest) = key_of(body)?;
            if !rest.is_empty() {
                return Err(FrameError("trailing bytes"));
            }
            Effect::Delete { key }
        }
        TOUCH => {
            let (key, rest) = key_of(body)?;
            Effect::Touch {
                key,
                expires_unix_ms: word(rest)?,
            }
        }
        FLUSH if body.is_empty() => Effect::Flush,
        FLUSH_AT => Effect::FlushAt {
            unix_ms: word(body)?,
        },
        _ => return Err(FrameError("trailing bytes")),
    };
    Ok(Some((effect, unix_ms, total)))
}

/// A body's leading key and what follows it.
fn split_key(body: &[u8]) -> Result<(&[u8], &[u8]), FrameError> {
    let (&klen, rest) = body.split_first().ok_or(FrameError("no key"))?;
    let klen = usize::from(klen);
    if klen == 0 || rest.len() < klen {
        return Err(FrameError("bad key"));
    }
    Ok(rest.split_at(klen))
}

/// The old entry as a mutation saw it: whether it was live, and its TTL.
type Before = Option<(bool, Option<Duration>)>;

impl Store {
    /// The cache's `compute_keyed`, recording the change it makes when this
    /// node is a primary with a backlog in use. Every item change the
    /// commands make goes through here.
    pub(super) fn mutate<R>(
        &self,
        key: &[u8],
        f: impl FnOnce(Option<(&Block, Occupied<'_, Meta>)>) -> (KeyedOp<Block, Meta>, R),
    ) -> R {
        self.mutate_at(key, None, f)
    }

    /// [`mutate`](Self::mutate) for a command that has read the clock already
    /// (`now_ms`, the store's clock, which is the cache's): the cache's write
    /// and the record use that reading instead of taking their own (each
    /// clock read cost about 2% of a server's time under pipelined sets).
    pub(super) fn mutate_at<R>(
        &self,
        key: &[u8],
        now_ms: Option<u64>,
        f: impl FnOnce(Option<(&Block, Occupied<'_, Meta>)>) -> (KeyedOp<Block, Meta>, R),
    ) -> R {
        self.cache.compute_keyed_at(key, now_ms, |cur| {
            // Read under the shard's lock: a full sync turns recording on and
            // then reads the shards, so a change either is recorded or
            // happened before the snapshot read its shard.
            if !self.repl.recording() {
                return f(cur);
            }
            let before: Before = cur.as_ref().map(|(b, o)| (self.is_live(b), o.ttl()));
            let (op, result) = f(cur);
            self.record(key, &op, before, now_ms);
            (op, result)
        })
    }

    /// Stores `block` outright (a `set`): recorded like any change.
    pub(super) fn put_recorded(&self, expiry: Expiry, block: Block, state: u32, now_ms: u64) {
        // The key outlives the block moved into the closure (keys are at
        // most 255 bytes: no allocation).
        let mut copy = [0u8; 256];
        let key = &mut copy[..block.key().len()];
        key.copy_from_slice(block.key());
        self.mutate_at(key, Some(now_ms), |_| (Self::put(expiry, block, state), ()));
    }

    /// Removes `key` outright: recorded like any change.
    pub(super) fn remove_recorded(&self, key: &[u8]) {
        self.mutate(key, |cur| {
            let op = if cur.is_some() {
                KeyedOp::Remove
            } else {
                KeyedOp::Nop
            };
            (op, ())
        });
    }

    /// The unix time in ms at which a TTL given now ends (0: never).
    fn unix_ms_after(now_unix: u64, ttl: Option<Duration>) -> u64 {
        match ttl {
            None => 0,
            Some(ttl) => now_unix
                .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
                .max(1),
        }
    }

    /// Logs what `op` does to `key`, given the entry before it.
    fn record(&self, key: &[u8], op: &KeyedOp<Block, Meta>, before: Before, now_ms: Option<u64>) {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            buf.clear();
            self.record_into(key, op, before, now_ms, &mut buf);
            // A large value's buffer is not kept.
            if buf.capacity() > 64 << 10 {
                *buf = Vec::new();
            }
        });
    }

    fn record_into(
        &self,
        key: &[u8],
        op: &KeyedOp<Block, Meta>,
        before: Before,
        now_ms: Option<u64>,
        buf: &mut Vec<u8>,
    ) {
        let was_live = matches!(before, Some((true, _)));
        let now = self
            .time
            .unix_ms(now_ms.unwrap_or_else(|| self.time.now_ms()));
        let item = |block: &Block, meta: &Meta, ttl: Option<Duration>, buf: &mut Vec<u8>| {
            encode(
                &Effect::Item {
                    key,
                    flags: block.flags(),
                    cas: block.cas(),
                    stale: meta.state() & STALE != 0,
                    token_sent: meta.state() & TOKEN_SENT != 0,
                    expires_unix_ms: Self::unix_ms_after(now, ttl),
                    value: block.value(),
                },
                now,
                buf,
            );
        };
        let epoch_bound = match op {
            KeyedOp::Nop => return,
            KeyedOp::Remove | KeyedOp::SetTtl(_) if !was_live => return,
            KeyedOp::Remove => {
                encode(&Effect::Delete { key }, now, buf);
                None
            }
            KeyedOp::SetTtl(ttl) => {
                let expires_unix_ms = Self::unix_ms_after(now, *ttl);
                encode(
                    &Effect::Touch {
                        key,
                        expires_unix_ms,
                    },
                    now,
                    buf,
                );
                None
            }
            KeyedOp::Put(block, meta) => {
                let Some(block) = block else { return };
                let ttl = before.and_then(|(_, ttl)| ttl);
                item(block, meta, ttl, buf);
                Some(block.epoch())
            }
            KeyedOp::PutWithTtl(block, meta, ttl) => {
                let Some(block) = block else { return };
                item(block, meta, *ttl, buf);
                Some(block.epoch())
            }
        };
        let mut ring = self.repl.ring.lock();
        if epoch_bound.is_some_and(|e| e != self.epoch.load(Acquire)) {
            // Made before a flush that has since taken effect: dead on
            // arrival here, so gone on the replicas too.
            if !was_live {
                return;
            }
            buf.clear();
            encode(&Effect::Delete { key }, now, buf);
        }
        self.repl.push(&mut ring, buf);
    }

    /// Moves the flush epoch (a `flush_all` taking effect), recording it.
    pub(super) fn bump_epoch_recorded(&self) {
        // Under the backlog's lock, which a full sync takes to turn recording
        // on: the flush is recorded, or the sync's snapshot comes after it.
        let mut ring = self.repl.ring.lock();
        self.epoch.fetch_add(1, AcqRel);
        if !self.repl.recording() {
            return;
        }
        let mut buf = Vec::with_capacity(FRAME_OVERHEAD);
        encode(
            &Effect::Flush,
            self.time.unix_ms(self.time.now_ms()),
            &mut buf,
        );
        self.repl.push(&mut ring, &buf);
    }

    /// Records a delayed `flush_all` (deadline on the store clock, ms).
    pub(super) fn record_flush_at(&self, deadline: u64) {
        if deadline == 0 {
            return;
        }
        let now_ms = self.time.now_ms();
        let unix_now = self.time.unix_ms(now_ms);
        let at = unix_now.saturating_add(deadline.saturating_sub(now_ms));
        let mut buf = Vec::with_capacity(FRAME_OVERHEAD + 8);
        encode(&Effect::FlushAt { unix_ms: at }, unix_now, &mut buf);
        // Checked under the backlog's lock, as in `bump_epoch_recorded`.
        let mut ring = self.repl.ring.lock();
        if self.repl.recording() {
            self.repl.push(&mut ring, &buf);
        }
    }

    /// Makes this replica a writable primary (see [`Replication::promote`]);
    /// `false` if it was a primary already. The CAS counter first skips
    /// [`PROMOTION_CAS_GAP`] uniques: the old primary may have handed out
    /// uniques for writes that never arrived here, and a client holding one
    /// must not find it on a different write.
    pub(crate) fn promote(&self) -> Result<(), &'static str> {
        if self.repl.role() == Role::Primary {
            return Err("not a replica");
        }
        let _ = self.next_cas.fetch_update(AcqRel, Acquire, |c| {
            Some(c.saturating_add(PROMOTION_CAS_GAP))
        });
        self.repl.promote()
    }

    /// The store's unix time in milliseconds.
    pub(crate) fn unix_now_ms(&self) -> u64 {
        self.time.unix_ms(self.time.now_ms())
    }

    /// This node's replication state.
    pub(crate) fn replication(&self) -> &Replication {
        &self.repl
    }

    /// The largest frame body a replica of this store accepts.
    pub(crate) fn max_frame_body(&self) -> usize {
        // Any primary's largest item: a replica configured with a smaller
        // -I drops what it cannot hold rather than refusing the stream.
        1 + super::item::MAX_KEY + ITEM_FIXED + super::MAX_ITEM_SIZE
    }

    /// Applies every whole frame at the start of `buf` (a replica); returns
    /// the bytes they took and the primary's time on the last one.
    ///
    /// # Errors
    /// [`FrameError`] for a frame that fails its checks; the frames before
    /// it were applied (and counted in nothing returned: the caller drops
    /// the link and resyncs).
    pub(crate) fn apply_frames(&self, buf: &[u8]) -> Result<(usize, Option<u64>), FrameError> {
        let max = self.max_frame_body();
        let mut at = 0;
        let mut last = None;
        let unix_now = self.time.unix_ms(self.time.now_ms());
        while let Some((effect, ts, len)) = decode(&buf[at..], max)? {
            self.apply(&effect)?;
            self.repl.record_lag(unix_now.saturating_sub(ts));
            last = Some(ts);
            at += len;
        }
        Ok((at, last))
    }

    /// The expiry of an absolute unix time in ms (0: never).
    fn expiry_at(&self, unix_ms: u64, now_ms: u64) -> Expiry {
        if unix_ms == 0 {
            return Expiry::Never;
        }
        let now = self.time.unix_ms(now_ms);
        if unix_ms <= now {
            Expiry::Expired
        } else {
            Expiry::After(unix_ms - now)
        }
    }

    fn apply(&self, effect: &Effect<'_>) -> Result<(), FrameError> {
        let now = self.time.now_ms();
        match *effect {
            Effect::Item {
                key,
                flags,
                cas,
                stale,
                token_sent,
                expires_unix_ms,
                value,
            } => {
                self.lift_cas_counter(cas);
                if !self.fits(key.len(), value.len()) {
                    // This node's -I or -m is smaller than the primary's: it
                    // cannot hold the new value, and must not keep the old.
                    self.cache.remove(key);
                    return Ok(());
                }
                let expiry = self.expiry_at(expires_unix_ms, now);
                let block = self.new_block(key, &[value], flags, Some(cas));
                let mut state = self.fresh_state(now);
                if stale {
                    state |= STALE;
                }
                if token_sent {
                    state |= TOKEN_SENT;
                }
                self.cache
                    .compute_keyed(key, |_| (Self::put(expiry, block, state), ()));
            }
            Effect::Delete { key } => {
                self.cache.remove(key);
            }
            Effect::Touch {
                key,
                expires_unix_ms,
            } => {
                let expiry = self.expiry_at(expires_unix_ms, now);
                self.cache.compute_keyed(key, |cur| {
                    let op = match (cur.is_some(), expiry) {
                        (false, _) => KeyedOp::Nop,
                        (true, Expiry::Expired) => KeyedOp::Remove,
                        (true, e) => KeyedOp::SetTtl(e.ttl()),
                    };
                    (op, ())
                });
            }
            Effect::Flush => {
                // The primary's flush is the one that counts: a delayed one
                // announced earlier must not fire again here later.
                self.flush_pending.store(0, Release);
                self.flush_now();
            }
            Effect::FlushAt { unix_ms } => {
                let deadline = match self.expiry_at(unix_ms, now) {
                    Expiry::After(ms) => now.saturating_add(ms).max(1),
                    _ => now,
                };
                self.flush_pending.store(deadline, Release);
            }
        }
        Ok(())
    }

    /// After a full sync: drops the items this node's `-I` is too small for
    /// (the primary's may be larger), as the stream drops them. Not recorded.
    pub(crate) fn drop_oversized(&self) {
        let max = self.limits.max_item_size;
        self.cache.retain(|block, _| block.value().len() <= max);
    }

    /// Drops every item (a replica before a full sync). Not recorded.
    pub(crate) fn clear_for_sync(&self) {
        self.flush_pending.store(0, Release);
        self.cache.retain(|_, _| false);
    }
}

#[cfg(all(test, not(larder_loom)))]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_damage() {
        let effects = [
            Effect::Item {
                key: b"k",
                flags: 7,
                cas: 99,
                stale: true,
                token_sent: false,
                expires_unix_ms: 1234,
                value: b"value",
            },
            Effect::Delete { key: b"gone" },
            Effect::Touch {
                key: b"t",
                expires_unix_ms: 5,
            },
            Effect::Flush,
            Effect::FlushAt { unix_ms: 77 },
        ];
        let mut buf = Vec::new();
        for e in &effects {
            encode(e, 42, &mut buf);
        }
        let mut at = 0;
        for e in &effects {
            let (got, ts, len) = decode(&buf[at..], 1 << 20).unwrap().unwrap();
            assert_eq!((&got, ts), (e, 42));
            at += len;
        }
        assert_eq!(at, buf.len());
        // Every truncation is "not yet", never an error or a panic.
        for cut in 0..FRAME_OVERHEAD + 5 {
            assert_eq!(decode(&buf[..cut], 1 << 20), Ok(None));
        }
        // A kind, key length or mark out of range is refused (damage in
        // transit is the stream message's checksum's to catch).
        let (_, _, first) = decode(&buf, 1 << 20).unwrap().unwrap();
        for (at, to) in [(0, 9), (13, 0), (13, 200), (13 + 2 + 12, 4)] {
            let mut bad = buf.clone();
            bad[at] = to;
            assert!(
                !matches!(decode(&bad, 1 << 20), Ok(Some((_, _, n))) if n == first),
                "byte {at} = {to} accepted"
            );
        }
        assert_eq!(decode(&buf, 3), Err(FrameError("body too long")));
    }

    use crate::memcached::binary::{Extras, Request as BinaryRequest, StatusCode, Value};
    use crate::memcached::{Session, StoreConfig};

    /// A store whose clock stands still (the frames' timestamps are exact).
    fn store() -> Store {
        Store::new(StoreConfig {
            unix_time: Some(1_700_000_000),
            clock: crate::Clock::manual().0,
            ..StoreConfig::default()
        })
        .unwrap()
    }

    fn run(store: &Store, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let progress = store.process(&mut Session::new(), input, &mut out);
        assert_eq!(progress.consumed, input.len());
        out
    }

    /// Everything a primary records, applied to a replica, leaves the two
    /// with the same items, flags, CAS uniques and TTLs.
    #[test]
    fn a_replica_applying_the_log_holds_what_the_primary_holds() {
        let primary = store();
        primary.repl.configure(1 << 20, Role::Primary).unwrap();
        let _ = primary.repl.start_sync();
        let replica = store();
        replica.repl.configure(1 << 20, Role::Replica).unwrap();
        let script: &[u8] = b"set a 1 0 1\r\nx\r\nset b 2 100 2\r\nbb\r\nset n 0 0 2\r\n10\r\n\
incr n 5\r\nappend a 0 0 2\r\nyz\r\nprepend b 0 0 1\r\n<\r\ntouch b 50\r\n\
add c 0 1800000000 1\r\nc\r\nreplace c 3 0 1\r\nC\r\ngat 70 a\r\ndelete zz\r\n\
ms m 2 T30 E777\r\nmm\r\nmd m I\r\nma n D3\r\nmg q N20\r\nset gone 0 0 1\r\ng\r\n\
delete gone\r\nset e 0 -1 1\r\ne\r\n";
        run(&primary, script);
        let (_, end) = primary.repl.position();
        let mut bytes = Vec::new();
        assert!(matches!(
            primary
                .repl
                .read(0, 0, usize::MAX, (Duration::ZERO, false), &mut bytes),
            Read::Bytes(_)
        ));
        assert_eq!(bytes.len() as u64, end);
        // Applied in two uneven pieces, as a stream arrives.
        let (first, _) = replica.apply_frames(&bytes[..bytes.len() / 2]).unwrap();
        let (rest, last) = replica.apply_frames(&bytes[first..]).unwrap();
        assert_eq!(first + rest, bytes.len());
        assert_eq!(last, Some(1_700_000_000_000));
        let dump = |s: &Store| {
            run(
                s,
                b"mg a v f c t\r\nmg b v f c t\r\nmg n v f c t\r\nmg c v f c t\r\n\
mg m v f c t\r\nmg q v f c t\r\nmg gone v\r\nmg e v\r\n",
            )
        };
        let want = dump(&primary);
        // Including the win token handed out for the vivified `q`: a second
        // client asking a replica (or a promoted replica) for `q` is told
        // someone is refilling it (`Z`), as on the primary, instead of being
        // served the empty placeholder as a hit.
        assert!(String::from_utf8_lossy(&want).contains("t20 Z"));
        assert_eq!(
            String::from_utf8_lossy(&dump(&replica)),
            String::from_utf8_lossy(&want)
        );
        assert!(
            want.starts_with(b"VA 3 f1 c"),
            "{}",
            String::from_utf8_lossy(&want)
        );
        // The replica's CAS counter is past every replicated unique.
        assert!(replica.next_cas.load(Relaxed) > 777);
        // A flush replicates too.
        run(&primary, b"flush_all\r\n");
        bytes.clear();
        let _ = primary
            .repl
            .read(0, end, usize::MAX, (Duration::ZERO, false), &mut bytes);
        replica.apply_frames(&bytes).unwrap();
        assert_eq!(replica.len(), 0);
    }

    #[test]
    fn a_promotion_waits_for_a_full_sync_to_end() {
        // Promoting a replica half-way through loading a snapshot would leave
        // it a primary with part of the old primary's data, and the load
        // writing into it: refused until the load ends (or fails).
        let replica = store();
        replica.repl.configure(0, Role::Replica).unwrap();
        let loading = replica.repl.begin_full_sync().expect("a replica");
        assert_eq!(replica.promote(), Err("full sync in progress"));
        assert_eq!(replica.repl.role(), Role::Replica);
        drop(loading);
        assert_eq!(replica.promote(), Ok(()));
        // A promoted node starts no full sync.
        assert!(replica.repl.begin_full_sync().is_none());
    }

    /// Makes `replica` a replica and applies a frame storing `k` = `v` with
    /// CAS `cas`.
    fn replica_holding_k(replica: &Store, cas: u64) {
        replica.repl.configure(0, Role::Replica).unwrap();
        let mut frame = Vec::new();
        let item = Effect::Item {
            key: b"k",
            flags: 0,
            cas,
            stale: false,
            token_sent: false,
            expires_unix_ms: 0,
            value: b"v",
        };
        encode(&item, 0, &mut frame);
        replica.apply_frames(&frame).unwrap();
    }

    #[test]
    fn a_replica_refuses_writes_in_every_protocol_and_serves_reads() {
        let replica = store();
        replica_holding_k(&replica, 5);
        for write in [
            &b"set k 0 0 1\r\nx\r\n"[..],
            b"incr k 1\r\n",
            b"touch k 10\r\n",
            b"gat 10 k\r\n",
            // One reply for the command, not one per key.
            b"gat 10 k k k2 k3\r\n",
            b"gats 10 k k2\r\n",
            b"flush_all\r\n",
            b"ms k 1\r\nx\r\n",
            b"md k\r\n",
            b"mg k T10\r\n",
        ] {
            assert_eq!(
                run(&replica, write),
                b"SERVER_ERROR read-only replica\r\n",
                "{}",
                String::from_utf8_lossy(write)
            );
        }
        assert_eq!(run(&replica, b"delete k noreply\r\n"), b"");
        assert_eq!(run(&replica, b"get k\r\n"), b"VALUE k 0 1\r\nv\r\nEND\r\n");
        let mut out = Vec::new();
        let set = BinaryRequest {
            key: b"k",
            extras: Extras::Store {
                flags: 0,
                exptime: 0,
            },
            value: Value::Data(b"x"),
            ..BinaryRequest::bare(Opcode::Set)
        };
        let _ = replica.execute_binary(&set, &mut out);
        assert_eq!(
            u16::from_be_bytes([out[6], out[7]]),
            StatusCode::TEMPORARY_FAILURE.0
        );
        assert!(out.ends_with(READ_ONLY.as_bytes()));
        assert_eq!(replica.get(b"k").unwrap().cas(), 5);
        // Promoted: writable, and recording.
        assert_eq!(replica.promote(), Ok(()));
        assert_eq!(replica.promote(), Err("not a replica"));
        assert_eq!(run(&replica, b"set k 0 0 1\r\nx\r\n"), b"STORED\r\n");
        assert!(replica.get(b"k").unwrap().cas() > 5 + PROMOTION_CAS_GAP);
        assert!(replica.repl.position().1 > 0);
    }

    #[test]
    fn a_client_chosen_cas_near_the_end_of_the_space_does_not_move_the_counter() {
        // `ms k S1 E<near 2^64>` on the primary reaches the replica as a CAS no
        // counter makes; if it lifted the replica's counter, a promotion's gap
        // would run it to the end of the space and wrap it to uniques clients
        // still hold.
        let replica = store();
        let near_end = u64::MAX - PROMOTION_CAS_GAP / 2;
        replica_holding_k(&replica, near_end);
        assert_eq!(replica.get(b"k").unwrap().cas(), near_end);
        assert_eq!(replica.promote(), Ok(()));
        assert_eq!(run(&replica, b"set j 0 0 1\r\nx\r\n"), b"STORED\r\n");
        let cas = replica.get(b"j").unwrap().cas();
        assert!(
            (PROMOTION_CAS_GAP..super::super::GENERATED_CAS_LIMIT).contains(&cas),
            "{cas}"
        );
    }

    #[test]
    fn the_cas_counter_never_hands_out_zero() {
        let store = store();
        store.next_cas.store(u64::MAX, Relaxed);
        assert_eq!(run(&store, b"set k 0 0 1\r\nx\r\n"), b"STORED\r\n");
        assert_eq!(store.get(b"k").unwrap().cas(), u64::MAX);
        // Past the top the counter starts again, skipping 0 ("no CAS").
        assert_eq!(run(&store, b"set k 0 0 1\r\nx\r\n"), b"STORED\r\n");
        assert_eq!(store.get(b"k").unwrap().cas(), 1);
    }

    #[test]
    fn replica_commands_parse_strictly() {
        use crate::memcached::{parse, AdminCommand, Limits, Status};
        let id = [b'a'; 40];
        let line = format!("replica sync {} 12\r\n", std::str::from_utf8(&id).unwrap());
        for (input, want) in [
            (
                &b"replica sync ? 0\r\n"[..],
                AdminCommand::ReplicaSync {
                    id: None,
                    offset: 0,
                },
            ),
            (
                line.as_bytes(),
                AdminCommand::ReplicaSync {
                    id: Some(id),
                    offset: 12,
                },
            ),
            (b"replica promote\r\n", AdminCommand::ReplicaPromote),
        ] {
            let Ok(Status::Complete(Request::Admin { command, .. }, used)) =
                parse(input, &Limits::default())
            else {
                panic!("{input:?} did not parse");
            };
            assert_eq!((command, used), (want, input.len()));
            let mut back = Vec::new();
            Request::Admin {
                command,
                noreply: false,
            }
            .write_to(&mut back);
            assert_eq!(back, input);
        }
        let store = store();
        for bad in [
            &b"replica sync abc 1\r\n"[..],
            b"replica sync ? -1\r\n",
            b"replica sync ?\r\n",
            b"replica\r\n",
            b"replica promote now\r\n",
        ] {
            let reply = run(&store, bad);
            assert!(
                reply.ends_with(b"ERROR\r\n") || reply.starts_with(b"CLIENT_ERROR"),
                "{bad:?}"
            );
        }
        assert_eq!(
            run(&store, b"replica promote\r\n"),
            b"SERVER_ERROR not a replica\r\n"
        );
    }

    /// Garbage, and valid frames with bytes changed, never panic a replica:
    /// each is applied, refused, or waited on.
    #[test]
    fn no_stream_panics_a_replica() {
        let replica = store();
        replica.repl.configure(0, Role::Replica).unwrap();
        let mut valid = Vec::new();
        for (i, effect) in [
            Effect::Item {
                key: b"k",
                flags: 1,
                cas: 2,
                stale: false,
                token_sent: false,
                expires_unix_ms: 1_700_000_100_000,
                value: b"value",
            },
            Effect::Touch {
                key: b"k",
                expires_unix_ms: 3,
            },
            Effect::Delete { key: b"k" },
            Effect::FlushAt { unix_ms: 9 },
            Effect::Flush,
        ]
        .iter()
        .enumerate()
        {
            encode(effect, i as u64, &mut valid);
        }
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000 {
            let mut buf = if round % 2 == 0 {
                valid.clone()
            } else {
                (0..next() % 200).map(|_| next() as u8).collect()
            };
            for _ in 0..next() % 4 {
                if !buf.is_empty() {
                    let at = (next() % buf.len() as u64) as usize;
                    buf[at] = next() as u8;
                }
            }
            let cut = (next() % (buf.len() as u64 + 1)) as usize;
            if let Ok((used, _)) = replica.apply_frames(&buf[..cut]) {
                assert!(used <= cut);
            }
        }
        replica.validate();
    }

    #[test]
    fn the_ring_keeps_the_newest_bytes() {
        let mut ring = Ring {
            buf: vec![0; 8],
            end: 0,
            held: 0,
            id: [b'0'; 40],
            secondary: None,
            generation: 0,
        };
        ring.push(b"abcde");
        ring.push(b"fghij");
        assert_eq!((ring.start(), ring.end), (2, 10));
        let mut out = Vec::new();
        assert_eq!(ring.read(3, 100, &mut out), Some(7));
        assert_eq!(out, b"defghij");
        assert_eq!(ring.read(1, 100, &mut out), None);
        assert_eq!(ring.read(11, 100, &mut out), None);
        out.clear();
        ring.push(b"0123456789xyz");
        assert_eq!(ring.read(ring.end - 8, 100, &mut out), Some(8));
        assert_eq!(out, b"56789xyz");
    }
}
