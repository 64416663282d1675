//! The history as a run records it, in a bounded amount of memory when
//! asked to.
//!
//! Unbounded ([`Journal::new`] with no cap: the simulator's default), it
//! is a [`History`] of every operation. Bounded, it keeps in memory:
//!
//! - the first `keep` operations, in full: what an explanation reads
//!   beside the message trace, itself cut at its first messages;
//! - the operations still outstanding, at most one per client;
//! - the final-phase operations (one per client);
//! - a [`Ledger`] of every other operation, folded as it completes: all
//!   the checker and the statistics need;
//! - an evenly spaced sample of at most [`SAMPLE_CAP`] operations for
//!   the page's plots (one in `stride`, `stride` doubling as it fills).
//!
//! Every operation also goes to an outbox as it completes (and the
//! outstanding ones at the end), which a driver drains into
//! `history.jsonl`: the file has every operation, in the order they
//! completed. So memory does not grow with the length of a run.

use crate::history::{History, Invocation, OpError, Operation, Outcome};
use crate::ledger::Ledger;
use crate::stats::OpStats;
use gcounter_core::Time;
use std::collections::BTreeMap;

/// Operations kept in full at the start of a bounded journal.
pub const DEFAULT_KEEP: usize = 50_000;

/// The most operations the plot sample holds.
pub const SAMPLE_CAP: usize = 20_000;

/// See the module docs.
#[derive(Debug)]
pub struct Journal {
    history: History,
    bound: Option<Box<Bound>>,
}

#[derive(Debug)]
struct Bound {
    keep: usize,
    /// The index the next operation gets.
    next: usize,
    /// Outstanding operations past the first `keep`.
    open: BTreeMap<usize, Operation>,
    /// Completed operations let go of, but for the final phase's.
    folded: Ledger,
    dropped: u64,
    outbox: Vec<Operation>,
    sample: Sample,
}

/// One in `stride` of the operations offered, by order of completion.
#[derive(Debug, Default)]
struct Sample {
    stride: u64,
    seen: u64,
    ops: Vec<(u64, Operation)>,
}

impl Sample {
    fn offer(&mut self, op: &Operation) {
        let n = self.seen;
        self.seen += 1;
        if n % self.stride != 0 {
            return;
        }
        self.ops.push((n, op.clone()));
        if self.ops.len() > SAMPLE_CAP {
            self.stride *= 2;
            let stride = self.stride;
            self.ops.retain(|(n, _)| n % stride == 0);
        }
    }
}

/// What a bounded journal let go of, and what stands in for it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Spilled {
    /// Operations kept in full at the start.
    pub keep: usize,
    /// Operations not in the history (`history.jsonl` has them).
    pub dropped: u64,
    /// One in `stride` of all operations, evenly spaced in order of
    /// completion, for the plots.
    pub sample: Vec<Operation>,
    pub stride: u64,
    /// When the last operation ended.
    pub end: Time,
}

/// A finished journal.
#[derive(Debug)]
pub struct Journaled {
    /// Every operation, or (bounded) those kept.
    pub history: History,
    /// The fold of every operation, latencies included.
    pub ledger: Ledger,
    /// Operations not yet taken from the outbox (bounded only).
    pub unwritten: Vec<Operation>,
    /// `None` when the history has every operation.
    pub spilled: Option<Spilled>,
}

impl Journal {
    /// A journal that keeps everything (`keep` `None`), or the first
    /// `keep` operations and a fold of the rest.
    pub fn new(keep: Option<usize>) -> Self {
        Journal {
            history: History::default(),
            bound: keep.map(|keep| {
                Box::new(Bound {
                    keep,
                    next: 0,
                    open: BTreeMap::new(),
                    folded: Ledger::timed(),
                    dropped: 0,
                    outbox: Vec::new(),
                    sample: Sample {
                        stride: 1,
                        ..Sample::default()
                    },
                })
            }),
        }
    }

    /// Records an invocation and returns its index.
    pub fn invoke(&mut self, inv: Invocation) -> usize {
        let Some(b) = &mut self.bound else {
            return self.history.invoke(inv);
        };
        let index = b.next;
        b.next += 1;
        if index < b.keep {
            // The first `keep` are `history.ops[0..keep]`: nothing else is
            // pushed there before they are all in.
            return self.history.invoke(inv);
        }
        b.open.insert(index, Operation::invoked(index, inv));
        index
    }

    /// Records the completion of operation `index`.
    pub fn complete(
        &mut self,
        index: usize,
        outcome: Outcome,
        value: Option<i64>,
        error: Option<OpError>,
        at: Time,
    ) {
        let Some(b) = &mut self.bound else {
            return self.history.complete(index, outcome, value, error, at);
        };
        if index < b.keep {
            self.history.complete(index, outcome, value, error, at);
            if let Some(op) = self.history.ops.get(index) {
                b.sample.offer(op);
                b.outbox.push(op.clone());
            }
            return;
        }
        let Some(mut op) = b.open.remove(&index) else {
            return;
        };
        op.outcome = Some(outcome);
        op.value = value;
        op.error = error;
        op.complete = Some(at);
        b.sample.offer(&op);
        if op.final_read {
            self.history.ops.push(op.clone());
        } else {
            b.folded.fold(&op);
            b.dropped += 1;
        }
        b.outbox.push(op);
    }

    /// The operations kept (all of them when unbounded).
    pub fn history(&self) -> &History {
        &self.history
    }

