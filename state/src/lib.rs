//! What a node keeps in its state directory to survive a crash, for every
//! transport whose node processes can be killed and started again (`gcounter
//! node --state-dir`, and the stdio node with `--state-dir` or
//! `GCOUNTER_STATE_DIR`):
//!
//! - `<id>.incarnation`: the last incarnation a life of node `id` took
//!   ([`next_incarnation`]), so that no two lives share one;
//! - `<id>.state`: the last state its core asked to store (the core's
//!   `Output::Persist`), written by a [`StateFile`] and read back with
//!   [`read_state`] into the core's `Config::restored` when it starts
//!   again.
//!
//! The core's rule is that a state is stored before anything that
//! follows it is sent. The owner of a node keeps it with one write per
//! batch of outputs it sends together (one drain of the node, or more): it
//! [stages](StateFile::stage) every state of the batch (each holds the
//! ones before it, so only the last is written), [flushes](StateFile::flush)
//! once, and only then hands the batch's messages on, or drops them if the
//! write failed, since any of them could reveal what is not stored.
//!
//! # The state file
//!
//! The file is a log of states, one per line, the last complete line being
//! the state that counts. A state is stored by appending it with its
//! newline in one `write` to a file held open: a couple of microseconds. A
//! line without its newline is a write that a crash cut short; it is
//! ignored, and rightly so, since nothing that follows that state was
//! sent before the write returned. When the log reaches [`MAX_LOG`], and
//! on the first write of each life (which drops any cut-short line the
//! last life left), the file starts afresh: the state alone is written to
//! a file beside it, renamed over it, and opened for appending. That is
//! the obvious way to store every state, but on ext4 it costs about 0.3
//! ms a time, which held one node to some 2,000 adds per second.
//!
//! Nothing is synced: once `write` (and `rename`) have returned, the data
//! is in the kernel, and a process that is killed (`kill -9` included)
//! cannot take it back. Only a crash of the machine could, and that is out
//! of scope: surviving it would take an `fsync` per write, a disk flush
//! each.
//!
//! Every error names the file it happened to: a node that cannot read what
//! it stored must say where, and not start as if it had stored nothing.
//! Lines that are not valid states are damage, not a crash's trace (see
//! [`read_state`]): the last valid state before them is taken, and a file
//! with none is refused, never replaced by a fresh one in silence.
//!
//! # One process per state
//!
//! `<id>.lock` beside the state is `flock`ed for a process's life
//! ([`lock_state`]), before the incarnation is taken or the state read:
//! a second process with the same directory and id is refused, naming the
//! holder's pid.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The size past which the log of states starts afresh.
pub const MAX_LOG: u64 = 1 << 20;

/// Where node `id` keeps its state in `dir`.
pub fn state_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.state"))
}

