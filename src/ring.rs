//! A ketama consistent-hash ring that routes keys exactly as twemproxy does
//! (feature `memcached`).
//!
//! Several `larder-server` nodes become one cache when every client agrees on
//! which node owns which key. The memcached ecosystem agrees through *ketama*:
//! each server puts points on a 32-bit circle, and a key belongs to the first
//! point at or after its hash. This module reproduces the variant of twemproxy
//! (nutcracker 0.5.0) with `distribution: ketama` and `hash: fnv1a_64`, so a
//! program can predict which node a proxy will send a key to (to warm a node,
//! to inspect a node, or to route without the proxy), and so the cluster test
//! can check that a pool of larder servers behind nutcracker is laid out as
//! expected.
//!
//! The details that decide agreement, all reproduced here:
//!
//! - **Point names.** A server contributes points named `"<id>-<i>"` for
//!   `i = 0, 1, …`, where `<id>` is the server's name when the configuration
//!   gives one (`"127.0.0.1:11212:1 alpha"`), else `"host:port"` as written —
//!   except that port 11211 is left out (`"host"`), for libmemcached
//!   compatibility. A Unix socket `"/path:weight"` is named `"/path:"`.
//! - **Point count.** With `n` live servers of total weight `W`, a server of
//!   weight `w` gets `floor(w / W * 160 / 4 * n) * 4` points, computed in
//!   single precision like twemproxy's C. Equal weights give 160 points each.
//! - **Point values.** The MD5 digest of each point name gives four points: the
//!   four little-endian `u32`s of the digest.
//! - **Key hash.** twemproxy's `fnv1a_64` ([`fnv1a_64`]) is FNV-1a over 32 bits
//!   seeded and multiplied with the low halves of the 64-bit constants, and
//!   each key byte is sign-extended as a C `char`, so bytes >= 0x80 differ from
//!   textbook FNV.
//! - **Dispatch.** The first point whose value is >= the key's hash, wrapping to
//!   the first point; an empty key, or a pool of one server, hashes to 0.
//!
//! Ejection (`auto_eject_hosts`) rebuilds the ring from the live servers only:
//! [`Ring::without`] models it. Servers keep their points when others leave,
//! which is what makes removing one of `n` nodes move only that node's keys.
//!
//! ```
//! use larder::ring::Ring;
//!
//! let ring = Ring::builder()
//!     .server("127.0.0.1:22121", 1)
//!     .server("127.0.0.1:22122", 1)
//!     .server("127.0.0.1:22123", 1)
//!     .build()?;
//! let node = ring.node_for(b"user:42");
//! assert!(node < 3);
//! assert_eq!(ring.server_for(b"user:42"), ring.server(node));
//! # Ok::<(), larder::ring::RingError>(())
//! ```

#![forbid(unsafe_code)]

use std::fmt;

/// MD5 as ketama uses it: the digest of a point name, cut into ring points.
///
/// MD5 only has to be a fixed, well-mixed function here (matching twemproxy
/// bit for bit), not a secure one; RustCrypto's `md-5` supplies it.
mod md5 {
    use ::md5::{Digest, Md5};

    /// The 16-byte MD5 digest of `data`.
    pub(super) fn digest(data: &[u8]) -> [u8; 16] {
        Md5::digest(data).into()
    }
}

/// The Rust example in docs/scale-out.md compiles and runs.
#[doc = include_str!("../docs/scale-out.md")]
#[cfg(doctest)]
struct ScaleOutDoctests;

/// Points per server at equal weights (twemproxy's `KETAMA_POINTS_PER_SERVER`).
pub const POINTS_PER_SERVER: u32 = 160;

/// twemproxy formats each point name into a buffer of this many bytes,
/// terminator included (`KETAMA_MAX_HOSTLEN`); a longer name would be hashed
/// from past the end of that buffer, so [`RingBuilder::build`] refuses it.
pub const MAX_POINT_NAME: usize = 85;

/// The port libmemcached and twemproxy leave out of a server's point names.
const KETAMA_DEFAULT_PORT: &str = "11211";

/// Points one MD5 digest yields.
const POINTS_PER_HASH: u32 = 4;

