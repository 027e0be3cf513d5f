//! `incr`/`decr` on values stored as decimal text, as memcached does them.
//!
//! The value is read the way memcached's `safe_strtoull` reads it: optional
//! leading whitespace, at least one digit, and then either the end or a
//! whitespace byte (anything after that is ignored); a sign or a value above
//! 2^64-1 is not a number. `incr` wraps at 2^64, `decr` stops at 0. The new
//! value keeps the old length, padded with trailing spaces, when its digits
//! fit in it (memcached rewrites such values in place), and is just the
//! digits when they are longer.

use bytes::Bytes;

use crate::memcached::ArithmeticOp;

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// The number a stored value holds, if it holds one.
pub(crate) fn parse_counter(value: &[u8]) -> Option<u64> {
    let start = value.iter().position(|&b| !is_space(b))?;
    let digits = &value[start..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    if end == 0 || digits.get(end).is_some_and(|&b| !is_space(b)) {
        return None;
    }
    digits[..end].iter().try_fold(0u64, |n, &d| {
        n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
    })
}

/// Decimal digits of `n` in a stack buffer.
pub(crate) struct Digits {
    buf: [u8; 20],
    start: usize,
}

/// The most digits a counter has (`u64::MAX` is 20).
pub(crate) const MAX_DIGITS: usize = 20;

impl Digits {
    pub(crate) fn new(mut n: u64) -> Digits {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        Digits { buf, start }
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }
}

/// Applies `op` to the counter in `old`: the new number and the bytes to
/// store, or `None` if `old` is not a number.
pub(crate) fn apply(op: ArithmeticOp, old: &[u8], delta: u64) -> Option<(u64, Bytes)> {
    let current = parse_counter(old)?;
    let next = match op {
        ArithmeticOp::Incr => current.wrapping_add(delta),
        ArithmeticOp::Decr => current.saturating_sub(delta),
    };
    let digits = Digits::new(next);
    let digits = digits.as_bytes();
    let stored = if digits.len() <= old.len() {
        let mut padded = Vec::with_capacity(old.len());
        padded.extend_from_slice(digits);
        padded.resize(old.len(), b' ');
        Bytes::from(padded)
    } else {
        Bytes::copy_from_slice(digits)
    };
    Some((next, stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_numbers_like_strtoull() {
        assert_eq!(parse_counter(b"42"), Some(42));
        assert_eq!(parse_counter(b" 42"), Some(42));
        assert_eq!(parse_counter(b"9 "), Some(9));
        assert_eq!(parse_counter(b"12 junk"), Some(12));
        assert_eq!(parse_counter(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_counter(b"18446744073709551616"), None);
        assert_eq!(parse_counter(b""), None);
        assert_eq!(parse_counter(b"  "), None);
        assert_eq!(parse_counter(b"12a"), None);
        assert_eq!(parse_counter(b"-1"), None);
        assert_eq!(parse_counter(b"+1"), None);
    }

    #[test]
    fn shrinking_values_keep_their_length() {
        let (n, v) = apply(ArithmeticOp::Decr, b"10", 1).unwrap();
        assert_eq!((n, &v[..]), (9, &b"9 "[..]));
        let (n, v) = apply(ArithmeticOp::Incr, b"99", 1).unwrap();
        assert_eq!((n, &v[..]), (100, &b"100"[..]));
        let (n, v) = apply(ArithmeticOp::Incr, b"18446744073709551615", 2).unwrap();
        assert_eq!((n, &v[..]), (1, &b"1                   "[..]));
    }
}
