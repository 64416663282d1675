//! The deterministic simulator: N core [`Node`]s, the core's service models,
//! the workload's clients and the nemesis, on virtual time.
//!
//! Everything random comes from one `fastrand::Rng` seeded with the run's
//! seed (the workload, the nemesis and `seq-kv` get generators forked from
//! it first), and nothing else decides an order: events due at the same
//! instant are taken messages first (in the order they were sent), then
//! node timers (by node), then the nemesis, then the workload. So a seed
//! replays bit for bit.
//!
//! The loop takes one event at a time, jumping virtual time to the earliest
//! due: a message delivery (from a priority queue ordered by arrival time,
//! then send order), a node's wake-up time (as [`Output::Wait`] gave it),
//! the nemesis' next event or the workload's. Two caps make a livelock fail
//! loudly instead of hanging: events at one instant
//! ([`SimConfig::max_steps_per_instant`]) and events in all
//! ([`SimConfig::max_steps`]).

use crate::checker::{check, CheckResult};
use crate::history::History;
use crate::nemesis::{Latency, Nemesis, NemesisConfig, NemesisEvent, NemesisRecord, Network};
use crate::services::{ServiceCounts, Services};
use crate::stats::{NetTally, Stats};
use crate::workload::{is_client, node_ids, Step, Workload, WorkloadConfig};
use gcounter_core::{
    protocol, Body, Config, Envelope, Input, Node, Output, Payload, StrategyKind, Time,
};
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::time::Duration;

/// The client that sends `init` (Maelstrom's setup client, not a workload
/// client).
pub const INIT_CLIENT: &str = "c0";

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
}

impl SimError {
    pub fn seed(&self) -> u64 {
        match self {
            SimError::Livelock { seed, .. }
            | SimError::StepLimit { seed, .. }
            | SimError::Stalled { seed, .. }
            | SimError::Init { seed, .. } => *seed,
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
        }
    }
}

impl std::error::Error for SimError {}