/// twemproxy's `fnv1a_64` key hash.
///
/// FNV-1a with the 64-bit offset basis and prime truncated to their low 32
/// bits, computed in 32 bits. Each byte is XORed in after sign extension
/// (twemproxy reads keys as C `char`, signed on x86-64, where Debian's
/// `nutcracker` runs), so keys with bytes >= 0x80 hash differently from
/// textbook FNV-1a.
///
/// ```
/// use larder::ring::fnv1a_64;
///
/// assert_eq!(fnv1a_64(b""), 0x8422_2325);
/// assert_eq!(fnv1a_64(b"a"), 0x8601_ec8c);
/// ```
pub fn fnv1a_64(key: &[u8]) -> u32 {
    const OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET_BASIS as u32;
    for &byte in key {
        hash ^= byte as i8 as i32 as u32;
        hash = hash.wrapping_mul(PRIME as u32);
    }
    hash
}

/// Why a ring could not be built. `server` is the index of the offending
/// server in the order servers were added.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RingError {
    /// No server was added.
    NoServers,
    /// The server's weight is zero (twemproxy refuses it too).
    ZeroWeight {
        /// Index of the server.
        server: usize,
    },
    /// The address is not `host:port` with a port in 1..=65535, nor a Unix
    /// socket path starting with `/`; or a twemproxy server line is not
    /// `host:port:weight [name]`.
    InvalidAddress {
        /// Index of the server.
        server: usize,
    },
    /// The name is empty or contains whitespace.
    InvalidName {
        /// Index of the server.
        server: usize,
    },
    /// A point name would exceed [`MAX_POINT_NAME`] bytes.
    NameTooLong {
        /// Index of the server.
        server: usize,
    },
    /// Two servers hash under the same name, so they would share points
    /// (twemproxy refuses such a pool).
    DuplicateName {
        /// Index of the second server with that name.
        server: usize,
    },
    /// Ejecting the server would leave no live server.
    NoLiveServers,
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RingError::NoServers => f.write_str("a ring needs at least one server"),
            RingError::ZeroWeight { server } => write!(f, "server {server} has weight 0"),
            RingError::InvalidAddress { server } => write!(
                f,
                "server {server}: expected host:port (port 1-65535) or a /unix/socket path"
            ),
            RingError::InvalidName { server } => {
                write!(
                    f,
                    "server {server}: a name must be non-empty and without whitespace"
                )
            }
            RingError::NameTooLong { server } => write!(
                f,
                "server {server}: its point names would exceed {MAX_POINT_NAME} bytes"
            ),
            RingError::DuplicateName { server } => {
                write!(
                    f,
                    "server {server} hashes under the same name as an earlier one"
                )
            }
            RingError::NoLiveServers => f.write_str("ejecting that server would leave none live"),
        }
    }
}

impl std::error::Error for RingError {}

/// One configured server.
#[derive(Clone, Debug)]
struct Server {
    addr: String,
    weight: u32,
    name: Option<String>,
    /// The prefix of this server's point names.
    id: String,
}

/// One point of the continuum: a position and the server that owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Point {
    value: u32,
    server: u32,
}

/// A pending server, validated in [`RingBuilder::build`].
#[derive(Clone, Debug)]
enum Spec {
    Server {
        addr: String,
        weight: u32,
        name: Option<String>,
    },
    /// A twemproxy line that did not parse.
    Malformed,
}

/// Collects servers for a [`Ring`]. Made by [`Ring::builder`].
///
/// Servers are numbered in the order they are added; [`Ring::node_for`]
/// returns those numbers. (twemproxy numbers its servers in name order
/// instead, which changes no routing: only the labels differ.)
///
/// ```
/// use larder::ring::Ring;
///
/// let ring = Ring::builder()
///     .server("10.0.0.1:11211", 1)
///     .named_server("10.0.0.2:11211", 2, "big")
///     .twemproxy_server("10.0.0.3:11211:1 small")
///     .build()?;
/// assert_eq!(ring.len(), 3);
/// # Ok::<(), larder::ring::RingError>(())
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct RingBuilder {
    specs: Vec<Spec>,
}

