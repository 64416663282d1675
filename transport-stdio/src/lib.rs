//! Runs a gcounter node over stdin/stdout, as Maelstrom does.
//!
//! One task owns the [`Node`]. A reader pushes what each read returned (a
//! chunk of many lines) into a bounded queue; the owner takes each chunk
//! (or, when the node's wake-up time comes first, a timeout), splits it into
//! lines, feeds them to the node and writes what the node sends into a
//! buffer. The buffer is written and flushed when the queue runs dry, so a
//! burst of requests costs one write, not one per reply.
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
use lines::{ChunkReceiver, Splitter};
use smol::future::{self, FutureExt};
use smol::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use smol::Timer;
use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// How many chunks (reads of up to 64 KiB) may wait for the node: enough
/// to ride out a burst, and a bound on what a fast writer makes us hold.
const QUEUE: usize = 4;

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
    let (tx, rx) = lines::chunk_queue(QUEUE);
    let read = async move {
        lines::read_chunks(reader, tx).await;
        // The reader's end shows up as the queue closing; the owner decides
        // when everything is done.
        future::pending().await
    };
    own(&mut node, rx, &mut writer).or(read).await
}

/// [`run`] on this process's stdin and stdout.
///
/// Stdin is read by a thread of its own straight into the chunks the
/// owner splits (through `Unblock` every byte would be copied once more,
/// through its pipe). Stdout is written by the owner itself, blocking:
/// while its output cannot leave, the owner has nothing else to do (behind
/// `Unblock` it would wait for the pipe just the same), and it saves a
/// thread, a pipe and a wake-up per write.
pub fn run_stdio(mut node: Node) -> io::Result<()> {
    let (tx, rx) = lines::chunk_queue(QUEUE);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || lines::read_chunks_blocking(io::stdin().lock(), tx))?;
    let mut stdout = InPlace(io::stdout().lock());
    smol::block_on(own(&mut node, rx, &mut stdout))
}

/// A blocking writer used as an async one, for the owner's own output.
struct InPlace<W>(W);

impl<W: Write + Unpin> AsyncWrite for InPlace<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(self.get_mut().0.write(buf))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.get_mut().0.flush())
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_flush(cx)
    }
}

/// What wakes the owner.
enum Event {
    Chunk(Vec<u8>),
    Timeout,
    ReadFailed(io::Error),
    InputEnded,
}

/// The owner loop: the only code that touches the node.
async fn own<W: AsyncWrite + Unpin>(
    node: &mut Node,
    chunks: ChunkReceiver,
    writer: &mut W,
) -> io::Result<()> {
    let start = Instant::now();
    let mut out = Vec::with_capacity(2 * WRITE_AT);
    let mut splitter = Splitter::default();
    let mut wake = None;
    loop {
        let event = next_event(&chunks.full, start, wake).await;
        // The lines of one chunk arrived together.
        let now = start.elapsed();
        match event {
            Event::Chunk(chunk) => {
                let mut pos = 0;
                while let Some(line) = splitter.next_line(&chunk, &mut pos) {
                    feed(node, line, now);
                    drain(node, &mut out);
                    if out.len() >= WRITE_AT {
                        writer.write_all(&out).await?;
                        out.clear();
                    }
                }
                chunks.recycle(chunk);
            }
            Event::Timeout => node.handle(Input::Timeout, now),
            Event::ReadFailed(e) => {
                write_out(writer, &mut out).await?;
                return Err(e);
            }
            Event::InputEnded => {
                // A last line without its newline still counts.
                if let Some(line) = splitter.finish() {
                    feed(node, line, now);
                }
                drain(node, &mut out);
                return write_out(writer, &mut out).await;
            }
        }
        wake = drain(node, &mut out);
        if chunks.full.is_empty() || out.len() >= WRITE_AT {
            write_out(writer, &mut out).await?;
        }
    }
}

fn feed(node: &mut Node, line: &[u8], now: Time) {
    log::trace!("in: {}", String::from_utf8_lossy(line));
    node.handle(Input::Line(line), now);
}

/// The next chunk, or a timeout if the node's wake-up time comes first.
async fn next_event(
    chunks: &Receiver<io::Result<Vec<u8>>>,
    start: Instant,
    wake: Option<Time>,
) -> Event {
    let recv = async {
        match chunks.recv().await {
            Ok(Ok(chunk)) => Event::Chunk(chunk),
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
            // Maelstrom never restarts a node: there is nothing to restore
            // a stored state into.
            Output::Persist(_) => {}
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
