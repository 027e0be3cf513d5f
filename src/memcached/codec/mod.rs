//! A sans-IO codec for memcached's text and meta protocols, and (in
//! [`binary`]) its binary protocol.
//!
//! [`parse`] looks at the bytes a connection has buffered and returns one of:
//!
//! - `Ok(Status::Complete(request, consumed))`: a whole request; drop
//!   `consumed` bytes and call again for the next one (pipelining).
//! - `Ok(Status::Partial)`: the request is not all there yet; read more and
//!   call again with the longer buffer. A request split anywhere is *always*
//!   `Partial`, never an error, until its bytes arrive — unless the bytes
//!   already buffered break a [`Limits`] bound, so a caller never buffers
//!   without bound.
//! - `Err(error)`: malformed input; see below.
//!
//! The codec does no I/O, keeps no state between calls, and does not allocate
//! (except to decode a base64 meta key). [`Request::write_to`] and
//! [`Response::write_to`] compose bytes, so a client can use the codec too.
//!
//! # Framing
//!
//! A command line ends at the first `\n`; a `\r` right before it is dropped,
//! so bare `\n` line endings work as they do with memcached. Tokens are
//! separated by one or more spaces (only spaces: a tab is part of a token).
//! A data block is exactly the declared number of bytes followed by `\r\n`;
//! anything else there is `CLIENT_ERROR bad data chunk`.
//!
//! Keys are 1 to [`Limits::max_key_len`] bytes other than space and NUL:
//! protocol.txt forbids control characters too, but memcached accepts them
//! and real tools send them (memcaslap's keys start with `0x10` bytes), so
//! larder does as memcached does. Base64 meta keys may decode to any bytes.
//!
//! # Multi-gets of any length
//!
//! As in memcached, a `get`/`gets`/`gat`/`gats` line may name any number
//! of keys. One that fits in [`Limits::max_get_line_len`] is a single
//! [`Request::Get`], refused whole if any key is bad. A longer one is a
//! [`Request::LongGet`] with the keys of its first `max_get_line_len` bytes,
//! then pieces from [`parse_get_rest`] as the rest arrives, so the caller
//! buffers about `max_get_line_len` bytes however long the line is. A bad
//! key in a later piece refuses the rest of the line, but the keys of
//! earlier pieces have been answered by then.
//!
//! # Errors and resynchronisation
//!
//! Every [`ParseError`] says how many bytes to [`discard`](ParseError::discard)
//! and whether the connection [`is_fatal`](ParseError::is_fatal):
//!
//! | error | discard | connection |
//! |---|---|---|
//! | unknown command, empty line, wrong argument count (`ERROR`) | the line | continues |
//! | malformed arguments (`CLIENT_ERROR …`), text or meta, including keys that are too long | the line | continues |
//! | `ms` whose length parsed but whose flags, mode or opaque did not | the line, the data block and its `\r\n` (may exceed the input) | continues |
//! | data block not followed by `\r\n` (`CLIENT_ERROR bad data chunk`) | the line, the block and the two bytes after it | continues |
//! | a bad key in a `get`-family line longer than [`Limits::max_get_line_len`] ([`ParseError::rest_of_line`]) | what was given, then through the next `\n` | continues |
//! | line other than a `get`-family one longer than [`Limits::max_line_len`], whether or not its end has arrived (`CLIENT_ERROR line too long`) | — | **fatal**: send the line, then close |
//! | an HTTP request line ([`ErrorKind::HttpRequest`]) | — | **fatal**: close without a reply |
//!
//! As in memcached, a rejected *text* storage line does not swallow the data
//! block that may follow it: those bytes are parsed as the next command (and
//! usually answered with `ERROR`). Text errors for a line that ended in
//! `noreply` have [`ParseError::noreply`] set: memcached sends nothing for
//! them. Meta errors are always sent.
//!
//! A value larger than [`Limits::max_item_size`] is not an error but a
//! [`Request::TooLarge`]: the executor answers `SERVER_ERROR object too large
//! for cache`, removes the old value where memcached does, and the caller
//! skips [`TooLarge::swallow`] bytes after the line — bytes that may not have
//! arrived yet.