impl RingBuilder {
    /// Adds a server by address (`"host:port"` or `"/unix/socket"`), hashed
    /// under its address (`"host:port"`, or `"host"` when the port is 11211).
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder().server("127.0.0.1:22121", 1).build()?;
    /// assert_eq!(ring.server(0), "127.0.0.1:22121");
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn server(mut self, addr: impl Into<String>, weight: u32) -> Self {
        self.specs.push(Spec::Server {
            addr: addr.into(),
            weight,
            name: None,
        });
        self
    }

    /// Adds a server hashed under `name` instead of its address, like
    /// twemproxy's `"host:port:weight name"`. Named servers keep their keys
    /// when they move to another address.
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let a = Ring::builder().named_server("10.0.0.1:11211", 1, "alpha")
    ///     .named_server("10.0.0.2:11211", 1, "beta").build()?;
    /// let b = Ring::builder().named_server("10.9.9.9:22122", 1, "alpha")
    ///     .named_server("10.0.0.2:11211", 1, "beta").build()?;
    /// assert_eq!(a.node_for(b"k"), b.node_for(b"k"));
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn named_server(
        mut self,
        addr: impl Into<String>,
        weight: u32,
        name: impl Into<String>,
    ) -> Self {
        self.specs.push(Spec::Server {
            addr: addr.into(),
            weight,
            name: Some(name.into()),
        });
        self
    }

    /// Adds a server written as in twemproxy's `servers:` list:
    /// `"host:port:weight"` or `"host:port:weight name"` (or
    /// `"/unix/socket:weight [name]"`). A line that does not parse makes
    /// [`build`](Self::build) fail with [`RingError::InvalidAddress`].
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder()
    ///     .twemproxy_server("127.0.0.1:22121:1")
    ///     .twemproxy_server("127.0.0.1:22122:1 beta")
    ///     .build()?;
    /// assert_eq!(ring.server(1), "127.0.0.1:22122");
    /// assert_eq!(ring.name(1), Some("beta"));
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn twemproxy_server(mut self, line: &str) -> Self {
        let line = line.trim();
        let (spec, name) = match line.split_once(' ') {
            Some((spec, name)) => (spec, Some(name.trim())),
            None => (line, None),
        };
        let parsed = spec.rsplit_once(':').and_then(|(addr, weight)| {
            let weight = weight.parse::<u32>().ok()?;
            Some(Spec::Server {
                addr: addr.to_string(),
                weight,
                name: name.map(str::to_string),
            })
        });
        self.specs.push(parsed.unwrap_or(Spec::Malformed));
        self
    }

    /// Validates the servers and builds the ring with all of them live.
    ///
    /// # Errors
    /// [`RingError`] names the first server that is invalid: a zero weight, an
    /// address without a valid port, an empty or spaced name, a point name
    /// longer than [`MAX_POINT_NAME`], or two servers hashed under the same
    /// name; or [`RingError::NoServers`].
    ///
    /// ```
    /// use larder::ring::{Ring, RingError};
    ///
    /// assert_eq!(Ring::builder().build().unwrap_err(), RingError::NoServers);
    /// assert_eq!(
    ///     Ring::builder().server("127.0.0.1", 1).build().unwrap_err(),
    ///     RingError::InvalidAddress { server: 0 },
    /// );
    /// ```
    pub fn build(self) -> Result<Ring, RingError> {
        if self.specs.is_empty() {
            return Err(RingError::NoServers);
        }
        let mut servers: Vec<Server> = Vec::with_capacity(self.specs.len());
        for (index, spec) in self.specs.into_iter().enumerate() {
            let Spec::Server { addr, weight, name } = spec else {
                return Err(RingError::InvalidAddress { server: index });
            };
            let server = Server::new(index, addr, weight, name)?;
            if servers.iter().any(|s| s.id == server.id) {
                return Err(RingError::DuplicateName { server: index });
            }
            servers.push(server);
        }
        let live = vec![true; servers.len()];
        Ring::with_live(servers, live)
    }
}

