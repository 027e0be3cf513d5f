//! Answers to the tuning commands (`slabs`, `lru_crawler`, `lru`).
//!
//! larder has one pseudo slab class (`1`), no crawler thread (the core
//! reclaims expired items itself) and no segmented LRU, so no valid tuning
//! command changes anything. Each gets the answer memcached gives when the
//! command succeeds or, where the request names something larder cannot
//! have, memcached's refusal for it:
//!
//! | command | answer |
//! |---|---|
//! | `slabs automove 0\|1\|2`, `lru_crawler enable\|disable\|tocrawl N`, `lru mode\|tune\|temp_ttl …` | `OK` |
//! | `slabs reassign S D` | `BADCLASS invalid src or dst class id` unless both are `-1`, `0` or `1`; `SAME src and dst class are identical` if equal; else `NOSPARE source class has no spare pages` |
//! | `lru_crawler sleep N` | `OK`, or memcached's `CLIENT_ERROR sleep must be one second or less` above 1,000,000 µs |
//! | `lru_crawler crawl C` | `OK` for `all` or classes 1–63, else `BADCLASS invalid class id` |
//! | `lru_crawler metadump C` | an empty dump (`END`) for `all`, `hash` or classes 1–63, else `BADCLASS invalid class id` |
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
            AdminCommand::LruCrawlerCrawl(classes) if !valid_classes(classes, false) => {
                Response::Line("BADCLASS invalid class id")
            }
            AdminCommand::LruCrawlerMetadump(classes) => {
                if valid_classes(classes, true) {
                    Response::End
                } else {
                    Response::Line("BADCLASS invalid class id")
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
