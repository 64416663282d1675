//! Sockets: the accept loop, one task per accepted connection, one task per
//! outgoing link, and the owner's table of open connections.
//!
//! Every task talks to the owner (the one task that holds the node or the
//! KV model) through one bounded queue of [`Event`]s. A reader that finds
//! the queue full waits, stops reading its socket, and TCP pushes back on
//! whoever is sending: memory stays bounded however fast input arrives.
//! The owner never waits on a socket: it hands each outgoing line to a
//! per-connection queue bounded in bytes, and drops a message to a link
//! when that link's queue is full. An accepted connection pushes back the
//! same way in the other direction: while it has too many requests
//! unanswered or too many reply bytes unwritten its reader stops reading,
//! so a burst of acknowledgements to a client that reads them is only a
//! pause, and a client that stops reading stops adding to its backlog; it
//! is closed only if it then takes no reply for the idle time (or its
//! backlog passes a hard cap).

use crate::auth::{prove, Secret};
use crate::lines::{read_line, ReadLine, MAX_LINE};
use crate::secure::{Keys, Opener, Sealer};
use async_channel::{Receiver, Sender, TrySendError};
use smol::future::or;
use smol::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, BufWriter};
use smol::net::{TcpListener, TcpStream};
use smol::Timer;
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The limits every listening socket enforces. The defaults suit a local
/// cluster; each is a flag of `gcounter node` and `gcounter kv`.
#[derive(Debug, Clone)]
pub struct Limits {
    /// The longest line accepted, without its newline. A connection that
    /// sends a longer one is closed.
    pub max_line: usize,
    /// How long an accepted connection may take to deliver its next
    /// complete line before it is closed (`None`: forever). A peer or a
    /// node's KV link closed this way simply reconnects.
    pub idle_timeout: Option<Duration>,
    /// The most accepted connections held at once. One more evicts the
    /// connection that has been quiet the longest.
    pub max_connections: usize,
    /// Lines read but not yet handled by the owner, over all connections.
    pub event_queue: usize,
    /// Bytes of replies waiting to be written to one accepted connection
    /// past which that connection's requests are no longer read, until
    /// the client takes some replies. A burst of acknowledgements to a
    /// pipelining client passes; a client that stops reading stops being
    /// read, so its requests stop adding replies.
    pub reply_buffer: usize,
    /// Bytes of replies waiting for one connection past which it is closed
    /// as not reading: what requests already read can still add while it
    /// is paused is bounded by this, not by the client.
    pub max_reply_backlog: usize,
    /// Requests from one connection the owner may hold unanswered; past
    /// it, that connection is not read until some are answered. A client
    /// pipelining thousands of adds is then paced by its own replies
    /// instead of overrunning what the node holds for everyone (the KV
    /// strategies refuse requests past their own bound).
    pub max_in_flight: usize,
    /// Messages waiting to be written to one outgoing link (a peer or the
    /// KV service). When full, further messages are dropped, as a network
    /// would drop them.
    pub link_queue: usize,
    /// A message that waited longer than this for its link (down, or
    /// reconnecting) is dropped rather than delivered late.
    pub link_max_delay: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_line: MAX_LINE,
            idle_timeout: Some(Duration::from_secs(60)),
            max_connections: 512,
            event_queue: 1024,
            reply_buffer: 256 * 1024,
            max_reply_backlog: 16 * 1024 * 1024,
            max_in_flight: 1024,
            link_queue: 4096,
            link_max_delay: Duration::from_secs(1),
        }
    }
}

/// An accepted connection's number, unique within the process.
pub(crate) type ConnId = u64;
/// An outgoing link's index in the owner's table.
pub(crate) type LinkId = usize;

/// Where a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Conn(ConnId),
    Link(LinkId),
}

/// What the socket tasks tell the owner.
pub(crate) enum Event {
    Opened {
        conn: ConnId,
        peer: SocketAddr,
        handle: ConnHandle,
    },
    Line {
        from: Source,
        line: Vec<u8>,
    },
    Closed {
        conn: ConnId,
    },
    LinkUp(LinkId),
    LinkDown(LinkId),
    /// Time to stop (standard input closed).
    Stop,
}