impl Server {
    fn new(
        index: usize,
        addr: String,
        weight: u32,
        name: Option<String>,
    ) -> Result<Server, RingError> {
        if weight == 0 {
            return Err(RingError::ZeroWeight { server: index });
        }
        let invalid = RingError::InvalidAddress { server: index };
        let id = if addr.starts_with('/') {
            // twemproxy takes the name of an unnamed Unix socket as the path
            // plus the separator before the (absent) port.
            format!("{addr}:")
        } else {
            let (host, port) = addr.rsplit_once(':').ok_or(invalid)?;
            let valid_port = !port.is_empty()
                && port.bytes().all(|b| b.is_ascii_digit())
                && port.parse::<u32>().is_ok_and(|p| (1..=65535).contains(&p));
            if host.is_empty() || !valid_port {
                return Err(invalid);
            }
            if port == KETAMA_DEFAULT_PORT {
                host.to_string()
            } else {
                addr.clone()
            }
        };
        if addr.chars().any(char::is_whitespace) {
            return Err(invalid);
        }
        let id = match &name {
            Some(name) if name.is_empty() || name.chars().any(char::is_whitespace) => {
                return Err(RingError::InvalidName { server: index })
            }
            Some(name) => name.clone(),
            None => id,
        };
        Ok(Server {
            addr,
            weight,
            name,
            id,
        })
    }
}

/// A ketama continuum over a fixed list of servers, some of which may be
/// ejected. Immutable and cheap to query: [`node_for`](Self::node_for) is one
/// FNV pass over the key and a binary search over `160 * live servers` points.
///
/// ```
/// use larder::ring::Ring;
///
/// let ring = Ring::builder()
///     .server("127.0.0.1:22121", 1)
///     .server("127.0.0.1:22122", 1)
///     .build()?;
/// let owner = ring.node_for(b"session:7");
/// // While `owner` is ejected, its keys go to the other server.
/// let degraded = ring.without(owner)?;
/// assert_eq!(degraded.node_for(b"session:7"), 1 - owner);
/// # Ok::<(), larder::ring::RingError>(())
/// ```
#[derive(Clone, Debug)]
pub struct Ring {
    servers: Vec<Server>,
    live: Vec<bool>,
    continuum: Vec<Point>,
}

impl Ring {
    /// Starts a [`RingBuilder`].
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder().server("127.0.0.1:22121", 1).build()?;
    /// assert_eq!(ring.node_for(b"anything"), 0);
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn builder() -> RingBuilder {
        RingBuilder::default()
    }

    fn with_live(servers: Vec<Server>, live: Vec<bool>) -> Result<Ring, RingError> {
        let live_count = live.iter().filter(|&&l| l).count();
        if live_count == 0 {
            return Err(RingError::NoLiveServers);
        }
        let total_weight: u32 = servers
            .iter()
            .zip(&live)
            .filter(|(_, &l)| l)
            .map(|(s, _)| s.weight)
            .fold(0u32, u32::saturating_add);
        let mut continuum = Vec::with_capacity(live_count * POINTS_PER_SERVER as usize);
        for (index, server) in servers.iter().enumerate() {
            if !live[index] {
                continue;
            }
            let points = points_for(server.weight, total_weight, live_count as u32);
            let names = points / POINTS_PER_HASH;
            if names > 0 {
                let longest = server.id.len() + 1 + (names - 1).to_string().len();
                if longest > MAX_POINT_NAME {
                    return Err(RingError::NameTooLong { server: index });
                }
            }
            for i in 0..names {
                let digest = md5::digest(format!("{}-{}", server.id, i).as_bytes());
                for slice in digest.chunks_exact(4) {
                    continuum.push(Point {
                        value: u32::from_le_bytes([slice[0], slice[1], slice[2], slice[3]]),
                        server: index as u32,
                    });
                }
            }
        }
        // Equal values (vanishingly rare) are ordered by server index; twemproxy
        // leaves them to qsort.
        continuum.sort_unstable();
        Ok(Ring {
            servers,
            live,
            continuum,
        })
    }

    /// The ring twemproxy uses while `server` is ejected: that server has no
    /// points and the live servers are re-weighted among themselves. Servers
    /// keep their indices. Ejecting an already ejected server changes nothing.
    ///
    /// # Errors
    /// [`RingError::NoLiveServers`] if `server` is the last live one.
    ///
    /// # Panics
    /// If `server` is not below [`len`](Self::len).
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder()
    ///     .server("127.0.0.1:22121", 1)
    ///     .server("127.0.0.1:22122", 1)
    ///     .server("127.0.0.1:22123", 1)
    ///     .build()?;
    /// let two = ring.without(2)?;
    /// assert!(!two.is_live(2));
    /// assert_ne!(two.node_for(b"some key"), 2);
    /// assert!(two.without(0)?.without(1).is_err());
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn without(&self, server: usize) -> Result<Ring, RingError> {
        assert!(server < self.servers.len(), "server {server} out of range");
        let mut live = self.live.clone();
        live[server] = false;
        Ring::with_live(self.servers.clone(), live)
    }

