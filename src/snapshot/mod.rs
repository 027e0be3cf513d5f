//! Snapshots: [`Cache::save`] writes a cache's live entries to any
//! [`Write`], [`Cache::restore`] reads them back from any
//! [`Read`], both streaming.
//!
//! Keys and values are encoded through the [`Persist`] trait (implemented for
//! integers, strings, byte vectors and `bytes::Bytes`), or through a
//! [`Codec`] when the encoding needs context (the memcached store uses one to
//! carry its item metadata).
//!
//! # What is saved
//! Each live entry's key, value, its deadline as **absolute wall-clock time**
//! (so a TTL that runs out while the process is down is gone after the load),
//! and a policy hint: the entry's queue and access counter. A load places each
//! entry by its hint, so a restored cache is not cold-ordered, and a load into
//! a smaller cache evicts the coldest entries first (probation before the main
//! queue, unused before used). Under [`Policy::lru`](crate::Policy::lru), which
//! keeps no per-entry standing, entries are restored in file order.
//! Entries already expired at save time are not written; entries expired at
//! load time are skipped.
//!
//! # Locking
//! Saving takes one shard's **read** lock at a time, for a bounded slice
//! (about [`SLICE_SLOTS`] slots, a range of the table's hash order, or about
//! [`BLOCK_BYTES`] of encoded records), and
//! writes to the output with no lock held. Reads go on during a save; a
//! writer waits at most for one slice. A save is therefore not a point-in-time
//! image: an entry written during the save may or may not be in it, but every
//! entry that is in it is a value the key really had.
//!
//! Restoring takes one shard's write lock per run of up to 256 of its
//! records. On a machine with more than one CPU the calling thread reads,
//! checks and decodes the file while up to four scoped worker threads store
//! the records, each into its own share of the shards.
//!
//! # File format (version 1)
//! All integers little-endian.
//! ```text
//! header  "LARDSNAP"  u16 version=1  u16 flags=0  u64 saved_at (unix ms)
//!         u64 entries  u64 weight  (the cache's size when the save began: a hint
//!         that lets a restore size its tables once)
//!         u32 meta_len  meta[meta_len]  u32 crc32c(all of the header before it)
//! block*  u8 'B'  u32 records  u32 len  u32 crc32c(tag, records, len, payload)  payload[len]
//! end     u8 'E'  u64 records  u64 blocks  u32 file_crc
//! record  u32 key_len  key  u32 value_len  value  u64 expires_at (unix ms, 0: never)  u8 hint
//! ```
//! `file_crc` is the CRC32C of the header's CRC, every block's CRC in order,
//! and the end frame's first 17 bytes: with the per-block checksums it covers
//! every byte, and a dropped, repeated or reordered block changes it. Nothing
//! may follow the end frame.
//!
//! # Damage
//! A load checks each block's checksum before it decodes a byte of it, so a
//! damaged record is never stored. A damaged or truncated file is refused with
//! a typed [`SnapshotError`]: [`Truncated`](SnapshotError::Truncated),
//! [`Checksum`](SnapshotError::Checksum), [`Version`](SnapshotError::Version)
//! or [`Decode`](SnapshotError::Decode); no input makes a load panic, and
//! what a load allocates is bounded by the cache's capacity and a small
//! multiple of what the file really holds. Entries of the blocks checked *before*
//! the damage have been stored by then; [`Cache::clear`] the cache (or drop
//! it) if all-or-nothing matters, as `larder-server` does before it falls back
//! to an older generation.

#![forbid(unsafe_code)]

pub(crate) mod crc;

use std::fmt;
use std::hash::Hash;
use std::io::{self, Read, Write};

use crate::Cache;
use crc::{crc32c, Crc32c};

/// The format version this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;
const MAGIC: &[u8; 8] = b"LARDSNAP";
/// Slots a save examines per shard-lock hold, about: a range of the table's
/// hash order expected to span this many slots (a run of displaced entries
/// past its end is read too).
pub const SLICE_SLOTS: u32 = 512;
/// Encoded bytes after which a save closes a block (and releases the lock).
pub const BLOCK_BYTES: usize = 256 << 10;
/// The largest block a load accepts (a record larger than this cannot be saved).
const MAX_BLOCK: u32 = 1 << 30;
/// The largest header metadata a load accepts.
const MAX_META: u32 = 16 << 20;
const TAG_BLOCK: u8 = b'B';
const TAG_END: u8 = b'E';
/// Bytes of the header before its metadata.
const HEAD: usize = 8 + 2 + 2 + 8 + 8 + 8 + 4;
/// Bytes of a record beyond its key and value.
const RECORD_OVERHEAD: usize = 4 + 4 + 8 + 1;

