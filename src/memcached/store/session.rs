//! Driving a whole input buffer: parse every complete request, execute it,
//! and keep the little state a connection needs between reads.

use super::admin::dump_lists_items;
use super::dump::DumpCursor;
use super::output::{Output, Sink};
use super::repl::READ_ONLY;
use super::{Outcome, Protocols, Store};
use crate::memcached::{
    parse_get_rest, parse_streaming, AdminCommand, GetRest, ParseError, Request, Response, Status,
    Tokens,
};

/// Per-connection state for [`Store::process`]: bytes still to skip from a
/// rejected request whose data block has not fully arrived, where to resume
/// a multi-key get paused by the output limit, whether the input starts in
/// the middle of a get line too long to buffer (answered as its keys
/// arrive) or of a refused one, and an optional cap on buffered output.
///
/// ```
/// let session = larder::memcached::Session::new().with_output_limit(1 << 20);
/// assert!(!session.is_swallowing());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Session {
    pub(super) swallow: usize,
    /// Keys of the get (or get piece) at the head of the input already
    /// answered.
    resume: usize,
    output_limit: Option<usize>,
    /// A get line too long to buffer whole, answered piece by piece: the
    /// input starts inside it.
    long_get: Option<LongGet>,
    /// The input starts inside a refused line: drop it through its `\n`.
    skip_line: bool,
    /// Set by the connection's first byte: `Some(true)` for binary.
    binary: Option<bool>,
    /// Most requests one call answers (memcached's `-R`).
    request_limit: Option<usize>,
    /// A metadump paused by the output limit, at the head of the input.
    dump: Option<DumpCursor>,
    /// The connection has authenticated (SASL; see
    /// [`StoreConfig::sasl`](super::StoreConfig::sasl)).
    pub(super) authenticated: bool,
    /// The connection has completed a SASL exchange (it may not start
    /// another).
    pub(super) sasl_done: bool,
    /// A `PLAIN` exchange waits for its message in a `SASL_STEP`.
    pub(super) sasl_pending: bool,
    /// The bytes of an ASCII authentication's data still to come (`-Y`).
    pub(super) auth_data: Option<usize>,
}

/// What a long get line's later pieces need from its start.
#[derive(Clone, Copy, Debug)]
struct LongGet {
    cas: bool,
    touch: Option<i64>,
}

impl Session {
    /// A fresh connection's state.
    pub fn new() -> Self {
        Session::default()
    }

    /// Stops [`Store::process`] from starting a new request once `out`
    /// holds `limit` bytes or more, so a pipelining client cannot make the
    /// server buffer replies without bound: send what is there, then call
    /// again with the unconsumed input.
    ///
    /// The limit also applies between the keys of one `get`/`gets`/`gat`/
    /// `gats`: once `limit` bytes of values are out, the request pauses
    /// (its line is not consumed, [`Session::is_resuming`] is true) and the
    /// next call continues after the keys already answered, so even a
    /// multi-get naming one large item thousands of times buffers about
    /// `limit` plus one value.
    #[must_use]
    pub fn with_output_limit(mut self, limit: usize) -> Self {
        self.output_limit = Some(limit);
        self
    }

    /// Whether bytes of a rejected data block are still being skipped.
    pub fn is_swallowing(&self) -> bool {
        self.swallow > 0
    }

    /// Whether a multi-key get at the head of the input was paused by the
    /// output limit: send the output, then call [`Store::process`] again
    /// even though it consumed nothing.
    ///
    /// ```
    /// use larder::memcached::{Session, Store, StoreConfig};
    ///
    /// let store = Store::new(StoreConfig::default())?;
    /// let mut session = Session::new().with_output_limit(16);
    /// let (mut out, input) = (Vec::new(), b"set k 0 0 10\r\n0123456789\r\nget k k\r\n");
    /// let progress = store.process(&mut session, input, &mut out);
    /// assert_eq!(progress.consumed, 26); // the set; the get is paused after one key
    /// assert!(session.is_resuming());
    /// out.clear();
    /// let progress = store.process(&mut session, &input[26..], &mut out);
    /// assert_eq!(progress.consumed, 9);
    /// assert_eq!(out, b"VALUE k 0 10\r\n0123456789\r\nEND\r\n");
    /// assert!(!session.is_resuming());
    /// # Ok::<(), larder::memcached::StoreError>(())
    /// ```
    pub fn is_resuming(&self) -> bool {
        self.resume > 0 || self.dump.is_some()
    }

