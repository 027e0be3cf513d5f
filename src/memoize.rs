//! Single-flight loading: [`Cache::get_or_insert_with`] and its variants run one
//! loader per key however many callers miss that key at once, and
//! [`Memoized`]/[`TryMemoized`] wrap a function around them.
//!
//! Each shard has a small table of the loads in flight for its keys ([`Flights`]: a
//! `Vec` of `(full hash, key, Arc<Flight>)` under a mutex of its own, never the shard
//! lock). A caller that misses looks its key up there: if a load is in flight it waits
//! on that [`Flight`] (a condition variable, or a list of wakers for async callers);
//! otherwise it registers a new flight and becomes the *leader*. The loader runs with
//! no lock held, so a slow loader blocks only the callers waiting for the same key.
//!
//! Invariants:
//! - A key has at most one flight in its table, and a flight is in the table only
//!   while its outcome is still `Loading`: the leader removes it from the table
//!   before it publishes an outcome, so a caller that finds a flight in the table
//!   will always be woken.
//! - A successful leader stores the value in the cache *before* it removes the
//!   flight, and a new leader checks the cache again *after* registering its flight
//!   (`peek`). So a caller that arrives just after a load finished finds the value
//!   in the cache, not an empty table, and does not load a second time.
//! - Every way a leader can stop without a value (an error, a panic in the loader or
//!   in `Clone`, an async leader's future being dropped) goes through
//!   [`Leader`]'s `Drop`, which publishes `Abandoned`: the waiters wake and retry,
//!   and one of them becomes the next leader. No waiter can hang on a dead leader.
//! - **A write during a load wins.** Every write to a key (`insert`, `remove`, a
//!   `compute` that changes it, and `clear` for every key) marks the key's flight
//!   *stale*, under the shard's write lock; the leader stores its value under the
//!   same lock only if the flight is not stale. The loaded value is still handed to
//!   the leader's caller and to the waiters, who asked before the write. A write
//!   that happens before the leader's second look (`peek`, after it registered) is
//!   seen by that look; one after it marks the flight. Writers look at the table
//!   only while the shard has a load in flight (`active`), so writes pay one
//!   relaxed load otherwise.
//! - The table's mutex is held only to scan, push or remove one entry (`Eq` and
//!   `Clone` of the key run under it; keys removed from it are dropped after it is
//!   released). The lock order is shard -> table: a writer marks flights while it
//!   holds the shard lock; nobody takes a shard lock while holding the table.

#![forbid(unsafe_code)]

use crate::cache::{Cache, Stats};
use crate::clock::ttl_ms;
use crate::sync::{Arc, AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex};
use std::borrow::Borrow;
use std::convert::Infallible;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// One shard's loads in flight. Usually empty; a linear scan is cheaper than a hash
/// table for the handful of concurrent misses a shard sees.
pub(crate) struct Flights<K, V> {
    table: Mutex<Vec<InFlight<K, V>>>,
    /// Entries in `table` (read by writers without the table's lock).
    active: AtomicUsize,
}

struct InFlight<K, V> {
    hash: u64,
    key: K,
    flight: Arc<Flight<V>>,
}

impl<K, V> Flights<K, V> {
    pub(crate) fn new() -> Self {
        Flights {
            table: Mutex::new(Vec::new()),
            active: AtomicUsize::new(0),
        }
    }

    /// The flight already loading `key` (`Err`), or a new one registered for it
    /// with `leader` as its synchronous leader's thread (`Ok`).
    fn join_or_register(
        &self,
        hash: u64,
        key: &K,
        leader: Option<crate::sync::ThreadId>,
    ) -> Result<Arc<Flight<V>>, Arc<Flight<V>>>
    where
        K: Eq + Clone,
    {
        let mut table = self.table.lock();
        if let Some(e) = table.iter().find(|e| e.hash == hash && e.key == *key) {
            return Err(e.flight.clone());
        }
        let flight = Arc::new(Flight::new(leader));
        self.active.fetch_add(1, Relaxed);
        table.push(InFlight {
            hash,
            key: key.clone(),
            flight: flight.clone(),
        });
        Ok(flight)
    }

