//! Standard base64 (RFC 4648 alphabet, `=` padding) for meta-protocol binary
//! keys (the `b` flag).
//!
//! Decoding is strict: the input length must be a multiple of four, only the
//! alphabet may appear before the padding, and at most two `=` may end it.
//! Bits left over after the last full byte are ignored, as most decoders do.

use bytes::BufMut;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn sextet(b: u8) -> Option<u32> {
    let v = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decodes `input`; `None` if it is not valid padded base64 or decodes to
/// nothing.
pub(crate) fn decode(input: &[u8]) -> Option<Vec<u8>> {
    if input.is_empty() || input.len() % 4 != 0 {
        return None;
    }
    let padding = input.iter().rev().take_while(|&&b| b == b'=').count();
    if padding > 2 {
        return None;
    }
    let body = &input[..input.len() - padding];
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &b in body {
        acc = (acc << 6) | sextet(b)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Shifting leaves at most 8 significant bits in the low byte.
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if out.is_empty() {
        None
    } else {
        Some(out)
    }
}

/// Number of bytes `encode` writes for `len` input bytes.
#[cfg(test)]
fn encoded_len(len: usize) -> usize {
    len.div_ceil(3) * 4
}

/// Encodes `input` with padding, straight into `out`.
pub(crate) fn encode<B: BufMut>(input: &[u8], out: &mut B) {
    for chunk in input.chunks(3) {
        let b0 = u32::from(chunk[0]);
        let b1 = chunk.get(1).map_or(0, |&b| u32::from(b));
        let b2 = chunk.get(2).map_or(0, |&b| u32::from(b));
        let n = (b0 << 16) | (b1 << 8) | b2;
        let quad = [
            ALPHABET[(n >> 18) as usize & 63],
            ALPHABET[(n >> 12) as usize & 63],
            if chunk.len() > 1 {
                ALPHABET[(n >> 6) as usize & 63]
            } else {
                b'='
            },
            if chunk.len() > 2 {
                ALPHABET[n as usize & 63]
            } else {
                b'='
            },
        ];
        out.put_slice(&quad);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length_up_to_ten() {
        let data: Vec<u8> = (0u8..10).map(|i| i.wrapping_mul(37)).collect();
        for n in 1..=data.len() {
            let mut enc = Vec::new();
            encode(&data[..n], &mut enc);
            assert_eq!(enc.len(), encoded_len(n));
            assert_eq!(decode(&enc).as_deref(), Some(&data[..n]));
        }
    }

    #[test]
    fn known_vectors() {
        let mut enc = Vec::new();
        encode(b"foobar", &mut enc);
        assert_eq!(enc, b"Zm9vYmFy");
        assert_eq!(decode(b"Zm9vYg==").as_deref(), Some(&b"foob"[..]));
        assert_eq!(decode(b"Zm9vYg="), None);
        assert_eq!(decode(b"Zm9v=mFy"), None);
        assert_eq!(decode(b"===="), None);
        assert_eq!(decode(b""), None);
    }
}