    /// The server that owns `key`: its index in the order servers were added.
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder()
    ///     .server("127.0.0.1:22121", 1)
    ///     .server("127.0.0.1:22122", 1)
    ///     .build()?;
    /// assert_eq!(ring.node_for(b"user:1"), ring.node_for(b"user:1"));
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn node_for(&self, key: &[u8]) -> usize {
        self.node_for_hash(self.hash(key))
    }

    /// The address of the server that owns `key`.
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder().server("127.0.0.1:22121", 1).build()?;
    /// assert_eq!(ring.server_for(b"k"), "127.0.0.1:22121");
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn server_for(&self, key: &[u8]) -> &str {
        self.server(self.node_for(key))
    }

    /// The hash twemproxy dispatches `key` by: [`fnv1a_64`], except 0 for an
    /// empty key or a pool of one server (twemproxy skips hashing there).
    ///
    /// ```
    /// use larder::ring::{fnv1a_64, Ring};
    ///
    /// let ring = Ring::builder()
    ///     .server("127.0.0.1:22121", 1)
    ///     .server("127.0.0.1:22122", 1)
    ///     .build()?;
    /// assert_eq!(ring.hash(b"k"), fnv1a_64(b"k"));
    /// assert_eq!(ring.hash(b""), 0);
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn hash(&self, key: &[u8]) -> u32 {
        if self.servers.len() == 1 || key.is_empty() {
            0
        } else {
            fnv1a_64(key)
        }
    }

    /// The server that owns the first point at or after `hash`, wrapping
    /// around past the last point.
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder()
    ///     .server("127.0.0.1:22121", 1)
    ///     .server("127.0.0.1:22122", 1)
    ///     .build()?;
    /// // Past the last point, the ring wraps to the first one.
    /// assert_eq!(ring.node_for_hash(u32::MAX), ring.node_for_hash(0));
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn node_for_hash(&self, hash: u32) -> usize {
        let at = self.continuum.partition_point(|p| p.value < hash);
        let point = self.continuum.get(at).unwrap_or(&self.continuum[0]);
        point.server as usize
    }

    /// How many servers the ring was built with, live or ejected.
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder().server("127.0.0.1:22121", 1).build()?;
    /// assert_eq!(ring.len(), 1);
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    #[allow(clippy::len_without_is_empty)] // a ring is never empty
    pub fn len(&self) -> usize {
        self.servers.len()
    }

    /// The address server `index` was added with.
    ///
    /// # Panics
    /// If `index` is not below [`len`](Self::len).
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder().server("127.0.0.1:22121", 1).build()?;
    /// assert_eq!(ring.server(0), "127.0.0.1:22121");
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn server(&self, index: usize) -> &str {
        &self.servers[index].addr
    }

    /// The name server `index` was added with, if any.
    ///
    /// # Panics
    /// If `index` is not below [`len`](Self::len).
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder().named_server("127.0.0.1:22121", 1, "a").build()?;
    /// assert_eq!(ring.name(0), Some("a"));
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn name(&self, index: usize) -> Option<&str> {
        self.servers[index].name.as_deref()
    }

    /// The weight server `index` was added with.
    ///
    /// # Panics
    /// If `index` is not below [`len`](Self::len).
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder().server("127.0.0.1:22121", 3).build()?;
    /// assert_eq!(ring.weight(0), 3);
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn weight(&self, index: usize) -> u32 {
        self.servers[index].weight
    }

    /// Whether server `index` has points (is not ejected).
    ///
    /// # Panics
    /// If `index` is not below [`len`](Self::len).
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder().server("127.0.0.1:22121", 1).build()?;
    /// assert!(ring.is_live(0));
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn is_live(&self, index: usize) -> bool {
        self.live[index]
    }

