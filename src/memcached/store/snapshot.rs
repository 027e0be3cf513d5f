//! Snapshots of a [`Store`]: the core cache's snapshot (see
//! [`crate::snapshot`]) with memcached's item metadata in each value, and the
//! store's own state in the header.
//!
//! What survives a save and restore: every live item's key, value, client
//! flags, CAS unique and its expiry as absolute wall-clock time (an item whose
//! TTL ran out while the store was down is not restored), its stale and
//! fetched marks; the CAS counter (a restored store never hands out a CAS
//! unique it handed out before), and the `flush_all` state (a delayed flush
//! still takes effect at its wall-clock time; an item a flush invalidated but
//! had not yet reclaimed when the save passed it is saved with a mark and
//! restored invalid, holding its room until it is reclaimed).
//!
//! Files: [`Store::save_to_path`] writes a temporary file in the target's
//! directory, fsyncs it, keeps older generations by renaming, renames the new
//! file into place and fsyncs the directory: a crash at any point leaves the
//! previous snapshot whole. [`Store::restore_from_path`] tries the newest
//! generation first and falls back to older ones when one is damaged.
//!
//! Items are encoded field by field (flags, CAS, marks, value), not as the
//! in-memory block, so the file format does not change with the layout.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::item::{self, Block, Head, Meta};
use super::{thin, Store, ITEM_OVERHEAD};
use crate::snapshot::{Codec, DecodeError, LoadReport, SaveReport, SnapshotError, SnapshotOptions};
use crate::sync::{AtomicU64, Mutex};

/// The version of the store's header metadata and item encoding. 2: items
/// carry no sequence (version 1, never released, did).
const META_VERSION: u8 = 2;
/// Bytes of an item's metadata before its value: flags, CAS, marks.
const ITEM_HEAD: usize = 4 + 8 + 1;
/// The state bits a snapshot keeps (stale, fetched, win token sent), shifted
/// down into one byte.
const KEPT_STATE: u32 = item::FETCHED | item::STALE | item::TOKEN_SENT;
/// Where those bits sit in the state word, above the access second: the
/// byte keeps fetched in bit 0, stale in bit 1, token sent in bit 2.
const MARKS_SHIFT: u32 = item::FETCHED.trailing_zeros();
/// A mark of its own in that byte: the item was flushed (invalidated by a
/// `flush_all` but not yet reclaimed) when it was saved; it is restored
/// invalid, never live.
const FLUSHED: u8 = 0x80;

/// The outcome of the last snapshot, for `stats`.
pub(crate) struct SnapshotState {
    /// One save at a time (the periodic one and a shutdown's may meet).
    saving: Mutex<()>,
    /// Wall-clock second the last save finished; 0: none yet.
    last_unix: AtomicU64,
    /// 1 if the last save succeeded.
    last_ok: AtomicU64,
    /// Wall-clock second the last successful save finished; 0: none yet.
    last_ok_unix: AtomicU64,
    /// Saves that failed since start.
    failures: AtomicU64,
    bytes: AtomicU64,
    duration_ms: AtomicU64,
    /// `Counters::changes` when the last successful save began (or the
    /// restore finished).
    changes_at: AtomicU64,
}

impl SnapshotState {
    pub(crate) fn new() -> SnapshotState {
        SnapshotState {
            saving: Mutex::new(()),
            last_unix: AtomicU64::new(0),
            last_ok: AtomicU64::new(0),
            last_ok_unix: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            duration_ms: AtomicU64::new(0),
            changes_at: AtomicU64::new(0),
        }
    }
}

/// The figures `stats` reports about snapshots; from [`Store::snapshot_status`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SnapshotStatus {
    /// Unix second the last save finished (0: none since start).
    pub last_unix: u64,
    /// Whether the last save succeeded.
    pub last_ok: bool,
    /// Unix second the last successful save finished (0: none since start).
    pub last_ok_unix: u64,
    /// Saves that failed since start.
    pub failures: u64,
    /// Size of the last successful snapshot.
    pub bytes: u64,
    /// Wall time the last save took, file sync and rename included.
    pub duration_ms: u64,
    /// Client writes since the last successful save began (or since the
    /// restore, or the start): what a crash now could lose.
    pub changes_since: u64,
}

