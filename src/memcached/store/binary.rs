//! The binary protocol's commands, run with the semantics of their text
//! twins, and the input loop of a binary connection.
//!
//! Replies follow memcached 1.6 byte for byte (CAS values aside): success
//! carries the new item's CAS, errors carry memcached's message as the
//! value and CAS 0, quiet opcodes drop success replies (and get-family
//! misses) but never errors. Where the binary protocol asks for more than
//! the text command offers, memcached's binary rules apply: a non-zero CAS
//! turns `SET`/`ADD`/`REPLACE` into a compare-and-swap (so an `ADD` with a
//! CAS on a missing key is `Not found`), and `APPEND`/`PREPEND`/`DELETE`/
//! `INCREMENT`/`DECREMENT` check it too; `INCREMENT`/`DECREMENT` create a
//! missing counter unless the expiration is [`NO_AUTOVIVIFY`]. Expirations
//! follow the text rules, read as unsigned 32-bit numbers, as memcached 1.6
//! reads them over binary (a "negative" one is a far-future absolute time).
//!
//! `STAT` answers the same groups as text `stats`, one packet per statistic
//! and an empty packet at the end; a group text answers with an error is
//! `Not found`; `detail dump` is one `detailed` packet, as in memcached.
//!
//! Where this differs from memcached 1.6.18: `STAT` also answers `conns`,
//! `extstore` and `cachedump` (memcached answers those only over text);
//! `VERBOSITY` with extras is `Unknown command` (memcached sends nothing);
//! an unknown opcode's body is always skipped and the connection goes on
//! (memcached sometimes stops answering after a small one).

use super::auth::{self, Users};
use super::counters::Counter;
use super::detail::DetailOp;
use super::item::ItemRef;
use super::numeric::{self, Digits, MAX_DIGITS};
use super::output::Sink;
use super::session::{Progress, Session};
use super::text::nop;
use super::time::Expiry;
use super::{Lookup, Outcome, Store};
use crate::cache::KeyedOp;
use crate::memcached::binary::{
    self, write_header, ErrorKind, Extras, Opcode, Request, Response, StatusCode, Value,
    NO_AUTOVIVIFY,
};
use crate::memcached::{ArithmeticOp, Status, Tokens};

/// What a binary store, concatenation, delete or counter change did.
enum Change {
    /// Done; the new item's CAS (0 after a delete) and, for counters, the
    /// number.
    Done {
        cas: u64,
        number: u64,
    },
    Failed(StatusCode),
}

impl Store {
    /// Runs one binary request, appending its response (if any) to `out`.
    ///
    /// Skipping the value of a [`Value::TooLarge`] request is the caller's
    /// job ([`Request::swallow`]); [`Store::process`] does it, and detects
    /// binary connections by their first byte.
    ///
    /// A request has no connection here, so [`StoreConfig::sasl`](super::StoreConfig::sasl)
    /// is not applied (the SASL commands answer `Unknown command`): a caller
    /// running requests one by one authenticates its connections itself
    /// ([`Store::process`] applies it).
    ///
    /// **Locking behaviour:** see [`Store`].
    ///
    /// ```
    /// use larder::memcached::binary::{self, Extras, Opcode, Request, StatusCode, Value};
    /// use larder::memcached::{Outcome, Status, Store, StoreConfig};
    ///
    /// let store = Store::new(StoreConfig::default())?;
    /// let mut out = Vec::new();
    /// let set = Request {
    ///     key: b"k",
    ///     extras: Extras::Store { flags: 3, exptime: 0 },
    ///     value: Value::Data(b"v"),
    ///     ..Request::bare(Opcode::Set)
    /// };
    /// assert_eq!(store.execute_binary(&set, &mut out), Outcome::Continue);
    /// let Ok(Status::Complete(reply, _)) = binary::parse_response(&out) else { unreachable!() };
    /// assert_eq!(reply.status, StatusCode::NO_ERROR);
    /// assert_ne!(reply.cas, 0, "a store answers with the new CAS");
    /// # Ok::<(), larder::memcached::StoreError>(())
    /// ```
    pub fn execute_binary(&self, request: &Request<'_>, out: &mut Vec<u8>) -> Outcome {
        self.run_binary(request, out)
    }