    /// How many points server `index` has on the continuum (0 when ejected).
    ///
    /// # Panics
    /// If `index` is not below [`len`](Self::len).
    ///
    /// ```
    /// use larder::ring::Ring;
    ///
    /// let ring = Ring::builder()
    ///     .server("127.0.0.1:22121", 1)
    ///     .server("127.0.0.1:22122", 3)
    ///     .build()?;
    /// assert_eq!(ring.points(0), 80);
    /// assert_eq!(ring.points(1), 240);
    /// # Ok::<(), larder::ring::RingError>(())
    /// ```
    pub fn points(&self, index: usize) -> usize {
        assert!(index < self.servers.len(), "server {index} out of range");
        self.continuum
            .iter()
            .filter(|p| p.server as usize == index)
            .count()
    }
}

/// twemproxy's points for one server, in its float arithmetic:
/// `floorf((float)(pct * 160 / 4 * n + 1e-10)) * 4` with `pct` a `float`.
/// The `1e-10` is added in double precision and lost again when the sum is
/// rounded back to `float`, but is kept so every rounding step matches.
fn points_for(weight: u32, total_weight: u32, live: u32) -> u32 {
    let pct = weight as f32 / total_weight as f32;
    let scaled = pct * POINTS_PER_SERVER as f32 / POINTS_PER_HASH as f32 * live as f32;
    let nudged = (scaled as f64 + 0.000_000_000_1) as f32;
    (nudged.floor() * POINTS_PER_HASH as f32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    /// twemproxy's example ports. How evenly ketama spreads keys depends on
    /// the point names (see `spread_depends_on_the_server_names`); these
    /// three hold 34.4%, 33.3% and 32.3% of `keys(100_000)`.
    fn three() -> Ring {
        Ring::builder()
            .server("127.0.0.1:22121", 1)
            .server("127.0.0.1:22122", 1)
            .server("127.0.0.1:22123", 1)
            .build()
            .unwrap()
    }

    fn keys(n: usize) -> impl Iterator<Item = Vec<u8>> {
        (0..n).map(|i| format!("key:{i}").into_bytes())
    }

    #[test]
    fn fnv1a_64_matches_twemproxy_on_ascii_keys() {
        // For ASCII, twemproxy's 32-bit computation equals the low half of
        // textbook 64-bit FNV-1a.
        for key in [
            &b""[..],
            b"a",
            b"foobar",
            b"key:12345",
            b"user/session/0042",
        ] {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325;
            for &b in key {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            assert_eq!(fnv1a_64(key), h as u32);
        }
        assert_eq!(fnv1a_64(b"foobar"), 0xf739_67e8);
        assert_eq!(fnv1a_64(b"a"), 0x8601_ec8c);
    }

    #[test]
    fn fnv1a_64_sign_extends_high_bytes_like_a_c_char() {
        // 0xe9 is XORed in as 0xffffffe9.
        let expected = (0x8422_2325u32 ^ 0xffff_ffe9).wrapping_mul(0x1b3);
        assert_eq!(fnv1a_64(&[0xe9]), expected);
        assert_ne!(
            fnv1a_64(&[0xe9]),
            (0x8422_2325u32 ^ 0xe9).wrapping_mul(0x1b3)
        );
    }

    #[test]
    fn equal_weights_give_160_points_each() {
        let ring = three();
        for i in 0..3 {
            assert_eq!(ring.points(i), 160);
        }
    }

    #[test]
    fn weights_scale_points_like_twemproxy() {
        // 1:2:3 of 3 servers: floor(w/6 * 40 * 3) * 4 = 80, 160, 240.
        let ring = Ring::builder()
            .server("h:1", 1)
            .server("h:2", 2)
            .server("h:3", 3)
            .build()
            .unwrap();
        assert_eq!(
            [ring.points(0), ring.points(1), ring.points(2)],
            [80, 160, 240]
        );
        assert_eq!(points_for(1, 3, 3), 160);
        assert_eq!(points_for(1, 3, 2), 104);
    }

    #[test]
    fn float_rounding_drops_a_hash_exactly_where_twemproxy_does() {
        // A C program with twemproxy's expression (gcc, x86-64) differs from
        // exact arithmetic, over n = 1..=40 servers where one has weight
        // w = 1..=5 and the others `rest` = 1..=5, only at 25 equal servers:
        // 1/25 in f32 * 40 * 25 lands just below 40, so each gets 156 points.
        let mut differ = Vec::new();
        for n in 1..=40u32 {
            for w in 1..=5u32 {
                for rest in 1..=5u32 {
                    let total = w + rest * (n - 1);
                    if points_for(w, total, n) != (w * 40 * n / total) * 4 {
                        differ.push((w, total, n, points_for(w, total, n)));
                    }
                }
            }
        }
        let expected: Vec<_> = (1..=5).map(|w| (w, 25 * w, 25, 156)).collect();
        assert_eq!(differ, expected);
    }

    #[test]
    fn point_names_follow_twemproxy() {
        let named = Server::new(0, "10.0.0.1:22122".into(), 1, Some("alpha".into())).unwrap();
        assert_eq!(named.id, "alpha");
        let plain = Server::new(0, "10.0.0.1:22122".into(), 1, None).unwrap();
        assert_eq!(plain.id, "10.0.0.1:22122");
        let default_port = Server::new(0, "10.0.0.1:11211".into(), 1, None).unwrap();
        assert_eq!(default_port.id, "10.0.0.1");
        let unix = Server::new(0, "/run/larder.sock".into(), 1, None).unwrap();
        assert_eq!(unix.id, "/run/larder.sock:");
    }

    #[test]
    fn the_first_point_of_a_server_is_the_md5_of_its_first_name() {
        // md5("larder-a-0") cut into little-endian u32s.
        let ring = Ring::builder()
            .named_server("127.0.0.1:40001", 1, "larder-a")
            .build()
            .unwrap();
        let digest = md5::digest(b"larder-a-0");
        let first = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);
        assert!(ring.continuum.iter().any(|p| p.value == first));
        assert_eq!(ring.continuum.len(), 160);
    }

    #[test]
    fn dispatch_takes_the_first_point_at_or_after_the_hash_and_wraps() {
        let ring = three();
        let points = &ring.continuum;
        let p = points[10];
        assert_eq!(ring.node_for_hash(p.value), p.server as usize);
        assert_eq!(ring.node_for_hash(p.value + 1), points[11].server as usize);
        let last = points[points.len() - 1];
        if last.value < u32::MAX {
            assert_eq!(
                ring.node_for_hash(last.value + 1),
                points[0].server as usize
            );
        }
    }

    #[test]
    fn three_equal_nodes_share_keys_within_15_percent_of_a_third() {
        let ring = three();
        let mut counts = [0usize; 3];
        for key in keys(100_000) {
            counts[ring.node_for(&key)] += 1;
        }
        for (node, &count) in counts.iter().enumerate() {
            let share = count as f64 / 100_000.0;
            assert!(
                (share - 1.0 / 3.0).abs() <= 0.15 / 3.0,
                "node {node} holds {share:.3} of the keys: {counts:?}"
            );
        }
    }

    #[test]
    fn spread_depends_on_the_server_names() {
        // 160 points per server leave each share a few percent off a third, so
        // one pool may be uneven while pools average out. Named "larder-a..c",
        // the third server holds only 27.5% of the keys; over 30 address sets,
        // the first server averages a third and no share leaves 15%..55%.
        let named = Ring::builder()
            .named_server("h:1", 1, "larder-a")
            .named_server("h:2", 1, "larder-b")
            .named_server("h:3", 1, "larder-c")
            .build()
            .unwrap();
        let third = keys(100_000).filter(|k| named.node_for(k) == 2).count();
        assert_eq!(third, 27_482);
        let mut first_total = 0.0;
        for pool in 0..30u32 {
            let ring = (0..3u32)
                .fold(Ring::builder(), |b, i| {
                    b.server(format!("10.0.{pool}.{i}:11211"), 1)
                })
                .build()
                .unwrap();
            let mut counts = [0usize; 3];
            for key in keys(20_000) {
                counts[ring.node_for(&key)] += 1;
            }
            for count in counts {
                let share = count as f64 / 20_000.0;
                assert!((0.15..=0.55).contains(&share), "pool {pool}: {counts:?}");
            }
            first_total += counts[0] as f64 / 20_000.0;
        }
        let mean = first_total / 30.0;
        assert!((mean - 1.0 / 3.0).abs() < 0.03, "mean share {mean:.3}");
    }

    #[test]
    fn adding_a_fourth_node_moves_about_a_quarter_of_the_keys_all_to_it() {
        let three = three();
        let four = Ring::builder()
            .server("127.0.0.1:22121", 1)
            .server("127.0.0.1:22122", 1)
            .server("127.0.0.1:22123", 1)
            .server("127.0.0.1:22124", 1)
            .build()
            .unwrap();
        let mut moved = 0;
        for key in keys(100_000) {
            let (before, after) = (three.node_for(&key), four.node_for(&key));
            if before != after {
                assert_eq!(after, 3, "a key moved between old nodes");
                moved += 1;
            }
        }
        let share = moved as f64 / 100_000.0;
        assert!((0.20..=0.30).contains(&share), "moved {share:.3}");
    }

    #[test]
    fn ejecting_a_node_moves_only_its_keys() {
        let ring = three();
        let two = ring.without(1).unwrap();
        assert_eq!(two.points(1), 0);
        let mut moved = 0;
        for key in keys(100_000) {
            let before = ring.node_for(&key);
            let after = two.node_for(&key);
            if before == 1 {
                assert_ne!(after, 1);
                moved += 1;
            } else {
                assert_eq!(after, before, "a key of a live node moved");
            }
        }
        let share = moved as f64 / 100_000.0;
        assert!((0.28..=0.39).contains(&share), "moved {share:.3}");
    }

    #[test]
    fn ejecting_every_node_is_refused() {
        let ring = three();
        let one = ring.without(0).unwrap().without(1).unwrap();
        assert_eq!(one.without(2).unwrap_err(), RingError::NoLiveServers);
        assert_eq!(one.node_for(b"anything"), 2);
    }

    #[test]
    fn a_single_server_or_empty_key_hashes_to_zero() {
        let one = Ring::builder().server("127.0.0.1:1", 1).build().unwrap();
        assert_eq!(one.hash(b"abc"), 0);
        assert_eq!(three().hash(b""), 0);
    }

    #[test]
    fn invalid_servers_are_refused_with_their_index() {
        let err = |b: RingBuilder| b.build().unwrap_err();
        let ok = Ring::builder().server("127.0.0.1:1", 1);
        assert_eq!(
            err(ok.clone().server("h:2", 0)),
            RingError::ZeroWeight { server: 1 }
        );
        for bad in ["h", "h:", ":1", "h:0", "h:65536", "h:x1", "h :1"] {
            assert_eq!(
                err(ok.clone().server(bad, 1)),
                RingError::InvalidAddress { server: 1 },
                "{bad}"
            );
        }
        assert_eq!(
            err(ok.clone().named_server("h:2", 1, "")),
            RingError::InvalidName { server: 1 }
        );
        assert_eq!(
            err(ok.clone().twemproxy_server("h:2")),
            RingError::InvalidAddress { server: 1 }
        );
        assert_eq!(
            err(ok.clone().server("127.0.0.1:1", 2)),
            RingError::DuplicateName { server: 1 }
        );
        // 160 points are 40 names, the last "-39": 82 + 3 = 85 fits, 83 does not.
        assert!(ok
            .clone()
            .named_server("h:2", 1, "n".repeat(82))
            .build()
            .is_ok());
        assert_eq!(
            err(ok.named_server("h:2", 1, "n".repeat(83))),
            RingError::NameTooLong { server: 1 }
        );
    }

    #[test]
    fn twemproxy_lines_parse_like_the_builder() {
        let a = Ring::builder()
            .twemproxy_server("127.0.0.1:22121:1")
            .twemproxy_server("127.0.0.1:22122:2 beta")
            .build()
            .unwrap();
        assert_eq!(a.server(0), "127.0.0.1:22121");
        assert_eq!(a.weight(1), 2);
        assert_eq!(a.name(1), Some("beta"));
        let b = Ring::builder()
            .server("127.0.0.1:22121", 1)
            .named_server("127.0.0.1:22122", 2, "beta")
            .build()
            .unwrap();
        for key in keys(1000) {
            assert_eq!(a.node_for(&key), b.node_for(&key));
        }
    }
}
