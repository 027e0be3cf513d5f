//! The meta commands (`mg`, `ms`, `md`, `ma`, `mn`, `me`).
//!
//! Return flags are written in the order the request gave them, then `Z`
//! (a win token was already handed out), `X` (stale) and `W` (this client
//! won the right to recache), in that order, as memcached does. Quiet mode
//! (`q`) suppresses `EN` for `mg` and `HD` for `ms`/`md`/`ma`; every other
//! reply, errors and `md`'s `NF` included, is sent, as memcached sends them
//! (async-memcached's own test suite checks `md` of a missing key in quiet
//! mode for `NF`).

use super::counters::Counter;
use super::detail::DetailOp;
use super::item::{ItemRef, Meta, FETCHED, STALE, TOKEN_SENT};
use super::numeric::{self, Digits, MAX_DIGITS};
use super::text::nop;
use super::time::{remaining_secs, Expiry};
use super::{Block, Lookup, Store, ITEM_OVERHEAD};
use crate::cache::KeyedOp;
use crate::memcached::{
    ArithmeticMode, ArithmeticOp, MetaFlag, MetaFlags, MetaReturn, MetaStatus, Response, SetMode,
};

/// Room for every return flag a request can ask for, plus `Z`, `X`, `W`.
const MAX_RETURNS: usize = 32;

/// Return flags collected on the stack.
struct Returns<'a> {
    buf: [MetaReturn<'a>; MAX_RETURNS],
    len: usize,
}

impl<'a> Returns<'a> {
    fn new() -> Self {
        Returns {
            buf: [MetaReturn::Win; MAX_RETURNS],
            len: 0,
        }
    }

    fn push(&mut self, r: MetaReturn<'a>) {
        if self.len < MAX_RETURNS {
            self.buf[self.len] = r;
            self.len += 1;
        }
    }

    /// The `O` and `k` flags, in request order: all a reply without an item
    /// carries.
    fn opaque_and_key(flags: &MetaFlags<'a>, key: &'a [u8]) -> Self {
        let mut r = Returns::new();
        for flag in flags.iter() {
            match flag {
                MetaFlag::Opaque(o) => r.push(MetaReturn::Opaque(o)),
                MetaFlag::ReturnKey => r.push(MetaReturn::Key {
                    key,
                    base64: flags.base64_key(),
                }),
                _ => {}
            }
        }
        r
    }

    fn write(&self, status: MetaStatus<'_>, out: &mut Vec<u8>) {
        Response::Meta {
            status,
            flags: &self.buf[..self.len],
        }
        .write_to(out);
    }
}

/// The deadline an `mg` or `ma` reports for `t` at each point of its
/// flags. memcached applies `N` (to an item the request created) and `T`
/// where they stand among the flags, so a `t` before them reports the TTL
/// the item had, and one after them the new one.
#[derive(Clone, Copy)]
struct TtlSteps {
    /// On the store clock, in ms; 0: never.
    current: u64,
    /// `T`'s deadline.
    touch: Option<u64>,
    /// `N`'s deadline, for an item this request created.
    vivify: Option<u64>,
}

impl TtlSteps {
    fn unchanged(deadline: u64) -> Self {
        TtlSteps::existing(deadline, None, 0)
    }

    /// An item that was there, with `deadline`, and the request's `T`.
    fn existing(deadline: u64, touch: Option<Expiry>, now: u64) -> Self {
        TtlSteps {
            current: deadline,
            touch: touch.map(|e| e.deadline(now)),
            vivify: None,
        }
    }

    /// Moves past `flag` in request order.
    fn pass(&mut self, flag: MetaFlag<'_>) {
        match (flag, self.touch, self.vivify) {
            (MetaFlag::Ttl(_), Some(deadline), _) | (MetaFlag::Vivify(_), _, Some(deadline)) => {
                self.current = deadline;
            }
            _ => {}
        }
    }

