//! Detects user code that calls back into a cache shard whose lock its own thread
//! holds.
//!
//! A [`compute`](crate::Cache::compute) or [`retain`](crate::Cache::retain) closure,
//! or a weigher run by `compute`, runs under its shard's write lock. If it calls
//! into the same shard, the thread waits for a lock it holds itself: a silent
//! deadlock. Each thread keeps the shards whose write lock it holds in a short
//! list; a lock that cannot be taken at once is checked against the list before
//! the thread waits, and a thread that would wait for itself panics with a message
//! naming the rule instead (as Caffeine throws on a recursive update). The
//! uncontended path never reads the list, so hits pay nothing for the check.

use std::cell::RefCell;

// A `const` initialiser spares every access the lazy-initialisation check (the
// visitors enter and leave on every hit); loom's `thread_local!` takes none.
#[cfg(not(larder_loom))]
std::thread_local! {
    /// Addresses of the shards whose lock this thread holds, innermost last.
    static HELD: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

#[cfg(larder_loom)]
loom::thread_local! {
    /// Addresses of the shards whose lock this thread holds, innermost last.
    static HELD: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

/// What the panic says.
pub(crate) const MESSAGE: &str = "larder: re-entrant call: a closure passed to \
    `compute` or `retain`, or a weigher, called into the same cache shard it runs \
    under (this would deadlock; see \"Locking behaviour\" in the `Cache` docs)";

/// Marks the shard at `addr` as write-locked by this thread until dropped.
pub(crate) struct Held(usize);

impl Held {
    pub(crate) fn enter(addr: usize) -> Held {
        HELD.with(|held| held.borrow_mut().push(addr));
        Held(addr)
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        // `try_with`: the thread's locals may be gone if a cache is used while
        // the thread is being torn down.
        let _ = HELD.try_with(|held| {
            let mut held = held.borrow_mut();
            // Guards almost always drop innermost first.
            if held.last() == Some(&self.0) {
                held.pop();
            } else if let Some(at) = held.iter().rposition(|&a| a == self.0) {
                held.remove(at);
            }
        });
    }
}

/// Panics if this thread holds the write lock of the shard at `addr`. Called only
/// when the shard's lock could not be taken at once.
#[cold]
pub(crate) fn check(addr: usize) {
    let mine = HELD
        .try_with(|held| held.borrow().contains(&addr))
        .unwrap_or(false);
    if mine {
        panic!("{MESSAGE}");
    }
}
