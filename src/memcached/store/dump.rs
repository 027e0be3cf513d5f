//! `lru_crawler metadump`: one line per live item, written a slice of the
//! cache at a time so that a dump of millions of items pauses at the
//! session's output limit, as a long multi-get does, instead of building the
//! whole dump in memory. `memcached-tool HOST dump` and `keys` read it.
//!
//! Each line is memcached's: `key=<key, URI-encoded> exp=<expiry, unix
//! seconds, -1 for none> la=<last access, unix seconds> cas=<unique>
//! fetch=<yes|no> cls=1 size=<bytes charged>`, ended by `\n` alone; `END`
//! (with `\r\n`) follows the last. The order is the cache's own (memcached
//! walks its LRUs), and items changed while a dump runs may be shown or
//! not, as in memcached.

use std::io::Write as _;

use super::item::{Meta, ITEM_OVERHEAD};
use super::output::Sink;
use super::Store;

/// Where a paused dump goes on: a shard and a slot in it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct DumpCursor {
    shard: usize,
    slot: u32,
}

/// Slots one visit of a shard looks at, under its read lock.
const SLICE: u32 = 512;

impl Store {
    /// Writes dump lines from `from` until `out` holds `limit` bytes, then
    /// returns where to go on; or, once every item is written, writes `END`
    /// and returns `None`.
    pub(super) fn metadump<S: Sink>(
        &self,
        from: DumpCursor,
        limit: Option<usize>,
        out: &mut S,
    ) -> Option<DumpCursor> {
        let now = self.time.now_ms();
        let mut cursor = from;
        while cursor.shard < self.cache.shard_count() {
            if limit.is_some_and(|limit| out.pending() >= limit) {
                return Some(cursor);
            }
            let budget = limit.map(|limit| limit.saturating_sub(out.pending()));
            let lines = out.lines();
            let mut written = 0;
            let next = self.cache.visit_slice(
                cursor.shard,
                cursor.slot,
                SLICE,
                |block, meta, deadline, _| {
                    if !self.is_live(block) {
                        return true;
                    }
                    let at = lines.len();
                    self.dump_line(block, meta, deadline, now, lines);
                    written += lines.len() - at;
                    budget.is_none_or(|budget| written < budget)
                },
            );
            cursor = match next {
                Some(slot) => DumpCursor {
                    shard: cursor.shard,
                    slot,
                },
                None => DumpCursor {
                    shard: cursor.shard + 1,
                    slot: 0,
                },
            };
        }
        out.lines().extend_from_slice(b"END\r\n");
        None
    }

    fn dump_line(
        &self,
        block: &super::item::Block,
        meta: &Meta,
        deadline: u64,
        now: u64,
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(b"key=");
        uri_encode(block.key(), out);
        let exp = match deadline {
            0 => -1,
            d => i64::try_from(self.time.unix_ms(d.max(now)).div_ceil(1000)).unwrap_or(i64::MAX),
        };
        let la = self.time.unix_secs_at(Meta::last_access(meta.state()));
        let fetched = if meta.state() & super::item::FETCHED != 0 {
            "yes"
        } else {
            "no"
        };
        let size = block.cost() as u64 + u64::from(ITEM_OVERHEAD);
        let _ = writeln!(
            out,
            " exp={exp} la={la} cas={} fetch={fetched} cls=1 size={size}",
            block.cas()
        );
    }
}

/// Appends `key` with every byte but ASCII letters, digits and `-._~`
/// written as `%XX`, as memcached encodes keys in a dump.
fn uri_encode(key: &[u8], out: &mut Vec<u8>) {
    for &b in key {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::uri_encode;

    #[test]
    fn keys_are_uri_encoded_as_memcached_encodes_them() {
        let mut out = Vec::new();
        uri_encode(b"a-b.c_d~e f/%\x00\xff", &mut out);
        assert_eq!(out, b"a-b.c_d~e%20f%2F%25%00%FF");
    }
}
