//! memcached's binary protocol: framing, requests and responses, sans-IO.
//!
//! Every packet is a 24-byte header followed by a body of extras, key and
//! value, in that order. A request starts with the magic byte `0x80`, a
//! response with `0x81`; numbers are big-endian. [`parse`] reads one
//! request the way memcached 1.6 does, with the same `Complete`/`Partial`/
//! error contract as the text parser ([`super::parse`]):
//!
//! - `Ok(Status::Complete(request, consumed))`: a whole request.
//! - `Ok(Status::Partial)`: read more. Decided from the header alone, so a
//!   caller never buffers more than one request's declared body, and a body
//!   above [`Limits::max_item_size`] is never buffered at all: its request
//!   completes as soon as extras and key are in, with
//!   [`Value::TooLarge`], and the caller skips the value bytes
//!   ([`Request::swallow`]).
//! - `Err(error)`: memcached's reaction to a malformed header; see
//!   [`ErrorKind`] for which errors end the connection.
//!
//! A connection speaks binary when its first byte is `0x80`, and then stays
//! binary (memcached's rule); [`Store::process`](crate::memcached::Store::process)
//! applies it.
//!
//! The SASL commands (`SASL_LIST_MECHS`, `SASL_AUTH`, `SASL_STEP`) parse
//! with memcached's length rules; a store without SASL answers them
//! `Unknown command`, as a memcached started without `-S` does. The "range"
//! and vbucket commands memcached never answered are unknown. `VERBOSITY` is
//! an unknown command, as memcached 1.6 answers it.
//!
//! ```
//! use larder::memcached::binary::{self, Extras, Opcode, Request, Value};
//! use larder::memcached::{Limits, Status};
//!
//! let set = Request {
//!     opcode: Opcode::Set,
//!     key: b"k",
//!     extras: Extras::Store { flags: 7, exptime: 0 },
//!     value: Value::Data(b"hello"),
//!     cas: 0,
//!     opaque: 42,
//! };
//! let mut wire = Vec::new();
//! set.write_to(&mut wire);
//! assert_eq!(wire.len(), 24 + 8 + 1 + 5);
//! assert_eq!(binary::parse(&wire[..30], &Limits::default())?, Status::Partial);
//! assert_eq!(binary::parse(&wire, &Limits::default())?, Status::Complete(set, wire.len()));
//! # Ok::<(), binary::Error>(())
//! ```

use std::fmt;

use bytes::BufMut;

use super::{Limits, Status};

/// The first byte of every request.
pub const REQUEST_MAGIC: u8 = 0x80;
/// The first byte of every response.
pub const RESPONSE_MAGIC: u8 = 0x81;
/// Bytes in a request or response header.
pub const HEADER_LEN: usize = 24;
/// The extras value of an `INCREMENT`/`DECREMENT` expiration that means
/// "do not create a missing counter".
pub const NO_AUTOVIVIFY: u32 = 0xffff_ffff;

/// The binary commands larder answers (memcached 1.6's set).
///
/// ```
/// use larder::memcached::binary::Opcode;
///
/// assert_eq!(Opcode::from_u8(0x09), Some(Opcode::GetQ));
/// assert_eq!(Opcode::GetQ.base(), Opcode::Get);
/// assert!(Opcode::GetKQ.is_quiet() && Opcode::GetKQ.returns_key());
/// assert_eq!(Opcode::from_u8(0x1b), None); // VERBOSITY: unknown, as in memcached 1.6
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum Opcode {
    /// `0x00` GET.
    Get = 0x00,
    /// `0x01` SET.
    Set = 0x01,
    /// `0x02` ADD.
    Add = 0x02,
    /// `0x03` REPLACE.
    Replace = 0x03,
    /// `0x04` DELETE.
    Delete = 0x04,
    /// `0x05` INCREMENT.
    Increment = 0x05,
    /// `0x06` DECREMENT.
    Decrement = 0x06,
    /// `0x07` QUIT.
    Quit = 0x07,
    /// `0x08` FLUSH.
    Flush = 0x08,
    /// `0x09` GETQ: a miss sends nothing.
    GetQ = 0x09,
    /// `0x0a` NOOP.
    Noop = 0x0a,
    /// `0x0b` VERSION.
    Version = 0x0b,
    /// `0x0c` GETK: the response carries the key.
    GetK = 0x0c,
    /// `0x0d` GETKQ.
    GetKQ = 0x0d,
    /// `0x0e` APPEND.
    Append = 0x0e,
    /// `0x0f` PREPEND.
    Prepend = 0x0f,
    /// `0x10` STAT.
    Stat = 0x10,
    /// `0x11` SETQ.
    SetQ = 0x11,
    /// `0x12` ADDQ.
    AddQ = 0x12,
    /// `0x13` REPLACEQ.
    ReplaceQ = 0x13,
    /// `0x14` DELETEQ.
    DeleteQ = 0x14,
    /// `0x15` INCREMENTQ.
    IncrementQ = 0x15,
    /// `0x16` DECREMENTQ.
    DecrementQ = 0x16,
    /// `0x17` QUITQ.
    QuitQ = 0x17,
    /// `0x18` FLUSHQ.
    FlushQ = 0x18,
    /// `0x19` APPENDQ.
    AppendQ = 0x19,
    /// `0x1a` PREPENDQ.
    PrependQ = 0x1a,
    /// `0x1c` TOUCH.
    Touch = 0x1c,
    /// `0x1d` GAT (get and touch).
    Gat = 0x1d,
    /// `0x1e` GATQ.
    GatQ = 0x1e,
    /// `0x20` SASL_LIST_MECHS: the mechanisms a SASL server offers.
    SaslListMechs = 0x20,
    /// `0x21` SASL_AUTH: the key names the mechanism, the value carries its
    /// first message (for `PLAIN`, `authzid NUL user NUL password`).
    SaslAuth = 0x21,
    /// `0x22` SASL_STEP: the next message of a mechanism with several.
    SaslStep = 0x22,
    /// `0x23` GATK.
    GatK = 0x23,
    /// `0x24` GATKQ.
    GatKQ = 0x24,
}