/// The state node `id` stored in `dir` in an earlier life, if any: the
/// last complete line of its file that `check` takes for a state of
/// `id`'s (the core's own test: the transports pass its strategy's
/// `gcounter_core::strategy::check_stored`, so the core never refuses the state
/// chosen here, and its first write, which holds that state, drops no
/// valid one).
///
/// What our writer can leave behind, and is read without a fuss: a last
/// line without its newline, a write that a crash cut short (nothing that
/// followed that state was sent, so the line before it is the state).
/// What it never leaves, and is therefore damage: an empty file (it
/// writes a whole file aside and renames it), a complete line that is not
/// a valid state (it stores only what the core built), a file with no
/// complete line. So:
///
/// - complete lines that are not valid after the last valid one: that
///   state is taken, with a warning naming the file and the lines, and a
///   copy of the file is kept beside it (`<id>.state.damaged`) before the
///   first write of this life starts the log afresh;
/// - no valid complete line in a file that is not empty: an error naming
///   the file and the line (the node must not start: a fresh start would
///   lose the adds the file held, and its first write would rename over
///   them);
/// - an empty file: no state, with a warning.
pub fn read_state(
    dir: &Path,
    id: &str,
    check: impl Fn(&str) -> Result<(), String>,
) -> io::Result<Option<String>> {
    check_id(id)?;
    let path = state_path(dir, id);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(&path, e)),
    };
    if bytes.is_empty() {
        log::warn!(
            "{} is empty: no state to take up, starting without one (adds an earlier \
             life acknowledged and no peer saw are lost)",
            path.display()
        );
        return Ok(None);
    }
    let log = Log::of(&bytes, &check);
    let Some((number, state)) = log.state else {
        // The newest line that is not a state: what to look at first.
        let (number, why) = log
            .damaged
            .first()
            .cloned()
            .or_else(|| log.torn.map(|(number, len)| (number, torn(len))))
            .unwrap_or((1, "no line".into()));
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{}: line {number}: {why}; no line of it is a complete, valid state, \
                 so the node will not start without what it held (move the file \
                 away to start afresh, losing those adds)",
                path.display()
            ),
        ));
    };
    if let Some((line, len)) = log.torn {
        // A cut-short append is the expected trace of a kill during a
        // write; anything else there is worth a warning.
        let tail = &bytes[bytes.len() - len..];
        let plausible = std::str::from_utf8(tail).is_ok_and(|t| !t.contains(char::is_control));
        if plausible {
            log::info!(
                "{}: line {line}: {}, ignored; taking line {number}",
                path.display(),
                torn(len)
            );
        } else {
            log::warn!(
                "{}: line {line}: {} that our writer could not have left \
                 (not text), ignored; taking line {number}",
                path.display(),
                torn(len)
            );
        }
    }
    if !log.damaged.is_empty() {
        let kept = path.with_extension("state.damaged");
        let copied = match fs::copy(&path, &kept) {
            Ok(_) => format!("a copy of the file is kept at {}", kept.display()),
            Err(e) => format!("no copy could be kept at {}: {e}", kept.display()),
        };
        let lines: Vec<String> = log
            .damaged
            .iter()
            .take(3)
            .map(|(n, why)| format!("line {n}: {why}"))
            .collect();
        log::warn!(
            "{} is damaged: {}{}; taking line {number}, the last valid state; {copied}",
            path.display(),
            lines.join("; "),
            match log.damaged.len() {
                n if n > 3 => format!(" (and {} more)", n - 3),
                _ => String::new(),
            },
        );
    }
    Ok(Some(state.to_owned()))
}

/// What a state file holds, read from its end.
struct Log<'a> {
    /// The last valid complete line: its number (from 1) and text.
    state: Option<(usize, &'a str)>,
    /// Complete lines after it that are not valid, newest first: number
    /// and why.
    damaged: Vec<(usize, String)>,
    /// A last line without its newline: its number and length.
    torn: Option<(usize, usize)>,
}

impl<'a> Log<'a> {
    fn of(bytes: &'a [u8], check: &impl Fn(&str) -> Result<(), String>) -> Log<'a> {
        let complete = match bytes.iter().rposition(|&b| b == b'\n') {
            Some(end) => &bytes[..end],
            None => &[][..],
        };
        let lines = if bytes.contains(&b'\n') {
            memchr_count(complete) + 1
        } else {
            0
        };
        let tail = bytes.len() - complete.len() - usize::from(lines > 0);
        let mut log = Log {
            state: None,
            damaged: Vec::new(),
            torn: (tail > 0).then_some((lines + 1, tail)),
        };
        if lines == 0 {
            return log;
        }
        // Newest first: the first valid line is the state, and lines
        // before it are states it replaced, not worth parsing.
        for (i, line) in complete.rsplit(|&b| b == b'\n').enumerate() {
            let number = lines - i;
            let valid = std::str::from_utf8(line)
                .map_err(|e| format!("not UTF-8 ({e})"))
                .and_then(|text| check(text).map(|()| text));
            match valid {
                Ok(text) => {
                    log.state = Some((number, text));
                    break;
                }
                Err(why) => log.damaged.push((number, why)),
            }
        }
        log
    }
}

fn memchr_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Where node `id` marks its state as taken: `<id>.lock` beside it.
pub fn lock_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.lock"))
}

/// Node `id`'s state in a directory, taken by this process for as long as
/// it holds this (drop it, or exit by any means, to let it go).
///
/// Two processes on one state would each rename a fresh log over the
/// other's and go on appending to a file with no name: what one
/// acknowledged, the other's next life would never see. The lock is the
/// kernel's `flock` on a file beside the state (the state file itself is
/// replaced by renames, so a lock on it would not last), so a process
/// killed with `kill -9` lets go without anyone judging a stale pid.
#[derive(Debug)]
pub struct StateLock {
    _file: File,
}

