//! The g-counter test against real processes, in real time.
//!
//! The same sans-IO pieces as the simulator (workload, nemesis, network
//! rules, services) moved by the wall clock instead of virtual time: node
//! processes print messages, this loop checks and routes them, delays
//! server traffic by the configured latency, drops what a partition cuts,
//! answers service requests with the core's models, and hands replies to
//! the workload's clients.

use crate::testcore::{check_line, shown, BadLine};
use super::procs::{events, NodeCommand, ProcEvent, Procs};
use crate::checker::{check, CheckResult};
use crate::history::History;
use crate::nemesis::{Latency, Nemesis, NemesisConfig, NemesisEvent, NemesisRecord, Network};
use crate::services::Services;
use crate::sim::INIT_CLIENT;
use crate::stats::{NetTally, OpStats, Stats};
use crate::workload::{node_ids, Step, Workload, WorkloadConfig};
use gcounter_core::protocol::{parse_line, to_line};
use gcounter_core::{Body, Envelope, ErrorCode, Payload, Time};
use serde_json::Value;
use smol::future::FutureExt;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

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
    /// Also copy node stderr to ours.
    pub log_stderr: bool,
    /// How long a node may take to answer `init`.
    pub init_timeout: Duration,
}

/// Why a test could not be judged: the nodes broke the rules.
#[derive(Debug)]
pub enum TestError {
    Spawn(std::io::Error),
    BadLine(BadLine),
    /// A node's stdout closed before the test ended.
    Exited {
        node: String,
        status: String,
    },
    NoInit {
        node: String,
    },
    Oversized {
        node: String,
        len: usize,
    },
}

impl fmt::Display for TestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestError::Spawn(e) => write!(f, "{e}"),
            TestError::BadLine(b) => write!(f, "{b}"),
            TestError::Exited { node, status } => {
                write!(
                    f,
                    "node {node} exited before the test ended ({status}); see its log"
                )
            }
            TestError::NoInit { node } => write!(f, "node {node} never answered init with init_ok"),
            TestError::Oversized { node, len } => {
                write!(
                    f,
                    "node {node} printed a line of {len} bytes, over the 1 MiB limit"
                )
            }
        }
    }
}

impl std::error::Error for TestError {}

/// What a finished test produced.
#[derive(Debug, Clone)]
pub struct TestRun {
    pub history: History,
    pub check: CheckResult,
    pub stats: Stats,
    pub nemesis: Vec<NemesisRecord>,
    pub dropped: u64,
    /// Wall time from the first `init` to the end.
    pub elapsed: Duration,
    /// Which messages the runner saw (and `stats.net` and `dropped` count).
    pub net_observed: NetObserved,
}

/// Which traffic a runner sees, and so counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetObserved {
    /// Every message (the runner routes them all): stdio, the simulator.
    All,
    /// Only client requests and replies: the servers talk to each other
    /// on sockets the runner does not see (`--transport tcp`).
    ClientsOnly,
}

/// A snapshot for a progress display.
#[derive(Debug, Clone, Default)]
pub struct Progress {
    /// Since the workload started.
    pub elapsed: Duration,
    pub time_limit: Duration,
    pub ok: u64,
    pub info: u64,
    pub fail: u64,
    /// The partition in force, or `healed`.
    pub nemesis: String,
    /// `main`, `recovery`, ...
    pub phase: String,
}

impl Progress {
    /// Where `workload` stands, `elapsed` into the test.
    pub fn of(workload: &Workload, elapsed: Duration, nemesis: &str) -> Progress {
        let ops = OpStats::of(workload.history()).all;
        Progress {
            elapsed,
            time_limit: workload.config().time_limit,
            ok: ops.ok,
            info: ops.info,
            fail: ops.fail,
            nemesis: nemesis.to_string(),
            phase: format!("{:?}", workload.phase()).to_lowercase(),
        }
    }
}

/// A message on its way.
#[derive(Debug)]
struct Delivery {
    at: Time,
    seq: u64,
    id: u64,
    src: String,
    dest: String,
    line: Vec<u8>,
}