/// Why a key or value could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Why a snapshot could not be saved or loaded.
#[derive(Debug)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Reading or writing failed.
    Io(io::Error),
    /// The file ends before its end frame.
    Truncated,
    /// A checksum does not match: the file is damaged.
    Checksum,
    /// The file is a snapshot of a format version this build does not read.
    Version(u16),
    /// The file is not a snapshot, or a checked block holds a record this
    /// codec cannot decode (a snapshot of a cache of other types).
    Decode(DecodeError),
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Io(e) => write!(f, "snapshot i/o error: {e}"),
            SnapshotError::Truncated => f.write_str("snapshot is truncated"),
            SnapshotError::Checksum => f.write_str("snapshot checksum mismatch (damaged file)"),
            SnapshotError::Version(v) => write!(
                f,
                "snapshot format version {v} is not supported (this build reads {FORMAT_VERSION})"
            ),
            SnapshotError::Decode(e) => write!(f, "snapshot cannot be decoded: {e}"),
        }
    }
}

impl std::error::Error for SnapshotError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SnapshotError::Io(e) => Some(e),
            SnapshotError::Decode(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for SnapshotError {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            SnapshotError::Truncated
        } else {
            SnapshotError::Io(e)
        }
    }
}

fn bad(what: &'static str) -> SnapshotError {
    SnapshotError::Decode(DecodeError(what))
}

/// A type a snapshot can store: encoded to bytes and decoded from exactly
/// those bytes.
///
/// ```
/// use larder::snapshot::{DecodeError, Persist};
///
/// #[derive(Debug, PartialEq)]
/// struct Point(i32, i32);
///
/// impl Persist for Point {
///     fn encode(&self, out: &mut Vec<u8>) {
///         self.0.encode(out);
///         self.1.encode(out);
///     }
///     fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
///         let (a, b) = bytes.split_at_checked(4).ok_or(DecodeError("short point"))?;
///         Ok(Point(i32::decode(a)?, i32::decode(b)?))
///     }
/// }
///
/// let mut out = Vec::new();
/// Point(3, -4).encode(&mut out);
/// assert_eq!(Point::decode(&out)?, Point(3, -4));
/// # Ok::<(), DecodeError>(())
/// ```
pub trait Persist: Sized {
    /// Appends the encoding of `self` to `out`.
    fn encode(&self, out: &mut Vec<u8>);

    /// Decodes a value from exactly the bytes [`encode`](Self::encode) wrote.
    ///
    /// # Errors
    /// [`DecodeError`] when `bytes` is not such an encoding; never panics.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;
}

macro_rules! persist_int {
    ($($t:ty),*) => {$(
        impl Persist for $t {
            fn encode(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
                bytes
                    .try_into()
                    .map(<$t>::from_le_bytes)
                    .map_err(|_| DecodeError(concat!("wrong length for ", stringify!($t))))
            }
        }
    )*};
}
persist_int!(u8, u16, u32, u64, u128, i8, i16, i32, i64, i128);

impl Persist for usize {
    fn encode(&self, out: &mut Vec<u8>) {
        (*self as u64).encode(out);
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        usize::try_from(u64::decode(bytes)?).map_err(|_| DecodeError("usize out of range"))
    }
}

impl Persist for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        match bytes {
            [0] => Ok(false),
            [1] => Ok(true),
            _ => Err(DecodeError("not a bool")),
        }
    }
}

impl Persist for () {
    fn encode(&self, _out: &mut Vec<u8>) {}
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        bytes
            .is_empty()
            .then_some(())
            .ok_or(DecodeError("unit with bytes"))
    }
}

impl Persist for Vec<u8> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(bytes.to_vec())
    }
}

impl Persist for Box<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(bytes.into())
    }
}

impl Persist for std::sync::Arc<[u8]> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(bytes.into())
    }
}

impl<const N: usize> Persist for [u8; N] {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        bytes
            .try_into()
            .map_err(|_| DecodeError("wrong length for a byte array"))
    }
}

impl Persist for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| DecodeError("string is not UTF-8"))
    }
}

impl Persist for Box<str> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        String::decode(bytes).map(String::into_boxed_str)
    }
}

impl Persist for std::sync::Arc<str> {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        std::str::from_utf8(bytes)
            .map(Into::into)
            .map_err(|_| DecodeError("string is not UTF-8"))
    }
}

#[cfg(feature = "memcached")]
impl Persist for bytes::Bytes {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        Ok(bytes::Bytes::copy_from_slice(bytes))
    }
}

