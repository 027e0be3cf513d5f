//! The store's invariants under structured traffic. The input decodes into a
//! store configuration and a sequence of commands over a few keys (text
//! storage, `cas`, `incr`/`decr`, `touch`, `delete`, `get`/`gets`, the meta
//! commands, `flush_all`) and clock advances. Each command reaches
//! `Store::process` in reads cut where the input says.
//!
//! Checked after every read: `validate()`, and the weight within the memory
//! limit. Checked after every write answered `STORED` (or `HD` for `ms`): a
//! `get` or `mg` sent straight after it, with no other write between, returns
//! exactly the value written, so a write never evicts the item it writes.
#![no_main]

use std::time::Duration;

use larder::memcached::{Outcome, Session, Store, StoreConfig};
use larder::{Clock, ManualClock, Policy};
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

/// Keys `k0`..`k5`: few enough that commands keep meeting each other.
const KEYS: u8 = 6;

/// Unix time when each store starts.
const START: u64 = 1_700_000_000;

#[derive(Arbitrary, Debug)]
struct Input {
    setup: Setup,
    steps: Vec<Step>,
}

/// Picks the store's limits and policy from short tables.
#[derive(Arbitrary, Debug)]
struct Setup {
    memory: u8,
    item: u8,
    shards: u8,
    policy: u8,
}

#[derive(Arbitrary, Debug)]
struct Step {
    op: Op,
    /// Read size for this command's bytes; 0 sends them in one read.
    cut: u8,
    /// Whether a write is read back with `get` (else `mg`).
    read_with_get: bool,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Store {
        verb: Verb,
        key: u8,
        flags: u8,
        exp: Exp,
        value: Value,
    },
    Cas {
        key: u8,
        exp: Exp,
        value: Value,
        /// Use the last CAS unique seen for the key, when there is one.
        seen: bool,
        unique: u8,
    },
    Arith {
        key: u8,
        decr: bool,
        delta: u8,
    },
    Touch {
        key: u8,
        exp: Exp,
    },
    Delete {
        key: u8,
    },
    Get {
        key: u8,
        gets: bool,
    },
    MetaGet {
        key: u8,
        /// Bits: value, flags, TTL, CAS, touch, vivify, recache.
        flags: u8,
        exp: Exp,
    },
    MetaSet {
        key: u8,
        mode: Verb,
        value: Value,
        ttl: Option<Exp>,
        /// Compare against the last CAS unique seen for the key.
        compare: bool,
        invalidate: bool,
        vivify: bool,
    },
    MetaDelete {
        key: u8,
        invalidate: bool,
    },
    MetaArith {
        key: u8,
        decr: bool,
        delta: u8,
        vivify: bool,
    },
    FlushAll {
        delay: Option<u8>,
    },
    Advance {
        secs: u8,
    },
}

#[derive(Arbitrary, Clone, Copy, Debug)]
enum Verb {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
}

/// An exptime, in the forms memcached tells apart.
#[derive(Arbitrary, Clone, Copy, Debug)]
enum Exp {
    Never,
    Relative(u8),
    Negative,
    /// This many seconds after now plus one, as a unix time.
    AbsoluteFuture(u16),
    /// A unix time long past.
    AbsolutePast,
}

#[derive(Arbitrary, Clone, Copy, Debug)]
struct Value {
    len: u16,
    fill: u8,
    digits: bool,
}

/// What the read after a write must return.
enum Expect {
    Exactly(Vec<u8>),
    EndsWith(Vec<u8>),
    StartsWith(Vec<u8>),
}

impl Expect {
    fn matches(&self, value: &[u8]) -> bool {
        match self {
            Expect::Exactly(v) => value == v.as_slice(),
            Expect::EndsWith(v) => value.ends_with(v),
            Expect::StartsWith(v) => value.starts_with(v),
        }
    }
}

struct Driver {
    store: Store,
    hand: ManualClock,
    session: Session,
    buffered: Vec<u8>,
    memory_limit: u64,
    max_item_size: usize,
    /// Seconds the clock has moved since the store started.
    elapsed: u64,
    /// Each key's value if it is there and known exactly. Evictions, expiry
    /// and deletes only remove items, so a stale entry is never consulted:
    /// an append that succeeds found the item the last known write left.
    known: [Option<Vec<u8>>; KEYS as usize],
    /// The last CAS unique seen for each key.
    cas: [Option<u64>; KEYS as usize],
}

