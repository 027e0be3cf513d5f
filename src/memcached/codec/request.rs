//! Parsed requests, and composing them back into protocol bytes.
//!
//! Requests borrow keys, tokens and data blocks from the parsed input; only a
//! base64 (`b` flag) meta key is decoded into an owned buffer.

use std::borrow::Cow;

use bytes::BufMut;

use super::admin::AdminCommand;
use super::ascii::{put_i64, put_u64, Words};
use super::base64;
use super::meta::{MetaFlag, MetaFlags};

/// The storage commands of the text protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoreCommand {
    /// `set`: store unconditionally.
    Set,
    /// `add`: store only if the key is absent.
    Add,
    /// `replace`: store only if the key is present.
    Replace,
    /// `append`: add the data after the existing value.
    Append,
    /// `prepend`: add the data before the existing value.
    Prepend,
    /// `cas`: store only if the item's CAS value is still `unique`.
    Cas {
        /// The CAS value the client last saw (from `gets`).
        unique: u64,
    },
}

impl StoreCommand {
    /// The command's name on the wire.
    pub const fn name(&self) -> &'static str {
        match self {
            StoreCommand::Set => "set",
            StoreCommand::Add => "add",
            StoreCommand::Replace => "replace",
            StoreCommand::Append => "append",
            StoreCommand::Prepend => "prepend",
            StoreCommand::Cas { .. } => "cas",
        }
    }
}

/// `incr` or `decr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArithmeticOp {
    /// `incr`: add, wrapping at 2^64.
    Incr,
    /// `decr`: subtract, stopping at 0.
    Decr,
}

/// Space-separated tokens borrowed from a command line: the keys of a
/// retrieval command, or the arguments of `stats`.
///
/// Two `Tokens` are equal when they hold the same tokens, whatever the
/// spacing between them.
///
/// ```
/// use larder::memcached::Tokens;
///
/// let keys = Tokens::new(b"a  bb c");
/// assert_eq!(keys.len(), 3);
/// assert_eq!(keys.iter().collect::<Vec<_>>(), [&b"a"[..], b"bb", b"c"]);
/// assert_eq!(keys, Tokens::new(b"a bb c "));
/// ```
#[derive(Clone, Copy)]
pub struct Tokens<'a> {
    raw: &'a [u8],
}

impl<'a> Tokens<'a> {
    /// Tokens separated by spaces in `raw`.
    pub const fn new(raw: &'a [u8]) -> Self {
        Tokens { raw }
    }

    /// The tokens in order.
    pub fn iter(&self) -> TokensIter<'a> {
        TokensIter {
            words: Words::new(self.raw),
        }
    }

    /// The first token, if any.
    pub fn first(&self) -> Option<&'a [u8]> {
        self.iter().next()
    }

    /// Number of tokens (counts them).
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there are no tokens.
    pub fn is_empty(&self) -> bool {
        self.first().is_none()
    }
}

impl std::fmt::Debug for Tokens<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.iter().map(String::from_utf8_lossy))
            .finish()
    }
}

impl PartialEq for Tokens<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for Tokens<'_> {}

impl<'a> IntoIterator for Tokens<'a> {
    type Item = &'a [u8];
    type IntoIter = TokensIter<'a>;

