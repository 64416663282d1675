//! The g-counter test as one sans-IO state machine, in the style of
//! `gcounter-core`'s node: the workload and its history, the nemesis'
//! schedule, the network's rules (latency, partitions), the services, the
//! counts, and which node is up, down or paused. It never touches a
//! process, a socket or a clock: a driver hands it what happened with
//! [`TestCore::handle`] (a node printed a line, a process exited, time
//! passed) and does what [`TestCore::poll_output`] says (deliver these
//! bytes to that node, kill, pause, resume or start it, wake me at T, the
//! test is over).
//!
//! Three drivers move time, bytes and processes around it and nothing
//! else, so a fault, a count or a rule is written once:
//!
//! - [`crate::sim`]: in-process [`gcounter_core::Node`]s on virtual time.
//!   It also reports when each node wants its timer ([`Input::WakeAt`]),
//!   so the core orders timers with everything else and a seed replays
//!   bit for bit.
//! - [`crate::process`]'s stdio runner: node processes, real time.
//! - [`crate::process`]'s TCP runner: a cluster whose servers talk on
//!   sockets of their own, so only client traffic passes through the core
//!   ([`NetObserved::ClientsOnly`]); partitions become [`FaultAction::Cut`]
//!   for the driver to carry out.
//!
//! # The loop
//!
//! Call [`TestCore::poll_output`] until it returns [`Output::Wait`], doing
//! each output in order; then wait until that time (or, for a real-time
//! driver, until something happens), and hand the core what happened (or
//! [`Input::Tick`]) with the time. [`Output::Done`] ends the test:
//! [`TestCore::finish`] gives the outcome.
//!
//! Events due at the same instant are taken messages first (in the order
//! they were sent), then node timers (by node), then the nemesis, then the
//! workload; everything random comes from the seed. So on virtual time the
//! same seed gives the same test.
//!
//! # Faults
//!
//! A partition drops messages between servers on delivery. A killed node
//! gets nothing until it is started again (messages due to it are lost),
//! its timers are forgotten, and once started it is sent `init` again. A
//! paused node's messages wait for it, and its timers stand still, until
//! it is resumed.
//!
//! # Example
//!
//! A one-node cluster driven by hand, on virtual time: the node answers
//! `init` and every request at once, in memory.
//!
//! ```
//! use gcounter_core::{protocol, Config, Node, Output as NodeOutput};
//! use gcounter_harness::testcore::{CoreConfig, Input, Msg, Output, TestCore};
//! use gcounter_harness::Verdict;
//! use std::time::Duration;
//!
//! let mut cfg = CoreConfig::simulated(1, 7);
//! cfg.workload.time_limit = Duration::from_secs(2);
//! cfg.workload.recovery = Duration::from_secs(1);
//! let mut test = TestCore::new(cfg);
//! let mut node = Node::new(Config::default());
//! let mut now = Duration::ZERO;
//! loop {
//!     match test.poll_output() {
//!         Output::Deliver { node: i, msg: Msg::Typed(msg) } => {
//!             node.handle(gcounter_core::Input::Message(msg), now);
//!             loop {
//!                 match node.poll_output() {
//!                     NodeOutput::Send(msg) => test.handle(Input::Sent { node: i, msg }, now),
//!                     NodeOutput::Persist(_) => {}
//!                     NodeOutput::Wait(at) => break test.handle(Input::WakeAt { node: i, at }, now),
//!                 }
//!             }
//!         }
//!         Output::Wait(Some(at)) => {
//!             now = at;
//!             test.handle(Input::Tick, now);
//!         }
//!         Output::Done => break,
//!         other => panic!("a one-node cluster without faults needs no {other:?}"),
//!     }
//! }
//! let outcome = test.finish().expect("the node answered init");
//! assert_eq!(outcome.check.verdict, Verdict::Valid);
//! assert!(outcome.history.len() > 100);
//! ```

mod check;
mod holds;
mod msg;
mod queue;
mod replies;
pub mod trace;

pub use check::{check_line, shown, BadLine};
pub use replies::ReplyCounts;
pub use trace::{Fate, Trace, TraceEntry};

use crate::checker::{check_ledger, CheckResult};
use crate::choice::{self, Adversaries, Delay, Link, Policy};
use crate::history::{History, Operation};
use crate::journal::Spilled;
use crate::nemesis::{
    Latency, Nemesis, NemesisConfig, NemesisEvent, NemesisRecord, Network, Partition,
};
use crate::services::{ServiceCounts, Services};
use crate::stats::{NetTally, Stats};
use crate::workload::{is_client, node_ids, Step, Workload, WorkloadConfig};
use gcounter_core::protocol::{self, parse_line};
use gcounter_core::service::Served;
use gcounter_core::{Body, Envelope, Payload, Time};
use holds::{Holds, Released};
pub use holds::{CHANGE_HOLD, FIRST_HOLD, STUCK_HOLD};
use msg::is_change;
pub use msg::Msg;
use queue::Queue;
use replies::{Replies, ReplyKind};
use serde_json::Value;
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// The client that sends `init` (Maelstrom's setup client, not a workload
/// client).
pub const INIT_CLIENT: &str = "c0";

