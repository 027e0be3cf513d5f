//! `stats` and its groups, with memcached's field names.

use std::fmt::Display;
use std::io::Write as _;
use std::sync::atomic::Ordering::Relaxed;

use super::counters::Counter;
use super::dump::DumpCursor;
use super::item::Meta;
use super::Store;
use crate::memcached::{Response, Tokens};

/// Statistics that belong to the server rather than the store (process,
/// connections, threads), supplied through
/// [`StoreConfig::server_stats`](super::StoreConfig::server_stats).
///
/// Each method writes `STAT` lines with a [`StatWriter`]; the defaults write
/// nothing. The store itself reports `pid`, `uptime`, `time`, `version`,
/// `pointer_size`, the command and item counters, and the memory figures.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
/// use larder::memcached::{ServerStats, Session, StatWriter, Store, StoreConfig};
///
/// struct Connections(AtomicU64);
/// impl ServerStats for Connections {
///     fn general(&self, stats: &mut StatWriter<'_>) {
///         stats.number("curr_connections", self.0.load(Ordering::Relaxed));
///     }
/// }
///
/// let store = Store::new(StoreConfig {
///     server_stats: Some(Arc::new(Connections(AtomicU64::new(3)))),
///     ..StoreConfig::default()
/// })?;
/// let mut out = Vec::new();
/// let _ = store.process(&mut Session::new(), b"stats\r\n", &mut out);
/// assert!(String::from_utf8_lossy(&out).contains("STAT curr_connections 3\r\n"));
/// # Ok::<(), larder::memcached::StoreError>(())
/// ```
pub trait ServerStats: Send + Sync {
    /// Lines for plain `stats`, written after `pid`, `uptime`, `time`,
    /// `version` and `pointer_size` (memcached puts `rusage_*`,
    /// `curr_connections`, `total_connections`, `threads`, … here).
    fn general(&self, stats: &mut StatWriter<'_>) {
        let _ = stats;
    }

    /// Lines for `stats settings`, after the store's (`maxconns`,
    /// `tcpport`, `num_threads`, …).
    fn settings(&self, stats: &mut StatWriter<'_>) {
        let _ = stats;
    }

    /// The Unix domain socket the server listens on instead of TCP, and the
    /// socket file's mode (memcached's `-s` and `-a`): `stats settings`
    /// reports them as `domain_socket` and `umask`. Default `None`
    /// (`domain_socket NULL`, `umask 700`, memcached's default mask).
    fn domain_socket(&self) -> Option<(&std::path::Path, u32)> {
        None
    }

    /// Lines for `stats conns` (the store has none of its own).
    fn conns(&self, stats: &mut StatWriter<'_>) {
        let _ = stats;
    }

    /// Called by `stats reset` after the store zeroes its counters: zero
    /// the server's counters too (totals, not gauges such as
    /// `curr_connections`).
    fn reset(&self) {}
}

/// Writes `STAT <name> <value>` lines into a reply.
#[derive(Debug)]
pub struct StatWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> StatWriter<'a> {
    /// A writer appending to `out`.
    ///
    /// ```
    /// let mut out = Vec::new();
    /// let mut stats = larder::memcached::StatWriter::new(&mut out);
    /// stats.number("threads", 4);
    /// stats.text("evictions", "on");
    /// stats.display("rusage_user", format_args!("{}.{:06}", 1, 500));
    /// assert_eq!(out, b"STAT threads 4\r\nSTAT evictions on\r\nSTAT rusage_user 1.000500\r\n");
    /// ```
    pub fn new(out: &'a mut Vec<u8>) -> Self {
        StatWriter { out }
    }

    /// `STAT <name> <value>` for a number.
    pub fn number(&mut self, name: &str, value: u64) {
        Response::StatNumber { name, value }.write_to(self.out);
    }

    /// `STAT <name> <value>` for text.
    pub fn text(&mut self, name: &str, value: &str) {
        Response::Stat { name, value }.write_to(self.out);
    }

    /// `STAT <name> <value>` for anything that displays.
    pub fn display(&mut self, name: &str, value: impl Display) {
        let _ = write!(self.out, "STAT {name} {value}\r\n");
    }
}

