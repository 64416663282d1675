//! Reading newline-terminated lines from a socket, with a cap on their length.

use smol::io::{AsyncBufRead, AsyncBufReadExt};
use std::io;

/// The longest line, 1 MiB: Maelstrom messages are well under a kilobyte.
pub const MAX_LINE: usize = 1024 * 1024;

/// What [`read_line`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReadLine {
    /// `buf` holds a complete line, without its `\n`.
    Line,
    /// The peer closed the connection between lines.
    Eof,
    /// The peer closed the connection in the middle of a line; `buf` holds
    /// the unfinished line.
    Truncated,
    /// The line grew past the limit before its newline came. What was read
    /// of it is in `buf`; the rest is still unread.
    TooLong,
}

/// Appends the rest of the current line to `buf`, stopping at its `\n`
/// (which is consumed, not stored) or once `buf` would exceed `max` bytes.
///
/// Cancellation-safe: every byte consumed from `reader` is in `buf`, so a
/// call dropped half way (a timeout) can be resumed by calling again with
/// the same `buf`. The caller empties `buf` after taking a line.
pub(crate) async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<ReadLine> {
    loop {
        let available = match reader.fill_buf().await {
            Ok(available) => available,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            return Ok(if buf.is_empty() {
                ReadLine::Eof
            } else {
                ReadLine::Truncated
            });
        }
        let (part, used, complete) = match available.iter().position(|&b| b == b'\n') {
            Some(i) => (&available[..i], i + 1, true),
            None => (available, available.len(), false),
        };
        if buf.len() + part.len() > max {
            return Ok(ReadLine::TooLong);
        }
        buf.extend_from_slice(part);
        reader.consume(used);
        if complete {
            return Ok(ReadLine::Line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::io::BufReader;

    fn lines(input: &[u8], max: usize, chunk: usize) -> Vec<(ReadLine, Vec<u8>)> {
        // A tiny buffer makes lines span many fill_buf calls.
        let mut reader = BufReader::with_capacity(chunk, input);
        let mut out = Vec::new();
        smol::block_on(async {
            loop {
                let mut buf = Vec::new();
                let what = read_line(&mut reader, &mut buf, max).await.unwrap();
                out.push((what, buf));
                if what != ReadLine::Line {
                    break;
                }
            }
        });
        out
    }

    #[test]
    fn splits_lines_across_buffer_boundaries() {
        for chunk in [1, 2, 3, 64] {
            let got = lines(b"ab\n\ncdef\n", 100, chunk);
            assert_eq!(
                got,
                vec![
                    (ReadLine::Line, b"ab".to_vec()),
                    (ReadLine::Line, b"".to_vec()),
                    (ReadLine::Line, b"cdef".to_vec()),
                    (ReadLine::Eof, b"".to_vec()),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn an_unfinished_last_line_is_reported_as_truncated() {
        let got = lines(b"ok\nhal", 100, 4);
        assert_eq!(got[1], (ReadLine::Truncated, b"hal".to_vec()));
    }

    #[test]
    fn a_line_at_the_limit_passes_and_one_past_it_does_not() {
        assert_eq!(
            lines(b"12345\n", 5, 2)[0],
            (ReadLine::Line, b"12345".to_vec())
        );
        assert_eq!(lines(b"123456\n", 5, 2)[0].0, ReadLine::TooLong);
        assert_eq!(lines(b"123456", 5, 64)[0].0, ReadLine::TooLong);
    }
}
