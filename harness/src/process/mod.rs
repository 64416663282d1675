//! Running real node processes as Maelstrom does: the processes, the rules
//! for what they print, and the test loop in real time; or the same test
//! against a TCP cluster the runner starts (`tcp`).

mod cli;
pub mod interrupt;
mod procs;
mod ran;
mod run;
mod runs;
mod store;
mod tcp;

pub use crate::testcore::Progress;
pub use crate::testcore::{check_line, shown, BadLine};
pub use cli::{print_summary, TestArgs, Transport};
pub use procs::{events, NodeCommand, NodeDirs, ProcEvent, Procs, MAX_LINE};
pub use run::{run_test, NetObserved, TestConfig, TestError, TestRun};
pub use store::{new_run_dir, op_views, results_json, write_error, write_results};
pub use tcp::{run_tcp_test, EtcdCredArgs, TcpTestConfig, TcpTestError};

use std::path::Path;
use std::process::ExitCode;

/// Runs `gcounter test`: one run, or a hunt of `--runs N` (`runs`, which
/// runs each with `cli`'s pieces); `self_exe` is the node to run without
/// `--bin` (and the cluster's binary with `--transport tcp`). Exit status
/// as Maelstrom's: 0 valid, 1 invalid, 2 unknown; 255 when the test could
/// not run (a node broke the protocol, exited, or never started).
pub fn run_cli(args: &TestArgs, self_exe: &Path) -> ExitCode {
    let concurrency = match cli::prepare(args, self_exe) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match args.runs {
        Some(n) => runs::run(args, self_exe, concurrency, n),
        None => cli::run_one(args, self_exe, concurrency),
    }
}