    /// Whether the connection speaks the binary protocol: decided by its
    /// first byte (`0x80`), as memcached decides, and kept for the
    /// connection's life. `None` until a byte has arrived.
    ///
    /// ```
    /// use larder::memcached::{Session, Store, StoreConfig};
    ///
    /// let store = Store::new(StoreConfig::default())?;
    /// let mut session = Session::new();
    /// assert_eq!(session.is_binary(), None);
    /// let _ = store.process(&mut session, b"version\r\n", &mut Vec::new());
    /// assert_eq!(session.is_binary(), Some(false));
    /// # Ok::<(), larder::memcached::StoreError>(())
    /// ```
    pub fn is_binary(&self) -> Option<bool> {
        self.binary
    }

    pub(super) fn output_limit(&self) -> Option<usize> {
        self.output_limit
    }

    /// Stops [`Store::process`] after `limit` requests (at least one), as
    /// memcached's `-R` caps the requests it answers for one connection
    /// before serving the others: a server sends the replies, lets other
    /// connections run, and calls again with the unconsumed input. Default:
    /// no limit.
    ///
    /// ```
    /// use larder::memcached::{Session, Store, StoreConfig};
    ///
    /// let store = Store::new(StoreConfig::default())?;
    /// let mut session = Session::new().with_request_limit(1);
    /// let mut out = Vec::new();
    /// let progress = store.process(&mut session, b"version\r\nversion\r\n", &mut out);
    /// assert_eq!(progress.consumed, 9);
    /// # Ok::<(), larder::memcached::StoreError>(())
    /// ```
    #[must_use]
    pub fn with_request_limit(mut self, limit: usize) -> Self {
        self.request_limit = Some(limit.max(1));
        self
    }

    /// Whether `handled` requests reach the limit.
    pub(super) fn requests_done(&self, handled: usize) -> bool {
        self.request_limit.is_some_and(|limit| handled >= limit)
    }

    /// Changes the output limit (see [`Session::with_output_limit`]) for
    /// the next calls; a server shrinks it while buffer memory is short.
    pub fn set_output_limit(&mut self, limit: usize) {
        self.output_limit = Some(limit);
    }
}

/// What [`Store::process`] did with a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub struct Progress {
    /// Bytes of the input used; drop them and keep the rest (an incomplete
    /// request) for the next call.
    pub consumed: usize,
    /// Whether to keep the connection, close it, or shut down.
    pub outcome: Outcome,
}

impl Store {
    /// Parses and executes every complete request at the start of `input`,
    /// appending the replies to `out`.
    ///
    /// The session's first byte picks the protocol, as in memcached: `0x80`
    /// makes it a binary connection for good ([`binary`](crate::memcached::binary),
    /// [`Store::execute_binary`]); anything else, text and meta.
    ///
    /// Handles what [`parse_streaming`] leaves to its caller: a [`Request::TooLarge`]
    /// or a rejected `ms` whose data block reaches past `input` is skipped
    /// as it arrives (remembered in `session`), errors are answered with
    /// memcached's line (or nothing, for `noreply`), and a fatal error
    /// (line too long) answers and asks to close. Processing stops at the
    /// first incomplete request, after `quit`/`shutdown`, or when the
    /// session's output limit is reached (possibly in the middle of a
    /// multi-key get: see [`Session::is_resuming`]).
    ///
    /// A connection loop calls this, sends `out`, drops `consumed` bytes,
    /// and calls again while `consumed > 0` or the session
    /// [is resuming](Session::is_resuming); otherwise it reads more.
    ///
    /// **Locking behaviour:** as [`Store::execute`], one request at a time.
    ///
    /// ```
    /// use larder::memcached::{Outcome, Session, Store, StoreConfig};
    ///
    /// let store = Store::new(StoreConfig::default())?;
    /// let mut session = Session::new();
    /// let mut out = Vec::new();
    /// // A whole request and the start of the next one.
    /// let progress = store.process(&mut session, b"incr n 1\r\nget n", &mut out);
    /// assert_eq!(progress.consumed, 10);
    /// assert_eq!(progress.outcome, Outcome::Continue);
    /// assert_eq!(out, b"NOT_FOUND\r\n");
    /// # Ok::<(), larder::memcached::StoreError>(())
    /// ```
    pub fn process(&self, session: &mut Session, input: &[u8], out: &mut Vec<u8>) -> Progress {
        self.process_with(session, input, out)
    }