    /// Takes `flight` out of the table; the caller drops what is returned (a key)
    /// after the table's lock is released.
    fn remove(&self, flight: &Arc<Flight<V>>) -> Option<InFlight<K, V>> {
        let mut table = self.table.lock();
        let i = table.iter().position(|e| Arc::ptr_eq(&e.flight, flight))?;
        self.active.fetch_sub(1, Relaxed);
        Some(table.swap_remove(i))
    }

    /// A write to `key` (full hash `hash`) is happening: a load of it in flight must
    /// not store its value. Called under the shard's write lock.
    #[inline]
    pub(crate) fn invalidate<Q>(&self, hash: u64, key: &Q)
    where
        K: Borrow<Q>,
        Q: Eq + ?Sized,
    {
        // Relaxed is enough: a leader registers its flight before it takes this
        // shard's lock to look for the key again, so a writer that takes the lock
        // after that look sees the count (the lock orders them).
        if self.active.load(Relaxed) == 0 {
            return;
        }
        let table = self.table.lock();
        if let Some(e) = table
            .iter()
            .find(|e| e.hash == hash && e.key.borrow() == key)
        {
            e.flight.stale.store(true, Relaxed);
        }
    }

    /// Every key of the shard is being written (`clear`).
    pub(crate) fn invalidate_all(&self) {
        if self.active.load(Relaxed) == 0 {
            return;
        }
        for e in self.table.lock().iter() {
            e.flight.stale.store(true, Relaxed);
        }
    }
}

/// Success, failure and time counts of loader runs; summed into [`Stats`].
#[derive(Default)]
pub(crate) struct LoadCounters {
    loads: AtomicU64,
    failures: AtomicU64,
    nanos: AtomicU64,
}

impl LoadCounters {
    pub(crate) fn add_to(&self, s: &mut Stats) {
        s.loads += self.loads.load(Relaxed);
        s.load_failures += self.failures.load(Relaxed);
        s.load_time += Duration::from_nanos(self.nanos.load(Relaxed));
    }
}

/// One load in flight: its outcome, and who to wake when it is known.
pub(crate) struct Flight<V> {
    state: Mutex<FlightState<V>>,
    ready: Condvar,
    /// Set by a write to the key while the load runs; read and written only under
    /// the key's shard write lock.
    stale: AtomicBool,
    /// The thread of a synchronous leader (a waiter on the same thread would wait
    /// for itself).
    leader: Option<crate::sync::ThreadId>,
}

struct FlightState<V> {
    outcome: Outcome<V>,
    /// Async waiters; a waiter's slot is cleared when its future is dropped.
    #[cfg(feature = "async")]
    wakers: Vec<Option<std::task::Waker>>,
}

enum Outcome<V> {
    Loading,
    /// The value, or `None` if nobody was waiting for it when it was published.
    Loaded(Option<V>),
    Abandoned,
}

impl<V> Flight<V> {
    fn new(leader: Option<crate::sync::ThreadId>) -> Self {
        Flight {
            state: Mutex::new(FlightState {
                outcome: Outcome::Loading,
                #[cfg(feature = "async")]
                wakers: Vec::new(),
            }),
            ready: Condvar::new(),
            stale: AtomicBool::new(false),
            leader,
        }
    }

    /// Publishes the outcome and wakes every waiter.
    fn publish(&self, outcome: Outcome<V>) {
        #[cfg(feature = "async")]
        let wakers = {
            let mut state = self.state.lock();
            state.outcome = outcome;
            std::mem::take(&mut state.wakers)
        };
        #[cfg(not(feature = "async"))]
        {
            self.state.lock().outcome = outcome;
        }
        self.ready.notify_all();
        #[cfg(feature = "async")]
        for waker in wakers.into_iter().flatten() {
            waker.wake();
        }
    }
}

