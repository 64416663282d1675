//! The trace's KV calls paired with their replies, each key's line of
//! changes by state, and each node's reads: what every cause is found in.

use crate::testcore::trace::KvServed;
use crate::testcore::{Trace, TraceEntry};
use gcounter_core::Time;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet};

/// The KV stores whose states are numbered.
const STORES: [&str; 2] = ["seq-kv", "lin-kv"];

/// One KV request and its reply, from the trace.
#[derive(Debug, Clone, Copy)]
pub(super) struct KvOp<'a> {
    pub(super) req: &'a TraceEntry,
    pub(super) reply: &'a TraceEntry,
    pub(super) served: KvServed,
    pub(super) key: &'a Value,
}

impl KvOp<'_> {
    pub(super) fn node(&self) -> &str {
        &self.req.src
    }
    pub(super) fn kind(&self) -> &str {
        self.req.kind()
    }
    /// When the reply reached the node.
    pub(super) fn answered(&self) -> Time {
        self.reply.delivered.unwrap_or(self.reply.sent)
    }
    /// The value a change made.
    pub(super) fn new_value(&self) -> Option<&Value> {
        match self.kind() {
            "write" => self.req.body.get("value"),
            "cas" => self.req.body.get("to"),
            _ => None,
        }
    }
}

pub(super) fn secs(t: Time) -> f64 {
    t.as_secs_f64()
}

/// A counter's value; a missing key (`Null`) counts as 0, as a counter
/// that reads "key does not exist" starts from 0. A node may keep an
/// object under its key (`{"counter": 7, "last_node": "n1"}`): its count
/// is the object's one integer field, or, when it has several, the one
/// named as counters are. Any other value is opaque: its lineage is still
/// followed, but it adds nothing up.
pub(super) fn num(v: &Value) -> Option<i64> {
    match v {
        Value::Null => Some(0),
        Value::Object(fields) => counter_field(fields),
        _ => v.as_i64(),
    }
}

/// The names a counter inside an object goes by, when the object has more
/// than one integer field.
const COUNTER_NAMES: [&str; 5] = ["counter", "count", "value", "total", "sum"];

fn counter_field(fields: &serde_json::Map<String, Value>) -> Option<i64> {
    let ints: Vec<(&String, i64)> = fields
        .iter()
        .filter_map(|(k, v)| Some((k, v.as_i64()?)))
        .collect();
    match ints.as_slice() {
        [(_, only)] => Some(*only),
        _ => ints
            .iter()
            .find(|(k, _)| COUNTER_NAMES.contains(&k.as_str()))
            .map(|(_, v)| *v),
    }
}

/// A read's answer: the value, `Null` for "key does not exist", `None`
/// for anything else (an error that says nothing of the value).
pub(super) fn read_value(r: &KvOp<'_>) -> Option<Value> {
    match r.reply.kind() {
        "read_ok" => Some(r.reply.body.get("value").cloned().unwrap_or(Value::Null)),
        "error" if r.reply.body.get("code").and_then(Value::as_u64) == Some(20) => {
            Some(Value::Null)
        }
        _ => None,
    }
}

/// The KV calls of the trace, each with its reply, in the order sent.
pub(super) fn kv_ops(trace: &Trace) -> Vec<KvOp<'_>> {
    let replies: HashMap<(&str, &str, u64), &TraceEntry> = trace
        .entries
        .iter()
        .filter(|e| STORES.contains(&e.src.as_str()) && e.kv.is_some())
        .filter_map(|e| Some(((e.src.as_str(), e.dest.as_str(), e.in_reply_to()?), e)))
        .collect();
    trace
        .entries
        .iter()
        .filter(|e| STORES.contains(&e.dest.as_str()))
        .filter_map(|req| {
            let reply = *replies.get(&(req.dest.as_str(), req.src.as_str(), req.msg_id()?))?;
            Some(KvOp {
                req,
                reply,
                served: reply.kv?,
                key: req.body.get("key")?,
            })
        })
        .collect()
}

/// Per node, store and key, the reads in the order they were answered:
/// a write's basis is the last of its node's reads of its key answered
/// before it was sent.
pub(super) struct Reads<'a> {
    by: HashMap<(&'a str, &'a str, String), Vec<&'a KvOp<'a>>>,
}