impl PartialEq for Delivery {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Delivery {}
impl PartialOrd for Delivery {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Delivery {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Runs one test; `progress` is called about every `every`.
pub fn run_test(
    cfg: &TestConfig,
    every: Duration,
    progress: &mut dyn FnMut(&Progress),
) -> Result<TestRun, TestError> {
    smol::block_on(Runner::new(cfg).run(every, progress))
}

struct Runner<'a> {
    cfg: &'a TestConfig,
    servers: Vec<String>,
    rng: fastrand::Rng,
    start: Instant,
    /// When every node had answered init: time zero of the workload.
    t0: Option<Time>,
    init_ok: Vec<bool>,
    queue: BinaryHeap<Reverse<Delivery>>,
    seq: u64,
    next_id: u64,
    net: Network,
    nemesis: Option<Nemesis>,
    nemesis_log: Vec<NemesisRecord>,
    nemesis_now: String,
    workload: Workload,
    workload_wake: Option<Time>,
    services: Services,
    tally: NetTally,
    dropped: u64,
}

impl<'a> Runner<'a> {
    fn new(cfg: &'a TestConfig) -> Self {
        let mut rng = fastrand::Rng::with_seed(cfg.seed);
        let servers = node_ids(cfg.node_count);
        let workload =
            Workload::with_concurrency(cfg.workload.clone(), &servers, cfg.concurrency, rng.fork());
        let nemesis = cfg
            .nemesis
            .clone()
            .map(|n| Nemesis::new(n, servers.clone(), cfg.workload.time_limit, rng.fork()));
        let services = Services::new(&mut rng);
        Runner {
            cfg,
            init_ok: vec![false; servers.len()],
            servers,
            rng,
            start: Instant::now(),
            t0: None,
            queue: BinaryHeap::new(),
            seq: 0,
            next_id: 0,
            net: Network::new(cfg.latency),
            nemesis,
            nemesis_log: Vec::new(),
            nemesis_now: "healed".into(),
            workload,
            workload_wake: Some(Time::ZERO),
            services,
            tally: NetTally::default(),
            dropped: 0,
        }
    }

    fn now(&self) -> Time {
        self.start.elapsed()
    }

    /// Time as the workload and nemesis count it: from the end of init.
    fn test_time(&self) -> Option<Time> {
        self.t0.map(|t0| self.now().saturating_sub(t0))
    }

    fn server(&self, id: &str) -> Option<usize> {
        self.servers.iter().position(|s| s == id)
    }

    fn dest_exists(&self, id: &str) -> bool {
        self.server(id).is_some()
            || self.services.contains(id)
            || id == INIT_CLIENT
            || self.workload.has_client(id)
    }