impl<V: Clone> Flight<V> {
    /// Blocks until the outcome is known: the value, or `None` if the leader gave up.
    ///
    /// # Panics
    /// If the leader is this very thread (its loader asked for its own key), which
    /// would otherwise wait forever.
    fn wait(&self) -> Option<V> {
        if self.leader == Some(crate::sync::current_thread().id()) {
            panic!("{SELF_WAIT}");
        }
        let mut state = self.state.lock();
        loop {
            match &state.outcome {
                Outcome::Loading => state = self.ready.wait(state),
                Outcome::Loaded(v) => return v.clone(),
                Outcome::Abandoned => return None,
            }
        }
    }
}

/// What a loader that asks for its own key is told.
const SELF_WAIT: &str = "larder: re-entrant load: a loader passed to \
    `get_or_insert_with` (or a variant, or `Memoized`) asked for the key it is loading \
    (this would wait for itself forever)";

/// What a caller that missed should do next.
enum Claim<'a, K, V> {
    /// The value turned up in the cache after all.
    Ready(V),
    /// Another caller is loading it: wait on this flight.
    Wait(Arc<Flight<V>>),
    /// Load it: this caller's flight is registered.
    Lead(Leader<'a, K, V>),
}

/// The caller that runs the loader for a flight. Dropping it without calling
/// [`Leader::finish`] (error, panic, cancellation) abandons the flight and wakes the
/// waiters so that one of them can take over.
struct Leader<'a, K, V> {
    cache: &'a Cache<K, V>,
    hash: u64,
    flight: Arc<Flight<V>>,
    /// When the loader started (clock nanoseconds), once it has.
    started: Option<u64>,
    published: bool,
}

impl<K, V: Clone> Leader<'_, K, V> {
    fn start(&mut self) {
        self.started = Some(self.cache.clock.now_ns());
    }

    fn elapsed_ns(&self) -> Option<u64> {
        self.started
            .map(|t| self.cache.clock.now_ns().saturating_sub(t))
    }

    /// Removes the flight from the table, then hands `value` to its waiters.
    fn publish(mut self, value: V) -> V {
        drop(self.cache.flights(self.hash).remove(&self.flight));
        // Nobody can find the flight any more; if we hold the only reference, no
        // one is waiting and the clone can be skipped. If the clone panics, `Drop`
        // abandons the flight instead.
        let shared = (Arc::strong_count(&self.flight) > 1).then(|| value.clone());
        self.flight.publish(Outcome::Loaded(shared));
        self.published = true;
        value
    }
}

impl<K: Hash + Eq, V: Clone> Leader<'_, K, V> {
    /// Stores the loaded value (`ttl_ms`: `None` never expires) unless a write to
    /// the key happened while it loaded, then publishes it.
    fn finish(self, key: K, value: V, ttl_ms: Option<u64>) -> V {
        let (cache, ns) = (self.cache, self.elapsed_ns());
        cache.insert_inner(key, value.clone(), ttl_ms, Some(&self.flight.stale));
        let value = self.publish(value);
        // Counted only now: a panic above (in `Clone`, the weigher or the listener)
        // is counted as a failure by `Drop`.
        cache.loads.loads.fetch_add(1, Relaxed);
        cache.loads.nanos.fetch_add(ns.unwrap_or(0), Relaxed);
        value
    }
}

impl<K, V> Drop for Leader<'_, K, V> {
    fn drop(&mut self) {
        if self.published {
            return;
        }
        if let Some(t) = self.started {
            let counters = &self.cache.loads;
            counters.failures.fetch_add(1, Relaxed);
            let ns = self.cache.clock.now_ns().saturating_sub(t);
            counters.nanos.fetch_add(ns, Relaxed);
        }
        drop(self.cache.flights(self.hash).remove(&self.flight));
        self.flight.publish(Outcome::Abandoned);
    }
}