    fn run_binary<S: Sink>(&self, request: &Request<'_>, out: &mut S) -> Outcome {
        let now = self.time.now_ms();
        self.apply_pending_flush(now);
        let op = request.opcode;
        let quiet = op.is_quiet();
        let reply = Reply {
            opcode: op.as_u8(),
            opaque: request.opaque,
        };
        if self.repl.read_only() && super::repl::binary_changes_items(op) {
            Response {
                value: super::repl::READ_ONLY.as_bytes(),
                ..Response::error(reply.opcode, reply.opaque, StatusCode::TEMPORARY_FAILURE)
            }
            .write_to(out.lines());
            return Outcome::Continue;
        }
        match op.base() {
            Opcode::Get | Opcode::GetK => self.binary_get(request, now, out),
            Opcode::Touch | Opcode::Gat | Opcode::GatK => self.binary_touch(request, now, out),
            Opcode::Set | Opcode::Add | Opcode::Replace => {
                let change = self.binary_store(request, now);
                reply.change(change, quiet, false, out.lines());
            }
            Opcode::Append | Opcode::Prepend => {
                let change = self.binary_concat(request, now);
                reply.change(change, quiet, false, out.lines());
            }
            Opcode::Delete => {
                let change = self.binary_delete(request);
                reply.change(change, quiet, false, out.lines());
            }
            Opcode::Increment | Opcode::Decrement => {
                let change = self.binary_arithmetic(request, now);
                reply.change(change, quiet, true, out.lines());
            }
            Opcode::Flush => {
                // memcached counts a refused binary FLUSH nowhere (a text
                // `flush_all` it counts either way).
                if !self.flush_enabled {
                    reply.error(StatusCode::AUTH_ERROR, out.lines());
                    return Outcome::Continue;
                }
                self.counters.bump(Counter::CmdFlush);
                let delay = match request.extras {
                    Extras::Expiry(delay) if delay > 0 => Some(i64::from(delay)),
                    _ => None,
                };
                self.flush_all(delay, now);
                if !quiet {
                    reply.ok(0, b"", out.lines());
                }
            }
            Opcode::Noop => reply.ok(0, b"", out.lines()),
            Opcode::Version => reply.ok(0, self.version.as_bytes(), out.lines()),
            Opcode::Quit => {
                if !quiet {
                    reply.ok(0, b"", out.lines());
                }
                return Outcome::Close;
            }
            Opcode::Stat => self.binary_stat(request.key, reply, now, out.lines()),
            // Every opcode has a base above; a new one answers as unknown.
            _ => reply.error(StatusCode::UNKNOWN_COMMAND, out.lines()),
        }
        Outcome::Continue
    }

    fn binary_get<S: Sink>(&self, request: &Request<'_>, now: u64, out: &mut S) {
        let key = request.key;
        self.counters.bump(Counter::CmdGet);
        let secs = self.time.uptime_secs(now);
        match self.read(key, true, |item| {
            item.meta.record_fetch(secs);
            write_item(request, &item, true, out);
        }) {
            Lookup::Hit(()) => {}
            miss => {
                self.counters.bump(Counter::GetMisses);
                if matches!(miss, Lookup::Flushed) {
                    self.counters.bump(Counter::GetFlushed);
                }
                self.detail.record(key, DetailOp::Get { hit: false });
                binary_miss(request, out.lines());
                return;
            }
        }
        self.counters.bump(Counter::GetHits);
        self.detail.record(key, DetailOp::Get { hit: true });
    }

    /// `TOUCH`, `GAT`, `GATK` and the quiet forms.
    fn binary_touch<S: Sink>(&self, request: &Request<'_>, now: u64, out: &mut S) {
        let key = request.key;
        let exptime = match request.extras {
            Extras::Expiry(exptime) => exptime,
            _ => 0,
        };
        self.counters.bump(Counter::CmdTouch);
        let expiry = self.time.expiry(i64::from(exptime), now);
        let with_value = request.opcode != Opcode::Touch;
        let secs = self.time.uptime_secs(now);
        let found = self.touch(key, expiry, |item| {
            // A touch counts as a fetch, with or without the value.
            item.meta.record_fetch(secs);
            write_item(request, &item, with_value, out);
        });
        if found.is_none() {
            self.counters.bump(Counter::TouchMisses);
            if with_value {
                self.detail.record(key, DetailOp::Get { hit: false });
            }
            binary_miss(request, out.lines());
            return;
        }
        self.counters.bump(Counter::TouchHits);
        if with_value {
            self.detail.record(key, DetailOp::Get { hit: true });
        }
    }

