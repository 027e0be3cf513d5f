//! Time for the cache: a [`Clock`] that is either the system's monotonic clock or a
//! [`ManualClock`] that tests move by hand.
//!
//! The cache reads time as whole milliseconds since the clock's origin, plus one, so
//! that "now" is never zero (zero is the "no deadline" marker in an entry). The clock
//! is only read when an operation needs it: a hit on an entry without a deadline never
//! reads the time.

#![forbid(unsafe_code)]

use crate::sync::{Arc, AtomicU64};
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The source of time for a cache's TTLs.
///
/// The default is [`Clock::system`]. Tests use [`Clock::manual`] so that expiry is
/// driven by [`ManualClock::advance`] instead of sleeping.
///
/// Resolution is one millisecond. An entry may be treated as expired up to one
/// millisecond before its TTL has fully elapsed, never after.
///
/// ```
/// use larder::{Cache, Clock};
/// use std::time::Duration;
///
/// let (clock, hand) = Clock::manual();
/// let cache: Cache<&str, u32> = Cache::builder().max_entries(10).clock(clock).build()?;
/// cache.insert_with_ttl("a", 1, Duration::from_secs(5));
/// hand.advance(Duration::from_secs(5));
/// assert_eq!(cache.get("a"), None);
/// # Ok::<(), larder::BuildError>(())
/// ```
#[derive(Clone)]
pub struct Clock {
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    System(Instant),
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The system's monotonic clock ([`Instant`]), with its origin at this call.
    pub fn system() -> Clock {
        Clock {
            kind: Kind::System(Instant::now()),
        }
    }

    /// A clock that only moves when the returned [`ManualClock`] handle says so.
    /// It starts at zero.
    pub fn manual() -> (Clock, ManualClock) {
        let ms = Arc::new(AtomicU64::new(0));
        (
            Clock {
                kind: Kind::Manual(ms.clone()),
            },
            ManualClock { ms },
        )
    }

    /// Milliseconds since the origin, plus one (never zero).
    #[inline]
    pub(crate) fn now_ms(&self) -> u64 {
        match &self.kind {
            Kind::System(origin) => {
                let elapsed = origin.elapsed();
                elapsed.as_secs() * 1000 + u64::from(elapsed.subsec_millis()) + 1
            }
            Kind::Manual(ms) => ms.load(Ordering::Acquire).saturating_add(1),
        }
    }
}

impl Clock {
    /// Nanoseconds since the origin, for measuring durations (load times). The manual
    /// clock moves in whole milliseconds, so it reads as a multiple of 1 ms.
    pub(crate) fn now_ns(&self) -> u64 {
        match &self.kind {
            Kind::System(origin) => u64::try_from(origin.elapsed().as_nanos()).unwrap_or(u64::MAX),
            Kind::Manual(ms) => ms.load(Ordering::Acquire).saturating_mul(1_000_000),
        }
    }
}

/// The wall-clock time a [`Clock::manual`] clock reads as at its start, in
/// milliseconds since the unix epoch (2023-11-14T22:13:20Z): fixed, so that
/// snapshot tests that convert deadlines to wall-clock time are deterministic.
pub(crate) const MANUAL_UNIX_ORIGIN_MS: u64 = 1_700_000_000_000;

impl Clock {
    /// Wall-clock time in milliseconds since the unix epoch: the system's time for
    /// [`Clock::system`], and [`MANUAL_UNIX_ORIGIN_MS`] plus the time advanced for
    /// [`Clock::manual`]. Snapshots record deadlines in this time.
    pub(crate) fn unix_ms(&self) -> u64 {
        match &self.kind {
            Kind::System(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            Kind::Manual(ms) => MANUAL_UNIX_ORIGIN_MS.saturating_add(ms.load(Ordering::Acquire)),
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::System(_) => f.write_str("Clock::System"),
            Kind::Manual(ms) => write!(f, "Clock::Manual({} ms)", ms.load(Ordering::Relaxed)),
        }
    }
}

/// The handle that moves a [`Clock::manual`] clock.
///
/// Cloning the handle gives another handle to the same clock.
#[derive(Clone, Debug)]
pub struct ManualClock {
    ms: Arc<AtomicU64>,
}

impl ManualClock {
    /// Moves the clock forward by `by` (whole milliseconds; the remainder is dropped).
    ///
    /// ```
    /// let (_clock, hand) = larder::Clock::manual();
    /// hand.advance(std::time::Duration::from_millis(1500));
    /// assert_eq!(hand.now(), std::time::Duration::from_millis(1500));
    /// ```
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        // A loop rather than fetch_add so the clock saturates instead of wrapping.
        let mut cur = self.ms.load(Ordering::Relaxed);
        loop {
            let next = cur.saturating_add(by);
            match self
                .ms
                .compare_exchange_weak(cur, next, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(seen) => cur = seen,
            }
        }
    }

    /// The time elapsed on this clock since it was made.
    pub fn now(&self) -> Duration {
        Duration::from_millis(self.ms.load(Ordering::Acquire))
    }
}

/// Converts a TTL to whole milliseconds, saturating. A TTL shorter than the clock's
/// millisecond resolution but not zero counts as one millisecond (a positive TTL
/// stores a live entry); zero stays zero (the value is expired at once, and not
/// stored).
#[inline]
pub(crate) fn ttl_ms(ttl: Duration) -> u64 {
    match u64::try_from(ttl.as_millis()) {
        Ok(0) if !ttl.is_zero() => 1,
        Ok(ms) => ms,
        Err(_) => u64::MAX,
    }
}
