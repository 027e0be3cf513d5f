//! The one place that names synchronisation primitives.
//!
//! Everything else in the crate imports locks and atomics from here, so the loom
//! model checker can swap in its own versions under `--cfg larder_loom` (the same
//! arrangement as tokio's `src/loom`). The normal build uses `parking_lot` locks and
//! `std` atomics; both shims expose the same small surface: `read`, `write`,
//! `try_read` and `try_write` returning guards directly (no poisoning).

#[cfg(not(larder_loom))]
mod imp {
    pub(crate) use parking_lot::RwLock;
    pub(crate) use std::sync::atomic::{AtomicU32, AtomicU64};
    pub(crate) use std::sync::Arc;
}

#[cfg(larder_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64};
    pub(crate) use loom::sync::Arc;

    /// A `RwLock` with parking_lot's guard-returning API, backed by loom.
    #[derive(Debug)]
    pub(crate) struct RwLock<T>(loom::sync::RwLock<T>);

    impl<T> RwLock<T> {
        pub(crate) fn new(value: T) -> Self {
            RwLock(loom::sync::RwLock::new(value))
        }
        pub(crate) fn read(&self) -> loom::sync::RwLockReadGuard<'_, T> {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }
        pub(crate) fn write(&self) -> loom::sync::RwLockWriteGuard<'_, T> {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
        pub(crate) fn try_read(&self) -> Option<loom::sync::RwLockReadGuard<'_, T>> {
            self.0.try_read().ok()
        }
    }
}

pub(crate) use imp::*;
