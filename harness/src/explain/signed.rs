//! Under `pn-counter` a loss goes either way: an erased increment leaves
//! a final read too low, an erased decrement leaves it too high. This
//! says which, by how much, what the overwrites erased of each, and, for
//! nodes that gossip their counts, where a node kept a higher total for a
//! slot than the one its owner had already sent it: the mark of a merge
//! by the maximum of a signed total, which erases every decrement.

use super::Overwrite;
use crate::checker::CheckResult;
use crate::history::{History, OpKind, Outcome};
use crate::testcore::{Trace, TraceEntry};
use gcounter_core::Time;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Which way the wrong final reads are off, and why where the trace says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SignedLoss {
    /// The acknowledged adds of each sign: how many, and their sum.
    pub acknowledged_increments: (usize, i64),
    pub acknowledged_decrements: (usize, i64),
    /// Final reads below every acceptable value, and the most by which
    /// one is below the lowest: acknowledged increments it lacks.
    pub too_low: usize,
    pub increments_erased: u64,
    /// Final reads above every acceptable value, and the most by which
    /// one is above the highest: acknowledged decrements it lacks (or
    /// increments counted twice).
    pub too_high: usize,
    pub decrements_erased: u64,
    /// What the KV overwrites erased, by sign of the changes erased.
    pub overwritten_increments: i64,
    pub overwritten_decrements: i64,
    /// Gossip that carried a slot's older, higher total after its owner's
    /// lower one had arrived (the first few).
    pub kept_higher: Vec<KeptHigher>,
}

/// A node that had its peer's lower total for a slot and went on
/// spreading a higher one its owner had left behind.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeptHigher {
    pub slot: String,
    pub owner: String,
    pub node: String,
    /// The owner's total it had received, when, and the message.
    pub received: i64,
    pub received_s: f64,
    pub received_id: u64,
    /// The higher total it then sent, when, and the message.
    pub sent: i64,
    pub sent_s: f64,
    pub sent_id: u64,
}

/// The account; `None` unless some add is negative (a g-counter run).
pub(super) fn signed_loss(
    history: &History,
    check: &CheckResult,
    trace: &Trace,
    overwrites: &[Overwrite],
) -> Option<SignedLoss> {
    let adds = || {
        history
            .iter()
            .filter(|op| op.kind == OpKind::Add)
            .filter_map(|op| op.delta)
    };
    if !adds().any(|d| d < 0) {
        return None;
    }
    let acknowledged = |down: bool| {
        let deltas: Vec<i64> = history
            .iter()
            .filter(|op| op.kind == OpKind::Add && op.outcome == Some(Outcome::Ok))
            .filter_map(|op| op.delta)
            .filter(|&d| (d < 0) == down && d != 0)
            .collect();
        (deltas.len(), deltas.iter().sum())
    };
    let lowest = check
        .acceptable
        .first()
        .map_or(check.definite_sum, |r| r[0]);
    let highest = check.highest();
    let below: Vec<i128> = check
        .errors
        .iter()
        .map(|r| lowest - i128::from(r.value))
        .filter(|&d| d > 0)
        .collect();
    let above: Vec<i128> = check
        .errors
        .iter()
        .map(|r| i128::from(r.value) - highest)
        .filter(|&d| d > 0)
        .collect();
    let most = |v: &[i128]| u64::try_from(v.iter().copied().max().unwrap_or(0)).unwrap_or(u64::MAX);
    let erased = |down: bool| -> i64 {
        overwrites
            .iter()
            .flat_map(|o| &o.erased)
            .filter_map(|c| c.increment)
            .filter(|&i| (i < 0) == down)
            .sum()
    };
    Some(SignedLoss {
        acknowledged_increments: acknowledged(false),
        acknowledged_decrements: acknowledged(true),
        too_low: below.len(),
        increments_erased: most(&below),
        too_high: above.len(),
        decrements_erased: most(&above),
        overwritten_increments: erased(false),
        overwritten_decrements: erased(true),
        kept_higher: kept_higher(trace, 3),
    })
}

/// A slot's signed total in a gossip body: `counts` less `decrements`.
fn totals(body: &Value) -> BTreeMap<&str, i64> {
    let mut out: BTreeMap<&str, i64> = BTreeMap::new();
    for (field, sign) in [("counts", 1), ("decrements", -1)] {
        let Some(map) = body.get(field).and_then(Value::as_object) else {
            continue;
        };
        for (slot, n) in map {
            let n = n.as_i64().unwrap_or(0);
            *out.entry(slot.as_str()).or_default() += sign * n;
        }
    }
    out
}

fn owner(slot: &str) -> &str {
    slot.split('#').next().unwrap_or(slot)
}