    /// The checks every storing command makes before touching the cache:
    /// `Some(status)` refuses the request (after dropping a `SET`'s old
    /// value, as memcached does when it cannot store the new one).
    fn refuse_value(&self, request: &Request<'_>) -> Option<StatusCode> {
        let status = match request.value {
            Value::TooLarge(_) => {
                self.counters.bump(Counter::StoreTooLarge);
                StatusCode::TOO_LARGE
            }
            // memcached sizes the item it reads the data into first: an
            // append's with flags 0.
            Value::Data(data)
                if self.over_item_size(request.key.len(), data.len(), store_flags(request)) =>
            {
                self.counters.bump(Counter::StoreTooLarge);
                StatusCode::TOO_LARGE
            }
            Value::Data(data) if !self.storable(request.key.len(), data.len()) => {
                self.counters.bump(Counter::StoreNoMemory);
                StatusCode::OUT_OF_MEMORY
            }
            Value::Data(_) => return None,
        };
        if request.opcode.base() == Opcode::Set {
            self.forget(request.key);
        }
        Some(status)
    }

    fn binary_store(&self, request: &Request<'_>, now: u64) -> Change {
        let key = request.key;
        self.detail.record(key, DetailOp::Set);
        if let Some(status) = self.refuse_value(request) {
            return Change::Failed(status);
        }
        // Counted once the request has passed the checks (see `store`).
        self.counters.bump(Counter::CmdSet);
        let (flags, exptime) = match request.extras {
            Extras::Store { flags, exptime } => (flags, exptime),
            _ => (0, 0),
        };
        let data = match request.value {
            Value::Data(data) => data,
            Value::TooLarge(_) => b"",
        };
        let expiry = self.time.expiry(i64::from(exptime), now);
        let state = self.fresh_state(now);
        let block = self.new_block(key, &[data], flags, None);
        let epoch = block.epoch();
        let done = Change::Done {
            cas: block.cas(),
            number: 0,
        };
        let base = request.opcode.base();
        let cas = request.cas;
        let change = self.mutate(key, |cur| match self.live(cur) {
            // A CAS makes any of the three a compare-and-swap.
            (Some(old), _) if cas != 0 && old.block.cas() == cas => {
                self.counters.bump(Counter::CasHits);
                (Self::put(expiry, block, state), done)
            }
            (Some(_), _) if cas != 0 => {
                self.counters.bump(Counter::CasBadval);
                (KeyedOp::Nop, Change::Failed(StatusCode::KEY_EXISTS))
            }
            (None, dead) if cas != 0 => {
                self.counters.bump(Counter::CasMisses);
                (nop(dead), Change::Failed(StatusCode::KEY_NOT_FOUND))
            }
            (Some(_), _) if base == Opcode::Add => {
                (KeyedOp::Nop, Change::Failed(StatusCode::KEY_EXISTS))
            }
            (None, dead) if base == Opcode::Replace => {
                (nop(dead), Change::Failed(StatusCode::KEY_NOT_FOUND))
            }
            (live, dead) => {
                let op = match (expiry, live) {
                    (Expiry::Expired, None) => nop(dead),
                    _ => Self::put(expiry, block, state),
                };
                (op, done)
            }
        });
        if matches!(change, Change::Done { .. }) {
            self.counters.bump(Counter::TotalItems);
            self.after_unlocked_write(epoch, key);
        }
        change
    }

    fn binary_concat(&self, request: &Request<'_>, now: u64) -> Change {
        let key = request.key;
        self.detail.record(key, DetailOp::Set);
        // The data alone needs an item first (memcached's order), so an
        // append with no room for it under `-M` is out of memory.
        if let Some(status) = self.refuse_value(request) {
            return Change::Failed(status);
        }
        // Counted once the request has passed the checks (see `store`).
        self.counters.bump(Counter::CmdSet);
        let Value::Data(data) = request.value else {
            return Change::Failed(StatusCode::TOO_LARGE);
        };
        let prepend = request.opcode.base() == Opcode::Prepend;
        let cas = request.cas;
        let not_stored = Change::Failed(StatusCode::NOT_STORED);
        let change = self.mutate(key, |cur| match self.live(cur) {
            (Some(old), _) if cas != 0 && old.block.cas() != cas => {
                (KeyedOp::Nop, Change::Failed(StatusCode::KEY_EXISTS))
            }
            (Some(old), _) => {
                let new_cas = self.next_cas();
                match self.concat(&old, data, prepend, Some(new_cas), now) {
                    Some(op) => (
                        op,
                        Change::Done {
                            cas: new_cas,
                            number: 0,
                        },
                    ),
                    None => (KeyedOp::Nop, not_stored),
                }
            }
            (None, dead) => (nop(dead), not_stored),
        });
        if matches!(change, Change::Done { .. }) {
            self.counters.bump(Counter::TotalItems);
        }
        change
    }

