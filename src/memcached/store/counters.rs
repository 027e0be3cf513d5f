//! Statistics counters, striped over cache lines so that threads counting
//! hits on different cores do not fight over one line. A thread always uses
//! the same stripe (picked from the address of a thread-local); reads sum the
//! stripes.

use std::sync::atomic::Ordering::Relaxed;

use crate::sync::AtomicU64;

/// Every counter the store keeps, named as memcached names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Counter {
    CmdGet,
    CmdSet,
    CmdFlush,
    CmdTouch,
    /// memcached 1.6 counts only `me` here, not the other meta commands
    /// (they count as gets, sets, ...); so does larder.
    CmdMeta,
    GetHits,
    GetMisses,
    GetExpired,
    GetFlushed,
    DeleteMisses,
    DeleteHits,
    IncrMisses,
    IncrHits,
    DecrMisses,
    DecrHits,
    CasMisses,
    CasHits,
    CasBadval,
    TouchHits,
    TouchMisses,
    StoreTooLarge,
    StoreNoMemory,
    /// SASL authentications tried (`SASL_AUTH`/`SASL_STEP`), memcached's
    /// `auth_cmds`.
    AuthCmds,
    /// SASL authentications refused, memcached's `auth_errors`.
    AuthErrors,
    TotalItems,
    Evictions,
    EvictedUnfetched,
    ExpiredUnfetched,
    Reclaimed,
    /// Expired items reclaimed by a sweep (background, or `lru_crawler
    /// crawl`), memcached's `crawler_reclaimed`.
    CrawlerReclaimed,
    /// Arena pages the page mover gave back (memcached's `slabs_moved`).
    SlabsMoved,
    /// Items the page mover moved (memcached's `slab_reassign_rescues`).
    SlabRescues,
}

const COUNTERS: usize = Counter::SlabRescues as usize + 1;
/// One more slot after the named counters: client writes that changed what
/// the store holds, for `changes_since_snapshot`. `stats reset` leaves it.
const CHANGES: usize = COUNTERS;
const STRIPES: usize = 8;

impl Counter {
    /// Whether a bump of this counter means a client changed the store.
    #[inline]
    const fn is_change(self) -> bool {
        matches!(
            self,
            Counter::TotalItems
                | Counter::DeleteHits
                | Counter::IncrHits
                | Counter::DecrHits
                | Counter::TouchHits
                | Counter::CmdFlush
        )
    }
}

#[repr(align(128))]
struct Stripe([AtomicU64; COUNTERS + 1]);

pub(crate) struct Counters {
    stripes: Box<[Stripe]>,
    /// Seconds between the last access and the eviction of the item evicted
    /// last (memcached's `evicted_time`): a gauge, so not striped.
    evicted_age: AtomicU64,
}

thread_local! {
    static ANCHOR: u8 = const { 0 };
}

fn stripe_index() -> usize {
    // Thread-locals live at distinct addresses; mixing drops the alignment bits.
    let addr = ANCHOR.with(|a| a as *const u8 as usize);
    (addr >> 4 ^ addr >> 12) % STRIPES
}

impl Counters {
    pub(crate) fn new() -> Counters {
        Counters {
            stripes: (0..STRIPES)
                .map(|_| Stripe(std::array::from_fn(|_| AtomicU64::new(0))))
                .collect(),
            evicted_age: AtomicU64::new(0),
        }
    }

    /// Records the age (seconds since its last access) of an item just
    /// evicted.
    pub(crate) fn set_evicted_age(&self, secs: u64) {
        self.evicted_age.store(secs, Relaxed);
    }

    /// The age of the item evicted last (0 before any eviction).
    pub(crate) fn evicted_age(&self) -> u64 {
        self.evicted_age.load(Relaxed)
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        let stripe = &self.stripes[stripe_index()].0;
        stripe[counter as usize].fetch_add(n, Relaxed);
        if counter.is_change() {
            stripe[CHANGES].fetch_add(n, Relaxed);
        }
    }

    /// Client writes that changed the store since it was built (never reset).
    pub(crate) fn changes(&self) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0[CHANGES].load(Relaxed))
            .fold(0, u64::wrapping_add)
    }

    #[inline]
    pub(crate) fn bump(&self, counter: Counter) {
        self.add(counter, 1);
    }

    pub(crate) fn get(&self, counter: Counter) -> u64 {
        self.stripes
            .iter()
            .map(|s| s.0[counter as usize].load(Relaxed))
            .fold(0, u64::wrapping_add)
    }

    pub(crate) fn reset(&self) {
        self.evicted_age.store(0, Relaxed);
        for stripe in self.stripes.iter() {
            for c in &stripe.0[..COUNTERS] {
                c.store(0, Relaxed);
            }
        }
    }
}
