//! The nemesis and the network's rules (SPEC.md section 3).
//!
//! - [`Nemesis`]: a seeded schedule of faults ([`Fault`]: partitions,
//!   kills, pauses), each event a uniformly random delay in
//!   `[0, 2 * interval)` after the previous (Jepsen's packages: each fault
//!   a `flip-flop` of start and stop, `stagger` by the interval, the
//!   faults mixed on one schedule).
//! - [`Partition`]: a grudge as Jepsen computes one: for each server, the
//!   servers whose messages it drops. Only servers appear in it, so clients
//!   and services (`seq-kv`, ...) are never cut off.
//! - [`Latency`]: how long a message between servers, or between a server
//!   and a service, takes; client messages take no time.
//! - [`Network`]: those rules together, for a driver to ask "how long does
//!   this message take" and "is it dropped".
//!
//! None of it knows about drivers: the test core ([`crate::testcore`])
//! applies the schedule and the rules, in virtual time or in real time.

use crate::workload::is_client;
use gcounter_core::Time;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// The shapes of partition Jepsen's `partition-package` draws from (a
/// Maelstrom database has no primaries, so `:primaries` is not among them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PartitionKind {
    /// One random server alone, the rest together.
    One,
    /// Random halves: a minority and a majority.
    Majority,
    /// Every server sees a majority, and no two see the same one; the
    /// links cut need not be symmetric.
    MajoritiesRing,
    /// Fewer than a third of the servers, at random, cut off from the
    /// rest (with 3 servers that is nobody: no link is cut).
    MinorityThird,
}

impl PartitionKind {
    pub const ALL: [PartitionKind; 4] = [
        PartitionKind::One,
        PartitionKind::MinorityThird,
        PartitionKind::Majority,
        PartitionKind::MajoritiesRing,
    ];

    pub fn name(self) -> &'static str {
        match self {
            PartitionKind::One => "one",
            PartitionKind::Majority => "majority",
            PartitionKind::MajoritiesRing => "majorities-ring",
            PartitionKind::MinorityThird => "minority-third",
        }
    }
}

impl fmt::Display for PartitionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Jepsen's `util/majority`: the smallest integer strictly greater than half.
fn majority(n: usize) -> usize {
    n / 2 + 1
}

/// Jepsen's `util/minority-third`: the largest integer strictly less than a
/// third.
fn minority_third(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// Which servers drop messages from which: `grudge[receiver]` is the set of
/// senders whose messages `receiver` drops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    pub kind: PartitionKind,
    pub grudge: BTreeMap<String, BTreeSet<String>>,
}

impl Partition {
    /// Draws a partition of `kind` over `servers`.
    pub fn draw(kind: PartitionKind, servers: &[String], rng: &mut fastrand::Rng) -> Partition {
        let mut shuffled = servers.to_vec();
        let grudge = match kind {
            PartitionKind::One => {
                let loner = rng.usize(..servers.len().max(1));
                let (alone, rest): (Vec<_>, Vec<_>) = servers
                    .iter()
                    .cloned()
                    .enumerate()
                    .partition(|(i, _)| *i == loner);
                complete_grudge(&[
                    alone.into_iter().map(|(_, s)| s).collect(),
                    rest.into_iter().map(|(_, s)| s).collect(),
                ])
            }
            PartitionKind::Majority => {
                rng.shuffle(&mut shuffled);
                let (small, large) = shuffled.split_at(servers.len() / 2);
                complete_grudge(&[small.to_vec(), large.to_vec()])
            }
            PartitionKind::MinorityThird => {
                rng.shuffle(&mut shuffled);
                let (small, large) = shuffled.split_at(minority_third(servers.len()));
                complete_grudge(&[small.to_vec(), large.to_vec()])
            }
            PartitionKind::MajoritiesRing => {
                // Jepsen's `majorities-ring-perfect`: shuffle into a ring;
                // each window of `m` consecutive servers is the majority seen
                // by its middle server.
                rng.shuffle(&mut shuffled);
                let n = shuffled.len();
                let m = majority(n);
                let mut grudge = BTreeMap::new();
                for start in 0..n {
                    let window: BTreeSet<String> =
                        (0..m).map(|k| shuffled[(start + k) % n].clone()).collect();
                    let me = shuffled[(start + m / 2) % n].clone();
                    let dropped = shuffled
                        .iter()
                        .filter(|s| !window.contains(*s))
                        .cloned()
                        .collect();
                    grudge.insert(me, dropped);
                }
                grudge
            }
        };
        Partition { kind, grudge }
    }

