//! Reading input in chunks and splitting it into lines, with a cap on how
//! much of one line is held.
//!
//! The reader hands the owner whole chunks, not lines: one queue hop and one
//! allocation per read instead of per line. The owner splits them with a
//! [`Splitter`], which lends each line out of the chunk itself and copies
//! only a line that straddles two chunks.

use async_channel::{Receiver, Sender};
use smol::io::{AsyncRead, AsyncReadExt};
use std::io::{self, Read};

/// The longest line handed to the node, in bytes (without its newline).
///
/// Maelstrom's messages are well under a kilobyte. A longer line is a
/// mistake, and holding it whole would let one line exhaust memory, so it
/// is dropped as it streams past instead.
pub const MAX_LINE: usize = 1024 * 1024;

/// How much is read at a time.
const CHUNK: usize = 64 * 1024;

/// The reader's side of the queue to the owner: chunks go out full (a
/// read error is the last item; the end of the input closes the queue)
/// and come back empty, so that steady input reuses the same few buffers.
#[derive(Debug)]
pub(crate) struct ChunkSender {
    pub(crate) full: Sender<io::Result<Vec<u8>>>,
    pub(crate) empty: Receiver<Vec<u8>>,
}

/// The owner's side of the queue: see [`ChunkSender`].
#[derive(Debug)]
pub(crate) struct ChunkReceiver {
    pub(crate) full: Receiver<io::Result<Vec<u8>>>,
    pub(crate) empty: Sender<Vec<u8>>,
}

/// A queue of at most `cap` chunks, and the same number to reuse.
pub(crate) fn chunk_queue(cap: usize) -> (ChunkSender, ChunkReceiver) {
    let (full_tx, full_rx) = async_channel::bounded(cap);
    let (empty_tx, empty_rx) = async_channel::bounded(cap);
    (
        ChunkSender {
            full: full_tx,
            empty: empty_rx,
        },
        ChunkReceiver {
            full: full_rx,
            empty: empty_tx,
        },
    )
}

impl ChunkSender {
    /// A buffer of [`CHUNK`] bytes to read into: a returned one if any.
    fn buffer(&self) -> Vec<u8> {
        let mut buf = self.empty.try_recv().unwrap_or_default();
        // Only the part the last read did not fill is zeroed again.
        buf.resize(CHUNK, 0);
        buf
    }
}

impl ChunkReceiver {
    /// Hands a handled chunk back to the reader (or drops it if the
    /// reader has enough).
    pub(crate) fn recycle(&self, chunk: Vec<u8>) {
        let _ = self.empty.try_send(chunk);
    }
}

/// Reads `reader` to its end into chunks for the owner. Returns when the
/// input ends, fails, or nobody listens any more.
///
/// Plain `read` into a buffer of our own, not `fill_buf`: futures-lite's
/// `fill_buf` polls twice and panics when a reader such as `Unblock<Stdin>`
/// answers the second poll with `Pending` after reporting the end.
pub(crate) async fn read_chunks<R: AsyncRead + Unpin>(mut reader: R, chunks: ChunkSender) {
    loop {
        let mut buf = chunks.buffer();
        match reader.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if chunks.full.send(Ok(buf)).await.is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                // Whatever was half read is not a message; report the error.
                let _ = chunks.full.send(Err(e)).await;
                return;
            }
        }
    }
}

/// [`read_chunks`] for a blocking reader, on a thread of its own.
pub(crate) fn read_chunks_blocking<R: Read>(mut reader: R, chunks: ChunkSender) {
    loop {
        let mut buf = chunks.buffer();
        match reader.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => {
                buf.truncate(n);
                if chunks.full.send_blocking(Ok(buf)).is_err() {
                    return;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = chunks.full.send_blocking(Err(e));
                return;
            }
        }
    }
}

/// The start of a line that the next chunk completes, or the length of the
/// one being dropped.
#[derive(Debug, Default)]
pub(crate) struct Splitter {
    line: Vec<u8>,
    /// `line` holds a finished line, lent out by the last call.
    lent: bool,
    /// `Some(bytes seen so far)` while skipping an overlong line.
    discarding: Option<usize>,
}

/// A line without its `\r`, or nothing if blank.
fn trimmed(line: &[u8]) -> Option<&[u8]> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    (!line.is_empty()).then_some(line)
}