/// Every opcode with its wire byte, in wire order.
const OPCODES: [(u8, Opcode); 35] = [
    (0x00, Opcode::Get),
    (0x01, Opcode::Set),
    (0x02, Opcode::Add),
    (0x03, Opcode::Replace),
    (0x04, Opcode::Delete),
    (0x05, Opcode::Increment),
    (0x06, Opcode::Decrement),
    (0x07, Opcode::Quit),
    (0x08, Opcode::Flush),
    (0x09, Opcode::GetQ),
    (0x0a, Opcode::Noop),
    (0x0b, Opcode::Version),
    (0x0c, Opcode::GetK),
    (0x0d, Opcode::GetKQ),
    (0x0e, Opcode::Append),
    (0x0f, Opcode::Prepend),
    (0x10, Opcode::Stat),
    (0x11, Opcode::SetQ),
    (0x12, Opcode::AddQ),
    (0x13, Opcode::ReplaceQ),
    (0x14, Opcode::DeleteQ),
    (0x15, Opcode::IncrementQ),
    (0x16, Opcode::DecrementQ),
    (0x17, Opcode::QuitQ),
    (0x18, Opcode::FlushQ),
    (0x19, Opcode::AppendQ),
    (0x1a, Opcode::PrependQ),
    (0x1c, Opcode::Touch),
    (0x1d, Opcode::Gat),
    (0x1e, Opcode::GatQ),
    (0x20, Opcode::SaslListMechs),
    (0x21, Opcode::SaslAuth),
    (0x22, Opcode::SaslStep),
    (0x23, Opcode::GatK),
    (0x24, Opcode::GatKQ),
];

/// [`Opcode::from_u8`]'s table.
const BY_BYTE: [Option<Opcode>; 256] = {
    let mut table = [None; 256];
    let mut i = 0;
    while i < OPCODES.len() {
        table[OPCODES[i].0 as usize] = Some(OPCODES[i].1);
        i += 1;
    }
    table
};

impl Opcode {
    /// Every opcode, in wire order.
    ///
    /// ```
    /// use larder::memcached::binary::Opcode;
    ///
    /// assert_eq!(Opcode::all().filter(|op| op.returns_key()).count(), 4);
    /// ```
    pub fn all() -> impl Iterator<Item = Opcode> {
        OPCODES.iter().map(|&(_, op)| op)
    }

    /// The opcode for a wire byte, if larder knows it.
    pub const fn from_u8(byte: u8) -> Option<Opcode> {
        // A 256-entry table built at compile time: one load per request.
        BY_BYTE[byte as usize]
    }

    /// The wire byte.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The loud twin of a quiet opcode (`GetQ` → `Get`, `GetKQ` → `GetK`,
    /// `GatKQ` → `GatK`, …); a loud opcode is its own base.
    pub const fn base(self) -> Opcode {
        match self {
            Opcode::GetQ => Opcode::Get,
            Opcode::GetKQ => Opcode::GetK,
            Opcode::SetQ => Opcode::Set,
            Opcode::AddQ => Opcode::Add,
            Opcode::ReplaceQ => Opcode::Replace,
            Opcode::DeleteQ => Opcode::Delete,
            Opcode::IncrementQ => Opcode::Increment,
            Opcode::DecrementQ => Opcode::Decrement,
            Opcode::QuitQ => Opcode::Quit,
            Opcode::FlushQ => Opcode::Flush,
            Opcode::AppendQ => Opcode::Append,
            Opcode::PrependQ => Opcode::Prepend,
            Opcode::GatQ => Opcode::Gat,
            Opcode::GatKQ => Opcode::GatK,
            loud => loud,
        }
    }

