//! `stats detail`: per-prefix counts of gets, hits, sets and deletes, as
//! memcached keeps them.
//!
//! A key's prefix is what comes before its first `:`; keys without one are
//! not counted (memcached's rule). Counting is off until `stats detail on`;
//! while off, recording costs one relaxed load. While on, each counted
//! command takes one short mutex, so it is a debugging aid, not something to
//! leave on under load (memcached says the same). At most [`MAX_PREFIXES`]
//! prefixes are tracked; commands on further new prefixes are not counted,
//! so a client cycling through prefixes cannot grow the table without bound.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use crate::sync::{AtomicBool, Mutex};

/// Most distinct prefixes `stats detail` tracks.
pub(crate) const MAX_PREFIXES: usize = 4096;

/// The separator between a key's prefix and the rest.
const DELIMITER: u8 = b':';

/// What a command did, for its prefix's counts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum DetailOp {
    /// A get of one key (`hit`: it was found).
    Get { hit: bool },
    /// A store command.
    Set,
    /// A delete.
    Delete,
}

#[derive(Default, Clone, Copy)]
struct PrefixCounts {
    gets: u64,
    hits: u64,
    sets: u64,
    deletes: u64,
}

/// The per-prefix table and its on/off switch.
pub(crate) struct Detail {
    enabled: AtomicBool,
    prefixes: Mutex<HashMap<Box<[u8]>, PrefixCounts>>,
}

impl Detail {
    pub(crate) fn new() -> Detail {
        Detail {
            enabled: AtomicBool::new(false),
            prefixes: Mutex::new(HashMap::new()),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Relaxed)
    }

    pub(crate) fn set_enabled(&self, on: bool) {
        self.enabled.store(on, Relaxed);
    }

    /// Counts `op` on `key` when detail statistics are on.
    ///
    /// **Locking behaviour:** takes the table's mutex when on; never called
    /// with a shard lock held.
    #[inline]
    pub(crate) fn record(&self, key: &[u8], op: DetailOp) {
        if !self.enabled() {
            return;
        }
        let Some(end) = key.iter().position(|&b| b == DELIMITER) else {
            return;
        };
        let prefix = &key[..end];
        let mut prefixes = self.prefixes.lock();
        if prefixes.len() >= MAX_PREFIXES && !prefixes.contains_key(prefix) {
            return;
        }
        let counts = match prefixes.get_mut(prefix) {
            Some(counts) => counts,
            None => prefixes.entry(prefix.into()).or_default(),
        };
        match op {
            DetailOp::Get { hit } => {
                counts.gets += 1;
                counts.hits += u64::from(hit);
            }
            DetailOp::Set => counts.sets += 1,
            DetailOp::Delete => counts.deletes += 1,
        }
    }

    /// Writes one `PREFIX` line per prefix, in byte order (memcached's
    /// order is its hash table's, which no client relies on).
    pub(crate) fn dump(&self, out: &mut Vec<u8>) {
        let prefixes = self.prefixes.lock();
        let mut sorted: Vec<_> = prefixes.iter().collect();
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (prefix, c) in sorted {
            out.extend_from_slice(b"PREFIX ");
            out.extend_from_slice(prefix);
            let _ = write!(
                out,
                " get {} hit {} set {} del {}\r\n",
                c.gets, c.hits, c.sets, c.deletes
            );
        }
    }

    /// Forgets every prefix (`stats reset`).
    pub(crate) fn clear(&self) {
        self.prefixes.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dump(detail: &Detail) -> String {
        let mut out = Vec::new();
        detail.dump(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn nothing_is_counted_while_off() {
        let detail = Detail::new();
        detail.record(b"user:1", DetailOp::Set);
        assert_eq!(dump(&detail), "");
    }

    #[test]
    fn counts_go_to_the_text_before_the_first_colon() {
        let detail = Detail::new();
        detail.set_enabled(true);
        detail.record(b"user:1:name", DetailOp::Get { hit: true });
        detail.record(b"user:2", DetailOp::Get { hit: false });
        detail.record(b"user:2", DetailOp::Set);
        detail.record(b"page:9", DetailOp::Delete);
        detail.record(b"plain", DetailOp::Set);
        assert_eq!(
            dump(&detail),
            "PREFIX page get 0 hit 0 set 0 del 1\r\nPREFIX user get 2 hit 1 set 1 del 0\r\n"
        );
        detail.clear();
        assert_eq!(dump(&detail), "");
    }

    #[test]
    fn new_prefixes_past_the_cap_are_not_counted() {
        let detail = Detail::new();
        detail.set_enabled(true);
        for i in 0..MAX_PREFIXES + 10 {
            detail.record(format!("p{i}:k").as_bytes(), DetailOp::Set);
        }
        detail.record(b"p0:k", DetailOp::Set);
        let text = dump(&detail);
        assert_eq!(text.lines().count(), MAX_PREFIXES);
        assert!(text.contains("PREFIX p0 get 0 hit 0 set 2 del 0\r\n"));
    }
}