    /// An item this request creates (`N`): made with no TTL, then `N` and
    /// `T` apply in request order. Returns the steps and the expiry the item
    /// is stored with: the later of the two in the request.
    fn created(
        flags: &MetaFlags<'_>,
        vivified: Expiry,
        touch: Option<Expiry>,
        now: u64,
    ) -> (Self, Expiry) {
        let touch_last = flags
            .iter()
            .filter(|f| matches!(f, MetaFlag::Ttl(_) | MetaFlag::Vivify(_)))
            .last()
            .is_some_and(|f| matches!(f, MetaFlag::Ttl(_)));
        let steps = TtlSteps {
            current: 0,
            touch: touch.map(|e| e.deadline(now)),
            vivify: Some(vivified.deadline(now)),
        };
        let expiry = match touch {
            Some(t) if touch_last => t,
            _ => vivified,
        };
        (steps, expiry)
    }
}

/// What `ms`/`md`/`ma` did.
enum Outcome {
    /// Done, with the new CAS a `ms`/`ma` reply reports (`None` for `md`).
    Done(Option<u64>),
    NotStored,
    NotFound,
    Exists,
    NonNumeric,
    /// No room for a counter `ma … N` would create (memcached's `-M`).
    NoMemory,
}

impl Store {
    pub(super) fn meta_get(&self, key: &[u8], flags: &MetaFlags<'_>, now: u64, out: &mut Vec<u8>) {
        let touching = flags.ttl().is_some();
        let (cmd, hits, misses) = if touching {
            (Counter::CmdTouch, Counter::TouchHits, Counter::TouchMisses)
        } else {
            (Counter::CmdGet, Counter::GetHits, Counter::GetMisses)
        };
        self.counters.bump(cmd);
        // Whether the item was there (`Some(false)`), made by `N` (`Some(true)`),
        // or missing (`None`).
        let found = if touching || flags.vivify().is_some() {
            self.meta_get_write(key, flags, now, out)
        } else {
            match self.read(key, !flags.no_bump(), |item| {
                let shown = TtlSteps::unchanged(item.expires_at(now));
                self.meta_get_reply(key, flags, &item, (false, shown), now, out);
            }) {
                Lookup::Hit(()) => Some(false),
                Lookup::Miss => None,
                Lookup::Flushed => {
                    self.counters.bump(Counter::GetFlushed);
                    None
                }
            }
        };
        let hit = found == Some(false);
        self.detail.record(key, DetailOp::Get { hit });
        match found {
            Some(created) => self.counters.bump(if created { misses } else { hits }),
            None => {
                self.counters.bump(misses);
                if !flags.quiet() {
                    Returns::opaque_and_key(flags, key).write(MetaStatus::Miss, out);
                }
            }
        }
    }

    /// The reply to an `mg` that found (or `created`) `item`; records the
    /// fetch and hands out the win token. `shown` gives the deadlines its `t`
    /// reports (see [`TtlSteps`]).
    fn meta_get_reply(
        &self,
        key: &[u8],
        flags: &MetaFlags<'_>,
        item: &ItemRef<'_>,
        (created, mut shown): (bool, TtlSteps),
        now: u64,
        out: &mut Vec<u8>,
    ) {
        let secs = self.time.uptime_secs(now);
        let before = if flags.no_bump() || created {
            item.meta.state()
        } else {
            item.meta.record_fetch(secs)
        };
        let (mut won, mut already_won) = (created, false);
        if !created && before & TOKEN_SENT != 0 {
            already_won = true;
        } else if !created && (before & STALE != 0 || self.recache_due(flags, shown, now)) {
            if item.meta.claim_token() {
                won = true;
            } else {
                already_won = true;
            }
        }
        let block = item.block;
        let mut r = Returns::new();
        for flag in flags.iter() {
            r.push(match flag {
                MetaFlag::ReturnCas => MetaReturn::Cas(block.cas()),
                MetaFlag::ReturnFlags => MetaReturn::ClientFlags(block.flags()),
                MetaFlag::ReturnHit => MetaReturn::Hit(before & FETCHED != 0),
                MetaFlag::ReturnKey => MetaReturn::Key {
                    key,
                    base64: flags.base64_key(),
                },
                MetaFlag::ReturnLastAccess => MetaReturn::LastAccess(u64::from(
                    secs.saturating_sub(Meta::last_access(before)),
                )),
                MetaFlag::ReturnSize => MetaReturn::Size(block.value().len() as u64),
                MetaFlag::ReturnTtl => MetaReturn::Ttl(remaining_secs(shown.current, now)),
                MetaFlag::Opaque(o) => MetaReturn::Opaque(o),
                other => {
                    shown.pass(other);
                    continue;
                }
            });
        }
        if already_won {
            r.push(MetaReturn::AlreadyWon);
        }
        if before & STALE != 0 {
            r.push(MetaReturn::Stale);
        }
        if won {
            r.push(MetaReturn::Win);
        }
        let status = if flags.return_value() {
            MetaStatus::Value(block.value())
        } else {
            MetaStatus::Header
        };
        r.write(status, out);
    }