/// Which traffic passes through the core, and so is routed and counted
/// by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetObserved {
    /// Every message: stdio, the simulator.
    All,
    /// Only client requests and replies: the servers talk to each other
    /// on sockets the runner does not see (`--transport tcp`).
    ClientsOnly,
}

/// How nodes learn who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InitRule {
    /// How long a node may take to answer `init`; past it the test fails.
    /// Zero: before time moves on (simulated nodes answer at once).
    pub timeout: Duration,
    /// Whether the workload waits for every node's first `init_ok` (real
    /// processes take a while to start) or starts at time zero.
    pub workload_waits: bool,
}

/// Caps that turn a livelock on virtual time into an error: events at one
/// instant, and events in all. A driver on virtual time sets them, since
/// nothing but the core moves its time; there, nothing left to do before
/// the workload is done is an error too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepLimits {
    pub max_steps: u64,
    pub per_instant: u64,
}

/// Everything the test core is made of.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    pub node_count: usize,
    /// Clients; client `i` talks to node `i mod node_count`.
    pub concurrency: usize,
    pub workload: WorkloadConfig,
    /// `None`: no faults.
    pub nemesis: Option<NemesisConfig>,
    pub latency: Latency,
    pub seed: u64,
    pub observed: NetObserved,
    /// `None`: the nodes are told their ids some other way (the TCP
    /// cluster's flags) and the workload starts at time zero.
    pub init: Option<InitRule>,
    pub limits: Option<StepLimits>,
    /// How many messages the trace keeps (0: no trace).
    pub trace: usize,
    /// Who makes the test's choices: Maelstrom's random draws (empty), or
    /// these adversaries' worst legal ones ([`crate::choice`]).
    pub adversary: Adversaries,
    /// `Some(keep)`: keep the first `keep` operations in memory and fold
    /// the rest as they complete, handing them out through
    /// [`TestCore::take_completed`] ([`crate::journal`]); `None`: keep
    /// every operation.
    pub history_keep: Option<usize>,
}

impl CoreConfig {
    /// A simulated test of `node_count` nodes, one client each, without
    /// faults: nodes answer `init` at once, livelocks are caught.
    pub fn simulated(node_count: usize, seed: u64) -> Self {
        CoreConfig {
            node_count,
            concurrency: node_count,
            workload: WorkloadConfig::default(),
            nemesis: None,
            latency: Latency::default(),
            seed,
            observed: NetObserved::All,
            init: Some(InitRule {
                timeout: Duration::ZERO,
                workload_waits: false,
            }),
            limits: Some(StepLimits {
                max_steps: 50_000_000,
                per_instant: 100_000,
            }),
            trace: 0,
            adversary: Adversaries::none(),
            history_keep: None,
        }
    }
}

/// What happened, as a driver tells it.
#[derive(Debug)]
pub enum Input<'a> {
    /// Nothing but the passing of time.
    Tick,
    /// A node process printed a line (without its newline).
    Line { node: usize, line: &'a [u8] },
    /// An in-process node sent a message.
    Sent { node: usize, msg: Envelope },
    /// An in-process node wants its timer at `at` (`None`: no timer).
    WakeAt { node: usize, at: Option<Time> },
    /// A node process printed a line longer than the driver accepts.
    Oversized { node: usize, len: usize },
    /// A node process exited, or its output closed, or its connection
    /// broke. Expected of a node the nemesis killed; an error otherwise.
    Exited { node: usize, status: String },
}

/// What the nemesis needs a driver to do to a node or the network.
#[derive(Debug, Clone, PartialEq)]
pub enum FaultAction {
    /// Cut the network so (only a driver whose servers talk on their own
    /// sockets needs to: the core drops what it routes itself).
    Cut(Partition),
    /// Undo the cut.
    Heal,
    /// SIGKILL the node: memory, timers and unsent output are lost.
    Kill(usize),
    /// Start a killed node again, a fresh process with the same id, from
    /// what it stored (its `init` follows as a message).
    Start(usize),
    /// SIGSTOP.
    Pause(usize),
    /// SIGCONT.
    Resume(usize),
}

/// What the driver must do next.
#[derive(Debug)]
pub enum Output {
    /// Hand this message to node `node`.
    Deliver {
        node: usize,
        msg: Msg,
    },
    /// Fire node `node`'s timer (in-process nodes).
    Wake {
        node: usize,
    },
    Fault(FaultAction),
    /// Nothing to do before this time (`None`: until something happens).
    Wait(Option<Time>),
    /// The test is over: call [`TestCore::finish`].
    Done,
}

