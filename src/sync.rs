//! The one place that names synchronisation primitives.
//!
//! Everything else in the crate imports locks and atomics from here, so the loom
//! model checker can swap in its own versions under `--cfg larder_loom` (the same
//! arrangement as tokio's `src/loom`). The normal build uses `parking_lot` locks and
//! `std` atomics; both shims expose the same small surface: `Mutex::lock` returning
//! its guard directly (no poisoning), and a `Condvar` whose `wait` takes the guard by
//! value and hands it back (loom's shape; parking_lot's `wait(&mut guard)` is wrapped
//! to match). The shards' reader-writer lock is [`crate::slotted`], built on
//! parking_lot's raw lock, or under loom on the `RwLock` shim below (`read`,
//! `write`, `try_read`, `try_write`, guards returned directly).

#[cfg(not(larder_loom))]
mod imp {
    pub(crate) use parking_lot::{Mutex, MutexGuard};
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
    pub(crate) use std::sync::Arc;
    pub(crate) use std::thread::{current as current_thread, ThreadId};

    /// parking_lot's `Condvar` with the guard passed by value, as loom wants it.
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }
        pub(crate) fn wait<'a, T>(&self, mut guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(&mut guard);
            guard
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }
}

#[cfg(larder_loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize};
    pub(crate) use loom::sync::{Arc, MutexGuard, RwLockReadGuard, RwLockWriteGuard};
    pub(crate) use loom::thread::{current as current_thread, ThreadId};

    /// A `Mutex` with parking_lot's guard-returning API, backed by loom.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

    impl<T> Mutex<T> {
        pub(crate) fn new(value: T) -> Self {
            Mutex(loom::sync::Mutex::new(value))
        }
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// loom's `Condvar` without poisoning.
    #[derive(Debug)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }
        pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
            self.0.wait(guard).unwrap_or_else(|e| e.into_inner())
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

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
        pub(crate) fn try_write(&self) -> Option<loom::sync::RwLockWriteGuard<'_, T>> {
            self.0.try_write().ok()
        }
    }
}

pub(crate) use imp::*;
