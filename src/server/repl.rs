//! Replication over TCP: a primary's side of each replica link, and a
//! replica's link to its primary (see docs/high-availability.md).
//!
//! Links are few and long-lived, so each runs on plain threads with blocking
//! sockets, outside the runtime that serves clients.
//!
//! # The wire
//! A replica opens an ordinary connection to its primary's port and sends
//! `replica sync <id|?> <offset>\r\n`. The primary answers one line:
//! - `CONTINUE <id> <offset>`: the backlog still holds the replica's
//!   history from `offset` on (under `id`, which may be a new id of the same
//!   history after a promotion); the stream goes on from there.
//! - `FULLSYNC <id> <offset>`: a snapshot follows as chunks (`[len: u32
//!   LE][bytes]`, ended by a zero length), then the stream from `offset`.
//!
//! Then the primary sends messages: `D [offset: u64][len: u32][crc: u32][bytes]`
//! (the backlog's bytes at `offset`, frames possibly split between messages,
//! and a CRC-32 of those bytes: one pass over a batch of frames, on the link's
//! thread rather than the writers') and,
//! when it has nothing new, `H [unix ms: u64][end offset: u64]` every
//! [`HEARTBEAT`]. The replica sends `A [applied offset: u64][lag ms: u32]`
//! every [`HEARTBEAT`]. Every length and offset is checked: anything
//! unexpected ends the link, and the replica reconnects and resyncs.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::{Duration, Instant};

use crate::memcached::store::repl::{Read as BacklogRead, ReplId, Resume};
use crate::memcached::Store;
use crate::sync::Arc;

use super::stats::Shared;

/// How often an idle link says it is alive.
pub(super) const HEARTBEAT: Duration = Duration::from_millis(100);
/// Most backlog bytes in one `D` message.
const CHUNK: usize = 256 << 10;
/// Bytes of a `D` message before its data: tag, offset, length, CRC.
const D_HEADER: usize = 1 + 8 + 4 + 4;
/// Most bytes a replica accepts in one message or snapshot chunk.
const MAX_MESSAGE: usize = 16 << 20;
/// How long a replica waits for a connection, and for the handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a replica waits before it reconnects.
const RETRY: Duration = Duration::from_millis(100);

/// The most replica links a node serves at once.
const MAX_REPLICAS: u64 = 32;
/// A link that hears nothing for this long (no data, no heartbeat) is
/// dropped; with `--promote-after` the smaller of the two counts.
const SILENCE: Duration = Duration::from_secs(10);

/// Numbers the primary's replica links, for their lag slots.
static LINKS: AtomicU64 = AtomicU64::new(1);

fn id_text(id: &ReplId) -> &str {
    // Ids are ASCII hex digits.
    std::str::from_utf8(id).unwrap_or("?")
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

/// Writes a snapshot as length-prefixed chunks.
struct ChunkWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: Write> ChunkWriter<W> {
    fn flush_chunk(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.inner
                .write_all(&(self.buf.len() as u32).to_le_bytes())?;
            self.inner.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.flush_chunk()?;
        self.inner.write_all(&0u32.to_le_bytes())?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for ChunkWriter<W> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        // Chunks stay at most CHUNK long, whatever the writer hands over.
        let n = bytes.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&bytes[..n]);
        if self.buf.len() >= CHUNK {
            self.flush_chunk()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_chunk()?;
        self.inner.flush()
    }
}

/// Reads the chunks a [`ChunkWriter`] wrote, up to the end mark.
struct ChunkReader<'a, R: Read> {
    inner: &'a mut R,
    left: usize,
    done: bool,
}

impl<R: Read> ChunkReader<'_, R> {
    /// Reads (and drops) whatever the reader of the snapshot left, up to
    /// and including the end mark.
    fn drain(&mut self) -> io::Result<()> {
        let mut sink = [0u8; 8192];
        while self.read(&mut sink)? > 0 {}
        Ok(())
    }
}

