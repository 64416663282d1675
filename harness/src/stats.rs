//! Statistics as Maelstrom reports them (SPEC.md section 5).
//!
//! - Operations: ok / info / fail, overall and per kind (Jepsen's `stats`).
//! - Network: messages sent, received and unique, for all traffic, for
//!   traffic involving a client, and for server traffic (everything not
//!   involving a client, service traffic included); `msgs_per_op` is unique
//!   messages over client operations (Maelstrom's `net` checker). As in
//!   Maelstrom, `init` and `init_ok` count (they involve a client).
//! - Latency: quantiles 0.5 / 0.95 / 0.99 / max of ok operations, per kind.
//!
//! The network side is fed by whoever moves messages, through a [`NetTally`]
//! (message by message, so thousands of simulated runs keep no journal) or
//! from a journal of [`NetEvent`]s.

use crate::history::{History, OpKind, Operation, Outcome};
use crate::read_lag::ReadLagStats;
use crate::workload::is_client;
use gcounter_core::Time;
use serde::Serialize;

/// Counts of operations by outcome.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OpCounts {
    pub count: u64,
    pub ok: u64,
    pub info: u64,
    pub fail: u64,
}

impl OpCounts {
    fn record(&mut self, outcome: Option<Outcome>) {
        self.count += 1;
        match outcome {
            Some(Outcome::Ok) => self.ok += 1,
            Some(Outcome::Fail) => self.fail += 1,
            Some(Outcome::Info) | None => self.info += 1,
        }
    }

    pub fn merge(&mut self, other: &OpCounts) {
        self.count += other.count;
        self.ok += other.ok;
        self.info += other.info;
        self.fail += other.fail;
    }
}

/// Operation counts overall and per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OpStats {
    pub all: OpCounts,
    pub add: OpCounts,
    pub read: OpCounts,
}

impl OpStats {
    pub fn of(history: &History) -> Self {
        let mut s = OpStats::default();
        for op in history.iter() {
            s.record(op);
        }
        s
    }

    /// Counts one operation.
    pub fn record(&mut self, op: &Operation) {
        self.all.record(op.outcome);
        match op.kind {
            OpKind::Add => self.add.record(op.outcome),
            OpKind::Read => self.read.record(op.outcome),
        }
    }

    pub fn merge(&mut self, other: &OpStats) {
        self.all.merge(&other.all);
        self.add.merge(&other.add);
        self.read.merge(&other.read);
    }
}

/// Maelstrom's `basic-stats` for one class of traffic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetCounter {
    pub send_count: u64,
    pub recv_count: u64,
    /// Message ids seen, as a bitset (ids are dense).
    ids: Vec<u64>,
    unique: u64,
}

impl NetCounter {
    fn see(&mut self, id: u64) {
        let (word, bit) = ((id / 64) as usize, id % 64);
        if word >= self.ids.len() {
            self.ids.resize(word + 1, 0);
        }
        if self.ids[word] >> bit & 1 == 0 {
            self.ids[word] |= 1 << bit;
            self.unique += 1;
        }
    }

    /// Distinct messages.
    pub fn msg_count(&self) -> u64 {
        self.unique
    }
}

/// Counts messages as they are sent and received. Every message needs an
/// id, unique within the test (a counter from 0 is best: ids are kept in a
/// bitset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetTally {
    pub all: NetCounter,
    pub clients: NetCounter,
    pub servers: NetCounter,
}

impl NetTally {
    /// `all`, and the class of traffic a message from `src` to `dest` is in.
    fn counters(&mut self, src: &str, dest: &str) -> [&mut NetCounter; 2] {
        let class = if is_client(src) || is_client(dest) {
            &mut self.clients
        } else {
            &mut self.servers
        };
        [&mut self.all, class]
    }

    pub fn sent(&mut self, id: u64, src: &str, dest: &str) {
        for c in self.counters(src, dest) {
            c.send_count += 1;
            c.see(id);
        }
    }

    pub fn received(&mut self, id: u64, src: &str, dest: &str) {
        for c in self.counters(src, dest) {
            c.recv_count += 1;
            c.see(id);
        }
    }

    /// A tally of a journal.
    pub fn from_events<'a>(events: impl IntoIterator<Item = &'a NetEvent>) -> Self {
        let mut t = NetTally::default();
        for e in events {
            match e.kind {
                NetEventKind::Send => t.sent(e.id, &e.src, &e.dest),
                NetEventKind::Recv => t.received(e.id, &e.src, &e.dest),
            }
        }
        t
    }
}

/// Whether a journal entry is a send or a receive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum NetEventKind {
    Send,
    Recv,
}

/// One entry of a network journal (Maelstrom's `net-journal`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetEvent {
    #[serde(rename = "time_ns", serialize_with = "crate::nanos::ser")]
    pub time: Time,
    #[serde(rename = "type")]
    pub kind: NetEventKind,
    pub id: u64,
    pub src: String,
    pub dest: String,
}