/// Where [`Store::restore_from_path`] found a good snapshot, and which
/// generations it had to pass over.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Restored {
    /// The file restored from, with what it held; `None`: no good snapshot,
    /// the store is empty.
    pub from: Option<(PathBuf, LoadReport)>,
    /// Files that exist but could not be restored, newest first.
    pub refused: Vec<(PathBuf, SnapshotError)>,
}

/// Encodes items with their metadata; on the way back converts wall-clock
/// expiry to the store's clock and notes the highest CAS seen.
struct ItemCodec<'a> {
    store: &'a Store,
    now_ms: u64,
    unix_now: u64,
    highest: AtomicU64,
}

impl Codec<Block, Meta> for ItemCodec<'_> {
    fn encode_key(&self, block: &Block, out: &mut Vec<u8>) {
        out.extend_from_slice(block.key());
    }

    fn encode_value(&self, block: &Block, meta: &Meta, out: &mut Vec<u8>) {
        out.extend_from_slice(&block.flags().to_le_bytes());
        out.extend_from_slice(&block.cas().to_le_bytes());
        let mut marks = ((meta.state() & KEPT_STATE) >> MARKS_SHIFT) as u8;
        if !self.store.is_live(block) {
            marks |= FLUSHED;
        }
        out.push(marks);
        out.extend_from_slice(block.value());
    }

    fn decode(
        &self,
        key: &[u8],
        value: &[u8],
        _expires_at: Option<u64>,
    ) -> Result<(Block, Meta), DecodeError> {
        if value.len() < ITEM_HEAD {
            return Err(DecodeError("item shorter than its metadata"));
        }
        if key.is_empty() || key.len() > item::MAX_KEY {
            return Err(DecodeError("item key length out of range"));
        }
        let (head, data) = value.split_at(ITEM_HEAD);
        let mut w = [0u8; 8];
        let flags = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        w.copy_from_slice(&head[4..12]);
        let cas = u64::from_le_bytes(w);
        let marks = (u32::from(head[12]) << MARKS_SHIFT) & KEPT_STATE;
        if cas < super::GENERATED_CAS_LIMIT {
            self.highest.fetch_max(cas, Relaxed);
        }
        // The expiry is the cache's own deadline, which the core restores
        // from the record. A flushed item keeps an epoch before the current
        // one, so it is never returned.
        let epoch = self.store.epoch.load(Acquire);
        let epoch = if head[12] & FLUSHED != 0 {
            epoch.wrapping_sub(1)
        } else {
            epoch
        };
        let block = Block::new(
            Head {
                key,
                flags,
                cas,
                epoch,
            },
            &[data],
        );
        // Every restored item was last used "now": the time the restore began
        // (one clock read per restore, not per item).
        Ok((
            block,
            Meta::new(self.store.fresh_state(self.now_ms) | marks),
        ))
    }
}