    fn binary_delete(&self, request: &Request<'_>) -> Change {
        let (key, cas) = (request.key, request.cas);
        self.detail.record(key, DetailOp::Delete);
        self.mutate(key, |cur| match self.live(cur) {
            (Some(old), _) if cas != 0 && old.block.cas() != cas => {
                self.counters.bump(Counter::DeleteMisses);
                (KeyedOp::Nop, Change::Failed(StatusCode::KEY_EXISTS))
            }
            (Some(_), _) => {
                self.counters.bump(Counter::DeleteHits);
                (KeyedOp::Remove, Change::Done { cas: 0, number: 0 })
            }
            (None, dead) => {
                self.counters.bump(Counter::DeleteMisses);
                (nop(dead), Change::Failed(StatusCode::KEY_NOT_FOUND))
            }
        })
    }

    fn binary_arithmetic(&self, request: &Request<'_>, now: u64) -> Change {
        let (key, cas) = (request.key, request.cas);
        let Extras::Arithmetic {
            delta,
            initial,
            exptime,
        } = request.extras
        else {
            return Change::Failed(StatusCode::INVALID_ARGUMENTS);
        };
        let op = match request.opcode.base() {
            Opcode::Decrement => ArithmeticOp::Decr,
            _ => ArithmeticOp::Incr,
        };
        let (hits, misses) = match op {
            ArithmeticOp::Incr => (Counter::IncrHits, Counter::IncrMisses),
            ArithmeticOp::Decr => (Counter::DecrHits, Counter::DecrMisses),
        };
        self.mutate(key, |cur| match self.live(cur) {
            // An empty value is no number, whatever the CAS (memcached checks
            // the length first).
            (Some(old), _) if old.block.value().is_empty() => {
                (KeyedOp::Nop, Change::Failed(StatusCode::NON_NUMERIC))
            }
            (Some(old), _) if cas != 0 && old.block.cas() != cas => {
                (KeyedOp::Nop, Change::Failed(StatusCode::KEY_EXISTS))
            }
            (Some(old), _) => match numeric::apply(op, old.block.value(), delta) {
                Some((number, value)) => {
                    self.counters.bump(hits);
                    let state = self.counter_state(&old, &value, now);
                    let block = self.derived_block(old.block, &[&value], old.block.flags(), None);
                    let cas = block.cas();
                    (Self::replace(block, state), Change::Done { cas, number })
                }
                None => (KeyedOp::Nop, Change::Failed(StatusCode::NON_NUMERIC)),
            },
            (None, dead) => {
                self.counters.bump(misses);
                if exptime == NO_AUTOVIVIFY {
                    return (nop(dead), Change::Failed(StatusCode::KEY_NOT_FOUND));
                }
                if !self.fits(key.len(), MAX_DIGITS) {
                    // A key no item can hold (a request built by hand).
                    return (nop(dead), Change::Failed(StatusCode::INVALID_ARGUMENTS));
                }
                // No room for the new counter under `-M`.
                if !self.room_locked(key.len(), MAX_DIGITS) {
                    return (nop(dead), Change::Failed(StatusCode::OUT_OF_MEMORY));
                }
                let expiry = self.time.expiry(i64::from(exptime), now);
                let digits = Digits::new(initial);
                let block = self.new_block(key, &[digits.as_bytes()], 0, None);
                let done = Change::Done {
                    cas: block.cas(),
                    number: initial,
                };
                match expiry {
                    Expiry::Expired => (nop(dead), done),
                    e => {
                        // A new item, as a store makes one.
                        self.counters.bump(Counter::TotalItems);
                        (Self::put(e, block, self.fresh_state(now)), done)
                    }
                }
            }
        })
    }

