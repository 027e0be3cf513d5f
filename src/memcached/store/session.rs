//! Driving a whole input buffer: parse every complete request, execute it,
//! and keep the little state a connection needs between reads.

use super::{Outcome, Store};
use crate::memcached::{parse, Request, Response, Status};

/// Per-connection state for [`Store::process`]: bytes still to skip from a
/// rejected request whose data block has not fully arrived, and an optional
/// cap on buffered output.
///
/// ```
/// let session = larder::memcached::Session::new().with_output_limit(1 << 20);
/// assert!(!session.is_swallowing());
/// ```
#[derive(Clone, Debug, Default)]
pub struct Session {
    swallow: usize,
    output_limit: Option<usize>,
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
    #[must_use]
    pub fn with_output_limit(mut self, limit: usize) -> Self {
        self.output_limit = Some(limit);
        self
    }

    /// Whether bytes of a rejected data block are still being skipped.
    pub fn is_swallowing(&self) -> bool {
        self.swallow > 0
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
    /// Handles what [`parse`] leaves to its caller: a [`Request::TooLarge`]
    /// or a rejected `ms` whose data block reaches past `input` is skipped
    /// as it arrives (remembered in `session`), errors are answered with
    /// memcached's line (or nothing, for `noreply`), and a fatal error
    /// (line too long) answers and asks to close. Processing stops at the
    /// first incomplete request, after `quit`/`shutdown`, or when the
    /// session's output limit is reached.
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
        let mut pos = session.swallow.min(input.len());
        session.swallow -= pos;
        let outcome = loop {
            if session.swallow > 0 || pos == input.len() {
                break Outcome::Continue;
            }
            if session.output_limit.is_some_and(|limit| out.len() >= limit) {
                break Outcome::Continue;
            }
            let rest = &input[pos..];
            match parse(rest, &self.limits) {
                Ok(Status::Complete(request, used)) => {
                    let outcome = self.execute(&request, out);
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
                    if !error.noreply() || error.is_fatal() {
                        Response::Error(error.kind()).write_to(out);
                    }
                    if error.is_fatal() {
                        pos = input.len();
                        break Outcome::Close;
                    }
                    let skip = error.discard().min(rest.len());
                    session.swallow = error.discard() - skip;
                    pos += skip;
                }
            }
        };
        Progress {
            consumed: pos,
            outcome,
        }
    }
}
