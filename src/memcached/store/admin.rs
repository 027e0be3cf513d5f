//! Answers to the tuning commands (`slabs`, `lru_crawler`, `lru`).
//!
//! larder has one pseudo slab class (`1`) and no segmented LRU or slab
//! mover; its LRU crawler is the background sweep that reclaims expired
//! items. So only the crawler's commands change anything: `enable`/`disable`
//! turn the sweep on and off, `crawl` reclaims every expired item at once,
//! `metadump` lists the items. Each command gets the answer memcached gives
//! when it succeeds or, where the request names something larder cannot
//! have, memcached's refusal for it:
//!
//! | command | answer |
//! |---|---|
//! | `slabs automove 0\|1\|2`, `lru_crawler tocrawl N`, `lru mode\|tune\|temp_ttl …` | `OK` |
//! | `lru_crawler enable\|disable` | `OK`; the background sweep starts or stops (`lru_crawler` in `stats settings`); enabling a running crawler is `ERROR failed to start lru crawler thread`, as in memcached |
//! | `slabs reassign S D` | `BADCLASS invalid src or dst class id` unless both are `-1`, `0` or `1`; `SAME src and dst class are identical` if equal; else `NOSPARE source class has no spare pages` |
//! | `lru_crawler sleep N` | `OK`, or memcached's `CLIENT_ERROR sleep must be one second or less` above 1,000,000 µs |
//! | `lru_crawler crawl C` | `OK` for `all` or classes 1–63 (reclaiming every expired item, in slices, before it answers, if that takes in class 1), else `BADCLASS invalid class id`; `CLIENT_ERROR lru crawler disabled` while the crawler is off |
//! | `lru_crawler metadump C` | every live item (`dump.rs`; streamed by `process`, whole from `execute`) for `all`, `hash` or a list naming class 1; `END` alone for other classes up to 63; refused, in memcached's order, with `CLIENT_ERROR lru crawler disabled`, `ERROR metadump not allowed` (`-X`), `ERROR cannot pipeline other commands before metadump`, `BADCLASS invalid class id` |
//!
//! Besides these, larder's own `replica promote` (`OK`, or `SERVER_ERROR not
//! a replica`) and `replica sync` (the start of a replication stream, handed
//! to the server: see `repl.rs`) come this way.

use super::{Outcome, Store};
use crate::memcached::{AdminCommand, Response};

/// memcached's largest slab class id plus one.
pub(super) const SLAB_CLASSES: u64 = 64;

impl Store {
    pub(super) fn admin(
        &self,
        command: &AdminCommand<'_>,
        noreply: bool,
        out: &mut Vec<u8>,
    ) -> Outcome {
        let response = match command {
            AdminCommand::ReplicaSync { id, offset } => {
                return Outcome::Replicate {
                    id: *id,
                    offset: *offset,
                };
            }
            AdminCommand::ReplicaPromote => match self.promote() {
                Ok(()) => Response::Ok,
                Err(why) => Response::ServerError(why),
            },
            AdminCommand::SlabsReassign { src, dst } => {
                let known = |class: &i64| (-1..=1).contains(class);
                if !known(src) || !known(dst) {
                    Response::Line("BADCLASS invalid src or dst class id")
                } else if src == dst {
                    Response::Line("SAME src and dst class are identical")
                } else {
                    Response::Line("NOSPARE source class has no spare pages")
                }
            }
            AdminCommand::LruCrawlerSleep(micros) if *micros > 1_000_000 => {
                Response::ClientError("sleep must be one second or less")
            }
            AdminCommand::LruCrawlerCrawl(_) if !self.crawler_enabled() => {
                Response::ClientError("lru crawler disabled")
            }
            AdminCommand::LruCrawlerCrawl(classes) if !valid_classes(classes, false) => {
                Response::Line("BADCLASS invalid class id")
            }
            // A crawl reclaims every expired item before it answers (memcached
            // answers at once and reports `lru_crawler_running` until done),
            // a slice of each shard at a time so that no lock is held long.
            AdminCommand::LruCrawlerCrawl(classes) => {
                if dump_lists_items(classes) {
                    self.crawl_all();
                }
                Response::Ok
            }
            // memcached refuses to start a crawler that runs; stopping a
            // stopped one is fine.
            AdminCommand::LruCrawlerEnable(true) if self.crawler_enabled() => {
                Response::Line("ERROR failed to start lru crawler thread")
            }
            // Modes 1 and 2 alike run the page mover; 0 stops it.
            AdminCommand::SlabsAutomove { mode } => {
                self.page_mover
                    .store(*mode != 0, std::sync::atomic::Ordering::Relaxed);
                Response::Ok
            }
            AdminCommand::LruCrawlerEnable(on) => {
                self.crawler
                    .store(*on, std::sync::atomic::Ordering::Relaxed);
                Response::Ok
            }
            // `process` streams a dump a slice at a time; a caller of
            // `execute` gets it whole.
            AdminCommand::LruCrawlerMetadump(classes) => {
                if let Some(line) = self.metadump_refusal(classes, false) {
                    Response::Line(line)
                } else if dump_lists_items(classes) {
                    let _ = self.metadump(Default::default(), None, out);
                    return Outcome::Continue;
                } else {
                    Response::End
                }
            }
            _ => Response::Ok,
        };
        if !noreply {
            response.write_to(out);
        }
        Outcome::Continue
    }
}

impl Store {
    /// Why a metadump of `classes` is refused, in memcached's order: the
    /// crawler is off, dumps are off (`-X`), replies of earlier requests are
    /// still queued (`pipelined`), the class list is bad.
    pub(super) fn metadump_refusal(&self, classes: &[u8], pipelined: bool) -> Option<&'static str> {
        if !self.crawler_enabled() {
            Some("CLIENT_ERROR lru crawler disabled")
        } else if !self.dump_enabled {
            Some("ERROR metadump not allowed")
        } else if pipelined {
            Some("ERROR cannot pipeline other commands before metadump")
        } else if !valid_classes(classes, true) {
            Some("BADCLASS invalid class id")
        } else {
            None
        }
    }

    /// Reclaims every expired item, a slice of each shard at a time.
    fn crawl_all(&self) {
        const SLICE: usize = 4096;
        let slots = self.cache.slot_count();
        for _ in 0..slots.div_ceil(SLICE).max(1) {
            self.reclaim_expired(SLICE);
        }
    }
}

/// Whether a metadump of `classes` lists larder's items: they are all in
/// class 1, so `all`, `hash` or a valid list naming 1. Other valid lists
/// dump nothing (`END`).
pub(super) fn dump_lists_items(classes: &[u8]) -> bool {
    valid_classes(classes, true)
        && (classes == b"all"
            || classes == b"hash"
            || classes.split(|&b| b == b',').any(|id| {
                std::str::from_utf8(id).ok().and_then(|id| id.parse().ok()) == Some(1u64)
            }))
}

/// `all`, a comma-separated list of slab class ids, or (for a metadump)
/// `hash`.
fn valid_classes(classes: &[u8], hash_ok: bool) -> bool {
    classes == b"all"
        || (hash_ok && classes == b"hash")
        || classes.split(|&b| b == b',').all(|id| {
            std::str::from_utf8(id)
                .ok()
                .and_then(|id| id.parse::<u64>().ok())
                .is_some_and(|id| (1..SLAB_CLASSES).contains(&id))
        })
}