/// The counters `stats` reports, in memcached's order.
const COMMAND_COUNTERS: [(&str, Counter); 24] = [
    ("cmd_get", Counter::CmdGet),
    ("cmd_set", Counter::CmdSet),
    ("cmd_flush", Counter::CmdFlush),
    ("cmd_touch", Counter::CmdTouch),
    ("cmd_meta", Counter::CmdMeta),
    ("get_hits", Counter::GetHits),
    ("get_misses", Counter::GetMisses),
    ("get_expired", Counter::GetExpired),
    ("get_flushed", Counter::GetFlushed),
    ("delete_misses", Counter::DeleteMisses),
    ("delete_hits", Counter::DeleteHits),
    ("incr_misses", Counter::IncrMisses),
    ("incr_hits", Counter::IncrHits),
    ("decr_misses", Counter::DecrMisses),
    ("decr_hits", Counter::DecrHits),
    ("cas_misses", Counter::CasMisses),
    ("cas_hits", Counter::CasHits),
    ("cas_badval", Counter::CasBadval),
    ("touch_hits", Counter::TouchHits),
    ("touch_misses", Counter::TouchMisses),
    ("store_too_large", Counter::StoreTooLarge),
    ("store_no_memory", Counter::StoreNoMemory),
    ("auth_cmds", Counter::AuthCmds),
    ("auth_errors", Counter::AuthErrors),
];

impl Store {
    /// The `stats` group named `group` (empty: the general one) as
    /// `STAT name value` lines and `END`, as `stats <group>` answers it,
    /// whatever the protocols and authentication of the store's
    /// connections (for the server's metrics endpoint).
    #[cfg(feature = "server")]
    pub(crate) fn stats_lines(&self, group: &[u8]) -> Vec<u8> {
        let now = self.time.now_ms();
        let mut out = Vec::new();
        self.stats(Tokens::new(group), now, &mut out);
        out
    }

    /// Answers `stats [group]`. Every group memcached 1.6 knows gets a
    /// complete, terminated answer (`END`, or `OK`/`RESET` where memcached
    /// says that); an unknown group is a `CLIENT_ERROR`, never a bare
    /// `ERROR` (the monitoring issue's rule; memcached 1.6.18 answers
    /// `ERROR`).
    pub(super) fn stats(&self, args: Tokens<'_>, now: u64, out: &mut Vec<u8>) {
        let mut words = args.iter();
        let group = words.next();
        let mut w = StatWriter::new(out);
        match group {
            None => self.general_stats(&mut w, now),
            Some(b"reset") => {
                self.counters.reset();
                self.detail.clear();
                if let Some(server) = &self.server_stats {
                    server.reset();
                }
                Response::Reset.write_to(w.out);
                return;
            }
            Some(b"settings") => self.settings_stats(&mut w),
            Some(b"items") => self.item_stats(&mut w),
            Some(b"slabs") => self.slab_stats(&mut w),
            Some(b"conns") => {
                if let Some(server) = &self.server_stats {
                    server.conns(&mut w);
                }
            }
            Some(b"sizes" | b"sizes_disable") => w.text("sizes_status", "disabled"),
            Some(b"sizes_enable") => {
                w.text("sizes_status", "disabled");
                w.text("sizes_error", "larder keeps no item size histogram");
            }
            // No external storage: memcached without extstore answers an
            // empty group too.
            Some(b"extstore") => {}
            // memcached lists keys of one slab class. Every item is in
            // larder's one class, `1`; other classes are empty. The
            // arguments are checked as memcached checks them.
            Some(b"cachedump") if !self.dump_enabled => {
                Response::ClientError("stats cachedump not allowed").write_to(w.out);
                return;
            }
            Some(b"cachedump") => {
                let (class, limit) = (words.next(), words.next());
                let parsed = match (class, limit) {
                    (Some(class), Some(limit)) => {
                        match (parse_number(class), parse_number(limit)) {
                            (Some(class), Some(_)) if class >= super::admin::SLAB_CLASSES => {
                                Err("Illegal slab id")
                            }
                            (Some(class), Some(limit)) => Ok((class, limit)),
                            _ => Err("bad command line format"),
                        }
                    }
                    _ => Err("bad command line"),
                };
                match parsed {
                    Ok((1, limit)) => self.cache_dump(limit, now, w.out),
                    Ok(_) => {}
                    Err(error) => {
                        Response::ClientError(error).write_to(w.out);
                        return;
                    }
                }
            }
            Some(b"detail") => match words.next() {
                Some(b"on") => {
                    self.detail.set_enabled(true);
                    Response::Ok.write_to(w.out);
                    return;
                }
                Some(b"off") => {
                    self.detail.set_enabled(false);
                    Response::Ok.write_to(w.out);
                    return;
                }
                Some(b"dump") => self.detail.dump(w.out),
                _ => {
                    Response::ClientError("usage: stats detail on|off|dump").write_to(w.out);
                    return;
                }
            },
            Some(_) => {
                Response::ClientError("unknown stats group").write_to(w.out);
                return;
            }
        }
        Response::End.write_to(w.out);
    }