    fn into_iter(self) -> TokensIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Tokens`].
#[derive(Clone, Debug)]
pub struct TokensIter<'a> {
    words: Words<'a>,
}

impl<'a> Iterator for TokensIter<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        self.words.next()
    }
}

/// Keys from the rest of a long `get`-family line; see
/// [`parse_get_rest`](super::parse_get_rest).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GetRest<'a> {
    /// The complete keys (possibly none), each checked like a get's.
    pub keys: Tokens<'a>,
    /// Whether the line ended after them: answer `END` now.
    pub last: bool,
}

/// A storage request whose declared size exceeds
/// [`Limits::max_item_size`](super::Limits).
///
/// The data block is not part of the parsed bytes: the caller must skip the
/// next [`swallow`](TooLarge::swallow) bytes of input (which may not have
/// arrived yet), answer `SERVER_ERROR object too large for cache` (unless
/// [`noreply`](TooLarge::noreply)), and — like memcached — remove the key's
/// old value when [`removes_old_value`](TooLarge::removes_old_value) says so,
/// so a stale value does not outlive a failed overwrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TooLarge<'a> {
    /// From a text storage command.
    Text {
        /// Which storage command.
        command: StoreCommand,
        /// The key.
        key: &'a [u8],
        /// Client flags.
        flags: u32,
        /// Expiration time as sent.
        exptime: i64,
        /// Declared data length.
        size: usize,
        /// The line ended in `noreply`.
        noreply: bool,
    },
    /// From `ms`.
    Meta {
        /// The (decoded) key.
        key: Cow<'a, [u8]>,
        /// The flags.
        flags: MetaFlags<'a>,
        /// Declared data length.
        size: usize,
    },
}

impl TooLarge<'_> {
    /// The key whose store was refused.
    pub fn key(&self) -> &[u8] {
        match self {
            TooLarge::Text { key, .. } => key,
            TooLarge::Meta { key, .. } => key,
        }
    }

    /// Bytes to skip after the command line: the data block and its `\r\n`.
    pub const fn swallow(&self) -> usize {
        match self {
            TooLarge::Text { size, .. } | TooLarge::Meta { size, .. } => *size + 2,
        }
    }

    /// Whether the error line should be suppressed (text `noreply`; meta
    /// errors are always sent).
    pub const fn noreply(&self) -> bool {
        match self {
            TooLarge::Text { noreply, .. } => *noreply,
            TooLarge::Meta { .. } => false,
        }
    }

    /// Whether memcached drops the key's current value: for `set` and for
    /// every `ms`.
    pub const fn removes_old_value(&self) -> bool {
        match self {
            TooLarge::Text { command, .. } => matches!(command, StoreCommand::Set),
            TooLarge::Meta { .. } => true,
        }
    }
}

/// One parsed request.
///
/// Keys and data borrow from the parsed input. Numbers are as sent; the
/// executor interprets them (exptime rules, limits, stats groups).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request<'a> {
    /// `set`/`add`/`replace`/`append`/`prepend`/`cas`.
    Store {
        /// Which storage command (with the CAS unique for `cas`).
        command: StoreCommand,
        /// The key.
        key: &'a [u8],
        /// Client flags (32-bit).
        flags: u32,
        /// Expiration: 0 never, up to 30 days relative, else absolute unix
        /// time, negative already expired.
        exptime: i64,
        /// The data block, without its `\r\n`.
        data: &'a [u8],
        /// Send no reply.
        noreply: bool,
    },
    /// `get`/`gets` (`touch` is `None`) and `gat`/`gats` (`touch` is the new
    /// exptime). `gat 10` with no keys is valid (memcached answers `END`).
    Get {
        /// Include CAS values (`gets`/`gats`).
        cas: bool,
        /// New exptime for `gat`/`gats`.
        touch: Option<i64>,
        /// The keys, at least one for `get`/`gets`.
        keys: Tokens<'a>,
    },
    /// The start of a `get`/`gets`/`gat`/`gats` line longer than
    /// [`Limits::max_get_line_len`](super::Limits): the keys that have
    /// fully arrived (possibly none). It consumes only those; the rest of the
    /// line must be read with [`parse_get_rest`](super::parse_get_rest)
    /// until that reports its end. No `END` is due until then.
    LongGet {
        /// Include CAS values (`gets`/`gats`).
        cas: bool,
        /// New exptime for `gat`/`gats`.
        touch: Option<i64>,
        /// The complete keys so far, each checked like a get's.
        keys: Tokens<'a>,
    },
    /// `delete <key> [0] [noreply]`.
    Delete {
        /// The key.
        key: &'a [u8],
        /// Send no reply.
        noreply: bool,
    },
    /// `incr`/`decr`.
    Arithmetic {
        /// Increment or decrement.
        op: ArithmeticOp,
        /// The key.
        key: &'a [u8],
        /// Amount.
        delta: u64,
        /// Send no reply.
        noreply: bool,
    },
    /// `touch <key> <exptime>`.
    Touch {
        /// The key.
        key: &'a [u8],
        /// New expiration time.
        exptime: i64,
        /// Send no reply.
        noreply: bool,
    },
    /// `flush_all [delay]`.
    FlushAll {
        /// Seconds (or unix time) until the flush takes effect.
        delay: Option<i64>,
        /// Send no reply.
        noreply: bool,
    },
    /// `version`.
    Version,
    /// `verbosity <level>`.
    Verbosity {
        /// Requested level.
        level: u32,
        /// Send no reply.
        noreply: bool,
    },
    /// `stats [args]`; the executor decides which groups exist (`settings`,
    /// `items`, `slabs`, `conns`, `reset`, `detail on|off|dump`, …) and
    /// answers `ERROR` for the rest.
    Stats {
        /// Arguments after `stats`; empty for general statistics.
        args: Tokens<'a>,
    },
    /// `quit`: close the connection.
    Quit,
    /// `shutdown [graceful]`; the executor decides whether it is enabled.
    Shutdown {
        /// `shutdown graceful`.
        graceful: bool,
    },
    /// `cache_memlimit <megabytes>`.
    CacheMemlimit {
        /// New limit in megabytes.
        megabytes: u32,
        /// Send no reply.
        noreply: bool,
    },
    /// `slabs …`, `lru_crawler …` or `lru …`: tuning memcached's memory
    /// layout; larder parses them with memcached's rules and answers them
    /// without effect (see the store's docs).
    Admin {
        /// Which command, with its arguments.
        command: AdminCommand<'a>,
        /// Send no reply (only `slabs automove` and `lru` take it).
        noreply: bool,
    },
    /// A storage request refused for its size; see [`TooLarge`].
    TooLarge(TooLarge<'a>),
    /// `mg <key> <flags>*`.
    MetaGet {
        /// The key, decoded if `b` was given.
        key: Cow<'a, [u8]>,
        /// The flags.
        flags: MetaFlags<'a>,
    },
    /// `ms <key> <datalen> <flags>*` and its data block.
    MetaSet {
        /// The key, decoded if `b` was given.
        key: Cow<'a, [u8]>,
        /// The flags; the mode is [`MetaFlags::set_mode`].
        flags: MetaFlags<'a>,
        /// The data block, without its `\r\n`.
        data: &'a [u8],
    },
    /// `md <key> <flags>*`.
    MetaDelete {
        /// The key, decoded if `b` was given.
        key: Cow<'a, [u8]>,
        /// The flags.
        flags: MetaFlags<'a>,
    },
    /// `ma <key> <flags>*`.
    MetaArithmetic {
        /// The key, decoded if `b` was given.
        key: Cow<'a, [u8]>,
        /// The flags; the mode is [`MetaFlags::arithmetic_mode`].
        flags: MetaFlags<'a>,
    },
    /// `mn`: answer `MN`.
    MetaNoop,
    /// `me <key> [b]`: debug information about one item.
    MetaDebug {
        /// The key, decoded if `base64`.
        key: Cow<'a, [u8]>,
        /// The key was sent base64-encoded.
        base64: bool,
    },
}

fn noreply<B: BufMut>(out: &mut B, noreply: bool) {
    if noreply {
        out.put_slice(b" noreply");
    }
}

fn meta_key<B: BufMut>(out: &mut B, key: &[u8], flags: &MetaFlags<'_>) {
    out.put_u8(b' ');
    if flags.base64_key() {
        base64::encode(key, out);
    } else {
        out.put_slice(key);
    }
}

fn meta_flags<B: BufMut>(out: &mut B, flags: &MetaFlags<'_>) {
    for flag in flags.iter() {
        out.put_u8(b' ');
        out.put_u8(flag.letter());
        match flag {
            MetaFlag::Opaque(v) => out.put_slice(v),
            MetaFlag::Vivify(v) | MetaFlag::Recache(v) | MetaFlag::Ttl(v) => put_i64(out, v),
            MetaFlag::CompareCas(v)
            | MetaFlag::NewCas(v)
            | MetaFlag::Initial(v)
            | MetaFlag::Delta(v) => put_u64(out, v),
            MetaFlag::ClientFlags(v) => put_u64(out, u64::from(v)),
            MetaFlag::Mode(m) => out.put_u8(m),
            _ => {}
        }
    }
}

fn store_line<B: BufMut>(
    out: &mut B,
    command: &StoreCommand,
    key: &[u8],
    flags: u32,
    exptime: i64,
    size: usize,
    no_reply: bool,
) {
    out.put_slice(command.name().as_bytes());
    out.put_u8(b' ');
    out.put_slice(key);
    out.put_u8(b' ');
    put_u64(out, u64::from(flags));
    out.put_u8(b' ');
    put_i64(out, exptime);
    out.put_u8(b' ');
    put_u64(out, size as u64);
    if let StoreCommand::Cas { unique } = command {
        out.put_u8(b' ');
        put_u64(out, *unique);
    }
    noreply(out, no_reply);
    out.put_slice(b"\r\n");
}

impl Request<'_> {
    /// Writes this request as a client would send it, data block included,
    /// so that [`parse`](super::parse) reads it back as an equal request.
    ///
    /// [`Request::LongGet`] writes the start of its line only, without a
    /// line end (it reads back as an equal request only once followed by
    /// more than `max_get_line_len` bytes of the line).
    ///
    /// [`Request::TooLarge`] writes only its command line (the data it
    /// announces was never part of the request).
    ///
    /// ```
    /// use larder::memcached::{Request, StoreCommand};
    ///
    /// let request = Request::Store {
    ///     command: StoreCommand::Set,
    ///     key: b"k",
    ///     flags: 5,
    ///     exptime: 0,
    ///     data: b"hello",
    ///     noreply: true,
    /// };
    /// let mut out = Vec::new();
    /// request.write_to(&mut out);
    /// assert_eq!(out, b"set k 5 0 5 noreply\r\nhello\r\n");
    /// ```
    pub fn write_to<B: BufMut>(&self, out: &mut B) {
        match self {
            Request::Store {
                command,
                key,
                flags,
                exptime,
                data,
                noreply,
            } => {
                store_line(out, command, key, *flags, *exptime, data.len(), *noreply);
                out.put_slice(data);
                out.put_slice(b"\r\n");
                return;
            }
            Request::Get { cas, touch, keys } | Request::LongGet { cas, touch, keys } => {
                let name: &[u8] = match (touch.is_some(), cas) {
                    (false, false) => b"get",
                    (false, true) => b"gets",
                    (true, false) => b"gat",
                    (true, true) => b"gats",
                };
                out.put_slice(name);
                if let Some(exptime) = touch {
                    out.put_u8(b' ');
                    put_i64(out, *exptime);
                }
                for key in keys.iter() {
                    out.put_u8(b' ');
                    out.put_slice(key);
                }
                if matches!(self, Request::LongGet { .. }) {
                    // The line goes on: the next key needs a separator.
                    out.put_u8(b' ');
                    return;
                }
            }
            Request::Delete { key, noreply: nr } => {
                out.put_slice(b"delete ");
                out.put_slice(key);
                noreply(out, *nr);
            }
            Request::Arithmetic {
                op,
                key,
                delta,
                noreply: nr,
            } => {
                out.put_slice(match op {
                    ArithmeticOp::Incr => b"incr ",
                    ArithmeticOp::Decr => b"decr ",
                });
                out.put_slice(key);
                out.put_u8(b' ');
                put_u64(out, *delta);
                noreply(out, *nr);
            }
            Request::Touch {
                key,
                exptime,
                noreply: nr,
            } => {
                out.put_slice(b"touch ");
                out.put_slice(key);
                out.put_u8(b' ');
                put_i64(out, *exptime);
                noreply(out, *nr);
            }
            Request::FlushAll { delay, noreply: nr } => {
                out.put_slice(b"flush_all");
                if let Some(delay) = delay {
                    out.put_u8(b' ');
                    put_i64(out, *delay);
                }
                noreply(out, *nr);
            }
            Request::Version => out.put_slice(b"version"),
            Request::Verbosity { level, noreply: nr } => {
                out.put_slice(b"verbosity ");
                put_u64(out, u64::from(*level));
                noreply(out, *nr);
            }
            Request::Stats { args } => {
                out.put_slice(b"stats");
                for arg in args.iter() {
                    out.put_u8(b' ');
                    out.put_slice(arg);
                }
            }
            Request::Quit => out.put_slice(b"quit"),
            Request::Shutdown { graceful } => {
                out.put_slice(b"shutdown");
                if *graceful {
                    out.put_slice(b" graceful");
                }
            }
            Request::CacheMemlimit {
                megabytes,
                noreply: nr,
            } => {
                out.put_slice(b"cache_memlimit ");
                put_u64(out, u64::from(*megabytes));
                noreply(out, *nr);
            }
            Request::Admin {
                command,
                noreply: nr,
            } => {
                command.write_to(out);
                noreply(out, *nr);
            }
            Request::TooLarge(TooLarge::Text {
                command,
                key,
                flags,
                exptime,
                size,
                noreply,
            }) => {
                store_line(out, command, key, *flags, *exptime, *size, *noreply);
                return;
            }
            Request::TooLarge(TooLarge::Meta { key, flags, size }) => {
                out.put_slice(b"ms");
                meta_key(out, key, flags);
                out.put_u8(b' ');
                put_u64(out, *size as u64);
                meta_flags(out, flags);
            }
            Request::MetaGet { key, flags } => {
                out.put_slice(b"mg");
                meta_key(out, key, flags);
                meta_flags(out, flags);
            }
            Request::MetaSet { key, flags, data } => {
                out.put_slice(b"ms");
                meta_key(out, key, flags);
                out.put_u8(b' ');
                put_u64(out, data.len() as u64);
                meta_flags(out, flags);
                out.put_slice(b"\r\n");
                out.put_slice(data);
                out.put_slice(b"\r\n");
                return;
            }
            Request::MetaDelete { key, flags } => {
                out.put_slice(b"md");
                meta_key(out, key, flags);
                meta_flags(out, flags);
            }
            Request::MetaArithmetic { key, flags } => {
                out.put_slice(b"ma");
                meta_key(out, key, flags);
                meta_flags(out, flags);
            }
            Request::MetaNoop => out.put_slice(b"mn"),
            Request::MetaDebug { key, base64 } => {
                out.put_slice(b"me ");
                if *base64 {
                    base64::encode(key, out);
                    out.put_slice(b" b");
                } else {
                    out.put_slice(key);
                }
            }
        }
        out.put_slice(b"\r\n");
    }
}
