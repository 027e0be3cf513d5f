//! One connection: read into a bounded buffer, let [`Store::process`] answer
//! every complete request in it, write the replies in one go, repeat.
//!
//! The loop never parses or executes anything itself. It owns only the
//! limits: how much it buffers each way, how long it waits for the peer, and
//! when it yields to other connections.

use std::io::{self, IoSlice};
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::budget::{Account, FREE_INPUT, FREE_OUTPUT};
use super::stats::{ConnSlot, ConnState, Peer, Shared};
use super::BATCH_INPUT;
use crate::memcached::{Outcome, Output, Store};
use crate::sync::Arc;

/// What a connection over the limit is told before it is closed (memcached's
/// line).
const TOO_MANY: &[u8] = b"ERROR Too many open connections\r\n";
/// What a connection whose buffered request outgrew the input cap is told.
const INPUT_OVERFLOW: &[u8] = b"SERVER_ERROR out of memory reading request\r\n";
/// Bytes a read buffer grows by at least, when it is full.
const READ_CHUNK: usize = 64 << 10;
/// A read buffer with less free room than this grows before the next read.
const MIN_READ: usize = 4 << 10;
/// Most segments handed to one vectored write.
const MAX_SLICES: usize = 64;
/// How long a closing connection waits for the peer to see our last reply
/// (see [`linger_close`]).
const LINGER: Duration = Duration::from_secs(1);

/// What replication needs a TCP connection for, said to a `replica sync`
/// that came over the Unix domain socket.
const REPL_NEEDS_TCP: &[u8] = b"SERVER_ERROR replication needs a TCP connection\r\n";

/// A connection's socket: TCP, or the Unix domain socket (memcached's `-s`).
pub(super) trait Socket: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// A write that does not wait (tokio's `try_write`).
    fn try_write(&self, buf: &[u8]) -> io::Result<usize>;
    /// A vectored write that does not wait (tokio's `try_write_vectored`).
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;
    /// Sets what the transport has to set up (TCP: no Nagle delay).
    fn configure(&self);
    /// The TCP stream, for a connection that becomes a replication link;
    /// the socket back if it is not TCP.
    fn into_tcp(self) -> Result<TcpStream, Self>
    where
        Self: Sized;
}

impl Socket for TcpStream {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        TcpStream::try_write(self, buf)
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        TcpStream::try_write_vectored(self, bufs)
    }

    fn configure(&self) {
        let _ = self.set_nodelay(true);
    }

    fn into_tcp(self) -> Result<TcpStream, Self> {
        Ok(self)
    }
}

#[cfg(unix)]
impl Socket for tokio::net::UnixStream {
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        tokio::net::UnixStream::try_write(self, buf)
    }

    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        tokio::net::UnixStream::try_write_vectored(self, bufs)
    }

    fn configure(&self) {}

    fn into_tcp(self) -> Result<TcpStream, Self> {
        Err(self)
    }
}

/// Why a connection ended (for the log).
#[derive(Debug)]
enum End {
    PeerClosed,
    /// `quit`, or a fatal protocol error after its reply.
    Closed,
    Idle,
    Shutdown,
    InputOverflow,
    /// `replica sync`: the connection becomes a replication link.
    Replicate(Option<[u8; 40]>, u64),
}

/// Serves `stream` on a new task, or turns it away when the connection limit
/// is reached.
pub(super) fn spawn<S: Socket>(
    stream: S,
    peer: Peer,
    store: &Arc<Store>,
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
    alive: &mpsc::Sender<()>,
) {
    if !shared.try_open() {
        shared.log(1, format_args!("{peer}: too many open connections"));
        if shared.try_start_rejecting() {
            let shared = Arc::clone(shared);
            tokio::spawn(async move {
                reject(stream).await;
                shared.done_rejecting();
            });
        } else {
            // Already turning many away: say it without waiting, and drop.
            let _ = stream.try_write(TOO_MANY);
        }
        return;
    }
    stream.configure();
    let (store, shared) = (Arc::clone(store), Arc::clone(shared));
    let (mut stop, alive) = (stop.clone(), alive.clone());
    tokio::spawn(async move {
        let _alive = alive;
        let open = Open(&shared, shared.register(peer));
        shared.log(2, format_args!("{peer}: connected"));
        let mut stream = stream;
        match serve(&mut stream, &store, &shared, &open.1, &mut stop).await {
            Ok(End::PeerClosed | End::Shutdown) => {
                shared.log(2, format_args!("{peer}: closed"));
            }
            Ok(End::Closed) => {
                shared.log(2, format_args!("{peer}: closed by request"));
                linger_close(stream).await;
            }
            Ok(End::Replicate(id, offset)) => match stream.into_tcp() {
                Ok(stream) => {
                    shared.log(1, format_args!("{peer}: replica link"));
                    drop(open);
                    super::repl::spawn_sender(stream, store, shared, id, offset);
                    return;
                }
                Err(mut stream) => {
                    // A replica links over TCP (`--replica-of HOST:PORT`).
                    shared.log(1, format_args!("{peer}: replica sync refused (not TCP)"));
                    let _ = write_all(&mut stream, REPL_NEEDS_TCP, shared.write_timeout()).await;
                    linger_close(stream).await;
                }
            },
            Ok(end @ (End::Idle | End::InputOverflow)) => {
                if matches!(end, End::Idle) {
                    shared.idle_kicked();
                }
                shared.log(1, format_args!("{peer}: closed ({end:?})"));
                linger_close(stream).await;
            }
            Err(e) => shared.log(1, format_args!("{peer}: closed ({e})")),
        }
        drop(open);
    });
}

