//! Ctrl-C during `gcounter test`: the run stops where it is, its nodes are
//! shut down, and what it recorded so far is written, instead of the
//! results directory being left empty.
//!
//! One thread waits for SIGINT and sets a flag that the drivers look at
//! each time they wake (at least four times a second).

use smol::stream::StreamExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static REQUESTED: AtomicBool = AtomicBool::new(false);
static WATCH: Once = Once::new();

/// The exit status of an interrupted test: 128 + SIGINT, as a shell
/// reports a command Ctrl-C stopped.
pub const EXIT: u8 = 130;

/// Starts watching for SIGINT (once per process). Without it, SIGINT
/// stops the runner at once, as by default.
pub fn watch() {
    WATCH.call_once(|| {
        match async_signal::Signals::new([async_signal::Signal::Int]) {
            Ok(mut signals) => {
                let spawned = std::thread::Builder::new()
                    .name("sigint".into())
                    .spawn(move || {
                        smol::block_on(async {
                            if signals.next().await.is_some() {
                                REQUESTED.store(true, Ordering::SeqCst);
                            }
                            // Keep the handler: a second Ctrl-C must not
                            // kill the runner while it writes the results.
                            while signals.next().await.is_some() {}
                        });
                    });
                if let Err(e) = spawned {
                    log::warn!("cannot watch for Ctrl-C: {e}");
                }
            }
            Err(e) => log::warn!("cannot watch for Ctrl-C: {e}"),
        }
    });
}

/// Whether Ctrl-C was pressed since [`watch`].
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
