//! The g-counter test against real node processes, in real time: a driver
//! of the [test core](crate::testcore).
//!
//! The core routes every message (latency, partitions, services, clients);
//! this driver writes what the core delivers to the nodes' stdin, hands it
//! every line they print and every exit, carries out kills, starts, pauses
//! and resumes on the processes, and tells the core the time.

use super::procs::{
    events, NodeCommand, NodeDirs, ProcEvent, Procs, Stalled, EXIT_GRACE, STALL_LIMIT,
};
use crate::checker::CheckResult;
use crate::choice::Adversaries;
use crate::history::History;
use crate::history_file::HistoryFile;
use crate::journal::Spilled;
use crate::nemesis::{Latency, NemesisConfig, NemesisRecord};
use crate::stats::Stats;
use crate::testcore::{
    CoreConfig, CoreError, FaultAction, InitRule, Input, Outcome, Output, Progress, TestCore,
};
use crate::workload::WorkloadConfig;
use async_channel::Receiver;
use gcounter_core::Time;
use smol::future::FutureExt;
use smol::Executor;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::testcore::NetObserved;

/// Everything one test against processes needs.
#[derive(Debug, Clone)]
pub struct TestConfig {
    pub command: NodeCommand,
    pub node_count: usize,
    /// Clients (Maelstrom's `--concurrency`); client `i` talks to node
    /// `i mod node_count`.
    pub concurrency: usize,
    pub workload: WorkloadConfig,
    pub nemesis: Option<NemesisConfig>,
    pub latency: Latency,
    pub seed: u64,
    /// Where each node's stderr goes (`<id>.log`).
    pub log_dir: PathBuf,
    /// Where each node runs (`<id>/`), kept across kills.
    pub work_dir: PathBuf,
    /// Also copy node stderr to ours.
    pub log_stderr: bool,
    /// How long a node may take to answer `init`.
    pub init_timeout: Duration,
    /// Who makes the test's choices (`--adversary`; empty: Maelstrom's
    /// random draws).
    pub adversary: Adversaries,
    /// Where operations stream as they complete (`history.jsonl`): the
    /// runner then keeps a bounded journal, so memory stays flat however
    /// long the run. `None`: every operation stays in memory.
    pub history_file: Option<PathBuf>,
}

/// Why a test could not be judged: a node could not be started, or the
/// nodes broke the rules.
#[derive(Debug)]
pub enum TestError {
    Spawn(std::io::Error),
    Test(CoreError),
    /// A node left its input unread: waiting on it would never end.
    Stalled(Stalled),
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestError::Spawn(e) => write!(f, "{e}"),
            TestError::Test(e) => write!(f, "{e}"),
            TestError::Stalled(s) => write!(
                f,
                "node {} does not read its input: {} lines ({} bytes) have waited \
                 {:.1} s on its stdin",
                s.node,
                s.lines,
                s.bytes,
                s.waited.as_secs_f64()
            ),
        }
    }
}

impl std::error::Error for TestError {}

/// What a finished test produced.
#[derive(Debug, Clone)]
pub struct TestRun {
    /// Every operation, or those a bounded journal kept.
    pub history: History,
    /// What a bounded journal let go of (`None`: nothing).
    pub spilled: Option<Spilled>,
    /// Whether `history.jsonl` was written as the run went.
    pub history_written: bool,
    pub check: CheckResult,
    pub stats: Stats,
    pub nemesis: Vec<NemesisRecord>,
    pub dropped: u64,
    /// Messages that reached a node while it was killed.
    pub lost_to_kills: u64,
    /// Replies to clients beyond the one each request is owed.
    pub replies: crate::testcore::ReplyCounts,
    /// Wall time from the first `init` to the end.
    pub elapsed: Duration,
    /// Which messages the runner saw (and `stats.net` and `dropped` count).
    pub net_observed: NetObserved,
    /// The messages the runner routed.
    pub trace: crate::testcore::Trace,
    /// Ctrl-C ended it early: the history stops where it was, and the
    /// verdict is `unknown`.
    pub interrupted: bool,
}

impl TestRun {
    /// A simulated run as a run directory shows it (its elapsed time is
    /// virtual).
    /// `written`: whether the run streamed `history.jsonl` itself.
    pub fn of_sim(run: &crate::sim::SimRun, written: bool) -> Self {
        TestRun {
            history: run.history.clone(),
            spilled: run.spilled.clone(),
            history_written: written,
            check: run.check.clone(),
            stats: run.stats,
            nemesis: run.nemesis.clone(),
            dropped: run.dropped,
            lost_to_kills: run.lost_to_kills,
            replies: run.replies.clone(),
            elapsed: run.end,
            net_observed: NetObserved::All,
            trace: run.trace.clone(),
            interrupted: false,
        }
    }

