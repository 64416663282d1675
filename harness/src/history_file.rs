//! `history.jsonl`, written as operations complete: the runner keeps a
//! bounded journal ([`crate::journal`]), so the file is where every
//! operation is kept. One operation a line, in the order they completed;
//! those that never did at the end.

use crate::history::Operation;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

/// See the module docs.
#[derive(Debug)]
pub struct HistoryFile {
    out: BufWriter<File>,
    /// The first write error: the run goes on (its verdict does not need
    /// the file) and the error is reported at the end.
    error: Option<io::Error>,
}

impl HistoryFile {
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(HistoryFile {
            out: BufWriter::new(File::create(path)?),
            error: None,
        })
    }

    pub fn write(&mut self, ops: Vec<Operation>) {
        if self.error.is_some() {
            return;
        }
        for op in ops {
            let line = serde_json::to_vec(&op).map_err(io::Error::other);
            let written = line.and_then(|l| {
                self.out.write_all(&l)?;
                self.out.write_all(b"\n")
            });
            if let Err(e) = written {
                log::warn!("writing history.jsonl: {e}");
                self.error = Some(e);
                return;
            }
        }
    }

    /// Flushes the file; the first error, if any.
    pub fn finish(mut self) -> io::Result<()> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()
    }
}