/// The key of a load: owned (the `Cache` methods) or borrowed and cloned only if
/// this caller has to store it ([`Memoized::get`]), so that hits never clone it.
enum KeyArg<'k, K> {
    Owned(K),
    Borrowed(&'k K),
}

impl<K: Clone> KeyArg<'_, K> {
    fn get(&self) -> &K {
        match self {
            KeyArg::Owned(k) => k,
            KeyArg::Borrowed(k) => k,
        }
    }

    fn into_owned(self) -> K {
        match self {
            KeyArg::Owned(k) => k,
            KeyArg::Borrowed(k) => k.clone(),
        }
    }
}

/// A loader's result: the value and its TTL in ms (`None`: never expires).
type Loaded<V, E> = Result<(V, Option<u64>), E>;

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone,
    V: Clone,
{
    /// How many callers are waiting for the load of `key` now in flight (0 if none
    /// is). For tests that must know that waiters have really joined a load.
    ///
    /// **Locking behaviour:** the shard's in-flight table mutex.
    #[doc(hidden)]
    pub fn load_waiters(&self, key: &K) -> usize {
        let hash = self.hash(key);
        let table = self.flights(hash).table.lock();
        table
            .iter()
            .find(|e| e.hash == hash && e.key == *key)
            // One reference is the table's, one the leader's; each waiter has one.
            .map_or(0, |e| Arc::strong_count(&e.flight).saturating_sub(2))
    }

    /// Joins the load in flight for `key`, or registers one and leads it.
    /// `sync`: the caller blocks its thread while it waits (a synchronous
    /// variant), so a waiter on the same thread is a loader waiting for itself.
    fn claim(&self, hash: u64, key: &K, sync: bool) -> Claim<'_, K, V> {
        let leader = sync.then(|| crate::sync::current_thread().id());
        let flight = match self.flights(hash).join_or_register(hash, key, leader) {
            Ok(registered) => registered,
            Err(in_flight) => return Claim::Wait(in_flight),
        };
        let leader = Leader {
            cache: self,
            hash,
            flight,
            started: None,
            published: false,
        };
        // A load that finished between our miss and our registration stored its
        // value before leaving the table: look again before loading.
        match self.peek(key) {
            Some(v) => Claim::Ready(leader.publish(v)),
            None => Claim::Lead(leader),
        }
    }

    /// The single-flight get-or-load behind every synchronous variant.
    #[inline]
    fn load<E>(&self, key: KeyArg<'_, K>, f: impl FnOnce() -> Loaded<V, E>) -> Result<V, E> {
        match self.get(key.get()) {
            Some(v) => Ok(v),
            None => self.load_missed(key, f),
        }
    }

    #[inline(never)]
    fn load_missed<E>(&self, key: KeyArg<'_, K>, f: impl FnOnce() -> Loaded<V, E>) -> Result<V, E> {
        let hash = self.hash(key.get());
        loop {
            match self.claim(hash, key.get(), true) {
                Claim::Ready(v) => return Ok(v),
                Claim::Wait(flight) => {
                    if let Some(v) = flight.wait() {
                        return Ok(v);
                    }
                    // The leader failed; this caller may be the next one.
                }
                Claim::Lead(mut leader) => {
                    leader.start();
                    // On an error or a panic, `leader` is dropped and abandons.
                    let (value, ttl) = f()?;
                    return Ok(leader.finish(key.into_owned(), value, ttl));
                }
            }
        }
    }

    /// The value for `key`, or the value `load` returns, which is stored with the
    /// cache's default TTL. However many threads miss the same key at once, `load`
    /// runs in one of them and the others wait for its value.
    ///
    /// The value is returned even if it could not be stored (heavier than its
    /// shard's share of the capacity). **A write during the load wins**: if `key` is
    /// inserted, removed or changed (or the cache cleared) while `load` runs, the
    /// loaded value is returned to this caller and to the waiters, but not stored.
    ///
    /// `K: Clone` because the key is kept in the table of loads in flight while
    /// `load` runs.
    ///
    /// **Locking behaviour:** a hit is a [`get`](Self::get). A miss briefly takes
    /// the shard's in-flight table mutex (not the shard lock) to join or start the
    /// load; `load` runs with no lock held, so it may use this cache, and other keys,
    /// in this shard or any other, are never blocked by it. Storing the value takes
    /// the shard's write lock, as [`insert`](Self::insert) does. Waiting callers
    /// block their thread until the loader finishes.
    ///
    /// # Panics
    /// If `load` panics, the panic propagates to this caller and nothing is stored;
    /// a caller waiting for the same key takes over and runs its own loader.
    ///
    /// A `load` that calls `get_or_insert_with` (or a variant) for its *own* key
    /// on its own thread panics with a message naming the rule (it would wait for
    /// itself forever).
    ///
    /// ```
    /// use larder::Cache;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    ///
    /// let cache: Cache<u64, String> = Cache::new(100);
    /// let calls = AtomicUsize::new(0);
    /// let load = || {
    ///     calls.fetch_add(1, Ordering::Relaxed);
    ///     "forty-two".to_string()
    /// };
    /// assert_eq!(cache.get_or_insert_with(42, load), "forty-two");
    /// assert_eq!(cache.get_or_insert_with(42, || unreachable!()), "forty-two");
    /// assert_eq!(calls.load(Ordering::Relaxed), 1);
    /// ```
    pub fn get_or_insert_with(&self, key: K, load: impl FnOnce() -> V) -> V {
        match self.load(KeyArg::Owned(key), || {
            Ok::<_, Infallible>((load(), self.ttl_ms))
        }) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with), for a loader that
    /// can fail. An error is returned to the caller whose loader returned it and is
    /// not cached; callers that were waiting for that load then retry, and one of
    /// them runs its own loader.
    ///
    /// **Locking behaviour:** as for [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// # Errors
    /// The error `load` returned, if this caller ran the loader and it failed.
    ///
    /// # Panics
    /// If `load` panics: as for [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// ```
    /// use larder::Cache;
    ///
    /// let cache: Cache<&str, u16> = Cache::new(100);
    /// let port = cache.try_get_or_insert_with("port", || "80x".parse::<u16>());
    /// assert!(port.is_err());
    /// assert!(!cache.contains_key("port")); // errors are not cached
    /// let port = cache.try_get_or_insert_with("port", || "8080".parse::<u16>())?;
    /// assert_eq!(port, 8080);
    /// # Ok::<(), std::num::ParseIntError>(())
    /// ```
    pub fn try_get_or_insert_with<E>(
        &self,
        key: K,
        load: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        self.load(KeyArg::Owned(key), || Ok((load()?, self.ttl_ms)))
    }

    /// Like [`get_or_insert_with`](Self::get_or_insert_with), where the loader also
    /// picks the value's TTL: `Some(ttl)`, or `None` for a value that never expires
    /// (as in [`Op::PutWithTtl`](crate::Op::PutWithTtl)). The cache's default TTL
    /// does not apply.
    ///
    /// **Locking behaviour:** as for [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// # Panics
    /// If `load` panics: as for [`get_or_insert_with`](Self::get_or_insert_with).
    ///
    /// ```
    /// use larder::{Cache, Clock};
    /// use std::time::Duration;
    ///
    /// let (clock, hand) = Clock::manual();
    /// let cache: Cache<&str, u32> = Cache::builder().max_entries(10).clock(clock).build()?;
    /// let token = cache.get_or_insert_with_ttl("token", || (1, Some(Duration::from_secs(60))));
    /// assert_eq!(token, 1);
    /// hand.advance(Duration::from_secs(60));
    /// // Expired: loaded again.
    /// let token = cache.get_or_insert_with_ttl("token", || (2, Some(Duration::from_secs(60))));
    /// assert_eq!(token, 2);
    /// # Ok::<(), larder::BuildError>(())
    /// ```
    pub fn get_or_insert_with_ttl(
        &self,
        key: K,
        load: impl FnOnce() -> (V, Option<Duration>),
    ) -> V {
        match self.load(KeyArg::Owned(key), || {
            let (v, ttl) = load();
            Ok::<_, Infallible>((v, ttl.map(ttl_ms)))
        }) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }
}

