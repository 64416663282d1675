//! Splitting input into lines, with a cap on how much of one line is held.

use async_channel::Sender;
use smol::io::{AsyncRead, AsyncReadExt};
use std::io;

/// The longest line handed to the node, in bytes (without its newline).
///
/// Maelstrom's messages are well under a kilobyte. A longer line is a
/// mistake, and holding it whole would let one line exhaust memory, so it
/// is dropped as it streams past instead.
pub const MAX_LINE: usize = 1024 * 1024;

/// How much is read at a time.
const CHUNK: usize = 64 * 1024;

/// Reads `reader` to its end, sending each line (without `\n` or `\r\n`)
/// to `lines`. A read error is sent as the last item. Returns when the
/// input ends, fails, or nobody listens any more.
///
/// Plain `read` into a buffer of our own, not `fill_buf`: futures-lite's
/// `fill_buf` polls twice and panics when a reader such as `Unblock<Stdin>`
/// answers the second poll with `Pending` after reporting the end.
pub(crate) async fn read_lines<R: AsyncRead + Unpin>(
    mut reader: R,
    lines: Sender<io::Result<Vec<u8>>>,
) {
    let mut buf = vec![0; CHUNK];
    let mut splitter = Splitter::default();
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // Whatever was half read is not a message; report the error.
                let _ = lines.send(Err(e)).await;
                return;
            }
        };
        if n == 0 {
            // A last line without its newline still counts.
            if let Some(line) = splitter.end_line() {
                let _ = lines.send(Ok(line)).await;
            }
            return;
        }
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let (used, line) = splitter.push(rest);
            rest = &rest[used..];
            if let Some(line) = line {
                if lines.send(Ok(line)).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The line being assembled, or the length of the one being dropped.
#[derive(Debug, Default)]
struct Splitter {
    line: Vec<u8>,
    /// `Some(bytes seen so far)` while skipping an overlong line.
    discarding: Option<usize>,
}

impl Splitter {
    /// Takes bytes from `buf` up to and including the first newline.
    /// Returns how many it took and the line that newline completed.
    fn push(&mut self, buf: &[u8]) -> (usize, Option<Vec<u8>>) {
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                self.take(&buf[..i]);
                (i + 1, self.end_line())
            }
            None => {
                self.take(buf);
                (buf.len(), None)
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

    /// Ends the current line. Blank and overlong lines yield nothing.
    fn end_line(&mut self) -> Option<Vec<u8>> {
        if let Some(len) = self.discarding.take() {
            log::warn!("discarded an input line of {len} bytes (the limit is {MAX_LINE})");
            return None;
        }
        let mut line = std::mem::take(&mut self.line);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        (!line.is_empty()).then_some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = Splitter::default();
        let mut lines = Vec::new();
        for chunk in chunks {
            let mut rest = *chunk;
            while !rest.is_empty() {
                let (used, line) = s.push(rest);
                lines.extend(line);
                rest = &rest[used..];
            }
        }
        lines.extend(s.end_line());
        lines
    }

    #[test]
    fn lines_span_chunks_and_lose_their_line_endings() {
        let lines = split(&[b"ab", b"c\r\n\nd", b"e\nf"]);
        assert_eq!(lines, [&b"abc"[..], b"de", b"f"]);
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
        s.push(&vec![b'x'; MAX_LINE]);
        s.push(b"x");
        assert_eq!(s.line.capacity(), 0);
        assert_eq!(s.discarding, Some(MAX_LINE + 1));
    }
}
