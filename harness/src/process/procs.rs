//! Node processes: spawning them as Maelstrom does (messages on stdin and
//! stdout, logs on stderr), turning their stdout into events, and the
//! nemesis' process faults (SIGKILL and a fresh start, SIGSTOP and
//! SIGCONT).
//!
//! A node's end is noticed by its process, not by its stdout: a node may
//! fork a child that inherits the pipe and outlives it, and the pipe then
//! never closes ([`Procs::exits`]). Each node runs in a process group of
//! its own, and the whole group is killed when the node is (by the
//! nemesis) and when the run ends, so that nothing a node started outlives
//! the runner.
//!
//! Each node runs in a working directory of its own, kept across kills as
//! a disk would be, so a node that stores state in its working directory
//! finds it again when it is started anew. Every start of a node is a new
//! life: events carry the life they came from, so what a killed process
//! printed (or its end) is never taken for its successor's.

use async_channel::{Receiver, Sender};
use smol::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use smol::process::{Child, ChildStdin, Command, Stdio};
use smol::{Async, Executor};
use std::fs::File;
use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The longest line a node may print (Maelstrom's messages are small; a
/// longer line is a bug, and reading it whole could exhaust memory).
pub const MAX_LINE: usize = 1 << 20;

/// How long a running (not paused) node may leave its input unread before
/// the test gives up on it. A node that reads at all takes a line in
/// microseconds; seconds of silence on a pipe that has data means it
/// stopped reading, and its messages would pile up without end.
pub const STALL_LIMIT: Duration = Duration::from_secs(10);

/// The most input a node may leave unread, whatever the time: the runner
/// holds it in memory.
pub const MAX_BACKLOG: usize = 64 << 20;

/// How long a node's process may have exited before the test is told,
/// without its stdout closing: time for the lines it printed last, and
/// the end of the pipe, to arrive first, so that what it said before it
/// went is judged before its going. Past it, something the node started
/// holds the pipe open, and waiting for it would wait for that process.
pub const EXIT_GRACE: Duration = Duration::from_millis(500);

/// What to run for each node.
#[derive(Debug, Clone)]
pub struct NodeCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Extra environment for the node (the rest is inherited).
    pub env: Vec<(String, String)>,
}

impl NodeCommand {
    /// The command with its program path, and every argument that names
    /// an existing file relative to `cwd`, made absolute: each node runs in
    /// a directory of its own, where `node.py` would not be. Directories
    /// (`.`) stay as they are, for the node to take in its own directory.
    pub fn anchored(&self, cwd: &Path) -> NodeCommand {
        let anchor = |s: &Path| -> Option<PathBuf> {
            (s.is_relative() && cwd.join(s).is_file()).then(|| cwd.join(s))
        };
        let program = match anchor(&self.program) {
            // A bare name like `python3` is looked up on PATH, not here.
            Some(path) if self.program.components().count() > 1 => path,
            _ => self.program.clone(),
        };
        let args = self
            .args
            .iter()
            .map(|a| match anchor(Path::new(a)) {
                Some(path) if !a.starts_with('-') => path.display().to_string(),
                _ => a.clone(),
            })
            .collect();
        NodeCommand {
            program,
            args,
            env: self.env.clone(),
        }
    }
}

/// Where the nodes live: their logs (`<logs>/<id>.log`, appended to across
/// restarts) and their working directories (`<work>/<id>/`).
#[derive(Debug, Clone)]
pub struct NodeDirs {
    pub logs: PathBuf,
    pub work: PathBuf,
}

/// Something a node process did, in which of its lives.
#[derive(Debug)]
pub enum ProcEvent {
    /// One line of stdout, without its newline.
    Line {
        node: usize,
        life: u64,
        line: Vec<u8>,
    },
    /// A stdout line longer than [`MAX_LINE`].
    Oversized { node: usize, life: u64, len: usize },
    /// stdout closed: the process exited or closed it.
    Closed { node: usize, life: u64 },
}