/// Counts the connection as open, and keeps it in the `stats conns` table,
/// for as long as it lives (even if its task panics).
struct Open<'a>(&'a Shared, Arc<ConnSlot>);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.unregister(&self.1);
        self.0.close();
    }
}

/// Tells a connection over the limit why it is closed.
async fn reject<S: Socket>(mut stream: S) {
    let _ = tokio::time::timeout(LINGER, stream.write_all(TOO_MANY)).await;
    linger_close(stream).await;
}

/// Closes politely: sends FIN, then reads and discards until the peer closes
/// too (or [`LINGER`] passes). Closing a socket with unread input sends a
/// reset, and a reset can destroy the last reply before the peer reads it.
async fn linger_close<S: Socket>(mut stream: S) {
    let _ = tokio::time::timeout(LINGER, async {
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        let mut left = 1usize << 20;
        while left > 0 {
            let n = stream.read(&mut sink).await?;
            if n == 0 {
                break;
            }
            left = left.saturating_sub(n);
        }
        Ok::<(), io::Error>(())
    })
    .await;
}

/// The connection loop.
async fn serve<S: Socket>(
    stream: &mut S,
    store: &Store,
    shared: &Shared,
    slot: &ConnSlot,
    stop: &mut watch::Receiver<bool>,
) -> io::Result<End> {
    let output_limit = shared.output_limit();
    let mut account = Account::new(shared.budget(), shared.max_input());
    let mut session = shared.session();
    let mut input = BytesMut::with_capacity(FREE_INPUT);
    // The size of `input`'s allocation, which `capacity()` stops telling once
    // consumed bytes are advanced past.
    let mut alloc = FREE_INPUT;
    let mut out = Output::new();
    let mut last_command = Instant::now();
    // One timer per connection, armed for the idle deadline and moved only when it
    // fires early: arming a fresh timer for every read cost a timer-wheel insert
    // and removal per request.
    let idle_after = shared.idle_timeout();
    let idle = tokio::time::sleep(idle_after.unwrap_or(Duration::from_secs(86_400)));
    tokio::pin!(idle);
    loop {
        // Answer everything complete in the buffer, one batch at a time.
        loop {
            // The batch may use the free part, plus what budget is free now.
            let batch = account.open_batch(output_limit.saturating_sub(FREE_OUTPUT));
            session.set_output_limit(batch.min(output_limit));
            slot.set_state(ConnState::Working);
            let window = input.len().min(BATCH_INPUT);
            let mut progress = store.process_output(&mut session, &input[..window], &mut out);
            if progress.consumed == 0 && out.is_empty() && window < input.len() {
                // One request longer than the window (a large value).
                progress = store.process_output(&mut session, &input, &mut out);
            }
            // Output without consumed input: a multi-get paused by the
            // output limit, to be resumed.
            let advanced = progress.consumed > 0 || !out.is_empty();
            input.advance(progress.consumed);
            if advanced {
                last_command = Instant::now();
                shared.command_done(slot, last_command.into_std());
            }
            if !out.is_empty() {
                slot.set_state(ConnState::Writing);
                write_output(stream, &mut out, slot, shared.write_timeout()).await?;
            }
            out.clear(FREE_OUTPUT);
            account.close_batch();
            match progress.outcome {
                Outcome::Continue => {}
                Outcome::Close => return Ok(End::Closed),
                Outcome::Shutdown { .. } => {
                    shared.request_shutdown();
                    return Ok(End::Shutdown);
                }
                Outcome::Replicate { id, offset } => return Ok(End::Replicate(id, offset)),
            }
            if !advanced || input.is_empty() {
                break;
            }
            // More is buffered: let other connections on this worker run.
            slot.yielded();
            tokio::task::yield_now().await;
        }
        if *stop.borrow() {
            return Ok(End::Shutdown);
        }
        let room = shared.max_input().saturating_sub(input.len());
        if room == 0 {
            write_all(stream, INPUT_OVERFLOW, shared.write_timeout()).await?;
            slot.wrote(INPUT_OVERFLOW.len());
            return Ok(End::InputOverflow);
        }
        let spare = input.capacity() - input.len();
        let resize = next_alloc(input.len(), spare, alloc, room);
        slot.set_state(waiting_state(&input));
        let read = async {
            if let Some(size) = resize {
                // Waits, reading nothing, until the budget has room.
                account.charge_input(size).await;
                let mut resized = BytesMut::with_capacity(size);
                resized.extend_from_slice(&input);
                input = resized;
                alloc = size;
            }
            let spare = input.capacity() - input.len();
            let mut limited = (&mut input).limit(spare.min(room));
            stream.read_buf(&mut limited).await
        };
        tokio::select! {
            read = read => {
                let n = read?;
                if n == 0 {
                    return Ok(End::PeerClosed);
                }
                slot.read(n);
            }
            () = &mut idle, if idle_after.is_some() => {
                let deadline = last_command + idle_after.unwrap_or_default();
                if Instant::now() >= deadline {
                    return Ok(End::Idle);
                }
                idle.as_mut().reset(deadline);
            }
            _ = stop.changed() => return Ok(End::Shutdown),
        }
    }
}