impl<'a> Reads<'a> {
    pub(super) fn of(ops: &'a [KvOp<'a>]) -> Self {
        let mut by: HashMap<(&str, &str, String), Vec<&KvOp>> = HashMap::new();
        for op in ops.iter().filter(|op| op.kind() == "read") {
            by.entry((op.node(), op.req.dest.as_str(), op.key.to_string()))
                .or_default()
                .push(op);
        }
        for reads in by.values_mut() {
            reads.sort_by_key(|r| r.answered());
        }
        Reads { by }
    }

    /// The last read by `w`'s node of `w`'s key answered before `w` was
    /// sent, and what it read (`Null`: the key did not exist).
    pub(super) fn basis(&self, w: &KvOp<'a>) -> Option<(&'a KvOp<'a>, Value)> {
        let reads = self
            .by
            .get(&(w.node(), w.req.dest.as_str(), w.key.to_string()))?;
        let before = reads.partition_point(|r| r.answered() <= w.req.sent);
        reads[..before]
            .iter()
            .rev()
            .find_map(|r| Some((*r, read_value(r)?)))
    }
}

/// Each key's changes, by state, per store.
pub(super) struct Lineage<'a> {
    pub(super) changes: BTreeMap<(&'a str, String), Vec<(u64, &'a KvOp<'a>)>>,
    /// The keys anybody read. A key nobody reads (a key written only to
    /// bring a node's view of `seq-kv` up to date) holds no part of the
    /// counter, whatever its values.
    pub(super) read: HashSet<(&'a str, String)>,
}

impl<'a> Lineage<'a> {
    pub(super) fn of(ops: &'a [KvOp<'a>]) -> Self {
        let mut changes: BTreeMap<(&str, String), Vec<(u64, &KvOp)>> = BTreeMap::new();
        for op in ops.iter().filter(|op| op.served.changed) {
            changes
                .entry((op.req.dest.as_str(), op.key.to_string()))
                .or_default()
                .push((op.served.state, op));
        }
        for list in changes.values_mut() {
            list.sort_by_key(|(state, _)| *state);
        }
        let read = ops
            .iter()
            .filter(|op| op.kind() == "read")
            .map(|op| (op.req.dest.as_str(), op.key.to_string()))
            .collect();
        Lineage { changes, read }
    }

    /// Whether anybody read `op`'s key.
    pub(super) fn is_read(&self, op: &KvOp<'a>) -> bool {
        self.read
            .contains(&(op.req.dest.as_str(), op.key.to_string()))
    }

    pub(super) fn of_key(&self, op: &KvOp<'a>) -> &[(u64, &'a KvOp<'a>)] {
        self.changes
            .get(&(op.req.dest.as_str(), op.key.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    /// The value of `op`'s key in `state` (`Null`: missing).
    pub(super) fn value_at(&self, op: &KvOp<'a>, state: u64) -> Value {
        let changes = self.of_key(op);
        let upto = changes.partition_point(|(s, _)| *s <= state);
        upto.checked_sub(1)
            .and_then(|i| changes[i].1.new_value().cloned())
            .unwrap_or(Value::Null)
    }

    /// What the keys anybody read held at the end, summed: the count the
    /// store holds. `None` if a key's value is not a count.
    pub(super) fn store_total(&self) -> Option<i64> {
        self.changes
            .iter()
            .filter(|(key, _)| self.read.contains(key))
            .filter_map(|(_, changes)| changes.last())
            .map(|(_, op)| op.new_value().and_then(num))
            .sum()
    }

    /// Whether every change to `op`'s key was made by `op`'s node: a key of
    /// its own, which it writes from what it knows (a running total), not
    /// from what it read.
    pub(super) fn single_writer(&self, op: &KvOp<'a>) -> bool {
        self.of_key(op).iter().all(|(_, c)| c.node() == op.node())
    }

    /// The positions in `op`'s key's changes of those after state `after`
    /// up to state `upto`.
    pub(super) fn between(&self, op: &KvOp<'a>, after: u64, upto: u64) -> std::ops::Range<usize> {
        let changes = self.of_key(op);
        changes.partition_point(|(s, _)| *s <= after)..changes.partition_point(|(s, _)| *s <= upto)
    }
}

#[cfg(test)]
mod tests {
    use super::num;
    use serde_json::json;

    #[test]
    fn a_count_is_found_inside_an_object_value() {
        assert_eq!(num(&json!(null)), Some(0));
        assert_eq!(num(&json!(12)), Some(12));
        assert_eq!(num(&json!({"counter": 7, "last_node": "n1"})), Some(7));
        assert_eq!(num(&json!({"value": 7, "version": 3})), Some(7));
        // Two integers, neither named as a counter: opaque.
        assert_eq!(num(&json!({"a": 7, "b": 3})), None);
        assert_eq!(num(&json!("7")), None);
    }
}