    /// Whether the item's remaining TTL is below the `R` threshold.
    /// `shown` as [`TtlSteps`]: `R` compares the TTL the item has at `R`'s
    /// place among the flags (after a `T` before it, not after one after it).
    fn recache_due(&self, flags: &MetaFlags<'_>, mut shown: TtlSteps, now: u64) -> bool {
        let Some(threshold) = flags.recache() else {
            return false;
        };
        for flag in flags.iter() {
            if let MetaFlag::Recache(_) = flag {
                break;
            }
            shown.pass(flag);
        }
        let expires_at = shown.current;
        match self.time.expiry(threshold, now) {
            // A threshold reaching past the end of the store clock covers
            // every deadline.
            e @ Expiry::After(_) => expires_at != 0 && expires_at < e.deadline(now),
            Expiry::Never | Expiry::Expired => false,
        }
    }

    /// `mg` with `T` (touch) or `N` (vivify): under the write lock, where the
    /// reply is written too. Returns what [`meta_get`](Self::meta_get)'s
    /// `found` holds.
    fn meta_get_write(
        &self,
        key: &[u8],
        flags: &MetaFlags<'_>,
        now: u64,
        out: &mut Vec<u8>,
    ) -> Option<bool> {
        let touch = flags.ttl().map(|t| self.time.expiry(t, now));
        let vivify = flags.vivify().map(|n| self.time.expiry(n, now));
        // With no room for the item `N` would make (`-M`), memcached
        // answers a miss.
        if vivify.is_some() && !self.storable(key.len(), 0) {
            return None;
        }
        self.mutate(key, |cur| {
            let (live, dead) = self.live(cur);
            match (live, vivify) {
                (Some(item), _) => {
                    let op = match touch {
                        None => KeyedOp::Nop,
                        Some(Expiry::Expired) => KeyedOp::Remove,
                        Some(e) => KeyedOp::SetTtl(e.ttl()),
                    };
                    let shown = TtlSteps::existing(item.expires_at(now), touch, now);
                    self.meta_get_reply(key, flags, &item, (false, shown), now, out);
                    (op, Some(false))
                }
                (None, Some(vivified)) => {
                    let (shown, expiry) = TtlSteps::created(flags, vivified, touch, now);
                    let block = self.new_block(key, &[], 0, flags.new_cas());
                    let meta = Meta::new(self.fresh_state(now) | TOKEN_SENT);
                    let item = ItemRef {
                        block: &block,
                        meta: &meta,
                        ttl: expiry.ttl(),
                    };
                    self.meta_get_reply(key, flags, &item, (true, shown), now, out);
                    // This fetch counts (`h1` next time) unless `u` says not to.
                    if !flags.no_bump() {
                        meta.record_fetch(self.time.uptime_secs(now));
                    }
                    let op = match expiry {
                        Expiry::Expired => nop(dead),
                        e => KeyedOp::PutWithTtl(Some(block), meta, e.ttl()),
                    };
                    (op, Some(true))
                }
                (None, None) => (nop(dead), None),
            }
        })
    }

