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
//! # Surviving a restart
//!
//! Maelstrom's `kill` faults kill a node process and later start a fresh
//! one with the same id, which is sent `init` again. [`run_restartable`]
//! (what the `gcounter` binary runs) is for such a process. Its node learns
//! who it is only from `init`, so the transport acts when the first `init`
//! the node will take arrives, before the node sees it:
//!
//! - With a state directory `DIR`: the process first takes the state's
//!   lock (`DIR/<id>.lock`, held for its life), so a second process with
//!   the same directory and id is refused; then the node's incarnation is one more than
//!   the last one recorded in `DIR/<id>.incarnation` (0 the first time; the
//!   file is written first), and the last state stored in `DIR/<id>.state`
//!   is given back to it ([`Config::restored`](gcounter_core::Config::restored)):
//!   the last line that the strategy takes for a state of this node's
//!   ([`strategy::check_stored`](gcounter_core::strategy::check_stored)),
//!   with a warning if damaged lines follow it; a file with no such line
//!   is an error (see [`gcounter_state::read_state`]).
//!   From then on every state the node asks to store
//!   ([`Output::Persist`]: for `gossip`, its slot and counts, after each
//!   add) is appended to `DIR/<id>.state` before any message that follows
//!   it is written to the output. The output goes out in batches (the
//!   replies to a chunk of input, or 64 KiB), and only the last state
//!   before a batch is stored, just before it is written, since it holds
//!   the others: at most one write of the file per write of the output,
//!   and none when no state was asked for. If that write fails, the
//!   messages that followed the state are dropped (and the failure
//!   logged) rather than acknowledge what is not stored; the state is
//!   tried again before the next write of the output, and until it is
//!   stored nothing is written. The file format and the incarnation
//!   counter are [`gcounter_state`]'s, shared with the TCP node's
//!   `--state-dir`.
//! - Without one: the incarnation is the wall clock in milliseconds, so a
//!   restarted process still never counts in its previous life's `gossip`
//!   slot, and nothing is written anywhere (under Maelstrom every node
//!   runs in the same working directory), so the node is told not to
//!   build states at all ([`Config::persist`](gcounter_core::Config::persist)
//!   off). What a killed `gossip` node acknowledged and had not yet
//!   gossiped is lost.
//!
//! A state directory belongs to one cluster: a node takes up whatever an
//! earlier life of the same id stored there, even one from an earlier
//! test, so each test run needs a fresh one.
//!
//! If the state directory or a file in it cannot be read or written at
//! `init`, [`run_restartable`] returns [`Error::State`] naming the file,
//! without answering that `init`. Lines before `init` are answered as
//! always (error 11, say) and nothing is read or written for them.
//!
//! [`run`] and [`run_stdio`] are for a node that lives once: it runs as
//! configured (incarnation 0 by default) and nothing is stored (nor built:
//! `Config::persist` is turned off).
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
//! A Maelstrom node that keeps its state in `/var/lib/gcounter` is
//! [`run_stdio_restartable`]:
//!
//! ```no_run
//! use gcounter_core::{Config, Node};
//! use std::path::Path;
//!
//! let config = Config::from_vars(|k| std::env::var(k).ok()).expect("valid configuration");
//! let state_dir = Path::new("/var/lib/gcounter");
//! gcounter_transport_stdio::run_stdio_restartable(Node::new(config), Some(state_dir))?;
//! # Ok::<(), gcounter_transport_stdio::Error>(())
//! ```

mod lines;
mod restart;

pub use lines::MAX_LINE;

use async_channel::Receiver;
use gcounter_core::{protocol, Input, Node, Output, Time};
use gcounter_state::StateFile;
use lines::{ChunkReceiver, Splitter};
use restart::AtInit;
use smol::future::{self, FutureExt};
use smol::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use smol::Timer;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

/// How many chunks (reads of up to 64 KiB) may wait for the node: enough
/// to ride out a burst, and a bound on what a fast writer makes us hold.
const QUEUE: usize = 4;

/// Output is written early once this much has piled up, so a long burst
/// of input does not hold every reply back until it ends.
const WRITE_AT: usize = 64 * 1024;

/// Why [`run_restartable`] stopped before the end of its input.
#[derive(Debug)]
pub enum Error {
    /// Reading the input or writing the output failed.
    Io(io::Error),
    /// When `init` named the node, its state directory could not be used
    /// (the error names the file). The node did not answer that `init`:
    /// starting without what it stored could lose acknowledged adds.
    State(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "stdin/stdout failed: {e}"),
            Error::State(e) => write!(f, "cannot use the state directory: {e}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) | Error::State(e) => Some(e),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) | Error::State(e) => e,
        }
    }
}

/// Runs `node` on the lines of `reader`, writing its messages to `writer`,
/// until `reader` ends (then `Ok`) or either side fails.
///
/// The node runs as configured and nothing is stored; see
/// [`run_restartable`] for a node process that may be killed and started
/// again. Time for the node is measured from the call.
pub async fn run<R, W>(node: Node, reader: R, writer: W) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    Ok(run_with(node, AtInit::Nothing, reader, writer).await?)
}

/// [`run`] for a node process that may be killed and started again with
/// the same id: when `init` names the node, it takes a fresh incarnation
/// and, with `state_dir`, the state its earlier lives stored there, where
/// it then stores its own (see the crate docs).
pub async fn run_restartable<R, W>(
    node: Node,
    state_dir: Option<&Path>,
    reader: R,
    writer: W,
) -> Result<(), Error>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    run_with(node, AtInit::NewLife(state_dir), reader, writer).await
}