/// What a connection waiting to read is doing, for `stats conns`: with a
/// request's first line (or a binary header) in and the rest to come it
/// reads a request's data (memcached's `conn_nread`), else it waits for a
/// request. Only the start of the buffer is looked at: a request's first
/// line comes first, and a storage command's line is short.
fn waiting_state(input: &[u8]) -> ConnState {
    const BINARY_HEADER: usize = 24;
    let head = &input[..input.len().min(4096)];
    let started = match head.first() {
        None => false,
        Some(&0x80) => head.len() >= BINARY_HEADER,
        Some(_) => head.contains(&b'\n'),
    };
    if started {
        ConnState::Reading
    } else {
        ConnState::Waiting
    }
}

/// The read buffer's next size, if it must change before the next read:
/// grown (by a read, or doubled for a long request, within `room`) when
/// there is no room to read into, and shrunk back when it is far larger than
/// what it holds.
fn next_alloc(len: usize, spare: usize, alloc: usize, room: usize) -> Option<usize> {
    if spare < MIN_READ.min(room) {
        return Some((len + room.min(READ_CHUNK.max(len))).max(FREE_INPUT));
    }
    let fits = (len + READ_CHUNK).max(FREE_INPUT);
    if len == 0 && alloc > FREE_INPUT {
        return Some(FREE_INPUT);
    }
    (alloc > 4 * fits).then_some(fits)
}

/// Writes all of `out` (vectored: values go straight from the cache's
/// buffers), failing with `TimedOut` when one write makes no progress for
/// `timeout` (the peer stopped reading).
async fn write_output<S: Socket>(
    stream: &mut S,
    out: &mut Output,
    slot: &ConnSlot,
    timeout: Option<Duration>,
) -> io::Result<()> {
    while !out.is_empty() {
        let mut slices = [IoSlice::new(&[]); MAX_SLICES];
        let n = out.io_slices(&mut slices);
        // Most replies fit the socket buffer: try a plain non-blocking write
        // first, so the common case arms no timer.
        let written = match stream.try_write_vectored(&slices[..n]) {
            Ok(written) => written,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let write = stream.write_vectored(&slices[..n]);
                match timeout {
                    Some(timeout) => {
                        tokio::time::timeout(timeout, write).await.map_err(|_| {
                            io::Error::new(io::ErrorKind::TimedOut, "write timed out")
                        })??
                    }
                    None => write.await?,
                }
            }
            Err(e) => return Err(e),
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        slot.wrote(written);
        out.advance(written);
    }
    Ok(())
}

/// Writes all of `buf`, failing with `TimedOut` when one write makes no
/// progress for `timeout`.
async fn write_all<S: Socket>(
    stream: &mut S,
    buf: &[u8],
    timeout: Option<Duration>,
) -> io::Result<()> {
    let write = stream.write_all(buf);
    match timeout {
        Some(timeout) => tokio::time::timeout(timeout, write)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))?,
        None => write.await,
    }
}
