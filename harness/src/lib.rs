//! The g-counter test, without a JVM: workload, nemesis, checker and
//! statistics after Maelstrom's, run three ways: a deterministic simulator
//! on virtual time, real node processes over stdin/stdout, and a TCP
//! cluster.
//!
//! # Design
//!
//! The test is one sans-IO state machine, [`testcore::TestCore`], in the
//! style of `gcounter-core`'s node: `handle(input, now)` with what happened
//! (a node printed a line, a process exited, time passed) and
//! `poll_output()` with what to do (deliver these bytes to that node, kill,
//! pause, resume or start it, wake me at T, done). It owns the workload, the
//! nemesis schedule, the network's rules, the services, the history, the
//! message trace and the counts. The three drivers move time, bytes and
//! processes around it and nothing else: [`sim`] (in-process nodes on
//! virtual time, thousands of seeded runs per minute), and in [`process`]
//! the stdio runner and the TCP runner (real processes, real time). So a
//! fault, a statistic or an explanation is written once. The pieces the
//! core is made of are sans-IO too:
//!
//! - [`workload`]: the clients, one per node, each with at most one
//!   operation outstanding; Maelstrom's generator (adds of 0..=4 and reads,
//!   `rate` per second over the cluster); the 5 s client timeout; the final
//!   phase (heal, recovery wait, one final read per client). The driver
//!   calls [`workload::Workload::poll`] until it says wait, sends what it
//!   is given, and hands replies to [`workload::Workload::on_reply`]. It
//!   writes the [`history`].
//! - [`nemesis`]: the seeded schedule of faults (partitions, kills,
//!   pauses) over the servers, the partition shapes Jepsen draws (one node alone, majority /
//!   minority, majorities ring, minority third), and the network's rules:
//!   latency (constant, uniform, exponential) for everything but client
//!   traffic, drops between cut-off servers, services never cut off.
//! - [`history`]: operations with invocation and completion times, kind,
//!   value and outcome (`ok`, `info`, `fail`).
//! - [`checker`]: the acceptable final values (acknowledged sum plus any
//!   subset of indeterminate deltas), the verdict, and `lost`.
//! - [`stats`]: operation counts, network counts (all, clients, servers;
//!   `msgs_per_op`), latency quantiles.
//! - [`services`]: the core's `seq-kv`, `lin-kv`, `lww-kv` and `lin-tso` with reply
//!   ids, and a count of the stale reads `seq-kv` served.
//! - [`testcore`]: the test itself; one seeded random generator, a
//!   priority queue of messages in flight, which node is up, down or
//!   paused, the message trace, and caps on steps that turn a livelock on
//!   virtual time into an error. Same seed, same history, bit for bit.
//! - [`sim`]: the simulator driver.
//! - [`explain`]: why an invalid run lost what it lost, from its message
//!   trace: overwrites, writes that never landed, stale final reads.
//! - [`faults`]: what the nemesis did, as windows for the page and notes
//!   on kills for an invalid run.
//! - [`report`]: one run in full or many summarized, as JSON or for a
//!   person; [`cli`]: the `gcounter sim` subcommand.
//!
//! `gcounter explore`, the model checker, is a crate of its own
//! (`gcounter-explore`, beside this one): it runs the same nodes, checker
//! and workload pieces, and this crate compiles without it.
//!
//! # Example
//!
//! Five seconds of Maelstrom's evaluation (3 nodes, 100 ops/s, partitions)
//! against the `gossip` strategy:
//!
//! ```
//! use gcounter_core::StrategyKind;
//! use gcounter_harness::checker::Verdict;
//! use gcounter_harness::sim::{self, SimConfig};
//! use std::time::Duration;
//!
//! let mut cfg = SimConfig::evaluation(StrategyKind::Gossip);
//! cfg.workload.time_limit = Duration::from_secs(5);
//! cfg.workload.recovery = Duration::from_secs(2);
//! let run = sim::run(&cfg, 42).expect("the simulation completes");
//! assert_eq!(run.check.verdict, Verdict::Valid);
//! assert_eq!(run.check.lost, 0);
//! assert_eq!(run.check.final_reads.len(), 3);
//! // The same seed gives the same history, bit for bit.
//! assert_eq!(sim::run(&cfg, 42).unwrap().history, run.history);
//! ```

pub mod checker;
pub mod choice;
pub mod cli;
pub mod explain;
pub mod faults;
pub mod hdr;
pub mod history;
pub mod history_file;
pub mod journal;
pub mod ledger;
pub mod legality;
mod nanos;
pub mod nemesis;
pub mod page;
pub mod params;
pub mod process;
pub mod read_lag;
pub mod report;
pub mod services;
pub mod sim;
pub mod stats;
pub mod testcore;
pub mod workload;

/// The exit status of a command given flags it cannot use (sysexits'
/// `EX_USAGE`): apart from Maelstrom's 0 valid, 1 invalid, 2 unknown and
/// 255 for a test that could not run, so a script can tell a mistyped
/// command from a run that ended `unknown`.
pub const USAGE: u8 = 64;

pub use checker::{check, CheckResult, Verdict};
pub use cli::SimArgs;
pub use history::{History, OpKind, Operation, Outcome};
pub use sim::{SimConfig, SimError, SimRun};