impl Driver {
    fn new(setup: &Setup) -> Driver {
        let memory_limit = [1024, 2048, 4096, 8192, 65536][usize::from(setup.memory % 5)];
        let max_item_size = [16, 100, 400, 1000, 3000][usize::from(setup.item % 5)];
        let shards = [1, 2, 4][usize::from(setup.shards % 3)];
        let policy = match setup.policy % 3 {
            0 => Policy::default(),
            1 => Policy::clock(),
            _ => Policy::lru(),
        };
        let (clock, hand) = Clock::manual();
        let store = Store::new(StoreConfig {
            memory_limit,
            max_item_size,
            shards: Some(shards),
            policy,
            clock,
            unix_time: Some(START),
            ..StoreConfig::default()
        })
        .expect("valid config");
        Driver {
            store,
            hand,
            session: Session::new().with_output_limit(1 << 20),
            buffered: Vec::new(),
            memory_limit,
            max_item_size,
            elapsed: 0,
            known: Default::default(),
            cas: [None; KEYS as usize],
        }
    }

    /// Sends `request` in reads of `cut` bytes; returns every reply byte.
    fn send(&mut self, request: &[u8], cut: u8) -> Vec<u8> {
        let size = if cut == 0 {
            request.len()
        } else {
            usize::from(cut)
        };
        let mut reply = Vec::new();
        for chunk in request.chunks(size.max(1)) {
            self.buffered.extend_from_slice(chunk);
            loop {
                let mut out = Vec::new();
                let progress = self
                    .store
                    .process(&mut self.session, &self.buffered, &mut out);
                assert!(progress.consumed <= self.buffered.len());
                self.buffered.drain(..progress.consumed);
                reply.extend_from_slice(&out);
                self.store.validate();
                let bytes = self.store.bytes();
                assert!(
                    bytes <= self.memory_limit,
                    "{bytes} bytes held, limit {}",
                    self.memory_limit
                );
                assert_eq!(progress.outcome, Outcome::Continue, "{reply:?}");
                if (progress.consumed == 0 && !self.session.is_resuming())
                    || self.buffered.is_empty()
                {
                    break;
                }
            }
        }
        assert!(
            self.buffered.is_empty(),
            "a whole request was left unconsumed: {:?}",
            String::from_utf8_lossy(&self.buffered)
        );
        reply
    }

    fn exptime(&self, exp: Exp) -> i64 {
        match exp {
            Exp::Never => 0,
            Exp::Relative(secs) => i64::from(secs),
            Exp::Negative => -1,
            Exp::AbsoluteFuture(secs) => (START + self.elapsed + 1 + u64::from(secs)) as i64,
            Exp::AbsolutePast => 60 * 60 * 24 * 30 + 1,
        }
    }

    fn value(&self, value: Value) -> Vec<u8> {
        // Up to a little past the item limit, so "too large" comes up too.
        let len = usize::from(value.len) % (self.max_item_size + 8);
        let (base, span) = if value.digits { (b'0', 10) } else { (b'a', 26) };
        (0..len)
            .map(|i| base + ((usize::from(value.fill) + i) % span) as u8)
            .collect()
    }