    pub(super) fn of(
        out: Outcome,
        elapsed: Duration,
        net_observed: NetObserved,
        file: Option<HistoryFile>,
    ) -> Self {
        let mut history_written = false;
        if let Some(mut f) = file {
            f.write(out.unwritten);
            match f.finish() {
                Ok(()) => history_written = true,
                Err(e) => log::warn!("history.jsonl is incomplete: {e}"),
            }
        }
        TestRun {
            history: out.history,
            spilled: out.spilled,
            history_written,
            check: out.check,
            stats: out.stats,
            nemesis: out.nemesis,
            dropped: out.dropped,
            lost_to_kills: out.lost_to_kills,
            replies: out.replies,
            elapsed,
            net_observed,
            trace: out.trace,
            interrupted: false,
        }
    }

    /// Why an invalid run lost what it lost. A long run's explanation
    /// reads the operations kept in memory (the first
    /// [`crate::journal::DEFAULT_KEEP`], as the trace keeps its first
    /// messages): it says so, and gives no per-node accounts, which would
    /// need every add.
    pub fn explain(&self) -> Option<crate::explain::Explanation> {
        let mut e =
            crate::explain::explain(&self.history, &self.check, &self.trace, &self.nemesis)?;
        if let Some(s) = &self.spilled {
            e.per_node.clear();
            e.notes.push(format!(
                "the runner kept the first {} operations in memory; {} later ones are in \
                 history.jsonl only",
                s.keep, s.dropped
            ));
        }
        Some(e)
    }

    /// The run as Ctrl-C left it: a history without its end cannot be
    /// judged.
    pub(super) fn interrupted(mut self) -> Self {
        self.interrupted = true;
        self.check.verdict = crate::Verdict::Unknown;
        self
    }
}

impl TestConfig {
    fn core(&self) -> CoreConfig {
        CoreConfig {
            node_count: self.node_count,
            concurrency: self.concurrency,
            workload: self.workload.clone(),
            nemesis: self.nemesis.clone(),
            latency: self.latency,
            seed: self.seed,
            observed: NetObserved::All,
            init: Some(InitRule {
                timeout: self.init_timeout,
                workload_waits: true,
            }),
            limits: None,
            trace: crate::testcore::trace::DEFAULT_CAP,
            adversary: self.adversary.clone(),
            history_keep: self
                .history_file
                .as_ref()
                .map(|_| crate::journal::DEFAULT_KEEP),
        }
    }
}

/// Runs one test; `progress` is called about every `every`.
pub fn run_test(
    cfg: &TestConfig,
    every: Duration,
    progress: &mut dyn FnMut(&Progress),
) -> Result<TestRun, TestError> {
    // The pipes' tasks run on this thread, beside the test (see
    // `Procs::spawn`).
    let ex = Arc::new(Executor::new());
    smol::block_on(ex.run(async {
        let start = Instant::now();
        let (tx, rx) = events();
        let mut core = TestCore::new(cfg.core());
        let ids: Vec<String> = core.servers().map(str::to_string).collect();
        let dirs = NodeDirs {
            logs: cfg.log_dir.clone(),
            work: cfg.work_dir.clone(),
        };
        let mut procs = Procs::spawn(&cfg.command, &ids, &dirs, cfg.log_stderr, tx, ex.clone())
            .map_err(TestError::Spawn)?;
        let mut file = match &cfg.history_file {
            Some(path) => Some(HistoryFile::create(path).map_err(TestError::Spawn)?),
            None => None,
        };
        let mut pace = Pace::new(start, every);
        let result = drive(&mut core, &mut procs, &rx, &mut pace, progress, &mut file).await;
        procs.shutdown(Duration::from_secs(2)).await;
        let interrupted = result?;
        let out = core.finish().map_err(TestError::Test)?;
        let run = TestRun::of(out, start.elapsed(), NetObserved::All, file);
        Ok(if interrupted { run.interrupted() } else { run })
    }))
}