    pub(super) fn meta_set(
        &self,
        key: &[u8],
        flags: &MetaFlags<'_>,
        data: &[u8],
        now: u64,
        out: &mut Vec<u8>,
    ) {
        self.detail.record(key, DetailOp::Set);
        let mode = flags.set_mode().unwrap_or(SetMode::Set);
        let appending = matches!(mode, SetMode::Append | SetMode::Prepend);
        // memcached sizes the item it reads the data into first, and on
        // failure drops the key's value whatever the mode.
        let client_flags = flags.client_flags().unwrap_or(0);
        if self.over_item_size(key.len(), data.len(), client_flags) {
            self.counters.bump(Counter::StoreTooLarge);
            self.forget(key);
            Response::ServerError(super::text::TOO_LARGE).write_to(out);
            return;
        }
        if !self.storable(key.len(), data.len()) {
            self.counters.bump(Counter::StoreNoMemory);
            self.forget(key);
            Response::ServerError("out of memory storing object").write_to(out);
            return;
        }
        // Counted once the request has passed the checks (see `store`).
        self.counters.bump(Counter::CmdSet);
        let expiry = flags
            .ttl()
            .map_or(Expiry::Never, |t| self.time.expiry(t, now));
        let fresh = || self.new_block(key, &[data], client_flags, flags.new_cas());
        let state = self.fresh_state(now);
        // The reply needs the CAS (`c`).
        let stored = |op: KeyedOp<Block, Meta>, cas: u64| (op, Outcome::Done(Some(cas)));
        let put_fresh = |expiry: Expiry| {
            let block = fresh();
            let cas = block.cas();
            stored(Self::put(expiry, block, state), cas)
        };
        let result = self.mutate(key, |cur| {
            let (live, dead) = self.live(cur);
            match (mode, live) {
                (SetMode::Set | SetMode::Replace, live) if flags.compare_cas().is_some() => {
                    let cas = flags.compare_cas().unwrap_or(0);
                    match live {
                        None => {
                            self.counters.bump(Counter::CasMisses);
                            (nop(dead), Outcome::NotFound)
                        }
                        Some(old) if old.block.cas() == cas => {
                            self.counters.bump(Counter::CasHits);
                            put_fresh(expiry)
                        }
                        Some(old) if flags.invalidate() && cas != 0 && cas < old.block.cas() => {
                            // An older writer may still store, but the item
                            // stays stale, with its TTL and token state
                            // (`C0` is no older writer: memcached answers EX).
                            self.counters.bump(Counter::CasHits);
                            let state = state | old.meta.sticky_bits() | STALE;
                            let block = fresh();
                            let cas = block.cas();
                            stored(Self::replace(block, state), cas)
                        }
                        Some(_) => {
                            self.counters.bump(Counter::CasBadval);
                            (KeyedOp::Nop, Outcome::Exists)
                        }
                    }
                }
                (SetMode::Replace, None) | (SetMode::Append | SetMode::Prepend, None)
                    if !(appending && flags.vivify().is_some()) =>
                {
                    (nop(dead), Outcome::NotStored)
                }
                (SetMode::Add, Some(_)) => (KeyedOp::Nop, Outcome::NotStored),
                (SetMode::Append | SetMode::Prepend, Some(old)) => {
                    // As memcached's append: `C0` compares nothing.
                    let compare = flags.compare_cas().filter(|&c| c != 0);
                    if compare.is_some_and(|c| c != old.block.cas()) {
                        return (KeyedOp::Nop, Outcome::Exists);
                    }
                    let prepend = mode == SetMode::Prepend;
                    let cas = flags.new_cas().unwrap_or_else(|| self.next_cas());
                    match self.concat(&old, data, prepend, Some(cas), now) {
                        Some(op) => stored(op, cas),
                        None => (KeyedOp::Nop, Outcome::NotStored),
                    }
                }
                (SetMode::Append | SetMode::Prepend, None) => {
                    // Vivify on a miss: store the data as a new item.
                    let expiry = self.time.expiry(flags.vivify().unwrap_or(0), now);
                    if !self.fits(key.len(), data.len()) {
                        return (nop(dead), Outcome::NotStored);
                    }
                    put_fresh(expiry)
                }
                _ => put_fresh(expiry),
            }
        });
        if matches!(result, Outcome::Done(_)) {
            self.counters.bump(Counter::TotalItems);
        }
        self.meta_reply(key, flags, result, b's', out);
    }

