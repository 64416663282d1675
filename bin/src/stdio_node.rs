//! The default mode: one node on stdin/stdout, configured by the environment
//! and `--state-dir`.

use gcounter_core::{Config, Node};
use gcounter_transport_stdio::Error;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

/// Exit status for a configuration the node cannot run with.
const BAD_CONFIG: u8 = 2;

/// The variable that gives the state directory when `--state-dir` does not.
const STATE_DIR_VAR: &str = "GCOUNTER_STATE_DIR";

pub fn run(state_dir: Option<PathBuf>) -> ExitCode {
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
    let state_dir = match state_dir_or_var(state_dir, std::env::var_os(STATE_DIR_VAR)) {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("gcounter: {e}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    log::info!(
        "stdio node: strategy {}, kv {}, state dir {}",
        config.strategy,
        config.kv,
        state_dir
            .as_ref()
            .map_or("(none)".into(), |d| d.display().to_string())
    );
    match gcounter_transport_stdio::run_stdio_restartable(Node::new(config), state_dir.as_deref()) {
        Ok(()) => ExitCode::SUCCESS,
        // Starting without what it stored could lose acknowledged adds:
        // as bad as a configuration it cannot run with.
        Err(e @ Error::State(_)) => {
            eprintln!("gcounter: {e}");
            ExitCode::from(BAD_CONFIG)
        }
        Err(e @ Error::Io(_)) => {
            eprintln!("gcounter: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The flag's directory, else the variable's. An empty variable is refused
/// rather than taken for "unset": whoever set it meant to keep the state.
fn state_dir_or_var(
    flag: Option<PathBuf>,
    var: Option<OsString>,
) -> Result<Option<PathBuf>, String> {
    match (flag, var) {
        (Some(dir), _) => Ok(Some(dir)),
        (None, Some(v)) if v.is_empty() => Err(format!(
            "{STATE_DIR_VAR} is empty: give it a directory, or unset it to store nothing"
        )),
        (None, v) => Ok(v.map(PathBuf::from)),
    }
}