/// Runs the test to its end (`false`) or until Ctrl-C (`true`).
async fn drive(
    core: &mut TestCore,
    procs: &mut Procs,
    rx: &Receiver<ProcEvent>,
    pace: &mut Pace,
    progress: &mut dyn FnMut(&Progress),
    file: &mut Option<HistoryFile>,
) -> Result<bool, TestError> {
    loop {
        if let Some(f) = file {
            f.write(core.take_completed());
        }
        let wake = loop {
            match core.poll_output() {
                Output::Deliver { node, msg } => {
                    if procs.send(node, &msg.line()).is_err() {
                        let status = procs.exit_status(node);
                        core.handle(Input::Exited { node, status }, pace.now());
                    }
                }
                // Processes keep their own timers.
                Output::Wake { .. } => {}
                Output::Fault(fault) => match fault {
                    FaultAction::Kill(node) => procs.kill(node),
                    FaultAction::Start(node) => procs.start(node).map_err(TestError::Spawn)?,
                    FaultAction::Pause(node) => procs.pause(node),
                    FaultAction::Resume(node) => procs.resume(node),
                    // The core routes every message itself.
                    FaultAction::Cut(_) | FaultAction::Heal => {}
                },
                Output::Wait(at) => break at,
                Output::Done => return Ok(false),
            }
        };
        if super::interrupt::requested() {
            return Ok(true);
        }
        if let Some(stalled) = procs.stalled(STALL_LIMIT) {
            return Err(TestError::Stalled(stalled));
        }
        pace.report(|| progress(&core.progress()));
        for event in pace.wait(rx, wake).await {
            if !procs.is_current(&event) {
                continue;
            }
            let input = match &event {
                ProcEvent::Line { node, line, .. } => Input::Line { node: *node, line },
                ProcEvent::Oversized { node, len, .. } => Input::Oversized {
                    node: *node,
                    len: *len,
                },
                ProcEvent::Closed { node, .. } => Input::Exited {
                    node: *node,
                    status: procs.closed_status(*node),
                },
            };
            core.handle(input, pace.now());
        }
        // A node whose stdout stays open after it exited (a child of its
        // holds it) is gone all the same.
        for (node, status) in procs.exits(EXIT_GRACE) {
            core.handle(Input::Exited { node, status }, pace.now());
        }
        core.handle(Input::Tick, pace.now());
    }
}

/// A real-time driver's clock: the core's time since `start`, progress
/// reports every `every`, and waiting for events until the core's next
/// wake-up (at least every quarter second, for progress and for things
/// the core cannot foresee).
pub(super) struct Pace {
    start: Instant,
    every: Duration,
    next_report: Time,
    /// One timer for every wait, and when it is set to go off, if it has
    /// not yet: arming a timer wakes the reactor, which a wait per
    /// message made a cost of its own.
    timer: smol::Timer,
    armed: Option<Instant>,
}

impl Pace {
    pub(super) fn new(start: Instant, every: Duration) -> Self {
        Pace {
            start,
            every,
            next_report: Time::ZERO,
            timer: smol::Timer::never(),
            armed: None,
        }
    }

    pub(super) fn now(&self) -> Time {
        self.start.elapsed()
    }

    /// Calls `report` if one is due.
    pub(super) fn report(&mut self, report: impl FnOnce()) {
        let now = self.now();
        if now >= self.next_report {
            report();
            self.next_report = now + self.every;
        }
    }

    /// Waits for an event, or until `wake` (the core's) or the next report
    /// is due; returns the event and whatever else is already waiting. It
    /// may return early, with nothing: a timer already set to go off
    /// before the time wanted is kept rather than set again.
    pub(super) async fn wait<T>(&mut self, rx: &Receiver<T>, wake: Option<Time>) -> Vec<T> {
        let now = self.now();
        let mut until = (now + Duration::from_millis(250)).min(self.next_report);
        if let Some(wake) = wake {
            until = until.min(wake);
        }
        let deadline = self.start + until;
        if self.armed.is_none_or(|at| at > deadline) {
            self.timer.set_at(deadline);
            self.armed = Some(deadline);
        }
        let timer = &mut self.timer;
        let first = async { Some(rx.recv().await.ok()) }
            .or(async {
                timer.await;
                None
            })
            .await;
        let first = match first {
            Some(event) => event,
            None => {
                self.armed = None;
                None
            }
        };
        let mut events: Vec<T> = first.into_iter().collect();
        if !events.is_empty() {
            while let Ok(event) = rx.try_recv() {
                events.push(event);
            }
        }
        events
    }
}
