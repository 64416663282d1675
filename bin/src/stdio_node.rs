//! The default mode: one node on stdin/stdout, configured by the environment.

use gcounter_core::{Config, Node};
use std::process::ExitCode;

/// Exit status for a configuration the node cannot run with.
const BAD_CONFIG: u8 = 2;

pub fn run() -> ExitCode {
    // `var_os` rather than `var`: a value that is not Unicode must be
    // reported as wrong, not silently taken for "unset".
    let config =
        Config::from_vars(|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()));
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("gcounter: {e}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    log::info!("stdio node: strategy {}, kv {}", config.strategy, config.kv);
    match gcounter_transport_stdio::run_stdio(Node::new(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gcounter: stdin/stdout failed: {e}");
            ExitCode::FAILURE
        }
    }
}