    /// Whether this is a quiet opcode: success is not answered (for the
    /// get family, a miss is not answered and a hit is). Errors always are.
    pub const fn is_quiet(self) -> bool {
        self.base() as u8 != self as u8
    }

    /// Whether a get-family response carries the key (`GETK`, `GETKQ`,
    /// `GATK`, `GATKQ`).
    pub const fn returns_key(self) -> bool {
        matches!(self.base(), Opcode::GetK | Opcode::GatK)
    }

    /// The extras layout this opcode's requests carry.
    const fn layout(self) -> Layout {
        match self.base() {
            Opcode::Get | Opcode::GetK | Opcode::Delete => Layout::Key,
            Opcode::Set | Opcode::Add | Opcode::Replace => Layout::Store,
            // A mechanism name and its message: as memcached checks them.
            Opcode::Append | Opcode::Prepend | Opcode::SaslAuth | Opcode::SaslStep => {
                Layout::Concat
            }
            Opcode::Increment | Opcode::Decrement => Layout::Arithmetic,
            Opcode::Touch | Opcode::Gat | Opcode::GatK => Layout::Touch,
            Opcode::Flush => Layout::Flush,
            Opcode::Stat => Layout::Stat,
            _ => Layout::Empty,
        }
    }
}

/// What memcached's dispatcher accepts for each opcode.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// No extras, no key, no value (`NOOP`, `VERSION`, `QUIT`).
    Empty,
    /// A key only.
    Key,
    /// Flags and exptime, key, value.
    Store,
    /// Key and value.
    Concat,
    /// Delta, initial, exptime; key.
    Arithmetic,
    /// Exptime; key.
    Touch,
    /// An optional exptime.
    Flush,
    /// An optional key (the group).
    Stat,
}

/// The extras of a request, decoded.
///
/// ```
/// use larder::memcached::binary::{self, Extras, Opcode, Request, NO_AUTOVIVIFY};
/// use larder::memcached::{Limits, Status};
///
/// let incr = Request {
///     key: b"hits",
///     extras: Extras::Arithmetic { delta: 1, initial: 0, exptime: NO_AUTOVIVIFY },
///     ..Request::bare(Opcode::Increment)
/// };
/// let mut wire = Vec::new();
/// incr.write_to(&mut wire);
/// assert_eq!(wire[4], 20, "extras length");
/// let Status::Complete(parsed, _) = binary::parse(&wire, &Limits::default())? else {
///     unreachable!()
/// };
/// assert_eq!(parsed.extras, incr.extras);
/// # Ok::<(), binary::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Extras {
    /// No extras.
    None,
    /// `SET`/`ADD`/`REPLACE`: client flags and expiration.
    Store {
        /// Client flags.
        flags: u32,
        /// Expiration with the text protocol's rules, read as a signed
        /// 32-bit number (negative: already expired).
        exptime: u32,
    },
    /// `INCREMENT`/`DECREMENT`.
    Arithmetic {
        /// Amount to add or subtract.
        delta: u64,
        /// Value to create a missing counter with.
        initial: u64,
        /// Expiration of a created counter; [`NO_AUTOVIVIFY`] means a
        /// missing counter is not created (`Not found`).
        exptime: u32,
    },
    /// `TOUCH`/`GAT` (the new expiration) or `FLUSH` (the delay).
    Expiry(u32),
}

impl Extras {
    fn len(&self) -> usize {
        match self {
            Extras::None => 0,
            Extras::Store { .. } => 8,
            Extras::Arithmetic { .. } => 20,
            Extras::Expiry(_) => 4,
        }
    }

    fn write_to<B: BufMut>(&self, out: &mut B) {
        match *self {
            Extras::None => {}
            Extras::Store { flags, exptime } => {
                out.put_u32(flags);
                out.put_u32(exptime);
            }
            Extras::Arithmetic {
                delta,
                initial,
                exptime,
            } => {
                out.put_u64(delta);
                out.put_u64(initial);
                out.put_u32(exptime);
            }
            Extras::Expiry(exptime) => out.put_u32(exptime),
        }
    }
}

