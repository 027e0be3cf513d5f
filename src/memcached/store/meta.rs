//! The meta commands (`mg`, `ms`, `md`, `ma`, `mn`, `me`).
//!
//! Return flags are written in the order the request gave them, then `Z`
//! (a win token was already handed out), `X` (stale) and `W` (this client
//! won the right to recache), in that order, as memcached does. Quiet mode
//! (`q`) suppresses `EN` for `mg`, `HD` for `ms`/`md`/`ma`, and `NF` for
//! `md`; every other reply, errors included, is sent.

use bytes::Bytes;

use super::counters::Counter;
use super::detail::DetailOp;
use super::item::{Item, FETCHED, STALE, TOKEN_SENT};
use super::numeric::{self, Digits};
use super::text::nop;
use super::time::{remaining_secs, Expiry};
use super::{Lookup, Store, ITEM_OVERHEAD};
use crate::memcached::{
    ArithmeticMode, ArithmeticOp, MetaFlag, MetaFlags, MetaReturn, MetaStatus, Response, SetMode,
};
use crate::Op;

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

/// What `ms`/`md`/`ma` did.
enum Outcome {
    Done(Option<Item>),
    NotStored,
    NotFound,
    Exists,
    NonNumeric,
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
        let secs = self.time.uptime_secs(now);
        let found = if touching || flags.vivify().is_some() {
            self.meta_get_write(key, flags, now)
        } else {
            match self.lookup(key, !flags.no_bump()) {
                Lookup::Hit(item) => Some((item, false)),
                Lookup::Miss => None,
                Lookup::Flushed => {
                    self.counters.bump(Counter::GetFlushed);
                    None
                }
            }
        };
        let hit = matches!(found, Some((_, false)));
        self.detail.record(key, DetailOp::Get { hit });
        let Some((item, created)) = found else {
            self.counters.bump(misses);
            if !flags.quiet() {
                Returns::opaque_and_key(flags, key).write(MetaStatus::Miss, out);
            }
            return;
        };
        self.counters.bump(if created { misses } else { hits });
        let before = if flags.no_bump() || created {
            item.state()
        } else {
            item.record_fetch(secs)
        };
        let (mut won, mut already_won) = (created, false);
        if !created && before & TOKEN_SENT != 0 {
            already_won = true;
        } else if !created && (before & STALE != 0 || self.recache_due(&item, flags, now)) {
            if item.claim_token() {
                won = true;
            } else {
                already_won = true;
            }
        }
        let mut r = Returns::new();
        for flag in flags.iter() {
            r.push(match flag {
                MetaFlag::ReturnCas => MetaReturn::Cas(item.cas()),
                MetaFlag::ReturnFlags => MetaReturn::ClientFlags(item.flags()),
                MetaFlag::ReturnHit => MetaReturn::Hit(before & FETCHED != 0),
                MetaFlag::ReturnKey => MetaReturn::Key {
                    key,
                    base64: flags.base64_key(),
                },
                MetaFlag::ReturnLastAccess => MetaReturn::LastAccess(u64::from(
                    secs.saturating_sub(Item::last_access(before)),
                )),
                MetaFlag::ReturnSize => MetaReturn::Size(item.value().len() as u64),
                MetaFlag::ReturnTtl => MetaReturn::Ttl(remaining_secs(item.expires_at(), now)),
                MetaFlag::Opaque(o) => MetaReturn::Opaque(o),
                _ => continue,
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
            MetaStatus::Value(item.value())
        } else {
            MetaStatus::Header
        };
        r.write(status, out);
    }

    /// Whether the item's remaining TTL is below the `R` threshold.
    fn recache_due(&self, item: &Item, flags: &MetaFlags<'_>, now: u64) -> bool {
        let Some(threshold) = flags.recache() else {
            return false;
        };
        match self.time.expiry(threshold, now) {
            // A threshold reaching past the end of the store clock covers
            // every deadline.
            e @ Expiry::After(_) => item.expires_at() != 0 && item.expires_at() < e.deadline(now),
            Expiry::Never | Expiry::Expired => false,
        }
    }

    /// `mg` with `T` (touch) or `N` (vivify): under the write lock.
    fn meta_get_write(&self, key: &[u8], flags: &MetaFlags<'_>, now: u64) -> Option<(Item, bool)> {
        let touch = flags.ttl().map(|t| self.time.expiry(t, now));
        let vivify = flags.vivify().map(|n| self.time.expiry(n, now));
        self.cache.compute(Bytes::copy_from_slice(key), |cur| {
            let (live, dead) = self.live(cur);
            match (live, vivify) {
                (Some(item), _) => {
                    let op = match touch {
                        None => Op::Nop,
                        Some(Expiry::Expired) => Op::Remove,
                        Some(e) => {
                            item.set_expires_at(e.deadline(now));
                            Op::SetTtl(e.ttl())
                        }
                    };
                    (op, Some((item.clone(), false)))
                }
                (None, Some(expiry)) => {
                    let state = self.fresh_state(now) | TOKEN_SENT;
                    let item = self.new_item(
                        Bytes::new(),
                        0,
                        flags.new_cas(),
                        expiry.deadline(now),
                        state,
                    );
                    let op = match expiry {
                        Expiry::Expired => nop(dead),
                        e => Op::PutWithTtl(item.clone(), e.ttl()),
                    };
                    (op, Some((item, true)))
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
        self.counters.bump(Counter::CmdSet);
        self.detail.record(key, DetailOp::Set);
        let mode = flags.set_mode().unwrap_or(SetMode::Set);
        let appending = matches!(mode, SetMode::Append | SetMode::Prepend);
        if !appending && !self.fits(key.len(), data.len()) {
            self.counters.bump(Counter::StoreNoMemory);
            self.forget(key);
            Response::ServerError("out of memory storing object").write_to(out);
            return;
        }
        let expiry = flags
            .ttl()
            .map_or(Expiry::Never, |t| self.time.expiry(t, now));
        let client_flags = flags.client_flags().unwrap_or(0);
        let value = Bytes::copy_from_slice(data);
        let fresh = |value: Bytes, expiry: Expiry| {
            self.new_item(
                value,
                client_flags,
                flags.new_cas(),
                expiry.deadline(now),
                self.fresh_state(now),
            )
        };
        let stored = |op: Op<Item>, item: Item| (op, Outcome::Done(Some(item)));
        let result = self.cache.compute(Bytes::copy_from_slice(key), |cur| {
            let (live, dead) = self.live(cur);
            match (mode, live) {
                (SetMode::Set | SetMode::Replace, live) if flags.compare_cas().is_some() => {
                    let cas = flags.compare_cas().unwrap_or(0);
                    match live {
                        None => {
                            self.counters.bump(Counter::CasMisses);
                            (nop(dead), Outcome::NotFound)
                        }
                        Some(old) if old.cas() == cas => {
                            self.counters.bump(Counter::CasHits);
                            let item = fresh(value, expiry);
                            stored(Self::put(expiry, item.clone()), item)
                        }
                        Some(old) if flags.invalidate() && cas < old.cas() => {
                            // An older writer may still store, but the item
                            // stays stale, with its TTL and token state.
                            self.counters.bump(Counter::CasHits);
                            let state = self.fresh_state(now) | old.sticky_bits() | STALE;
                            let item = self.new_item(
                                value,
                                client_flags,
                                flags.new_cas(),
                                old.expires_at(),
                                state,
                            );
                            stored(Op::Put(item.clone()), item)
                        }
                        Some(_) => {
                            self.counters.bump(Counter::CasBadval);
                            (Op::Nop, Outcome::Exists)
                        }
                    }
                }
                (SetMode::Replace, None) | (SetMode::Append | SetMode::Prepend, None)
                    if !(appending && flags.vivify().is_some()) =>
                {
                    (nop(dead), Outcome::NotStored)
                }
                (SetMode::Add, Some(_)) => (Op::Nop, Outcome::NotStored),
                (SetMode::Append | SetMode::Prepend, Some(old)) => {
                    if flags.compare_cas().is_some_and(|c| c != old.cas()) {
                        return (Op::Nop, Outcome::Exists);
                    }
                    let prepend = mode == SetMode::Prepend;
                    match self.concat(key.len(), old, data, prepend, flags.new_cas(), now) {
                        Some(item) => stored(Op::Put(item.clone()), item),
                        None => (Op::Nop, Outcome::NotStored),
                    }
                }
                (SetMode::Append | SetMode::Prepend, None) => {
                    // Vivify on a miss: store the data as a new item.
                    let expiry = self.time.expiry(flags.vivify().unwrap_or(0), now);
                    if !self.fits(key.len(), data.len()) {
                        return (nop(dead), Outcome::NotStored);
                    }
                    let item = fresh(value, expiry);
                    stored(Self::put(expiry, item.clone()), item)
                }
                _ => {
                    let item = fresh(value, expiry);
                    stored(Self::put(expiry, item.clone()), item)
                }
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
        let result = self.cache.compute(Bytes::copy_from_slice(key), |cur| {
            let (live, dead) = self.live(cur);
            let Some(old) = live else {
                self.counters.bump(Counter::DeleteMisses);
                return (nop(dead), Outcome::NotFound);
            };
            if flags.compare_cas().is_some_and(|c| c != old.cas()) {
                self.counters.bump(Counter::DeleteMisses);
                return (Op::Nop, Outcome::Exists);
            }
            if flags.invalidate() {
                // Mark stale: same value, new CAS, the win token up for grabs.
                let touch = flags.ttl().map(|t| self.time.expiry(t, now));
                let expires_at = touch.map_or(old.expires_at(), |e| e.deadline(now));
                let state = (old.state() | STALE) & !TOKEN_SENT;
                let item = self.new_item(
                    old.value().clone(),
                    old.flags(),
                    flags.new_cas(),
                    expires_at,
                    state,
                );
                let op = match touch {
                    None => Op::Put(item),
                    Some(Expiry::Expired) => Op::Remove,
                    Some(e) => Op::PutWithTtl(item, e.ttl()),
                };
                return (op, Outcome::Done(None));
            }
            self.counters.bump(Counter::DeleteHits);
            if flags.remove_value() {
                let item = self.new_item(
                    Bytes::new(),
                    flags.client_flags().unwrap_or(0),
                    flags.new_cas(),
                    old.expires_at(),
                    self.fresh_state(now),
                );
                return (Op::Put(item), Outcome::Done(None));
            }
            (Op::Remove, Outcome::Done(None))
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
        let mut number = 0;
        let result = self.cache.compute(Bytes::copy_from_slice(key), |cur| {
            let (live, dead) = self.live(cur);
            let Some(old) = live else {
                let Some(ttl) = flags.vivify() else {
                    self.counters.bump(misses);
                    return (nop(dead), Outcome::NotFound);
                };
                let expiry = self.time.expiry(ttl, now);
                number = flags.initial().unwrap_or(0);
                let value = Bytes::copy_from_slice(Digits::new(number).as_bytes());
                let item = self.new_item(
                    value,
                    0,
                    flags.new_cas(),
                    expiry.deadline(now),
                    self.fresh_state(now),
                );
                let op = match expiry {
                    Expiry::Expired => nop(dead),
                    e => Op::PutWithTtl(item.clone(), e.ttl()),
                };
                return (op, Outcome::Done(Some(item)));
            };
            if flags.compare_cas().is_some_and(|c| c != old.cas()) {
                return (Op::Nop, Outcome::Exists);
            }
            let Some((n, value)) = numeric::apply(op, old.value(), delta) else {
                return (Op::Nop, Outcome::NonNumeric);
            };
            number = n;
            self.counters.bump(hits);
            let touch = flags.ttl().map(|t| self.time.expiry(t, now));
            let expires_at = touch.map_or(old.expires_at(), |e| e.deadline(now));
            let state = self.fresh_state(now) | old.sticky_bits();
            let item = self.new_item(value, old.flags(), flags.new_cas(), expires_at, state);
            let op = match touch {
                None => Op::Put(item.clone()),
                Some(Expiry::Expired) => Op::Remove,
                Some(e) => Op::PutWithTtl(item.clone(), e.ttl()),
            };
            (op, Outcome::Done(Some(item)))
        });
        if let Outcome::Done(Some(item)) = &result {
            let digits = Digits::new(number);
            if flags.quiet() && !flags.return_value() {
                return;
            }
            let mut r = Returns::new();
            for flag in flags.iter() {
                r.push(match flag {
                    MetaFlag::ReturnCas => MetaReturn::Cas(item.cas()),
                    MetaFlag::ReturnTtl => MetaReturn::Ttl(remaining_secs(item.expires_at(), now)),
                    MetaFlag::Opaque(o) => MetaReturn::Opaque(o),
                    MetaFlag::ReturnKey => MetaReturn::Key {
                        key,
                        base64: flags.base64_key(),
                    },
                    _ => continue,
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
        };
        let quiet = flags.quiet()
            && match status {
                MetaStatus::Header => true,
                MetaStatus::NotFound => command == b'd',
                _ => false,
            };
        if quiet {
            return;
        }
        let mut r = Returns::opaque_and_key(flags, key);
        if let (Outcome::Done(Some(item)), b's') = (&result, command) {
            // `c` goes where the request put it.
            r = Returns::new();
            for flag in flags.iter() {
                match flag {
                    MetaFlag::Opaque(o) => r.push(MetaReturn::Opaque(o)),
                    MetaFlag::ReturnKey => r.push(MetaReturn::Key {
                        key,
                        base64: flags.base64_key(),
                    }),
                    MetaFlag::ReturnCas => r.push(MetaReturn::Cas(item.cas())),
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
        let Lookup::Hit(item) = self.lookup(key, false) else {
            Response::Meta {
                status: MetaStatus::Miss,
                flags: &[],
            }
            .write_to(out);
            return;
        };
        let state = item.state();
        Response::MetaDebug {
            key,
            base64,
            exp: remaining_secs(item.expires_at(), now),
            last_access: u64::from(
                self.time
                    .uptime_secs(now)
                    .saturating_sub(Item::last_access(state)),
            ),
            cas: item.cas(),
            fetched: state & FETCHED != 0,
            class: 1,
            size: (key.len() + item.value().len()) as u64 + u64::from(ITEM_OVERHEAD),
        }
        .write_to(out);
    }
}
