//! The deterministic simulator: a driver of the [test core](crate::testcore)
//! that runs N core [`Node`]s in process, on virtual time.
//!
//! The core decides everything (what is delivered when, what the nemesis
//! does, what the clients ask); this driver only hands messages to nodes,
//! hands what they send back, fires their timers when the core says, and
//! jumps virtual time to the next instant the core waits for. Everything
//! random comes from the run's seed, so a seed replays bit for bit.
//!
//! A killed node is dropped whole (memory, timers); started again, it is a
//! new [`Node`] with the next incarnation and, with
//! [`SimConfig::persist`], the last state it asked to store
//! ([`Output::Persist`]), as the stdio node keeps it with `--state-dir`.
//! Two caps make a livelock fail loudly instead of hanging: events at one
//! instant ([`SimConfig::max_steps_per_instant`]) and events in all
//! ([`SimConfig::max_steps`]).

use crate::choice::Adversaries;
use crate::history_file::HistoryFile;
use crate::nemesis::{Latency, NemesisConfig};
use crate::testcore::{self, CoreConfig, CoreError, FaultAction, Msg, StepLimits, TestCore};
use crate::workload::WorkloadConfig;
use gcounter_core::{Config, Input, Node, Output, StrategyKind, Time};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::Duration;

pub use crate::testcore::INIT_CLIENT;

/// Everything a simulated test is made of, except the seed.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub node_count: usize,
    /// What each node is told before it starts (strategy, KV service,
    /// intervals).
    pub node: Config,
    pub workload: WorkloadConfig,
    /// `None`: no faults.
    pub nemesis: Option<NemesisConfig>,
    pub latency: Latency,
    /// Events in one run before it is declared a livelock.
    pub max_steps: u64,
    /// Events at one virtual instant before it is declared a livelock.
    pub max_steps_per_instant: u64,
    /// Whether a killed node keeps what it stored (a disk), as the stdio
    /// node does with `--state-dir`; otherwise it starts again empty.
    pub persist: bool,
    /// How many messages the run's trace keeps (0, the default: none, so
    /// thousands of runs cost no memory for it).
    pub trace: usize,
    /// Clients (`None`: one per node).
    pub concurrency: Option<usize>,
    /// Who makes the test's choices (`--adversary`; empty: Maelstrom's
    /// random draws).
    pub adversary: Adversaries,
    /// `Some(keep)`: a bounded history ([`crate::journal`]), so one long
    /// run keeps flat memory; `None` (the default): every operation in
    /// memory, as a digest of thousands of short runs wants.
    pub history_keep: Option<usize>,
    /// Where a bounded history streams its operations (`history.jsonl`).
    pub history_file: Option<PathBuf>,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            node_count: 3,
            node: Config::default(),
            workload: WorkloadConfig::default(),
            nemesis: None,
            latency: Latency::default(),
            max_steps: 50_000_000,
            max_steps_per_instant: 100_000,
            persist: false,
            trace: 0,
            concurrency: None,
            adversary: Adversaries::none(),
            history_keep: None,
            history_file: None,
        }
    }
}

impl SimConfig {
    /// The evaluation of SPEC.md section 2 for `strategy`: 3 nodes, 100
    /// operations per second, 20 s, partitions.
    pub fn evaluation(strategy: StrategyKind) -> Self {
        SimConfig {
            node: Config {
                strategy,
                ..Config::default()
            },
            nemesis: Some(NemesisConfig::default()),
            ..SimConfig::default()
        }
    }
}

/// A run that could not be completed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimError {
    /// Too many events at one instant: something answers itself forever.
    Livelock {
        seed: u64,
        at: Time,
        steps: u64,
        pending: Vec<String>,
    },
    /// Too many events in all.
    StepLimit { seed: u64, at: Time, steps: u64 },
    /// Nothing is scheduled, yet the workload is not done.
    Stalled { seed: u64, at: Time },
    /// A node did not answer `init` with `init_ok`.
    Init { seed: u64, node: String },
    /// `history.jsonl` could not be written.
    HistoryFile { seed: u64, error: String },
}

impl SimError {
    pub fn seed(&self) -> u64 {
        match self {
            SimError::Livelock { seed, .. }
            | SimError::StepLimit { seed, .. }
            | SimError::Stalled { seed, .. }
            | SimError::Init { seed, .. }
            | SimError::HistoryFile { seed, .. } => *seed,
        }
    }

    fn file(e: std::io::Error, seed: u64) -> Self {
        SimError::HistoryFile {
            seed,
            error: e.to_string(),
        }
    }
}