    /// Whether a message from `src` to `dest` is dropped.
    pub fn drops(&self, src: &str, dest: &str) -> bool {
        self.grudge
            .get(dest)
            .is_some_and(|senders| senders.contains(src))
    }

    /// Whether the partition cuts any link at all.
    pub fn cuts_anything(&self) -> bool {
        self.grudge.values().any(|s| !s.is_empty())
    }
}

impl Partition {
    /// The groups of servers that see each other and nobody else, if the
    /// partition is such a clean cut (not a majorities ring).
    pub fn components(&self) -> Option<Vec<Vec<String>>> {
        let universe: BTreeSet<&String> = self.grudge.keys().collect();
        let sees = |n: &String| -> BTreeSet<&String> {
            let dropped = &self.grudge[n];
            universe
                .iter()
                .copied()
                .filter(|m| !dropped.contains(*m))
                .collect()
        };
        let mut components: Vec<Vec<String>> = Vec::new();
        let mut placed = BTreeSet::new();
        for n in &universe {
            if placed.contains(n) {
                continue;
            }
            let group = sees(n);
            if group.iter().any(|m| sees(m) != group) {
                return None;
            }
            placed.extend(group.iter().copied());
            components.push(group.into_iter().cloned().collect());
        }
        Some(components)
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ", self.kind)?;
        if !self.cuts_anything() {
            return f.write_str("(nothing cut)");
        }
        match self.components() {
            Some(groups) => {
                let groups: Vec<String> = groups.iter().map(|g| g.join(" ")).collect();
                write!(f, "[{}]", groups.join("] | ["))
            }
            None => {
                let cuts: Vec<String> = self
                    .grudge
                    .iter()
                    .filter(|(_, srcs)| !srcs.is_empty())
                    .map(|(dest, srcs)| {
                        let srcs: Vec<&str> = srcs.iter().map(String::as_str).collect();
                        format!("{dest} ignores {}", srcs.join(" "))
                    })
                    .collect();
                f.write_str(&cuts.join("; "))
            }
        }
    }
}

/// Jepsen's `complete-grudge`: no server talks to any server outside its
/// component.
fn complete_grudge(components: &[Vec<String>]) -> BTreeMap<String, BTreeSet<String>> {
    let universe: BTreeSet<String> = components.iter().flatten().cloned().collect();
    let mut grudge = BTreeMap::new();
    for component in components {
        let inside: BTreeSet<String> = component.iter().cloned().collect();
        for node in component {
            grudge.insert(
                node.clone(),
                universe.difference(&inside).cloned().collect(),
            );
        }
    }
    grudge
}

/// The faults `--nemesis` can name (Maelstrom's names): a comma list of
/// them takes turns on one schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// Cut the network between servers into groups, then heal it.
    Partition,
    /// Kill a minority of the nodes (SIGKILL: memory, timers and unread
    /// input are lost), then start each again as a fresh process with the
    /// same id, which is sent `init` again.
    Kill,
    /// Pause a minority of the nodes (SIGSTOP: input waits, timers stand
    /// still), then resume them (SIGCONT).
    Pause,
}