impl ProcEvent {
    pub fn node(&self) -> usize {
        match self {
            ProcEvent::Line { node, .. }
            | ProcEvent::Oversized { node, .. }
            | ProcEvent::Closed { node, .. } => *node,
        }
    }

    pub fn life(&self) -> u64 {
        match self {
            ProcEvent::Line { life, .. }
            | ProcEvent::Oversized { life, .. }
            | ProcEvent::Closed { life, .. } => *life,
        }
    }
}

/// The running node processes.
#[derive(Debug)]
pub struct Procs {
    cmd: NodeCommand,
    ids: Vec<String>,
    dirs: NodeDirs,
    echo_stderr: bool,
    events: Sender<ProcEvent>,
    /// Where the tasks that read and write the pipes run: the runner's own
    /// thread (see [`Procs::spawn`]).
    ex: Arc<Executor<'static>>,
    children: Vec<Option<Child>>,
    stdins: Vec<Option<Stdin>>,
    paused: Vec<bool>,
    lives: Vec<u64>,
    /// What the test knows of each node's current process's end.
    ends: Vec<End>,
    /// When [`Procs::exits`] last looked.
    looked: Instant,
    pub logs: Vec<PathBuf>,
}

/// A node process's end, as far as the test has been told of it.
#[derive(Debug, Clone)]
enum End {
    /// Running, or gone without anyone looking yet.
    Unseen,
    /// Seen gone (`status`) at `at`, its stdout still open.
    Seen { at: Instant, status: String },
    /// The test has been told.
    Told,
}

impl Procs {
    /// Starts one process per id; stderr goes to `<logs>/<id>.log` (and
    /// to our stderr too with `echo_stderr`). stdout lines arrive on `events`.
    ///
    /// The tasks that read the nodes' output and write what their stdin
    /// pipes could not take at once run on `ex`, which the caller runs on
    /// the thread that drives the test (`block_on(ex.run(...))`): a line a
    /// node prints then wakes that one thread, not a thread of smol's
    /// global executor that in turn wakes the runner's.
    pub fn spawn(
        cmd: &NodeCommand,
        ids: &[String],
        dirs: &NodeDirs,
        echo_stderr: bool,
        events: Sender<ProcEvent>,
        ex: Arc<Executor<'static>>,
    ) -> io::Result<Procs> {
        std::fs::create_dir_all(&dirs.logs)?;
        let mut procs = Procs {
            cmd: cmd.anchored(&std::env::current_dir()?),
            ids: ids.to_vec(),
            dirs: dirs.clone(),
            echo_stderr,
            events,
            ex,
            children: ids.iter().map(|_| None).collect(),
            stdins: ids.iter().map(|_| None).collect(),
            paused: vec![false; ids.len()],
            lives: vec![0; ids.len()],
            ends: vec![End::Unseen; ids.len()],
            looked: Instant::now(),
            logs: ids
                .iter()
                .map(|id| dirs.logs.join(format!("{id}.log")))
                .collect(),
        };
        for node in 0..ids.len() {
            File::create(&procs.logs[node])?;
            procs.start(node)?;
        }
        Ok(procs)
    }

