//! A sans-IO codec for memcached's text and meta protocols.
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
//! Keys are 1 to [`Limits::max_key_len`] bytes with no control characters
//! (protocol.txt's rule; memcached itself only checks the length). Base64
//! meta keys may decode to any bytes.
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
//! | line longer than [`Limits::max_line_len`], whether or not its end has arrived (`CLIENT_ERROR line too long`) | — | **fatal**: send the line, then close |
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
pub use request::{ArithmeticOp, Request, StoreCommand, Tokens, TokensIter, TooLarge};
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
    let Some((line, line_len)) = frame_line(input, limits)? else {
        return Ok(Status::Partial);
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
fn frame_line<'a>(
    input: &'a [u8],
    limits: &Limits,
) -> Result<Option<(&'a [u8], usize)>, ParseError> {
    let limit = if is_retrieval_line(input) {
        limits.max_get_line_len.max(limits.max_line_len)
    } else {
        limits.max_line_len
    };
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