impl Fault {
    pub const ALL: [Fault; 3] = [Fault::Partition, Fault::Kill, Fault::Pause];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Partition => "partition",
            Fault::Kill => "kill",
            Fault::Pause => "pause",
        }
    }

    /// A comma list such as `partition,kill`: each fault once, in the
    /// order of [`Fault::ALL`] whatever the order typed, so that the same
    /// set always draws the same schedule from the same seed.
    pub fn parse_list(s: &str) -> Result<Vec<Fault>, String> {
        let mut faults = Vec::new();
        for name in s.split(',').map(str::trim) {
            let fault = Fault::ALL
                .into_iter()
                .find(|f| f.name() == name)
                .ok_or_else(|| {
                    format!(
                        "unknown fault `{name}` (valid: partition, kill, pause, comma-separated)"
                    )
                })?;
            faults.push(fault);
        }
        faults.sort();
        faults.dedup();
        Ok(faults)
    }

    /// `partition,kill`.
    pub fn list(faults: &[Fault]) -> String {
        let names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
        names.join(",")
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the nemesis does: to the network (a partition and its heal) or
/// to node processes (Jepsen's `kill`/`start` and `pause`/`resume`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "f", rename_all = "kebab-case")]
pub enum NemesisEvent {
    StartPartition {
        partition: Partition,
    },
    StopPartition,
    Kill {
        nodes: Vec<String>,
    },
    /// Starts the killed nodes again.
    Start {
        nodes: Vec<String>,
    },
    Pause {
        nodes: Vec<String>,
    },
    Resume {
        nodes: Vec<String>,
    },
}

impl NemesisEvent {
    /// The fault this event starts or ends.
    pub fn fault(&self) -> Fault {
        match self {
            NemesisEvent::StartPartition { .. } | NemesisEvent::StopPartition => Fault::Partition,
            NemesisEvent::Kill { .. } | NemesisEvent::Start { .. } => Fault::Kill,
            NemesisEvent::Pause { .. } | NemesisEvent::Resume { .. } => Fault::Pause,
        }
    }

    /// Whether the event does nothing: a kill or pause that found no
    /// minority to take.
    pub fn is_noop(&self) -> bool {
        match self {
            NemesisEvent::Kill { nodes }
            | NemesisEvent::Start { nodes }
            | NemesisEvent::Pause { nodes }
            | NemesisEvent::Resume { nodes } => nodes.is_empty(),
            _ => false,
        }
    }

    /// Whether the event starts its fault (rather than ending it).
    pub fn starts(&self) -> bool {
        matches!(
            self,
            NemesisEvent::StartPartition { .. }
                | NemesisEvent::Kill { .. }
                | NemesisEvent::Pause { .. }
        )
    }
}

impl fmt::Display for NemesisEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nodes = |nodes: &[String]| {
            if nodes.is_empty() {
                "nobody (no minority to take)".to_string()
            } else {
                nodes.join(" ")
            }
        };
        match self {
            NemesisEvent::StartPartition { partition } => write!(f, "partition {partition}"),
            NemesisEvent::StopPartition => f.write_str("heal"),
            NemesisEvent::Kill { nodes: n } => write!(f, "kill {}", nodes(n)),
            NemesisEvent::Start { nodes: n } => write!(f, "start {}", nodes(n)),
            NemesisEvent::Pause { nodes: n } => write!(f, "pause {}", nodes(n)),
            NemesisEvent::Resume { nodes: n } => write!(f, "resume {}", nodes(n)),
        }
    }
}

/// A nemesis event and when it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NemesisRecord {
    #[serde(rename = "time_ns", serialize_with = "crate::nanos::ser")]
    pub time: Time,
    #[serde(flatten)]
    pub event: NemesisEvent,
}

/// The nemesis' parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NemesisConfig {
    /// Mean time between events (start or end of a fault); Maelstrom's
    /// default is 10 s.
    #[serde(with = "crate::workload::secs")]
    pub interval: Duration,
    /// The faults that take turns, each once, in [`Fault::ALL`]'s order.
    pub faults: Vec<Fault>,
    /// The shapes of partition to draw from.
    pub kinds: Vec<PartitionKind>,
}

impl Default for NemesisConfig {
    fn default() -> Self {
        NemesisConfig {
            interval: Duration::from_secs(10),
            faults: vec![Fault::Partition],
            kinds: PartitionKind::ALL.to_vec(),
        }
    }
}

/// The fault schedule, before `until` (the end of the workload's main
/// phase): an event every `stagger`ed interval, each for one fault
/// drawn from the configured ones (Jepsen's `gen/mix` of its packages),
/// and each fault a flip-flop of its own: a fault in force is ended, one
/// not in force is started. Kills and pauses take a random minority of
/// the nodes not already down or paused, so a majority always runs. The
/// final end of every fault is [`Nemesis::stop`]'s, when the workload asks
/// for it.
#[derive(Debug)]
pub struct Nemesis {
    cfg: NemesisConfig,
    servers: Vec<String>,
    rng: fastrand::Rng,
    until: Time,
    next_at: Option<Time>,
    partitioned: bool,
    killed: Option<Vec<String>>,
    paused: Option<Vec<String>>,
}