    pub(super) fn meta_delete(
        &self,
        key: &[u8],
        flags: &MetaFlags<'_>,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        self.detail.record(key, DetailOp::Delete);
        let result = self.mutate(key, |cur| {
            let (live, dead) = self.live(cur);
            let Some(old) = live else {
                self.counters.bump(Counter::DeleteMisses);
                return (nop(dead), Outcome::NotFound);
            };
            if flags.compare_cas().is_some_and(|c| c != old.block.cas()) {
                self.counters.bump(Counter::DeleteMisses);
                return (KeyedOp::Nop, Outcome::Exists);
            }
            let touch = flags.ttl().map(|t| self.time.expiry(t, now));
            if !flags.invalidate() {
                self.counters.bump(Counter::DeleteHits);
            }
            if flags.remove_value() {
                // A tombstone, as memcached makes one: a new item with an
                // empty value, the flags of `F` (else 0) and the TTL of `T`
                // (else none); with `I`, stale as well (below).
                // The old item's CAS unless `E` gives one; with `I`, a new
                // one (as memcached, 1.6.4x).
                let cas = flags
                    .new_cas()
                    .or_else(|| (!flags.invalidate()).then(|| old.block.cas()));
                let block =
                    self.derived_block(old.block, &[], flags.client_flags().unwrap_or(0), cas);
                let mut state = self.fresh_state(now);
                if flags.invalidate() {
                    state |= STALE;
                }
                let op = Self::put(touch.unwrap_or(Expiry::Never), block, state);
                return (op, Outcome::Done(None));
            }
            if flags.invalidate() {
                // Mark stale: same value, new CAS, the win token up for grabs.
                let state = (old.meta.state() | STALE) & !TOKEN_SENT;
                let cas = flags.new_cas().unwrap_or_else(|| self.next_cas());
                let block = old.block.with_cas(cas, old.block.epoch());
                let op = match touch {
                    None => Self::replace(block, state),
                    Some(e) => Self::put(e, block, state),
                };
                return (op, Outcome::Done(None));
            }
            (KeyedOp::Remove, Outcome::Done(None))
        });
        self.meta_reply(key, flags, result, b'd', out);
    }