#![forbid(unsafe_code)]

mod admin;
mod ascii;
mod base64;
pub mod binary;
mod error;
mod limits;
mod meta;
mod request;
mod response;
mod text;

pub use admin::AdminCommand;
pub use error::{ErrorKind, ParseError};
pub use limits::Limits;
pub use meta::{ArithmeticMode, MetaFlag, MetaFlags, SetMode};
pub use request::{ArithmeticOp, GetRest, Request, StoreCommand, Tokens, TokensIter, TooLarge};
pub(crate) use response::value_header;
pub use response::{MetaReturn, MetaStatus, Response};

use ascii::Words;

/// The outcome of a successful [`parse`] call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status<T> {
    /// A whole request, and how many input bytes it used.
    Complete(T, usize),
    /// More bytes are needed.
    Partial,
}

/// Parses the first request in `input`.
///
/// # Errors
///
/// A [`ParseError`] when the input is malformed or breaks `limits`; see the
/// [module docs](self) for how to resynchronise after each kind.
///
/// ```
/// use larder::memcached::{parse, Limits, Request, Status, StoreCommand};
///
/// let limits = Limits::default();
/// let input = b"set k 0 0 2\r\nhi\r\nget k\r\n";
/// assert_eq!(parse(&input[..15], &limits)?, Status::Partial);
/// let Status::Complete(request, consumed) = parse(input, &limits)? else {
///     unreachable!("the whole set is buffered");
/// };
/// assert_eq!(consumed, 17);
/// assert_eq!(
///     request,
///     Request::Store {
///         command: StoreCommand::Set,
///         key: b"k",
///         flags: 0,
///         exptime: 0,
///         data: b"hi",
///         noreply: false,
///     }
/// );
/// # Ok::<(), larder::memcached::ParseError>(())
/// ```
pub fn parse<'a>(input: &'a [u8], limits: &Limits) -> Result<Status<Request<'a>>, ParseError> {
    parse_line(input, limits, false)
}

/// Like [`parse`], except that a `get`-family line longer than
/// [`Limits::max_get_line_len`] is not an error: its first stretch comes back
/// as a [`Request::LongGet`] (the keys that have fully arrived), and the
/// caller must then parse the rest of that line with [`parse_get_rest`] until
/// a piece says it was the `last`, before it parses another command. This is
/// how memcached answers multigets of any length while the caller buffers
/// only a bounded part of the line; [`Store::process`](crate::memcached::Store::process)
/// drives it. A caller that treated the rest of the line as new commands would
/// run key names as commands, so [`parse`] never returns `LongGet`.
///
/// # Errors
///
/// As [`parse`].
pub fn parse_streaming<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<Status<Request<'a>>, ParseError> {
    parse_line(input, limits, true)
}

/// [`parse`], and with `stream_gets` [`parse_streaming`].
fn parse_line<'a>(
    input: &'a [u8],
    limits: &Limits,
    stream_gets: bool,
) -> Result<Status<Request<'a>>, ParseError> {
    let retrieval = is_retrieval_line(input);
    let limit = if retrieval {
        limits.max_get_line_len.max(limits.max_line_len)
    } else {
        limits.max_line_len
    };
    let (line, line_len) = match frame_line(input, limit) {
        Ok(Some(line)) => line,
        Ok(None) => return Ok(Status::Partial),
        // A multi-get too long to buffer whole: answer it in pieces.
        Err(_) if retrieval && stream_gets => return text::parse_long_get(&input[..limit], limits),
        Err(error) => return Err(error),
    };
    let mut words = Words::new(line);
    let name = match words.next() {
        Some(name) if name.len() >= 2 => name,
        _ => return Err(ParseError::new(ErrorKind::UnknownCommand, line_len)),
    };
    match name {
        [b'm', sub] => meta::parse(*sub, words, input, line_len, limits),
        _ => text::parse(name, words, input, line_len, limits),
    }
}