    async fn run(
        mut self,
        every: Duration,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<TestRun, TestError> {
        let (tx, rx) = events();
        let mut procs = Procs::spawn(
            &self.cfg.command,
            &self.servers,
            &self.cfg.log_dir,
            self.cfg.log_stderr,
            tx,
        )
        .map_err(TestError::Spawn)?;
        let result = self.drive(&mut procs, rx, every, progress).await;
        procs.shutdown(Duration::from_secs(2)).await;
        let elapsed = self.start.elapsed();
        result?;
        let history = self.workload.into_history();
        Ok(TestRun {
            check: check(&history),
            stats: Stats::compute(&history, &self.tally),
            history,
            nemesis: self.nemesis_log,
            dropped: self.dropped,
            elapsed,
            net_observed: NetObserved::All,
        })
    }

    async fn drive(
        &mut self,
        procs: &mut Procs,
        rx: async_channel::Receiver<ProcEvent>,
        every: Duration,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<(), TestError> {
        for (i, node) in self.servers.clone().into_iter().enumerate() {
            let init = Envelope {
                src: INIT_CLIENT.into(),
                dest: node.clone(),
                body: Body {
                    msg_id: Some(i as u64),
                    in_reply_to: None,
                    payload: Payload::Init {
                        node_id: node,
                        node_ids: self.servers.clone(),
                    },
                },
            };
            self.route_typed(init);
        }
        let mut next_progress = Time::ZERO;
        loop {
            self.deliver_due(procs).await?;
            if self.t0.is_none() && self.now() > self.cfg.init_timeout {
                let i = self.init_ok.iter().position(|ok| !ok).unwrap_or(0);
                return Err(TestError::NoInit {
                    node: self.servers[i].clone(),
                });
            }
            if let Some(t) = self.test_time() {
                self.step_nemesis(t);
                if self.step_workload(t) {
                    return Ok(());
                }
            }
            if self.now() >= next_progress {
                progress(&self.progress());
                next_progress = self.now() + every;
            }
            let wake = self.next_wake().min(next_progress);
            let deadline = self.start + wake;
            let event = async { rx.recv().await.ok() }
                .or(async {
                    smol::Timer::at(deadline).await;
                    None
                })
                .await;
            if let Some(event) = event {
                self.on_event(event)?;
                // Take whatever else is already waiting before sleeping.
                while let Ok(event) = rx.try_recv() {
                    self.on_event(event)?;
                }
            }
        }
    }

    fn next_wake(&self) -> Time {
        let t0 = self.t0;
        let to_real = |t: Time| t0.map_or(t, |t0| t0 + t);
        let mut wake = self.now() + Duration::from_millis(250);
        if let Some(Reverse(d)) = self.queue.peek() {
            wake = wake.min(d.at);
        }
        if t0.is_some() {
            if let Some(at) = self.nemesis.as_ref().and_then(Nemesis::next_at) {
                wake = wake.min(to_real(at));
            }
            if let Some(at) = self.workload_wake {
                wake = wake.min(to_real(at));
            }
        }
        wake
    }

    fn progress(&self) -> Progress {
        let elapsed = self.test_time().unwrap_or_default();
        Progress::of(&self.workload, elapsed, &self.nemesis_now)
    }

    fn step_nemesis(&mut self, t: Time) {
        let Some(nemesis) = self.nemesis.as_mut() else {
            return;
        };
        while let Some(event) = nemesis.poll(t) {
            self.nemesis_now = match &event {
                NemesisEvent::StartPartition { partition } => partition.to_string(),
                NemesisEvent::StopPartition => "healed".into(),
                _ => "healed".into(),
            };
            log::info!("{t:?}: nemesis: {}", self.nemesis_now);
            self.net.apply(&event);
            self.nemesis_log.push(NemesisRecord { time: t, event });
        }
    }

    /// Moves the workload on; true once it is done.
    fn step_workload(&mut self, t: Time) -> bool {
        loop {
            match self.workload.poll(t) {
                Step::Send(msg) => self.route_typed(msg),
                Step::Heal => {
                    if let Some(n) = self.nemesis.as_mut() {
                        n.stop();
                    }
                    if self.nemesis_now != "healed" {
                        let event = NemesisEvent::StopPartition;
                        self.net.apply(&event);
                        self.nemesis_log.push(NemesisRecord { time: t, event });
                    }
                    self.net.heal();
                    self.nemesis_now = "healed".into();
                }
                Step::Wait(at) => {
                    self.workload_wake = at;
                    return false;
                }
                Step::Done => return true,
            }
        }
    }

    fn on_event(&mut self, event: ProcEvent) -> Result<(), TestError> {
        match event {
            ProcEvent::Line { node, line } => {
                let id = self.servers[node].clone();
                let msg =
                    check_line(&id, &line, |d| self.dest_exists(d)).map_err(TestError::BadLine)?;
                let dest = msg
                    .get("dest")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                self.route(id, dest, line);
                Ok(())
            }
            ProcEvent::Oversized { node, len } => Err(TestError::Oversized {
                node: self.servers[node].clone(),
                len,
            }),
            ProcEvent::Closed { node } => Err(TestError::Exited {
                node: self.servers[node].clone(),
                status: "its stdout closed".into(),
            }),
        }
    }

    fn route_typed(&mut self, msg: Envelope) {
        let line = to_line(&msg).into_bytes();
        self.route(msg.src, msg.dest, line);
    }

    /// Sends a message: it arrives after the network's delay.
    fn route(&mut self, src: String, dest: String, line: Vec<u8>) {
        let id = self.next_id;
        self.next_id += 1;
        self.tally.sent(id, &src, &dest);
        let at = self.now() + self.net.delay(&src, &dest, &mut self.rng);
        self.seq += 1;
        self.queue.push(Reverse(Delivery {
            at,
            seq: self.seq,
            id,
            src,
            dest,
            line,
        }));
    }

    async fn deliver_due(&mut self, procs: &mut Procs) -> Result<(), TestError> {
        while self
            .queue
            .peek()
            .is_some_and(|Reverse(d)| d.at <= self.now())
        {
            let Some(Reverse(d)) = self.queue.pop() else {
                break;
            };
            self.deliver(procs, d).await?;
        }
        Ok(())
    }

    async fn deliver(&mut self, procs: &mut Procs, d: Delivery) -> Result<(), TestError> {
        let to_server = self.server(&d.dest);
        if self.server(&d.src).is_some() && to_server.is_some() && self.net.drops(&d.src, &d.dest) {
            self.dropped += 1;
            return Ok(());
        }
        self.tally.received(d.id, &d.src, &d.dest);
        if let Some(i) = to_server {
            if procs.send(i, &d.line).await.is_err() {
                let status = procs
                    .exited(i)
                    .map_or("stdin closed".into(), |s| s.to_string());
                return Err(TestError::Exited {
                    node: d.dest,
                    status,
                });
            }
        } else if self.services.contains(&d.dest) {
            if let Some(reply) = self.serve(&d) {
                self.route_typed(reply);
            }
        } else if d.dest == INIT_CLIENT {
            self.on_init_reply(&d);
        } else {
            let msg = typed_reply(&d.src, &d.dest, &d.line);
            let now = self.test_time().unwrap_or_default();
            if !self.workload.on_reply(&msg, now) {
                log::debug!("reply nobody waits for: {}", shown(&d.line));
            }
        }
        Ok(())
    }

    /// A service's answer; a request it cannot parse gets error 12.
    fn serve(&mut self, d: &Delivery) -> Option<Envelope> {
        let service = self.services.get_mut(&d.dest)?;
        match parse_line(&d.line) {
            Ok(msg) => service.handle(&msg),
            Err(err) => {
                log::warn!("{} sent {} a bad request: {}", d.src, d.dest, err.text);
                let (client, msg_id) = err.reply_to?;
                Some(Envelope {
                    src: d.dest.clone(),
                    dest: client,
                    body: Body {
                        msg_id: None,
                        in_reply_to: Some(msg_id),
                        payload: Payload::error(err.code, err.text),
                    },
                })
            }
        }
    }

    fn on_init_reply(&mut self, d: &Delivery) {
        let Some(i) = self.server(&d.src) else { return };
        match parse_line(&d.line).map(|m| m.body.payload) {
            Ok(Payload::InitOk) => {
                self.init_ok[i] = true;
                if self.t0.is_none() && self.init_ok.iter().all(|ok| *ok) {
                    self.t0 = Some(self.now());
                    log::info!("every node answered init; the workload starts");
                }
            }
            _ => log::warn!(
                "unexpected answer to init from {}: {}",
                d.src,
                shown(&d.line)
            ),
        }
    }
}

/// A node's reply to a client, typed for the workload. A reply our parser
/// refuses (an unknown type, a bad field) still answers its request: as an
/// indefinite error, since the client cannot tell what happened.
pub(super) fn typed_reply(src: &str, dest: &str, line: &[u8]) -> Envelope {
    parse_line(line).unwrap_or_else(|err| {
        let value: Value = serde_json::from_slice(line).unwrap_or_default();
        let in_reply_to = value.pointer("/body/in_reply_to").and_then(Value::as_u64);
        Envelope {
            src: src.to_string(),
            dest: dest.to_string(),
            body: Body {
                msg_id: None,
                in_reply_to,
                payload: Payload::error(ErrorCode(1000), format!("unreadable reply: {}", err.text)),
            },
        }
    })
}
