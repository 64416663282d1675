//! `gcounter test`: the runner lives in the harness crate; this hands it
//! the flags and the path of this very binary, the default node.

use gcounter_harness::process::TestArgs;
use std::process::ExitCode;

pub fn run(args: &TestArgs) -> ExitCode {
    match std::env::current_exe() {
        Ok(exe) => gcounter_harness::process::run_cli(args, &exe),
        Err(e) => {
            eprintln!("gcounter test: cannot find this binary's path: {e}");
            ExitCode::from(255)
        }
    }
}