impl Nemesis {
    pub fn new(
        cfg: NemesisConfig,
        servers: Vec<String>,
        until: Time,
        mut rng: fastrand::Rng,
    ) -> Self {
        let first = stagger(&mut rng, cfg.interval, Time::ZERO);
        let next_at =
            (first < until && !cfg.kinds.is_empty() && !cfg.faults.is_empty()).then_some(first);
        Nemesis {
            cfg,
            servers,
            rng,
            until,
            next_at,
            partitioned: false,
            killed: None,
            paused: None,
        }
    }

    /// When the next event is due, if any.
    pub fn next_at(&self) -> Option<Time> {
        self.next_at
    }

    /// The event due at `now`, if one is.
    pub fn poll(&mut self, now: Time) -> Option<NemesisEvent> {
        let at = self.next_at.filter(|&at| at <= now)?;
        // One fault draws nothing, so a partition-only schedule is the
        // same for a seed as before kills and pauses existed.
        let fault = match self.cfg.faults.as_slice() {
            [one] => *one,
            many => many[self.rng.usize(..many.len())],
        };
        let event = match fault {
            Fault::Partition if self.partitioned => NemesisEvent::StopPartition,
            Fault::Partition => {
                let kind = self.cfg.kinds[self.rng.usize(..self.cfg.kinds.len())];
                NemesisEvent::StartPartition {
                    partition: Partition::draw(kind, &self.servers, &mut self.rng),
                }
            }
            Fault::Kill => match self.killed.take() {
                Some(nodes) => NemesisEvent::Start { nodes },
                None => {
                    let nodes = self.draw_minority();
                    self.killed = Some(nodes.clone());
                    NemesisEvent::Kill { nodes }
                }
            },
            Fault::Pause => match self.paused.take() {
                Some(nodes) => NemesisEvent::Resume { nodes },
                None => {
                    let nodes = self.draw_minority();
                    self.paused = Some(nodes.clone());
                    NemesisEvent::Pause { nodes }
                }
            },
        };
        if fault == Fault::Partition {
            self.partitioned = !self.partitioned;
        }
        let next = stagger(&mut self.rng, self.cfg.interval, at);
        self.next_at = (next < self.until).then_some(next);
        Some(event)
    }

    /// Between one node and a minority (fewer than half) of the servers,
    /// none of them down or paused already; nobody if there is no such
    /// minority (one or two servers).
    fn draw_minority(&mut self) -> Vec<String> {
        let busy: Vec<&String> = self.killed.iter().chain(&self.paused).flatten().collect();
        let mut free: Vec<String> = self
            .servers
            .iter()
            .filter(|s| !busy.contains(s))
            .cloned()
            .collect();
        let most = self.servers.len().saturating_sub(1) / 2;
        let most = most.saturating_sub(busy.len()).min(free.len());
        if most == 0 {
            return Vec::new();
        }
        let count = 1 + self.rng.usize(..most);
        self.rng.shuffle(&mut free);
        free.truncate(count);
        free.sort();
        free
    }

    /// No more events (the final phase has begun): the events that end
    /// every fault still in force.
    pub fn stop(&mut self) -> Vec<NemesisEvent> {
        self.next_at = None;
        let mut ends = Vec::new();
        if std::mem::take(&mut self.partitioned) {
            ends.push(NemesisEvent::StopPartition);
        }
        if let Some(nodes) = self.killed.take().filter(|n| !n.is_empty()) {
            ends.push(NemesisEvent::Start { nodes });
        }
        if let Some(nodes) = self.paused.take().filter(|n| !n.is_empty()) {
            ends.push(NemesisEvent::Resume { nodes });
        }
        ends
    }
}

/// `from` plus a uniformly random delay in `[0, 2 * interval)`.
fn stagger(rng: &mut fastrand::Rng, interval: Duration, from: Time) -> Time {
    from + interval.mul_f64(2.0 * rng.f64())
}