    pub(super) fn meta_arithmetic(
        &self,
        key: &[u8],
        flags: &MetaFlags<'_>,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        let op = match flags.arithmetic_mode() {
            Some(ArithmeticMode::Decr) => ArithmeticOp::Decr,
            _ => ArithmeticOp::Incr,
        };
        let (hits, misses) = match op {
            ArithmeticOp::Incr => (Counter::IncrHits, Counter::IncrMisses),
            ArithmeticOp::Decr => (Counter::DecrHits, Counter::DecrMisses),
        };
        let delta = flags.delta().unwrap_or(1);
        let touch = flags.ttl().map(|t| self.time.expiry(t, now));
        let mut number = 0;
        let mut shown = TtlSteps::unchanged(0);
        let result = self.mutate(key, |cur| {
            let (live, dead) = self.live(cur);
            let Some(old) = live else {
                let Some(ttl) = flags.vivify() else {
                    self.counters.bump(misses);
                    return (nop(dead), Outcome::NotFound);
                };
                if !self.fits(key.len(), MAX_DIGITS) {
                    // A key no item can hold (a request built by hand).
                    return (nop(dead), Outcome::NotStored);
                }
                if !self.room_locked(key.len(), MAX_DIGITS) {
                    return (nop(dead), Outcome::NoMemory);
                }
                let expiry;
                (shown, expiry) = TtlSteps::created(flags, self.time.expiry(ttl, now), touch, now);
                number = flags.initial().unwrap_or(0);
                let digits = Digits::new(number);
                let block = self.new_block(key, &[digits.as_bytes()], 0, flags.new_cas());
                let done = block.cas();
                let op = match expiry {
                    Expiry::Expired => nop(dead),
                    e => {
                        // A new item, as a store makes one.
                        self.counters.bump(Counter::TotalItems);
                        Self::put(e, block, self.fresh_state(now))
                    }
                };
                return (op, Outcome::Done(Some(done)));
            };
            // An empty value is no number, whatever the CAS (memcached checks
            // its length first, then the CAS, then the digits).
            if old.block.value().is_empty() {
                return (KeyedOp::Nop, Outcome::NonNumeric);
            }
            // `C0` compares nothing (memcached's increment takes a CAS of 0
            // as none).
            let compare = flags.compare_cas().filter(|&c| c != 0);
            if compare.is_some_and(|c| c != old.block.cas()) {
                return (KeyedOp::Nop, Outcome::Exists);
            }
            let Some((n, value)) = numeric::apply(op, old.block.value(), delta) else {
                return (KeyedOp::Nop, Outcome::NonNumeric);
            };
            number = n;
            self.counters.bump(hits);
            shown = TtlSteps::existing(old.expires_at(now), touch, now);
            let state = self.counter_state(&old, &value, now);
            let block =
                self.derived_block(old.block, &[&value], old.block.flags(), flags.new_cas());
            let done = block.cas();
            let op = match touch {
                None => Self::replace(block, state),
                Some(e) => Self::put(e, block, state),
            };
            (op, Outcome::Done(Some(done)))
        });
        if let Outcome::Done(Some(cas)) = result {
            let digits = Digits::new(number);
            // Quiet mode hides a success, with or without its value.
            if flags.quiet() {
                return;
            }
            let mut r = Returns::new();
            for flag in flags.iter() {
                r.push(match flag {
                    MetaFlag::ReturnCas => MetaReturn::Cas(cas),
                    MetaFlag::ReturnTtl => MetaReturn::Ttl(remaining_secs(shown.current, now)),
                    MetaFlag::Opaque(o) => MetaReturn::Opaque(o),
                    MetaFlag::ReturnKey => MetaReturn::Key {
                        key,
                        base64: flags.base64_key(),
                    },
                    other => {
                        shown.pass(other);
                        continue;
                    }
                });
            }
            let status = if flags.return_value() {
                MetaStatus::Value(digits.as_bytes())
            } else {
                MetaStatus::Header
            };
            r.write(status, out);
            return;
        }
        self.meta_reply(key, flags, result, b'a', out);
    }

    /// The reply of `ms`/`md`/`ma`: status, then `O`, `k` and (for a stored
    /// `ms`) `c` in request order.
    fn meta_reply(
        &self,
        key: &[u8],
        flags: &MetaFlags<'_>,
        result: Outcome,
        command: u8,
        out: &mut Vec<u8>,
    ) {
        let status = match &result {
            Outcome::Done(_) => MetaStatus::Header,
            Outcome::NotStored => MetaStatus::NotStored,
            Outcome::NotFound => MetaStatus::NotFound,
            Outcome::Exists => MetaStatus::Exists,
            Outcome::NonNumeric => {
                Response::ClientError("cannot increment or decrement non-numeric value")
                    .write_to(out);
                return;
            }
            Outcome::NoMemory => {
                Response::ServerError("Out of memory allocating new item").write_to(out);
                return;
            }
        };
        if flags.quiet() && matches!(status, MetaStatus::Header) {
            return;
        }
        let mut r = Returns::opaque_and_key(flags, key);
        // `ms`'s `c` goes where the request put it: the new CAS, or 0 when
        // nothing was stored (as memcached answers `NS c0`).
        let cas = match (&result, command) {
            (Outcome::Done(Some(cas)), b's') => Some(*cas),
            (Outcome::NotStored | Outcome::NotFound | Outcome::Exists, b's') => Some(0),
            _ => None,
        };
        if let Some(cas) = cas {
            r = Returns::new();
            for flag in flags.iter() {
                match flag {
                    MetaFlag::Opaque(o) => r.push(MetaReturn::Opaque(o)),
                    MetaFlag::ReturnKey => r.push(MetaReturn::Key {
                        key,
                        base64: flags.base64_key(),
                    }),
                    MetaFlag::ReturnCas => r.push(MetaReturn::Cas(cas)),
                    _ => {}
                }
            }
        }
        r.write(status, out);
    }

    pub(super) fn meta_noop(&self, out: &mut Vec<u8>) {
        Response::Meta {
            status: MetaStatus::Noop,
            flags: &[],
        }
        .write_to(out);
    }

    pub(super) fn meta_debug(&self, key: &[u8], base64: bool, now: u64, out: &mut Vec<u8>) {
        self.counters.bump(Counter::CmdMeta);
        let found = self.read(key, false, |item| {
            let state = item.meta.state();
            let block = item.block;
            Response::MetaDebug {
                key,
                base64,
                exp: remaining_secs(item.expires_at(now), now),
                last_access: u64::from(
                    self.time
                        .uptime_secs(now)
                        .saturating_sub(Meta::last_access(state)),
                ),
                cas: block.cas(),
                fetched: state & FETCHED != 0,
                class: 1,
                size: (block.cost() + ITEM_OVERHEAD as usize) as u64,
            }
            .write_to(out);
        });
        if !matches!(found, Lookup::Hit(())) {
            Response::Meta {
                status: MetaStatus::Miss,
                flags: &[],
            }
            .write_to(out);
        }
    }
}