    /// Starts node `node` as a fresh process in its working directory, its
    /// stderr appended to its log.
    pub fn start(&mut self, node: usize) -> io::Result<()> {
        self.lives[node] += 1;
        let life = self.lives[node];
        let id = &self.ids[node];
        let work = self.dirs.work.join(id);
        std::fs::create_dir_all(&work)?;
        let log = File::options()
            .append(true)
            .create(true)
            .open(&self.logs[node])?;
        let mut own_group = std::process::Command::new(&self.cmd.program);
        // A process group of its own: Ctrl-C at the terminal reaches the
        // runner alone, which then ends the run and keeps its results,
        // rather than every node dying under it first.
        std::os::unix::process::CommandExt::process_group(&mut own_group, 0);
        let mut command = Command::from(own_group);
        command
            .args(&self.cmd.args)
            .envs(self.cmd.env.iter().cloned())
            .current_dir(&work)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true);
        if self.echo_stderr {
            command.stderr(Stdio::piped());
        } else {
            command.stderr(log.try_clone()?);
        }
        let mut child = command.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start {}: {e}", self.cmd.program.display()),
            )
        })?;
        if let Some(stdout) = child.stdout.take() {
            self.ex
                .spawn(read_lines(node, life, stdout, self.events.clone()))
                .detach();
        }
        if let Some(stderr) = child.stderr.take() {
            self.ex.spawn(tee_stderr(id.clone(), stderr, log)).detach();
        }
        self.stdins[node] = child
            .stdin
            .take()
            .map(|pipe| Stdin::new(pipe, &self.ex))
            .transpose()?;
        self.paused[node] = false;
        self.ends[node] = End::Unseen;
        self.children[node] = Some(child);
        Ok(())
    }

    /// Whether `event` comes from the current life of its node.
    pub fn is_current(&self, event: &ProcEvent) -> bool {
        self.lives.get(event.node()) == Some(&event.life())
    }

    /// SIGKILLs node `node` and whatever it started (its process group),
    /// as a crash of its machine would; it is reaped in the background.
    pub fn kill(&mut self, node: usize) {
        self.stdins[node] = None;
        self.paused[node] = false;
        if let Some(mut child) = self.children[node].take() {
            kill_group(child.id());
            let _ = child.kill();
            self.ex
                .spawn(async move {
                    let _ = child.status().await;
                })
                .detach();
        }
    }

    /// SIGSTOPs node `node`.
    pub fn pause(&mut self, node: usize) {
        self.signal(node, rustix::process::Signal::STOP);
        self.paused[node] = true;
    }

    /// SIGCONTs node `node`.
    pub fn resume(&mut self, node: usize) {
        self.signal(node, rustix::process::Signal::CONT);
        if std::mem::take(&mut self.paused[node]) {
            // A stopped node reads nothing: its time to drain starts now.
            if let Some(stdin) = &self.stdins[node] {
                let mut backlog = stdin.backlog();
                backlog.since = Instant::now();
            }
        }
    }

    fn signal(&self, node: usize, signal: rustix::process::Signal) {
        if let Some(child) = &self.children[node] {
            signal_pid(child.id(), signal);
        }
    }

    /// Sends one line (a newline is added) to node `node`'s stdin. It
    /// never waits: a node that stops reading must not stop the runner,
    /// which [`Procs::stalled`] then reports.
    ///
    /// The line goes straight into the pipe when the pipe has room and
    /// nothing is queued before it; otherwise (the pipe is full, or takes
    /// only part of it) what is left is queued for the node's writer task,
    /// and so is every later line until that queue drains, which keeps
    /// the lines in order. Writing directly saves a wake-up of the writer
    /// task per message, which was most of the runner's cost.
    pub fn send(&mut self, node: usize, line: &[u8]) -> io::Result<()> {
        let closed = || io::Error::new(io::ErrorKind::BrokenPipe, "stdin closed");
        let Some(Some(stdin)) = self.stdins.get_mut(node) else {
            return Err(closed());
        };
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        let mut backlog = stdin.backlog();
        if backlog.closed {
            return Err(closed());
        }
        if backlog.lines == 0 {
            // Only this runner queues lines, and the writer counts them
            // off once they are in the pipe: none are waiting, so this
            // one is next.
            match stdin.try_write(&buf) {
                Ok(n) if n == buf.len() => return Ok(()),
                Ok(n) => {
                    buf.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    backlog.closed = true;
                    return Err(closed());
                }
            }
            backlog.since = Instant::now();
        }
        backlog.lines += 1;
        backlog.bytes += buf.len();
        drop(backlog);
        stdin.queue.try_send(buf).map_err(|_| closed())
    }

    /// The first running node that has left input unread for longer than
    /// `limit` (or more than `MAX_BACKLOG` of it): its id, how long, and
    /// how many lines and bytes wait.
    pub fn stalled(&self, limit: Duration) -> Option<Stalled> {
        (0..self.ids.len()).find_map(|node| {
            if self.paused[node] {
                return None;
            }
            let backlog = self.stdins[node].as_ref()?.backlog();
            let waited = backlog.since.elapsed();
            let stuck = backlog.lines > 0 && (waited > limit || backlog.bytes > MAX_BACKLOG);
            stuck.then(|| Stalled {
                node: self.ids[node].clone(),
                waited,
                lines: backlog.lines,
                bytes: backlog.bytes,
            })
        })
    }

    /// How node `node` exited, or that its stdin closed.
    pub fn exit_status(&mut self, node: usize) -> String {
        self.ends[node] = End::Told;
        self.children
            .get_mut(node)
            .and_then(|c| c.as_mut()?.try_status().ok().flatten())
            .map_or("stdin closed".into(), |s| s.to_string())
    }

    /// What to tell the test when node `node`'s stdout closes: how it
    /// exited, if it has, else that its stdout closed (it may have
    /// closed it and run on).
    pub fn closed_status(&mut self, node: usize) -> String {
        self.ends[node] = End::Told;
        self.children
            .get_mut(node)
            .and_then(|c| c.as_mut()?.try_status().ok().flatten())
            .map_or("its stdout closed".into(), |s| s.to_string())
    }

    /// The nodes whose current process exited more than `grace` ago with
    /// its stdout still open, and how, each told once. A node's end is
    /// its process's: waiting for its stdout to close instead waited as
    /// long as any child it forked held the pipe (the run ended
    /// `unknown`, 14 s later, without a word of the exit).
    pub fn exits(&mut self, grace: Duration) -> Vec<(usize, String)> {
        let mut out = Vec::new();
        // A wait per node per event would cost: a tenth of a second is
        // soon enough.
        if self.looked.elapsed() < Duration::from_millis(100) {
            return out;
        }
        self.looked = Instant::now();
        for node in 0..self.children.len() {
            let Some(child) = &mut self.children[node] else {
                continue;
            };
            match &self.ends[node] {
                End::Told => {}
                End::Unseen => {
                    if let Ok(Some(status)) = child.try_status() {
                        self.ends[node] = End::Seen {
                            at: Instant::now(),
                            status: status.to_string(),
                        };
                    }
                }
                End::Seen { at, status } => {
                    if at.elapsed() >= grace {
                        out.push((
                            node,
                            format!(
                                "{status}; its stdout is still open: a process it \
                                 started holds it"
                            ),
                        ));
                        self.ends[node] = End::Told;
                    }
                }
            }
        }
        out
    }

    /// Closes every stdin (a node's cue to exit), waits up to `grace`, then
    /// kills whatever is still running, each node's process group whole:
    /// what a node forked goes with it. Paused nodes are resumed first, so
    /// that they can see it.
    pub async fn shutdown(&mut self, grace: std::time::Duration) {
        for node in 0..self.children.len() {
            self.resume(node);
        }
        self.stdins.iter_mut().for_each(|s| drop(s.take()));
        let deadline = std::time::Instant::now() + grace;
        for child in self.children.iter_mut().flatten() {
            while child.try_status().ok().flatten().is_none()
                && std::time::Instant::now() < deadline
            {
                smol::Timer::after(std::time::Duration::from_millis(10)).await;
            }
            kill_group(child.id());
            let _ = child.kill();
            let _ = child.status().await;
        }
    }
}