/// Parses more of a `get`-family line after a [`Request::LongGet`] (from
/// [`parse_streaming`]): the
/// keys that have fully arrived at the start of `input`, and whether the
/// line ended after them.
///
/// # Errors
///
/// `CLIENT_ERROR bad command line format` ([`ErrorKind::BadFormat`]) for a
/// key that is too long or holds control bytes: the rest of the line is
/// refused. If the error's [`rest_of_line`](ParseError::rest_of_line) is
/// set, the line's end has not arrived: after dropping
/// [`discard`](ParseError::discard) bytes keep dropping input up to and
/// including the next `\n`. Keys answered before the error stay answered
/// (memcached, which buffers the whole line, answers only the error).
///
/// ```
/// use larder::memcached::{parse, parse_get_rest, parse_streaming, Limits, Request, Status};
///
/// let limits = Limits { max_line_len: 16, max_get_line_len: 16, ..Limits::default() };
/// let input = b"get aaaa bbbb cccc dddd";
/// assert!(parse(input, &limits).is_err(), "parse does not stream");
/// let Status::Complete(Request::LongGet { keys, .. }, used) = parse_streaming(input, &limits)? else {
///     unreachable!("longer than max_get_line_len, no line end yet");
/// };
/// assert_eq!(keys.iter().collect::<Vec<_>>(), [&b"aaaa"[..], b"bbbb"]);
/// let rest = [&input[used..], b" eeee\r\n"].concat();
/// let Status::Complete(more, n) = parse_get_rest(&rest, &limits)? else { unreachable!() };
/// assert_eq!(more.keys.len(), 3);
/// assert!(more.last);
/// assert_eq!(n, rest.len());
/// # Ok::<(), larder::memcached::ParseError>(())
/// ```
pub fn parse_get_rest<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<Status<GetRest<'a>>, ParseError> {
    text::parse_get_rest(input, limits)
}

/// Names whose lines may use `max_get_line_len`.
const RETRIEVAL_PREFIXES: [&[u8]; 4] = [b"get ", b"gets ", b"gat ", b"gats "];

fn is_retrieval_line(input: &[u8]) -> bool {
    RETRIEVAL_PREFIXES
        .iter()
        .any(|p| input.starts_with(p) || (input.len() < p.len() && p.starts_with(input)))
}

/// Finds the first command line: its content (without `\r\n`) and its length
/// including the terminator. `None` while it is incomplete.
///
/// The length check gives the same answer however the line is split: an
/// incomplete line fails only once even its shortest possible content
/// (ignoring a trailing `\r` that may yet be followed by `\n`) is too long.
fn frame_line(input: &[u8], limit: usize) -> Result<Option<(&[u8], usize)>, ParseError> {
    let too_long = Err(ParseError::new(ErrorKind::LineTooLong, input.len()));
    let window = input.len().min(limit.saturating_add(2));
    match input[..window].iter().position(|&b| b == b'\n') {
        Some(newline) => {
            let end = if newline > 0 && input[newline - 1] == b'\r' {
                newline - 1
            } else {
                newline
            };
            if end > limit {
                return too_long;
            }
            Ok(Some((&input[..end], newline + 1)))
        }
        None if window < input.len() => too_long,
        None => {
            let shortest = input.len() - usize::from(input.last() == Some(&b'\r'));
            if shortest > limit {
                too_long
            } else {
                Ok(None)
            }
        }
    }
}

/// The `size`-byte data block starting at `start`: `None` while incomplete,
/// `Err(end)` if it is not followed by `\r\n` (`end` is where the block and
/// those two bytes end).
fn data_block(input: &[u8], start: usize, size: usize) -> Option<Result<&[u8], usize>> {
    let data_end = start + size;
    let end = data_end + 2;
    if input.len() < end {
        return None;
    }
    if &input[data_end..end] == b"\r\n" {
        Some(Ok(&input[start..data_end]))
    } else {
        Some(Err(end))
    }
}