/// One class of traffic in a report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct NetCounts {
    pub send_count: u64,
    pub recv_count: u64,
    pub msg_count: u64,
    /// Unique messages per client operation (absent without operations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub msgs_per_op: Option<f64>,
}

impl NetCounts {
    fn of(c: &NetCounter, ops: u64) -> Self {
        let msg_count = c.msg_count();
        NetCounts {
            send_count: c.send_count,
            recv_count: c.recv_count,
            msg_count,
            msgs_per_op: (ops > 0).then(|| msg_count as f64 / ops as f64),
        }
    }

    pub fn merge(&mut self, other: &NetCounts) {
        self.send_count += other.send_count;
        self.recv_count += other.recv_count;
        self.msg_count += other.msg_count;
    }
}

/// Network statistics, Maelstrom's `:net` map.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct NetStats {
    pub all: NetCounts,
    pub clients: NetCounts,
    pub servers: NetCounts,
}

impl NetStats {
    pub fn of(tally: &NetTally, ops: u64) -> Self {
        let clients = NetCounts::of(&tally.clients, ops);
        NetStats {
            all: NetCounts::of(&tally.all, ops),
            // Maelstrom gives msgs-per-op for all and servers only.
            clients: NetCounts {
                msgs_per_op: None,
                ..clients
            },
            servers: NetCounts::of(&tally.servers, ops),
        }
    }
}

/// Latency quantiles, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quantiles {
    pub count: usize,
    #[serde(rename = "0.5")]
    pub p50: f64,
    #[serde(rename = "0.95")]
    pub p95: f64,
    #[serde(rename = "0.99")]
    pub p99: f64,
    #[serde(rename = "1")]
    pub max: f64,
}