/// What one simulated test produced.
#[derive(Debug, Clone)]
pub struct SimRun {
    pub seed: u64,
    pub history: History,
    pub check: CheckResult,
    pub stats: Stats,
    /// The nemesis' events, including the final heal.
    pub nemesis: Vec<NemesisRecord>,
    /// Per service (`seq-kv`, `lin-kv`, `lww-kv`, `lin-tso`): requests and
    /// stale reads.
    pub services: Vec<(&'static str, ServiceCounts)>,
    /// Messages between servers dropped by a partition.
    pub dropped: u64,
    /// Messages to an id that is neither a server, a service nor a client.
    pub undeliverable: u64,
    /// Events processed.
    pub steps: u64,
    /// Virtual time at the end.
    pub end: Time,
}

impl SimRun {
    /// Stale reads `seq-kv` served.
    pub fn stale_reads(&self) -> u64 {
        self.services.iter().map(|(_, c)| c.stale_reads).sum()
    }
}

/// Runs one test.
pub fn run(cfg: &SimConfig, seed: u64) -> Result<SimRun, SimError> {
    Sim::new(cfg, seed).run()
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

/// A message in flight.
#[derive(Debug)]
struct InFlight {
    at: Time,
    seq: u64,
    id: u64,
    msg: Envelope,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// What happens next.
#[derive(Debug, Clone, Copy)]
enum Event {
    Deliver,
    Wake(usize),
    Nemesis,
    Workload,
}

struct Sim<'a> {
    cfg: &'a SimConfig,
    seed: u64,
    rng: fastrand::Rng,
    now: Time,
    servers: Vec<String>,
    nodes: Vec<Node>,
    wakes: Vec<Option<Time>>,
    services: Services,
    queue: BinaryHeap<Reverse<InFlight>>,
    next_seq: u64,
    next_msg_id: u64,
    net: Network,
    nemesis: Option<Nemesis>,
    nemesis_log: Vec<NemesisRecord>,
    workload: Workload,
    /// Whether the workload must be polled now (a reply came, or it just
    /// acted); otherwise it is polled when its wake-up time comes.
    workload_due: bool,
    workload_wake: Option<Time>,
    tally: NetTally,
    init_ok: Vec<bool>,
    init_checked: bool,
    steps: u64,
    instant_steps: u64,
    dropped: u64,
    undeliverable: u64,
}

impl<'a> Sim<'a> {
    fn new(cfg: &'a SimConfig, seed: u64) -> Self {
        let mut rng = fastrand::Rng::with_seed(seed);
        let servers = node_ids(cfg.node_count);
        let workload = Workload::new(cfg.workload.clone(), &servers, rng.fork());
        let nemesis = cfg
            .nemesis
            .clone()
            .map(|n| Nemesis::new(n, servers.clone(), cfg.workload.time_limit, rng.fork()));
        let services = Services::new(&mut rng);
        Sim {
            cfg,
            seed,
            rng,
            now: Time::ZERO,
            nodes: servers
                .iter()
                .map(|_| Node::new(cfg.node.clone()))
                .collect(),
            wakes: vec![None; servers.len()],
            init_ok: vec![false; servers.len()],
            servers,
            services,
            queue: BinaryHeap::new(),
            next_seq: 0,
            next_msg_id: 0,
            net: Network::new(cfg.latency),
            nemesis,
            nemesis_log: Vec::new(),
            workload,
            workload_due: true,
            workload_wake: None,
            tally: NetTally::default(),
            init_checked: false,
            steps: 0,
            instant_steps: 0,
            dropped: 0,
            undeliverable: 0,
        }
    }

    fn run(mut self) -> Result<SimRun, SimError> {
        for (i, node) in self.servers.clone().into_iter().enumerate() {
            let payload = Payload::Init {
                node_id: node.clone(),
                node_ids: self.servers.clone(),
            };
            let body = Body {
                msg_id: Some(i as u64),
                in_reply_to: None,
                payload,
            };
            self.route(Envelope {
                src: INIT_CLIENT.into(),
                dest: node,
                body,
            });
        }
        loop {
            self.tick()?;
            if self.workload_due || self.workload_wake.is_some_and(|t| t <= self.now) {
                self.workload_due = false;
                match self.workload.poll(self.now) {
                    Step::Send(msg) => {
                        self.route(msg);
                        self.workload_due = true;
                    }
                    Step::Heal => {
                        self.heal();
                        self.workload_due = true;
                    }
                    Step::Wait(at) => self.workload_wake = at,
                    Step::Done => break,
                }
                continue;
            }
            let (at, event) = self.next_event().ok_or(SimError::Stalled {
                seed: self.seed,
                at: self.now,
            })?;
            if at > self.now {
                self.check_init()?;
                self.now = at;
                self.instant_steps = 0;
            }
            match event {
                Event::Deliver => {
                    if let Some(Reverse(m)) = self.queue.pop() {
                        self.deliver(m);
                    }
                }
                Event::Wake(i) => {
                    self.wakes[i] = None;
                    self.nodes[i].handle(Input::Timeout, self.now);
                    self.drain(i);
                }
                Event::Nemesis => {
                    let event = self.nemesis.as_mut().and_then(|n| n.poll(self.now));
                    if let Some(event) = event {
                        self.apply(event);
                    }
                }
                Event::Workload => self.workload_due = true,
            }
        }
        self.check_init()?;
        Ok(self.finish())
    }

    fn tick(&mut self) -> Result<(), SimError> {
        self.steps += 1;
        self.instant_steps += 1;
        if self.instant_steps > self.cfg.max_steps_per_instant {
            let mut next: Vec<&InFlight> = self.queue.iter().map(|Reverse(m)| m).collect();
            next.sort();
            let pending = next
                .iter()
                .take(10)
                .map(|m| protocol::to_line(&m.msg))
                .collect();
            return Err(SimError::Livelock {
                seed: self.seed,
                at: self.now,
                steps: self.instant_steps,
                pending,
            });
        }
        if self.steps > self.cfg.max_steps {
            return Err(SimError::StepLimit {
                seed: self.seed,
                at: self.now,
                steps: self.steps,
            });
        }
        Ok(())
    }

    /// The earliest due event; ties go to messages, then node timers, then
    /// the nemesis, then the workload.
    fn next_event(&self) -> Option<(Time, Event)> {
        let mut best: Option<(Time, Event)> =
            self.queue.peek().map(|Reverse(m)| (m.at, Event::Deliver));
        let mut consider = |at: Option<Time>, event: Event| {
            if let Some(at) = at {
                if best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, event));
                }
            }
        };
        for (i, &wake) in self.wakes.iter().enumerate() {
            consider(wake, Event::Wake(i));
        }
        consider(
            self.nemesis.as_ref().and_then(Nemesis::next_at),
            Event::Nemesis,
        );
        consider(self.workload_wake, Event::Workload);
        best.map(|(at, e)| (at.max(self.now), e))
    }

    fn check_init(&mut self) -> Result<(), SimError> {
        if !self.init_checked {
            self.init_checked = true;
            if let Some(i) = self.init_ok.iter().position(|ok| !ok) {
                return Err(SimError::Init {
                    seed: self.seed,
                    node: self.servers[i].clone(),
                });
            }
        }
        Ok(())
    }

    fn server_index(&self, id: &str) -> Option<usize> {
        let i: usize = id.strip_prefix('n')?.parse().ok()?;
        (self.servers.get(i)? == id).then_some(i)
    }

    /// Sends a message: it arrives after the network's delay.
    fn route(&mut self, msg: Envelope) {
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        self.tally.sent(id, &msg.src, &msg.dest);
        let known = self.server_index(&msg.dest).is_some()
            || self.services.contains(&msg.dest)
            || msg.dest == INIT_CLIENT
            || self.workload.has_client(&msg.dest);
        if !known {
            self.undeliverable += 1;
            log::warn!(
                "{:?}: message to unknown node {}: {}",
                self.now,
                msg.dest,
                protocol::to_line(&msg)
            );
            return;
        }
        let at = self.now + self.net.delay(&msg.src, &msg.dest, &mut self.rng);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.queue.push(Reverse(InFlight { at, seq, id, msg }));
    }

    fn deliver(&mut self, m: InFlight) {
        let InFlight { id, msg, .. } = m;
        let from_server = self.server_index(&msg.src).is_some();
        let to_server = self.server_index(&msg.dest);
        if from_server && to_server.is_some() && self.net.drops(&msg.src, &msg.dest) {
            self.dropped += 1;
            log::trace!(
                "{:?}: dropped by partition: {}",
                self.now,
                protocol::to_line(&msg)
            );
            return;
        }
        self.tally.received(id, &msg.src, &msg.dest);
        if log::log_enabled!(log::Level::Trace) {
            log::trace!("{:?}: {}", self.now, protocol::to_line(&msg));
        }
        if let Some(i) = to_server {
            self.nodes[i].handle(Input::Message(msg), self.now);
            self.drain(i);
        } else if let Some(service) = self.services.get_mut(&msg.dest) {
            if let Some(reply) = service.handle(&msg) {
                self.route(reply);
            }
        } else if msg.dest == INIT_CLIENT {
            match (self.server_index(&msg.src), &msg.body.payload) {
                (Some(i), Payload::InitOk) => self.init_ok[i] = true,
                _ => log::warn!("unexpected answer to init: {}", protocol::to_line(&msg)),
            }
        } else if is_client(&msg.dest) {
            if !self.workload.on_reply(&msg, self.now) {
                log::debug!(
                    "{:?}: reply nobody waits for: {}",
                    self.now,
                    protocol::to_line(&msg)
                );
            }
            self.workload_due = true;
        }
    }

    /// Sends everything node `i` has to send and records when it wants to
    /// be woken.
    fn drain(&mut self, i: usize) {
        loop {
            match self.nodes[i].poll_output() {
                Output::Send(msg) => {
                    if msg.src != self.servers[i] {
                        log::warn!(
                            "{} sent as {}: {}",
                            self.servers[i],
                            msg.src,
                            protocol::to_line(&msg)
                        );
                    }
                    self.route(msg);
                }
                // Simulated nodes never crash, so nothing is ever restored.
                Output::Persist(_) => {}
                Output::Wait(at) => {
                    self.wakes[i] = at;
                    return;
                }
            }
        }
    }

    fn apply(&mut self, event: NemesisEvent) {
        match &event {
            NemesisEvent::StartPartition { partition } => {
                log::debug!("{:?}: nemesis: {partition}", self.now)
            }
            NemesisEvent::StopPartition => log::debug!("{:?}: nemesis: heal", self.now),
        }
        self.net.apply(&event);
        self.nemesis_log.push(NemesisRecord {
            time: self.now,
            event,
        });
    }

    /// The final heal: no more faults.
    fn heal(&mut self) {
        if let Some(nemesis) = self.nemesis.as_mut() {
            nemesis.stop();
            if self.net.partition.is_some() {
                self.apply(NemesisEvent::StopPartition);
            }
        }
        self.net.heal();
    }

    fn finish(self) -> SimRun {
        let history = self.workload.into_history();
        let check = check(&history);
        let stats = Stats::compute(&history, &self.tally);
        SimRun {
            seed: self.seed,
            history,
            check,
            stats,
            nemesis: self.nemesis_log,
            services: self.services.counts(),
            dropped: self.dropped,
            undeliverable: self.undeliverable,
            steps: self.steps,
            end: self.now,
        }
    }
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
