//! Replies on their way to a socket, without copying large values.
//!
//! Reply lines are small and are copied into a buffer the connection owns;
//! so are values under 4 KiB, copied from the item in place. A larger value
//! is a [`Bytes`] held by the cache, so an [`Output`] keeps a reference to it
//! instead of a copy. A connection whose peer reads slowly then holds its
//! reply lines plus references, not private copies of every large value it
//! was asked for. [`Store::process`](super::Store::process)
//! fills a plain `Vec<u8>` instead (everything copied), for callers that
//! want one buffer.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::{Buf, Bytes};

/// Values at least this long are shared rather than copied: below it a copy
/// is cheaper than a separate write segment.
const SHARE_FROM: usize = 1024;

/// Where the executor writes replies: a plain buffer, or an [`Output`].
pub(super) trait Sink {
    /// The buffer for reply lines.
    fn lines(&mut self) -> &mut Vec<u8>;
    /// Appends a value's data.
    fn value(&mut self, data: &Bytes);
    /// Bytes written so far and not yet sent, values included.
    fn pending(&self) -> usize;
}

impl Sink for Vec<u8> {
    fn lines(&mut self) -> &mut Vec<u8> {
        self
    }

    fn value(&mut self, data: &Bytes) {
        self.extend_from_slice(data);
    }

    fn pending(&self) -> usize {
        self.len()
    }
}

/// Replies for one connection: copied reply lines interleaved with shared
/// values, written with vectored writes.
///
/// ```
/// use larder::memcached::{Output, Session, Store, StoreConfig};
///
/// let store = Store::new(StoreConfig::default())?;
/// let mut out = Output::new();
/// let value = "v".repeat(4096);
/// let input = format!("set k 0 0 4096\r\n{value}\r\nget k\r\n");
/// let _ = store.process_output(&mut Session::new(), input.as_bytes(), &mut out);
/// assert_eq!(out.len(), 8 + 16 + 4096 + 2 + 5);
/// assert!(out.copied() < 64, "the value is shared with the cache, not copied");
/// let mut flat = Vec::new();
/// while !out.is_empty() {
///     let chunk = out.chunk().to_vec();
///     flat.extend_from_slice(&chunk);
///     out.advance(chunk.len());
/// }
/// assert!(flat.ends_with(b"\r\nEND\r\n"));
/// # Ok::<(), larder::memcached::StoreError>(())
/// ```
#[derive(Debug, Default)]
pub struct Output {
    /// Segments ready to send, in order, before `lines`.
    ready: VecDeque<Segment>,
    /// Reply lines after the last shared value.
    lines: Vec<u8>,
    /// Bytes in `ready`.
    ready_len: usize,
    /// Bytes in `ready` that are this output's own copies.
    ready_copied: usize,
}

#[derive(Debug)]
struct Segment {
    data: Bytes,
    /// Reply lines copied by this output, not a value shared with the cache.
    copied: bool,
}

impl Output {
    /// An empty output.
    pub fn new() -> Self {
        Output::default()
    }

    /// Bytes waiting to be sent.
    pub fn len(&self) -> usize {
        self.ready_len + self.lines.len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the waiting replies this output holds as its own copies
    /// (the rest are values shared with the cache).
    pub fn copied(&self) -> usize {
        self.ready_copied + self.lines.len()
    }

    /// The first contiguous run of waiting bytes (empty when none).
    pub fn chunk(&self) -> &[u8] {
        match self.ready.front() {
            Some(first) => &first.data,
            None => &self.lines,
        }
    }

    /// Fills `slices` with the waiting bytes, in order, up to its length;
    /// returns how many it filled. For a vectored write.
    pub fn io_slices<'a>(&'a self, slices: &mut [IoSlice<'a>]) -> usize {
        let tail = (!self.lines.is_empty()).then_some(&self.lines[..]);
        let segments = self.ready.iter().map(|s| &s.data[..]).chain(tail);
        let mut n = 0;
        for (slot, segment) in slices.iter_mut().zip(segments) {
            *slot = IoSlice::new(segment);
            n += 1;
        }
        n
    }

    /// Drops the first `n` waiting bytes (they were sent).
    ///
    /// # Panics
    /// If `n` is more than [`len`](Output::len).
    pub fn advance(&mut self, mut n: usize) {
        assert!(n <= self.len(), "advanced past the output");
        while n > 0 {
            let Some(front) = self.ready.front_mut() else {
                self.lines.drain(..n);
                return;
            };
            let step = n.min(front.data.len());
            front.data.advance(step);
            self.ready_len -= step;
            if front.copied {
                self.ready_copied -= step;
            }
            n -= step;
            if front.data.is_empty() {
                self.ready.pop_front();
            }
        }
    }

    /// Forgets everything waiting, keeping the line buffer's memory up to
    /// `keep` bytes.
    pub fn clear(&mut self, keep: usize) {
        self.ready.clear();
        self.ready_len = 0;
        self.ready_copied = 0;
        self.lines.clear();
        self.lines.shrink_to(keep);
    }
}

impl Sink for Output {
    fn lines(&mut self) -> &mut Vec<u8> {
        &mut self.lines
    }

    fn value(&mut self, data: &Bytes) {
        if data.len() < SHARE_FROM {
            self.lines.extend_from_slice(data);
            return;
        }
        if !self.lines.is_empty() {
            let lines = Bytes::from(std::mem::take(&mut self.lines));
            self.ready_len += lines.len();
            self.ready_copied += lines.len();
            self.ready.push_back(Segment {
                data: lines,
                copied: true,
            });
        }
        self.ready_len += data.len();
        self.ready.push_back(Segment {
            data: data.clone(),
            copied: false,
        });
    }

    fn pending(&self) -> usize {
        self.len()
    }
}
