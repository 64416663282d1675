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
pub use cli::{print_summary, run as run_cli, TestArgs, Transport};
pub use procs::{events, NodeCommand, NodeDirs, ProcEvent, Procs, MAX_LINE};
pub use run::{run_test, NetObserved, TestConfig, TestError, TestRun};
pub use store::{new_run_dir, op_views, results_json, write_error, write_results};
pub use tcp::{run_tcp_test, TcpTestConfig, TcpTestError};