/// A request's value.
///
/// ```
/// use larder::memcached::binary::Value;
///
/// assert_eq!(Value::Data(b"abc").len(), 3);
/// assert_eq!(Value::TooLarge(2 << 20).len(), 2 << 20);
/// assert!(Value::Data(b"").is_empty());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Value<'a> {
    /// The value bytes (empty for commands without a value).
    Data(&'a [u8]),
    /// A value longer than [`Limits::max_item_size`]: not part of the
    /// parsed bytes; the caller skips this many bytes of input (which may
    /// not have arrived yet) and answers `Too large.` (memcached's `E2BIG`).
    TooLarge(usize),
}

impl Value<'_> {
    /// The value's length on the wire.
    pub const fn len(&self) -> usize {
        match self {
            Value::Data(data) => data.len(),
            Value::TooLarge(len) => *len,
        }
    }

    /// Whether the value is empty.
    pub const fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One binary request; key and value borrow from the parsed input.
///
/// The header's data type and vbucket fields are not kept: memcached ignores
/// both, and [`Request::write_to`] writes zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Request<'a> {
    /// The command.
    pub opcode: Opcode,
    /// The key (empty for commands without one; the group for `STAT`).
    pub key: &'a [u8],
    /// The extras, as the opcode defines them.
    pub extras: Extras,
    /// The value (`SET`/`ADD`/`REPLACE`/`APPEND`/`PREPEND` and quiet forms).
    pub value: Value<'a>,
    /// The CAS field: for stores, deletes and counters, the unique the item
    /// must still have (0: any).
    pub cas: u64,
    /// Copied into the response untouched.
    pub opaque: u32,
}

impl Request<'_> {
    /// A request with no key, extras or value, CAS 0 and opaque 0 (the shape
    /// of `NOOP`, `VERSION`, `QUIT`, `FLUSH`).
    ///
    /// ```
    /// use larder::memcached::binary::{Opcode, Request};
    ///
    /// let mut out = Vec::new();
    /// Request::bare(Opcode::Noop).write_to(&mut out);
    /// assert_eq!(out[..2], [0x80, 0x0a]);
    /// ```
    pub const fn bare(opcode: Opcode) -> Request<'static> {
        Request {
            opcode,
            key: b"",
            extras: Extras::None,
            value: Value::Data(b""),
            cas: 0,
            opaque: 0,
        }
    }

    /// Bytes of input after the parsed ones that belong to this request and
    /// must be skipped: the value of a [`Value::TooLarge`], else 0.
    pub const fn swallow(&self) -> usize {
        match self.value {
            Value::TooLarge(len) => len,
            Value::Data(_) => 0,
        }
    }

    /// Writes the request as a client sends it. A [`Value::TooLarge`] writes
    /// the header announcing the value, without the value bytes.
    ///
    /// ```
    /// use larder::memcached::binary::{Extras, Opcode, Request, Value};
    ///
    /// let get = Request { key: b"k", opaque: 9, ..Request::bare(Opcode::GetK) };
    /// let mut out = Vec::new();
    /// get.write_to(&mut out);
    /// assert_eq!(out.len(), 25);
    /// assert_eq!(&out[..4], &[0x80, 0x0c, 0, 1]);
    /// assert_eq!(out[24], b'k');
    /// ```
    pub fn write_to<B: BufMut>(&self, out: &mut B) {
        let extras = self.extras.len();
        let body = extras + self.key.len() + self.value.len();
        out.put_u8(REQUEST_MAGIC);
        out.put_u8(self.opcode.as_u8());
        out.put_u16(u16::try_from(self.key.len()).unwrap_or(u16::MAX));
        out.put_u8(extras as u8);
        out.put_u8(0);
        out.put_u16(0);
        out.put_u32(u32::try_from(body).unwrap_or(u32::MAX));
        out.put_u32(self.opaque);
        out.put_u64(self.cas);
        self.extras.write_to(out);
        out.put_slice(self.key);
        if let Value::Data(data) = self.value {
            out.put_slice(data);
        }
    }
}

/// A response status code.
///
/// A plain `u16` wrapper so any server's status reads back; the constants
/// are the ones memcached sends, and [`StatusCode::message`] is the body
/// memcached sends with each error.
///
/// ```
/// use larder::memcached::binary::StatusCode;
///
/// assert_eq!(StatusCode::KEY_NOT_FOUND.0, 0x0001);
/// assert_eq!(StatusCode::KEY_NOT_FOUND.message(), "Not found");
/// assert_eq!(StatusCode::UNKNOWN_COMMAND.to_string(), "Unknown command");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct StatusCode(pub u16);

