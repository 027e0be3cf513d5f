//! # larder
//!
//! A fast, lean, concurrent in-process cache: a lock-striped hash map with per-entry
//! TTL, a bound on total weight, and CLOCK-family eviction whose hits take only a
//! shard *read* lock (or exact LRU, when asked for).
//!
//! ```
//! use larder::{Cache, Policy};
//! use std::time::Duration;
//!
//! let cache: Cache<u64, String> = Cache::builder()
//!     .max_entries(10_000)
//!     .time_to_live(Duration::from_secs(300))
//!     .build()?;
//! cache.insert(7, "seven".to_string());
//! assert_eq!(cache.get(&7).as_deref(), Some("seven"));
//! # Ok::<(), larder::BuildError>(())
//! ```
//!
//! ## What to read
//! - [`Cache`]: the operations, how the capacity is split over shards, what locks
//!   each method takes, and how expiry works without a background thread.
//! - [`CacheBuilder`]: capacity (entries or weight), policy, TTL, shards, listener,
//!   clock.
//! - [`Policy`]: the eviction policies and what their hits cost.
//! - [`Clock`]: real or manual time (tests never sleep).
//! - [`Cache::get_or_insert_with`] and [`Memoized`]: single-flight loading, one
//!   loader per key however many threads miss it at once.
//! - [`Cache::save`] and [`Cache::restore`] ([`snapshot`]): streaming snapshots with
//!   checksums, so a restarted process starts warm.
//!
//! ## Cargo features
//! | feature | what it adds |
//! |---|---|
//! | `memcached` | a sans-IO memcached codec and an executor over the cache (`larder::memcached`), and `larder::ring`: the ketama ring twemproxy routes keys with |
//! | `server` | `memcached` plus `larder::server`: a tokio memcached server, and the `larder-server` binary |
//! | `async` | `Cache::get_or_insert_with_async` and `Cache::try_get_or_insert_with_async`: single-flight loading for futures, on any executor (no runtime dependency) |
//!
//! Values are returned by clone: store `Arc<T>` or `bytes::Bytes` for large values.

#![deny(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod builder;
mod cache;
mod clock;
mod memoize;
mod policy;
mod reentry;
mod shard;
mod slab;
mod slotted;
pub mod snapshot;
mod sync;

#[cfg(feature = "memcached")]
pub mod memcached;
#[cfg(feature = "memcached")]
pub mod ring;
#[cfg(feature = "server")]
pub mod server;

pub use builder::{BuildError, CacheBuilder, MAX_SHARDS};
pub use cache::{Cache, CapacityError, Occupied, Op, RemovalCause, Stats};
pub use clock::{Clock, ManualClock};
pub use memoize::{Memoized, TryMemoized};
pub use policy::Policy;
pub use shard::SWEEP_STEP;

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
struct ReadmeDoctests;
