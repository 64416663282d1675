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
/// last complete line of its file. Bytes that are not UTF-8 are handed on
/// as they read lossily, for the core to refuse and say why.
pub fn read_state(dir: &Path, id: &str) -> io::Result<Option<String>> {
    check_id(id)?;
    let path = state_path(dir, id);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(at(&path, e)),
    };
    Ok(last_line(&bytes).map(|line| String::from_utf8_lossy(line).into_owned()))
}

/// The last line that has its newline, without it.
fn last_line(bytes: &[u8]) -> Option<&[u8]> {
    let end = bytes.iter().rposition(|&b| b == b'\n')?;
    let start = bytes[..end]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    Some(&bytes[start..end])
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
        }
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

    fn stored(dir: &Path) -> Option<String> {
        read_state(dir, "n1").unwrap()
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
        fs::write(&path, "on").unwrap();
        assert_eq!(stored(&dir), None);
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
        let e = read_state(&dir, "n1").unwrap_err();
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
            assert!(read_state(&dir, id).is_err(), "{id:?}");
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