    /// [`Store::process`] into an [`Output`], which shares large values with
    /// the cache instead of copying them (what a server wants: a slow reader
    /// then holds references, not copies). The output limit counts shared
    /// bytes too.
    ///
    /// **Locking behaviour:** as [`Store::process`].
    pub fn process_output(
        &self,
        session: &mut Session,
        input: &[u8],
        out: &mut Output,
    ) -> Progress {
        self.process_with(session, input, out)
    }

    fn process_with<S: Sink>(&self, session: &mut Session, input: &[u8], out: &mut S) -> Progress {
        if session.binary.is_none() && !input.is_empty() {
            session.binary = Some(match self.protocols {
                Protocols::Text => false,
                Protocols::Binary => true,
                _ => input[0] == crate::memcached::binary::REQUEST_MAGIC,
            });
        }
        if session.binary == Some(true) {
            return self.process_binary(session, input, out);
        }
        if let Some(users) = &self.ascii_auth {
            if !session.authenticated {
                let (used, outcome) = self.ascii_authenticate(users, session, input, out);
                if !session.authenticated || outcome != Outcome::Continue {
                    return Progress {
                        consumed: used,
                        outcome,
                    };
                }
                // In: the requests after the authentication are answered.
                let rest = self.process_with(session, &input[used..], out);
                return Progress {
                    consumed: used + rest.consumed,
                    outcome: rest.outcome,
                };
            }
        }
        let mut pos = session.swallow.min(input.len());
        session.swallow -= pos;
        let mut handled = 0;
        let outcome = loop {
            if session.swallow > 0 || pos == input.len() || session.requests_done(handled) {
                break Outcome::Continue;
            }
            if session
                .output_limit
                .is_some_and(|limit| out.pending() >= limit)
            {
                break Outcome::Continue;
            }
            let rest = &input[pos..];
            if session.skip_line {
                match rest.iter().position(|&b| b == b'\n') {
                    Some(newline) => {
                        pos += newline + 1;
                        session.skip_line = false;
                        continue;
                    }
                    None => {
                        pos = input.len();
                        break Outcome::Continue;
                    }
                }
            }
            if let Some(long) = session.long_get {
                match parse_get_rest(rest, &self.limits) {
                    Ok(Status::Complete(GetRest { keys, last }, used)) => {
                        let piece = Piece::new(keys, long.cas, long.touch, last);
                        if !self.answer_piece(session, piece, out) {
                            break Outcome::Continue;
                        }
                        pos += used;
                        if last {
                            session.long_get = None;
                        }
                    }
                    Ok(Status::Partial) => break Outcome::Continue,
                    Err(error) => {
                        session.long_get = None;
                        pos += self.refuse(session, &error, rest.len(), out.lines());
                    }
                }
                continue;
            }
            handled += 1;
            let parsed = parse_streaming(rest, &self.limits);
            // A paused dump goes on only while its line is at the head (a
            // check only while one is paused: not on every request).
            if session.dump.is_some()
                && !matches!(
                    parsed,
                    Ok(Status::Complete(
                        Request::Admin {
                            command: AdminCommand::LruCrawlerMetadump(_),
                            ..
                        },
                        _
                    ))
                )
            {
                session.dump = None;
            }
            match parsed {
                Ok(Status::Complete(Request::LongGet { cas, touch, keys }, used)) => {
                    let piece = Piece::new(keys, cas, touch, false);
                    if !self.answer_piece(session, piece, out) {
                        break Outcome::Continue;
                    }
                    session.long_get = Some(LongGet { cas, touch });
                    pos += used;
                }
                Ok(Status::Complete(Request::Get { cas, touch, keys }, used)) => {
                    let piece = Piece::new(keys, cas, touch, true);
                    if !self.answer_piece(session, piece, out) {
                        break Outcome::Continue;
                    }
                    pos += used;
                }
                Ok(Status::Complete(
                    Request::Admin {
                        command: AdminCommand::LruCrawlerMetadump(classes),
                        ..
                    },
                    used,
                )) => {
                    let from = match session.dump.take() {
                        Some(cursor) => cursor,
                        None => {
                            // Replies of earlier requests in this call are
                            // not sent yet: memcached refuses a dump queued
                            // behind them.
                            let refusal = self.metadump_refusal(classes, handled > 1);
                            if let Some(line) = refusal {
                                Response::Line(line).write_to(out.lines());
                                pos += used;
                                continue;
                            }
                            if !dump_lists_items(classes) {
                                Response::End.write_to(out.lines());
                                pos += used;
                                continue;
                            }
                            DumpCursor::default()
                        }
                    };
                    match self.metadump(from, session.output_limit, out) {
                        Some(cursor) => {
                            session.dump = Some(cursor);
                            break Outcome::Continue;
                        }
                        None => pos += used,
                    }
                }
                Ok(Status::Complete(request, used)) => {
                    let outcome = self.execute(&request, out.lines());
                    pos += used;
                    if let Request::TooLarge(too_large) = &request {
                        session.swallow = too_large.swallow();
                        let skip = session.swallow.min(input.len() - pos);
                        pos += skip;
                        session.swallow -= skip;
                    }
                    if outcome != Outcome::Continue {
                        break outcome;
                    }
                }
                Ok(Status::Partial) => break Outcome::Continue,
                Err(error) => {
                    if error.is_fatal() {
                        if !error.noreply() {
                            Response::Error(error.kind()).write_to(out.lines());
                        }
                        pos = input.len();
                        break Outcome::Close;
                    }
                    pos += self.refuse(session, &error, rest.len(), out.lines());
                }
            }
        };
        Progress {
            consumed: pos,
            outcome,
        }
    }