/// How a snapshot encodes a cache's entries, when [`Persist`] on the key and
/// value types is not enough (the decoder may need the entry's expiry, or
/// context the codec carries). [`Plain`] is the codec [`Cache::save`] and
/// [`Cache::restore`] use.
///
/// ```
/// use larder::snapshot::{Codec, DecodeError, SnapshotOptions};
/// use larder::Cache;
///
/// /// Stores `u64 -> String` with the value upper-cased on the way back.
/// struct Shout;
/// impl Codec<u64, String> for Shout {
///     fn encode_key(&self, key: &u64, out: &mut Vec<u8>) {
///         out.extend_from_slice(&key.to_le_bytes());
///     }
///     fn encode_value(&self, _key: &u64, value: &String, out: &mut Vec<u8>) {
///         out.extend_from_slice(value.as_bytes());
///     }
///     fn decode(&self, key: &[u8], value: &[u8], _expires: Option<u64>) -> Result<(u64, String), DecodeError> {
///         let key = u64::from_le_bytes(key.try_into().map_err(|_| DecodeError("key"))?);
///         let value = std::str::from_utf8(value).map_err(|_| DecodeError("utf-8"))?;
///         Ok((key, value.to_uppercase()))
///     }
/// }
///
/// let a: Cache<u64, String> = Cache::new(10);
/// a.insert(1, "one".into());
/// let mut file = Vec::new();
/// a.save_with(&mut file, &Shout, &SnapshotOptions::new())?;
/// let b: Cache<u64, String> = Cache::new(10);
/// b.restore_with(&file[..], &Shout, &SnapshotOptions::new())?;
/// assert_eq!(b.get(&1).as_deref(), Some("ONE"));
/// # Ok::<(), larder::snapshot::SnapshotError>(())
/// ```
pub trait Codec<K, V> {
    /// Appends the encoding of `key` to `out`.
    fn encode_key(&self, key: &K, out: &mut Vec<u8>);

    /// Appends the encoding of `value`, stored under `key`, to `out` (a key
    /// type may carry part of the entry's data).
    fn encode_value(&self, key: &K, value: &V, out: &mut Vec<u8>);

    /// Decodes one entry. `expires_at` is its deadline in wall-clock
    /// milliseconds since the unix epoch (`None`: never expires), already
    /// known to be in the future.
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes are not an encoding this codec wrote.
    fn decode(
        &self,
        key: &[u8],
        value: &[u8],
        expires_at: Option<u64>,
    ) -> Result<(K, V), DecodeError>;
}

/// The codec of [`Cache::save`] and [`Cache::restore`]: [`Persist`] on the key
/// and the value.
#[derive(Clone, Copy, Debug, Default)]
pub struct Plain;

impl<K: Persist, V: Persist> Codec<K, V> for Plain {
    fn encode_key(&self, key: &K, out: &mut Vec<u8>) {
        key.encode(out);
    }
    fn encode_value(&self, _key: &K, value: &V, out: &mut Vec<u8>) {
        value.encode(out);
    }
    fn decode(&self, key: &[u8], value: &[u8], _: Option<u64>) -> Result<(K, V), DecodeError> {
        Ok((K::decode(key)?, V::decode(value)?))
    }
}

/// Settings of one save or load.
///
/// ```
/// let options = larder::snapshot::SnapshotOptions::new()
///     .unix_now_ms(1_700_000_000_000)
///     .meta(b"app v3".to_vec());
/// assert_eq!(options.get_meta(), b"app v3");
/// ```
#[derive(Clone, Debug, Default)]
pub struct SnapshotOptions {
    unix_now_ms: Option<u64>,
    meta: Vec<u8>,
    block_bytes: Option<usize>,
    max_entries: Option<u64>,
}

impl SnapshotOptions {
    /// The defaults: wall-clock time from the cache's [`Clock`](crate::Clock)
    /// and no metadata.
    pub fn new() -> Self {
        SnapshotOptions::default()
    }

    /// The wall-clock time (milliseconds since the unix epoch) that the
    /// cache's clock reads as "now", to convert deadlines (default: the
    /// system's time, or for a [manual clock](crate::Clock::manual) a fixed
    /// origin plus the time advanced).
    pub fn unix_now_ms(mut self, ms: u64) -> Self {
        self.unix_now_ms = Some(ms);
        self
    }

    /// For a load into a cache bounded by weight: the most entries it can
    /// hold (its capacity over its lightest entry's weight), so that its
    /// tables can be sized ahead up to that. Without it only a cache bounded
    /// by entries is sized ahead: a weight capacity says nothing of how many
    /// entries fit, and a file of many tiny or expired records must not make
    /// the cache reserve room it will never fill.
    pub fn max_entries(mut self, entries: u64) -> Self {
        self.max_entries = Some(entries);
        self
    }