impl<R: Read> Read for ChunkReader<'_, R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.done || out.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            let mut len = [0u8; 4];
            self.inner.read_exact(&mut len)?;
            let len = u32::from_le_bytes(len) as usize;
            if len == 0 {
                self.done = true;
                return Ok(0);
            }
            if len > MAX_MESSAGE {
                return Err(bad("snapshot chunk too long"));
            }
            self.left = len;
        }
        let want = out.len().min(self.left);
        let n = self.inner.read(&mut out[..want])?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.left -= n;
        Ok(n)
    }
}

/// Hands a connection that sent `replica sync` to a replication thread.
pub(super) fn spawn_sender(
    stream: tokio::net::TcpStream,
    store: Arc<Store>,
    shared: Arc<Shared>,
    id: Option<[u8; 40]>,
    offset: u64,
) {
    let stream = match stream.into_std().and_then(|s| {
        s.set_nonblocking(false)?;
        Ok(s)
    }) {
        Ok(s) => s,
        Err(e) => {
            shared.log(0, format_args!("replication: cannot take over a link: {e}"));
            return;
        }
    };
    let spawned = std::thread::Builder::new()
        .name("larder-repl-send".into())
        .spawn({
            let shared = Arc::clone(&shared);
            move || serve_replica(stream, store, shared, id, offset)
        });
    if let Err(e) = spawned {
        shared.log(
            0,
            format_args!("replication: cannot start a link thread: {e}"),
        );
    }
}

/// Serves one replica on `stream` (a connection that sent `replica sync`),
/// until the link fails or the server stops. Runs on its own thread.
pub(super) fn serve_replica(
    stream: TcpStream,
    store: Arc<Store>,
    shared: Arc<Shared>,
    id: Option<[u8; 40]>,
    offset: u64,
) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_owned(), |a| a.to_string());
    let repl = store.replication();
    if repl.connected_replicas.fetch_add(1, Relaxed) >= MAX_REPLICAS {
        // Each link costs two threads, and a full sync a sweep of the store:
        // `replica sync` is open to any client, so the links are capped.
        repl.connected_replicas.fetch_sub(1, Relaxed);
        let _ = (&stream).write_all(b"SERVER_ERROR too many replicas\r\n");
        let _ = stream.shutdown(Shutdown::Both);
        shared.log(
            0,
            format_args!("replica {peer}: refused, {MAX_REPLICAS} links already"),
        );
        return;
    }
    let link = LINKS.fetch_add(1, Relaxed);
    let result = stream_to(&stream, &store, &shared, &peer, link, id, offset);
    repl.connected_replicas.fetch_sub(1, Relaxed);
    repl.set_replica_lag(link, None);
    let _ = stream.shutdown(Shutdown::Both);
    match result {
        Ok(()) => shared.log(1, format_args!("replica {peer}: link closed")),
        Err(e) => shared.log(1, format_args!("replica {peer}: link closed ({e})")),
    }
}