/// How long a node waits for its state's lock before it gives up: a
/// supervisor that kills a node and starts it again at once may start the
/// new process before the kernel has finished with the old one (and
/// released its lock); a second live process holds it far longer.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

/// Takes node `id`'s state in `dir` (creating `dir`), waiting up to `wait`
/// for a holder to go, or says which process holds it.
pub fn lock_state(dir: &Path, id: &str, wait: std::time::Duration) -> io::Result<StateLock> {
    check_id(id)?;
    fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
    let path = lock_path(dir, id);
    match pid_lock(&path, wait).map_err(|e| at(&path, e))? {
        PidLock::Taken(mut file) => {
            // Who holds it, for the message below; the lock, not this,
            // decides.
            if let Err(e) = record_pid(&mut file) {
                log::warn!("{}: cannot record this process's pid: {e}", path.display());
            }
            Ok(StateLock { _file: file })
        }
        PidLock::Held { pid } => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!(
                "{}: node {id}'s state in {} is held by another process{}: two \
                 processes on one state would each replace what the other stored; \
                 stop that one, or give this one another state directory",
                path.display(),
                dir.display(),
                pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default()
            ),
        )),
    }
}

/// What [`pid_lock`] found.
#[derive(Debug)]
pub enum PidLock {
    /// The lock is this process's for as long as the file stays open.
    Taken(File),
    /// Another process holds it: the pid it recorded, if any.
    Held { pid: Option<String> },
}

/// Takes the `flock` on the file at `path` (created if need be), waiting
/// up to `wait` for a holder to go. The lock is the kernel's, so a holder
/// that dies by any means, `kill -9` included, frees it without anyone
/// deciding whether a recorded pid is stale; the pid in the file
/// ([`record_pid`]) only names the holder in a message.
pub fn pid_lock(path: &Path, wait: std::time::Duration) -> io::Result<PidLock> {
    use rustix::fs::{flock, FlockOperation};
    use std::io::Read;
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let deadline = std::time::Instant::now() + wait;
    let locked = loop {
        match flock(&file, FlockOperation::NonBlockingLockExclusive) {
            Err(rustix::io::Errno::WOULDBLOCK) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other,
        }
    };
    match locked {
        Ok(()) => Ok(PidLock::Taken(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            Ok(PidLock::Held {
                pid: (!holder.is_empty()).then(|| holder.to_string()),
            })
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

/// Writes this process's pid into a lock file [`pid_lock`] took.
pub fn record_pid(file: &mut File) -> io::Result<()> {
    file.set_len(0)?;
    writeln!(file, "{}", std::process::id())
}

fn torn(len: usize) -> String {
    format!("{len} byte(s) without a newline (cut short)")
}

/// The incarnation for a node that is starting: one more than the last
/// one recorded in `state_dir` (0 the first time), recorded before it is
/// used; without a state directory, the wall clock in milliseconds.
///
/// A restarted node must never reuse an incarnation: the `gossip`
/// strategy counts each incarnation's adds in a slot of its own, so a node
/// that came back under an old slot would count from zero again there,
/// and the maximum-merge with its peers would swallow its new adds.
pub fn next_incarnation(state_dir: Option<&Path>, id: &str) -> io::Result<u64> {
    let Some(dir) = state_dir else {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        return Ok(now.map(|d| d.as_millis() as u64).unwrap_or(1).max(1));
    };
    check_id(id)?;
    fs::create_dir_all(dir).map_err(|e| at(dir, e))?;
    let path = dir.join(format!("{id}.incarnation"));
    let next = match fs::read_to_string(&path) {
        Ok(text) => {
            let last: u64 = text.trim().parse().map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{} does not hold a number", path.display()),
                )
            })?;
            last + 1
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(at(&path, e)),
    };
    // Written aside and renamed, so a crash leaves the old or the new
    // number, never half of one.
    let tmp = dir.join(format!("{id}.incarnation.tmp"));
    let write = |file: &mut File| {
        writeln!(file, "{next}")?;
        file.sync_all()
    };
    File::create(&tmp)
        .and_then(|mut file| write(&mut file))
        .map_err(|e| at(&tmp, e))?;
    fs::rename(&tmp, &path).map_err(|e| at(&path, e))?;
    Ok(next)
}

/// Refuses an id that would name a file outside the state directory: ids
/// come from `init`, that is from whoever writes to the node.
fn check_id(id: &str) -> io::Result<()> {
    if id.is_empty() || id.contains(['/', '\\', '\0']) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("node id `{id}` cannot name a file in the state directory"),
        ));
    }
    Ok(())
}

