//! Time as memcached sees it: the cache's clock for TTLs, a unix time derived
//! from it for absolute expiration times, and the exptime rules.
//!
//! The unix time is `unix time at start + time elapsed on the clock`, so a
//! manual clock moves both together and tests never sleep.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Clock;

/// memcached's `REALTIME_MAXDELTA`: exptimes up to 30 days are relative.
pub(crate) const MAX_RELATIVE: i64 = 60 * 60 * 24 * 30;

/// When an item stored now should expire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expiry {
    /// Never (exptime 0).
    Never,
    /// After this many milliseconds.
    After(u64),
    /// Already (negative exptime, or an absolute time not in the future).
    Expired,
}

impl Expiry {
    /// The TTL to give the cache (`None`: never expires). Not for `Expired`.
    pub(crate) fn ttl(self) -> Option<Duration> {
        match self {
            Expiry::After(ms) => Some(Duration::from_millis(ms)),
            Expiry::Never | Expiry::Expired => None,
        }
    }

    /// The deadline on the store clock (0: never). One past the end of the
    /// clock is the end: it saturates at `u64::MAX` instead of wrapping.
    pub(crate) fn deadline(self, now_ms: u64) -> u64 {
        match self {
            Expiry::After(ms) => now_ms.saturating_add(ms),
            Expiry::Never | Expiry::Expired => 0,
        }
    }
}

#[derive(Clone)]
pub(crate) struct Time {
    clock: Clock,
    origin_ms: u64,
    unix_origin_ms: u64,
}

impl Time {
    pub(crate) fn new(clock: Clock, unix_now: Option<u64>) -> Time {
        let unix_origin_ms = match unix_now {
            Some(secs) => secs.saturating_mul(1000),
            None => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        };
        let origin_ms = clock.now_ms();
        Time {
            clock,
            origin_ms,
            unix_origin_ms,
        }
    }

    /// Milliseconds on the store clock (never zero).
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Whole seconds since the store started.
    pub(crate) fn uptime_secs(&self, now_ms: u64) -> u32 {
        u32::try_from(now_ms.saturating_sub(self.origin_ms) / 1000).unwrap_or(u32::MAX)
    }

    /// Unix time (seconds) of a moment `uptime_secs` after the start.
    pub(crate) fn unix_secs_at(&self, uptime_secs: u32) -> u64 {
        self.unix_origin_ms
            .saturating_add(u64::from(uptime_secs) * 1000)
            / 1000
    }

    /// Unix time in milliseconds.
    pub(crate) fn unix_ms(&self, now_ms: u64) -> u64 {
        self.unix_origin_ms
            .saturating_add(now_ms.saturating_sub(self.origin_ms))
    }

    /// memcached's exptime rules: 0 never, up to 30 days relative, larger an
    /// absolute unix time, negative already expired.
    pub(crate) fn expiry(&self, exptime: i64, now_ms: u64) -> Expiry {
        match exptime {
            0 => Expiry::Never,
            e if e < 0 => Expiry::Expired,
            e if e <= MAX_RELATIVE => Expiry::After(e as u64 * 1000),
            absolute => {
                let at = (absolute as u64).saturating_mul(1000);
                let now = self.unix_ms(now_ms);
                if at <= now {
                    Expiry::Expired
                } else {
                    Expiry::After(at - now)
                }
            }
        }
    }
}

/// Seconds left before `expires_at` (ms on the store clock), rounded up;
/// -1 for never.
pub(crate) fn remaining_secs(expires_at: u64, now_ms: u64) -> i64 {
    if expires_at == 0 {
        -1
    } else {
        i64::try_from(expires_at.saturating_sub(now_ms).div_ceil(1000)).unwrap_or(i64::MAX)
    }
}