/// How latency is distributed around its mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LatencyDist {
    /// Always the mean.
    #[default]
    Constant,
    /// Uniform over `[0, 2 * mean)`.
    Uniform,
    /// Exponential with the given mean.
    Exponential,
}

impl LatencyDist {
    pub const ALL: [LatencyDist; 3] = [
        LatencyDist::Constant,
        LatencyDist::Uniform,
        LatencyDist::Exponential,
    ];

    pub fn name(self) -> &'static str {
        match self {
            LatencyDist::Constant => "constant",
            LatencyDist::Uniform => "uniform",
            LatencyDist::Exponential => "exponential",
        }
    }
}

impl FromStr for LatencyDist {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        LatencyDist::ALL
            .into_iter()
            .find(|d| d.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown latency distribution `{s}` (valid: constant, uniform, exponential)"
                )
            })
    }
}

impl fmt::Display for LatencyDist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Latency of messages that do not involve a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Latency {
    #[serde(rename = "mean_ms", serialize_with = "ser_ms")]
    pub mean: Duration,
    pub dist: LatencyDist,
}

fn ser_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

impl Latency {
    pub fn new(mean: Duration, dist: LatencyDist) -> Self {
        Latency { mean, dist }
    }

    /// One message's delay.
    pub fn sample(&self, rng: &mut fastrand::Rng) -> Duration {
        if self.mean.is_zero() {
            return Duration::ZERO;
        }
        match self.dist {
            LatencyDist::Constant => self.mean,
            LatencyDist::Uniform => self.mean.mul_f64(2.0 * rng.f64()),
            // 1 - f64() is in (0, 1], so the logarithm is finite.
            LatencyDist::Exponential => self.mean.mul_f64(-(1.0 - rng.f64()).ln()),
        }
    }
}

/// The network's rules: latency for server traffic, and the current
/// partition.
#[derive(Debug, Clone, Default)]
pub struct Network {
    pub latency: Latency,
    pub partition: Option<Partition>,
}

impl Network {
    pub fn new(latency: Latency) -> Self {
        Network {
            latency,
            partition: None,
        }
    }

    /// How long a message from `src` to `dest` takes: nothing if a client
    /// is involved, a sample of the latency otherwise.
    pub fn delay(&self, src: &str, dest: &str, rng: &mut fastrand::Rng) -> Duration {
        if is_client(src) || is_client(dest) {
            Duration::ZERO
        } else {
            self.latency.sample(rng)
        }
    }

    /// Whether a message from `src` to `dest`, arriving now, is dropped.
    /// Maelstrom checks the partition on delivery, so a message sent before
    /// a cut and arriving after it is dropped, and one sent during a cut and
    /// arriving after the heal gets through.
    pub fn drops(&self, src: &str, dest: &str) -> bool {
        self.partition.as_ref().is_some_and(|p| p.drops(src, dest))
    }

    /// Takes up a partition or its heal; other faults are not the
    /// network's.
    pub fn apply(&mut self, event: &NemesisEvent) {
        match event {
            NemesisEvent::StartPartition { partition } => self.partition = Some(partition.clone()),
            NemesisEvent::StopPartition => self.partition = None,
            _ => {}
        }
    }