/// The owner's side: states to write, and whether what follows may go.
#[derive(Debug)]
pub struct StateFile {
    /// The state file and the file it is rewritten in first; `None`
    /// without a state directory.
    paths: Option<(PathBuf, PathBuf)>,
    /// The state file, open for appending, and its size; `None` until the
    /// first write of this life, and after a failed one.
    log: Option<(File, u64)>,
    /// The latest state asked for and not yet written.
    unwritten: Option<String>,
    /// A line being written, kept to spare an allocation per write.
    line: Vec<u8>,
    /// [`MAX_LOG`], but for tests.
    max_log: u64,
    /// Whether the last write failed (to log a failure once, not per add).
    failing: bool,
    /// Whether the lack of a state directory has been logged.
    warned: bool,
    /// The state, taken for this process's life ([`StateFile::holding`]).
    lock: Option<StateLock>,
}

impl StateFile {
    /// Where node `id` stores its states: in `dir`, or nowhere (it then
    /// logs once, at the first state, that a crash will lose it).
    pub fn new(dir: Option<&Path>, id: &str) -> StateFile {
        StateFile {
            paths: dir.map(|dir| {
                let path = state_path(dir, id);
                (path.with_extension("state.tmp"), path)
            }),
            log: None,
            unwritten: None,
            line: Vec::new(),
            max_log: MAX_LOG,
            failing: false,
            warned: false,
            lock: None,
        }
    }

    /// The same, keeping `lock` for as long as it stores states.
    pub fn holding(mut self, lock: StateLock) -> StateFile {
        self.lock = Some(lock);
        self
    }

    /// Takes a state to store; it replaces any not yet written.
    pub fn stage(&mut self, state: String) {
        if self.paths.is_none() {
            if !self.warned {
                self.warned = true;
                log::warn!(
                    "no --state-dir: what this node stores to survive a crash is not kept; \
                     a gossip node that is killed loses the adds it acknowledged \
                     that no peer has seen"
                );
            }
            return;
        }
        self.unwritten = Some(state);
    }

    /// Writes the state staged, if any. Returns whether every state asked
    /// for is on disk, so that the messages that follow may be sent.
    pub fn flush(&mut self) -> bool {
        let Some(state) = self.unwritten.take() else {
            return true;
        };
        match self.write(&state) {
            Ok(()) => {
                if self.failing {
                    log::info!("the state is stored again");
                }
                self.failing = false;
                true
            }
            Err(e) => {
                if !self.failing {
                    log::error!("cannot store the state: {e}; nothing is sent until it can be");
                }
                self.failing = true;
                // What failed half way is rewritten whole next time.
                self.log = None;
                self.unwritten = Some(state);
                false
            }
        }
    }

    fn write(&mut self, state: &str) -> io::Result<()> {
        let Some((tmp, path)) = &self.paths else {
            return Ok(());
        };
        if state.contains('\n') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a state to store spans lines",
            ));
        }
        self.line.clear();
        self.line.extend_from_slice(state.as_bytes());
        self.line.push(b'\n');
        let len = self.line.len() as u64;
        match &mut self.log {
            Some((file, size)) if *size + len <= self.max_log => {
                file.write_all(&self.line)?;
                *size += len;
            }
            _ => {
                self.log = None;
                fs::write(tmp, &self.line).map_err(|e| at(tmp, e))?;
                fs::rename(tmp, path).map_err(|e| at(path, e))?;
                let file = OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(|e| at(path, e))?;
                self.log = Some((file, len));
            }
        }
        Ok(())
    }
}