    /// Bytes to store in the header (a save only; at most 16 MiB), handed
    /// back by the load in [`LoadReport::meta`].
    pub fn meta(mut self, meta: Vec<u8>) -> Self {
        self.meta = meta;
        self
    }

    /// Encoded bytes after which a save closes a block and releases the shard
    /// lock it holds (default [`BLOCK_BYTES`]; at least 1 KiB). Smaller blocks
    /// hold locks for less time and cost a few bytes of framing each.
    pub fn block_bytes(mut self, bytes: usize) -> Self {
        self.block_bytes = Some(bytes.max(1024));
        self
    }

    /// The metadata set with [`meta`](Self::meta).
    pub fn get_meta(&self) -> &[u8] {
        &self.meta
    }
}

/// What a save wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaveReport {
    /// Entries written.
    pub entries: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Blocks written.
    pub blocks: u64,
}

/// What a load read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadReport {
    /// Entries stored in the cache (a smaller cache may have evicted some
    /// since).
    pub loaded: u64,
    /// Entries skipped because their deadline had passed.
    pub expired: u64,
    /// Entries not stored: into a full shard, an entry never hit is taken
    /// only into room, never by evicting (so a smaller cache keeps the
    /// hottest); also entries heavier than a shard's share.
    pub dropped: u64,
    /// Bytes read.
    pub bytes: u64,
    /// When the snapshot was saved, in wall-clock ms since the unix epoch.
    pub saved_at_unix_ms: u64,
    /// The header metadata given to the save ([`SnapshotOptions::meta`]).
    pub meta: Vec<u8>,
}

/// A writer that counts what passes through it.
struct Counted<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Counted<W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.bytes += bytes.len() as u64;
        Ok(())
    }
}

/// Writes blocks and keeps the file checksum.
struct Writer<W> {
    out: Counted<W>,
    file_crc: Crc32c,
    blocks: u64,
    records: u64,
}

impl<W: Write> Writer<W> {
    fn header(out: W, saved_at: u64, size: (u64, u64), meta: &[u8]) -> Result<Self, SnapshotError> {
        let meta_len = u32::try_from(meta.len())
            .ok()
            .filter(|&n| n <= MAX_META)
            .ok_or_else(|| bad("snapshot metadata over 16 MiB"))?;
        let mut h = Vec::with_capacity(32 + meta.len());
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        h.extend_from_slice(&0u16.to_le_bytes());
        h.extend_from_slice(&saved_at.to_le_bytes());
        h.extend_from_slice(&size.0.to_le_bytes());
        h.extend_from_slice(&size.1.to_le_bytes());
        h.extend_from_slice(&meta_len.to_le_bytes());
        h.extend_from_slice(meta);
        let crc = crc32c(&h);
        h.extend_from_slice(&crc.to_le_bytes());
        let mut w = Writer {
            out: Counted {
                inner: out,
                bytes: 0,
            },
            file_crc: Crc32c::new(),
            blocks: 0,
            records: 0,
        };
        w.file_crc.update(&crc.to_le_bytes());
        w.out.put(&h)?;
        Ok(w)
    }

    /// Writes `payload` (the records after the 13-byte frame head reserved at
    /// its start) as one block.
    fn block(&mut self, frame: &mut [u8], records: u32) -> Result<(), SnapshotError> {
        let len = u32::try_from(frame.len() - 13)
            .ok()
            .filter(|&n| n <= MAX_BLOCK)
            .ok_or_else(|| bad("a record too large for a snapshot block"))?;
        frame[0] = TAG_BLOCK;
        frame[1..5].copy_from_slice(&records.to_le_bytes());
        frame[5..9].copy_from_slice(&len.to_le_bytes());
        let mut c = Crc32c::new();
        c.update(&frame[..9]);
        c.update(&frame[13..]);
        let crc = c.finish();
        frame[9..13].copy_from_slice(&crc.to_le_bytes());
        self.file_crc.update(&crc.to_le_bytes());
        self.out.put(frame)?;
        self.blocks += 1;
        self.records += u64::from(records);
        Ok(())
    }

    fn end(mut self) -> Result<SaveReport, SnapshotError> {
        let mut e = [0u8; 21];
        e[0] = TAG_END;
        e[1..9].copy_from_slice(&self.records.to_le_bytes());
        e[9..17].copy_from_slice(&self.blocks.to_le_bytes());
        self.file_crc.update(&e[..17]);
        let crc = self.file_crc.finish();
        e[17..].copy_from_slice(&crc.to_le_bytes());
        self.out.put(&e)?;
        self.out.inner.flush()?;
        Ok(SaveReport {
            entries: self.records,
            bytes: self.out.bytes,
            blocks: self.blocks,
        })
    }
}