    /// `STAT [group]`: the text answer, one packet per `STAT` line.
    fn binary_stat(&self, group: &[u8], reply: Reply, now: u64, out: &mut Vec<u8>) {
        let mut text = Vec::new();
        self.stats(Tokens::new(group), now, &mut text);
        if text.starts_with(b"CLIENT_ERROR") || text.starts_with(b"ERROR") {
            reply.error(StatusCode::KEY_NOT_FOUND, out);
            return;
        }
        if Tokens::new(group).iter().eq([&b"detail"[..], b"dump"]) {
            reply.stat(b"detailed", &text, out);
        } else {
            for line in text.split(|&b| b == b'\n') {
                let Some(stat) = line.strip_prefix(b"STAT ") else {
                    continue;
                };
                let stat = stat.strip_suffix(b"\r").unwrap_or(stat);
                let split = stat.iter().position(|&b| b == b' ').unwrap_or(stat.len());
                let (name, value) = stat.split_at(split);
                reply.stat(name, value.strip_prefix(b" ").unwrap_or(value), out);
            }
        }
        reply.stat(b"", b"", out);
    }

    /// [`Store::process`] for a connection that speaks binary.
    pub(super) fn process_binary<S: Sink>(
        &self,
        session: &mut Session,
        input: &[u8],
        out: &mut S,
    ) -> Progress {
        let mut pos = session.swallow.min(input.len());
        session.swallow -= pos;
        let mut handled = 0;
        let outcome = loop {
            if session.swallow > 0 || pos == input.len() || session.requests_done(handled) {
                break Outcome::Continue;
            }
            if session.output_limit().is_some_and(|l| out.pending() >= l) {
                break Outcome::Continue;
            }
            let rest = &input[pos..];
            handled += 1;
            match binary::parse(rest, &self.limits) {
                Ok(Status::Complete(request, used)) => {
                    let outcome = match &self.sasl {
                        Some(users) => self.run_authenticated(users, session, &request, out),
                        None => self.run_binary(&request, out),
                    };
                    pos += used;
                    let skip = request.swallow().min(input.len() - pos);
                    pos += skip;
                    session.swallow = request.swallow() - skip;
                    if outcome != Outcome::Continue {
                        break outcome;
                    }
                }
                Ok(Status::Partial) => break Outcome::Continue,
                Err(error) => {
                    // memcached checks a header's lengths, then whether the
                    // connection has authenticated, then the rest.
                    if self.sasl.is_some()
                        && !session.authenticated
                        && !matches!(error.kind(), ErrorKind::BadMagic | ErrorKind::BadBodyLength)
                    {
                        Response::error(error.opcode(), error.opaque(), StatusCode::AUTH_ERROR)
                            .write_to(out.lines());
                        pos = input.len();
                        break Outcome::Close;
                    }
                    if let Some(response) = error.response() {
                        response.write_to(out.lines());
                    }
                    if error.is_fatal() {
                        pos = input.len();
                        break Outcome::Close;
                    }
                    let skip = error.discard().min(rest.len());
                    pos += skip;
                    session.swallow = error.discard() - skip;
                }
            }
        };
        Progress {
            consumed: pos,
            outcome,
        }
    }
}