/// Why a test could not be judged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoreError {
    /// A node printed a line that breaks the protocol.
    BadLine(BadLine),
    /// A node's process exited (or its output closed) and no fault killed it.
    Exited { node: String, status: String },
    /// A node did not answer `init` with `init_ok` in time.
    NoInit { node: String },
    /// A node printed a line over the driver's limit.
    Oversized { node: String, len: usize },
    /// Too many events at one instant: something answers itself forever.
    Livelock {
        at: Time,
        steps: u64,
        pending: Vec<String>,
    },
    /// Too many events in all.
    StepLimit { at: Time, steps: u64 },
    /// Nothing is scheduled, yet the workload is not done.
    Stalled { at: Time },
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CoreError::BadLine(b) => write!(f, "{b}"),
            CoreError::Exited { node, status } => {
                write!(
                    f,
                    "node {node} exited before the test ended ({status}); see its log"
                )
            }
            CoreError::NoInit { node } => write!(f, "node {node} never answered init with init_ok"),
            CoreError::Oversized { node, len } => {
                write!(
                    f,
                    "node {node} printed a line of {len} bytes, over the 1 MiB limit"
                )
            }
            CoreError::Livelock { at, steps, pending } => {
                write!(
                    f,
                    "livelock: {steps} events at time {at:?} without time moving on"
                )?;
                if !pending.is_empty() {
                    write!(f, "; next messages:\n  {}", pending.join("\n  "))?;
                }
                Ok(())
            }
            CoreError::StepLimit { at, steps } => {
                write!(f, "gave up after {steps} events at time {at:?}")
            }
            CoreError::Stalled { at } => {
                write!(
                    f,
                    "stalled at time {at:?}: nothing scheduled, workload not done"
                )
            }
        }
    }
}

impl std::error::Error for CoreError {}

/// What a finished test produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every operation, or with [`CoreConfig::history_keep`] those kept.
    pub history: History,
    /// What a bounded history let go of (`None`: nothing).
    pub spilled: Option<Spilled>,
    /// Operations [`TestCore::take_completed`] has not yet handed out.
    pub unwritten: Vec<Operation>,
    pub check: CheckResult,
    pub stats: Stats,
    /// The nemesis' events, including the final ends of faults.
    pub nemesis: Vec<NemesisRecord>,
    /// Per service (`seq-kv`, `lin-kv`, `lww-kv`, `lin-tso`): requests and
    /// stale reads.
    pub services: Vec<(&'static str, ServiceCounts)>,
    /// Messages between servers dropped by a partition.
    pub dropped: u64,
    /// Messages that reached a node while it was down.
    pub lost_to_kills: u64,
    /// Messages to an id that is neither a server, a service nor a client.
    pub undeliverable: u64,
    /// Replies to clients beyond the one each request is owed.
    pub replies: ReplyCounts,
    /// Events processed.
    pub steps: u64,
    /// The driver's time at the end.
    pub end: Time,
    pub trace: Trace,
}

/// A snapshot for a progress display.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Since the workload started.
    pub elapsed: Duration,
    /// How long the whole run should take: the main phase, recovery, and
    /// at most a client timeout for the final reads.
    pub expected: Duration,
    pub ok: u64,
    /// Completed as indeterminate (a timeout or an indefinite error).
    pub info: u64,
    pub fail: u64,
    /// Sent and not yet answered: counted apart from `info`, so neither
    /// count goes down as replies come in.
    pub pending: u64,
    /// The faults in force, or `healed`.
    pub nemesis: String,
    /// `main`, `recovery`, ...
    pub phase: String,
}

/// Where a node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Up,
    Down,
    Paused,
}

#[derive(Debug)]
struct NodeSlot {
    id: String,
    life: Life,
    /// When an in-process node wants its timer.
    wake: Option<Time>,
    /// Messages that reached it while paused, with their ids.
    held: VecDeque<(u64, Msg)>,
    /// When its `init_ok` is overdue, while one is awaited.
    init_due: Option<Time>,
}

/// What happens next.
#[derive(Debug, Clone, Copy)]
enum Event {
    Deliver,
    Wake(usize),
    Nemesis,
    /// A kill held for an acknowledgement ran out of time.
    HeldKill,
    /// A request held for an acknowledgement ran out of time.
    HeldRequest,
    Workload,
    InitDue,
}

/// The test. See the module docs.
#[derive(Debug)]
pub struct TestCore {
    cfg: CoreConfig,
    rng: fastrand::Rng,
    now: Time,
    /// Set when time moved on: the event that made it move is taken before
    /// the workload is asked again.
    advanced: bool,
    /// When the workload's clock started (the driver's time).
    t0: Option<Time>,
    /// How many nodes owe an `init_ok`.
    inits_due: usize,
    /// The event the last [`Output::Wait`] waited for, while nothing but
    /// time has happened since: the driver's tick needs no new search.
    waited: Option<(Time, Event)>,
    nodes: Vec<NodeSlot>,
    queue: Queue,
    next_msg_id: u64,
    next_init_id: u64,
    net: Network,
    nemesis: Option<Nemesis>,
    nemesis_log: Vec<NemesisRecord>,
    workload: Workload,
    /// Whether the workload must be polled now (a reply came, or it just
    /// acted); otherwise it is polled when its wake-up time comes.
    workload_due: bool,
    workload_wake: Option<Time>,
    services: Services,
    /// Answers the choices: which state `seq-kv` serves, how long a
    /// message takes.
    policy: Box<dyn Policy>,
    /// A kill the nemesis drew that waits, until the given time at most,
    /// for one of its nodes to acknowledge an add (the `kill-after-ack`
    /// adversary).
    held_kill: Option<(NemesisEvent, Time)>,
    /// Messages the policy holds until just before the final reads, in
    /// the order sent.
    held_for_final: Vec<(u64, Msg)>,
    /// Requests to the store held until an add is acknowledged (the
    /// `adds-first` and `slow-kv` adversaries).
    holds: Holds,
    tally: NetTally,
    trace: Trace,
    out: VecDeque<Output>,
    steps: u64,
    instant_steps: u64,
    dropped: u64,
    lost_to_kills: u64,
    undeliverable: u64,
    replies: Replies,
    error: Option<CoreError>,
    done: bool,
}

