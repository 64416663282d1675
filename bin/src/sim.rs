//! `gcounter sim`: the deterministic simulator. Flags, runs and reports all
//! live in the harness crate; this only hands them over.

use gcounter_harness::SimArgs;
use std::process::ExitCode;

pub fn run(args: &SimArgs) -> ExitCode {
    gcounter_harness::cli::run(args)
}