    /// The latest operation of `client`.
    pub fn last_of(&self, client: &str) -> Option<&Operation> {
        let open = self
            .bound
            .as_ref()
            .and_then(|b| b.open.values().rev().find(|op| op.client == client));
        let kept = self.history.ops.iter().rev().find(|op| op.client == client);
        match (open, kept) {
            (Some(a), Some(b)) => Some(if a.index > b.index { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Operation counts so far, and how many are outstanding.
    pub fn counts(&self) -> (OpStats, u64) {
        let mut stats = OpStats::of(&self.history);
        let mut pending = self
            .history
            .iter()
            .filter(|op| op.outcome.is_none())
            .count() as u64;
        if let Some(b) = &self.bound {
            stats.merge(&b.folded.ops);
            for op in b.open.values() {
                stats.record(op);
            }
            pending += b.open.len() as u64;
        }
        (stats, pending)
    }

    /// The operations completed since the last call (bounded only).
    pub fn take_completed(&mut self) -> Vec<Operation> {
        self.bound
            .as_mut()
            .map(|b| std::mem::take(&mut b.outbox))
            .unwrap_or_default()
    }

    /// The end of the run: outstanding operations join the history
    /// (never completed), and everything is folded.
    pub fn finish(self) -> Journaled {
        let Journal { mut history, bound } = self;
        let Some(b) = bound else {
            let ledger = Ledger::timed().with(history.iter());
            return Journaled {
                history,
                ledger,
                unwritten: Vec::new(),
                spilled: None,
            };
        };
        let Bound {
            keep,
            open,
            folded,
            dropped,
            mut outbox,
            mut sample,
            ..
        } = *b;
        for op in history.ops.iter().filter(|op| op.outcome.is_none()) {
            sample.offer(op);
            outbox.push(op.clone());
        }
        for (_, op) in open {
            sample.offer(&op);
            outbox.push(op.clone());
            history.ops.push(op);
        }
        // The final phase's, as they completed: back in history order.
        let tail = keep.min(history.ops.len());
        history.ops[tail..].sort_by_key(|op| op.index);
        let mut ledger = Ledger::timed().with(history.ops.iter().take(keep));
        ledger.merge(&folded);
        ledger = ledger.with(history.ops.iter().skip(keep));
        let spilled = (dropped > 0).then(|| Spilled {
            keep,
            dropped,
            stride: sample.stride,
            end: ledger.end,
            sample: sample.ops.into_iter().map(|(_, op)| op).collect(),
        });
        Journaled {
            history,
            ledger,
            unwritten: outbox,
            spilled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checker::{check, check_ledger};
    use crate::history::OpKind;
    use std::time::Duration;

    /// The same random operations into an unbounded and a bounded journal.
    fn both(seed: u64, n: u64, keep: usize) -> (Journaled, Journaled, Vec<Operation>) {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut all = Journal::new(None);
        let mut few = Journal::new(Some(keep));
        let mut written = Vec::new();
        let clients = ["c1", "c2", "c3"];
        let mut open: [Option<usize>; 3] = [None; 3];
        for i in 0..n {
            let t = Duration::from_millis(i);
            let c = rng.usize(0..3);
            let final_read = i + 3 >= n;
            match open[c].take() {
                Some(j) if !final_read => {
                    let outcome =
                        [Outcome::Ok, Outcome::Ok, Outcome::Info, Outcome::Fail][rng.usize(0..4)];
                    let value = Some(i as i64);
                    all.complete(j, outcome, value, None, t);
                    few.complete(j, outcome, value, None, t);
                }
                _ => {
                    let (kind, delta) = if final_read || rng.bool() {
                        (OpKind::Read, None)
                    } else {
                        (OpKind::Add, Some(rng.i64(-5..=4)))
                    };
                    let inv = Invocation {
                        client: clients[c],
                        node: "n0",
                        kind,
                        delta,
                        final_read,
                        at: t,
                    };
                    let (a, b) = (all.invoke(inv), few.invoke(inv));
                    assert_eq!(a, b);
                    open[c] = Some(a);
                }
            }
            written.extend(few.take_completed());
        }
        let (all, few) = (all.finish(), few.finish());
        written.extend(few.unwritten.iter().cloned());
        (all, few, written)
    }

    #[test]
    fn a_bounded_journal_checks_and_counts_as_the_whole_history_does() {
        let seed = fastrand::u64(..);
        eprintln!("seed {seed}");
        let (all, few, written) = both(seed, 5_000, 100);
        assert!(few.history.len() < 120, "{}", few.history.len());
        let spilled = few.spilled.as_ref().expect("spilled");
        assert!(spilled.sample.len() <= SAMPLE_CAP);
        assert_eq!(check_ledger(&few.ledger), check(&all.history));
        assert_eq!(few.ledger.ops, OpStats::of(&all.history));
        assert_eq!(
            few.ledger.latency.as_ref().map(|l| l.stats()),
            all.ledger.latency.as_ref().map(|l| l.stats())
        );
        // The outbox had every operation once, as it ended.
        let mut written = written;
        written.sort_by_key(|op| op.index);
        assert_eq!(written, all.history.ops);
    }

    #[test]
    fn the_sample_stays_evenly_spaced_and_bounded() {
        let mut s = Sample {
            stride: 1,
            ..Sample::default()
        };
        let mut h = History::default();
        let i = h.invoke(Invocation::read("c1", "n0", false, Time::ZERO));
        for _ in 0..(SAMPLE_CAP as u64 * 5 + 7) {
            s.offer(&h.ops[i]);
        }
        assert_eq!(s.stride, 8);
        assert!(s.ops.len() <= SAMPLE_CAP);
        assert!(s.ops.iter().all(|(n, _)| n % 8 == 0));
    }
}