fn stream_to(
    stream: &TcpStream,
    store: &Arc<Store>,
    shared: &Shared,
    peer: &str,
    link: u64,
    id: Option<[u8; 40]>,
    offset: u64,
) -> io::Result<()> {
    let repl = store.replication();
    stream.set_nodelay(true)?;
    stream.set_write_timeout(Some(SILENCE))?;
    let mut out = io::BufWriter::with_capacity(CHUNK + 64, stream.try_clone()?);
    let resume = match id {
        Some(id) => repl.resume(&id, offset),
        None => Resume::Full,
    };
    let (generation, mut from) = match resume {
        Resume::Continue { id, generation } => {
            write!(out, "CONTINUE {} {offset}\r\n", id_text(&id))?;
            out.flush()?;
            repl.partial_syncs.fetch_add(1, Relaxed);
            shared.log(
                1,
                format_args!("replica {peer}: partial resync from offset {offset}"),
            );
            (generation, offset)
        }
        Resume::Full => {
            let (generation, id, start) = repl.start_sync();
            write!(out, "FULLSYNC {} {start}\r\n", id_text(&id))?;
            // Now, not with the first chunk: the replica waits a second for
            // this line, and finding the first live item may take longer.
            out.flush()?;
            let started = Instant::now();
            let mut chunks = ChunkWriter {
                inner: out,
                buf: Vec::with_capacity(CHUNK),
            };
            store
                .save(&mut chunks)
                .map_err(|e| io::Error::other(e.to_string()))?;
            out = chunks.finish()?;
            repl.full_syncs.fetch_add(1, Relaxed);
            shared.log(
                1,
                format_args!(
                    "replica {peer}: full sync sent in {} ms, streaming from offset {start}",
                    started.elapsed().as_millis()
                ),
            );
            (generation, start)
        }
    };
    // Acknowledgements, on a thread of their own: the lag they report, and
    // the link's end when the replica goes away.
    let acks = stream.try_clone()?;
    let ack_store = Arc::clone(store);
    let reader = std::thread::Builder::new()
        .name("larder-repl-acks".into())
        .spawn(move || read_acks(acks, &ack_store, link))?;
    let mut buf = Vec::with_capacity(CHUNK + D_HEADER);
    let mut last_sent = Instant::now();
    let mut busy = false;
    let result = loop {
        if repl.stopping.load(Acquire) {
            break Ok(());
        }
        if reader.is_finished() {
            break Err(bad("replica went away"));
        }
        buf.clear();
        buf.extend_from_slice(&[b'D'; D_HEADER]);
        let read = repl.read(generation, from, CHUNK, (HEARTBEAT, busy), &mut buf);
        busy = matches!(read, BacklogRead::Bytes(_));
        match read {
            BacklogRead::Bytes(n) => {
                let crc = crc32fast::hash(&buf[D_HEADER..]);
                buf[1..9].copy_from_slice(&from.to_le_bytes());
                buf[9..13].copy_from_slice(&(n as u32).to_le_bytes());
                buf[13..17].copy_from_slice(&crc.to_le_bytes());
                from += n as u64;
                if n < CHUNK {
                    // All there was: say so, so the replica knows it is
                    // caught up once it has applied this.
                    heartbeat(store, from, &mut buf);
                }
                out.write_all(&buf)?;
                out.flush()?;
                last_sent = Instant::now();
            }
            BacklogRead::Idle => {
                if last_sent.elapsed() >= HEARTBEAT {
                    buf.clear();
                    heartbeat(store, from, &mut buf);
                    out.write_all(&buf)?;
                    out.flush()?;
                    last_sent = Instant::now();
                }
            }
            BacklogRead::Lost => {
                break Err(bad("the backlog moved past this replica (it will resync)"));
            }
        }
    };
    let _ = stream.shutdown(Shutdown::Both);
    result
}

/// Appends a heartbeat: the primary's time and the offset it has sent up to.
fn heartbeat(store: &Store, end: u64, out: &mut Vec<u8>) {
    out.push(b'H');
    out.extend_from_slice(&store.unix_now_ms().to_le_bytes());
    out.extend_from_slice(&end.to_le_bytes());
}

/// Reads a replica's acknowledgements until the link ends, keeping its
/// reported lag in the primary's figures.
fn read_acks(stream: TcpStream, store: &Store, link: u64) {
    let mut input = BufReader::new(stream);
    let mut ack = [0u8; 13];
    while input.read_exact(&mut ack).is_ok() {
        if ack[0] != b'A' {
            break;
        }
        let lag = u32::from_le_bytes([ack[9], ack[10], ack[11], ack[12]]);
        store
            .replication()
            .set_replica_lag(link, Some(u64::from(lag)));
    }
    let _ = input.get_ref().shutdown(Shutdown::Both);
}

/// How a replica's link to its primary is set up.
#[derive(Clone, Debug)]
pub(super) struct LinkConfig {
    /// The primary, as `HOST:PORT`.
    pub(super) primary: String,
    /// Promote this replica when the primary has been unreachable this long
    /// (once it has synced at least once).
    pub(super) promote_after: Option<Duration>,
}

