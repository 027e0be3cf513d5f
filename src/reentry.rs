//! Detects user code that calls back into a cache shard whose lock its own thread
//! holds.
//!
//! A [`compute`](crate::Cache::compute) or [`retain`](crate::Cache::retain) closure,
//! or a weigher run by `compute`, runs under its shard's write lock. If it calls
//! into the same shard, the thread waits for a lock it holds itself: a silent
//! deadlock. Each thread keeps the shards whose lock it holds (the innermost in a
//! cell of its own, any others in a short
//! list); a lock that cannot be taken at once is checked against them before
//! the thread waits, and a thread that would wait for itself panics with a message
//! naming the rule instead (as Caffeine throws on a recursive update). The
//! uncontended path never reads the list, so hits pay nothing for the check.

use std::cell::{Cell, RefCell};

// The innermost held shard sits in a `Cell` of its own: a `const`-initialised
// local without a destructor costs no lazy-initialisation or destructor
// registration check per access (the visitors enter and leave on every hit).
// Shards held further out, which only nested calls have, go to a list.
// loom's `thread_local!` takes no `const` initialisers.
#[cfg(not(larder_loom))]
std::thread_local! {
    /// Address of the innermost shard whose lock this thread holds (0: none).
    static INNER: Cell<usize> = const { Cell::new(0) };
    /// Addresses of the shards held outside the innermost one, innermost last.
    static OUTER: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

#[cfg(larder_loom)]
loom::thread_local! {
    /// Address of the innermost shard whose lock this thread holds (0: none).
    static INNER: Cell<usize> = Cell::new(0);
    /// Addresses of the shards held outside the innermost one, innermost last.
    static OUTER: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

/// What the panic says.
pub(crate) const MESSAGE: &str = "larder: re-entrant call: a closure passed to \
    `compute` or `retain`, or a weigher, called into the same cache shard it runs \
    under (this would deadlock; see \"Locking behaviour\" in the `Cache` docs)";

/// Marks the shard at `addr` as locked by this thread until dropped.
pub(crate) struct Held {
    addr: usize,
    /// Whether a shard was held already, and moved to `OUTER`, when this one
    /// was entered.
    nested: bool,
    /// Not `Send`: the guard must drop on the thread whose list it is in.
    _here: std::marker::PhantomData<*const ()>,
}

impl Held {
    #[inline]
    pub(crate) fn enter(addr: usize) -> Held {
        let outer = INNER.with(|inner| inner.replace(addr));
        // `try_with`: a cache used while the thread is torn down loses only
        // the deadlock check for the outer shard, instead of panicking.
        let nested = outer != 0 && OUTER.try_with(|held| held.borrow_mut().push(outer)).is_ok();
        Held {
            addr,
            nested,
            _here: std::marker::PhantomData,
        }
    }
}

impl Drop for Held {
    #[inline]
    fn drop(&mut self) {
        // `try_with`: the thread's locals may be gone if a cache is used while
        // the thread is being torn down.
        let _ = INNER.try_with(|inner| {
            if inner.get() == self.addr {
                // Innermost first, as guards almost always drop.
                let outer = match self.nested {
                    true => OUTER
                        .try_with(|held| held.borrow_mut().pop())
                        .ok()
                        .flatten(),
                    false => None,
                };
                inner.set(outer.unwrap_or(0));
            } else {
                let _ = OUTER.try_with(|held| {
                    let mut held = held.borrow_mut();
                    if let Some(at) = held.iter().rposition(|&a| a == self.addr) {
                        held.remove(at);
                    }
                });
            }
        });
    }
}

/// Panics if this thread holds the lock of the shard at `addr`. Called only
/// when the shard's lock could not be taken at once.
#[cold]
pub(crate) fn check(addr: usize) {
    if is_held(addr) {
        panic!("{MESSAGE}");
    }
}

/// Whether this thread holds the lock of the shard at `addr`.
fn is_held(addr: usize) -> bool {
    INNER.try_with(Cell::get).unwrap_or(0) == addr
        || OUTER
            .try_with(|held| held.borrow().contains(&addr))
            .unwrap_or(false)
}

#[cfg(all(test, not(larder_loom)))]
mod tests {
    use super::*;

    fn held(addrs: &[usize]) -> Vec<bool> {
        addrs.iter().map(|&a| is_held(a)).collect()
    }

    fn assert_nothing_held() {
        assert_eq!(INNER.with(Cell::get), 0);
        assert!(OUTER.with(|o| o.borrow().is_empty()));
    }

    #[test]
    fn nested_guards_are_all_held_until_each_drops() {
        let a = Held::enter(10);
        let b = Held::enter(20);
        let c = Held::enter(30);
        assert_eq!(held(&[10, 20, 30, 40]), [true, true, true, false]);
        drop(c);
        assert_eq!(held(&[10, 20, 30]), [true, true, false]);
        drop(b);
        assert_eq!(held(&[10, 20]), [true, false]);
        drop(a);
        assert_nothing_held();
    }

    #[test]
    fn guards_dropped_out_of_order_leave_nothing_behind() {
        let a = Held::enter(10);
        let b = Held::enter(20);
        drop(a);
        assert_eq!(held(&[10, 20]), [false, true]);
        drop(b);
        assert_nothing_held();
    }

    #[test]
    fn the_same_shard_entered_twice_is_held_until_both_drop() {
        let a = Held::enter(10);
        let again = Held::enter(10);
        drop(again);
        assert!(is_held(10));
        drop(a);
        assert_nothing_held();
    }

    #[test]
    #[should_panic(expected = "re-entrant call")]
    fn checking_a_held_shard_panics() {
        let _a = Held::enter(10);
        let _b = Held::enter(20);
        check(10);
    }
}