#[cfg(feature = "async")]
mod asynchronous {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Waits for a flight's outcome without blocking the executor: the task's waker
    /// is kept in the flight and woken when the outcome is published.
    struct Wait<'a, V> {
        flight: &'a Flight<V>,
        slot: Option<usize>,
    }

    impl<V: Clone> Future for Wait<'_, V> {
        type Output = Option<V>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<V>> {
            let this = self.get_mut();
            let mut state = this.flight.state.lock();
            match &state.outcome {
                Outcome::Loaded(v) => Poll::Ready(v.clone()),
                Outcome::Abandoned => Poll::Ready(None),
                Outcome::Loading => {
                    let waker = Some(cx.waker().clone());
                    match this.slot {
                        Some(i) => state.wakers[i] = waker,
                        None => {
                            this.slot = Some(state.wakers.len());
                            state.wakers.push(waker);
                        }
                    }
                    Poll::Pending
                }
            }
        }
    }

    impl<V> Drop for Wait<'_, V> {
        fn drop(&mut self) {
            // A cancelled waiter leaves no waker behind. The list is emptied when
            // the outcome is published, so the slot may be gone already.
            if let Some(i) = self.slot {
                let waker = self
                    .flight
                    .state
                    .lock()
                    .wakers
                    .get_mut(i)
                    .and_then(Option::take);
                drop(waker);
            }
        }
    }

    impl<K, V> Cache<K, V>
    where
        K: Hash + Eq + Clone,
        V: Clone,
    {
        async fn load_async<E>(
            &self,
            key: K,
            init: impl Future<Output = Loaded<V, E>>,
        ) -> Result<V, E> {
            if let Some(v) = self.get(&key) {
                return Ok(v);
            }
            let hash = self.hash(&key);
            loop {
                match self.claim(hash, &key, false) {
                    Claim::Ready(v) => return Ok(v),
                    Claim::Wait(flight) => {
                        let wait = Wait {
                            flight: &flight,
                            slot: None,
                        };
                        if let Some(v) = wait.await {
                            return Ok(v);
                        }
                        // The leader failed or was cancelled: take over if first.
                    }
                    Claim::Lead(mut leader) => {
                        leader.start();
                        // If this future is dropped here, so is `leader`, which
                        // abandons the flight and wakes a waiter to take over.
                        let (value, ttl) = init.await?;
                        return Ok(leader.finish(key, value, ttl));
                    }
                }
            }
        }

        /// The async form of [`get_or_insert_with`](Self::get_or_insert_with)
        /// (feature `async`, any executor): the value for `key`, or the output of
        /// `init`, stored with the cache's default TTL. However many tasks miss the
        /// same key at once, one `init` is awaited and the others wait for its
        /// value; their own `init` futures are dropped unpolled.
        ///
        /// Cancellation: if the task awaiting the loading `init` is dropped before
        /// it completes, one of the waiting tasks takes over and awaits its own
        /// `init`; the others keep waiting for that one.
        ///
        /// **Locking behaviour:** as for
        /// [`get_or_insert_with`](Self::get_or_insert_with), except that waiting
        /// tasks do not block their thread: they are woken through their `Waker`
        /// when the load finishes. No lock is held across an `.await`.
        ///
        /// # Panics
        /// If `init` panics, the panic propagates to this task and a waiting task
        /// takes over, as for a cancelled `init`.
        ///
        /// ```
        /// use larder::Cache;
        ///
        /// async fn fetch(id: u64) -> String {
        ///     format!("user {id}")
        /// }
        ///
        /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
        /// #     use std::task::{Context, Poll, Waker};
        /// #     let mut f = std::pin::pin!(f);
        /// #     let mut cx = Context::from_waker(Waker::noop());
        /// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
        /// # }
        /// let cache: Cache<u64, String> = Cache::new(100);
        /// block_on(async {
        ///     let name = cache.get_or_insert_with_async(7, fetch(7)).await;
        ///     assert_eq!(name, "user 7");
        ///     assert_eq!(cache.get(&7).as_deref(), Some("user 7"));
        /// });
        /// ```
        pub async fn get_or_insert_with_async(&self, key: K, init: impl Future<Output = V>) -> V {
            let ttl = self.ttl_ms;
            let init = async move { Ok::<_, Infallible>((init.await, ttl)) };
            match self.load_async(key, init).await {
                Ok(v) => v,
                Err(never) => match never {},
            }
        }

        /// The async form of
        /// [`try_get_or_insert_with`](Self::try_get_or_insert_with) (feature
        /// `async`): an error is returned to the task whose `init` produced it and
        /// is not cached; waiting tasks then retry, one of them with its own `init`.
        ///
        /// **Locking behaviour:** as for
        /// [`get_or_insert_with_async`](Self::get_or_insert_with_async).
        ///
        /// # Errors
        /// The error `init` returned, if this task ran the loader and it failed.
        ///
        /// ```
        /// use larder::Cache;
        ///
        /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
        /// #     use std::task::{Context, Poll, Waker};
        /// #     let mut f = std::pin::pin!(f);
        /// #     let mut cx = Context::from_waker(Waker::noop());
        /// #     loop { if let Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
        /// # }
        /// let cache: Cache<&str, u16> = Cache::new(100);
        /// block_on(async {
        ///     let bad = cache.try_get_or_insert_with_async("port", async { "x".parse::<u16>() });
        ///     assert!(bad.await.is_err());
        ///     let good = cache.try_get_or_insert_with_async("port", async { "80".parse::<u16>() });
        ///     assert_eq!(good.await, Ok(80));
        /// });
        /// ```
        pub async fn try_get_or_insert_with_async<E>(
            &self,
            key: K,
            init: impl Future<Output = Result<V, E>>,
        ) -> Result<V, E> {
            let ttl = self.ttl_ms;
            let init = async move { init.await.map(|v| (v, ttl)) };
            self.load_async(key, init).await
        }
    }
}

