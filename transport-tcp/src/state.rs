//! What a node keeps on disk to survive a crash: the last state its core
//! asked to store ([`Output::Persist`](gcounter_core::Output::Persist)),
//! in `<state-dir>/<id>.state`, given back to the core at start in
//! [`Config::restored`](gcounter_core::Config::restored).
//!
//! The core's rule is that a state is stored before anything that
//! follows it is sent. The owner keeps it with at most one write per drain
//! of the node's outputs: it collects the drain, writes only its last
//! state (each state holds the ones before it), and only then hands the
//! drain's messages to the sockets.
//!
//! # The file
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
    let bytes = match fs::read(state_path(dir, id)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
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

/// The owner's side: states to write, and whether what follows may go.
#[derive(Debug)]
pub(crate) struct StateFile {
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
    pub(crate) fn new(dir: Option<&Path>, id: &str) -> StateFile {
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
    pub(crate) fn stage(&mut self, state: String) {
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
    pub(crate) fn flush(&mut self) -> bool {
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
    fn without_a_directory_nothing_is_held_back() {
        let mut file = StateFile::new(None, "n1");
        assert!(store(&mut file, "one"));
    }
}
