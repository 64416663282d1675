//! `gcounter explore`: every schedule of a small configuration, by
//! re-execution. Flags, search and report live in the harness crate
//! (`gcounter_explore`); this only hands them over.

use gcounter_explore::ExploreArgs;
use std::process::ExitCode;

pub fn run(args: &ExploreArgs) -> ExitCode {
    gcounter_explore::cli::run(args)
}