/// A function memoized in a [`Cache`]: [`get`](Self::get) returns the cached result
/// for a key, or calls the function once (however many threads ask at once, see
/// [`Cache::get_or_insert_with`]) and caches its result.
///
/// The cache's bound, policy and TTL apply as usual. Wrap a `Memoized` in an `Arc`
/// to share it between threads.
///
/// ```
/// use larder::{Cache, Memoized};
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// static CALLS: AtomicUsize = AtomicUsize::new(0);
///
/// /// Pretend this is slow (a network call, a big computation).
/// fn slow_square(n: &u64) -> u64 {
///     CALLS.fetch_add(1, Ordering::Relaxed);
///     n * n
/// }
///
/// let square = Memoized::new(Cache::new(1_000), slow_square);
/// assert_eq!(square.get(&12), 144);
/// assert_eq!(square.get(&12), 144); // from the cache
/// assert_eq!(CALLS.load(Ordering::Relaxed), 1);
/// assert_eq!(square.cache().stats().loads, 1);
/// ```
pub struct Memoized<K, V, F> {
    cache: Cache<K, V>,
    f: F,
}

impl<K, V, F> Memoized<K, V, F>
where
    K: Hash + Eq + Clone,
    V: Clone,
    F: Fn(&K) -> V,
{
    /// Memoizes `f` in `cache`.
    ///
    /// ```
    /// let len = larder::Memoized::new(larder::Cache::new(10), |s: &String| s.len());
    /// assert_eq!(len.get(&"four".to_string()), 4);
    /// ```
    pub fn new(cache: Cache<K, V>, f: F) -> Self {
        Memoized { cache, f }
    }

    /// `f(key)`, from the cache if it is there. The key is cloned only when it is
    /// stored.
    ///
    /// **Locking behaviour:** as for [`Cache::get_or_insert_with`]; `f` runs with no
    /// lock held and must not call `get` with the key it is computing.
    ///
    /// # Panics
    /// If `f` panics, as for [`Cache::get_or_insert_with`].
    ///
    /// ```
    /// let double = larder::Memoized::new(larder::Cache::new(10), |n: &u32| n * 2);
    /// assert_eq!(double.get(&21), 42);
    /// ```
    pub fn get(&self, key: &K) -> V {
        let ttl = self.cache.ttl_ms;
        match self.cache.load(KeyArg::Borrowed(key), || {
            Ok::<_, Infallible>(((self.f)(key), ttl))
        }) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }
}