impl Splitter {
    /// The next complete line of `chunk[*pos..]` (without `\n` or `\r\n`),
    /// moving `pos` past it. At the end of the chunk, keeps the unfinished
    /// part for the next call and returns `None`. Blank and overlong lines
    /// are skipped.
    pub(crate) fn next_line<'a>(
        &'a mut self,
        chunk: &'a [u8],
        pos: &mut usize,
    ) -> Option<&'a [u8]> {
        self.reclaim();
        loop {
            let rest = &chunk[*pos..];
            let Some(i) = memchr::memchr(b'\n', rest) else {
                self.take(rest);
                *pos = chunk.len();
                return None;
            };
            *pos += i + 1;
            if self.line.is_empty() && self.discarding.is_none() {
                // The common case: the whole line is in this chunk.
                match trimmed(&rest[..i]) {
                    Some(line) => return Some(line),
                    None => continue,
                }
            }
            self.take(&rest[..i]);
            if self.end_line() {
                self.lent = true;
                return trimmed(&self.line);
            }
        }
    }

    /// The last line, if the input ended without a newline after it.
    pub(crate) fn finish(&mut self) -> Option<&[u8]> {
        self.reclaim();
        if self.end_line() {
            self.lent = true;
            trimmed(&self.line)
        } else {
            None
        }
    }

    /// Forgets the line lent out by the last call.
    fn reclaim(&mut self) {
        if std::mem::take(&mut self.lent) {
            if self.line.capacity() > CHUNK {
                // A long line's memory goes back once it has been handled.
                self.line = Vec::new();
            } else {
                self.line.clear();
            }
        }
    }

    fn take(&mut self, part: &[u8]) {
        if let Some(seen) = &mut self.discarding {
            *seen += part.len();
        } else if self.line.len() + part.len() > MAX_LINE {
            self.discarding = Some(self.line.len() + part.len());
            // Give the memory back now, not when the line finally ends.
            self.line = Vec::new();
        } else {
            self.line.extend_from_slice(part);
        }
    }

    /// Ends the line being assembled: true if `line` now holds a line to
    /// lend (possibly blank), false if it was blank-and-empty or dropped.
    fn end_line(&mut self) -> bool {
        if let Some(len) = self.discarding.take() {
            log::warn!("discarded an input line of {len} bytes (the limit is {MAX_LINE})");
            return false;
        }
        if trimmed(&self.line).is_none() {
            self.line.clear();
            return false;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = Splitter::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            let mut pos = 0;
            while let Some(line) = s.next_line(chunk, &mut pos) {
                lines.push(line.to_vec());
            }
            assert_eq!(pos, chunk.len());
        }
        lines.extend(s.finish().map(<[u8]>::to_vec));
        lines
    }

    #[test]
    fn lines_span_chunks_and_lose_their_line_endings() {
        let lines = split(&[b"ab", b"c\r\n\nd", b"e\nf"]);
        assert_eq!(lines, [&b"abc"[..], b"de", b"f"]);
    }

    #[test]
    fn a_crlf_split_between_chunks_and_blank_lines_between_chunks() {
        let lines = split(&[b"ab\r", b"\n", b"\r", b"\n\n", b"cd\n", b"\r\n"]);
        assert_eq!(lines, [&b"ab"[..], b"cd"]);
    }

    #[test]
    fn many_lines_in_one_chunk_are_lent_in_order() {
        let lines = split(&[b"a\nbb\n\nccc\n", b"d"]);
        assert_eq!(lines, [&b"a"[..], b"bb", b"ccc", b"d"]);
    }

    #[test]
    fn an_overlong_line_is_dropped_and_the_next_one_kept() {
        let big = vec![b'x'; MAX_LINE / 2 + 1];
        let exact = vec![b'y'; MAX_LINE];
        let lines = split(&[&big, &big, &big, b"\n", &exact, b"\nok\n"]);
        assert_eq!(lines, [exact, b"ok".to_vec()]);
    }

    #[test]
    fn memory_is_released_as_soon_as_a_line_is_too_long() {
        let mut s = Splitter::default();
        let mut pos = 0;
        assert_eq!(s.next_line(&vec![b'x'; MAX_LINE], &mut pos), None);
        pos = 0;
        assert_eq!(s.next_line(b"x", &mut pos), None);
        assert_eq!(s.line.capacity(), 0);
        assert_eq!(s.discarding, Some(MAX_LINE + 1));
    }

    #[test]
    fn a_long_line_is_not_held_after_it_was_handled() {
        let mut s = Splitter::default();
        let long = vec![b'x'; 4 * CHUNK];
        let (mut pos, mut end) = (0, 0);
        assert_eq!(s.next_line(&long, &mut pos), None);
        assert_eq!(
            s.next_line(b"\n", &mut end).map(<[u8]>::len),
            Some(4 * CHUNK)
        );
        end = 0;
        assert_eq!(s.next_line(b"ok\n", &mut end), Some(&b"ok"[..]));
        assert_eq!(s.line.capacity(), 0);
    }
}
