//! memcached's tuning commands: `slabs`, `lru_crawler` and `lru`.
//!
//! larder has no slab classes, crawler thread or segmented LRU to tune, but
//! clients and tools send these commands, so they parse with memcached's
//! argument rules and error lines (as memcached 1.6 answers them), and the
//! executor gives each valid one a documented, harmless answer.
//!
//! memcached's rules differ per command: a wrong token count is `ERROR`; a
//! non-numeric `slabs` or `lru_crawler` argument is `CLIENT_ERROR bad command
//! line format`, but any bad `lru` argument is `ERROR`; only `slabs
//! automove` and `lru` honour a trailing `noreply`.

use bytes::BufMut;

use super::ascii::{parse_i64, parse_u64, put_i64, put_u64};
use super::error::{ErrorKind, ParseError};
use super::text::Args;

/// A parsed tuning command; see [`Request::Admin`](super::Request::Admin).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminCommand<'a> {
    /// `slabs automove <0|1|2>`.
    SlabsAutomove {
        /// The automove mode.
        mode: u8,
    },
    /// `slabs reassign <src> <dst>`: move a page between slab classes.
    SlabsReassign {
        /// Source class (memcached: `-1` for any).
        src: i64,
        /// Destination class.
        dst: i64,
    },
    /// `lru_crawler enable` (`true`) or `lru_crawler disable` (`false`).
    LruCrawlerEnable(bool),
    /// `lru_crawler sleep <microseconds>`; memcached refuses more than one
    /// second.
    LruCrawlerSleep(u64),
    /// `lru_crawler tocrawl <items>`.
    LruCrawlerToCrawl(u64),
    /// `lru_crawler crawl <classes>`: `all` or a comma-separated list of
    /// class ids (checked by the executor, which answers `BADCLASS`).
    LruCrawlerCrawl(&'a [u8]),
    /// `lru_crawler metadump <classes|all|hash>`.
    LruCrawlerMetadump(&'a [u8]),
    /// `lru mode flat` (`false`) or `lru mode segmented` (`true`).
    LruMode {
        /// `segmented`.
        segmented: bool,
    },
    /// `lru tune <percent hot> <percent warm> <max hot factor> <max warm
    /// factor>`, the four numbers as sent (validated).
    LruTune([&'a [u8]; 4]),
    /// `lru temp_ttl <seconds>`.
    LruTempTtl(i64),
    /// `replica promote`: make this replica a writable primary (larder's
    /// own; see docs/high-availability.md).
    ReplicaPromote,
    /// `replica sync <id|?> <offset>`: a replica asks for the replication
    /// stream, resuming history `id` at `offset` if the primary still can
    /// (`?`: it has none). The id is 40 hex digits.
    ReplicaSync {
        /// The history to resume; `None` for `?`.
        id: Option<[u8; 40]>,
        /// Where to resume it.
        offset: u64,
    },
}

/// Parses `slabs`, `lru_crawler` or `lru` (`name`); `words` are the
/// arguments. `None` if `name` is none of them.
pub(crate) fn parse<'a>(
    name: &[u8],
    args: Args<'a>,
    line_len: usize,
) -> Option<Result<(AdminCommand<'a>, bool), ParseError>> {
    let noreply = args.last_is_noreply();
    let (n, args) = (args.count, args.items);
    let fail = |kind| Err(ParseError::new(kind, line_len).with_noreply(noreply));
    let loud = |kind| Err(ParseError::new(kind, line_len));
    let result = match name {
        b"slabs" => match (args[0], n) {
            (b"automove", 2..) => match parse_u64(args[1]) {
                Some(mode @ 0..=2) => {
                    Ok((AdminCommand::SlabsAutomove { mode: mode as u8 }, noreply))
                }
                Some(_) => fail(ErrorKind::UnknownCommand),
                None => fail(ErrorKind::BadFormat),
            },
            (b"reassign", 3) => match (parse_i64(args[1]), parse_i64(args[2])) {
                (Some(src), Some(dst)) => Ok((AdminCommand::SlabsReassign { src, dst }, false)),
                _ => loud(ErrorKind::BadFormat),
            },
            _ => loud(ErrorKind::UnknownCommand),
        },
        b"lru_crawler" => match (args[0], n) {
            (b"enable", 1) => Ok((AdminCommand::LruCrawlerEnable(true), false)),
            (b"disable", 1) => Ok((AdminCommand::LruCrawlerEnable(false), false)),
            (b"sleep", 2) => match parse_u64(args[1]) {
                Some(micros) => Ok((AdminCommand::LruCrawlerSleep(micros), false)),
                None => loud(ErrorKind::BadFormat),
            },
            (b"tocrawl", 2) => match parse_u64(args[1]) {
                Some(items) => Ok((AdminCommand::LruCrawlerToCrawl(items), false)),
                None => loud(ErrorKind::BadFormat),
            },
            (b"crawl", 2) => Ok((AdminCommand::LruCrawlerCrawl(args[1]), false)),
            (b"metadump", 2) => Ok((AdminCommand::LruCrawlerMetadump(args[1]), false)),
            _ => loud(ErrorKind::UnknownCommand),
        },
        b"lru" => match (args[0], n) {
            (b"mode", 2..) if args[1] == b"flat" => {
                Ok((AdminCommand::LruMode { segmented: false }, noreply))
            }
            (b"mode", 2..) if args[1] == b"segmented" => {
                Ok((AdminCommand::LruMode { segmented: true }, noreply))
            }
            (b"tune", 5..) if valid_tune(&args[1..5]) => {
                let tune = [args[1], args[2], args[3], args[4]];
                Ok((AdminCommand::LruTune(tune), noreply))
            }
            (b"temp_ttl", 2..) => match parse_i64(args[1]) {
                Some(ttl) => Ok((AdminCommand::LruTempTtl(ttl), noreply)),
                None => fail(ErrorKind::UnknownCommand),
            },
            _ => fail(ErrorKind::UnknownCommand),
        },
        b"replica" => match (args[0], n) {
            (b"promote", 1) => Ok((AdminCommand::ReplicaPromote, false)),
            (b"sync", 3) => {
                let id = match args[1] {
                    b"?" => Some(None),
                    id => <[u8; 40]>::try_from(id)
                        .ok()
                        .filter(|id| id.iter().all(u8::is_ascii_hexdigit))
                        .map(Some),
                };
                match (id, parse_u64(args[2])) {
                    (Some(id), Some(offset)) => {
                        Ok((AdminCommand::ReplicaSync { id, offset }, false))
                    }
                    _ => loud(ErrorKind::BadFormat),
                }
            }
            _ => loud(ErrorKind::UnknownCommand),
        },
        _ => return None,
    };
    Some(result)
}

/// `lru tune`'s numbers: two percentages, a decimal factor (memcached reads
/// it with `strtod`), an integer factor.
fn valid_tune(args: &[&[u8]]) -> bool {
    let decimal = |t: &[u8]| {
        std::str::from_utf8(t)
            .ok()
            .is_some_and(|t| t.parse::<f64>().is_ok())
    };
    parse_u64(args[0]).is_some()
        && parse_u64(args[1]).is_some()
        && decimal(args[2])
        && parse_u64(args[3]).is_some()
}

impl AdminCommand<'_> {
    /// Writes the command line (without `noreply` and `\r\n`).
    pub(crate) fn write_to<B: BufMut>(&self, out: &mut B) {
        match self {
            AdminCommand::SlabsAutomove { mode } => {
                out.put_slice(b"slabs automove ");
                put_u64(out, u64::from(*mode));
            }
            AdminCommand::SlabsReassign { src, dst } => {
                out.put_slice(b"slabs reassign ");
                put_i64(out, *src);
                out.put_u8(b' ');
                put_i64(out, *dst);
            }
            AdminCommand::LruCrawlerEnable(true) => out.put_slice(b"lru_crawler enable"),
            AdminCommand::LruCrawlerEnable(false) => out.put_slice(b"lru_crawler disable"),
            AdminCommand::LruCrawlerSleep(micros) => {
                out.put_slice(b"lru_crawler sleep ");
                put_u64(out, *micros);
            }
            AdminCommand::LruCrawlerToCrawl(items) => {
                out.put_slice(b"lru_crawler tocrawl ");
                put_u64(out, *items);
            }
            AdminCommand::LruCrawlerCrawl(classes) => {
                out.put_slice(b"lru_crawler crawl ");
                out.put_slice(classes);
            }
            AdminCommand::LruCrawlerMetadump(classes) => {
                out.put_slice(b"lru_crawler metadump ");
                out.put_slice(classes);
            }
            AdminCommand::LruMode { segmented } => out.put_slice(if *segmented {
                b"lru mode segmented"
            } else {
                b"lru mode flat"
            }),
            AdminCommand::LruTune(args) => {
                out.put_slice(b"lru tune");
                for arg in args {
                    out.put_u8(b' ');
                    out.put_slice(arg);
                }
            }
            AdminCommand::LruTempTtl(ttl) => {
                out.put_slice(b"lru temp_ttl ");
                put_i64(out, *ttl);
            }
            AdminCommand::ReplicaPromote => out.put_slice(b"replica promote"),
            AdminCommand::ReplicaSync { id, offset } => {
                out.put_slice(b"replica sync ");
                match id {
                    Some(id) => out.put_slice(id),
                    None => out.put_u8(b'?'),
                }
                out.put_u8(b' ');
                put_u64(out, *offset);
            }
        }
    }
}