impl<K, V, F> Memoized<K, V, F> {
    /// The cache holding the results (to read stats, invalidate or clear).
    ///
    /// ```
    /// let id = larder::Memoized::new(larder::Cache::new(10), |n: &u32| *n);
    /// id.get(&1);
    /// id.cache().remove(&1);
    /// assert!(id.cache().is_empty());
    /// ```
    pub fn cache(&self) -> &Cache<K, V> {
        &self.cache
    }
}

impl<K, V, F> fmt::Debug for Memoized<K, V, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memoized")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// A fallible function memoized in a [`Cache`]: like [`Memoized`], but errors are
/// returned to the caller and not cached (the next call tries again; see
/// [`Cache::try_get_or_insert_with`]).
///
/// ```
/// use larder::{Cache, TryMemoized};
///
/// let parse = TryMemoized::new(Cache::new(100), |s: &String| s.parse::<u32>());
/// assert_eq!(parse.get(&"12".to_string()), Ok(12));
/// assert!(parse.get(&"twelve".to_string()).is_err());
/// assert_eq!(parse.cache().len(), 1);
/// ```
pub struct TryMemoized<K, V, F> {
    cache: Cache<K, V>,
    f: F,
}

impl<K, V, E, F> TryMemoized<K, V, F>
where
    K: Hash + Eq + Clone,
    V: Clone,
    F: Fn(&K) -> Result<V, E>,
{
    /// Memoizes `f` in `cache`.
    ///
    /// ```
    /// let f = larder::TryMemoized::new(larder::Cache::new(10), |n: &u32| {
    ///     n.checked_mul(2).ok_or("overflow")
    /// });
    /// assert_eq!(f.get(&2), Ok(4));
    /// ```
    pub fn new(cache: Cache<K, V>, f: F) -> Self {
        TryMemoized { cache, f }
    }

    /// `f(key)`, from the cache if a success is there.
    ///
    /// **Locking behaviour:** as for [`Cache::try_get_or_insert_with`].
    ///
    /// # Errors
    /// The error `f` returned, if this caller ran it and it failed.
    ///
    /// ```
    /// let f = larder::TryMemoized::new(larder::Cache::new(10), |n: &u32| {
    ///     if *n == 0 { Err("zero") } else { Ok(100 / n) }
    /// });
    /// assert_eq!(f.get(&0), Err("zero"));
    /// assert_eq!(f.get(&5), Ok(20));
    /// ```
    pub fn get(&self, key: &K) -> Result<V, E> {
        let ttl = self.cache.ttl_ms;
        self.cache
            .load(KeyArg::Borrowed(key), || Ok(((self.f)(key)?, ttl)))
    }
}

impl<K, V, F> TryMemoized<K, V, F> {
    /// The cache holding the results.
    ///
    /// ```
    /// let f = larder::TryMemoized::new(larder::Cache::new(10), |n: &u32| Ok::<_, ()>(*n));
    /// assert!(f.cache().is_empty());
    /// ```
    pub fn cache(&self) -> &Cache<K, V> {
        &self.cache
    }
}

impl<K, V, F> fmt::Debug for TryMemoized<K, V, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryMemoized")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}