impl StatusCode {
    /// `0x0000`: success.
    pub const NO_ERROR: StatusCode = StatusCode(0x0000);
    /// `0x0001`: the key is not there.
    pub const KEY_NOT_FOUND: StatusCode = StatusCode(0x0001);
    /// `0x0002`: the key exists (`ADD`), or its CAS differs.
    pub const KEY_EXISTS: StatusCode = StatusCode(0x0002);
    /// `0x0003`: the value is larger than the item size limit.
    pub const TOO_LARGE: StatusCode = StatusCode(0x0003);
    /// `0x0004`: malformed request (bad extras, key or body length).
    pub const INVALID_ARGUMENTS: StatusCode = StatusCode(0x0004);
    /// `0x0005`: not stored (`APPEND`/`PREPEND` to a missing key, or a
    /// result too large).
    pub const NOT_STORED: StatusCode = StatusCode(0x0005);
    /// `0x0006`: `INCREMENT`/`DECREMENT` of a value that is not a number.
    pub const NON_NUMERIC: StatusCode = StatusCode(0x0006);
    /// `0x0020`: authentication failed; memcached also answers it to a
    /// `FLUSH` when flushing is turned off (`-F`), as larder does.
    pub const AUTH_ERROR: StatusCode = StatusCode(0x0020);
    /// `0x0021`: a SASL mechanism needs another step (`SASL_STEP`).
    pub const AUTH_CONTINUE: StatusCode = StatusCode(0x0021);
    /// `0x0081`: unknown opcode.
    pub const UNKNOWN_COMMAND: StatusCode = StatusCode(0x0081);
    /// `0x0082`: the item could not be stored for lack of memory.
    pub const OUT_OF_MEMORY: StatusCode = StatusCode(0x0082);
    /// `0x0086`: temporary failure (memcached's `ETMPFAIL`); larder sends it,
    /// with the body `read-only replica`, for a write to a replica.
    pub const TEMPORARY_FAILURE: StatusCode = StatusCode(0x0086);

    /// The body memcached sends with this status (empty for success and for
    /// codes it never sends).
    pub const fn message(self) -> &'static str {
        match self.0 {
            0x0001 => "Not found",
            0x0002 => "Data exists for key.",
            0x0003 => "Too large.",
            0x0004 => "Invalid arguments",
            0x0005 => "Not stored.",
            0x0006 => "Non-numeric server-side value for incr or decr",
            0x0020 => "Auth failure.",
            0x0081 => "Unknown command",
            0x0082 => "Out of memory",
            _ => "",
        }
    }
}

impl fmt::Display for StatusCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            "" => write!(f, "status {:#06x}", self.0),
            message => f.write_str(message),
        }
    }
}

/// One binary response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Response<'a> {
    /// The request's opcode byte, echoed (unknown ones too).
    pub opcode: u8,
    /// The status.
    pub status: StatusCode,
    /// The request's opaque, echoed.
    pub opaque: u32,
    /// The item's CAS unique (0 when there is none).
    pub cas: u64,
    /// Extras (client flags for the get family).
    pub extras: &'a [u8],
    /// The key (`GETK`-style responses, `STAT` names).
    pub key: &'a [u8],
    /// The value, an error message, a counter, a version or a stat value.
    pub value: &'a [u8],
}

impl<'a> Response<'a> {
    /// The error response memcached sends for `status` to a request with
    /// this opcode byte and opaque: the status's message as the body.
    ///
    /// ```
    /// use larder::memcached::binary::{Response, StatusCode};
    ///
    /// let r = Response::error(0x00, 7, StatusCode::KEY_NOT_FOUND);
    /// assert_eq!((r.value, r.cas, r.opaque), (&b"Not found"[..], 0, 7));
    /// ```
    pub const fn error(opcode: u8, opaque: u32, status: StatusCode) -> Response<'static> {
        Response {
            opcode,
            status,
            opaque,
            cas: 0,
            extras: b"",
            key: b"",
            value: status.message().as_bytes(),
        }
    }

    /// Writes the response as a server sends it.
    ///
    /// ```
    /// use larder::memcached::binary::{Response, StatusCode};
    ///
    /// let mut out = Vec::new();
    /// Response::error(0x0a, 0, StatusCode::NO_ERROR).write_to(&mut out);
    /// assert_eq!(out.len(), 24);
    /// assert_eq!(out[0], 0x81);
    /// ```
    pub fn write_to<B: BufMut>(&self, out: &mut B) {
        write_header(
            out,
            self.opcode,
            self.status,
            self.opaque,
            self.cas,
            (self.extras.len(), self.key.len(), self.value.len()),
        );
        out.put_slice(self.extras);
        out.put_slice(self.key);
        out.put_slice(self.value);
    }
}

