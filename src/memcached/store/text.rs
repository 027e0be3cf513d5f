//! The classic text commands.

use super::counters::Counter;
use super::detail::DetailOp;
use super::item::{ItemRef, Meta};
use super::numeric;
use super::output::Sink;
use super::time::Expiry;
use super::{Lookup, Outcome, Store};
use crate::cache::KeyedOp;
use crate::memcached::codec::value_header;
use crate::memcached::{ArithmeticOp, Request, Response, StoreCommand, Tokens, TooLarge};

/// The line for a store the cache could not hold.
const OUT_OF_MEMORY: &str = "out of memory storing object";

/// The line for an item over `-I`.
pub(super) const TOO_LARGE: &str = "object too large for cache";

/// What a storage command did.
enum StoreResult {
    Stored,
    NotStored,
    Exists,
    NotFound,
    OutOfMemory,
    TooLarge,
}

impl StoreResult {
    fn response(&self) -> Response<'static> {
        match self {
            StoreResult::Stored => Response::Stored,
            StoreResult::NotStored => Response::NotStored,
            StoreResult::Exists => Response::Exists,
            StoreResult::NotFound => Response::NotFound,
            StoreResult::OutOfMemory => Response::ServerError(OUT_OF_MEMORY),
            StoreResult::TooLarge => Response::ServerError(TOO_LARGE),
        }
    }
}

/// What `incr`/`decr` did.
enum Arith {
    Value(u64),
    NotFound,
    NonNumeric,
}

impl Store {
    pub(super) fn execute_text(
        &self,
        request: &Request<'_>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let reply = |out: &mut Vec<u8>, noreply: bool, response: Response<'_>| {
            if !noreply {
                response.write_to(out);
            }
        };
        match request {
            Request::Get { cas, touch, keys } => {
                let _ = self.execute_get(*keys, *cas, *touch, 0, None, true, now, out);
            }
            // The rest of the line is the caller's (`Store::process` streams it).
            Request::LongGet { cas, touch, keys } => {
                let _ = self.execute_get(*keys, *cas, *touch, 0, None, false, now, out);
            }
            Request::Store {
                command,
                key,
                flags,
                exptime,
                data,
                noreply,
            } => {
                let result = self.store(*command, key, *flags, *exptime, data, now);
                reply(out, *noreply, result.response());
            }
            Request::Delete { key, noreply } => {
                self.detail.record(key, DetailOp::Delete);
                let deleted = self.mutate(key, |cur| match self.live(cur) {
                    (Some(_), _) => (KeyedOp::Remove, true),
                    (None, dead) => (nop(dead), false),
                });
                let response = if deleted {
                    self.counters.bump(Counter::DeleteHits);
                    Response::Deleted
                } else {
                    self.counters.bump(Counter::DeleteMisses);
                    Response::NotFound
                };
                reply(out, *noreply, response);
            }
            Request::Arithmetic {
                op,
                key,
                delta,
                noreply,
            } => {
                let response = match self.arithmetic(*op, key, *delta, now) {
                    Arith::Value(n) => Response::Number(n),
                    Arith::NotFound => Response::NotFound,
                    Arith::NonNumeric => {
                        Response::ClientError("cannot increment or decrement non-numeric value")
                    }
                };
                reply(out, *noreply, response);
            }
            Request::Touch {
                key,
                exptime,
                noreply,
            } => {
                self.counters.bump(Counter::CmdTouch);
                let expiry = self.time.expiry(*exptime, now);
                // A touch counts as a fetch (memcached's `h` flag reads 1 after it).
                let secs = self.time.uptime_secs(now);
                let touched = self.touch(key, expiry, |item| {
                    item.meta.record_fetch(secs);
                });
                let response = if touched.is_some() {
                    self.counters.bump(Counter::TouchHits);
                    Response::Touched
                } else {
                    self.counters.bump(Counter::TouchMisses);
                    Response::NotFound
                };
                reply(out, *noreply, response);
            }
            Request::FlushAll { delay, noreply } => {
                self.counters.bump(Counter::CmdFlush);
                if !self.flush_enabled {
                    reply(
                        out,
                        *noreply,
                        Response::ClientError("flush_all not allowed"),
                    );
                    return Outcome::Continue;
                }
                self.flush_all(*delay, now);
                reply(out, *noreply, Response::Ok);
            }
            Request::Version => Response::Version(&self.version).write_to(out),
            Request::Verbosity { noreply, .. } => reply(out, *noreply, Response::Ok),
            Request::Stats { args } => self.stats(*args, now, out),
            Request::Quit => return Outcome::Close,
            Request::Shutdown { graceful } => {
                if self.enable_shutdown {
                    return Outcome::Shutdown {
                        graceful: *graceful,
                    };
                }
                Response::Line("ERROR: shutdown not enabled").write_to(out);
            }
            Request::CacheMemlimit { megabytes, noreply } => {
                let response = if *megabytes < 8 {
                    Response::Line("MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m")
                } else if *megabytes > 1_000_000_000 {
                    Response::Line("MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes")
                } else if self.set_memory_limit(u64::from(*megabytes) << 20) {
                    Response::Ok
                } else {
                    Response::Line("MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust")
                };
                reply(out, *noreply, response);
            }
            Request::Admin { command, noreply } => return self.admin(command, *noreply, out),
            Request::TooLarge(too_large) => self.too_large(too_large, out),
            // Meta commands are dispatched by `execute`.
            _ => {}
        }
        Outcome::Continue
    }

