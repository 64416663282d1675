//! Running real node processes as Maelstrom does: the processes, the rules
//! for what they print, and the test loop in real time.

mod check;
mod cli;
mod procs;
mod run;
mod store;

pub use check::{check_line, shown, BadLine};
pub use cli::{print_summary, run as run_cli, TestArgs};
pub use procs::{events, NodeCommand, ProcEvent, Procs, MAX_LINE};
pub use run::{run_test, Progress, TestConfig, TestError, TestRun};
pub use store::{new_run_dir, op_views, results_json, write_error, write_results};
