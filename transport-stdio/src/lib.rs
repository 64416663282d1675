//! Runs a gcounter node over stdin/stdout, as Maelstrom does.
//!
//! One task owns the [`Node`]. A reader splits the input into lines and
//! pushes them into a bounded queue; the owner takes each line (or, when the
//! node's wake-up time comes first, a timeout), feeds it to the node and
//! writes what the node sends into a buffer. The buffer is written and
//! flushed when the queue runs dry, so a burst of requests costs one write,
//! not one per reply.
//!
//! At the end of the input the node's ready output is flushed and [`run`]
//! returns at once: it does not wait for timers or for service replies.
//!
//! Lines longer than [`MAX_LINE`] are dropped with a warning on stderr;
//! blank lines are skipped; a trailing `\r` is removed; bytes that are not
//! UTF-8 go to the node, which answers them as malformed.
//!
//! # Example
//!
//! [`run`] takes any async reader and writer, so a test can feed bytes:
//!
//! ```
//! use gcounter_core::{Config, Node};
//!
//! let input = concat!(
//!     r#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#, "\n",
//!     r#"{"src":"c1","dest":"n1","body":{"type":"read","msg_id":2}}"#, "\n",
//! );
//! let mut output = Vec::new();
//! let node = Node::new(Config::default());
//! smol::block_on(gcounter_transport_stdio::run(node, input.as_bytes(), &mut output))?;
//! assert_eq!(
//!     String::from_utf8_lossy(&output).lines().last(),
//!     Some(r#"{"src":"n1","dest":"c1","body":{"type":"read_ok","in_reply_to":2,"msg_id":1,"value":0}}"#)
//! );
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A Maelstrom node is [`run_stdio`]:
//!
//! ```no_run
//! use gcounter_core::{Config, Node};
//!
//! let config = Config::from_vars(|k| std::env::var(k).ok()).expect("valid configuration");
//! gcounter_transport_stdio::run_stdio(Node::new(config))?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod lines;

pub use lines::MAX_LINE;

use async_channel::Receiver;
use gcounter_core::{protocol, Input, Node, Output, Time};
use smol::future::{self, FutureExt};
use smol::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use smol::{Timer, Unblock};
use std::io;
use std::time::Instant;

/// How many lines may wait for the node: enough to ride out a burst of
/// Maelstrom's small messages, and at most `QUEUE * MAX_LINE` bytes held if
/// a writer floods us with huge lines faster than the node keeps up.
const QUEUE: usize = 64;

/// Output is written early once this much has piled up, so a long burst
/// of input does not hold every reply back until it ends.
const WRITE_AT: usize = 64 * 1024;

/// Runs `node` on the lines of `reader`, writing its messages to `writer`,
/// until `reader` ends (then `Ok`) or either side fails.
///
/// Time for the node is measured from the call.
pub async fn run<R, W>(mut node: Node, reader: R, mut writer: W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, rx) = async_channel::bounded(QUEUE);
    let read = async move {
        lines::read_lines(reader, tx).await;
        // The reader's end shows up as the queue closing; the owner decides
        // when everything is done.
        future::pending().await
    };
    own(&mut node, rx, &mut writer).or(read).await
}

/// [`run`] on this process's stdin and stdout.
pub fn run_stdio(node: Node) -> io::Result<()> {
    let stdin = Unblock::new(io::stdin());
    let stdout = Unblock::new(io::stdout());
    smol::block_on(run(node, stdin, stdout))
}

/// What wakes the owner.
enum Event {
    Line(Vec<u8>),
    Timeout,
    ReadFailed(io::Error),
    InputEnded,
}

/// The owner loop: the only code that touches the node.
async fn own<W: AsyncWrite + Unpin>(
    node: &mut Node,
    lines: Receiver<io::Result<Vec<u8>>>,
    writer: &mut W,
) -> io::Result<()> {
    let start = Instant::now();
    let mut out = Vec::with_capacity(WRITE_AT);
    let mut wake = None;
    loop {
        let event = next_event(&lines, start, wake).await;
        let now = start.elapsed();
        match event {
            Event::Line(line) => {
                log::trace!("in: {}", String::from_utf8_lossy(&line));
                node.handle(Input::Line(&line), now);
            }
            Event::Timeout => node.handle(Input::Timeout, now),
            Event::ReadFailed(e) => {
                write_out(writer, &mut out).await?;
                return Err(e);
            }
            Event::InputEnded => return write_out(writer, &mut out).await,
        }
        wake = drain(node, &mut out);
        if lines.is_empty() || out.len() >= WRITE_AT {
            write_out(writer, &mut out).await?;
        }
    }
}

/// The next line, or a timeout if the node's wake-up time comes first.
async fn next_event(
    lines: &Receiver<io::Result<Vec<u8>>>,
    start: Instant,
    wake: Option<Time>,
) -> Event {
    let recv = async {
        match lines.recv().await {
            Ok(Ok(line)) => Event::Line(line),
            Ok(Err(e)) => Event::ReadFailed(e),
            Err(_closed) => Event::InputEnded,
        }
    };
    let Some(at) = wake else { return recv.await };
    // Checked before waiting so that a steady stream of input cannot
    // starve the node's timers.
    if start.elapsed() >= at {
        return Event::Timeout;
    }
    let Some(deadline) = start.checked_add(at) else {
        return recv.await;
    };
    recv.or(async {
        Timer::at(deadline).await;
        Event::Timeout
    })
    .await
}

/// Moves the node's messages into `out`; returns when it next wants waking.
fn drain(node: &mut Node, out: &mut Vec<u8>) -> Option<Time> {
    loop {
        match node.poll_output() {
            Output::Send(msg) => {
                let start = out.len();
                protocol::write_line(out, &msg);
                log::trace!("out: {}", String::from_utf8_lossy(&out[start..]).trim_end());
            }
            Output::Wait(at) => return at,
        }
    }
}

async fn write_out<W: AsyncWrite + Unpin>(writer: &mut W, out: &mut Vec<u8>) -> io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    writer.write_all(out).await?;
    out.clear();
    writer.flush().await
}

#[cfg(test)]
mod tests;