impl TestCore {
    /// The test, its choices made by `cfg.adversary`'s policy.
    pub fn new(cfg: CoreConfig) -> Self {
        let policy = choice::policy(&cfg.adversary, cfg.seed);
        Self::with_policy(cfg, policy)
    }

    /// The test, its choices made by `policy` (whatever it answers: the
    /// legality check, [`crate::legality`], is what holds a policy to the
    /// rules).
    pub fn with_policy(cfg: CoreConfig, policy: Box<dyn Policy>) -> Self {
        let mut rng = fastrand::Rng::with_seed(cfg.seed);
        let servers = node_ids(cfg.node_count);
        let mut workload =
            Workload::with_concurrency(cfg.workload.clone(), &servers, cfg.concurrency, rng.fork());
        if let Some(keep) = cfg.history_keep {
            workload.bound_history(keep);
        }
        let nemesis = cfg
            .nemesis
            .clone()
            .map(|n| Nemesis::new(n, servers.clone(), cfg.workload.time_limit, rng.fork()));
        let services = Services::new(&mut rng);
        let waits = cfg.init.is_some_and(|i| i.workload_waits);
        let holds = Holds::new(policy.holds_first_requests(), policy.holds_changes());
        let mut core = TestCore {
            rng,
            now: Time::ZERO,
            advanced: false,
            t0: (!waits).then_some(Time::ZERO),
            inits_due: 0,
            waited: None,
            nodes: servers
                .into_iter()
                .map(|id| NodeSlot {
                    id,
                    life: Life::Up,
                    wake: None,
                    held: VecDeque::new(),
                    init_due: None,
                })
                .collect(),
            queue: Queue::default(),
            next_msg_id: 0,
            next_init_id: 0,
            net: Network::new(cfg.latency),
            nemesis,
            nemesis_log: Vec::new(),
            workload,
            workload_due: true,
            workload_wake: None,
            services,
            policy,
            held_kill: None,
            held_for_final: Vec::new(),
            holds,
            tally: NetTally::default(),
            trace: Trace::new(cfg.trace),
            out: VecDeque::new(),
            steps: 0,
            instant_steps: 0,
            dropped: 0,
            lost_to_kills: 0,
            undeliverable: 0,
            replies: Replies::default(),
            error: None,
            done: false,
            cfg,
        };
        for i in 0..core.nodes.len() {
            core.send_init(i);
        }
        core
    }