impl Drop for Procs {
    /// Whatever way the run ends (an error, a panic), nothing it started
    /// is left running: `kill_on_drop` reaches a node's own process only.
    fn drop(&mut self) {
        for child in self.children.iter().flatten() {
            kill_group(child.id());
        }
    }
}

/// SIGKILLs process group `pgid`: a node and everything it started and
/// did not move elsewhere (each node leads a group of its own). A group
/// already empty is no error.
fn kill_group(pgid: u32) {
    let Some(pgid) = i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    match rustix::process::kill_process_group(pgid, rustix::process::Signal::KILL) {
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => log::warn!("cannot kill process group {pgid:?}: {e}"),
    }
}

/// A node that does not read its input: see [`Procs::stalled`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stalled {
    pub node: String,
    pub waited: Duration,
    pub lines: usize,
    pub bytes: usize,
}

/// What the runner has for a node and could not put in its stdin pipe yet
/// (the pipe was full): the lines queued for its writer task.
#[derive(Debug)]
struct Backlog {
    lines: usize,
    bytes: usize,
    /// Since when the oldest waiting line has had the pipe to itself: the
    /// last time the node took some input, or the time input began to
    /// wait.
    since: Instant,
    /// The pipe broke: the node closed its stdin or is gone.
    closed: bool,
}