    pub fn heal(&mut self) {
        self.partition = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::node_ids;

    fn links_cut(p: &Partition) -> usize {
        p.grudge.values().map(BTreeSet::len).sum()
    }

    #[test]
    fn partitions_have_jepsen_shapes() {
        let mut rng = fastrand::Rng::with_seed(1);
        for n in [3, 5] {
            let servers = node_ids(n);
            for _ in 0..20 {
                let one = Partition::draw(PartitionKind::One, &servers, &mut rng);
                assert_eq!(links_cut(&one), 2 * (n - 1), "{one}");
                let alone = one.grudge.iter().filter(|(_, s)| s.len() == n - 1).count();
                assert_eq!(alone, 1, "{one}");

                let maj = Partition::draw(PartitionKind::Majority, &servers, &mut rng);
                let small = n / 2;
                assert_eq!(links_cut(&maj), 2 * small * (n - small), "{maj}");

                let third = Partition::draw(PartitionKind::MinorityThird, &servers, &mut rng);
                let k = (n - 1) / 3;
                assert_eq!(links_cut(&third), 2 * k * (n - k), "{third}");
                assert_eq!(third.cuts_anything(), n > 3);
                assert_eq!(one.components().map(|c| c.len()), Some(2), "{one}");

                let ring = Partition::draw(PartitionKind::MajoritiesRing, &servers, &mut rng);
                let m = n / 2 + 1;
                assert_eq!(ring.grudge.len(), n);
                for (node, dropped) in &ring.grudge {
                    assert_eq!(dropped.len(), n - m, "{ring}");
                    assert!(!dropped.contains(node));
                }
                let seen: BTreeSet<&BTreeSet<String>> = ring.grudge.values().collect();
                assert_eq!(seen.len(), n, "two servers see the same majority: {ring}");
                assert_eq!(ring.components(), None, "{ring}");
            }
        }
    }

    #[test]
    fn the_schedule_alternates_and_stops_at_the_limit() {
        let cfg = NemesisConfig::default();
        let until = Duration::from_secs(200);
        let mut nem = Nemesis::new(cfg, node_ids(3), until, fastrand::Rng::with_seed(9));
        let mut events = Vec::new();
        while let Some(at) = nem.next_at() {
            let ev = nem.poll(at).expect("due");
            events.push((at, ev));
        }
        assert!(
            (12..=28).contains(&events.len()),
            "{} events in 200 s",
            events.len()
        );
        for (i, (at, ev)) in events.iter().enumerate() {
            assert!(*at < until);
            assert_eq!(
                matches!(ev, NemesisEvent::StartPartition { .. }),
                i % 2 == 0
            );
        }
    }

    #[test]
    fn clients_get_no_latency_and_services_are_never_cut() {
        let mut rng = fastrand::Rng::with_seed(2);
        let mut net = Network::new(Latency::new(
            Duration::from_millis(50),
            LatencyDist::Constant,
        ));
        assert_eq!(net.delay("c1", "n0", &mut rng), Duration::ZERO);
        assert_eq!(net.delay("n0", "c1", &mut rng), Duration::ZERO);
        assert_eq!(
            net.delay("n0", "seq-kv", &mut rng),
            Duration::from_millis(50)
        );
        let p = Partition::draw(PartitionKind::One, &node_ids(3), &mut rng);
        net.apply(&NemesisEvent::StartPartition { partition: p });
        for n in node_ids(3) {
            assert!(!net.drops(&n, "seq-kv") && !net.drops("seq-kv", &n));
            assert!(!net.drops(&n, "c1") && !net.drops("c1", &n));
        }
        assert!(node_ids(3)
            .iter()
            .any(|a| node_ids(3).iter().any(|b| net.drops(a, b))));
        net.heal();
        assert!(!node_ids(3)
            .iter()
            .any(|a| node_ids(3).iter().any(|b| net.drops(a, b))));
    }

    #[test]
    fn latency_distributions_have_their_mean() {
        let mut rng = fastrand::Rng::with_seed(3);
        for dist in LatencyDist::ALL {
            let lat = Latency::new(Duration::from_millis(50), dist);
            let n = 20_000;
            let total: Duration = (0..n).map(|_| lat.sample(&mut rng)).sum();
            let mean = total.as_secs_f64() * 1000.0 / n as f64;
            assert!((47.0..53.0).contains(&mean), "{dist}: mean {mean} ms");
        }
    }

    #[test]
    fn partitions_read_well() {
        let servers = node_ids(3);
        let mut rng = fastrand::Rng::with_seed(4);
        let one = Partition::draw(PartitionKind::One, &servers, &mut rng);
        let shown = one.to_string();
        assert!(
            shown.starts_with("one [") && shown.contains("] | ["),
            "{shown}"
        );
        let ring = Partition::draw(PartitionKind::MajoritiesRing, &servers, &mut rng);
        assert_eq!(ring.to_string().matches("ignores").count(), 3, "{ring}");
        let third = Partition::draw(PartitionKind::MinorityThird, &servers, &mut rng);
        assert_eq!(third.to_string(), "minority-third (nothing cut)");
    }
}
