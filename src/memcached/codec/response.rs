//! Composing replies. Every reply is written straight into a caller-owned
//! buffer (`Vec<u8>`, `BytesMut`, anything [`BufMut`]); nothing is allocated
//! besides that buffer's growth.

use bytes::BufMut;

use super::ascii::{put_i64, put_u64};
use super::base64;
use super::error::ErrorKind;

/// The status code of a meta reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaStatus<'a> {
    /// `HD`: success, no value.
    Header,
    /// `VA <size>`: success, followed by this value.
    Value(&'a [u8]),
    /// `EN`: miss (`mg`).
    Miss,
    /// `NF`: not found (`md`, `ma`, `ms` in replace/append modes).
    NotFound,
    /// `NS`: not stored.
    NotStored,
    /// `EX`: CAS mismatch.
    Exists,
    /// `MN`: the answer to `mn`.
    Noop,
}

impl MetaStatus<'_> {
    /// The two-letter code.
    pub const fn code(&self) -> &'static str {
        match self {
            MetaStatus::Header => "HD",
            MetaStatus::Value(_) => "VA",
            MetaStatus::Miss => "EN",
            MetaStatus::NotFound => "NF",
            MetaStatus::NotStored => "NS",
            MetaStatus::Exists => "EX",
            MetaStatus::Noop => "MN",
        }
    }
}

/// One flag in a meta reply. Emit them in the order the request's
/// [`MetaFlags::iter`](super::MetaFlags::iter) gives, then `W`/`X`/`Z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MetaReturn<'a> {
    /// `c<cas>`.
    Cas(u64),
    /// `f<flags>`.
    ClientFlags(u32),
    /// `h0`/`h1`.
    Hit(bool),
    /// `k<key>`; with `base64`, the key is encoded and ` b` follows.
    Key {
        /// The decoded key.
        key: &'a [u8],
        /// Echo it base64-encoded.
        base64: bool,
    },
    /// `l<seconds>` since last access.
    LastAccess(u64),
    /// `s<size>`.
    Size(u64),
    /// `t<seconds>` remaining, `-1` for no expiry.
    Ttl(i64),
    /// `O<opaque>` (the token without its `O`).
    Opaque(&'a [u8]),
    /// `W`: this client won the right to recache.
    Win,
    /// `X`: the item is stale.
    Stale,
    /// `Z`: a win token was already sent to another client.
    AlreadyWon,
}

impl MetaReturn<'_> {
    fn write<B: BufMut>(&self, out: &mut B) {
        out.put_u8(b' ');
        match *self {
            MetaReturn::Cas(v) => {
                out.put_u8(b'c');
                put_u64(out, v);
            }
            MetaReturn::ClientFlags(v) => {
                out.put_u8(b'f');
                put_u64(out, u64::from(v));
            }
            MetaReturn::Hit(hit) => out.put_slice(if hit { b"h1" } else { b"h0" }),
            MetaReturn::Key { key, base64: true } => {
                out.put_u8(b'k');
                base64::encode(key, out);
                out.put_slice(b" b");
            }
            MetaReturn::Key { key, base64: false } => {
                out.put_u8(b'k');
                out.put_slice(key);
            }
            MetaReturn::LastAccess(v) => {
                out.put_u8(b'l');
                put_u64(out, v);
            }
            MetaReturn::Size(v) => {
                out.put_u8(b's');
                put_u64(out, v);
            }
            MetaReturn::Ttl(v) => {
                out.put_u8(b't');
                put_i64(out, v);
            }
            MetaReturn::Opaque(v) => {
                out.put_u8(b'O');
                out.put_slice(v);
            }
            MetaReturn::Win => out.put_u8(b'W'),
            MetaReturn::Stale => out.put_u8(b'X'),
            MetaReturn::AlreadyWon => out.put_u8(b'Z'),
        }
    }
}

