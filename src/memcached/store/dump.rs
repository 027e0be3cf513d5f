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

use super::item::{Block, Meta, FETCHED};
use super::output::Sink;
use super::{block_weight, Store};

/// Where a paused dump goes on: a shard and a place in its hash order (see
/// `Cache::visit_slice`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct DumpCursor {
    shard: usize,
    slot: u64,
}

/// Slots one visit of a shard looks at, about, under its read lock (see
/// `Cache::visit_slice`).
const SLICE: u32 = 512;

impl Store {
    /// Shows `f` each live item (its block, state and deadline on the store
    /// clock, 0 for none) from `from` on, a slice of a shard at a time under
    /// its read lock; `f` returns false to stop. Returns where to go on, or
    /// `None` once every item was shown.
    pub(super) fn walk_items(
        &self,
        from: DumpCursor,
        mut f: impl FnMut(&Block, &Meta, u64) -> bool,
    ) -> Option<DumpCursor> {
        let mut cursor = from;
        let mut going = true;
        while cursor.shard < self.cache.shard_count() {
            if !going {
                return Some(cursor);
            }
            let next = self.cache.visit_slice(
                cursor.shard,
                cursor.slot,
                SLICE,
                |block, meta, deadline, _| {
                    // After a stop, entries tied with the last one in the
                    // walk's order are still shown (and written); a tie that
                    // is not live must not undo the stop.
                    let ok = !self.is_live(block) || f(block, meta, deadline);
                    going &= ok;
                    going
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
        None
    }

    /// An item's expiry as unix seconds (rounded up), from its deadline on
    /// the store clock; `None` for an item that never expires.
    pub(super) fn expiry_unix_secs(&self, deadline: u64, now: u64) -> Option<u64> {
        (deadline != 0).then(|| self.time.unix_ms(deadline.max(now)).div_ceil(1000))
    }

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
        // Only lines are written here, so what is pending grows by exactly
        // what they add.
        let room = limit.map(|limit| limit.saturating_sub(out.pending()));
        if room == Some(0) {
            return Some(from);
        }
        let lines = out.lines();
        let start = lines.len();
        let paused = self.walk_items(from, |block, meta, deadline| {
            self.dump_line(block, meta, deadline, now, lines);
            room.is_none_or(|room| lines.len() - start < room)
        });
        if paused.is_none() {
            lines.extend_from_slice(b"END\r\n");
        }
        paused
    }

    fn dump_line(&self, block: &Block, meta: &Meta, deadline: u64, now: u64, out: &mut Vec<u8>) {
        out.extend_from_slice(b"key=");
        uri_encode(block.key(), out);
        let exp = self
            .expiry_unix_secs(deadline, now)
            .map_or(-1, |secs| i64::try_from(secs).unwrap_or(i64::MAX));
        let state = meta.state();
        let la = self.time.unix_secs_at(Meta::last_access(state));
        let fetched = if state & FETCHED != 0 { "yes" } else { "no" };
        let _ = writeln!(
            out,
            " exp={exp} la={la} cas={} fetch={fetched} cls=1 size={}",
            block.cas(),
            block_weight(block)
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