/// A response header for a body of `(extras, key, value)` lengths, for
/// callers that write the body themselves (a value shared, not copied).
pub(crate) fn write_header<B: BufMut>(
    out: &mut B,
    opcode: u8,
    status: StatusCode,
    opaque: u32,
    cas: u64,
    (extras, key, value): (usize, usize, usize),
) {
    out.put_u8(RESPONSE_MAGIC);
    out.put_u8(opcode);
    out.put_u16(key as u16);
    out.put_u8(extras as u8);
    out.put_u8(0);
    out.put_u16(status.0);
    out.put_u32(u32::try_from(extras + key + value).unwrap_or(u32::MAX));
    out.put_u32(opaque);
    out.put_u64(cas);
}

/// How a malformed request ends, as memcached handles each case.
///
/// ```
/// use larder::memcached::binary::{self, ErrorKind, Opcode, Request};
/// use larder::memcached::Limits;
///
/// let mut wire = Vec::new();
/// Request { key: &[b'k'; 251], ..Request::bare(Opcode::Get) }.write_to(&mut wire);
/// let error = binary::parse(&wire, &Limits::default()).unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::KeyTooLong);
/// assert!(error.is_fatal());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The first byte of a complete header is not `0x80`. memcached closes
    /// without a reply.
    BadMagic,
    /// An opcode larder does not know: answered `Unknown command`, the body
    /// skipped, and the connection continues.
    UnknownCommand,
    /// Key and extras longer than the whole body: answered `Unknown command`,
    /// then the connection is closed.
    BadBodyLength,
    /// A key longer than [`Limits::max_key_len`]: `Invalid arguments`, then
    /// close.
    KeyTooLong,
    /// Extras, key or body lengths the opcode does not allow (a `GET` with
    /// extras, a `SET` without a key, a `NOOP` with a body, …): `Invalid
    /// arguments`, then close.
    InvalidArguments,
}

/// A malformed request, with memcached's reply and what the caller does
/// next.
///
/// - Send [`response`](Error::response) unless it is `None`.
/// - If [`is_fatal`](Error::is_fatal), close the connection after it.
/// - Otherwise drop [`discard`](Error::discard) bytes (possibly more than
///   were given; skip the rest as it arrives) and parse again.
///
/// ```
/// use larder::memcached::binary::{self, ErrorKind, Opcode, Request, StatusCode};
/// use larder::memcached::Limits;
///
/// let mut wire = Vec::new();
/// Request { key: b"k", ..Request::bare(Opcode::Get) }.write_to(&mut wire);
/// wire[1] = 0x40; // no such opcode
/// let error = binary::parse(&wire, &Limits::default()).unwrap_err();
/// assert_eq!(error.kind(), ErrorKind::UnknownCommand);
/// assert_eq!(error.discard(), 25);
/// assert!(!error.is_fatal());
/// let response = error.response().expect("memcached answers it");
/// assert_eq!((response.opcode, response.status), (0x40, StatusCode::UNKNOWN_COMMAND));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Error {
    kind: ErrorKind,
    opcode: u8,
    opaque: u32,
    discard: usize,
}

impl Error {
    /// What went wrong.
    pub const fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The status memcached answers with (`UNKNOWN_COMMAND` or
    /// `INVALID_ARGUMENTS`; meaningless for [`ErrorKind::BadMagic`]).
    pub const fn status(&self) -> StatusCode {
        match self.kind {
            ErrorKind::UnknownCommand | ErrorKind::BadBodyLength | ErrorKind::BadMagic => {
                StatusCode::UNKNOWN_COMMAND
            }
            ErrorKind::KeyTooLong | ErrorKind::InvalidArguments => StatusCode::INVALID_ARGUMENTS,
        }
    }

    /// The reply to send, `None` for a bad magic byte.
    pub const fn response(&self) -> Option<Response<'static>> {
        match self.kind {
            ErrorKind::BadMagic => None,
            _ => Some(Response::error(self.opcode, self.opaque, self.status())),
        }
    }

    /// The refused request's opcode byte.
    pub const fn opcode(&self) -> u8 {
        self.opcode
    }

    /// The refused request's opaque (0 for [`ErrorKind::BadMagic`]).
    pub const fn opaque(&self) -> u32 {
        self.opaque
    }

    /// Whether the connection must close after the reply.
    pub const fn is_fatal(&self) -> bool {
        !matches!(self.kind, ErrorKind::UnknownCommand)
    }