    fn general_stats(&self, w: &mut StatWriter<'_>, now: u64) {
        w.number("pid", u64::from(std::process::id()));
        w.number("uptime", u64::from(self.time.uptime_secs(now)));
        w.number("time", self.time.unix_ms(now) / 1000);
        w.text("version", &self.version);
        w.text("larder_version", env!("CARGO_PKG_VERSION"));
        w.number("pointer_size", usize::BITS as u64);
        if let Some(server) = &self.server_stats {
            server.general(w);
        }
        for (name, counter) in COMMAND_COUNTERS {
            w.number(name, self.counters.get(counter));
        }
        w.number("limit_maxbytes", self.memory_limit());
        w.number(
            "expired_unfetched",
            self.counters.get(Counter::ExpiredUnfetched),
        );
        w.number(
            "evicted_unfetched",
            self.counters.get(Counter::EvictedUnfetched),
        );
        w.number("evictions", self.counters.get(Counter::Evictions));
        w.number("reclaimed", self.counters.get(Counter::Reclaimed));
        w.number(
            "crawler_reclaimed",
            self.counters.get(Counter::CrawlerReclaimed),
        );
        w.number("slabs_moved", self.counters.get(Counter::SlabsMoved));
        w.number(
            "slab_reassign_rescues",
            self.counters.get(Counter::SlabRescues),
        );
        // Evictions never skip an item for being in use (a reader holds no
        // reference into the store), so this count of memcached's is 0 by
        // construction, not by omission.
        w.number("lrutail_reflocked", 0);
        w.number("bytes", self.cache.weight());
        w.number("arena_bytes", self.arena_bytes());
        w.number("curr_items", self.cache.len() as u64);
        w.number("total_items", self.counters.get(Counter::TotalItems));
        let snap = self.snapshot_status();
        w.number("snapshot_last_unix", snap.last_unix);
        w.number("snapshot_last_ok", u64::from(snap.last_ok));
        w.number("snapshot_last_ok_unix", snap.last_ok_unix);
        w.number("snapshot_failures", snap.failures);
        w.number("snapshot_bytes", snap.bytes);
        w.number("snapshot_duration_ms", snap.duration_ms);
        w.number("changes_since_snapshot", snap.changes_since);
        let repl = &self.repl;
        let (id, offset) = repl.position();
        w.text("role", repl.role().name());
        w.text("repl_id", std::str::from_utf8(&id).unwrap_or("?"));
        w.number("repl_offset", offset);
        w.number("repl_lag_ms", repl.lag_ms(self.time.unix_ms(now)));
        w.number("repl_lag_p99_ms", repl.lag_p99_ms());
        w.number("repl_link_up", u64::from(repl.link_up.load(Relaxed)));
        w.number(
            "repl_connected_replicas",
            repl.connected_replicas.load(Relaxed),
        );
        w.number("repl_full_syncs", repl.full_syncs.load(Relaxed));
        w.number("repl_partial_syncs", repl.partial_syncs.load(Relaxed));
        w.number("repl_link_full_syncs", repl.link_full_syncs.load(Relaxed));
        w.number(
            "repl_link_partial_syncs",
            repl.link_partial_syncs.load(Relaxed),
        );
        w.number("repl_backlog_bytes", repl.backlog_bytes());
    }