/// The owner's hold on an accepted connection. Dropping it closes the
/// connection at once, even if its writer is stuck on a client that does
/// not read.
pub(crate) struct ConnHandle {
    writer: Sender<Out>,
    /// Gives the reader its key once the connection proved it holds the
    /// cluster secret: every byte after that is a sealed frame.
    rekey: Sender<Opener>,
    /// Bytes queued for `writer` and not yet written, shared with the
    /// connection's tasks.
    backlog: Arc<AtomicUsize>,
    /// Requests read from it and not yet answered, as the owner counts.
    in_flight: Arc<AtomicUsize>,
    /// Wakes a reader that waits for replies (see [`Pace`]).
    progress: Sender<()>,
    _abort: Sender<()>,
}

/// What the owner queues for an accepted connection's writer.
pub(crate) enum Out {
    Line(Vec<u8>),
    /// Seal every line after this one (the handshake's last plain line).
    Seal(Sealer),
    /// Close the connection once the lines before this one are written.
    Close,
}

/// How a connection ended, for the log.
enum Ending {
    Eof,
    Idle(Duration),
    MidLine(usize),
    TooLong(usize),
    Io(io::Error),
    /// Replies waited this long without one being written.
    NotReading(Duration),
    /// The owner closed it, or is gone.
    Owner,
}

impl fmt::Display for Ending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ending::Eof => f.write_str("closed by the other side"),
            Ending::Idle(d) => write!(f, "no complete line for {d:?}: closed as idle"),
            Ending::MidLine(n) => {
                write!(
                    f,
                    "closed by the other side in the middle of a line ({n} bytes dropped)"
                )
            }
            Ending::TooLong(max) => write!(f, "line longer than {max} bytes: closed"),
            Ending::Io(e) => write!(f, "I/O error: {e}"),
            Ending::NotReading(d) => write!(
                f,
                "not reading its replies (none taken for {d:?} while its requests waited): closed"
            ),
            Ending::Owner => f.write_str("closed by this process"),
        }
    }
}

impl Ending {
    fn is_trouble(&self) -> bool {
        !matches!(self, Ending::Eof | Ending::Owner)
    }
}

/// Binds a listener without waiting (std's bind is immediate anyway).
pub(crate) fn bind(addr: &str) -> io::Result<TcpListener> {
    let std_listener = std::net::TcpListener::bind(addr)?;
    TcpListener::try_from(std_listener)
}

