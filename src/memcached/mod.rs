//! The memcached adapter (feature `memcached`).
//!
//! This module speaks memcached's ASCII protocols — the classic text commands
//! (`set`, `get`, `incr`, …) and the meta commands (`mg`, `ms`, `md`, `ma`,
//! `mn`, `me`) — and its binary protocol ([`binary`]), so that memcached
//! clients can use a larder cache. [`Store::process`] tells them apart by a
//! connection's first byte, as memcached does.
//!
//! It is split in two layers:
//!
//! - [`codec`]: a sans-IO parser and composer. It turns bytes into borrowed
//!   [`Request`]s and [`Response`]s into bytes. It never touches a socket, never
//!   blocks and never allocates per request (except for base64-decoded meta
//!   keys), so it can be driven by any I/O loop and fuzzed directly.
//! - [`Store`]: the executor. It runs a [`Request`] against a larder cache of
//!   memcached items and writes the reply; [`Store::process`] drives a whole
//!   input buffer (parse, execute, resynchronise after errors), which is all
//!   a server's connection loop needs. `examples/memcached_server.rs` is a
//!   complete (if simple) server in a few dozen lines.
//!
//! ```
//! use larder::memcached::{parse, Limits, Request, Response, Status};
//!
//! let limits = Limits::default();
//! let Ok(Status::Complete(request, consumed)) = parse(b"get apple\r\n", &limits) else {
//!     panic!("a whole get line parses");
//! };
//! assert_eq!(consumed, 11);
//! assert!(matches!(request, Request::Get { .. }));
//!
//! let mut out = Vec::new();
//! Response::End.write_to(&mut out);
//! assert_eq!(out, b"END\r\n");
//! ```
#![deny(unsafe_code)]

/// The memcached release whose behaviour the store reproduces (the
/// differential tests and memcached's own test suite run against it), and
/// what `version` answers by default: a plain `major.minor.micro`, as
/// clients that parse memcached's version expect.
pub const MEMCACHED_VERSION: &str = "1.6.18";

pub mod codec;
pub(crate) mod store;

pub use codec::binary;
pub use codec::{
    parse, parse_get_rest, parse_streaming, AdminCommand, ArithmeticMode, ArithmeticOp, ErrorKind,
    GetRest, Limits, MetaFlag, MetaFlags, MetaReturn, MetaStatus, ParseError, Request, Response,
    SetMode, Status, StoreCommand, Tokens, TokensIter, TooLarge,
};
pub use store::{
    Credentials, CredentialsError, Item, Outcome, Output, PageMoves, Progress, Protocols, Restored,
    ServerStats, Session, SnapshotStatus, StatWriter, Store, StoreConfig, StoreError,
    ITEM_OVERHEAD, MAX_ITEM_SIZE, MEMCACHED_ITEM_HEADER,
};
