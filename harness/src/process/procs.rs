//! Node processes: spawning them as Maelstrom does (messages on stdin and
//! stdout, logs on stderr), and turning their stdout into events.

use async_channel::{Receiver, Sender};
use smol::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use smol::process::{Child, ChildStdin, Command, Stdio};
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The longest line a node may print (Maelstrom's messages are small; a
/// longer line is a bug, and reading it whole could exhaust memory).
pub const MAX_LINE: usize = 1 << 20;

/// What to run for each node.
#[derive(Debug, Clone)]
pub struct NodeCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Extra environment for the node (the rest is inherited).
    pub env: Vec<(String, String)>,
}

/// Something a node process did.
#[derive(Debug)]
pub enum ProcEvent {
    /// One line of stdout, without its newline.
    Line { node: usize, line: Vec<u8> },
    /// A stdout line longer than [`MAX_LINE`].
    Oversized { node: usize, len: usize },
    /// stdout closed: the process exited or closed it.
    Closed { node: usize },
}

/// The running node processes.
#[derive(Debug)]
pub struct Procs {
    children: Vec<Child>,
    stdins: Vec<Option<ChildStdin>>,
    pub logs: Vec<PathBuf>,
}

impl Procs {
    /// Starts one process per id; stderr goes to `<log_dir>/<id>.log` (and
    /// to our stderr too with `echo_stderr`). stdout lines arrive on `events`.
    pub fn spawn(
        cmd: &NodeCommand,
        ids: &[String],
        log_dir: &Path,
        echo_stderr: bool,
        events: Sender<ProcEvent>,
    ) -> io::Result<Procs> {
        std::fs::create_dir_all(log_dir)?;
        let mut procs = Procs {
            children: Vec::new(),
            stdins: Vec::new(),
            logs: Vec::new(),
        };
        for (node, id) in ids.iter().enumerate() {
            let log = log_dir.join(format!("{id}.log"));
            let file = File::create(&log)?;
            let mut command = Command::new(&cmd.program);
            command
                .args(&cmd.args)
                .envs(cmd.env.iter().cloned())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .kill_on_drop(true);
            if echo_stderr {
                command.stderr(Stdio::piped());
            } else {
                command.stderr(file.try_clone()?);
            }
            let mut child = command.spawn().map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot start {}: {e}", cmd.program.display()),
                )
            })?;
            if let Some(stdout) = child.stdout.take() {
                smol::spawn(read_lines(node, stdout, events.clone())).detach();
            }
            if let Some(stderr) = child.stderr.take() {
                smol::spawn(tee_stderr(id.clone(), stderr, file)).detach();
            }
            procs.stdins.push(child.stdin.take());
            procs.children.push(child);
            procs.logs.push(log);
        }
        Ok(procs)
    }

    /// Writes one line (a newline is added) to node `node`'s stdin.
    pub async fn send(&mut self, node: usize, line: &[u8]) -> io::Result<()> {
        let Some(Some(stdin)) = self.stdins.get_mut(node) else {
            return Err(io::Error::new(io::ErrorKind::BrokenPipe, "stdin closed"));
        };
        let mut buf = Vec::with_capacity(line.len() + 1);
        buf.extend_from_slice(line);
        buf.push(b'\n');
        stdin.write_all(&buf).await?;
        stdin.flush().await
    }

    /// The exit status of node `node` if it has exited.
    pub fn exited(&mut self, node: usize) -> Option<std::process::ExitStatus> {
        self.children
            .get_mut(node)
            .and_then(|c| c.try_status().ok().flatten())
    }

    /// Closes every stdin (a node's cue to exit), waits up to `grace`, then
    /// kills whatever is still running.
    pub async fn shutdown(&mut self, grace: std::time::Duration) {
        self.stdins.iter_mut().for_each(|s| drop(s.take()));
        let deadline = std::time::Instant::now() + grace;
        for child in &mut self.children {
            while child.try_status().ok().flatten().is_none()
                && std::time::Instant::now() < deadline
            {
                smol::Timer::after(std::time::Duration::from_millis(10)).await;
            }
            let _ = child.kill();
            let _ = child.status().await;
        }
    }
}

async fn read_lines(node: usize, stdout: smol::process::ChildStdout, events: Sender<ProcEvent>) {
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
            if events
                .send(ProcEvent::Oversized { node, len })
                .await
                .is_err()
            {
                return;
            }
            continue;
        }
        if events
            .send(ProcEvent::Line {
                node,
                line: line.clone(),
            })
            .await
            .is_err()
        {
            return;
        }
    }
    let _ = events.send(ProcEvent::Closed { node }).await;
}

async fn tee_stderr(id: String, stderr: smol::process::ChildStderr, file: File) {
    let mut file = smol::Unblock::new(file);
    let mut lines = BufReader::new(stderr).lines();
    while let Some(Ok(line)) = smol::stream::StreamExt::next(&mut lines).await {
        let _ = file.write_all(format!("{line}\n").as_bytes()).await;
        eprintln!("[{id}] {line}");
    }
    let _ = file.flush().await;
}

/// An unbounded-enough channel for process events: bounded, so a node that
/// floods stdout is slowed down (backpressure) rather than buffered.
pub fn events() -> (Sender<ProcEvent>, Receiver<ProcEvent>) {
    async_channel::bounded(4096)
}
