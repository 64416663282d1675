//! Final reads ABOVE every acceptable value: increments counted that were
//! never acknowledged (or counted twice). The checker's `lost` is 0 for
//! such a run, so the losses' account says nothing; this one follows the
//! same lineage the other way: which nodes' changes put more into the
//! keys read than they acknowledged, and what the final read was made of.

use super::lineage::{num, read_value, KvOp, Lineage};
use super::{KeyHeld, OverCount, OverWriter};
use crate::checker::{CheckResult, FinalRead};
use crate::history::{History, OpKind, Outcome};
use serde_json::Value;
use std::collections::BTreeMap;

/// The highest final read above every acceptable value, and by how much
/// it is above the highest acceptable one.
pub fn above_acceptable(check: &CheckResult) -> Option<(&FinalRead, u64)> {
    let highest = check.acceptable.last()?[1];
    // The first of the highest, in history order (`max_by_key` keeps the
    // last of equals).
    let read = check.errors.iter().rev().max_by_key(|r| r.value)?;
    let above = u64::try_from(i128::from(read.value) - highest).ok()?;
    (above > 0).then_some((read, above))
}

/// The over-count's account; `None` when no final read is too high.
pub(super) fn over_count<'a>(
    history: &History,
    check: &CheckResult,
    ops: &'a [KvOp<'a>],
    lineage: &Lineage<'a>,
) -> Option<OverCount> {
    let (read, above) = above_acceptable(check)?;
    let reads = composition(history, read, ops, lineage);
    let read_sum: Option<i64> = reads.iter().map(|k| num(&k.value)).sum();
    let added_by_node = read_sum
        .filter(|_| !reads.is_empty())
        .map(|sum| read.value - sum)
        .filter(|d| *d != 0);
    let writers = writers(history, lineage);
    let extra: i64 =
        writers.iter().map(|w| w.extra).sum::<i64>() + added_by_node.unwrap_or(0).max(0);
    Some(OverCount {
        client: read.client.clone(),
        node: read.node.clone(),
        value: read.value,
        highest_acceptable: clamp(check.highest()),
        above,
        count: check
            .errors
            .iter()
            .filter(|r| i128::from(r.value) > check.highest())
            .count(),
        explained: u64::try_from(extra).unwrap_or(0).min(above),
        reads,
        added_by_node,
        writers,
    })
}

/// What the final read read: the last answer for each key among the KV
/// reads its node made while it was open, with the node whose change
/// made the state it was served from.
fn composition<'a>(
    history: &History,
    read: &FinalRead,
    ops: &'a [KvOp<'a>],
    lineage: &Lineage<'a>,
) -> Vec<KeyHeld> {
    let Some(op) = history.iter().find(|op| {
        op.final_read
            && op.kind == OpKind::Read
            && op.client == read.client
            && op.value == Some(read.value)
    }) else {
        return Vec::new();
    };
    let Some(done) = op.complete else {
        return Vec::new();
    };
    let mut last: BTreeMap<String, KeyHeld> = BTreeMap::new();
    for r in super::final_reads::reads_during(ops, &op.node, op.invoke, done) {
        let Some(value) = read_value(r) else { continue };
        // States are numbered over the whole store: the key's value in
        // the serving state is its last change at or before it.
        let changes = lineage.of_key(r);
        let upto = changes.partition_point(|(state, _)| *state <= r.served.state);
        let written_by = upto.checked_sub(1).map(|i| changes[i].1.node().to_string());
        last.insert(
            r.key.to_string(),
            KeyHeld {
                key: r.key.to_string(),
                value,
                state: r.served.state,
                written_by,
            },
        );
    }
    last.into_values().collect()
}

/// Per node, what its changes added to the keys anybody read (each
/// change's value minus the value it replaced), against what it
/// acknowledged and what it may have added (its indeterminate adds); the
/// nodes that added more.
fn writers(history: &History, lineage: &Lineage<'_>) -> Vec<OverWriter> {
    let mut added: BTreeMap<&str, BTreeMap<&str, i64>> = BTreeMap::new();
    for ((_, key), changes) in lineage
        .changes
        .iter()
        .filter(|(k, _)| lineage.read.contains(k))
    {
        let mut before = Some(0);
        for (_, c) in changes {
            let now = c.new_value().and_then(num);
            if let (Some(b), Some(n)) = (before, now) {
                *added.entry(c.node()).or_default().entry(key).or_default() += n - b;
            }
            before = now;
        }
    }
    let sum = |node: &str, ok: bool| -> i64 {
        history
            .iter()
            .filter(|op| op.node == node && op.kind == OpKind::Add)
            .filter(|op| {
                (op.outcome == Some(Outcome::Ok)) == ok && op.outcome != Some(Outcome::Fail)
            })
            .filter_map(|op| op.delta)
            .sum()
    };
    added
        .into_iter()
        .filter_map(|(node, by_key)| {
            let total: i64 = by_key.values().sum();
            let acknowledged_sum = sum(node, true);
            let indeterminate_sum = sum(node, false);
            let allowed = acknowledged_sum.saturating_add(indeterminate_sum);
            let extra = total - allowed;
            (extra > 0).then(|| OverWriter {
                node: node.to_string(),
                added: total,
                by_key: by_key
                    .into_iter()
                    .filter(|(_, n)| *n != 0)
                    .map(|(k, n)| (k.to_string(), n))
                    .collect(),
                acknowledged_sum,
                indeterminate_sum,
                extra,
            })
        })
        .collect()
}

/// A sum of deltas as an `i64`, saturating (only adds a node should have
/// refused take it further).
pub(super) fn clamp(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// A value as a count, for a person: the number, or the JSON.
pub(super) fn shown(v: &Value) -> String {
    num(v).map_or_else(|| v.to_string(), |n| n.to_string())
}