/// Gossip from a node that had already received its owner's lower total
/// for a slot and then sent a higher total the owner had not sent since.
/// A node that merges each half by its maximum only ever holds a state
/// its owner sent at or after the last one it received, so this never
/// happens to `gossip`; it is what `gossip-max` does.
fn kept_higher(trace: &Trace, max: usize) -> Vec<KeptHigher> {
    let gossip: Vec<&TraceEntry> = trace
        .entries
        .iter()
        .filter(|e| matches!(e.kind(), "gossip" | "gossip_ack"))
        .collect();
    // Per slot, the totals its owner sent, in the order sent.
    let mut by_owner: HashMap<&str, Vec<(Time, i64)>> = HashMap::new();
    for e in &gossip {
        for (slot, t) in totals(&e.body) {
            if owner(slot) == e.src {
                by_owner.entry(slot).or_default().push((e.sent, t));
            }
        }
    }
    // Deliveries of owners' gossip and every node's sends, by time; at a
    // tie the delivery first (a node's reply to a message comes after it).
    enum Event<'a> {
        Received(&'a TraceEntry),
        Sent(&'a TraceEntry),
    }
    let mut events: Vec<(Time, u8, Event<'_>)> = Vec::new();
    for e in &gossip {
        if let Some(at) = e.delivered {
            events.push((at, 0, Event::Received(e)));
        }
        events.push((e.sent, 1, Event::Sent(e)));
    }
    events.sort_by_key(|(t, order, _)| (*t, *order));
    // Per (node, slot): the owner's latest total it has received.
    let mut has: HashMap<(&str, &str), (&TraceEntry, i64)> = HashMap::new();
    let mut found = Vec::new();
    for (_, _, event) in events {
        match event {
            Event::Received(e) => {
                for (slot, t) in totals(&e.body) {
                    if owner(slot) != e.src {
                        continue;
                    }
                    let newer = has
                        .get(&(e.dest.as_str(), slot))
                        .is_none_or(|(old, _)| old.sent <= e.sent);
                    if newer {
                        has.insert((e.dest.as_str(), slot), (e, t));
                    }
                }
            }
            Event::Sent(e) => {
                for (slot, t) in totals(&e.body) {
                    let Some(&(got, low)) = has.get(&(e.src.as_str(), slot)) else {
                        continue;
                    };
                    let since = by_owner.get(slot).map_or(&[][..], |v| {
                        let from = v.partition_point(|(sent, _)| *sent < got.sent);
                        &v[from..]
                    });
                    if t > low && !since.iter().any(|&(_, s)| s == t) {
                        found.push(KeptHigher {
                            slot: slot.to_string(),
                            owner: owner(slot).to_string(),
                            node: e.src.clone(),
                            received: low,
                            received_s: got.delivered.unwrap_or(got.sent).as_secs_f64(),
                            received_id: got.id,
                            sent: t,
                            sent_s: e.sent.as_secs_f64(),
                            sent_id: e.id,
                        });
                        // One per node and slot: the first shows it.
                        has.remove(&(e.src.as_str(), slot));
                        if found.len() >= max {
                            return found;
                        }
                    }
                }
            }
        }
    }
    found
}

impl SignedLoss {
    /// The lines for the terminal: which way the reads are off first.
    pub fn lines(&self, lines: &mut Vec<String>) {
        let (ni, si) = self.acknowledged_increments;
        let (nd, sd) = self.acknowledged_decrements;
        let mut parts = Vec::new();
        if self.too_high > 0 {
            parts.push(format!(
                "{} final read(s) too high, by up to {}: acknowledged decrements erased",
                self.too_high, self.decrements_erased
            ));
        }
        if self.too_low > 0 {
            parts.push(format!(
                "{} final read(s) too low, by up to {}: acknowledged increments erased",
                self.too_low, self.increments_erased
            ));
        }
        lines.push(format!(
            "why (pn-counter): {} (acknowledged: {ni} increment(s) summing to {si}, \
             {nd} decrement(s) summing to {sd})",
            parts.join("; ")
        ));
        if self.overwritten_increments != 0 || self.overwritten_decrements != 0 {
            lines.push(format!(
                "  overwrites erased {} of increments and {} of decrements",
                self.overwritten_increments, self.overwritten_decrements
            ));
        }
        for k in &self.kept_higher {
            lines.push(format!(
                "  {} had {}'s total {} for slot {} (message {}, {:.3} s) and then sent {} \
                 (message {}, {:.3} s), a higher total {} had left behind: a merge that keeps \
                 the larger of two signed totals erases the decrements between them",
                k.node,
                k.owner,
                k.received,
                k.slot,
                k.received_id,
                k.received_s,
                k.sent,
                k.sent_id,
                k.sent_s,
                k.owner
            ));
        }
    }

    /// The main cause in a few words, when the reads are too high.
    pub fn main_cause(&self) -> Option<String> {
        (self.decrements_erased > 0 && self.increments_erased == 0).then(|| {
            match self.kept_higher.is_empty() {
                true => format!("erased decrements ({})", self.decrements_erased),
                false => format!(
                    "erased decrements, max-merged signed totals ({})",
                    self.decrements_erased
                ),
            }
        })
    }
}
