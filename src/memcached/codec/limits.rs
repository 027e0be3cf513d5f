//! Size limits the parser enforces, so that a peer can never make the caller
//! buffer without bound.

/// Limits applied by [`parse`](super::parse).
///
/// The defaults match memcached's: 250-byte keys, 1 MiB values, 2048-byte
/// command lines. Like memcached, `get`/`gets`/`gat`/`gats` lines may name
/// any number of keys: with [`parse_streaming`](super::parse_streaming), one
/// longer than `max_get_line_len` is parsed in pieces
/// ([`Request::LongGet`](super::Request::LongGet), then
/// [`parse_get_rest`](super::parse_get_rest)), so a caller never has to
/// buffer the whole line; [`parse`](super::parse) refuses it as too long.
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
    /// Longest line that starts with `get `, `gets `, `gat ` or `gats `
    /// (no leading spaces) parsed in one piece, so that a bad key anywhere
    /// in it refuses the whole line before any key is answered, as in
    /// memcached. A longer one is not an error: it is answered in pieces as
    /// its keys arrive. Default 64 KiB. Values below `max_line_len` act as
    /// `max_line_len`.
    pub max_get_line_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_key_len: 250,
            max_item_size: 1 << 20,
            max_line_len: 2048,
            max_get_line_len: 64 << 10,
        }
    }
}
