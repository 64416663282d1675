//! What the checker and the statistics need from a history of any length:
//! the acknowledged sum, the indeterminate deltas (as counts per delta),
//! the final reads, the clients, the operation counts and the latencies
//! (HDR histograms). It grows with the number of clients and of distinct
//! deltas, never with the number of operations, so a runner can fold
//! operations into it as they complete and let them go
//! ([`crate::journal`]).

use crate::history::{History, OpKind, Operation, Outcome};
use crate::stats::{LatencyHistograms, LatencyStats, NetStats, NetTally, OpStats, Stats};
use gcounter_core::Time;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// One client's final read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FinalRead {
    pub client: String,
    pub node: String,
    pub value: i64,
}

/// The fold of some operations. See the module docs.
#[derive(Debug, Clone, Default)]
pub struct Ledger {
    /// S: the sum of the deltas of acknowledged adds (signed under
    /// pn-counter; `i128`, so no sum of `i64` deltas can wrap).
    pub definite_sum: i128,
    /// How much of S is acknowledged decrements, as a positive number.
    pub definite_decrements: i128,
    /// The deltas of indeterminate adds (`info` or never completed):
    /// delta → how many adds carried it.
    pub indeterminate: BTreeMap<i64, u64>,
    /// Every successful final read, in the order folded.
    pub final_reads: Vec<FinalRead>,
    pub clients: BTreeSet<String>,
    pub ops: OpStats,
    /// Latencies of ok operations, in a ledger made [`Ledger::timed`]
    /// (the checker alone needs none, and the model checker checks
    /// millions of histories).
    pub latency: Option<LatencyHistograms>,
    /// The latest completion (or invocation, for one never completed).
    pub end: Time,
}

impl Ledger {
    /// The fold of `ops`, without latencies.
    pub fn of<'a>(ops: impl IntoIterator<Item = &'a Operation>) -> Self {
        Ledger::default().with(ops)
    }

    /// An empty ledger that keeps latencies.
    pub fn timed() -> Self {
        Ledger {
            latency: Some(LatencyHistograms::default()),
            ..Ledger::default()
        }
    }

    /// This ledger with `ops` folded in.
    pub fn with<'a>(mut self, ops: impl IntoIterator<Item = &'a Operation>) -> Self {
        for op in ops {
            self.fold(op);
        }
        self
    }

    /// Adds one operation.
    pub fn fold(&mut self, op: &Operation) {
        self.ops.record(op);
        if let Some(l) = &mut self.latency {
            l.record_op(op);
        }
        if !self.clients.contains(&op.client) {
            self.clients.insert(op.client.clone());
        }
        self.end = self.end.max(op.complete.unwrap_or(op.invoke));
        match op.kind {
            OpKind::Add => {
                let delta = op.delta.unwrap_or(0);
                match op.outcome {
                    Some(Outcome::Ok) => {
                        self.definite_sum += i128::from(delta);
                        self.definite_decrements += i128::from(delta.min(0)).abs();
                    }
                    Some(Outcome::Fail) => {}
                    Some(Outcome::Info) | None => {
                        *self.indeterminate.entry(delta).or_default() += 1
                    }
                }
            }
            OpKind::Read => {
                if let (true, Some(Outcome::Ok), Some(value)) =
                    (op.final_read, op.outcome, op.value)
                {
                    self.final_reads.push(FinalRead {
                        client: op.client.clone(),
                        node: op.node.clone(),
                        value,
                    });
                }
            }
        }
    }

    /// Adds another fold (of operations folded after this one's).
    pub fn merge(&mut self, other: &Ledger) {
        self.definite_sum += other.definite_sum;
        self.definite_decrements += other.definite_decrements;
        for (&d, &k) in &other.indeterminate {
            *self.indeterminate.entry(d).or_default() += k;
        }
        self.final_reads.extend(other.final_reads.iter().cloned());
        self.clients.extend(other.clients.iter().cloned());
        self.ops.merge(&other.ops);
        match (&mut self.latency, &other.latency) {
            (Some(l), Some(o)) => l.merge(o),
            (None, Some(o)) => self.latency = Some(o.clone()),
            _ => {}
        }
        self.end = self.end.max(other.end);
    }

    /// The statistics: exact latency quantiles when `history` has every
    /// operation folded here (as before there was a ledger), the
    /// histograms' otherwise.
    pub fn stats(&self, history: &History, tally: &NetTally) -> Stats {
        let whole = self.ops.all.count == history.len() as u64;
        let latency_ms = match &self.latency {
            Some(l) if !whole => l.stats(),
            _ => LatencyStats::of(history),
        };
        Stats {
            ops: self.ops,
            net: NetStats::of(tally, self.ops.all.count),
            latency_ms,
            read_lag: None,
        }
    }

    /// How many adds are indeterminate.
    pub fn indeterminate_adds(&self) -> u64 {
        self.indeterminate.values().sum()
    }

    /// Every indeterminate delta, one per add.
    pub fn indeterminate_deltas(&self) -> impl Iterator<Item = i64> + '_ {
        self.indeterminate
            .iter()
            .flat_map(|(&d, &k)| std::iter::repeat_n(d, usize::try_from(k).unwrap_or(usize::MAX)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::Invocation;
    use std::time::Duration;

    #[test]
    fn a_fold_in_two_parts_is_the_fold_of_the_whole() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut h = History::default();
        for i in 0..200u64 {
            let t = Duration::from_millis(i);
            let (kind, delta) = if rng.bool() {
                (OpKind::Add, Some(rng.i64(-5..=4)))
            } else {
                (OpKind::Read, None)
            };
            let client = format!("c{}", rng.u8(1..=3));
            let j = h.invoke(Invocation {
                client: &client,
                node: "n0",
                kind,
                delta,
                final_read: i >= 190,
                at: t,
            });
            let outcome = [Outcome::Ok, Outcome::Info, Outcome::Fail][rng.usize(0..3)];
            if rng.u8(0..10) > 0 {
                let value = (kind == OpKind::Read).then_some(i as i64);
                h.complete(
                    j,
                    outcome,
                    value,
                    None,
                    t + Duration::from_micros(rng.u64(1..900)),
                );
            }
        }
        let whole = Ledger::timed().with(h.iter());
        let mut parts = Ledger::timed().with(&h.ops[..77]);
        parts.merge(&Ledger::timed().with(&h.ops[77..]));
        assert_eq!(parts.definite_sum, whole.definite_sum);
        assert_eq!(parts.definite_decrements, whole.definite_decrements);
        assert_eq!(parts.indeterminate, whole.indeterminate);
        assert_eq!(parts.final_reads, whole.final_reads);
        assert_eq!(parts.clients, whole.clients);
        assert_eq!(parts.ops, whole.ops);
        assert_eq!(
            parts.latency.as_ref().map(|l| l.stats()),
            whole.latency.as_ref().map(|l| l.stats())
        );
        assert_eq!(parts.end, whole.end);
        assert_eq!(
            parts.indeterminate_deltas().count() as u64,
            whole.indeterminate_adds()
        );
    }
}