    fn run(&mut self, step: &Step) {
        match step.op {
            Op::Store {
                verb,
                key,
                flags,
                exp,
                value,
            } => {
                let k = key % KEYS;
                let data = self.value(value);
                let name = match verb {
                    Verb::Set => "set",
                    Verb::Add => "add",
                    Verb::Replace => "replace",
                    Verb::Append => "append",
                    Verb::Prepend => "prepend",
                };
                let line = format!("{name} k{k} {flags} {} {}", self.exptime(exp), data.len());
                let reply = self.send(&with_block(&line, &data), step.cut);
                if reply == b"STORED\r\n" {
                    // Append and prepend keep the item's exptime.
                    let alive = matches!(verb, Verb::Append | Verb::Prepend) || lives(exp);
                    self.stored(k, verb, data, alive, step);
                }
            }
            Op::Cas {
                key,
                exp,
                value,
                seen,
                unique,
            } => {
                let k = key % KEYS;
                let data = self.value(value);
                let unique = match self.cas[usize::from(k)] {
                    Some(cas) if seen => cas,
                    _ => u64::from(unique),
                };
                let line = format!("cas k{k} 0 {} {} {unique}", self.exptime(exp), data.len());
                let reply = self.send(&with_block(&line, &data), step.cut);
                if reply == b"STORED\r\n" {
                    self.stored(k, Verb::Set, data, lives(exp), step);
                }
            }
            Op::Arith { key, decr, delta } => {
                let k = key % KEYS;
                let verb = if decr { "decr" } else { "incr" };
                self.send(format!("{verb} k{k} {delta}\r\n").as_bytes(), step.cut);
                // The new value is padded to the old length: not tracked.
                self.known[usize::from(k)] = None;
            }
            Op::Touch { key, exp } => {
                let k = key % KEYS;
                self.send(
                    format!("touch k{k} {}\r\n", self.exptime(exp)).as_bytes(),
                    step.cut,
                );
            }
            Op::Delete { key } => {
                self.send(format!("delete k{}\r\n", key % KEYS).as_bytes(), step.cut);
            }
            Op::Get { key, gets } => {
                let k = key % KEYS;
                let verb = if gets { "gets" } else { "get" };
                let reply = self.send(format!("{verb} k{k}\r\n").as_bytes(), step.cut);
                if gets {
                    if let Some(cas) = reply_line(&reply)
                        .split(|&b| b == b' ')
                        .nth(4)
                        .and_then(number)
                    {
                        self.cas[usize::from(k)] = Some(cas);
                    }
                }
            }
            Op::MetaGet { key, flags, exp } => {
                let k = key % KEYS;
                let mut request = format!("mg k{k}");
                for (bit, flag) in ["v", "f", "t", "c", "T", "N", "R"].iter().enumerate() {
                    if flags & (1 << bit) != 0 {
                        request.push(' ');
                        request.push_str(flag);
                        if flag.chars().all(char::is_uppercase) {
                            request.push_str(&self.exptime(exp).to_string());
                        }
                    }
                }
                request.push_str("\r\n");
                let reply = self.send(request.as_bytes(), step.cut);
                if let Some(cas) = reply_line(&reply)
                    .split(|&b| b == b' ')
                    .find_map(|token| token.strip_prefix(b"c").and_then(number))
                {
                    self.cas[usize::from(k)] = Some(cas);
                }
                if flags & (1 << 5) != 0 {
                    // Vivify may have created an empty item.
                    self.known[usize::from(k)] = None;
                }
            }
            Op::MetaSet {
                key,
                mode,
                value,
                ttl,
                compare,
                invalidate,
                vivify,
            } => {
                let k = key % KEYS;
                let data = self.value(value);
                let mut line = format!("ms k{k} {}", data.len());
                line.push_str(match mode {
                    Verb::Set => " MS",
                    Verb::Add => " ME",
                    Verb::Replace => " MR",
                    Verb::Append => " MA",
                    Verb::Prepend => " MP",
                });
                if let Some(ttl) = ttl {
                    line.push_str(&format!(" T{}", self.exptime(ttl)));
                }
                if compare {
                    let cas = self.cas[usize::from(k)].unwrap_or(1);
                    line.push_str(&format!(" C{cas}"));
                }
                if invalidate {
                    line.push_str(" I");
                }
                if vivify {
                    line.push_str(" N30");
                }
                let reply = self.send(&with_block(&line, &data), step.cut);
                if reply.starts_with(b"HD") {
                    // Appends keep the item's TTL (a vivified one gets N30).
                    let alive =
                        matches!(mode, Verb::Append | Verb::Prepend) || ttl.is_none_or(lives);
                    if vivify && matches!(mode, Verb::Append | Verb::Prepend) {
                        // A missing item was created from this data alone.
                        self.known[usize::from(k)] = None;
                    }
                    self.stored(k, mode, data, alive, step);
                }
            }
            Op::MetaDelete { key, invalidate } => {
                let k = key % KEYS;
                let flag = if invalidate { " I" } else { "" };
                self.send(format!("md k{k}{flag}\r\n").as_bytes(), step.cut);
            }
            Op::MetaArith {
                key,
                decr,
                delta,
                vivify,
            } => {
                let k = key % KEYS;
                let mode = if decr { " MD" } else { "" };
                let vivify = if vivify { " N0 J7" } else { "" };
                self.send(
                    format!("ma k{k} D{delta}{mode}{vivify} v\r\n").as_bytes(),
                    step.cut,
                );
                self.known[usize::from(k)] = None;
            }
            Op::FlushAll { delay } => {
                let request = match delay {
                    Some(secs) => format!("flush_all {secs}\r\n"),
                    None => "flush_all\r\n".to_string(),
                };
                self.send(request.as_bytes(), step.cut);
            }
            Op::Advance { secs } => {
                self.elapsed += u64::from(secs);
                self.hand.advance(Duration::from_secs(u64::from(secs)));
            }
        }
    }