/// A replica's link: connects to the primary, syncs, applies the stream,
/// reconnects when it fails, and (with `promote_after`) promotes this node
/// when the primary stays away. Runs on its own thread until the node is
/// promoted or the server stops.
pub(super) fn run_link(store: Arc<Store>, shared: Arc<Shared>, config: LinkConfig) {
    let repl = store.replication();
    let epoch = repl.link_epoch();
    let mut synced = false;
    let mut last_contact = Instant::now();
    let mut failures = 0u64;
    loop {
        if repl.stopping.load(Acquire) || repl.link_epoch() != epoch {
            return;
        }
        let attempt = Instant::now();
        let result = follow(
            &store,
            &shared,
            &config,
            &mut synced,
            &mut last_contact,
            epoch,
        );
        repl.link_up.store(false, Release);
        if repl.stopping.load(Acquire) || repl.link_epoch() != epoch {
            return;
        }
        if last_contact >= attempt {
            // The link came up this time: a new run of failures starts.
            failures = 0;
        }
        if let Err(e) = result {
            // Log the first failure of a run, then every 50th (5 s).
            if failures % 50 == 0 {
                shared.log(
                    0,
                    format_args!("replication: link to {} failed: {e}", config.primary),
                );
            }
            failures += 1;
        }
        if let Some(after) = config.promote_after {
            if synced && last_contact.elapsed() >= after && store.promote().is_ok() {
                shared.log(
                    0,
                    format_args!(
                        "replication: primary {} unreachable for {} ms; promoted this replica to primary",
                        config.primary,
                        last_contact.elapsed().as_millis()
                    ),
                );
                return;
            }
        }
        std::thread::sleep(RETRY);
    }
}