    /// `get`/`gets`/`gat`/`gats`, answering `keys` from index `skip` on.
    ///
    /// With a `limit`, stops before the next key once `out` holds `limit`
    /// bytes (after answering at least one key) and returns the index to
    /// resume from; `END` is written only when every key was answered and
    /// `finish` says these keys end the line (not a piece of a long one). This
    /// is what keeps a multi-get of one large value repeated thousands of
    /// times from buffering gigabytes of replies.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn execute_get<S: Sink>(
        &self,
        keys: Tokens<'_>,
        cas: bool,
        touch: Option<i64>,
        skip: usize,
        limit: Option<usize>,
        finish: bool,
        now: u64,
        out: &mut S,
    ) -> Option<usize> {
        let expiry = touch.map(|exptime| self.time.expiry(exptime, now));
        for (index, key) in keys.iter().enumerate().skip(skip) {
            if index > skip && limit.is_some_and(|limit| out.pending() >= limit) {
                return Some(index);
            }
            match expiry {
                None => self.get_one(key, cas, now, out),
                Some(expiry) => self.get_and_touch_one(key, cas, expiry, now, out),
            }
        }
        if finish {
            Response::End.write_to(out.lines());
        }
        None
    }

    fn get_one<S: Sink>(&self, key: &[u8], cas: bool, now: u64, out: &mut S) {
        self.counters.bump(Counter::CmdGet);
        let secs = self.time.uptime_secs(now);
        let found = self.read(key, true, |item| {
            item.meta.record_fetch(secs);
            write_value(out, key, &item, cas);
        });
        match found {
            Lookup::Hit(()) => {
                self.counters.bump(Counter::GetHits);
                self.detail.record(key, DetailOp::Get { hit: true });
            }
            Lookup::Miss => {
                self.counters.bump(Counter::GetMisses);
                self.detail.record(key, DetailOp::Get { hit: false });
            }
            Lookup::Flushed => {
                self.detail.record(key, DetailOp::Get { hit: false });
                self.counters.bump(Counter::GetMisses);
                self.counters.bump(Counter::GetFlushed);
            }
        }
    }

    fn get_and_touch_one<S: Sink>(
        &self,
        key: &[u8],
        cas: bool,
        expiry: Expiry,
        now: u64,
        out: &mut S,
    ) {
        self.counters.bump(Counter::CmdTouch);
        let secs = self.time.uptime_secs(now);
        let found = self.touch(key, expiry, |item| {
            item.meta.record_fetch(secs);
            write_value(out, key, &item, cas);
        });
        match found {
            Some(()) => {
                self.counters.bump(Counter::TouchHits);
                self.detail.record(key, DetailOp::Get { hit: true });
            }
            None => {
                self.counters.bump(Counter::TouchMisses);
                self.detail.record(key, DetailOp::Get { hit: false });
            }
        }
    }

    /// Sets the expiry of a live item, after running `f` on it (under the
    /// shard's write lock); `None` if there is none. An `Expired` expiry
    /// removes it (`f` still sees it, as `gat` returns the value).
    pub(super) fn touch<R>(
        &self,
        key: &[u8],
        expiry: Expiry,
        f: impl FnOnce(ItemRef<'_>) -> R,
    ) -> Option<R> {
        self.mutate(key, |cur| {
            let (live, dead) = self.live(cur);
            match live {
                Some(item) => {
                    let op = match expiry {
                        Expiry::Expired => KeyedOp::Remove,
                        e => KeyedOp::SetTtl(e.ttl()),
                    };
                    (op, Some(f(item)))
                }
                None => (nop(dead), None),
            }
        })
    }

    pub(super) fn flush_all(&self, delay: Option<i64>, now: u64) {
        let deadline = match delay {
            // `deadline` saturates: a delay past the end of the store clock
            // flushes at its end, not at a wrapped-around time.
            Some(d) if d > 0 => self.time.expiry(d, now).deadline(now),
            _ => 0,
        };
        // memcached marks the flush with a CAS value of its own when the
        // flush takes effect within the second, so the next item's CAS
        // skips one (clients that compare CAS values across a flush see the
        // same numbers).
        if deadline <= now.saturating_add(1000) {
            let _ = self.next_cas();
        }
        self.flush_pending
            .store(deadline, std::sync::atomic::Ordering::Release);
        if deadline == 0 {
            self.flush_now();
        } else {
            self.record_flush_at(deadline);
        }
    }

    fn store(
        &self,
        command: StoreCommand,
        key: &[u8],
        flags: u32,
        exptime: i64,
        data: &[u8],
        now: u64,
    ) -> StoreResult {
        self.detail.record(key, DetailOp::Set);
        let expiry = self.time.expiry(exptime, now);
        // memcached sizes the item it reads the data into (for an append,
        // the data alone, with the line's flags) before anything else.
        if self.over_item_size(key.len(), data.len(), flags) {
            self.counters.bump(Counter::StoreTooLarge);
            if command == StoreCommand::Set {
                self.forget(key);
            }
            return StoreResult::TooLarge;
        }
        // The data alone (an append's too) needs an item first: with no
        // room for it under `-M`, memcached answers out of memory.
        if !self.storable(key.len(), data.len()) {
            self.counters.bump(Counter::StoreNoMemory);
            if command == StoreCommand::Set {
                self.forget(key);
            }
            return StoreResult::OutOfMemory;
        }
        // memcached counts a store once it has an item to read the data
        // into: not one refused above.
        self.counters.bump(Counter::CmdSet);
        let fresh = || self.new_block(key, &[data], flags, None);
        let state = self.fresh_state(now);
        let result = match command {
            StoreCommand::Set => {
                let block = match expiry {
                    Expiry::Expired => None,
                    _ => Some(fresh()),
                };
                let epoch = block.as_ref().map(|b| b.epoch());
                match block {
                    Some(block) => self.put_recorded(expiry, block, state, now),
                    None => self.forget(key),
                }
                if let Some(epoch) = epoch {
                    self.after_unlocked_write(epoch, key);
                }
                StoreResult::Stored
            }
            StoreCommand::Add => self.mutate_at(key, Some(now), |cur| match self.live(cur) {
                (Some(_), _) => (KeyedOp::Nop, StoreResult::NotStored),
                (None, dead) => match expiry {
                    Expiry::Expired => (nop(dead), StoreResult::Stored),
                    e => (Self::put(e, fresh(), state), StoreResult::Stored),
                },
            }),
            StoreCommand::Replace => self.mutate_at(key, Some(now), |cur| match self.live(cur) {
                (Some(_), _) => (Self::put(expiry, fresh(), state), StoreResult::Stored),
                (None, dead) => (nop(dead), StoreResult::NotStored),
            }),
            StoreCommand::Cas { unique } => {
                self.mutate_at(key, Some(now), |cur| match self.live(cur) {
                    (Some(old), _) if old.block.cas() == unique => {
                        self.counters.bump(Counter::CasHits);
                        (Self::put(expiry, fresh(), state), StoreResult::Stored)
                    }
                    (Some(_), _) => {
                        self.counters.bump(Counter::CasBadval);
                        (KeyedOp::Nop, StoreResult::Exists)
                    }
                    (None, dead) => {
                        self.counters.bump(Counter::CasMisses);
                        (nop(dead), StoreResult::NotFound)
                    }
                })
            }
            StoreCommand::Append | StoreCommand::Prepend => {
                let prepend = command == StoreCommand::Prepend;
                self.mutate_at(key, Some(now), |cur| match self.live(cur) {
                    (Some(old), _) => match self.concat(&old, data, prepend, None, now) {
                        Some(op) => (op, StoreResult::Stored),
                        None => (KeyedOp::Nop, StoreResult::NotStored),
                    },
                    (None, dead) => (nop(dead), StoreResult::NotStored),
                })
            }
        };
        if matches!(result, StoreResult::Stored) {
            self.counters.bump(Counter::TotalItems);
        }
        result
    }

    /// `old` with `data` appended (or prepended): same flags and expiry, new
    /// CAS. `None` if the result would be too large to store.
    pub(super) fn concat(
        &self,
        old: &ItemRef<'_>,
        data: &[u8],
        prepend: bool,
        cas: Option<u64>,
        now: u64,
    ) -> Option<KeyedOp<super::Block, Meta>> {
        let (key, old_value) = (old.block.key(), old.block.value());
        let len = old_value.len() + data.len();
        // memcached makes the whole new item before it frees the old one;
        // when that fails (too large, or no room under `-M`) the append is
        // `NOT_STORED`, counted nowhere.
        if !self.fits(key.len(), len)
            || self.over_item_size(key.len(), len, old.block.flags())
            || !self.room_locked(key.len(), len)
        {
            return None;
        }
        let parts = if prepend {
            [data, old_value]
        } else {
            [old_value, data]
        };
        let block = self.derived_block(old.block, &parts, old.block.flags(), cas);
        // A new item, as memcached makes one: not fetched, not stale, no win
        // token handed out.
        Some(Self::replace(block, self.fresh_state(now)))
    }

    /// The access state of a counter after an increment or decrement that
    /// wrote `value`. memcached changes a number in place when its digits
    /// fit the old length (padded with spaces), and the item keeps its
    /// state (fetched, stale, win token); a longer number is a new item, with
    /// a fresh state, and counts in `total_items` as every item memcached
    /// links does.
    pub(super) fn counter_state(&self, old: &ItemRef<'_>, value: &[u8], now: u64) -> u32 {
        if value.len() == old.block.value().len() {
            old.meta.state()
        } else {
            self.counters.bump(Counter::TotalItems);
            self.fresh_state(now)
        }
    }

    fn arithmetic(&self, op: ArithmeticOp, key: &[u8], delta: u64, now: u64) -> Arith {
        let (hits, misses) = match op {
            ArithmeticOp::Incr => (Counter::IncrHits, Counter::IncrMisses),
            ArithmeticOp::Decr => (Counter::DecrHits, Counter::DecrMisses),
        };
        let result = self.mutate(key, |cur| match self.live(cur) {
            (Some(old), _) => match numeric::apply(op, old.block.value(), delta) {
                Some((n, value)) => {
                    let state = self.counter_state(&old, &value, now);
                    let block = self.derived_block(old.block, &[&value], old.block.flags(), None);
                    (Self::replace(block, state), Arith::Value(n))
                }
                None => (KeyedOp::Nop, Arith::NonNumeric),
            },
            (None, dead) => (nop(dead), Arith::NotFound),
        });
        match result {
            Arith::Value(_) => self.counters.bump(hits),
            Arith::NotFound => self.counters.bump(misses),
            Arith::NonNumeric => {}
        }
        result
    }

    fn too_large(&self, too_large: &TooLarge<'_>, out: &mut Vec<u8>) {
        // Not in `cmd_set`: memcached counts only the stores it made an
        // item for.
        self.counters.bump(Counter::StoreTooLarge);
        if too_large.removes_old_value() {
            self.forget(too_large.key());
        }
        if !too_large.noreply() {
            Response::ServerError(TOO_LARGE).write_to(out);
        }
    }
}

/// Leaves the entry alone, unless it is a flushed item, which goes.
pub(super) fn nop(dead: bool) -> KeyedOp<super::Block, Meta> {
    if dead {
        KeyedOp::Remove
    } else {
        KeyedOp::Nop
    }
}

fn write_value<S: Sink>(out: &mut S, key: &[u8], item: &ItemRef<'_>, cas: bool) {
    let b = item.block;
    value_header(
        out.lines(),
        key,
        b.flags(),
        b.value().len(),
        cas.then(|| b.cas()),
    );
    b.write_value(out);
    out.lines().extend_from_slice(b"\r\n");
}