impl Quantiles {
    /// Quantiles of latencies in nanoseconds (sorted in place), by nearest
    /// rank. `None` if there are none.
    pub fn of(latencies_ns: &mut [u64]) -> Option<Self> {
        if latencies_ns.is_empty() {
            return None;
        }
        latencies_ns.sort_unstable();
        let n = latencies_ns.len();
        let at = |q: f64| {
            let rank = (q * n as f64).ceil() as usize;
            latencies_ns[rank.clamp(1, n) - 1] as f64 / 1e6
        };
        Some(Quantiles {
            count: n,
            p50: at(0.5),
            p95: at(0.95),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

/// Latencies of ok operations, per kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencyStats {
    pub add: Option<Quantiles>,
    pub read: Option<Quantiles>,
}

/// The latencies, in nanoseconds, of `history`'s ok operations of `kind`.
pub fn ok_latencies_ns(history: &History, kind: OpKind) -> Vec<u64> {
    history
        .iter()
        .filter(|op| op.kind == kind && op.outcome == Some(Outcome::Ok))
        .filter_map(|op| op.latency())
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .collect()
}

/// Latencies of ok operations pooled over many runs, in a fixed amount of
/// memory whatever the number of runs or operations: an HDR histogram per
/// kind, three significant digits (quantiles within 0.1 % of the exact
/// nearest-rank ones).
#[derive(Debug, Clone)]
pub struct LatencyHistograms {
    add: hdrhistogram::Histogram<u64>,
    read: hdrhistogram::Histogram<u64>,
}

impl Default for LatencyHistograms {
    fn default() -> Self {
        LatencyHistograms {
            add: crate::hdr::new(),
            read: crate::hdr::new(),
        }
    }
}

impl LatencyHistograms {
    /// Adds `history`'s ok operations.
    pub fn record(&mut self, history: &History) {
        for op in history.iter() {
            self.record_op(op);
        }
    }

    /// Adds one operation, if it is ok.
    pub fn record_op(&mut self, op: &Operation) {
        if op.outcome != Some(Outcome::Ok) {
            return;
        }
        let Some(latency) = op.latency() else {
            return;
        };
        let ns = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let h = match op.kind {
            OpKind::Add => &mut self.add,
            OpKind::Read => &mut self.read,
        };
        crate::hdr::record(h, ns);
    }

    /// Adds another set of histograms.
    pub fn merge(&mut self, other: &LatencyHistograms) {
        for (h, o) in [(&mut self.add, &other.add), (&mut self.read, &other.read)] {
            for v in o.iter_recorded() {
                let (ns, n) = (v.value_iterated_to(), v.count_at_value());
                if h.record_n(ns, n).is_err() {
                    h.saturating_record_n(ns, n);
                }
            }
        }
    }

    /// The quantiles, in milliseconds.
    pub fn stats(&self) -> LatencyStats {
        let of = |h: &hdrhistogram::Histogram<u64>| {
            (!h.is_empty()).then(|| {
                // Each value stands for its bucket: report the bucket's
                // highest value, as hdrhistogram does for its maximum.
                let at = |q: f64| h.value_at_quantile(q) as f64 / 1e6;
                Quantiles {
                    count: usize::try_from(h.len()).unwrap_or(usize::MAX),
                    p50: at(0.5),
                    p95: at(0.95),
                    p99: at(0.99),
                    max: h.max() as f64 / 1e6,
                }
            })
        };
        LatencyStats {
            add: of(&self.add),
            read: of(&self.read),
        }
    }
}

impl LatencyStats {
    pub fn of(history: &History) -> Self {
        LatencyStats {
            add: Quantiles::of(&mut ok_latencies_ns(history, OpKind::Add)),
            read: Quantiles::of(&mut ok_latencies_ns(history, OpKind::Read)),
        }
    }
}

/// Everything Maelstrom's `stats`, `net` and `perf` checkers report, in
/// numbers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Stats {
    pub ops: OpStats,
    pub net: NetStats,
    pub latency_ms: LatencyStats,
    /// How far behind the successful reads were (the runners track it as
    /// they go; `None` from a history alone, or without a read).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_lag: Option<ReadLagStats>,
}

impl Stats {
    pub fn compute(history: &History, tally: &NetTally) -> Self {
        let ops = OpStats::of(history);
        Stats {
            ops,
            net: NetStats::of(tally, ops.all.count),
            latency_ms: LatencyStats::of(history),
            read_lag: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Invocation;
    use std::time::Duration;

    #[test]
    fn pooled_quantiles_are_within_a_tenth_of_a_percent_of_the_exact_ones() {
        // Exponential latencies, 1 us to seconds, as a slow network gives.
        let seed = 11;
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut h = History::default();
        for _ in 0..50_000 {
            let ms = -50.0 * (1.0 - rng.f64()).ln();
            let op = h.invoke(Invocation::add("c1", "n0", 1, Duration::ZERO));
            h.complete(
                op,
                Outcome::Ok,
                None,
                None,
                Duration::from_secs_f64(ms / 1000.0),
            );
        }
        let exact = LatencyStats::of(&h).add.expect("adds");
        let mut pooled = LatencyHistograms::default();
        pooled.record(&h);
        let got = pooled.stats().add.expect("adds");
        assert_eq!(got.count, exact.count);
        for (name, e, g) in [
            ("p50", exact.p50, got.p50),
            ("p95", exact.p95, got.p95),
            ("p99", exact.p99, got.p99),
            ("max", exact.max, got.max),
        ] {
            assert!(
                (g - e).abs() <= e * 0.001,
                "seed {seed}: {name} {g} against {e}"
            );
        }
    }

    #[test]
    fn traffic_is_classed_like_maelstrom() {
        let mut t = NetTally::default();
        t.sent(0, "c1", "n0");
        t.received(0, "c1", "n0");
        t.sent(1, "n0", "seq-kv");
        t.received(1, "n0", "seq-kv");
        t.sent(2, "n0", "n1"); // dropped by a partition: never received
        let s = NetStats::of(&t, 1);
        assert_eq!(
            (s.all.send_count, s.all.recv_count, s.all.msg_count),
            (3, 2, 3)
        );
        assert_eq!((s.clients.send_count, s.clients.msg_count), (1, 1));
        assert_eq!(
            (
                s.servers.send_count,
                s.servers.recv_count,
                s.servers.msg_count
            ),
            (2, 1, 2)
        );
        assert_eq!(s.all.msgs_per_op, Some(3.0));
        assert_eq!(s.servers.msgs_per_op, Some(2.0));
        let journal = [
            NetEvent {
                time: Duration::ZERO,
                kind: NetEventKind::Send,
                id: 0,
                src: "c1".into(),
                dest: "n0".into(),
            },
            NetEvent {
                time: Duration::ZERO,
                kind: NetEventKind::Recv,
                id: 0,
                src: "c1".into(),
                dest: "n0".into(),
            },
        ];
        assert_eq!(NetTally::from_events(&journal).all.msg_count(), 1);
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().map(|ms| ms * 1_000_000).collect();
        let q = Quantiles::of(&mut v).unwrap();
        assert_eq!(
            (q.count, q.p50, q.p95, q.p99, q.max),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
        assert_eq!(Quantiles::of(&mut []), None);
        let q = Quantiles::of(&mut [7_000_000]).unwrap();
        assert_eq!((q.p50, q.max), (7.0, 7.0));
    }

    #[test]
    fn ops_are_counted_by_outcome_and_kind() {
        let mut h = History::default();
        let a = h.invoke(Invocation::add("c1", "n0", 1, Duration::ZERO));
        h.complete(a, Outcome::Ok, None, None, Duration::from_millis(3));
        let r = h.invoke(Invocation::read("c1", "n0", false, Duration::ZERO));
        h.complete(r, Outcome::Fail, None, None, Duration::from_millis(1));
        h.invoke(Invocation::read("c2", "n1", false, Duration::ZERO));
        let s = Stats::compute(&h, &NetTally::default());
        assert_eq!(
            s.ops.all,
            OpCounts {
                count: 3,
                ok: 1,
                info: 1,
                fail: 1
            }
        );
        assert_eq!(
            s.ops.read,
            OpCounts {
                count: 2,
                ok: 0,
                info: 1,
                fail: 1
            }
        );
        assert_eq!(s.latency_ms.add.unwrap().max, 3.0);
        assert_eq!(s.latency_ms.read, None);
    }
}