    /// `stats cachedump 1 <limit>`: one `ITEM <key> [<value bytes> b;
    /// <expiry, unix seconds, 0 for none> s]` line per live item, in the
    /// cache's own order (memcached walks its LRU from the newest), at most
    /// `limit` of them (0: no limit) and at most 2 MiB of lines, as in
    /// memcached. Keys with bytes a text line cannot carry (stored through
    /// meta's base64 `b`) are left out, as memcached leaves out binary keys.
    fn cache_dump(&self, limit: u64, now: u64, out: &mut Vec<u8>) {
        const MAX_DUMP: usize = 2 << 20;
        let start = out.len();
        let mut shown = 0u64;
        // The walk still shows the entries tied with the one it stopped at
        // (see `Cache::visit_slice`); a one-shot dump writes none of them.
        let mut stopped = false;
        let _ = self.walk_items(DumpCursor::default(), |block, _, deadline| {
            if stopped {
                return false;
            }
            let key = block.key();
            if key.iter().any(|&b| b <= b' ' || b == 0x7f) {
                return true;
            }
            let expires = self.expiry_unix_secs(deadline, now).unwrap_or(0);
            let line_at = out.len();
            out.extend_from_slice(b"ITEM ");
            out.extend_from_slice(key);
            let _ = write!(out, " [{} b; {expires} s]\r\n", block.value().len());
            // memcached stops at the first line that does not fit.
            if out.len() - start > MAX_DUMP {
                out.truncate(line_at);
                stopped = true;
                return false;
            }
            shown += 1;
            stopped = limit != 0 && shown >= limit;
            !stopped
        });
    }

    /// `stats settings`: the store's configuration, then the server's.
    /// Settings of machinery larder does not have (an LRU crawler, slab
    /// rebalancing, a segmented LRU) say `no`, so tools that read them do
    /// not go looking for their statistics.
    fn settings_stats(&self, w: &mut StatWriter<'_>) {
        w.number("maxbytes", self.memory_limit());
        w.number("item_size_max", self.limits.max_item_size as u64);
        w.number("key_max_length", self.limits.max_key_len as u64);
        w.text("evictions", if self.keep_live { "off" } else { "on" });
        w.text("cas_enabled", "yes");
        w.text(
            "flush_enabled",
            if self.flush_enabled { "yes" } else { "no" },
        );
        w.text("binding_protocol", self.protocols.name());
        w.text("dump_enabled", if self.dump_enabled { "yes" } else { "no" });
        w.text(
            "auth_enabled_sasl",
            if self.sasl.is_some() { "yes" } else { "no" },
        );
        let ascii = self.ascii_auth.as_ref().map(|users| users.current());
        w.text(
            "auth_enabled_ascii",
            match &ascii {
                None => "no",
                Some(users) => users.source().unwrap_or("yes"),
            },
        );
        match self.server_stats.as_ref().and_then(|s| s.domain_socket()) {
            Some((path, mode)) => {
                w.display("domain_socket", path.display());
                w.display("umask", format_args!("{mode:o}"));
            }
            None => {
                w.text("domain_socket", "NULL");
                w.text("umask", "700");
            }
        }
        w.text(
            "shutdown_command",
            if self.enable_shutdown { "yes" } else { "no" },
        );
        w.text(
            "detail_enabled",
            if self.detail.enabled() { "yes" } else { "no" },
        );
        w.text("stat_key_prefix", ":");
        w.text(
            "lru_crawler",
            if self.crawler_enabled() { "yes" } else { "no" },
        );
        w.text("lru_maintainer_thread", "no");
        w.text("lru_segmented", "no");
        w.text("slab_reassign", "yes");
        w.number("slab_automove", u64::from(self.page_mover_enabled()));
        w.text("temp_lru", "no");
        w.text("track_sizes", "no");
        w.text("hash_algorithm", "ahash");
        w.number("num_shards", self.cache.shard_count() as u64);
        if let Some(server) = &self.server_stats {
            server.settings(w);
        }
    }

