//! Small byte-level helpers shared by the text and meta parsers: splitting a
//! command line into tokens, strict decimal parsing and allocation-free
//! decimal formatting.
//!
//! Numbers are parsed strictly: an optional `-` (signed values only) followed
//! by one or more ASCII digits, and nothing else. memcached's `strtol` family
//! also tolerates a leading `+`; no client sends one, so we do not.

use bytes::BufMut;

/// Iterator over the space-separated tokens of a command line.
///
/// memcached splits on the space byte only (a tab is part of a token), and
/// runs of spaces count as one separator.
#[derive(Clone, Debug)]
pub(crate) struct Words<'a> {
    rest: &'a [u8],
}

impl<'a> Words<'a> {
    pub(crate) fn new(line: &'a [u8]) -> Self {
        Words { rest: line }
    }

    /// The not yet tokenized remainder, with leading spaces removed.
    pub(crate) fn remainder(&self) -> &'a [u8] {
        let start = self
            .rest
            .iter()
            .position(|&b| b != b' ')
            .unwrap_or(self.rest.len());
        &self.rest[start..]
    }
}

impl<'a> Iterator for Words<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let rest = self.remainder();
        if rest.is_empty() {
            self.rest = rest;
            return None;
        }
        let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
        self.rest = &rest[end..];
        Some(&rest[..end])
    }
}

/// Parses an unsigned decimal `u64`; `None` on anything else or overflow.
pub(crate) fn parse_u64(token: &[u8]) -> Option<u64> {
    if token.is_empty() || token.len() > 20 {
        return None;
    }
    let mut value: u64 = 0;
    for &b in token {
        if !b.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(value)
}

/// Parses an unsigned decimal `u32`.
pub(crate) fn parse_u32(token: &[u8]) -> Option<u32> {
    parse_u64(token).and_then(|v| u32::try_from(v).ok())
}

/// Parses a signed decimal `i64` (optional leading `-`).
pub(crate) fn parse_i64(token: &[u8]) -> Option<i64> {
    match token.split_first() {
        Some((b'-', digits)) => {
            let magnitude = parse_u64(digits)?;
            if magnitude == 1 << 63 {
                Some(i64::MIN)
            } else {
                i64::try_from(magnitude).ok().map(|m| -m)
            }
        }
        _ => parse_u64(token).and_then(|v| i64::try_from(v).ok()),
    }
}

/// Writes `value` in decimal without allocating.
pub(crate) fn put_u64<B: BufMut>(out: &mut B, mut value: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        // value % 10 < 10, so the cast cannot truncate.
        buf[i] = b'0' + (value % 10) as u8;
        value /= 10;
        if value == 0 {
            break;
        }
    }
    out.put_slice(&buf[i..]);
}

/// Writes `value` in decimal without allocating.
pub(crate) fn put_i64<B: BufMut>(out: &mut B, value: i64) {
    if value < 0 {
        out.put_u8(b'-');
    }
    put_u64(out, value.unsigned_abs());
}

/// Whether `key` is acceptable as a plain (not base64) key: 1 to `max_len`
/// bytes, none of them NUL.
///
/// protocol.txt forbids control characters and whitespace in keys, but
/// memcached checks neither: a space cannot occur in a token, and memcached
/// 1.6 stores and serves keys with tabs, `\r`, DEL or other control bytes,
/// which real tools rely on (memcaslap's keys start with eight `0x10`
/// bytes). Only NUL ends memcached's command line early, so a key with one
/// is refused here. Dumps write keys `%XX`-encoded, as memcached does, so a
/// control byte in a key never reaches a dump line raw.
pub(crate) fn valid_key(key: &[u8], max_len: usize) -> bool {
    !key.is_empty() && key.len() <= max_len && !key.contains(&0)
}