/// A node's stdin pipe (non-blocking), shared by the runner, which writes
/// to it directly while it has room, and a task of its own that writes
/// what did not fit, so that the runner never waits on a full pipe.
type Pipe = Arc<Async<std::process::ChildStdin>>;

/// A node's stdin: the pipe, and the queue of lines that did not fit in it.
#[derive(Debug)]
struct Stdin {
    pipe: Pipe,
    queue: Sender<Vec<u8>>,
    backlog: Arc<Mutex<Backlog>>,
}

impl Stdin {
    fn new(pipe: ChildStdin, ex: &Executor<'static>) -> io::Result<Stdin> {
        // Out of async-process's wrapper, to share it: the descriptor
        // stays the same pipe, non-blocking.
        let pipe = std::process::ChildStdin::from(OwnedFd::try_from(pipe)?);
        let pipe = Arc::new(Async::new(pipe)?);
        let (queue, lines) = async_channel::unbounded();
        let backlog = Arc::new(Mutex::new(Backlog {
            lines: 0,
            bytes: 0,
            since: Instant::now(),
            closed: false,
        }));
        ex.spawn(write_lines(pipe.clone(), lines, backlog.clone()))
            .detach();
        Ok(Stdin {
            pipe,
            queue,
            backlog,
        })
    }

    fn backlog(&self) -> MutexGuard<'_, Backlog> {
        lock(&self.backlog)
    }

    /// Writes what the pipe takes of `buf` now, without waiting:
    /// `WouldBlock` if it takes nothing.
    fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let mut pipe: &std::process::ChildStdin = self.pipe.get_ref();
        pipe.write(buf)
    }
}

/// The lock, even if a holder panicked: the counts stay usable.
fn lock(backlog: &Mutex<Backlog>) -> MutexGuard<'_, Backlog> {
    backlog.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes the queued lines to the pipe until the queue closes (the node is
/// killed or the run ends) or the pipe breaks. Lines queued together go
/// out in one write.
async fn write_lines(pipe: Pipe, lines: Receiver<Vec<u8>>, backlog: Arc<Mutex<Backlog>>) {
    while let Ok(mut buf) = lines.recv().await {
        let mut count = 1;
        while buf.len() < 1 << 16 {
            let Ok(more) = lines.try_recv() else { break };
            buf.extend_from_slice(&more);
            count += 1;
        }
        let written = (&*pipe).write_all(&buf).await.is_ok();
        let mut b = lock(&backlog);
        if !written {
            b.closed = true;
            return;
        }
        b.lines -= count;
        b.bytes -= buf.len();
        b.since = Instant::now();
    }
}

/// Sends `signal` to process `pid` (pause and resume for the nemesis). A
/// process that is already gone is no error: the test notices its end.
pub fn signal_pid(pid: u32, signal: rustix::process::Signal) {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return;
    };
    match rustix::process::kill_process(pid, signal) {
        // Gone, and reaped already (a node whose exit was noticed while
        // its stdout stayed open): nothing to pause or resume.
        Ok(()) | Err(rustix::io::Errno::SRCH) => {}
        Err(e) => log::warn!("cannot send {signal:?} to process {pid:?}: {e}"),
    }
}