    /// The servers' ids, `n0` first.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.nodes.iter().map(|n| n.id.as_str())
    }

    /// `(client, node)` for every client.
    pub fn clients(&self) -> impl Iterator<Item = (&str, &str)> {
        self.workload.clients()
    }

    /// Takes in what happened at `now` (the driver's time, never going
    /// back).
    pub fn handle(&mut self, input: Input<'_>, now: Time) {
        if now > self.now {
            self.now = now;
            self.advanced = true;
            self.instant_steps = 0;
            self.check_init();
        }
        if !matches!(input, Input::Tick) {
            self.waited = None;
        }
        match input {
            Input::Tick => {}
            Input::Sent { node, msg } => {
                if msg.src != self.nodes[node].id {
                    log::warn!(
                        "{} sent as {}: {}",
                        self.nodes[node].id,
                        msg.src,
                        protocol::to_line(&msg)
                    );
                }
                self.route(Msg::Typed(msg));
            }
            Input::WakeAt { node, at } => self.nodes[node].wake = at,
            Input::Line { node, line } => self.on_line(node, line),
            Input::Oversized { node, len } => {
                if self.nodes[node].life != Life::Down {
                    let node = self.nodes[node].id.clone();
                    self.fail(CoreError::Oversized { node, len });
                }
            }
            Input::Exited { node, status } => {
                // A killed node's process goes as it should.
                if self.nodes[node].life != Life::Down {
                    let node = self.nodes[node].id.clone();
                    self.fail(CoreError::Exited { node, status });
                }
            }
        }
    }

    /// The next thing to do. See the module docs for the loop.
    pub fn poll_output(&mut self) -> Output {
        loop {
            if let Some(out) = self.out.pop_front() {
                return out;
            }
            if self.done {
                return Output::Done;
            }
            if let Err(e) = self.tick() {
                self.fail(e);
                continue;
            }
            let advanced = std::mem::take(&mut self.advanced);
            if !advanced && self.workload_ready() {
                self.step_workload();
                continue;
            }
            let cached = self.waited.take().filter(|_| advanced);
            let Some((at, event)) = cached.or_else(|| self.next_event()) else {
                if self.cfg.limits.is_some() {
                    self.fail(CoreError::Stalled { at: self.now });
                    continue;
                }
                return Output::Wait(None);
            };
            if at > self.now {
                self.waited = Some((at, event));
                return Output::Wait(Some(at));
            }
            match event {
                Event::Deliver => {
                    if let Some(out) = self.queue.pop().and_then(|m| self.deliver(m.id, m.msg)) {
                        return out;
                    }
                }
                Event::Wake(node) => {
                    self.nodes[node].wake = None;
                    return Output::Wake { node };
                }
                Event::Nemesis => {
                    let t = self.test_time();
                    if let Some(event) = self.nemesis.as_mut().and_then(|n| n.poll(t)) {
                        // Whatever comes next (the restart of those nodes,
                        // say) comes after the kill that was held.
                        self.release_kill();
                        match (&event, self.policy.kill_hold()) {
                            (NemesisEvent::Kill { .. }, Some(hold)) => {
                                self.held_kill = Some((event, self.now + hold));
                            }
                            _ => self.apply(event),
                        }
                    }
                }
                Event::HeldKill => self.release_kill(),
                Event::HeldRequest => {
                    let workload = &self.workload;
                    let due = self
                        .holds
                        .due(self.now, |node| workload.has_idle_client(node));
                    self.send_released(due);
                }
                Event::Workload => self.workload_due = true,
                Event::InitDue => self.check_init(),
            }
        }
    }

    /// The outcome, once [`Output::Done`] has been returned; the error that
    /// ended the test early otherwise.
    pub fn finish(mut self) -> Result<Outcome, CoreError> {
        self.check_init();
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut replies = self.replies.counts();
        replies.reads = self.workload.read_values().clone();
        let read_lag = self.workload.read_lag();
        let journaled = self.workload.into_journaled();
        let check = check_ledger(&journaled.ledger);
        let stats = Stats {
            read_lag,
            ..journaled.ledger.stats(&journaled.history, &self.tally)
        };
        Ok(Outcome {
            history: journaled.history,
            spilled: journaled.spilled,
            unwritten: journaled.unwritten,
            check,
            stats,
            nemesis: self.nemesis_log,
            services: self.services.counts(),
            dropped: self.dropped,
            lost_to_kills: self.lost_to_kills,
            undeliverable: self.undeliverable,
            replies,
            steps: self.steps,
            end: self.now,
            trace: self.trace,
        })
    }

    /// Where the test stands, for a progress display.
    /// Operations completed since the last call, with a bounded history
    /// ([`CoreConfig::history_keep`]): the driver writes them out.
    pub fn take_completed(&mut self) -> Vec<Operation> {
        self.workload.take_completed()
    }

    pub fn progress(&self) -> Progress {
        let (ops, pending) = self.workload.journal().counts();
        let ops = ops.all;
        let w = self.workload.config();
        Progress {
            elapsed: self.test_time(),
            expected: w.time_limit + w.recovery + w.client_timeout,
            ok: ops.ok,
            info: ops.info - pending,
            fail: ops.fail,
            pending,
            nemesis: self.faults_now(),
            phase: format!("{:?}", self.workload.phase()).to_lowercase(),
        }
    }

    /// The faults in force, `healed`, or `none` without a nemesis.
    fn faults_now(&self) -> String {
        let mut now = Vec::new();
        if let Some(p) = &self.net.partition {
            now.push(p.to_string());
        }
        for (life, what) in [(Life::Down, "down"), (Life::Paused, "paused")] {
            let ids: Vec<&str> = self
                .nodes
                .iter()
                .filter(|n| n.life == life)
                .map(|n| n.id.as_str())
                .collect();
            if !ids.is_empty() {
                now.push(format!("{} {what}", ids.join(" ")));
            }
        }
        if now.is_empty() && self.nemesis.is_none() {
            "none".into()
        } else if now.is_empty() {
            "healed".into()
        } else {
            now.join("; ")
        }
    }

    /// Time as the workload and the nemesis count it.
    fn test_time(&self) -> Time {
        self.t0.map_or(Time::ZERO, |t0| self.now.saturating_sub(t0))
    }

    fn fail(&mut self, e: CoreError) {
        log::debug!("{:?}: the test fails: {e}", self.now);
        self.error.get_or_insert(e);
        self.done = true;
    }

    fn tick(&mut self) -> Result<(), CoreError> {
        self.steps += 1;
        self.instant_steps += 1;
        let Some(limits) = self.cfg.limits else {
            return Ok(());
        };
        if self.instant_steps > limits.per_instant {
            let pending = self
                .queue
                .first(10)
                .iter()
                .map(|m| String::from_utf8_lossy(&m.msg.line()).into_owned())
                .collect();
            return Err(CoreError::Livelock {
                at: self.now,
                steps: self.instant_steps,
                pending,
            });
        }
        if self.steps > limits.max_steps {
            return Err(CoreError::StepLimit {
                at: self.now,
                steps: self.steps,
            });
        }
        Ok(())
    }

    fn workload_ready(&self) -> bool {
        let Some(t0) = self.t0 else { return false };
        self.workload_due || self.workload_wake.is_some_and(|t| t0 + t <= self.now)
    }

    fn step_workload(&mut self) {
        self.workload_due = false;
        match self.workload.poll(self.test_time()) {
            Step::Send(msg) => {
                if let Some(msg_id) = msg.body.msg_id {
                    self.replies.sent(&msg.src, msg_id);
                }
                self.route(Msg::Typed(msg));
                self.workload_due = true;
            }
            Step::Heal => {
                self.final_heal();
                self.release_held();
                self.workload_due = true;
            }
            Step::Wait(at) => self.workload_wake = at,
            Step::Done => self.done = true,
        }
    }

    /// The earliest due event; ties go to messages, then node timers, then
    /// the nemesis, then the workload.
    fn next_event(&self) -> Option<(Time, Event)> {
        let mut best: Option<(Time, Event)> = self.queue.next_at().map(|at| (at, Event::Deliver));
        let mut consider = |at: Option<Time>, event: Event| {
            if let Some(at) = at {
                if best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, event));
                }
            }
        };
        for (i, node) in self.nodes.iter().enumerate() {
            if node.life == Life::Up {
                consider(node.wake, Event::Wake(i));
            }
        }
        consider(self.held_kill.as_ref().map(|(_, at)| *at), Event::HeldKill);
        consider(self.holds.deadline(), Event::HeldRequest);
        if let Some(t0) = self.t0 {
            let nemesis = self.nemesis.as_ref().and_then(Nemesis::next_at);
            consider(nemesis.map(|t| t0 + t), Event::Nemesis);
            consider(self.workload_wake.map(|t| t0 + t), Event::Workload);
        }
        // A real-time driver is woken when an init_ok is overdue; on virtual
        // time (a zero timeout) the next event that moves time checks it.
        let overdue = (self.inits_due > 0)
            .then(|| self.nodes.iter().filter_map(|n| n.init_due).min())
            .flatten();
        consider(
            overdue
                .filter(|&due| due > self.now)
                .map(|due| due + Duration::from_nanos(1)),
            Event::InitDue,
        );
        best.map(|(at, e)| (at.max(self.now), e))
    }

    /// Fails the test if a node's `init_ok` is overdue.
    fn check_init(&mut self) {
        if self.inits_due == 0 {
            return;
        }
        let now = self.now;
        if let Some(node) = self
            .nodes
            .iter()
            .find(|n| n.init_due.is_some_and(|d| now > d))
        {
            let node = node.id.clone();
            self.fail(CoreError::NoInit { node });
        }
    }

    fn send_init(&mut self, i: usize) {
        let Some(rule) = self.cfg.init else { return };
        let node_ids = self.servers().map(str::to_string).collect();
        let msg = Envelope {
            src: INIT_CLIENT.into(),
            dest: self.nodes[i].id.clone(),
            body: Body {
                msg_id: Some(self.next_init_id),
                in_reply_to: None,
                payload: Payload::Init {
                    node_id: self.nodes[i].id.clone(),
                    node_ids,
                },
            },
        };
        self.next_init_id += 1;
        if self.nodes[i]
            .init_due
            .replace(self.now + rule.timeout)
            .is_none()
        {
            self.inits_due += 1;
        }
        self.route(Msg::Typed(msg));
    }

    fn server_index(&self, id: &str) -> Option<usize> {
        let i: usize = id.strip_prefix('n')?.parse().ok()?;
        (self.nodes.get(i)?.id == id).then_some(i)
    }

    fn dest_exists(&self, id: &str) -> bool {
        self.server_index(id).is_some()
            || self.services.contains(id)
            || id == INIT_CLIENT
            || self.workload.has_client(id)
    }

    /// A line printed by node `node`'s process: checked, then routed.
    fn on_line(&mut self, node: usize, line: &[u8]) {
        // What a killed process printed before it died dies with it.
        if self.nodes[node].life == Life::Down {
            return;
        }
        let id = self.nodes[node].id.clone();
        match check_line(&id, line, |d| self.dest_exists(d)) {
            Ok(msg) => {
                let dest = msg
                    .get("dest")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.route(Msg::Raw {
                    src: id,
                    dest,
                    line: line.to_vec(),
                });
            }
            Err(bad) => self.fail(CoreError::BadLine(bad)),
        }
    }

    /// Sends a message: it arrives after the network's delay.
    fn route(&mut self, msg: Msg) {
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        self.tally.sent(id, msg.src(), msg.dest());
        if self.trace.on() {
            self.trace.sent(
                id,
                msg.src(),
                msg.dest(),
                msg.body_value(),
                self.test_time(),
            );
        }
        if !self.dest_exists(msg.dest()) {
            self.undeliverable += 1;
            self.trace.fate(id, Fate::Undeliverable, self.test_time());
            log::warn!(
                "{:?}: message to unknown node {}: {}",
                self.now,
                msg.dest(),
                String::from_utf8_lossy(&msg.line())
            );
            return;
        }
        // The network's draw is made whatever the policy answers, so the
        // rest of the run draws what it would under Maelstrom's choices.
        let sampled = self.net.delay(msg.src(), msg.dest(), &mut self.rng);
        let delay = match Link::of(msg.src(), msg.dest()) {
            // Client traffic has no latency: there is nothing to choose.
            Link::Client => Delay::After(sampled),
            link => self.policy.delay(link, self.workload.phase(), sampled),
        };
        match delay {
            Delay::After(d)
                if self.holds.active()
                    && self.server_index(msg.src()).is_some()
                    && self.services.contains(msg.dest()) =>
            {
                let src = msg.src().to_string();
                match self.holds.offer((id, msg, d), self.now, is_change) {
                    Some((id, msg, d)) => self.queue.push(self.now + d, id, msg),
                    // The node's client gets an add to acknowledge.
                    None if self.holds.holds_change_of(&src) => self.workload.want_add(&src),
                    None => {}
                }
            }
            Delay::After(d) => self.queue.push(self.now + d, id, msg),
            Delay::UntilFinalReads => self.held_for_final.push((id, msg)),
        }
    }

    /// Messages held for the final reads go on their way, to arrive 1 ms
    /// before them, the oldest last: each overtaken by everything sent
    /// after it.
    fn release_held(&mut self) {
        let (Some(t0), Some(at)) = (self.t0, self.workload.final_reads_at()) else {
            return;
        };
        let at = (t0 + at)
            .saturating_sub(Duration::from_millis(1))
            .max(self.now);
        while let Some((id, msg)) = self.held_for_final.pop() {
            self.queue.push(at, id, msg);
        }
    }

    /// Delivers a message that is due: to a node, as the output to hand
    /// it over; to a service, a client or the init client, here.
    fn deliver(&mut self, id: u64, msg: Msg) -> Option<Output> {
        let to_server = self.server_index(msg.dest());
        let from_server = self.server_index(msg.src()).is_some();
        if from_server && to_server.is_some() && self.net.drops(msg.src(), msg.dest()) {
            self.dropped += 1;
            self.trace.fate(id, Fate::Dropped, self.test_time());
            log::trace!("{:?}: dropped by partition: {msg:?}", self.now);
            return None;
        }
        if let Some(i) = to_server {
            match self.nodes[i].life {
                Life::Down => {
                    self.lost_to_kills += 1;
                    self.trace.fate(id, Fate::Lost, self.test_time());
                    return None;
                }
                Life::Paused => {
                    self.nodes[i].held.push_back((id, msg));
                    return None;
                }
                Life::Up => {}
            }
        }
        self.tally.received(id, msg.src(), msg.dest());
        self.trace.fate(id, Fate::Delivered, self.test_time());
        if log::log_enabled!(log::Level::Trace) {
            log::trace!("{:?}: {}", self.now, String::from_utf8_lossy(&msg.line()));
        }
        if let Some(node) = to_server {
            if self.holds.active() && self.services.contains(msg.src()) {
                self.holds.store_answered(msg.dest());
            }
            return Some(Output::Deliver { node, msg });
        } else if self.services.contains(msg.dest()) {
            if let Some((reply, served)) = self.serve(msg) {
                self.route(Msg::Typed(reply));
                let id = self.next_msg_id - 1;
                if let (Some(served), Some(entry)) = (served, self.trace.entry(id)) {
                    entry.kv = Some(served.into());
                }
            }
        } else if msg.dest() == INIT_CLIENT {
            self.on_init_reply(msg);
        } else if is_client(msg.dest()) {
            let line = msg.line().into_owned();
            let msg = msg.typed();
            let kind = self
                .replies
                .received(&msg.dest, msg.body.in_reply_to, || shown(&line));
            if !self.workload.on_reply(&msg, self.test_time()) {
                match kind {
                    ReplyKind::First => self.replies.late(),
                    ReplyKind::Duplicate | ReplyKind::Unsolicited => {
                        log::warn!("{:?}: {kind:?} reply: {}", self.now, shown(&line))
                    }
                }
            } else {
                self.on_answered(&msg);
            }
            self.workload_due = true;
        }
        None
    }

    /// A client got the answer it waited for from node `msg.src`.
    fn on_answered(&mut self, msg: &Envelope) {
        if msg.body.payload != Payload::AddOk {
            return;
        }
        // An add that counts (not 0; a decrement counts) has been
        // acknowledged: a held kill of its node strikes now, before that
        // node's next step, and requests held for one go on.
        let kill_waits = matches!(&self.held_kill,
            Some((NemesisEvent::Kill { nodes }, _)) if nodes.contains(&msg.src));
        // Looked up only while something waits: most adds pass here.
        let counts = (kill_waits || self.holds.waits_on(&msg.src))
            && self
                .workload
                .journal()
                .last_of(&msg.dest)
                .is_some_and(|op| op.delta.is_some_and(|d| d != 0));
        if counts {
            if kill_waits {
                self.release_kill();
            }
            let released = self.holds.acked(&msg.src);
            self.send_released(released);
        }
    }

    /// A service's answer, and which state served it; a request it cannot
    /// parse gets error 12. A store that chooses a state (`seq-kv`) offers
    /// the client's window and the policy picks.
    fn serve(&mut self, msg: Msg) -> Option<(Envelope, Option<Served>)> {
        let service = self.services.get_mut(msg.dest())?;
        let m = match msg {
            Msg::Typed(m) => m,
            Msg::Raw { src, dest, line } => match parse_line(&line) {
                Ok(m) => m,
                Err(err) => {
                    log::warn!("{src} sent {dest} a bad request: {}", err.text);
                    let (client, msg_id) = err.reply_to?;
                    let reply = Envelope {
                        src: dest,
                        dest: client,
                        body: Body {
                            msg_id: None,
                            in_reply_to: Some(msg_id),
                            payload: Payload::error(err.code, err.text),
                        },
                    };
                    return Some((reply, None));
                }
            },
        };
        let chosen = service
            .window(&m.src)
            .and_then(|window| self.policy.kv_state(&m.src, window));
        let (reply, served) = service.serve_from(&m, chosen)?;
        if served.is_some() {
            let failed_stale = matches!(reply.body.payload, Payload::Error { .. })
                && served.is_some_and(|s| !s.changed && s.state < s.newest);
            self.policy.kv_answered(&m.src, failed_stale);
        }
        Some((reply, served))
    }

    fn on_init_reply(&mut self, msg: Msg) {
        let Some(i) = self.server_index(msg.src()) else {
            return;
        };
        let line = msg.line().into_owned();
        let ok = match msg {
            Msg::Typed(m) => m.body.payload == Payload::InitOk,
            Msg::Raw { line, .. } => {
                parse_line(&line).is_ok_and(|m| m.body.payload == Payload::InitOk)
            }
        };
        if !ok {
            log::warn!("unexpected answer to init: {}", shown(&line));
            return;
        }
        if self.nodes[i].init_due.take().is_some() {
            self.inits_due -= 1;
        }
        if self.t0.is_none() && self.inits_due == 0 {
            self.t0 = Some(self.now);
            log::info!("every node answered init; the workload starts");
        }
    }

    /// Takes up a nemesis event: the network's part here, the nodes' part
    /// for the driver.
    fn apply(&mut self, event: NemesisEvent) {
        let t = self.test_time();
        log::debug!("{t:?}: nemesis: {event}");
        self.net.apply(&event);
        let nodes = |core: &Self, ids: &[String]| -> Vec<usize> {
            ids.iter().filter_map(|id| core.server_index(id)).collect()
        };
        match &event {
            NemesisEvent::StartPartition { partition } => self
                .out
                .push_back(Output::Fault(FaultAction::Cut(partition.clone()))),
            NemesisEvent::StopPartition => self.out.push_back(Output::Fault(FaultAction::Heal)),
            NemesisEvent::Kill { nodes: ids } => {
                let t = self.test_time();
                for i in nodes(self, ids) {
                    self.holds.killed(&self.nodes[i].id);
                    let node = &mut self.nodes[i];
                    node.life = Life::Down;
                    node.wake = None;
                    if node.init_due.take().is_some() {
                        self.inits_due -= 1;
                    }
                    self.lost_to_kills += node.held.len() as u64;
                    for (id, _) in node.held.drain(..) {
                        self.trace.fate(id, Fate::Lost, t);
                    }
                    self.out.push_back(Output::Fault(FaultAction::Kill(i)));
                }
            }
            NemesisEvent::Start { nodes: ids } => {
                for i in nodes(self, ids) {
                    self.nodes[i].life = Life::Up;
                    self.out.push_back(Output::Fault(FaultAction::Start(i)));
                    self.send_init(i);
                }
            }
            NemesisEvent::Pause { nodes: ids } => {
                for i in nodes(self, ids) {
                    self.nodes[i].life = Life::Paused;
                    self.out.push_back(Output::Fault(FaultAction::Pause(i)));
                }
            }
            NemesisEvent::Resume { nodes: ids } => {
                for i in nodes(self, ids) {
                    self.nodes[i].life = Life::Up;
                    self.out.push_back(Output::Fault(FaultAction::Resume(i)));
                    while let Some((id, msg)) = self.nodes[i].held.pop_front() {
                        self.tally.received(id, msg.src(), msg.dest());
                        self.trace.fate(id, Fate::Delivered, self.test_time());
                        self.out.push_back(Output::Deliver { node: i, msg });
                    }
                }
            }
        }
        self.nemesis_log.push(NemesisRecord { time: t, event });
    }

    /// The final phase begins: every fault in force ends, and no more start.
    /// Applies the kill held for an acknowledgement, if one is.
    fn release_kill(&mut self) {
        if let Some((event, _)) = self.held_kill.take() {
            self.apply(event);
        }
    }

    /// Held requests go on, in send order, each after its own sampled
    /// delay.
    fn send_released(&mut self, released: Vec<Released>) {
        for (id, msg, delay) in released {
            self.queue.push(self.now + delay, id, msg);
        }
    }

    fn final_heal(&mut self) {
        self.release_kill();
        let held = self.holds.end();
        self.send_released(held);
        if let Some(nemesis) = self.nemesis.as_mut() {
            for event in nemesis.stop() {
                self.apply(event);
            }
        }
        self.net.heal();
    }
}
