//! `gcounter explore`: every schedule of a small configuration, by
//! re-execution. Flags, search and report live in the harness crate
//! (`gcounter_harness::explore`); this only hands them over.

use gcounter_harness::explore::ExploreArgs;
use std::process::ExitCode;

pub fn run(args: &ExploreArgs) -> ExitCode {
    gcounter_harness::explore::cli::run(args)
}
