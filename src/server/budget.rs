//! One memory budget shared by every connection's buffers.
//!
//! Each connection may use [`FREE_INPUT`] bytes of read buffer and
//! [`FREE_OUTPUT`] bytes of reply batch without asking, so any connection,
//! even while the budget is spent, can always answer a small command such as
//! `version`. Beyond that it charges the budget: a read buffer grows past the
//! free part (for a large value or a long line) only once the connection has
//! charged the most it may ever buffer (`max_input`), all at once, waiting —
//! reading nothing — until other connections give that much back. Charging
//! all at once is what keeps the budget from deadlocking: a connection that
//! grew in steps held part of the budget while it waited for the next step,
//! and enough of them (about 210 concurrent 1 MB sets at the default budget)
//! could each hold a part and wait forever for more. It costs concurrency,
//! not memory: at most `budget / max_input` connections buffer more than the
//! free part at once, and each grows within its charge freely. A reply
//! batch is limited to the free part plus whatever budget it gets at once,
//! so a client that stops reading holds little. Large values in replies are
//! shared with the cache, not copied, and are not charged.

use std::sync::atomic::fence;
use std::sync::atomic::Ordering::{AcqRel, Acquire, SeqCst};

use tokio::sync::Notify;

use crate::sync::AtomicU64;

/// Read buffer every connection has without charging the budget.
pub(super) const FREE_INPUT: usize = 16 << 10;
/// Reply bytes every connection may batch without charging the budget.
pub(super) const FREE_OUTPUT: usize = 16 << 10;

/// The shared budget: bytes charged and a wake-up for waiters.
#[derive(Debug)]
pub(super) struct Budget {
    limit: u64,
    used: AtomicU64,
    freed: Notify,
    /// Connections waiting in [`take`](Budget::take): giving back wakes them
    /// only when there are any (`notify_waiters` takes a mutex).
    waiting: AtomicU64,
}

impl Budget {
    pub(super) fn new(limit: usize) -> Budget {
        Budget {
            limit: limit as u64,
            used: AtomicU64::new(0),
            freed: Notify::new(),
            waiting: AtomicU64::new(0),
        }
    }

    /// Bytes charged now.
    pub(super) fn used(&self) -> u64 {
        self.used.load(Acquire)
    }

    /// The budget in bytes.
    pub(super) fn limit(&self) -> u64 {
        self.limit
    }

    /// Charges up to `want` bytes, as many as are free now; returns how many.
    pub(super) fn take_up_to(&self, want: usize) -> usize {
        let want = want as u64;
        let mut used = self.used.load(Acquire);
        loop {
            let take = want.min(self.limit.saturating_sub(used));
            if take == 0 {
                return 0;
            }
            match self
                .used
                .compare_exchange_weak(used, used + take, AcqRel, Acquire)
            {
                // take <= want, which came from a usize.
                Ok(_) => return take as usize,
                Err(now) => used = now,
            }
        }
    }

    /// Charges `n` bytes, waiting until they are free.
    pub(super) async fn take(&self, n: usize) {
        let n = n as u64;
        debug_assert!(n <= self.limit, "a charge the budget can never grant");
        if self.take_exactly(n) {
            return;
        }
        self.waiting.fetch_add(1, AcqRel);
        // Counted as waiting before each look: with the fence here and the one
        // in `give`, either the look below sees the room a `give` freed, or that
        // `give` sees the count and wakes us (the two stores and two loads are
        // ordered as one sequence).
        fence(SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if self.take_exactly(n) {
                return;
            }
            freed.await;
        }
    }

    fn take_exactly(&self, n: u64) -> bool {
        let mut used = self.used.load(Acquire);
        loop {
            if used + n > self.limit {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(used, used + n, AcqRel, Acquire)
            {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Gives `n` charged bytes back and wakes the waiters.
    pub(super) fn give(&self, n: usize) {
        if n > 0 {
            self.used.fetch_sub(n as u64, AcqRel);
            fence(SeqCst);
            if self.waiting.load(Acquire) > 0 {
                self.freed.notify_waiters();
            }
        }
    }
}

/// One connection counted as waiting for budget, until dropped (also when
/// its read is cancelled).
struct Waiting<'a>(&'a AtomicU64);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, AcqRel);
    }
}

/// What one connection has charged; gives it all back when dropped.
#[derive(Debug)]
pub(super) struct Account<'a> {
    budget: &'a Budget,
    /// What a read buffer of the largest size a connection may have charges.
    input_charge: usize,
    /// Charged for the read buffer beyond [`FREE_INPUT`].
    pub(super) input: usize,
    /// Charged for the current reply batch beyond [`FREE_OUTPUT`].
    pub(super) output: usize,
}

impl<'a> Account<'a> {
    /// An account for a connection that buffers at most `max_input` bytes of
    /// requests (the budget must be at least that).
    pub(super) fn new(budget: &'a Budget, max_input: usize) -> Self {
        Account {
            budget,
            input_charge: max_input.saturating_sub(FREE_INPUT),
            input: 0,
            output: 0,
        }
    }

    /// Accounts for a read buffer of `bytes` (at most `max_input`): within the
    /// free part it charges nothing (and gives back what it held); beyond it,
    /// the first growth waits for the whole `max_input` charge, and later
    /// growth is free (see the module docs for why all at once).
    pub(super) async fn charge_input(&mut self, bytes: usize) {
        if bytes <= FREE_INPUT {
            self.budget.give(std::mem::take(&mut self.input));
        } else if self.input == 0 {
            self.budget.take(self.input_charge).await;
            self.input = self.input_charge;
        }
        debug_assert!(bytes.saturating_sub(FREE_INPUT) <= self.input);
    }

    /// Charges what it can now, up to `extra` bytes, for the next reply
    /// batch; returns the batch's limit.
    pub(super) fn open_batch(&mut self, extra: usize) -> usize {
        self.output += self.budget.take_up_to(extra.saturating_sub(self.output));
        FREE_OUTPUT + self.output
    }

    /// Gives back the reply batch's charge once it is sent.
    pub(super) fn close_batch(&mut self) {
        self.budget.give(std::mem::take(&mut self.output));
    }
}

impl Drop for Account<'_> {
    fn drop(&mut self) {
        self.budget.give(self.input + self.output);
    }
}