    /// Bytes from the start of the input that belong to the refused request
    /// (header and body; may exceed the input). Meaningless when fatal.
    pub const fn discard(&self) -> usize {
        self.discard
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ErrorKind::BadMagic => f.write_str("not a binary request (bad magic byte)"),
            _ => write!(f, "{} (opcode {:#04x})", self.status(), self.opcode),
        }
    }
}

impl std::error::Error for Error {}

/// The fields of a header, host order.
struct Header {
    opcode: u8,
    key_len: usize,
    extras_len: usize,
    body_len: usize,
    opaque: u32,
    cas: u64,
}

impl Header {
    fn read(input: &[u8]) -> Header {
        let u16_at = |i: usize| usize::from(u16::from_be_bytes([input[i], input[i + 1]]));
        let u32_at =
            |i: usize| u32::from_be_bytes([input[i], input[i + 1], input[i + 2], input[i + 3]]);
        let mut cas = [0u8; 8];
        cas.copy_from_slice(&input[16..24]);
        Header {
            opcode: input[1],
            key_len: u16_at(2),
            extras_len: usize::from(input[4]),
            body_len: u32_at(8) as usize,
            opaque: u32_at(12),
            cas: u64::from_be_bytes(cas),
        }
    }

    fn error(&self, kind: ErrorKind) -> Error {
        Error {
            kind,
            opcode: self.opcode,
            opaque: self.opaque,
            discard: HEADER_LEN.saturating_add(self.body_len),
        }
    }

    /// Whether memcached's dispatcher accepts these lengths for `layout`.
    fn fits(&self, layout: Layout) -> bool {
        let (key, extras, body) = (self.key_len, self.extras_len, self.body_len);
        match layout {
            Layout::Empty => key == 0 && extras == 0 && body == 0,
            Layout::Key => key > 0 && extras == 0 && body == key,
            Layout::Store => key > 0 && extras == 8 && body >= key + 8,
            Layout::Concat => key > 0 && extras == 0,
            Layout::Arithmetic => key > 0 && extras == 20 && body == key + 20,
            Layout::Touch => key > 0 && extras == 4 && body == key + 4,
            Layout::Flush => key == 0 && (extras == 0 || extras == 4) && body == extras,
            Layout::Stat => extras == 0 && body == key,
        }
    }
}

/// Parses the first binary request in `input`.
///
/// # Errors
///
/// An [`Error`] for a header memcached refuses; see [`ErrorKind`] for the
/// reply and whether the connection continues.
///
/// ```
/// use larder::memcached::binary::{self, Extras, Opcode, Request, Value};
/// use larder::memcached::{Limits, Status};
///
/// let limits = Limits { max_item_size: 4, ..Limits::default() };
/// let mut wire = Vec::new();
/// let set = Request {
///     key: b"k",
///     extras: Extras::Store { flags: 0, exptime: 0 },
///     value: Value::Data(b"too long"),
///     ..Request::bare(Opcode::Set)
/// };
/// set.write_to(&mut wire);
/// // Only the header, extras and key are needed to refuse the value.
/// let Status::Complete(request, used) = binary::parse(&wire[..33], &limits)? else {
///     unreachable!()
/// };
/// assert_eq!((request.value, used, request.swallow()), (Value::TooLarge(8), 33, 8));
/// # Ok::<(), binary::Error>(())
/// ```
pub fn parse<'a>(input: &'a [u8], limits: &Limits) -> Result<Status<Request<'a>>, Error> {
    // Like memcached, look at the magic byte once the whole header is in.
    if input.len() < HEADER_LEN {
        return Ok(Status::Partial);
    }
    if input[0] != REQUEST_MAGIC {
        return Err(Error {
            kind: ErrorKind::BadMagic,
            opcode: 0,
            opaque: 0,
            discard: 0,
        });
    }
    let header = Header::read(input);
    // memcached's order: lengths, then key length, then the opcode.
    if header.key_len + header.extras_len > header.body_len {
        return Err(header.error(ErrorKind::BadBodyLength));
    }
    if header.key_len > limits.max_key_len {
        return Err(header.error(ErrorKind::KeyTooLong));
    }
    let Some(opcode) = Opcode::from_u8(header.opcode) else {
        return Err(header.error(ErrorKind::UnknownCommand));
    };
    let layout = opcode.layout();
    if !header.fits(layout) {
        return Err(header.error(ErrorKind::InvalidArguments));
    }
    let head = header.extras_len + header.key_len;
    let value_len = header.body_len - head;
    let too_large = value_len > limits.max_item_size;
    let needed = HEADER_LEN + if too_large { head } else { header.body_len };
    if input.len() < needed {
        return Ok(Status::Partial);
    }
    let body = &input[HEADER_LEN..needed];
    let (extras, rest) = body.split_at(header.extras_len);
    let (key, value) = rest.split_at(header.key_len);
    let extras = decode_extras(layout, extras);
    let value = if too_large {
        Value::TooLarge(value_len)
    } else {
        Value::Data(value)
    };
    let request = Request {
        opcode,
        key,
        extras,
        value,
        cas: header.cas,
        opaque: header.opaque,
    };
    Ok(Status::Complete(request, needed))
}