    /// After a write answered `STORED`/`HD`: updates what is known of the
    /// key and, unless the write expired the item at once, reads it back.
    fn stored(&mut self, k: u8, verb: Verb, data: Vec<u8>, alive: bool, step: &Step) {
        let slot = usize::from(k);
        let expect = match (verb, self.known[slot].take()) {
            (Verb::Set | Verb::Add | Verb::Replace, _) => Expect::Exactly(data),
            (Verb::Append, Some(mut old)) => {
                old.extend_from_slice(&data);
                Expect::Exactly(old)
            }
            (Verb::Prepend, Some(old)) => {
                let mut joined = data;
                joined.extend_from_slice(&old);
                Expect::Exactly(joined)
            }
            (Verb::Append, None) => Expect::EndsWith(data),
            (Verb::Prepend, None) => Expect::StartsWith(data),
        };
        if let Expect::Exactly(value) = &expect {
            self.known[slot] = Some(value.clone());
        }
        if !alive {
            return;
        }
        let (reply, head, len_at): (_, &[u8], _) = if step.read_with_get {
            (
                self.send(format!("get k{k}\r\n").as_bytes(), 0),
                b"VALUE",
                3,
            )
        } else {
            (self.send(format!("mg k{k} v\r\n").as_bytes(), 0), b"VA", 1)
        };
        let Some(value) = read_value(&reply, head, len_at) else {
            panic!(
                "k{k} was answered as stored, but the read straight after missed: {:?}",
                String::from_utf8_lossy(&reply)
            );
        };
        assert!(
            expect.matches(value),
            "k{k} reads back {:?}",
            String::from_utf8_lossy(value)
        );
    }
}

/// Whether an item stored with `exp` is still there at the same instant.
fn lives(exp: Exp) -> bool {
    !matches!(exp, Exp::Negative | Exp::AbsolutePast)
}

/// A command line and the data block that follows it.
fn with_block(line: &str, data: &[u8]) -> Vec<u8> {
    let mut request = Vec::with_capacity(line.len() + data.len() + 4);
    request.extend_from_slice(line.as_bytes());
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(data);
    request.extend_from_slice(b"\r\n");
    request
}

/// The first line of a reply, without its `\r\n`.
fn reply_line(reply: &[u8]) -> &[u8] {
    let end = reply
        .windows(2)
        .position(|w| w == b"\r\n")
        .unwrap_or(reply.len());
    &reply[..end]
}

fn number(token: &[u8]) -> Option<u64> {
    std::str::from_utf8(token).ok()?.parse().ok()
}

/// The data block of a `VALUE`/`VA` reply whose length is header token
/// `len_at`; `None` for a miss.
fn read_value<'a>(reply: &'a [u8], head: &[u8], len_at: usize) -> Option<&'a [u8]> {
    let line = reply_line(reply);
    let mut tokens = line.split(|&b| b == b' ');
    if tokens.next() != Some(head) {
        return None;
    }
    let len = usize::try_from(tokens.nth(len_at - 1).and_then(number)?).ok()?;
    let start = line.len() + 2;
    let value = reply.get(start..start + len);
    assert!(value.is_some(), "a short reply: {reply:?}");
    value
}

fuzz_target!(|input: Input| {
    let mut driver = Driver::new(&input.setup);
    for step in &input.steps {
        driver.run(step);
    }
});
