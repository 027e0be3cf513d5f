//! Size limits the parser enforces, so that a peer can never make the caller
//! buffer without bound.

/// Limits applied by [`parse`](super::parse).
///
/// The defaults match memcached's: 250-byte keys, 1 MiB values, 2048-byte
/// command lines. memcached lets `get`/`gets` lines grow without bound; we cap
/// them (and `gat`/`gats`) at `max_get_line_len` and `max_keys_per_get`.
///
/// ```
/// use larder::memcached::Limits;
///
/// let limits = Limits { max_item_size: 4 << 20, ..Limits::default() };
/// assert_eq!(limits.max_key_len, 250);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest key, in bytes (for base64 keys: the encoded length, as
    /// memcached checks it). Default 250.
    pub max_key_len: usize,
    /// Largest data block a storage command may declare. Larger ones parse as
    /// [`Request::TooLarge`](super::Request::TooLarge). Default 1 MiB.
    pub max_item_size: usize,
    /// Longest command line, excluding its `\r\n`. Longer lines are a fatal
    /// [`ErrorKind::LineTooLong`](super::ErrorKind::LineTooLong). Default 2048.
    pub max_line_len: usize,
    /// Longest command line for a line that starts with `get `, `gets `,
    /// `gat ` or `gats ` (no leading spaces). Default 64 KiB. Values below
    /// `max_line_len` act as `max_line_len`.
    pub max_get_line_len: usize,
    /// Most keys one retrieval line may name. Default 8192.
    pub max_keys_per_get: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_len: 250,
            max_item_size: 1 << 20,
            max_line_len: 2048,
            max_get_line_len: 64 << 10,
            max_keys_per_get: 8192,
        }
    }
}