    /// `stats items`: larder has no slab classes, so every item is in one
    /// class, `1`, and the class's figures are the store's. Like memcached,
    /// a class with no items is not listed. `age` is memcached's "age of the
    /// oldest item in the LRU", the seconds since the last access of the
    /// least recently used item at the front of an eviction queue (the next
    /// in line, before any second chance a hit has earned it), the oldest
    /// over the shards' queues; `evicted_time` is how long the item evicted
    /// last had gone unread. Figures larder does not keep (the segmented
    /// LRU's queues, evictions of items with an expiry time) are left out
    /// rather than made up.
    fn item_stats(&self, w: &mut StatWriter<'_>) {
        let items = self.cache.len() as u64;
        if items == 0 {
            return;
        }
        let counter = |c| self.counters.get(c);
        w.number("items:1:number", items);
        w.number("items:1:age", u64::from(self.oldest_front_age()));
        w.number("items:1:mem_requested", self.cache.weight());
        w.number("items:1:evicted", counter(Counter::Evictions));
        w.number("items:1:evicted_time", self.counters.evicted_age());
        w.number(
            "items:1:evicted_unfetched",
            counter(Counter::EvictedUnfetched),
        );
        w.number(
            "items:1:expired_unfetched",
            counter(Counter::ExpiredUnfetched),
        );
        w.number("items:1:reclaimed", counter(Counter::Reclaimed));
        w.number(
            "items:1:crawler_reclaimed",
            counter(Counter::CrawlerReclaimed),
        );
        w.number("items:1:outofmemory", counter(Counter::StoreNoMemory));
    }

    /// Seconds since the last access of the oldest item at the front of
    /// an eviction queue (0 when the store is empty).
    fn oldest_front_age(&self) -> u32 {
        let now = self.time.uptime_secs(self.time.now_ms());
        let mut oldest = 0;
        self.cache.for_each_front(|_, meta| {
            oldest = oldest.max(now.saturating_sub(Meta::last_access(meta.state())));
        });
        oldest
    }

    /// `stats slabs`: the one class, `1`, describes the store itself. A
    /// "chunk" is an item and a "page" holds one chunk; `chunk_size` is the
    /// largest item the class takes (the item size limit). The arena's
    /// pages, free slots included, are `arena_bytes` in `stats`.
    /// `total_malloced` is what the store's accounting charges against the
    /// memory limit: every item's block as it is stored (its arena slot, or
    /// its heap block as the allocator rounds it) plus its fixed overhead ([`ITEM_OVERHEAD`](super::ITEM_OVERHEAD)), the
    /// same figure as `bytes`; the connection buffers are not in it.
    fn slab_stats(&self, w: &mut StatWriter<'_>) {
        let items = self.cache.len() as u64;
        let weight = self.cache.weight();
        // memcached keeps listing a class whose items are all gone (its
        // pages stay); larder lists class 1 once anything was stored.
        let listed = items > 0 || self.counters.get(Counter::TotalItems) > 0;
        if listed {
            let counter = |c| self.counters.get(c);
            w.number("1:chunk_size", self.limits.max_item_size as u64);
            w.number("1:chunks_per_page", 1);
            w.number("1:total_pages", items);
            w.number("1:total_chunks", items);
            w.number("1:used_chunks", items);
            w.number("1:free_chunks", 0);
            w.number("1:free_chunks_end", 0);
            w.number("1:mem_requested", weight);
            w.number("1:get_hits", counter(Counter::GetHits));
            w.number("1:cmd_set", counter(Counter::CmdSet));
            w.number("1:delete_hits", counter(Counter::DeleteHits));
            w.number("1:incr_hits", counter(Counter::IncrHits));
            w.number("1:decr_hits", counter(Counter::DecrHits));
            w.number("1:cas_hits", counter(Counter::CasHits));
            w.number("1:cas_badval", counter(Counter::CasBadval));
            w.number("1:touch_hits", counter(Counter::TouchHits));
        }
        w.number("active_slabs", u64::from(listed));
        w.number("total_malloced", weight);
    }
}

/// An unsigned decimal `stats` argument.
fn parse_number(token: &[u8]) -> Option<u64> {
    std::str::from_utf8(token).ok()?.parse().ok()
}