    /// Answers the keys of one get line, or one piece of a long one, from
    /// where a paused call stopped. `false` if the output limit paused it
    /// again: nothing of it is consumed yet.
    fn answer_piece<S: Sink>(&self, session: &mut Session, piece: Piece<'_>, out: &mut S) -> bool {
        let now = self.time.now_ms();
        self.apply_pending_flush(now);
        let Piece {
            keys,
            cas,
            touch,
            last,
        } = piece;
        if touch.is_some() && self.repl.read_only() {
            // `gat` changes items: refused on a read-only replica, with one
            // reply for the whole line however many pieces it came in.
            if last {
                Response::ServerError(READ_ONLY).write_to(out.lines());
            }
            session.resume = 0;
            return true;
        }
        let (skip, limit) = (session.resume, session.output_limit);
        match self.execute_get(keys, cas, touch, skip, limit, last, now, out) {
            Some(next) => {
                session.resume = next;
                false
            }
            None => {
                session.resume = 0;
                true
            }
        }
    }

    /// Answers a non-fatal parse error and returns how many of the
    /// `buffered` bytes it drops; the rest of what it refuses is skipped as
    /// it arrives.
    fn refuse(
        &self,
        session: &mut Session,
        error: &ParseError,
        buffered: usize,
        out: &mut Vec<u8>,
    ) -> usize {
        if !error.noreply() {
            Response::Error(error.kind()).write_to(out);
        }
        let skip = error.discard().min(buffered);
        session.swallow = error.discard() - skip;
        session.skip_line = error.rest_of_line();
        // A get paused by the output limit and then refused (more of its line
        // arrived, with a bad key) leaves no keys to resume.
        session.resume = 0;
        skip
    }
}

/// Keys to answer for one get line or one piece of a long one.
struct Piece<'a> {
    keys: Tokens<'a>,
    cas: bool,
    touch: Option<i64>,
    /// The line ends after these keys: answer `END`.
    last: bool,
}

impl<'a> Piece<'a> {
    fn new(keys: Tokens<'a>, cas: bool, touch: Option<i64>, last: bool) -> Self {
        Piece {
            keys,
            cas,
            touch,
            last,
        }
    }
}