/// `e`, saying which file it happened to.
fn at(path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("gcounter-state-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn any(_: &str) -> Result<(), String> {
        Ok(())
    }

    fn stored(dir: &Path) -> Option<String> {
        read_state(dir, "n1", any).unwrap()
    }

    /// Lines that are numbers are states; others are not.
    fn number(text: &str) -> Result<(), String> {
        text.parse::<u64>().map(drop).map_err(|e| e.to_string())
    }

    fn read_numbers(dir: &Path, bytes: &[u8]) -> io::Result<Option<String>> {
        fs::write(state_path(dir, "n1"), bytes).unwrap();
        read_state(dir, "n1", number)
    }

    #[test]
    fn the_last_valid_line_is_the_state_and_damage_after_it_is_kept_aside() {
        let dir = temp_dir("damage");
        let kept = dir.join("n1.state.damaged");
        // A torn last line: what a crash leaves, no copy.
        assert_eq!(
            read_numbers(&dir, b"1\n2\n3").unwrap().as_deref(),
            Some("2")
        );
        assert!(!kept.exists());
        for garbage in [&b"\0\0\0\n"[..], b"\xff\xfe\n", b"x\n", b"\n", b"x\ny\n7"] {
            let mut bytes = b"1\n2\n".to_vec();
            bytes.extend_from_slice(garbage);
            assert_eq!(
                read_numbers(&dir, &bytes).unwrap().as_deref(),
                Some("2"),
                "{garbage:?}"
            );
            assert_eq!(fs::read(&kept).unwrap(), bytes);
            fs::remove_file(&kept).unwrap();
        }
        // Garbage before the newest state: that state stands, unread past.
        assert_eq!(
            read_numbers(&dir, b"1\nx\n3\n").unwrap().as_deref(),
            Some("3")
        );
        assert!(!kept.exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_file_without_a_valid_line_is_an_error_naming_it_and_the_line() {
        let dir = temp_dir("invalid");
        let path = state_path(&dir, "n1").display().to_string();
        for (bytes, line) in [
            (&b"{\"slot\":"[..], "line 1: 8 byte(s) without a newline"),
            (b"x\n", "line 1: invalid digit"),
            (b"x\ny\nz\n1", "line 3: invalid digit"),
            (b"\xff\n", "line 1: not UTF-8"),
        ] {
            let e = read_numbers(&dir, bytes).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            let e = e.to_string();
            assert!(e.starts_with(&format!("{path}: {line}")), "{e}");
            // The file is left as it was, for whoever mends it.
            assert_eq!(fs::read(state_path(&dir, "n1")).unwrap(), bytes);
        }
        // Empty: no state (with a warning), not an error.
        assert_eq!(read_numbers(&dir, b"").unwrap(), None);
        fs::remove_dir_all(&dir).unwrap();
    }

    const NO_WAIT: std::time::Duration = std::time::Duration::ZERO;

    #[test]
    fn a_state_is_held_by_one_process_at_a_time() {
        let dir = temp_dir("lock");
        let held = lock_state(&dir, "n1", NO_WAIT).unwrap();
        // flock locks belong to the open file, so a second open in the same
        // process is refused just as another process is.
        let e = lock_state(&dir, "n1", NO_WAIT).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        let e = e.to_string();
        assert!(
            e.contains("n1.lock") && e.contains("another process"),
            "{e}"
        );
        assert!(e.contains(&format!("(pid {})", std::process::id())), "{e}");
        assert!(
            lock_state(&dir, "n2", NO_WAIT).is_ok(),
            "another id, another state"
        );
        let file = StateFile::new(Some(&dir), "n1").holding(held);
        assert!(lock_state(&dir, "n1", NO_WAIT).is_err());
        drop(file);
        assert!(lock_state(&dir, "n1", NO_WAIT).is_ok());
        assert!(lock_state(&dir, "../n1", NO_WAIT).is_err());
        // A holder that lets go within the wait is waited for.
        let held = lock_state(&dir, "n1", NO_WAIT).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(100));
            drop(held);
        });
        assert!(lock_state(&dir, "n1", LOCK_WAIT).is_ok());
        releaser.join().unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    fn store(file: &mut StateFile, state: &str) -> bool {
        file.stage(state.into());
        file.flush()
    }

    #[test]
    fn the_last_state_staged_is_written_and_read_back() {
        let dir = temp_dir("last");
        assert_eq!(stored(&dir), None);
        let mut file = StateFile::new(Some(&dir), "n1");
        assert!(file.flush(), "nothing staged");
        file.stage("one".into());
        file.stage("two".into());
        assert!(file.flush());
        assert_eq!(stored(&dir).as_deref(), Some("two"));
        assert!(store(&mut file, "three"));
        assert!(store(&mut file, "four"));
        assert_eq!(stored(&dir).as_deref(), Some("four"));
        // Appended to the file, not rewritten.
        let text = fs::read_to_string(state_path(&dir, "n1")).unwrap();
        assert_eq!(text, "two\nthree\nfour\n");
        assert!(!dir.join("n1.state.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_line_cut_short_is_ignored_and_dropped_by_the_next_life() {
        let dir = temp_dir("cut");
        let path = state_path(&dir, "n1");
        fs::write(&path, "one\ntwo\nthr").unwrap();
        assert_eq!(stored(&dir).as_deref(), Some("two"));
        // A first line cut short is not what a crash leaves (the first
        // write of a life is a rename of a whole file): refused.
        fs::write(&path, "on").unwrap();
        assert!(read_state(&dir, "n1", any).is_err());
        fs::write(&path, "one\ntwo\nthr").unwrap();
        let mut file = StateFile::new(Some(&dir), "n1");
        assert!(store(&mut file, "three"));
        assert!(store(&mut file, "four"));
        assert_eq!(fs::read_to_string(&path).unwrap(), "three\nfour\n");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_long_log_starts_afresh() {
        let dir = temp_dir("long");
        let mut file = StateFile::new(Some(&dir), "n1");
        file.max_log = 20;
        for n in 100..110 {
            assert!(store(&mut file, &n.to_string()));
            let len = fs::metadata(state_path(&dir, "n1")).unwrap().len();
            assert!(len <= 20, "{len}");
            assert_eq!(stored(&dir), Some(n.to_string()));
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_write_holds_back_what_follows_until_it_succeeds() {
        let dir = temp_dir("fail");
        let gone = dir.join("gone");
        let mut file = StateFile::new(Some(&gone), "n1");
        assert!(!store(&mut file, "one"));
        // Nothing new staged: the old state is still owed.
        assert!(!file.flush());
        fs::create_dir_all(&gone).unwrap();
        assert!(file.flush());
        assert_eq!(stored(&gone).as_deref(), Some("one"));
        // A state that would read back as two is refused, and owed.
        assert!(!store(&mut file, "two\nlines"));
        assert!(!file.flush());
        assert!(store(&mut file, "three"));
        assert_eq!(stored(&gone).as_deref(), Some("three"));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn each_life_takes_the_next_incarnation() {
        let dir = temp_dir("incarnation");
        let inner = dir.join("made");
        assert_eq!(next_incarnation(Some(&inner), "n1").unwrap(), 0);
        assert_eq!(next_incarnation(Some(&inner), "n1").unwrap(), 1);
        assert_eq!(next_incarnation(Some(&inner), "n2").unwrap(), 0);
        assert_eq!(next_incarnation(Some(&inner), "n1").unwrap(), 2);
        assert!(!inner.join("n1.incarnation.tmp").exists());
        assert!(next_incarnation(None, "n1").unwrap() > 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_file() {
        let dir = temp_dir("errors");
        fs::write(dir.join("n1.incarnation"), "many").unwrap();
        let e = next_incarnation(Some(&dir), "n1").unwrap_err();
        assert!(e.to_string().contains("n1.incarnation"), "{e}");
        fs::create_dir(state_path(&dir, "n1")).unwrap();
        let e = read_state(&dir, "n1", any).unwrap_err();
        assert!(e.to_string().contains("n1.state"), "{e}");
        let file = dir.join("file");
        fs::write(&file, "").unwrap();
        let e = next_incarnation(Some(&file.join("sub")), "n1").unwrap_err();
        assert!(e.to_string().contains(&*file.display().to_string()), "{e}");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_id_that_is_not_a_file_name_is_refused() {
        let dir = temp_dir("ids");
        for id in ["", "../n1", "a/b", "a\\b", "a\0b"] {
            assert!(read_state(&dir, id, any).is_err(), "{id:?}");
            assert!(next_incarnation(Some(&dir), id).is_err(), "{id:?}");
        }
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn without_a_directory_nothing_is_held_back() {
        let mut file = StateFile::new(None, "n1");
        assert!(store(&mut file, "one"));
    }
}