impl fmt::Display for SimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SimError::Livelock {
                seed,
                at,
                steps,
                pending,
            } => {
                write!(f, "seed {seed}: livelock: {steps} events at virtual time {at:?} without time moving on")?;
                if !pending.is_empty() {
                    write!(f, "; next messages:\n  {}", pending.join("\n  "))?;
                }
                Ok(())
            }
            SimError::StepLimit { seed, at, steps } => {
                write!(
                    f,
                    "seed {seed}: gave up after {steps} events at virtual time {at:?}"
                )
            }
            SimError::Stalled { seed, at } => {
                write!(f, "seed {seed}: stalled at virtual time {at:?}: nothing scheduled, workload not done")
            }
            SimError::Init { seed, node } => {
                write!(f, "seed {seed}: {node} did not answer init with init_ok")
            }
            SimError::HistoryFile { seed, error } => {
                write!(f, "seed {seed}: writing history.jsonl: {error}")
            }
        }
    }
}

impl std::error::Error for SimError {}

/// What one simulated test produced: the seed, and the test core's
/// outcome, whose fields it shows as its own.
#[derive(Debug, Clone)]
pub struct SimRun {
    pub seed: u64,
    pub outcome: testcore::Outcome,
}

impl std::ops::Deref for SimRun {
    type Target = testcore::Outcome;

    fn deref(&self) -> &testcore::Outcome {
        &self.outcome
    }
}

impl SimRun {
    /// Stale reads `seq-kv` served.
    pub fn stale_reads(&self) -> u64 {
        self.services.iter().map(|(_, c)| c.stale_reads).sum()
    }
}

/// Runs one test.
pub fn run(cfg: &SimConfig, seed: u64) -> Result<SimRun, SimError> {
    run_core(cfg, seed, TestCore::new(cfg.core(seed)))
}

/// Runs one test whose choices `policy` makes instead of
/// `cfg.adversary`'s (a model of some other runner, or a test's
/// deliberately illegal one).
pub fn run_with_policy(
    cfg: &SimConfig,
    seed: u64,
    policy: Box<dyn crate::choice::Policy>,
) -> Result<SimRun, SimError> {
    run_core(cfg, seed, TestCore::with_policy(cfg.core(seed), policy))
}

fn run_core(cfg: &SimConfig, seed: u64, mut core: TestCore) -> Result<SimRun, SimError> {
    let mut nodes = Nodes::new(cfg);
    let mut now = Time::ZERO;
    let mut file = match &cfg.history_file {
        Some(path) => Some(HistoryFile::create(path).map_err(|e| SimError::file(e, seed))?),
        None => None,
    };
    let bounded = cfg.history_keep.is_some();
    loop {
        if bounded {
            // Taken even without a file: the outbox is not kept.
            let done = core.take_completed();
            if let Some(f) = &mut file {
                f.write(done);
            }
        }
        match core.poll_output() {
            testcore::Output::Deliver { node, msg } => {
                nodes.deliver(&mut core, node, msg, now);
            }
            testcore::Output::Wake { node } => nodes.wake(&mut core, node, now),
            testcore::Output::Fault(FaultAction::Kill(node)) => nodes.kill(node),
            testcore::Output::Fault(FaultAction::Start(node)) => nodes.start(node),
            // The core routes every message itself, so cuts are its own;
            // a paused node's input and timers the core holds.
            testcore::Output::Fault(_) => {}
            testcore::Output::Wait(Some(at)) => {
                now = at;
                core.handle(testcore::Input::Tick, now);
            }
            // A core with step limits reports a stall as an error instead.
            testcore::Output::Wait(None) | testcore::Output::Done => break,
        }
    }
    let mut outcome = core.finish().map_err(|e| SimError::of(e, seed))?;
    let unwritten = std::mem::take(&mut outcome.unwritten);
    if let Some(mut f) = file {
        f.write(unwritten);
        f.finish().map_err(|e| SimError::file(e, seed))?;
    }
    Ok(SimRun { seed, outcome })
}

impl SimConfig {
    /// The test core for `seed`: nodes answer `init` at once, livelocks
    /// are caught.
    fn core(&self, seed: u64) -> CoreConfig {
        CoreConfig {
            workload: self.workload.clone(),
            nemesis: self.nemesis.clone(),
            latency: self.latency,
            limits: Some(StepLimits {
                max_steps: self.max_steps,
                per_instant: self.max_steps_per_instant,
            }),
            trace: self.trace,
            concurrency: self.concurrency.unwrap_or(self.node_count),
            adversary: self.adversary.clone(),
            history_keep: self.history_keep,
            ..CoreConfig::simulated(self.node_count, seed)
        }
    }
}

impl SimError {
    fn of(e: CoreError, seed: u64) -> SimError {
        match e {
            CoreError::Livelock { at, steps, pending } => SimError::Livelock {
                seed,
                at,
                steps,
                pending,
            },
            CoreError::StepLimit { at, steps } => SimError::StepLimit { seed, at, steps },
            CoreError::NoInit { node } => SimError::Init { seed, node },
            CoreError::Stalled { at } => SimError::Stalled { seed, at },
            // In-process nodes print no lines and never exit on their own.
            e
            @ (CoreError::BadLine(_) | CoreError::Exited { .. } | CoreError::Oversized { .. }) => {
                unreachable!("an in-process node cannot {e}")
            }
        }
    }
}