async fn read_lines(
    node: usize,
    life: u64,
    stdout: smol::process::ChildStdout,
    events: Sender<ProcEvent>,
) {
    let mut reader = BufReader::new(stdout);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Read at most MAX_LINE + 1 bytes of one line, then skip the rest.
        // A read error ends the stream like EOF: the node is gone either way.
        let mut limited = (&mut reader).take(MAX_LINE as u64 + 1);
        let n = limited
            .read_until(b'\n', &mut line)
            .await
            .unwrap_or_default();
        if n == 0 {
            break;
        }
        if line.last() == Some(&b'\n') {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
        } else if line.len() > MAX_LINE {
            let mut len = line.len();
            let mut rest = Vec::new();
            while let Ok(k) = (&mut reader)
                .take(1 << 16)
                .read_until(b'\n', &mut rest)
                .await
            {
                len += k;
                if k == 0 || rest.last() == Some(&b'\n') {
                    break;
                }
                rest.clear();
            }
            let event = ProcEvent::Oversized { node, life, len };
            if events.send(event).await.is_err() {
                return;
            }
            continue;
        }
        let event = ProcEvent::Line {
            node,
            life,
            line: line.clone(),
        };
        if events.send(event).await.is_err() {
            return;
        }
    }
    let _ = events.send(ProcEvent::Closed { node, life }).await;
}

/// The most of one stderr line `--log-stderr` copies to our stderr (and
/// holds): a node may print a line of any length, and the runner must not
/// grow with it. The log file gets every byte regardless.
pub const MAX_STDERR_LINE: usize = 64 << 10;

/// Copies a node's stderr to its log as it comes, byte for byte (as the log
/// is kept without `--log-stderr`), and to our stderr line by line, decoded
/// leniently and cut at [`MAX_STDERR_LINE`]. Reading bytes rather than
/// `String` lines matters: one byte that is not UTF-8 used to end the copy,
/// close the pipe and so kill the node on its next write.
async fn tee_stderr(id: String, mut stderr: smol::process::ChildStderr, file: File) {
    let mut file = smol::Unblock::new(file);
    let mut buf = vec![0; 64 << 10];
    let mut lines = CappedLines::new(MAX_STDERR_LINE);
    let echo = |line: &[u8], cut: usize| {
        let text = String::from_utf8_lossy(line);
        let note = if cut > 0 {
            format!(" [truncated {cut} bytes]")
        } else {
            String::new()
        };
        // Not eprintln!: a closed stderr of ours must not panic the task.
        let _ = writeln!(io::stderr().lock(), "[{id}] {text}{note}");
    };
    loop {
        // A read error ends the copy like EOF: the node is gone either way.
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        let _ = file.write_all(&buf[..n]).await;
        lines.push(&buf[..n], echo);
    }
    lines.finish(echo);
    let _ = file.flush().await;
}

/// Splits a byte stream into lines, keeping at most `cap` bytes of each and
/// counting the rest.
#[derive(Debug)]
struct CappedLines {
    cap: usize,
    line: Vec<u8>,
    /// Bytes of the current line past `cap`, dropped.
    cut: usize,
}

impl CappedLines {
    fn new(cap: usize) -> Self {
        CappedLines {
            cap,
            line: Vec::new(),
            cut: 0,
        }
    }

    /// Takes in `bytes`; calls `emit` with each line completed (without
    /// its newline or `\r`) and how many of its bytes were cut.
    fn push(&mut self, mut bytes: &[u8], mut emit: impl FnMut(&[u8], usize)) {
        while !bytes.is_empty() {
            let end = bytes.iter().position(|&b| b == b'\n');
            let part = &bytes[..end.unwrap_or(bytes.len())];
            let take = part.len().min(self.cap - self.line.len());
            self.line.extend_from_slice(&part[..take]);
            self.cut += part.len() - take;
            let Some(end) = end else { return };
            self.emit(&mut emit);
            bytes = &bytes[end + 1..];
        }
    }