impl Store {
    fn codec(&self) -> ItemCodec<'_> {
        let now_ms = self.time.now_ms();
        ItemCodec {
            store: self,
            now_ms,
            unix_now: self.time.unix_ms(now_ms),
            highest: AtomicU64::new(0),
        }
    }

    /// Writes a snapshot of every live item and of the store's CAS counter
    /// and `flush_all` state to `out` (see the [module docs](crate::snapshot)
    /// for the format).
    ///
    /// **Locking behaviour:** one shard's read lock at a time, for a bounded
    /// slice; commands go on meanwhile. Items written during the save may or
    /// may not be in it.
    ///
    /// # Errors
    /// [`SnapshotError::Io`] when writing fails.
    ///
    /// ```
    /// use larder::memcached::{Store, StoreConfig};
    ///
    /// let store = Store::new(StoreConfig::default())?;
    /// let mut out = Vec::new();
    /// let _ = store.process(&mut Default::default(), b"set k 7 0 2\r\nhi\r\n", &mut out);
    /// let mut file = Vec::new();
    /// store.save(&mut file)?;
    ///
    /// let copy = Store::new(StoreConfig::default())?;
    /// copy.restore(&file[..])?;
    /// let item = copy.get(b"k").expect("restored");
    /// assert_eq!((&item.value()[..], item.flags()), (&b"hi"[..], 7));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save(&self, out: impl Write) -> Result<SaveReport, SnapshotError> {
        let codec = self.codec();
        let pending = self.flush_pending.load(Acquire);
        let pending_unix = match pending {
            0 => 0,
            at => codec
                .unix_now
                .saturating_add(at.saturating_sub(codec.now_ms))
                .max(1),
        };
        let mut meta = Vec::with_capacity(25);
        meta.push(META_VERSION);
        meta.extend_from_slice(&self.next_cas.load(Acquire).to_le_bytes());
        // Formerly the flush point; flushed items now carry their own mark.
        meta.extend_from_slice(&0u64.to_le_bytes());
        meta.extend_from_slice(&pending_unix.to_le_bytes());
        let options = SnapshotOptions::new()
            .unix_now_ms(codec.unix_now)
            .meta(meta);
        self.cache.save_with(out, &codec, &options)
    }

    /// Reads a snapshot written by [`save`](Self::save) into this store
    /// (meant for a store that has not served yet). Items whose expiry passed
    /// while the snapshot sat on disk are skipped. The CAS counter moves past
    /// every CAS unique the snapshot holds.
    ///
    /// **Locking behaviour:** one shard's write lock at a time, for a run of
    /// up to 256 records.
    ///
    /// # Errors
    /// A typed [`SnapshotError`] for a damaged, truncated or foreign file.
    /// Items of the blocks checked before the damage are then in the store;
    /// [`restore_from_path`](Self::restore_from_path) clears them.
    pub fn restore(&self, input: impl Read) -> Result<LoadReport, SnapshotError> {
        let codec = self.codec();
        // The lightest item: a one-byte key, an empty value, small fields.
        let lightest = u64::from(ITEM_OVERHEAD) + thin::smallest_cost() as u64;
        let options = SnapshotOptions::new()
            .unix_now_ms(codec.unix_now)
            .max_entries(self.memory_limit() / lightest);
        let report = self.cache.restore_with(input, &codec, &options)?;
        let meta = &report.meta;
        if meta.len() != 25 || meta[0] != META_VERSION {
            return Err(SnapshotError::Decode(DecodeError(
                "not a snapshot of a memcached store",
            )));
        }
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&meta[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let (next_cas, pending_unix) = (word(1), word(17));
        self.lift_cas_counter(codec.highest.load(Relaxed));
        self.lift_cas_counter(next_cas.saturating_sub(1));
        if pending_unix != 0 {
            let at = codec
                .now_ms
                .saturating_add(pending_unix.saturating_sub(codec.unix_now))
                .max(1);
            self.flush_pending.store(at, Release);
            self.apply_pending_flush(self.time.now_ms());
        }
        self.snapshot
            .changes_at
            .store(self.counters.changes(), Release);
        Ok(report)
    }

    /// Saves to `path` safely: writes `.<name>.tmp` beside it (mode 0600 on
    /// Unix: the file holds the cache's contents), fsyncs it,
    /// shifts the older generations (`path.1` … `path.<keep>`; the oldest
    /// is dropped), renames the new file to `path` and fsyncs the directory.
    /// A crash at any point leaves the previous snapshot readable (as `path`
    /// or `path.1`). Records the outcome for [`snapshot_status`](Self::snapshot_status).
    ///
    /// **Locking behaviour:** as [`save`](Self::save); saves to files are
    /// serialised by a mutex of the store's own (a second caller waits).
    ///
    /// # Errors
    /// [`SnapshotError::Io`] when a file operation fails (the previous
    /// snapshot is untouched).
    ///
    /// ```
    /// use larder::memcached::{Store, StoreConfig};
    ///
    /// let dir = std::env::temp_dir().join(format!("larder-doc-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir)?;
    /// let path = dir.join("cache.snap");
    /// let store = Store::new(StoreConfig::default())?;
    /// store.save_to_path(&path, 2)?;
    /// assert!(store.snapshot_status().last_ok);
    ///
    /// let copy = Store::new(StoreConfig::default())?;
    /// let restored = copy.restore_from_path(&path, 2);
    /// assert_eq!(restored.from.map(|(p, _)| p), Some(path));
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn save_to_path(&self, path: &Path, keep: usize) -> Result<SaveReport, SnapshotError> {
        let _one = self.snapshot.saving.lock();
        let started = Instant::now();
        let changes = self.counters.changes();
        let result = self.write_generation(path, keep);
        let s = &self.snapshot;
        let finished = unix_secs();
        s.last_unix.store(finished, Release);
        s.duration_ms.store(
            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            Release,
        );
        match &result {
            Ok(report) => {
                s.last_ok.store(1, Release);
                s.last_ok_unix.store(finished, Release);
                s.bytes.store(report.bytes, Release);
                s.changes_at.store(changes, Release);
            }
            Err(_) => {
                s.last_ok.store(0, Release);
                s.failures.fetch_add(1, AcqRel);
            }
        }
        result
    }

    fn write_generation(&self, path: &Path, keep: usize) -> Result<SaveReport, SnapshotError> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = path
            .file_name()
            .ok_or_else(|| std::io::Error::other("snapshot path has no file name"))?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(".tmp");
        let tmp = dir.join(tmp_name);
        let write = || -> Result<SaveReport, SnapshotError> {
            let mut open = std::fs::OpenOptions::new();
            open.write(true).create(true).truncate(true);
            // The cache's contents: readable by the server's user only.
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
            let file = open.open(&tmp)?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            let report = self.save(&mut out)?;
            let file = out.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            Ok(report)
        };
        let report = match write() {
            Ok(report) => report,
            Err(e) => {
                // A disk that filled up gets its space back.
                let _ = std::fs::remove_file(&tmp);
                return Err(e);
            }
        };
        if keep > 0 {
            for n in (1..keep).rev() {
                let from = generation(path, n);
                if from.exists() {
                    std::fs::rename(&from, generation(path, n + 1))?;
                }
            }
            if path.exists() {
                std::fs::rename(path, generation(path, 1))?;
            }
        }
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(report)
    }

    /// Restores from the newest good generation of `path` (`path`, then
    /// `path.1` … `path.<keep>`): a file that is damaged is passed over (and
    /// anything it had stored is cleared) for the next older one; with none
    /// good the store stays empty. Never fails: what was refused is in
    /// [`Restored::refused`] for the caller to log. A file that does not
    /// exist is not an error.
    ///
    /// **Locking behaviour:** as [`restore`](Self::restore).
    pub fn restore_from_path(&self, path: &Path, keep: usize) -> Restored {
        let mut out = Restored::default();
        for n in 0..=keep {
            let candidate = generation(path, n);
            let file = match std::fs::File::open(&candidate) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    out.refused.push((candidate, SnapshotError::Io(e)));
                    continue;
                }
            };
            match self.restore(std::io::BufReader::with_capacity(1 << 20, file)) {
                Ok(report) => {
                    out.from = Some((candidate, report));
                    return out;
                }
                Err(e) => {
                    self.cache.clear();
                    out.refused.push((candidate, e));
                }
            }
        }
        out
    }

    /// The outcome of the last [`save_to_path`](Self::save_to_path), and the
    /// client writes since (what `stats` reports as `snapshot_*` and
    /// `changes_since_snapshot`).
    ///
    /// ```
    /// let store = larder::memcached::Store::new(Default::default())?;
    /// assert_eq!(store.snapshot_status().last_unix, 0);
    /// # Ok::<(), larder::memcached::StoreError>(())
    /// ```
    pub fn snapshot_status(&self) -> SnapshotStatus {
        let s = &self.snapshot;
        SnapshotStatus {
            last_unix: s.last_unix.load(Acquire),
            last_ok: s.last_ok.load(Acquire) == 1,
            last_ok_unix: s.last_ok_unix.load(Acquire),
            failures: s.failures.load(Acquire),
            bytes: s.bytes.load(Acquire),
            duration_ms: s.duration_ms.load(Acquire),
            changes_since: self
                .counters
                .changes()
                .saturating_sub(s.changes_at.load(Acquire)),
        }
    }
}

/// `path` for generation 0, `path.<n>` for older ones.
fn generation(path: &Path, n: usize) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
