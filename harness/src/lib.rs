//! The g-counter test, without a JVM: workload, nemesis, checker and
//! statistics after Maelstrom's, and a deterministic simulator that runs
//! the core's nodes and the core's service models on virtual time.
//!
//! # Design
//!
//! Every part but the simulator is a sans-IO piece that a driver moves
//! with the current time, so the same code serves the in-process simulator
//! (virtual time, thousands of seeded runs per minute) and the process
//! runner (real processes, real time):
//!
//! - [`workload`]: the clients, one per node, each with at most one
//!   operation outstanding; Maelstrom's generator (adds of 0..=4 and reads,
//!   `rate` per second over the cluster); the 5 s client timeout; the final
//!   phase (heal, recovery wait, one final read per client). The driver
//!   calls [`workload::Workload::poll`] until it says wait, sends what it
//!   is given, and hands replies to [`workload::Workload::on_reply`]. It
//!   writes the [`history`].
//! - [`nemesis`]: the seeded schedule of partitions and heals over the
//!   servers, the partition shapes Jepsen draws (one node alone, majority /
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
//! - [`sim`]: the simulator. One seeded random generator, a priority queue
//!   of messages in flight, virtual time that jumps to the earliest due
//!   event, and caps on steps that turn a livelock into an error. Same
//!   seed, same history, bit for bit.
//! - [`explain`]: why an invalid run lost what it lost, from its message
//!   trace: overwrites, writes that never landed, stale final reads.
//! - [`faults`]: what the nemesis did, as windows for the page and notes
//!   on kills for an invalid run.
//! - [`report`]: one run in full or many summarized, as JSON or for a
//!   person; [`cli`]: the `gcounter sim` subcommand.
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
pub mod cli;
pub mod explain;
pub mod faults;
pub mod history;
pub mod nemesis;
pub mod page;
pub mod params;
pub mod process;
pub mod report;
pub mod services;
pub mod sim;
pub mod stats;
pub mod testcore;
pub mod workload;

pub use checker::{check, CheckResult, Verdict};
pub use cli::SimArgs;
pub use history::{History, OpKind, Operation, Outcome};
pub use sim::{SimConfig, SimError, SimRun};