    /// The last line, if the stream ended without its newline.
    fn finish(&mut self, mut emit: impl FnMut(&[u8], usize)) {
        if !self.line.is_empty() || self.cut > 0 {
            self.emit(&mut emit);
        }
    }

    fn emit(&mut self, emit: &mut impl FnMut(&[u8], usize)) {
        if self.cut == 0 && self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        emit(&self.line, std::mem::take(&mut self.cut));
        self.line.clear();
    }
}

/// An unbounded-enough channel for process events: bounded, so a node that
/// floods stdout is slowed down (backpressure) rather than buffered.
pub fn events() -> (Sender<ProcEvent>, Receiver<ProcEvent>) {
    async_channel::bounded(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_node_in_order_whether_written_directly_or_queued() {
        // `cat` echoes its stdin. Sending faster than it reads fills the
        // pipe, so lines go to the writer's queue; reading some of the
        // echo lets the queue drain, and later lines go straight into the
        // pipe again. A line written directly while others still wait in
        // the queue would come back out of order.
        let dir = std::env::temp_dir().join(format!("gcounter-procs-order-{}", std::process::id()));
        let dirs = NodeDirs {
            logs: dir.join("logs"),
            work: dir.join("work"),
        };
        let cat = NodeCommand {
            program: "cat".into(),
            args: Vec::new(),
            env: Vec::new(),
        };
        let line = |i: usize| format!("{i:0>200}");
        let ex = Arc::new(Executor::new());
        smol::block_on(ex.run(async {
            let (tx, rx) = events();
            let mut procs =
                Procs::spawn(&cat, &["n0".into()], &dirs, false, tx, ex.clone()).unwrap();
            let (mut sent, mut got) = (0, 0);
            // 2 MB a round: more than the pipes, `cat` and the events
            // channel (4,096 lines) hold together, so some must queue.
            for round in 0..10 {
                for _ in 0..10_000 {
                    procs.send(0, line(sent).as_bytes()).unwrap();
                    sent += 1;
                }
                // Take back some (odd rounds) or all (even rounds) of it.
                let upto = if round % 2 == 0 { sent } else { sent - 1_500 };
                while got < upto {
                    match rx.recv().await.unwrap() {
                        ProcEvent::Line { line: l, .. } => {
                            let echoed = String::from_utf8_lossy(&l);
                            assert_eq!(echoed.parse::<usize>().ok(), Some(got), "{echoed}");
                        }
                        other => panic!("{other:?}"),
                    }
                    got += 1;
                }
            }
            procs.shutdown(Duration::from_secs(2)).await;
        }));
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn split(cap: usize, chunks: &[&[u8]]) -> Vec<(Vec<u8>, usize)> {
        let mut lines = CappedLines::new(cap);
        let mut got = Vec::new();
        for chunk in chunks {
            lines.push(chunk, |l, cut| got.push((l.to_vec(), cut)));
        }
        lines.finish(|l, cut| got.push((l.to_vec(), cut)));
        got
    }

    #[test]
    fn stderr_lines_are_cut_at_the_cap_across_reads_and_keep_bytes_that_are_not_utf8() {
        let got = split(4, &[b"ab\xffc", b"defg\r\nxy\r", b"\n\nlast"]);
        assert_eq!(
            got,
            [
                (b"ab\xffc".to_vec(), 5),
                (b"xy".to_vec(), 0),
                (b"".to_vec(), 0),
                (b"last".to_vec(), 0)
            ]
        );
        let huge = vec![b'x'; 1 << 20];
        let got = split(8, &[&huge, &huge, b"\n"]);
        assert_eq!(got, [(vec![b'x'; 8], (2 << 20) - 8)]);
    }
}