impl Store {
    /// A request on a connection of a store with SASL turned on: the SASL
    /// commands authenticate it, `VERSION` is always answered, and anything
    /// else before authentication is `Auth failure.` and closes the
    /// connection, as in memcached.
    fn run_authenticated<S: Sink>(
        &self,
        users: &Users,
        session: &mut Session,
        request: &Request<'_>,
        out: &mut S,
    ) -> Outcome {
        let reply = Reply {
            opcode: request.opcode.as_u8(),
            opaque: request.opaque,
        };
        match request.opcode {
            // As in memcached, every SASL command starts the connection's
            // authentication over: until it succeeds again, the connection
            // is not authenticated.
            Opcode::SaslListMechs => {
                session.authenticated = false;
                reply.ok(0, auth::MECHANISMS, out.lines());
                Outcome::Continue
            }
            Opcode::SaslAuth | Opcode::SaslStep => {
                if request.key.len() > auth::MAX_MECH_LEN {
                    reply.error(StatusCode::INVALID_ARGUMENTS, out.lines());
                    return Outcome::Continue;
                }
                session.authenticated = false;
                let message = match request.value {
                    Value::Data(message) => Some(message),
                    Value::TooLarge(_) => None,
                };
                // `PLAIN` takes one message, sent with `SASL_AUTH` or, when
                // that came empty, with the `SASL_STEP` its `AUTH_CONTINUE`
                // asked for (uncounted, as memcached leaves it). A
                // connection authenticates once (memcached's SASL library
                // refuses to start a second exchange on it).
                let pending = std::mem::take(&mut session.sasl_pending);
                let plain = request.key == auth::MECHANISMS && !session.sasl_done;
                if request.opcode == Opcode::SaslAuth && plain && message == Some(&b""[..]) {
                    session.sasl_pending = true;
                    reply.error(StatusCode::AUTH_CONTINUE, out.lines());
                    return Outcome::Continue;
                }
                let starts = request.opcode == Opcode::SaslAuth || pending;
                let accepted = starts
                    && plain
                    && message.is_some_and(|message| users.current().check_plain(message));
                self.count_auth(accepted);
                if accepted {
                    session.sasl_done = true;
                    session.authenticated = true;
                    reply.ok(0, b"Authenticated", out.lines());
                } else {
                    reply.error(StatusCode::AUTH_ERROR, out.lines());
                }
                Outcome::Continue
            }
            Opcode::Version => self.run_binary(request, out),
            _ if session.authenticated => self.run_binary(request, out),
            _ => {
                reply.error(StatusCode::AUTH_ERROR, out.lines());
                Outcome::Close
            }
        }
    }
}

/// Who a response goes to: the request's opcode byte and opaque.
#[derive(Clone, Copy)]
struct Reply {
    opcode: u8,
    opaque: u32,
}

impl Reply {
    fn ok(self, cas: u64, value: &[u8], out: &mut Vec<u8>) {
        Response {
            cas,
            value,
            ..Response::error(self.opcode, self.opaque, StatusCode::NO_ERROR)
        }
        .write_to(out);
    }

    fn error(self, status: StatusCode, out: &mut Vec<u8>) {
        Response::error(self.opcode, self.opaque, status).write_to(out);
    }

    fn stat(self, name: &[u8], value: &[u8], out: &mut Vec<u8>) {
        Response {
            key: name,
            value,
            ..Response::error(self.opcode, self.opaque, StatusCode::NO_ERROR)
        }
        .write_to(out);
    }

    /// The reply to a change: success (unless quiet) with the CAS, and for
    /// counters the number; or the error.
    fn change(self, change: Change, quiet: bool, counter: bool, out: &mut Vec<u8>) {
        match change {
            Change::Done { .. } if quiet => {}
            Change::Done { cas, number } if counter => self.ok(cas, &number.to_be_bytes(), out),
            Change::Done { cas, .. } => self.ok(cas, b"", out),
            Change::Failed(status) => self.error(status, out),
        }
    }
}

/// The miss reply of the get and touch family: nothing for quiet opcodes,
/// the key alone for `GETK`/`GATK`, `Not found` for the rest.
fn binary_miss(request: &Request<'_>, out: &mut Vec<u8>) {
    let op = request.opcode;
    if op.is_quiet() {
        return;
    }
    let mut response = Response::error(op.as_u8(), request.opaque, StatusCode::KEY_NOT_FOUND);
    if op.returns_key() {
        response.key = request.key;
        response.value = b"";
    }
    response.write_to(out);
}

/// A hit of the get and touch family: the flags as extras, the key for the
/// `K` opcodes, the value (shared, not copied) unless `TOUCH`, the CAS.
fn write_item<S: Sink>(request: &Request<'_>, item: &ItemRef<'_>, with_value: bool, out: &mut S) {
    let key: &[u8] = if request.opcode.returns_key() {
        request.key
    } else {
        b""
    };
    let block = item.block;
    let value_len = if with_value { block.value().len() } else { 0 };
    let lines = out.lines();
    write_header(
        lines,
        request.opcode.as_u8(),
        StatusCode::NO_ERROR,
        request.opaque,
        block.cas(),
        (4, key.len(), value_len),
    );
    lines.extend_from_slice(&block.flags().to_be_bytes());
    lines.extend_from_slice(key);
    if with_value {
        block.write_value(out);
    }
}

/// The client flags a storing request's item is made with (0 for an append
/// or prepend, which carry none).
fn store_flags(request: &Request<'_>) -> u32 {
    match request.extras {
        Extras::Store { flags, .. } => flags,
        _ => 0,
    }
}