fn read_array<const N: usize>(r: &mut impl Read) -> Result<[u8; N], SnapshotError> {
    let mut b = [0u8; N];
    r.read_exact(&mut b)?;
    Ok(b)
}

/// Splits `n` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Result<&'a [u8], SnapshotError> {
    let (head, tail) = rest
        .split_at_checked(n)
        .ok_or_else(|| bad("record runs past its block"))?;
    *rest = tail;
    Ok(head)
}

fn take_u32(rest: &mut &[u8]) -> Result<u32, SnapshotError> {
    let b = take(rest, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn take_u64(rest: &mut &[u8]) -> Result<u64, SnapshotError> {
    let b = take(rest, 8)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Ok(u64::from_le_bytes(a))
}

/// One record as read from a checked block.
struct Record<'a> {
    key: &'a [u8],
    value: &'a [u8],
    expires_at: u64,
    hint: u8,
}

fn next_record<'a>(rest: &mut &'a [u8]) -> Result<Record<'a>, SnapshotError> {
    let key_len = take_u32(rest)? as usize;
    let key = take(rest, key_len)?;
    let value_len = take_u32(rest)? as usize;
    let value = take(rest, value_len)?;
    let expires_at = take_u64(rest)?;
    let hint = take(rest, 1)?[0];
    Ok(Record {
        key,
        value,
        expires_at,
        hint,
    })
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq,
{
    /// Writes every live entry to `out` (see the [module docs](crate::snapshot)
    /// for the format and guarantees), with keys and values encoded by
    /// [`Persist`].
    ///
    /// **Locking behaviour:** one shard's read lock at a time, for a bounded
    /// slice of its entries; `out` is written with no lock held. `encode` runs
    /// under the read lock.
    ///
    /// # Errors
    /// [`SnapshotError::Io`] when writing fails.
    ///
    /// ```
    /// use larder::Cache;
    ///
    /// let cache: Cache<String, u64> = Cache::new(100);
    /// cache.insert("a".into(), 1);
    /// let mut file = Vec::new();
    /// let report = cache.save(&mut file)?;
    /// assert_eq!(report.entries, 1);
    ///
    /// let copy: Cache<String, u64> = Cache::new(100);
    /// copy.restore(&file[..])?;
    /// assert_eq!(copy.get("a"), Some(1));
    /// # Ok::<(), larder::snapshot::SnapshotError>(())
    /// ```
    pub fn save<W: Write>(&self, out: W) -> Result<SaveReport, SnapshotError>
    where
        K: Persist,
        V: Persist,
    {
        self.save_with(out, &Plain, &SnapshotOptions::new())
    }

    /// [`save`](Self::save) with a [`Codec`] and [`SnapshotOptions`].
    ///
    /// **Locking behaviour:** as [`save`](Self::save); the codec's encoders
    /// run under a shard's read lock and must not call into this cache.
    ///
    /// # Errors
    /// [`SnapshotError::Io`] when writing fails; [`SnapshotError::Decode`]
    /// when the metadata is over 16 MiB or one record over 1 GiB.
    pub fn save_with<W: Write>(
        &self,
        out: W,
        codec: &impl Codec<K, V>,
        options: &SnapshotOptions,
    ) -> Result<SaveReport, SnapshotError> {
        let now = self.clock.now_ms();
        let unix_now = options.unix_now_ms.unwrap_or_else(|| self.clock.unix_ms());
        let size = (self.len() as u64, self.weight());
        let mut w = Writer::header(out, unix_now, size, &options.meta)?;
        let block_bytes = options.block_bytes.unwrap_or(BLOCK_BYTES);
        let mut frame = Vec::with_capacity(block_bytes + (64 << 10));
        frame.resize(13, 0);
        let mut records = 0u32;
        for shard in 0..self.shard_count() {
            let mut cursor = Some(0);
            while let Some(from) = cursor {
                cursor = self.visit_slice(shard, from, SLICE_SLOTS, |k, v, deadline, hint| {
                    let start = frame.len();
                    frame.extend_from_slice(&[0; 4]);
                    codec.encode_key(k, &mut frame);
                    let key_len = frame.len() - start - 4;
                    let at = frame.len();
                    frame.extend_from_slice(&[0; 4]);
                    codec.encode_value(k, v, &mut frame);
                    let value_len = frame.len() - at - 4;
                    let expires = match deadline {
                        0 => 0,
                        d => unix_now.saturating_add(d.saturating_sub(now)).max(1),
                    };
                    frame.extend_from_slice(&expires.to_le_bytes());
                    frame.push(hint);
                    match (u32::try_from(key_len), u32::try_from(value_len)) {
                        (Ok(kl), Ok(vl)) => {
                            frame[start..start + 4].copy_from_slice(&kl.to_le_bytes());
                            frame[at..at + 4].copy_from_slice(&vl.to_le_bytes());
                            records += 1;
                        }
                        // Not representable: leave the entry out.
                        _ => frame.truncate(start),
                    }
                    frame.len() < block_bytes
                });
                if frame.len() >= block_bytes {
                    w.block(&mut frame, records)?;
                    frame.truncate(13);
                    records = 0;
                }
                // A save is background work: after each slice, let threads
                // that wait for a CPU (serving requests) run first.
                std::thread::yield_now();
            }
        }
        if records > 0 {
            w.block(&mut frame, records)?;
        }
        w.end()
    }

    /// Reads a snapshot written by [`save`](Self::save) into this cache,
    /// skipping entries whose deadline has passed. Entries already in the
    /// cache stay unless the snapshot holds the same key (its value wins) or
    /// room must be made.
    ///
    /// **Locking behaviour:** one key's shard write lock at a time, as
    /// [`insert`](Self::insert). On a machine with more than one CPU the
    /// records are stored by up to four scoped worker threads, each owning a
    /// share of the shards, while the calling thread reads and checks the
    /// file (hence `Send + Sync` on the keys and values); the eviction
    /// listener then runs on those threads.
    ///
    /// # Errors
    /// A typed [`SnapshotError`] for a damaged, truncated or foreign file; the
    /// entries of the blocks checked before the damage are stored (see the
    /// [module docs](crate::snapshot#damage)).
    ///
    /// ```
    /// use larder::snapshot::SnapshotError;
    /// use larder::Cache;
    ///
    /// let cache: Cache<u64, u64> = Cache::new(100);
    /// cache.insert(1, 10);
    /// let mut file = Vec::new();
    /// cache.save(&mut file)?;
    /// file.truncate(file.len() - 1);
    /// let copy: Cache<u64, u64> = Cache::new(100);
    /// assert!(matches!(copy.restore(&file[..]), Err(SnapshotError::Truncated)));
    /// # Ok::<(), SnapshotError>(())
    /// ```
    pub fn restore<R: Read>(&self, input: R) -> Result<LoadReport, SnapshotError>
    where
        K: Persist + Send + Sync,
        V: Persist + Send + Sync,
    {
        self.restore_with(input, &Plain, &SnapshotOptions::new())
    }

    /// [`restore`](Self::restore) with a [`Codec`] and [`SnapshotOptions`] (only
    /// `unix_now_ms` applies to a load).
    ///
    /// **Locking behaviour:** as [`restore`](Self::restore); the codec's decoder
    /// runs with no lock held.
    ///
    /// # Errors
    /// As [`restore`](Self::restore).
    pub fn restore_with<R: Read>(
        &self,
        input: R,
        codec: &impl Codec<K, V>,
        options: &SnapshotOptions,
    ) -> Result<LoadReport, SnapshotError>
    where
        K: Send + Sync,
        V: Send + Sync,
    {
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_RESTORE_WORKERS);
        if workers < 2 {
            let mut counts = (0, 0);
            let mut batch = Vec::with_capacity(BATCH);
            let mut store = |job: Job<K, V>| {
                batch.push(job);
                if batch.len() == BATCH {
                    add(&mut counts, self.restore_many(std::mem::take(&mut batch)));
                }
            };
            let mut reserve = |entries| self.reserve_for_restore(entries, |_| true);
            let result = self.read_snapshot(input, codec, options, &mut store, &mut reserve);
            add(&mut counts, self.restore_many(batch));
            return finish(result, counts);
        }
        // The caller's thread reads, checks and decodes; workers store, each
        // into its own set of shards (so a key's records keep their order).
        // std's channel: this is plain threading outside the cache's locks,
        // never modelled by loom.
        // Growing the tables ahead of the records (see `read_snapshot`) is
        // the workers' job too, each for its own shards: on the reader it
        // stalled the decoding that feeds them (a tenth of the reader's time
        // at 10M items).
        let target = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|scope| {
            let mut senders = Vec::with_capacity(workers);
            let mut handles = Vec::with_capacity(workers);
            for w in 0..workers {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Job<K, V>>>(4);
                senders.push(tx);
                let target = &target;
                handles.push(scope.spawn(move || {
                    let mut counts = (0, 0);
                    let mut reserved = 0;
                    for batch in rx {
                        let want = target.load(std::sync::atomic::Ordering::Relaxed);
                        if want > reserved {
                            reserved = want;
                            self.reserve_for_restore(want, |shard| shard % workers == w);
                        }
                        add(&mut counts, self.restore_many(batch));
                    }
                    counts
                }));
            }
            let mut batches: Vec<Vec<Job<K, V>>> =
                (0..workers).map(|_| Vec::with_capacity(BATCH)).collect();
            let mut route = |job: Job<K, V>| {
                let w = self.shard_index(job.0) % workers;
                batches[w].push(job);
                if batches[w].len() == BATCH {
                    let full = std::mem::replace(&mut batches[w], Vec::with_capacity(BATCH));
                    // A worker only stops when its sender is dropped.
                    let _ = senders[w].send(full);
                }
            };
            let mut reserve = |entries| {
                target.fetch_max(entries, std::sync::atomic::Ordering::Relaxed);
            };
            let result = self.read_snapshot(input, codec, options, &mut route, &mut reserve);
            // Records of checked blocks are stored even when a later block is
            // damaged, as in the single-threaded path.
            for (batch, tx) in batches.into_iter().zip(&senders) {
                if !batch.is_empty() {
                    let _ = tx.send(batch);
                }
            }
            drop(senders);
            let mut counts = (0, 0);
            for h in handles {
                let (loaded, dropped) = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                counts.0 += loaded;
                counts.1 += dropped;
            }
            finish(result, counts)
        })
    }

    /// Reads, checks and decodes a snapshot, handing each live record to
    /// `store`; the report's `loaded` and `dropped` are the caller's to fill.
    fn read_snapshot<R: Read>(
        &self,
        input: R,
        codec: &impl Codec<K, V>,
        options: &SnapshotOptions,
        store: &mut dyn FnMut(Job<K, V>),
        reserve: &mut dyn FnMut(u64),
    ) -> Result<LoadReport, SnapshotError> {
        let unix_now = options.unix_now_ms.unwrap_or_else(|| self.clock.unix_ms());
        let mut r = io::BufReader::with_capacity(64 << 10, input);
        let mut report = LoadReport::default();

        let mut head = [0u8; HEAD];
        r.read_exact(&mut head[..8])?;
        if &head[..8] != MAGIC {
            return Err(bad("not a larder snapshot"));
        }
        r.read_exact(&mut head[8..10])?;
        let version = u16::from_le_bytes([head[8], head[9]]);
        if version != FORMAT_VERSION {
            return Err(SnapshotError::Version(version));
        }
        r.read_exact(&mut head[10..])?;
        let word = |at: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&head[at..at + 8]);
            u64::from_le_bytes(w)
        };
        let (saved_at, entries_hint, weight_hint) = (word(12), word(20), word(28));
        let meta_len = u32::from_le_bytes([head[36], head[37], head[38], head[39]]);
        if meta_len > MAX_META {
            return Err(SnapshotError::Checksum);
        }
        let mut meta = Vec::new();
        (&mut r).take(u64::from(meta_len)).read_to_end(&mut meta)?;
        if meta.len() != meta_len as usize {
            return Err(SnapshotError::Truncated);
        }
        let stored = u32::from_le_bytes(read_array(&mut r)?);
        let mut c = Crc32c::new();
        c.update(&head);
        c.update(&meta);
        if c.finish() != stored {
            return Err(SnapshotError::Checksum);
        }
        let flags = u16::from_le_bytes([head[10], head[11]]);
        if flags != 0 {
            return Err(bad("unknown header flags"));
        }
        report.saved_at_unix_ms = saved_at;
        report.meta = meta;
        report.bytes = HEAD as u64 + u64::from(meta_len) + 4;
        // How many entries are coming that this cache can hold: a hint (the
        // cache changed while it was saved). Tables are sized ahead in steps of
        // four times the records read so far, up to it: a few rebuilds instead
        // of many, and never room for more than four times the records the file
        // really holds (a block's count is checked against its length).
        //
        // The sizing never passes what the cache can hold: its capacity if it
        // counts entries, else the caller's `max_entries` (a weight capacity
        // says nothing of how many entries fit, so a file of many tiny or
        // expired records could make it reserve far more than it will ever
        // hold; without the option its tables grow with what is stored).
        let most = match options.max_entries {
            Some(n) => n.min(self.capacity()),
            None if self.bounded_by_entries() => self.capacity(),
            None => 0,
        };
        let fit = if weight_hint > self.capacity() {
            (u128::from(entries_hint) * u128::from(self.capacity()) / u128::from(weight_hint))
                as u64
        } else {
            entries_hint
        }
        .min(most);
        let mut reserved = 0u64;

        let mut file_crc = Crc32c::new();
        file_crc.update(&stored.to_le_bytes());
        let (mut blocks, mut records) = (0u64, 0u64);
        let mut payload = Vec::new();
        loop {
            let [tag] = read_array::<1>(&mut r)?;
            match tag {
                TAG_BLOCK => {
                    let fields: [u8; 12] = read_array(&mut r)?;
                    let count = u32::from_le_bytes([fields[0], fields[1], fields[2], fields[3]]);
                    let len = u32::from_le_bytes([fields[4], fields[5], fields[6], fields[7]]);
                    let stored = u32::from_le_bytes([fields[8], fields[9], fields[10], fields[11]]);
                    if len > MAX_BLOCK {
                        return Err(SnapshotError::Checksum);
                    }
                    payload.clear();
                    // Grows with what is read, so a damaged length allocates at
                    // most what the file holds.
                    (&mut r).take(u64::from(len)).read_to_end(&mut payload)?;
                    if payload.len() != len as usize {
                        return Err(SnapshotError::Truncated);
                    }
                    let mut c = Crc32c::new();
                    c.update(&[tag]);
                    c.update(&fields[..8]);
                    c.update(&payload);
                    if c.finish() != stored {
                        return Err(SnapshotError::Checksum);
                    }
                    file_crc.update(&stored.to_le_bytes());
                    report.bytes += 13 + u64::from(len);
                    blocks += 1;
                    if count as usize > payload.len() / RECORD_OVERHEAD {
                        return Err(bad("block counts more records than it holds"));
                    }
                    let mut rest = &payload[..];
                    let coming = records + u64::from(count);
                    if coming > reserved && reserved < fit {
                        reserved = coming.saturating_mul(4).min(fit);
                        reserve(reserved);
                    }
                    for _ in 0..count {
                        let rec = next_record(&mut rest)?;
                        records += 1;
                        let expires = (rec.expires_at != 0).then_some(rec.expires_at);
                        let ttl = match expires {
                            Some(at) if at <= unix_now => {
                                report.expired += 1;
                                continue;
                            }
                            Some(at) => Some(at - unix_now),
                            None => None,
                        };
                        let (key, value) = codec
                            .decode(rec.key, rec.value, expires)
                            .map_err(SnapshotError::Decode)?;
                        store((self.hash(&key), key, value, ttl, rec.hint));
                    }
                    if !rest.is_empty() {
                        return Err(bad("block holds more than its records"));
                    }
                }
                TAG_END => {
                    let fields: [u8; 20] = read_array(&mut r)?;
                    let mut c = file_crc;
                    c.update(&[tag]);
                    c.update(&fields[..16]);
                    let stored =
                        u32::from_le_bytes([fields[16], fields[17], fields[18], fields[19]]);
                    if c.finish() != stored {
                        return Err(SnapshotError::Checksum);
                    }
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&fields[..8]);
                    let total = u64::from_le_bytes(n);
                    n.copy_from_slice(&fields[8..16]);
                    let total_blocks = u64::from_le_bytes(n);
                    if total != records || total_blocks != blocks {
                        return Err(SnapshotError::Checksum);
                    }
                    report.bytes += 21;
                    let mut probe = [0u8; 1];
                    if r.read(&mut probe)? != 0 {
                        return Err(bad("bytes after the end frame"));
                    }
                    return Ok(report);
                }
                _ => return Err(bad("unknown frame")),
            }
        }
    }
}

/// A decoded record on its way into the cache: hash, key, value, time to
/// live (ms), policy hint.
type Job<K, V> = (u64, K, V, Option<u64>, u8);

/// Most threads a restore stores with.
const MAX_RESTORE_WORKERS: usize = 4;
/// Records handed to a restore worker at a time.
const BATCH: usize = 1024;

/// Adds a batch's stored and dropped counts.
fn add(counts: &mut (u64, u64), (stored, dropped): (u64, u64)) {
    counts.0 += stored;
    counts.1 += dropped;
}

/// The report of a restore with the workers' counts filled in.
fn finish(
    result: Result<LoadReport, SnapshotError>,
    (loaded, dropped): (u64, u64),
) -> Result<LoadReport, SnapshotError> {
    result.map(|mut report| {
        report.loaded = loaded;
        report.dropped = dropped;
        report
    })
}

/// Bytes a record of this key and value length takes in a snapshot (for
/// sizing estimates).
///
/// ```
/// assert_eq!(larder::snapshot::record_size(16, 100), 133);
/// ```
pub const fn record_size(key_len: usize, value_len: usize) -> usize {
    RECORD_OVERHEAD + key_len + value_len
}