async fn run_with<R, W>(
    node: Node,
    at_init: AtInit<'_>,
    reader: R,
    mut writer: W,
) -> Result<(), Error>
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
    Owner::new(node, at_init)
        .run(rx, &mut writer)
        .or(read)
        .await
}

/// [`run`] on this process's stdin and stdout.
///
/// Stdin is read by a thread of its own straight into the chunks the
/// owner splits (through `Unblock` every byte would be copied once more,
/// through its pipe). Stdout is written by the owner itself, blocking:
/// while its output cannot leave, the owner has nothing else to do (behind
/// `Unblock` it would wait for the pipe just the same), and it saves a
/// thread, a pipe and a wake-up per write.
pub fn run_stdio(node: Node) -> io::Result<()> {
    Ok(stdio_with(node, AtInit::Nothing)?)
}

/// [`run_restartable`] on this process's stdin and stdout, as
/// [`run_stdio`] does it.
pub fn run_stdio_restartable(node: Node, state_dir: Option<&Path>) -> Result<(), Error> {
    stdio_with(node, AtInit::NewLife(state_dir))
}

fn stdio_with(node: Node, at_init: AtInit<'_>) -> Result<(), Error> {
    let (tx, rx) = lines::chunk_queue(QUEUE);
    std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || lines::read_chunks_blocking(io::stdin().lock(), tx))?;
    let mut stdout = InPlace(io::stdout().lock());
    smol::block_on(Owner::new(node, at_init).run(rx, &mut stdout))
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

/// The only code that touches the node.
struct Owner<'a> {
    node: Node,
    at_init: AtInit<'a>,
    /// Where the node's states go; `None` while nothing is stored.
    state: Option<StateFile>,
    /// Messages not yet written.
    out: Vec<u8>,
    /// Where the messages in `out` start that follow a state not yet
    /// stored: they wait for it, those before it need not.
    held_from: Option<usize>,
}

impl<'a> Owner<'a> {
    fn new(mut node: Node, at_init: AtInit<'a>) -> Owner<'a> {
        if let (AtInit::Nothing, Some(config)) = (at_init, node.config_mut()) {
            // Nothing is stored: spare the node building states.
            config.persist = false;
        }
        Owner {
            node,
            at_init,
            state: None,
            out: Vec::with_capacity(2 * WRITE_AT),
            held_from: None,
        }
    }

    async fn run<W: AsyncWrite + Unpin>(
        mut self,
        chunks: ChunkReceiver,
        writer: &mut W,
    ) -> Result<(), Error> {
        let start = Instant::now();
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
                        if let Err(e) = self.feed(line, now) {
                            self.write_out(writer, true).await?;
                            return Err(e);
                        }
                        self.drain();
                        if self.out.len() >= WRITE_AT {
                            self.write_out(writer, false).await?;
                        }
                    }
                    chunks.recycle(chunk);
                }
                Event::Timeout => self.node.handle(Input::Timeout, now),
                Event::ReadFailed(e) => {
                    self.write_out(writer, true).await?;
                    return Err(e.into());
                }
                Event::InputEnded => {
                    // A last line without its newline still counts.
                    let last = splitter.finish().map(|line| self.feed(line, now));
                    // The tail of a flood of bad input gets its summary.
                    self.node.flush_warnings();
                    self.drain();
                    self.write_out(writer, true).await?;
                    return last.unwrap_or(Ok(()));
                }
            }
            wake = self.drain();
            if chunks.full.is_empty() || self.out.len() >= WRITE_AT {
                self.write_out(writer, true).await?;
            }
        }
    }

    fn feed(&mut self, line: &[u8], now: Time) -> Result<(), Error> {
        log::trace!("in: {}", String::from_utf8_lossy(line));
        // Checked only until init: one branch per line after it.
        if let (AtInit::NewLife(state_dir), None) = (self.at_init, self.node.id()) {
            if let Some(id) = restart::init_id(line) {
                self.state = restart::new_life(&mut self.node, state_dir, &id)?;
            }
        }
        self.node.handle(Input::Line(line), now);
        Ok(())
    }

    /// Moves the node's messages into `out` and stages its states; returns
    /// when it next wants waking.
    fn drain(&mut self) -> Option<Time> {
        loop {
            match self.node.poll_output() {
                Output::Send(msg) => {
                    let start = self.out.len();
                    protocol::write_line(&mut self.out, &msg);
                    log::trace!(
                        "out: {}",
                        String::from_utf8_lossy(&self.out[start..]).trim_end()
                    );
                    self.node.recycle(msg);
                }
                Output::Persist(state) => {
                    if let Some(file) = &mut self.state {
                        file.stage(state);
                        self.held_from.get_or_insert(self.out.len());
                    }
                }
                Output::Wait(at) => return at,
            }
        }
    }

    /// Writes `out`, after storing the last state staged: one write for
    /// however many states the messages followed, since it holds the
    /// others. `flush` also flushes the writer.
    async fn write_out<W: AsyncWrite + Unpin>(
        &mut self,
        writer: &mut W,
        flush: bool,
    ) -> Result<(), Error> {
        if self.out.is_empty() {
            return Ok(());
        }
        if let (Some(at), Some(file)) = (self.held_from, &mut self.state) {
            if file.flush() {
                self.held_from = None;
            } else {
                // Any of them could acknowledge what is not stored. The
                // state stays owed, and everything waits for it.
                log::debug!(
                    "{} bytes of messages dropped: the state is not stored",
                    self.out.len() - at
                );
                self.out.truncate(at);
                self.held_from = Some(0);
                if self.out.is_empty() {
                    return Ok(());
                }
            }
        }
        writer.write_all(&self.out).await?;
        self.out.clear();
        if flush {
            writer.flush().await?;
        }
        Ok(())
    }
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

#[cfg(test)]
mod tests;
