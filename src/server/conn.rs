//! One connection: read into a bounded buffer, let [`Store::process`] answer
//! every complete request in it, write the replies in one go, repeat.
//!
//! The loop never parses or executes anything itself. It owns only the
//! limits: how much it buffers each way, how long it waits for the peer, and
//! when it yields to other connections.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::stats::Shared;
use super::BATCH_INPUT;
use crate::memcached::{Outcome, Session, Store};
use crate::sync::Arc;

/// What a connection over the limit is told before it is closed (memcached's
/// line).
const TOO_MANY: &[u8] = b"ERROR Too many open connections\r\n";
/// What a connection whose buffered request outgrew the input cap is told.
const INPUT_OVERFLOW: &[u8] = b"SERVER_ERROR out of memory reading request\r\n";
/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 64 << 10;
/// A drained buffer larger than this is given back to the allocator, so a
/// connection that once sent a large value does not keep its buffer.
const SHRINK_ABOVE: usize = 256 << 10;
/// How long a closing connection waits for the peer to see our last reply
/// (see [`linger_close`]).
const LINGER: Duration = Duration::from_secs(1);

/// Why a connection ended (for the log).
#[derive(Debug)]
enum End {
    PeerClosed,
    /// `quit`, or a fatal protocol error after its reply.
    Closed,
    Idle,
    Shutdown,
    InputOverflow,
}

/// Serves `stream` on a new task, or turns it away when the connection limit
/// is reached.
pub(super) fn spawn(
    stream: TcpStream,
    peer: SocketAddr,
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
    let _ = stream.set_nodelay(true);
    let (store, shared) = (Arc::clone(store), Arc::clone(shared));
    let (mut stop, alive) = (stop.clone(), alive.clone());
    tokio::spawn(async move {
        let _alive = alive;
        let open = Open(&shared);
        shared.log(2, format_args!("{peer}: connected"));
        let mut stream = stream;
        match serve(&mut stream, &store, &shared, &mut stop).await {
            Ok(End::PeerClosed | End::Shutdown) => {
                shared.log(2, format_args!("{peer}: closed"));
            }
            Ok(End::Closed) => {
                shared.log(2, format_args!("{peer}: closed by request"));
                linger_close(stream).await;
            }
            Ok(end @ (End::Idle | End::InputOverflow)) => {
                shared.log(1, format_args!("{peer}: closed ({end:?})"));
                linger_close(stream).await;
            }
            Err(e) => shared.log(1, format_args!("{peer}: closed ({e})")),
        }
        drop(open);
    });
}

/// Counts the connection as open for as long as it lives (even if its task
/// panics).
struct Open<'a>(&'a Shared);

impl Drop for Open<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Tells a connection over the limit why it is closed.
async fn reject(mut stream: TcpStream) {
    let _ = tokio::time::timeout(LINGER, stream.write_all(TOO_MANY)).await;
    linger_close(stream).await;
}

/// Closes politely: sends FIN, then reads and discards until the peer closes
/// too (or [`LINGER`] passes). Closing a socket with unread input sends a
/// reset, and a reset can destroy the last reply before the peer reads it.
async fn linger_close(mut stream: TcpStream) {
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
async fn serve(
    stream: &mut TcpStream,
    store: &Store,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> io::Result<End> {
    let output_limit = shared.output_limit();
    let mut session = Session::new().with_output_limit(output_limit);
    let mut input = BytesMut::with_capacity(READ_CHUNK);
    let mut out = Vec::new();
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
            let window = input.len().min(BATCH_INPUT);
            let mut progress = store.process(&mut session, &input[..window], &mut out);
            if progress.consumed == 0 && out.is_empty() && window < input.len() {
                // One request longer than the window (a large value).
                progress = store.process(&mut session, &input, &mut out);
            }
            // Output without consumed input: a multi-get paused by the
            // output limit, to be resumed.
            let advanced = progress.consumed > 0 || !out.is_empty();
            input.advance(progress.consumed);
            if advanced {
                last_command = Instant::now();
            }
            if !out.is_empty() {
                write_all(stream, &out, shared.write_timeout()).await?;
                out.clear();
                if out.capacity() > output_limit.max(SHRINK_ABOVE) {
                    out.shrink_to(output_limit);
                }
            }
            match progress.outcome {
                Outcome::Continue => {}
                Outcome::Close => return Ok(End::Closed),
                Outcome::Shutdown { .. } => {
                    shared.request_shutdown();
                    return Ok(End::Shutdown);
                }
            }
            if !advanced || input.is_empty() {
                break;
            }
            // More is buffered: let other connections on this worker run.
            tokio::task::yield_now().await;
        }
        if *stop.borrow() {
            return Ok(End::Shutdown);
        }
        let room = shared.max_input().saturating_sub(input.len());
        if room == 0 {
            write_all(stream, INPUT_OVERFLOW, shared.write_timeout()).await?;
            return Ok(End::InputOverflow);
        }
        if input.is_empty() && input.capacity() > SHRINK_ABOVE {
            input = BytesMut::with_capacity(READ_CHUNK);
        }
        input.reserve(READ_CHUNK.min(room));
        let mut limited = (&mut input).limit(room);
        tokio::select! {
            read = stream.read_buf(&mut limited) => {
                if read? == 0 {
                    return Ok(End::PeerClosed);
                }
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

/// Writes all of `buf`, failing with `TimedOut` when one write makes no
/// progress for `timeout` (the peer stopped reading).
async fn write_all(
    stream: &mut TcpStream,
    buf: &[u8],
    timeout: Option<Duration>,
) -> io::Result<()> {
    // Most replies fit the socket buffer: try a plain non-blocking write first, so
    // the common case arms no timer.
    let mut rest = match stream.try_write(buf) {
        Ok(n) => &buf[n..],
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => buf,
        Err(e) => return Err(e),
    };
    while !rest.is_empty() {
        let written = match timeout {
            Some(timeout) => tokio::time::timeout(timeout, stream.write(rest))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "write timed out"))??,
            None => stream.write(rest).await?,
        };
        if written == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        rest = &rest[written..];
    }
    Ok(())
}
