//! Per node accounts: what a node acknowledged against what its changes
//! added to the store.

use super::lineage::{num, KvOp, Lineage, Reads};
use super::{NodeAccount, NoopWrite, Unwritten};
use crate::checker::CheckResult;
use crate::history::{History, OpKind, Outcome};
use serde_json::Value;
use std::collections::BTreeMap;

/// Per node that changed a numeric key: what it acknowledged against what
/// its changes added; the nodes that fell short.
///
/// Only when the store as a whole holds less than was acknowledged: one
/// node's adds can reach the store inside another node's write (a count
/// merged into someone else's key), so a node whose own changes fell short
/// lost nothing unless the store's total did too.
pub(super) fn unwritten<'a>(
    history: &History,
    ops: &'a [KvOp<'a>],
    lineage: &Lineage<'a>,
    reads: &Reads<'a>,
    noops: &[NoopWrite],
) -> Vec<Unwritten> {
    let acknowledged = |node: &str| -> i64 {
        history
            .iter()
            .filter(|op| {
                op.node == node && op.kind == OpKind::Add && op.outcome == Some(Outcome::Ok)
            })
            .filter_map(|op| op.delta)
            .sum()
    };
    let all: i64 = history
        .iter()
        .filter(|op| op.kind == OpKind::Add && op.outcome == Some(Outcome::Ok))
        .filter_map(|op| op.delta)
        .sum();
    if lineage.store_total().is_some_and(|total| total >= all) {
        return Vec::new();
    }
    let mut written: BTreeMap<&str, i64> = BTreeMap::new();
    for op in ops {
        if !op.served.changed || !lineage.is_read(op) {
            continue;
        }
        let added = match op.kind() {
            "cas" => {
                let from = op.req.body.get("from").and_then(num);
                let created = op.req.body.get("create_if_not_exists") == Some(&Value::Bool(true));
                let to = op.req.body.get("to").and_then(num);
                // A cas that created the key added all of `to`.
                to.zip(from.or(created.then_some(0))).map(|(t, f)| t - f)
            }
            // A node's own key: what the write changed.
            "write" if lineage.single_writer(op) => op
                .new_value()
                .and_then(num)
                .zip(num(&lineage.value_at(op, op.served.newest)))
                .map(|(w, before)| w - before),
            "write" => {
                let basis = reads.basis(op).and_then(|(_, v)| num(&v));
                op.new_value().and_then(num).zip(basis).map(|(w, b)| w - b)
            }
            _ => None,
        };
        if let Some(added) = added {
            *written.entry(op.node()).or_default() += added;
        }
    }
    for n in noops {
        if let (Some(sum), Some(lost)) = (written.get_mut(n.node.as_str()), n.lost) {
            *sum += lost;
        }
    }
    let mut out = Vec::new();
    for (node, written_sum) in written {
        let acknowledged_sum = acknowledged(node);
        let missing = acknowledged_sum - written_sum;
        if missing > 0 {
            out.push(Unwritten {
                node: node.to_string(),
                acknowledged_sum,
                written_sum,
                missing,
                acknowledged_in_flight: in_flight(history, ops, lineage, reads, node),
            });
        }
    }
    out
}

/// How many adds `node` acknowledged while one of its own changes to a
/// key that is read was in flight (from the read its value was computed
/// from to its reply): an add that arrives then is not in that change,
/// and a node that clears its buffer when the change is acknowledged
/// drops it.
fn in_flight<'a>(
    history: &History,
    ops: &'a [KvOp<'a>],
    lineage: &Lineage<'a>,
    reads: &Reads<'a>,
    node: &str,
) -> usize {
    let changes: Vec<(gcounter_core::Time, gcounter_core::Time)> = ops
        .iter()
        .filter(|op| op.node() == node && op.served.changed && lineage.is_read(op))
        .map(|op| {
            let from = reads.basis(op).map_or(op.req.sent, |(r, _)| r.answered());
            (from, op.answered())
        })
        .collect();
    history
        .iter()
        .filter(|op| op.node == node && op.kind == OpKind::Add && op.outcome == Some(Outcome::Ok))
        .filter_map(|op| op.complete)
        .filter(|&done| {
            changes
                .iter()
                .any(|&(sent, answered)| sent < done && done < answered)
        })
        .count()
}

/// Per node, the adds it acknowledged and its client's final read.
pub(super) fn accounts(history: &History, check: &CheckResult) -> Vec<NodeAccount> {
    let mut by_node: BTreeMap<&str, NodeAccount> = BTreeMap::new();
    for op in history.iter() {
        let account = by_node.entry(&op.node).or_insert_with(|| NodeAccount {
            node: op.node.clone(),
            acknowledged_adds: 0,
            acknowledged_sum: 0,
            final_read: None,
        });
        if op.kind == OpKind::Add && op.outcome == Some(Outcome::Ok) {
            account.acknowledged_adds += 1;
            account.acknowledged_sum += op.delta.unwrap_or(0);
        }
    }
    for r in &check.final_reads {
        if let Some(a) = by_node.get_mut(r.node.as_str()) {
            a.final_read = Some(r.value);
        }
    }
    by_node.into_values().collect()
}