/// The in-process nodes, with what each stored and how many lives it had.
struct Nodes<'a> {
    cfg: &'a SimConfig,
    nodes: Vec<Option<Node>>,
    disks: Vec<Option<String>>,
    lives: Vec<u64>,
}

impl<'a> Nodes<'a> {
    fn new(cfg: &'a SimConfig) -> Self {
        Nodes {
            cfg,
            nodes: (0..cfg.node_count)
                .map(|_| Some(Node::new(cfg.node.clone())))
                .collect(),
            disks: vec![None; cfg.node_count],
            lives: vec![0; cfg.node_count],
        }
    }

    fn deliver(&mut self, core: &mut TestCore, i: usize, msg: Msg, now: Time) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        match msg {
            Msg::Typed(msg) => node.handle(Input::Message(msg), now),
            Msg::Raw { line, .. } => node.handle(Input::Line(&line), now),
        }
        self.drain(core, i, now);
    }

    fn wake(&mut self, core: &mut TestCore, i: usize, now: Time) {
        if let Some(node) = self.nodes[i].as_mut() {
            node.handle(Input::Timeout, now);
            self.drain(core, i, now);
        }
    }

    /// Hands the core everything node `i` sends, stores what it asks to,
    /// and tells the core when it wants its timer.
    fn drain(&mut self, core: &mut TestCore, i: usize, now: Time) {
        let Some(node) = self.nodes[i].as_mut() else {
            return;
        };
        loop {
            match node.poll_output() {
                Output::Send(msg) => core.handle(testcore::Input::Sent { node: i, msg }, now),
                Output::Persist(state) => self.disks[i] = Some(state),
                Output::Wait(at) => {
                    core.handle(testcore::Input::WakeAt { node: i, at }, now);
                    return;
                }
            }
        }
    }

    fn kill(&mut self, i: usize) {
        self.nodes[i] = None;
    }

    /// A fresh node in node `i`'s place: the next incarnation, and what it
    /// stored if disks survive.
    fn start(&mut self, i: usize) {
        self.lives[i] += 1;
        let config = Config {
            incarnation: self.lives[i],
            restored: self.disks[i].clone().filter(|_| self.cfg.persist),
            ..self.cfg.node.clone()
        };
        self.nodes[i] = Some(Node::new(config));
    }
}

/// Runs one test per seed on up to `jobs` threads and maps each result
/// with `f` (so that thousands of runs need not be kept whole). Results
/// come back in the order of `seeds`, whatever the threads did.
pub fn run_many<T, F>(cfg: &SimConfig, seeds: &[u64], jobs: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(u64, Result<SimRun, SimError>) -> T + Sync,
{
    let next = AtomicUsize::new(0);
    let jobs = jobs.clamp(1, seeds.len().max(1));
    let mut done: Vec<(usize, T)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                        let Some(&seed) = seeds.get(i) else { break };
                        mine.push((i, f(seed, run(cfg, seed))));
                    }
                    mine
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| match w.join() {
                Ok(results) => results,
                Err(panic) => std::panic::resume_unwind(panic),
            })
            .collect()
    });
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, t)| t).collect()
}

/// The number of threads to use by default.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// How long `cfg`'s test lasts in virtual time at least: the main phase
/// plus the recovery wait.
pub fn nominal_duration(cfg: &SimConfig) -> Duration {
    cfg.workload.time_limit + cfg.workload.recovery
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::Verdict;

    #[test]
    fn gossip_without_faults_is_valid_and_timed_as_configured() {
        let cfg = SimConfig {
            workload: WorkloadConfig {
                time_limit: Duration::from_secs(5),
                recovery: Duration::from_secs(2),
                ..Default::default()
            },
            ..SimConfig::default()
        };
        let run = run(&cfg, 1).unwrap();
        assert_eq!(run.check.verdict, Verdict::Valid, "{:?}", run.check);
        assert_eq!(run.check.final_reads.len(), 3);
        assert!(run.end >= nominal_duration(&cfg));
        assert_eq!(run.undeliverable, 0);
        assert!(run.stats.ops.all.count > 400);
        // init + init_ok are client traffic; gossip is server traffic.
        assert!(run.stats.net.servers.msg_count > 0);
    }

    #[test]
    fn a_livelock_fails_loudly() {
        let cfg = SimConfig {
            max_steps_per_instant: 5,
            ..SimConfig::default()
        };
        let err = run(&cfg, 3).unwrap_err();
        assert!(matches!(err, SimError::Livelock { seed: 3, .. }), "{err}");
        let cfg = SimConfig {
            max_steps: 100,
            ..SimConfig::default()
        };
        assert!(matches!(
            run(&cfg, 3).unwrap_err(),
            SimError::StepLimit { .. }
        ));
    }
}