/// One connection to the primary: handshake, sync, then the stream until it
/// fails.
fn follow(
    store: &Store,
    shared: &Shared,
    config: &LinkConfig,
    synced: &mut bool,
    last_contact: &mut Instant,
    epoch: u64,
) -> io::Result<()> {
    let repl = store.replication();
    let addr = config
        .primary
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| bad("the primary's address resolves to nothing"))?;
    let stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
    stream.set_nodelay(true)?;
    // The handshake may wait on a busy primary for longer than a connect
    // (a loaded machine answered after more than a second), but not past
    // the point where a silent primary should have been given up on.
    let patience = config.promote_after.map_or(SILENCE, |p| p.min(SILENCE));
    stream.set_read_timeout(Some(patience))?;
    stream.set_write_timeout(Some(patience))?;
    let mut input = BufReader::with_capacity(CHUNK + 64, stream.try_clone()?);
    let mut output = stream.try_clone()?;
    let (id, offset) = repl.position();
    if *synced {
        write!(output, "replica sync {} {offset}\r\n", id_text(&id))?;
    } else {
        output.write_all(b"replica sync ? 0\r\n")?;
    }
    let mut line = Vec::with_capacity(128);
    (&mut input).take(256).read_until(b'\n', &mut line)?;
    let line = std::str::from_utf8(&line).map_err(|_| bad("handshake is not text"))?;
    let words: Vec<&str> = line.split_whitespace().collect();
    let (kind, new_id, start) = match words.as_slice() {
        [kind @ ("CONTINUE" | "FULLSYNC"), id, start] => {
            let id: ReplId = id
                .as_bytes()
                .try_into()
                .map_err(|_| bad("bad replication id"))?;
            let start: u64 = start.parse().map_err(|_| bad("bad offset"))?;
            (*kind, id, start)
        }
        _ => return Err(bad(&format!("the primary refused: {}", line.trim_end()))),
    };
    if kind == "CONTINUE" {
        if !*synced || start != offset {
            return Err(bad(
                "the primary resumed at an offset this replica does not hold",
            ));
        }
        repl.adopt(new_id);
        repl.link_partial_syncs.fetch_add(1, Relaxed);
        shared.log(
            1,
            format_args!(
                "replication: partial resync from {} at offset {start}",
                config.primary
            ),
        );
    } else {
        let started = Instant::now();
        stream.set_read_timeout(Some(SILENCE))?;
        // Until this sync completes the replica holds part of a snapshot:
        // it asks for a full sync again, never promotes itself, and an
        // operator's promotion is refused while the load runs.
        *synced = false;
        let Some(_loading) = repl.begin_full_sync() else {
            return Ok(());
        };
        store.clear_for_sync();
        let mut chunks = ChunkReader {
            inner: &mut input,
            left: 0,
            done: false,
        };
        let restored = store.restore(&mut chunks);
        chunks.drain()?;
        let report = restored.map_err(|e| io::Error::other(format!("full sync: {e}")))?;
        store.drop_oversized();
        if repl.link_epoch() != epoch {
            // Promoted during the sync: keep the new history.
            return Ok(());
        }
        repl.reset(new_id, start);
        repl.link_full_syncs.fetch_add(1, Relaxed);
        *synced = true;
        shared.log(
            1,
            format_args!(
                "replication: full sync from {}: {} items in {} ms, streaming from offset {start}",
                config.primary,
                report.loaded,
                started.elapsed().as_millis()
            ),
        );
    }
    *last_contact = Instant::now();
    repl.link_up.store(true, Release);
    repl.caught_up.store(false, Release);
    stream.set_read_timeout(Some(HEARTBEAT))?;
    let silence = config.promote_after.map_or(SILENCE, |p| p.min(SILENCE));
    let mut pending: Vec<u8> = Vec::new();
    let mut last_ack = Instant::now();
    let mut header = [0u8; 17];
    loop {
        if repl.stopping.load(Acquire) || repl.link_epoch() != epoch {
            return Ok(());
        }
        if last_ack.elapsed() >= HEARTBEAT {
            let applied = repl.position().1;
            let lag = repl.lag_ms(store.unix_now_ms()).min(u64::from(u32::MAX)) as u32;
            let mut ack = [0u8; 13];
            ack[0] = b'A';
            ack[1..9].copy_from_slice(&applied.to_le_bytes());
            ack[9..13].copy_from_slice(&lag.to_le_bytes());
            output.write_all(&ack)?;
            last_ack = Instant::now();
        }
        // The first byte says which message; a timeout here is a quiet link.
        match input.read(&mut header[..1]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if last_contact.elapsed() >= silence {
                    return Err(bad("the primary went silent"));
                }
                continue;
            }
            Err(e) => return Err(e),
        }
        stream.set_read_timeout(Some(SILENCE))?;
        match header[0] {
            b'H' => {
                input.read_exact(&mut header[1..17])?;
                let end = u64::from_le_bytes(header[9..17].try_into().unwrap_or_default());
                let applied = repl.position().1 + pending.len() as u64;
                repl.caught_up.store(applied == end, Release);
            }
            b'D' => {
                input.read_exact(&mut header[1..D_HEADER])?;
                let at = u64::from_le_bytes(header[1..9].try_into().unwrap_or_default());
                let len = u32::from_le_bytes(header[9..13].try_into().unwrap_or_default()) as usize;
                let crc = u32::from_le_bytes(header[13..17].try_into().unwrap_or_default());
                let expected = repl.position().1 + pending.len() as u64;
                if at != expected {
                    return Err(bad("the stream skipped or repeated bytes"));
                }
                if len > MAX_MESSAGE {
                    return Err(bad("stream message too long"));
                }
                let was = pending.len();
                pending.resize(was + len, 0);
                input.read_exact(&mut pending[was..])?;
                if crc32fast::hash(&pending[was..]) != crc {
                    return Err(bad("checksum mismatch in a stream message"));
                }
                let Some(applying) = repl.applying() else {
                    // Promoted: nothing more from the old primary.
                    return Ok(());
                };
                let (used, last) = store
                    .apply_frames(&pending)
                    .map_err(|e| bad(&e.to_string()))?;
                repl.push_applied(&pending[..used]);
                drop(applying);
                pending.drain(..used);
                if let Some(ts) = last {
                    repl.last_frame_ms.store(ts, Release);
                    repl.caught_up.store(false, Release);
                }
                if pending.len() > store.max_frame_body() + 64 {
                    return Err(bad("a frame longer than any item"));
                }
            }
            _ => return Err(bad("unknown stream message")),
        }
        stream.set_read_timeout(Some(HEARTBEAT))?;
        *last_contact = Instant::now();
    }
}