/// Extras of a length [`Header::fits`] accepted for `layout`.
fn decode_extras(layout: Layout, extras: &[u8]) -> Extras {
    let u32_at =
        |i: usize| u32::from_be_bytes([extras[i], extras[i + 1], extras[i + 2], extras[i + 3]]);
    let u64_at = |i: usize| (u64::from(u32_at(i)) << 32) | u64::from(u32_at(i + 4));
    match (layout, extras.len()) {
        (Layout::Store, 8) => Extras::Store {
            flags: u32_at(0),
            exptime: u32_at(4),
        },
        (Layout::Arithmetic, 20) => Extras::Arithmetic {
            delta: u64_at(0),
            initial: u64_at(8),
            exptime: u32_at(16),
        },
        (Layout::Touch | Layout::Flush, 4) => Extras::Expiry(u32_at(0)),
        _ => Extras::None,
    }
}

/// Parses one response (for clients and tests).
///
/// # Errors
///
/// [`ErrorKind::BadMagic`] when the input does not start with `0x81`;
/// [`ErrorKind::BadBodyLength`] when key and extras overrun the body.
///
/// ```
/// use larder::memcached::binary::{self, Response, StatusCode};
/// use larder::memcached::Status;
///
/// let mut wire = Vec::new();
/// let sent = Response { key: b"k", value: b"v", ..Response::error(0x0c, 3, StatusCode::NO_ERROR) };
/// sent.write_to(&mut wire);
/// assert_eq!(binary::parse_response(&wire)?, Status::Complete(sent, wire.len()));
/// # Ok::<(), binary::Error>(())
/// ```
pub fn parse_response(input: &[u8]) -> Result<Status<Response<'_>>, Error> {
    match input.first() {
        None => return Ok(Status::Partial),
        Some(&RESPONSE_MAGIC) => {}
        Some(_) => {
            return Err(Error {
                kind: ErrorKind::BadMagic,
                opcode: 0,
                opaque: 0,
                discard: 0,
            })
        }
    }
    if input.len() < HEADER_LEN {
        return Ok(Status::Partial);
    }
    let header = Header::read(input);
    if header.key_len + header.extras_len > header.body_len {
        return Err(header.error(ErrorKind::BadBodyLength));
    }
    let Some(end) = HEADER_LEN.checked_add(header.body_len) else {
        return Err(header.error(ErrorKind::BadBodyLength));
    };
    if input.len() < end {
        return Ok(Status::Partial);
    }
    let (extras, rest) = input[HEADER_LEN..end].split_at(header.extras_len);
    let (key, value) = rest.split_at(header.key_len);
    let response = Response {
        opcode: header.opcode,
        status: StatusCode(u16::from_be_bytes([input[6], input[7]])),
        opaque: header.opaque,
        cas: header.cas,
        extras,
        key,
        value,
    };
    Ok(Status::Complete(response, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_opcode_maps_to_its_byte_and_back() {
        for (byte, op) in OPCODES {
            assert_eq!(op.as_u8(), byte);
            assert_eq!(Opcode::from_u8(byte), Some(op));
        }
        assert_eq!(Opcode::all().count(), 35);
    }

    #[test]
    fn quiet_opcodes_are_the_ones_with_a_q() {
        let quiet: Vec<_> = Opcode::all().filter(|op| op.is_quiet()).collect();
        assert_eq!(quiet.len(), 14);
        assert!(quiet.iter().all(|op| format!("{op:?}").ends_with('Q')));
    }

    #[test]
    fn a_request_split_anywhere_is_partial_until_whole() {
        let request = Request {
            key: b"counter",
            extras: Extras::Arithmetic {
                delta: 1,
                initial: 5,
                exptime: 0,
            },
            ..Request::bare(Opcode::Increment)
        };
        let mut wire = Vec::new();
        request.write_to(&mut wire);
        let limits = Limits::default();
        for cut in 0..wire.len() {
            assert_eq!(
                parse(&wire[..cut], &limits),
                Ok(Status::Partial),
                "cut {cut}"
            );
        }
        assert_eq!(
            parse(&wire, &limits),
            Ok(Status::Complete(request, wire.len()))
        );
    }
}