/// Accepts connections until the owner is gone, one task per connection.
pub(crate) async fn accept_loop(listener: TcpListener, events: Sender<Event>, limits: Limits) {
    let mut next: ConnId = 0;
    let mut quiet_until = Instant::now();
    while !events.is_closed() {
        match listener.accept().await {
            Ok((stream, peer)) => {
                next += 1;
                smol::spawn(connection(
                    next,
                    stream,
                    peer,
                    events.clone(),
                    limits.clone(),
                ))
                .detach();
            }
            Err(e) => {
                // Out of file descriptors, typically: wait for some to be
                // freed instead of spinning, and do not flood the log.
                if Instant::now() >= quiet_until {
                    log::warn!("accept failed: {e}; pausing accepts briefly");
                    quiet_until = Instant::now() + Duration::from_secs(5);
                }
                Timer::after(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn connection(
    conn: ConnId,
    stream: TcpStream,
    peer: SocketAddr,
    events: Sender<Event>,
    limits: Limits,
) {
    let _ = stream.set_nodelay(true);
    // Unbounded in lines, bounded in bytes: the owner checks the backlog
    // before queueing (`Conns::send`) and the reader stops reading while
    // it is high.
    let (writer, queue) = async_channel::unbounded();
    let (abort, aborted) = async_channel::bounded::<()>(1);
    let backlog = Arc::new(AtomicUsize::new(0));
    let (progress, progressed) = async_channel::bounded::<()>(1);
    let in_flight = Arc::new(AtomicUsize::new(0));
    let (rekey, keyed) = async_channel::bounded(1);
    let handle = ConnHandle {
        writer,
        rekey,
        backlog: backlog.clone(),
        in_flight: in_flight.clone(),
        progress: progress.clone(),
        _abort: abort,
    };
    if events
        .send(Event::Opened { conn, peer, handle })
        .await
        .is_err()
    {
        return;
    }
    log::debug!("connection {conn} from {peer} opened");
    let source = Source::Conn(conn);
    let paced = Pace {
        backlog: &backlog,
        in_flight: &in_flight,
        progressed: &progressed,
    };
    let reading = read_loop(
        source,
        BufReader::new(stream.clone()),
        &events,
        &limits,
        limits.idle_timeout,
        Some(paced),
        Keying::Accepted(&keyed),
    );
    let writing = async {
        match write_loop(stream.clone(), queue, &backlog, &progress).await {
            Ok(()) => Ending::Owner,
            Err(e) => Ending::Io(e),
        }
    };
    let owner_closed = async {
        let _ = aborted.recv().await;
        Ending::Owner
    };
    let ending = or(reading, or(writing, owner_closed)).await;
    if ending.is_trouble() {
        log::warn!("connection {conn} from {peer}: {ending}");
    } else {
        log::debug!("connection {conn} from {peer}: {ending}");
    }
    let _ = events.send(Event::Closed { conn }).await;
}

/// An accepted connection's replies, as its reader sees them.
struct Pace<'a> {
    backlog: &'a AtomicUsize,
    in_flight: &'a AtomicUsize,
    /// A message each time the writer wrote a reply (at most one waits).
    progressed: &'a Receiver<()>,
}

/// Whether a connection's lines are sealed frames.
enum Keying<'a> {
    /// Plain lines until the owner sends a key (the handshake succeeded).
    Accepted(&'a Receiver<Opener>),
    /// Plain for good (the KV service's link).
    Plain,
    /// Sealed from the first byte (a peer link, after its handshake).
    Sealed(Opener),
}

/// Reads lines from `stream` into the owner's queue until the stream ends,
/// breaks a limit, or the owner goes away. With `pace`, reading waits
/// while the connection's unwritten replies exceed the reply buffer.
async fn read_loop(
    from: Source,
    mut reader: BufReader<TcpStream>,
    events: &Sender<Event>,
    limits: &Limits,
    idle: Option<Duration>,
    pace: Option<Pace<'_>>,
    mut keying: Keying<'_>,
) -> Ending {
    let mut buf = Vec::new();
    loop {
        if let Some(pace) = &pace {
            // Only a writer that makes no progress at all for the idle
            // time is a client that does not read; a slow one is waited
            // for as long as it keeps taking replies.
            while buf.is_empty()
                && (pace.backlog.load(Ordering::Acquire) > limits.reply_buffer
                    || pace.in_flight.load(Ordering::Acquire) >= limits.max_in_flight)
            {
                let progress = async { pace.progressed.recv().await.is_ok() };
                let progressed = match idle {
                    Some(idle) => {
                        or(progress, async {
                            Timer::after(idle).await;
                            false
                        })
                        .await
                    }
                    None => progress.await,
                };
                if !progressed {
                    return Ending::NotReading(idle.unwrap_or_default());
                }
            }
        }
        let reading = async {
            if let (Keying::Accepted(keyed), true) = (&keying, buf.is_empty()) {
                // The dialer sends nothing after its proof until it has
                // our `peer_proof_ok`, and the owner hands us the key
                // before queueing that: so once the next bytes are here,
                // a key sent for them is here too.
                if let Err(e) = reader.fill_buf().await {
                    return Some(Err(e));
                }
                if let Ok(opener) = keyed.try_recv() {
                    keying = Keying::Sealed(opener);
                }
            }
            Some(match &mut keying {
                Keying::Sealed(opener) => opener.read(&mut reader, &mut buf, limits.max_line).await,
                _ => read_line(&mut reader, &mut buf, limits.max_line).await,
            })
        };
        let result = match idle {
            Some(idle) => {
                or(reading, async {
                    Timer::after(idle).await;
                    None
                })
                .await
            }
            None => reading.await,
        };
        match result {
            None => return Ending::Idle(idle.unwrap_or_default()),
            Some(Ok(ReadLine::Line)) => {
                if buf.is_empty() {
                    continue;
                }
                let line = std::mem::take(&mut buf);
                if events.send(Event::Line { from, line }).await.is_err() {
                    return Ending::Owner;
                }
            }
            Some(Ok(ReadLine::Eof)) => return Ending::Eof,
            Some(Ok(ReadLine::Truncated)) => return Ending::MidLine(buf.len()),
            Some(Ok(ReadLine::TooLong)) => return Ending::TooLong(limits.max_line),
            Some(Err(e)) => return Ending::Io(e),
        }
    }
}

/// Writes queued lines, flushing whenever the queue runs dry, and counts
/// them off the backlog. Returns `Ok` when the queue's sender is dropped.
async fn write_loop(
    stream: TcpStream,
    queue: Receiver<Out>,
    backlog: &AtomicUsize,
    progress: &Sender<()>,
) -> io::Result<()> {
    let mut out = BufWriter::new(stream);
    let mut sealer = None;
    while let Ok(next) = queue.recv().await {
        match next {
            Out::Seal(key) => sealer = Some(key),
            Out::Close => break,
            Out::Line(line) => {
                match &mut sealer {
                    Some(sealer) => out.write_all(&sealer.seal(&line)).await?,
                    None => out.write_all(&line).await?,
                }
                backlog.fetch_sub(line.len(), Ordering::AcqRel);
                let _ = progress.try_send(());
            }
        }
        if queue.is_empty() {
            out.flush().await?;
        }
    }
    out.flush().await
}

/// The owner's table of accepted connections, with least-recently-active
/// eviction when there are too many.
pub(crate) struct Conns {
    open: HashMap<ConnId, Entry>,
    tick: u64,
    max: usize,
    evictions: u64,
    max_backlog: usize,
}

struct Entry {
    handle: ConnHandle,
    peer: SocketAddr,
    last_active: u64,
}

impl Conns {
    pub(crate) fn new(limits: &Limits) -> Self {
        Conns {
            open: HashMap::new(),
            tick: 0,
            max: limits.max_connections.max(1),
            evictions: 0,
            max_backlog: limits.max_reply_backlog,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// Registers a new connection; returns the ones evicted to make room.
    pub(crate) fn opened(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        handle: ConnHandle,
    ) -> Vec<ConnId> {
        self.tick += 1;
        self.open.insert(
            conn,
            Entry {
                handle,
                peer,
                last_active: self.tick,
            },
        );
        let mut evicted = Vec::new();
        while self.open.len() > self.max {
            let Some((&oldest, entry)) = self.open.iter().min_by_key(|(_, e)| e.last_active) else {
                break;
            };
            self.evictions += 1;
            // A flood evicts thousands: log the first and then sparsely.
            if self.evictions.is_power_of_two() {
                log::warn!(
                    "{} connections open, the limit is {}: closing connection {oldest} from {} \
                     (quiet the longest; {} closed this way so far)",
                    self.open.len(),
                    self.max,
                    entry.peer,
                    self.evictions
                );
            }
            self.open.remove(&oldest);
            evicted.push(oldest);
        }
        evicted
    }

    /// Notes activity on `conn`. False if the connection is no longer
    /// registered (it was evicted and its last lines are still arriving).
    pub(crate) fn touch(&mut self, conn: ConnId) -> bool {
        self.tick += 1;
        match self.open.get_mut(&conn) {
            Some(entry) => {
                entry.last_active = self.tick;
                true
            }
            None => false,
        }
    }

    /// Closes `conn` now (dropping its handle ends its task).
    pub(crate) fn close(&mut self, conn: ConnId) {
        self.open.remove(&conn);
    }

    /// Notes a request read from `conn` that awaits its answer.
    pub(crate) fn request(&mut self, conn: ConnId) {
        if let Some(entry) = self.open.get(&conn) {
            entry.handle.in_flight.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Notes that a request from `conn` was answered (or will never be).
    pub(crate) fn answered(&mut self, conn: ConnId) {
        if let Some(entry) = self.open.get(&conn) {
            let _ = entry
                .handle
                .in_flight
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    Some(n.saturating_sub(1))
                });
            // The reply that usually follows wakes the reader; this is
            // for the answers that never come.
            let _ = entry.handle.progress.try_send(());
        }
    }

    /// Forgets every request awaiting an answer.
    pub(crate) fn forget_requests(&mut self) {
        for entry in self.open.values() {
            entry.handle.in_flight.store(0, Ordering::Release);
            let _ = entry.handle.progress.try_send(());
        }
    }

    /// Where `conn` comes from, for the log.
    pub(crate) fn peer_addr(&self, conn: ConnId) -> Option<SocketAddr> {
        self.open.get(&conn).map(|e| e.peer)
    }

    pub(crate) fn closed(&mut self, conn: ConnId) -> bool {
        self.open.remove(&conn).is_some()
    }

    /// Queues `line` for `conn`. A connection whose unwritten replies
    /// would pass the backlog limit is not reading them (its requests
    /// stopped being read long before): it is closed. False if the line
    /// was not queued.
    pub(crate) fn send(&mut self, conn: ConnId, line: Vec<u8>) -> bool {
        let Some(entry) = self.open.get(&conn) else {
            return false;
        };
        let len = line.len();
        let backlog = entry.handle.backlog.load(Ordering::Acquire);
        if backlog + len > self.max_backlog {
            log::warn!(
                "connection {conn} from {} is not reading its replies ({backlog} bytes unread): \
                 closing it",
                entry.peer,
            );
            self.open.remove(&conn);
            return false;
        }
        entry.handle.backlog.fetch_add(len, Ordering::AcqRel);
        match entry.handle.writer.try_send(Out::Line(line)) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Closed(_)) => {
                self.open.remove(&conn);
                false
            }
        }
    }
}

impl Conns {
    /// Sends `last` and closes `conn` once it is written (a refusal the
    /// other side should read).
    pub(crate) fn send_and_close(&mut self, conn: ConnId, last: Vec<u8>) {
        if self.send(conn, last) {
            if let Some(entry) = self.open.get(&conn) {
                let _ = entry.handle.writer.try_send(Out::Close);
            }
        }
    }

    /// Sends `ok`, the handshake's last plain line, and seals everything
    /// after it both ways with `keys`. False if `conn` is gone.
    pub(crate) fn secure(&mut self, conn: ConnId, ok: Vec<u8>, keys: Keys) -> bool {
        let Some(entry) = self.open.get(&conn) else {
            return false;
        };
        // The reader's key first: the dialer answers `ok` at once.
        if entry.handle.rekey.try_send(keys.opener).is_err() || !self.send(conn, ok) {
            self.open.remove(&conn);
            return false;
        }
        let Some(entry) = self.open.get(&conn) else {
            return false;
        };
        entry.handle.writer.try_send(Out::Seal(keys.sealer)).is_ok()
    }
}

/// Who a peer link speaks as, and the secret it proves that with.
#[derive(Debug, Clone)]
pub(crate) struct Hello {
    pub(crate) me: String,
    pub(crate) secret: Secret,
}

/// The owner's side of an outgoing link.
pub(crate) struct Link {
    pub(crate) name: String,
    pub(crate) addr: String,
    queue: Sender<(Instant, Vec<u8>)>,
    pub(crate) up: bool,
    dropped: u64,
}

impl Link {
    /// Starts the task that keeps a connection to `addr` open; with
    /// `hello`, each connection first proves it holds the cluster secret.
    pub(crate) fn spawn(
        id: LinkId,
        name: &str,
        addr: &str,
        hello: Option<Hello>,
        events: Sender<Event>,
        limits: &Limits,
    ) -> Link {
        let (queue, pending) = async_channel::bounded(limits.link_queue);
        smol::spawn(link_task(
            id,
            name.to_owned(),
            addr.to_owned(),
            hello,
            pending,
            events,
            limits.clone(),
        ))
        .detach();
        Link {
            name: name.to_owned(),
            addr: addr.to_owned(),
            queue,
            up: false,
            dropped: 0,
        }
    }

    /// A link whose lines another task takes from `queue` (etcd's).
    pub(crate) fn with_queue(name: &str, addr: &str, queue: Sender<(Instant, Vec<u8>)>) -> Link {
        Link {
            name: name.to_owned(),
            addr: addr.to_owned(),
            queue,
            up: true,
            dropped: 0,
        }
    }

    /// Queues `line`; when the queue is full the line is dropped, like a
    /// packet on a congested network, and counted.
    pub(crate) fn send(&mut self, line: Vec<u8>) {
        if self.queue.try_send((Instant::now(), line)).is_err() {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                log::warn!(
                    "link to {} at {} is {}: {} messages dropped so far",
                    self.name,
                    self.addr,
                    if self.up { "congested" } else { "down" },
                    self.dropped
                );
            }
        }
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(50);
const BACKOFF_MAX: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Keeps a connection to `addr` open: dials, writes queued lines, reads
/// what comes back (the KV service's replies), and on any failure dials
/// again with exponential backoff and jitter.
async fn link_task(
    id: LinkId,
    name: String,
    addr: String,
    hello: Option<Hello>,
    pending: Receiver<(Instant, Vec<u8>)>,
    events: Sender<Event>,
    limits: Limits,
) {
    let mut backoff = BACKOFF_MIN;
    let mut failures = 0u64;
    while !events.is_closed() {
        let dial = async { Some(TcpStream::connect(addr.as_str()).await) };
        let timeout = async {
            Timer::after(CONNECT_TIMEOUT).await;
            None
        };
        let stream = match or(dial, timeout).await {
            Some(Ok(stream)) => stream,
            failed => {
                failures += 1;
                let why = match failed {
                    Some(Err(e)) => e.to_string(),
                    _ => format!("no answer within {CONNECT_TIMEOUT:?}"),
                };
                if failures == 1 {
                    log::warn!("cannot reach {name} at {addr}: {why}; retrying with backoff");
                } else {
                    log::debug!("cannot reach {name} at {addr} (attempt {failures}): {why}");
                }
                let jitter = 0.75 + fastrand::f64() / 2.0;
                Timer::after(backoff.mul_f64(jitter)).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let mut reader = BufReader::new(stream.clone());
        let mut keys = None;
        if let Some(hello) = &hello {
            let mut writer = stream.clone();
            let proving = async {
                let proven = prove(
                    &mut reader,
                    &mut writer,
                    &hello.secret,
                    &hello.me,
                    Some(&name),
                );
                Some(proven.await.map(|(_, keys)| keys))
            };
            let timeout = async {
                Timer::after(CONNECT_TIMEOUT).await;
                None
            };
            let (why, forged) = match or(proving, timeout).await {
                Some(Ok(k)) => {
                    keys = Some(k);
                    (None, false)
                }
                Some(Err(e)) => {
                    let forged = e.kind() == io::ErrorKind::PermissionDenied;
                    (Some(e.to_string()), forged)
                }
                None => (
                    Some(format!("no handshake within {CONNECT_TIMEOUT:?}")),
                    false,
                ),
            };
            if let Some(why) = why {
                failures += 1;
                // Whoever answered failed to prove it is the peer: worth a
                // warning each time, not only after a run of successes
                // (the backoff keeps it to one line in 2 s at most).
                if failures == 1 || forged {
                    log::warn!("link to {name} at {addr}: handshake failed: {why}; retrying");
                } else {
                    log::debug!("link to {name} at {addr}: handshake failed again: {why}");
                }
                Timer::after(backoff.mul_f64(0.75 + fastrand::f64() / 2.0)).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        }
        log::info!("connected to {name} at {addr}");
        failures = 0;
        backoff = BACKOFF_MIN;
        if events.send(Event::LinkUp(id)).await.is_err() {
            return;
        }
        let (keying, sealer) = match keys {
            Some(Keys { sealer, opener }) => (Keying::Sealed(opener), Some(sealer)),
            None => (Keying::Plain, None),
        };
        let reading = read_loop(
            Source::Link(id),
            reader,
            &events,
            &limits,
            None,
            None,
            keying,
        );
        let writing = async {
            match link_write_loop(stream, &pending, limits.link_max_delay, sealer).await {
                Ok(()) => Ending::Owner,
                Err(e) => Ending::Io(e),
            }
        };
        let ending = or(reading, writing).await;
        if ending.is_trouble() {
            log::warn!("link to {name} at {addr}: {ending}; reconnecting");
        } else {
            // An idle link closed by the other side's idle timeout, say.
            log::info!("link to {name} at {addr}: {ending}; reconnecting");
        }
        if events.send(Event::LinkDown(id)).await.is_err() {
            return;
        }
        Timer::after(BACKOFF_MIN).await;
    }
}

async fn link_write_loop(
    stream: TcpStream,
    pending: &Receiver<(Instant, Vec<u8>)>,
    max_delay: Duration,
    mut sealer: Option<Sealer>,
) -> io::Result<()> {
    let mut out = BufWriter::new(stream);
    let mut stale = 0u64;
    while let Ok((queued_at, line)) = pending.recv().await {
        if queued_at.elapsed() > max_delay {
            stale += 1;
            if stale.is_power_of_two() {
                log::debug!("{stale} messages dropped for waiting longer than {max_delay:?}");
            }
        } else {
            match &mut sealer {
                Some(sealer) => out.write_all(&sealer.seal(&line)).await?,
                None => out.write_all(&line).await?,
            }
        }
        if pending.is_empty() {
            out.flush().await?;
        }
    }
    out.flush().await
}

/// Sends [`Event::Stop`] once standard input ends: a supervisor that holds
/// the other end of the pipe (`gcounter cluster`, a test) has exited, by
/// any means, and its children must not outlive it.
pub(crate) fn stop_on_stdin_eof(events: Sender<Event>) {
    smol::spawn(async move {
        let mut stdin = smol::Unblock::new(std::io::stdin());
        let mut sink = [0u8; 512];
        loop {
            match smol::io::AsyncReadExt::read(&mut stdin, &mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
        log::info!("standard input closed: stopping");
        let _ = events.send(Event::Stop).await;
    })
    .detach();
}