/// One reply, text or meta.
///
/// ```
/// use larder::memcached::{MetaReturn, MetaStatus, Response};
///
/// let mut out = Vec::new();
/// Response::Value { key: b"k", flags: 0, data: b"hi", cas: Some(7) }.write_to(&mut out);
/// Response::End.write_to(&mut out);
/// Response::Meta {
///     status: MetaStatus::Value(b"hi"),
///     flags: &[MetaReturn::Ttl(-1), MetaReturn::Opaque(b"1")],
/// }
/// .write_to(&mut out);
/// assert_eq!(out, &b"VALUE k 0 2 7\r\nhi\r\nEND\r\nVA 2 t-1 O1\r\nhi\r\n"[..]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Response<'a> {
    /// `STORED`.
    Stored,
    /// `NOT_STORED`.
    NotStored,
    /// `EXISTS`.
    Exists,
    /// `NOT_FOUND`.
    NotFound,
    /// `DELETED`.
    Deleted,
    /// `TOUCHED`.
    Touched,
    /// `OK`.
    Ok,
    /// `END`.
    End,
    /// `RESET` (the answer to `stats reset`).
    Reset,
    /// `VALUE <key> <flags> <bytes> [<cas>]` and the data block.
    Value {
        /// The key.
        key: &'a [u8],
        /// Client flags.
        flags: u32,
        /// The value.
        data: &'a [u8],
        /// CAS value, for `gets`/`gats`.
        cas: Option<u64>,
    },
    /// The result of `incr`/`decr`.
    Number(u64),
    /// `VERSION <version>`.
    Version(&'a str),
    /// `STAT <name> <value>`.
    Stat {
        /// Statistic name.
        name: &'a str,
        /// Its value, preformatted.
        value: &'a str,
    },
    /// `STAT <name> <number>`, formatted without allocating.
    StatNumber {
        /// Statistic name.
        name: &'a str,
        /// Its value.
        value: u64,
    },
    /// The line for a parse or execution error, e.g.
    /// `SERVER_ERROR object too large for cache`.
    Error(ErrorKind),
    /// `CLIENT_ERROR <message>`.
    ClientError(&'a str),
    /// `SERVER_ERROR <message>`.
    ServerError(&'a str),
    /// Any other line, written as given plus `\r\n` (for example
    /// `MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m`).
    Line(&'a str),
    /// A meta reply: status code, return flags, and the value for `VA`.
    Meta {
        /// The status code (and value).
        status: MetaStatus<'a>,
        /// Return flags, written after the code (and size) in this order.
        flags: &'a [MetaReturn<'a>],
    },
    /// The answer to `me`: `ME <key> exp=… la=… cas=… fetch=… cls=… size=…`.
    MetaDebug {
        /// The decoded key.
        key: &'a [u8],
        /// Echo it base64-encoded (it was sent with `b`).
        base64: bool,
        /// Seconds until expiry, `-1` for none.
        exp: i64,
        /// Seconds since last access.
        last_access: u64,
        /// CAS value.
        cas: u64,
        /// Whether the item was fetched since it was stored.
        fetched: bool,
        /// Size class (memcached's slab class; any small number here).
        class: u32,
        /// Item size in bytes.
        size: u64,
    },
}

impl Response<'_> {
    /// Appends this reply, `\r\n` included, to `out`.
    pub fn write_to<B: BufMut>(&self, out: &mut B) {
        match *self {
            Response::Stored => out.put_slice(b"STORED"),
            Response::NotStored => out.put_slice(b"NOT_STORED"),
            Response::Exists => out.put_slice(b"EXISTS"),
            Response::NotFound => out.put_slice(b"NOT_FOUND"),
            Response::Deleted => out.put_slice(b"DELETED"),
            Response::Touched => out.put_slice(b"TOUCHED"),
            Response::Ok => out.put_slice(b"OK"),
            Response::End => out.put_slice(b"END"),
            Response::Reset => out.put_slice(b"RESET"),
            Response::Value {
                key,
                flags,
                data,
                cas,
            } => {
                value_header(out, key, flags, data.len(), cas);
                out.put_slice(data);
            }
            Response::Number(n) => put_u64(out, n),
            Response::Version(v) => {
                out.put_slice(b"VERSION ");
                out.put_slice(v.as_bytes());
            }
            Response::Stat { name, value } => {
                out.put_slice(b"STAT ");
                out.put_slice(name.as_bytes());
                out.put_u8(b' ');
                out.put_slice(value.as_bytes());
            }
            Response::StatNumber { name, value } => {
                out.put_slice(b"STAT ");
                out.put_slice(name.as_bytes());
                out.put_u8(b' ');
                put_u64(out, value);
            }
            Response::Error(kind) => out.put_slice(kind.as_str().as_bytes()),
            Response::ClientError(message) => {
                out.put_slice(b"CLIENT_ERROR ");
                out.put_slice(message.as_bytes());
            }
            Response::ServerError(message) => {
                out.put_slice(b"SERVER_ERROR ");
                out.put_slice(message.as_bytes());
            }
            Response::Line(line) => out.put_slice(line.as_bytes()),
            Response::Meta { status, flags } => {
                out.put_slice(status.code().as_bytes());
                if let MetaStatus::Value(data) = status {
                    out.put_u8(b' ');
                    put_u64(out, data.len() as u64);
                }
                for flag in flags {
                    flag.write(out);
                }
                if let MetaStatus::Value(data) = status {
                    out.put_slice(b"\r\n");
                    out.put_slice(data);
                }
            }
            Response::MetaDebug {
                key,
                base64: encoded,
                exp,
                last_access,
                cas,
                fetched,
                class,
                size,
            } => {
                out.put_slice(b"ME ");
                if encoded {
                    base64::encode(key, out);
                } else {
                    out.put_slice(key);
                }
                out.put_slice(b" exp=");
                put_i64(out, exp);
                out.put_slice(b" la=");
                put_u64(out, last_access);
                out.put_slice(b" cas=");
                put_u64(out, cas);
                out.put_slice(if fetched { b" fetch=yes" } else { b" fetch=no" });
                out.put_slice(b" cls=");
                put_u64(out, u64::from(class));
                out.put_slice(b" size=");
                put_u64(out, size);
            }
        }
        out.put_slice(b"\r\n");
    }
}

/// The `VALUE <key> <flags> <bytes> [<cas>]\r\n` line before a value's data
/// (for callers that send the data from elsewhere).
pub(crate) fn value_header<B: BufMut>(
    out: &mut B,
    key: &[u8],
    flags: u32,
    len: usize,
    cas: Option<u64>,
) {
    out.put_slice(b"VALUE ");
    out.put_slice(key);
    out.put_u8(b' ');
    put_u64(out, u64::from(flags));
    out.put_u8(b' ');
    put_u64(out, len as u64);
    if let Some(cas) = cas {
        out.put_u8(b' ');
        put_u64(out, cas);
    }
    out.put_slice(b"\r\n");
}
