//! Why a run is invalid, computed from its message trace for any node
//! binary: which acknowledged increments were lost, through which writes
//! or stale reads. Nothing is guessed: where the trace cannot say, the
//! explanation says what it can and leaves the rest `unexplained`.
//!
//! # The lineage of a key
//!
//! Every KV request and its reply are in the trace, and a KV store's reply
//! says which state served it ([`KvServed`]): states are numbered, one
//! more per change, so the changes of each key form a line. A write or
//! cas that landed has a *basis*, the state its value was computed from:
//! for a cas, the state holding `from`, which is the one it replaced (so a
//! cas never erases anything); for a write, the last value its writer read
//! of that key before sending it. A write whose basis is older than the
//! state it replaced erased every change in between: an *overwrite*. It is
//! `stale-read` if its basis was already behind the newest state when it
//! was read, `concurrent` if the basis was the newest then and another
//! write landed before this one.
//!
//! A write that `seq-kv` ran against a stale state holding that very
//! value changed nothing there: it answered `write_ok` and never landed
//! (a *no-op write*). And a final read may itself be served by a stale
//! state (a *stale final read*).
//!
//! When every acknowledged add is one write of `value read + delta` (the
//! read-then-write counter) and no add is indeterminate, these account for
//! the checker's `lost` exactly: the acknowledged sum minus the newest
//! value is what the overwrites erased (net) plus what the no-op writes
//! dropped, and the newest value minus the lowest final read is that
//! read's staleness.

use crate::checker::{CheckResult, Verdict};
use crate::faults;
use crate::history::{History, OpKind, Outcome};
use crate::nemesis::NemesisRecord;
use crate::testcore::trace::KvServed;
use crate::testcore::{Trace, TraceEntry};
use gcounter_core::Time;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// The KV stores whose states are numbered.
const STORES: [&str; 2] = ["seq-kv", "lin-kv"];

/// Why a run lost what it lost.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The checker's `lost`: acknowledged increments no final read shows.
    pub lost: u64,
    /// How much of it the causes below account for.
    pub explained: u64,
    /// The rest.
    pub unexplained: u64,
    /// Writes that erased other writes, in order of landing.
    pub overwrites: Vec<Overwrite>,
    /// Writes acknowledged that never landed.
    pub noop_writes: Vec<NoopWrite>,
    /// Nodes that acknowledged more than their writes ever added.
    pub unwritten: Vec<Unwritten>,
    /// Final reads served by a stale state.
    pub stale_final_reads: Vec<StaleFinalRead>,
    /// Per node, what it acknowledged: the account given when the trace
    /// has no KV writes to follow (a node that keeps its own counter).
    pub per_node: Vec<NodeAccount>,
    /// Kills, with the adds their nodes had just acknowledged.
    pub kills: Vec<faults::KillNote>,
    /// Every fault in force during the run, for losses the trace cannot
    /// account for.
    pub faults: Vec<faults::FaultWindow>,
    /// One loss told as a story.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub example: Option<String>,
    /// The value over time of the key most overwritten, for a chart.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<KeySeries>,
    /// What would prevent the losses found.
    pub fixes: Vec<String>,
    /// What limits the explanation (a cut trace, indeterminate adds).
    pub notes: Vec<String>,
    /// How far the lowest final read fell short of the newest state: the
    /// part of `lost` that the reads, not the store, lost.
    pub final_shortfall: u64,
}

/// A write that erased others.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overwrite {
    pub key: String,
    pub node: String,
    pub time_s: f64,
    /// The value it wrote.
    pub wrote: Value,
    pub basis: Basis,
    /// The state it replaced (the newest when it landed) and its value.
    pub replaced_state: u64,
    pub replaced_value: Value,
    /// `concurrent` or `stale-read`.
    pub cause: Cause,
    /// The writes it erased, oldest first.
    pub erased: Vec<Change>,
    /// The increments it erased, net: the replaced value minus the basis.
    pub lost: i64,
    /// The messages of the story (the reads and writes involved, with
    /// their replies), by id in messages.jsonl.
    pub trace_ids: Vec<u64>,
}

/// The read a write's value was computed from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Basis {
    pub state: u64,
    pub value: Value,
    /// How many states behind the newest it was when it was read.
    pub behind: u64,
    pub read_at_s: f64,
}

/// Why a write's basis was old.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// The basis was the newest state when read; another write landed
    /// before this one.
    Concurrent,
    /// The basis was already behind the newest state when read.
    StaleRead,
}

impl Cause {
    pub fn name(self) -> &'static str {
        match self {
            Cause::Concurrent => "concurrent",
            Cause::StaleRead => "stale-read",
        }
    }
}

/// One change to a key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub state: u64,
    pub node: String,
    pub time_s: f64,
    pub value: Value,
    /// Its value minus the one before (for numbers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub increment: Option<i64>,
}

/// A write that changed nothing, acknowledged all the same: the state it
/// ran against already held its value (on `seq-kv` often a stale state;
/// or another writer had just written the same value).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoopWrite {
    pub key: String,
    pub node: String,
    pub time_s: f64,
    pub wrote: Value,
    pub state: u64,
    pub newest: u64,
    /// What it meant to add: its value minus its writer's last read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<i64>,
}

/// A node whose landed writes added less than it acknowledged: the rest
/// never reached the store (a buffer cleared too soon, say).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Unwritten {
    pub node: String,
    pub acknowledged_sum: u64,
    /// What its changes added: `to - from` of each cas, the value minus
    /// its basis of each write, and what its no-op writes meant to add.
    pub written_sum: i64,
    pub missing: i64,
}

/// A final read some of whose KV reads a stale state served.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StaleFinalRead {
    pub client: String,
    pub node: String,
    pub value: i64,
    pub reads: Vec<KvRead>,
    /// The newest values minus those read, over its KV reads.
    pub shortfall: i64,
}

/// One KV read and what the newest state held then.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KvRead {
    pub key: String,
    pub state: u64,
    pub behind: u64,
    pub value: Value,
    pub newest_value: Value,
}

/// A key's value over time (numeric changes), and where writes erased.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeySeries {
    pub key: String,
    /// `(seconds, value)` of each change, in order.
    pub values: Vec<(f64, i64)>,
    /// `(seconds, value replaced, value written)` of each overwrite.
    pub erasures: Vec<(f64, i64, i64)>,
}

/// What one node acknowledged, and what its client finally read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeAccount {
    pub node: String,
    pub acknowledged_adds: usize,
    pub acknowledged_sum: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_read: Option<i64>,
}

/// One KV request and its reply, from the trace.
#[derive(Debug, Clone, Copy)]
struct KvOp<'a> {
    req: &'a TraceEntry,
    reply: &'a TraceEntry,
    served: KvServed,
    key: &'a Value,
}

impl KvOp<'_> {
    fn node(&self) -> &str {
        &self.req.src
    }
    fn kind(&self) -> &str {
        self.req.kind()
    }
    /// When the reply reached the node.
    fn answered(&self) -> Time {
        self.reply.delivered.unwrap_or(self.reply.sent)
    }
    /// The value a change made.
    fn new_value(&self) -> Option<&Value> {
        match self.kind() {
            "write" => self.req.body.get("value"),
            "cas" => self.req.body.get("to"),
            _ => None,
        }
    }
}

fn secs(t: Time) -> f64 {
    t.as_secs_f64()
}

/// A counter's value; a missing key (`Null`) counts as 0, as a counter
/// that reads "key does not exist" starts from 0.
fn num(v: &Value) -> Option<i64> {
    if v.is_null() {
        Some(0)
    } else {
        v.as_i64()
    }
}

/// A read's answer: the value, `Null` for "key does not exist", `None`
/// for anything else (an error that says nothing of the value).
fn read_value(r: &KvOp<'_>) -> Option<Value> {
    match r.reply.kind() {
        "read_ok" => Some(r.reply.body.get("value").cloned().unwrap_or(Value::Null)),
        "error" if r.reply.body.get("code").and_then(Value::as_u64) == Some(20) => {
            Some(Value::Null)
        }
        _ => None,
    }
}

/// The KV calls of the trace, each with its reply, in the order sent.
fn kv_ops(trace: &Trace) -> Vec<KvOp<'_>> {
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
struct Reads<'a> {
    by: HashMap<(&'a str, &'a str, String), Vec<&'a KvOp<'a>>>,
}

impl<'a> Reads<'a> {
    fn of(ops: &'a [KvOp<'a>]) -> Self {
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
    fn basis(&self, w: &KvOp<'a>) -> Option<(&'a KvOp<'a>, Value)> {
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
struct Lineage<'a> {
    changes: BTreeMap<(&'a str, String), Vec<(u64, &'a KvOp<'a>)>>,
    /// The keys anybody read. A key nobody reads (a key written only to
    /// bring a node's view of `seq-kv` up to date) holds no part of the
    /// counter, whatever its values.
    read: std::collections::HashSet<(&'a str, String)>,
}

impl<'a> Lineage<'a> {
    fn of(ops: &'a [KvOp<'a>]) -> Self {
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
    fn is_read(&self, op: &KvOp<'a>) -> bool {
        self.read
            .contains(&(op.req.dest.as_str(), op.key.to_string()))
    }

    fn of_key(&self, op: &KvOp<'a>) -> &[(u64, &'a KvOp<'a>)] {
        self.changes
            .get(&(op.req.dest.as_str(), op.key.to_string()))
            .map_or(&[], Vec::as_slice)
    }

    /// The value of `op`'s key in `state` (`Null`: missing).
    fn value_at(&self, op: &KvOp<'a>, state: u64) -> Value {
        let changes = self.of_key(op);
        let upto = changes.partition_point(|(s, _)| *s <= state);
        upto.checked_sub(1)
            .and_then(|i| changes[i].1.new_value().cloned())
            .unwrap_or(Value::Null)
    }

    /// Whether every change to `op`'s key was made by `op`'s node: a key of
    /// its own, which it writes from what it knows (a running total), not
    /// from what it read.
    fn single_writer(&self, op: &KvOp<'a>) -> bool {
        self.of_key(op).iter().all(|(_, c)| c.node() == op.node())
    }

    /// The positions in `op`'s key's changes of those after state `after`
    /// up to state `upto`.
    fn between(&self, op: &KvOp<'a>, after: u64, upto: u64) -> std::ops::Range<usize> {
        let changes = self.of_key(op);
        changes.partition_point(|(s, _)| *s <= after)..changes.partition_point(|(s, _)| *s <= upto)
    }
}

/// The explanation of an invalid run; `None` for any other verdict.
pub fn explain(
    history: &History,
    check: &CheckResult,
    trace: &Trace,
    nemesis: &[NemesisRecord],
) -> Option<Explanation> {
    if check.verdict != Verdict::Invalid {
        return None;
    }
    let ops = kv_ops(trace);
    let lineage = Lineage::of(&ops);
    let reads = Reads::of(&ops);
    let (overwrites, noop_writes) = writes(&ops, &lineage, &reads);
    let unwritten = unwritten(history, &ops, &lineage, &reads, &noop_writes);
    let stale_final_reads = final_reads(history, &ops, &lineage);
    let erased: i64 = overwrites.iter().map(|o| o.lost).sum();
    let dropped: i64 = noop_writes.iter().filter_map(|n| n.lost).sum();
    let never_written: i64 = unwritten.iter().map(|u| u.missing).sum();
    let lowest = check.final_reads.iter().min_by_key(|r| r.value);
    let stale_lowest = lowest
        .and_then(|low| {
            stale_final_reads
                .iter()
                .find(|s| s.client == low.client && s.value == low.value)
        })
        .map_or(0, |s| s.shortfall);
    let explained = u64::try_from(erased + dropped + never_written + stale_lowest).unwrap_or(0);
    let mut notes = Vec::new();
    if trace.cut > 0 {
        notes.push(format!(
            "the trace keeps the first {} messages; {} later ones are not in it",
            trace.entries.len(),
            trace.cut
        ));
    }
    if check.indeterminate_adds > 0 {
        notes.push(format!(
            "{} add(s) are indeterminate: what they did is not known, so the accounts need not balance",
            check.indeterminate_adds
        ));
    }
    if explained > check.lost {
        notes.push(format!(
            "the causes found add up to {explained}, more than the {} lost: some erased \
             increments were restored by later writes",
            check.lost
        ));
    }
    let series = series(&lineage, &overwrites);
    let kills = faults::kills(history, nemesis);
    let end = history
        .iter()
        .filter_map(|op| op.complete)
        .max()
        .unwrap_or_default();
    let windows = faults::windows(nemesis, end);
    let per_node = if ops.iter().any(|op| op.served.changed) {
        Vec::new()
    } else {
        accounts(history, check)
    };
    let mut e = Explanation {
        lost: check.lost,
        explained: explained.min(check.lost),
        unexplained: check.lost.saturating_sub(explained),
        example: overwrites.first().map(|o| narrate(o, &ops)),
        series,
        fixes: Vec::new(),
        overwrites,
        noop_writes,
        unwritten,
        stale_final_reads,
        per_node,
        kills,
        faults: windows,
        notes,
        final_shortfall: u64::try_from(stale_lowest).unwrap_or(0),
    };
    e.fixes = fixes(&e);
    Some(e)
}

/// The overwrites and the no-op writes among the trace's writes.
fn writes<'a>(
    ops: &'a [KvOp<'a>],
    lineage: &Lineage<'a>,
    reads: &Reads<'a>,
) -> (Vec<Overwrite>, Vec<NoopWrite>) {
    let mut overwrites = Vec::new();
    let mut noops = Vec::new();
    for w in ops {
        if w.kind() != "write" || w.reply.kind() != "write_ok" || !lineage.is_read(w) {
            continue;
        }
        let Some(wrote) = w.req.body.get("value") else {
            continue;
        };
        let basis_op = reads.basis(w);
        let basis = basis_op.as_ref().map(|(r, value)| Basis {
            state: r.served.state,
            value: value.clone(),
            behind: r.served.behind,
            read_at_s: secs(r.answered()),
        });
        if !w.served.changed {
            {
                noops.push(NoopWrite {
                    key: w.key.to_string(),
                    node: w.node().to_string(),
                    time_s: secs(w.req.sent),
                    wrote: wrote.clone(),
                    state: w.served.state,
                    newest: w.served.newest,
                    // A node's own key is written from what the node knows:
                    // a write that changed nothing added nothing.
                    lost: basis
                        .as_ref()
                        .filter(|_| !lineage.single_writer(w))
                        .and_then(|b| Some(num(wrote)? - num(&b.value)?)),
                });
            }
            continue;
        }
        let replaced = w.served.newest;
        // A node's own key holds what the node knows, so its write's basis
        // is the state it replaced: only a write that lowers the value (an
        // older total landing after a newer one) erases anything.
        let basis = if lineage.single_writer(w) {
            let r = lineage.value_at(w, replaced);
            match (num(wrote), num(&r)) {
                (Some(v), Some(rv)) if v < rv => {
                    let changes = lineage.of_key(w);
                    let upto = changes.partition_point(|(s, _)| *s <= replaced);
                    // The basis: the last state holding at most what it wrote.
                    let below = changes[..upto]
                        .iter()
                        .rev()
                        .find(|(_, c)| c.new_value().and_then(num).is_some_and(|x| x <= v));
                    Some(Basis {
                        state: below.map_or(0, |(s, _)| *s),
                        value: below
                            .and_then(|(_, c)| c.new_value().cloned())
                            .unwrap_or(Value::Null),
                        behind: 0,
                        read_at_s: secs(w.req.sent),
                    })
                }
                _ => None,
            }
        } else {
            basis
        };
        let Some(basis) = basis else { continue };
        if basis.state >= replaced {
            continue;
        }
        let replaced_value = lineage.value_at(w, replaced);
        let lost = num(&replaced_value)
            .zip(num(&basis.value))
            .map_or(0, |(r, b)| r - b);
        let key_changes = lineage.of_key(w);
        let range = lineage.between(w, basis.state, replaced);
        let erased: Vec<Change> = key_changes[range.clone()]
            .iter()
            .zip(range.clone())
            .map(|((s, c), j)| {
                let before = j
                    .checked_sub(1)
                    .and_then(|k| key_changes[k].1.new_value())
                    .and_then(num)
                    .unwrap_or(0);
                let value = c.new_value().cloned().unwrap_or(Value::Null);
                Change {
                    state: *s,
                    node: c.node().to_string(),
                    time_s: secs(c.req.sent),
                    increment: num(&value).map(|v| v - before),
                    value,
                }
            })
            .collect();
        if erased.is_empty() {
            continue;
        }
        // The story's messages: each write with the read it came from.
        let mut trace_ids = Vec::new();
        let mut tell = |op: &KvOp<'_>| {
            if let Some((r, _)) = reads.basis(op) {
                trace_ids.extend([r.req.id, r.reply.id]);
            }
            trace_ids.extend([op.req.id, op.reply.id]);
        };
        for (_, c) in &key_changes[range] {
            tell(c);
        }
        tell(w);
        trace_ids.sort_unstable();
        trace_ids.dedup();
        overwrites.push(Overwrite {
            key: w.key.to_string(),
            node: w.node().to_string(),
            time_s: secs(w.req.sent),
            wrote: wrote.clone(),
            cause: if basis.behind > 0 {
                Cause::StaleRead
            } else {
                Cause::Concurrent
            },
            basis,
            replaced_state: replaced,
            replaced_value,
            erased,
            lost,
            trace_ids,
        });
    }
    (overwrites, noops)
}

/// The most overwritten key's values over time.
fn series(lineage: &Lineage<'_>, overwrites: &[Overwrite]) -> Option<KeySeries> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for o in overwrites {
        *counts.entry(&o.key).or_default() += 1;
    }
    let (key, _) = counts.into_iter().max_by_key(|(_, n)| *n)?;
    let changes = lineage
        .changes
        .iter()
        .find(|((_, k), _)| k == key)
        .map(|(_, c)| c)?;
    let values = changes
        .iter()
        .filter_map(|(_, op)| Some((secs(op.reply.sent), num(op.new_value()?)?)))
        .collect();
    let erasures = overwrites
        .iter()
        .filter(|o| o.key == key)
        .filter_map(|o| Some((o.time_s, num(&o.replaced_value)?, num(&o.wrote)?)))
        .collect();
    Some(KeySeries {
        key: key.to_string(),
        values,
        erasures,
    })
}

/// Per node that changed a numeric key: what it acknowledged against what
/// its changes added; the nodes that fell short.
fn unwritten<'a>(
    history: &History,
    ops: &'a [KvOp<'a>],
    lineage: &Lineage<'a>,
    reads: &Reads<'a>,
    noops: &[NoopWrite],
) -> Vec<Unwritten> {
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
        let acknowledged_sum: u64 = history
            .iter()
            .filter(|op| {
                op.node == node && op.kind == OpKind::Add && op.outcome == Some(Outcome::Ok)
            })
            .filter_map(|op| op.delta)
            .sum();
        let missing = i64::try_from(acknowledged_sum).unwrap_or(i64::MAX) - written_sum;
        if missing > 0 {
            out.push(Unwritten {
                node: node.to_string(),
                acknowledged_sum,
                written_sum,
                missing,
            });
        }
    }
    out
}

/// The final reads that KV reads from stale states served.
fn final_reads<'a>(
    history: &History,
    ops: &'a [KvOp<'a>],
    lineage: &Lineage<'a>,
) -> Vec<StaleFinalRead> {
    let mut stale = Vec::new();
    for op in history
        .iter()
        .filter(|op| op.final_read && op.kind == OpKind::Read && op.outcome == Some(Outcome::Ok))
    {
        let (Some(done), Some(value)) = (op.complete, op.value) else {
            continue;
        };
        let reads: Vec<KvRead> = ops
            .iter()
            .filter(|r| {
                r.kind() == "read"
                    && r.node() == op.node
                    && r.req.sent >= op.invoke
                    && r.answered() <= done
                    && r.served.behind > 0
            })
            .filter(|r| read_value(r) != Some(lineage.value_at(r, r.served.newest)))
            .filter_map(|r| {
                Some(KvRead {
                    key: r.key.to_string(),
                    state: r.served.state,
                    behind: r.served.behind,
                    value: read_value(r)?,
                    newest_value: lineage.value_at(r, r.served.newest),
                })
            })
            .collect();
        if reads.is_empty() {
            continue;
        }
        let shortfall = reads
            .iter()
            .filter_map(|r| Some(num(&r.newest_value)? - num(&r.value)?))
            .sum();
        stale.push(StaleFinalRead {
            client: op.client.clone(),
            node: op.node.clone(),
            value,
            reads,
            shortfall,
        });
    }
    stale
}

/// Per node, the adds it acknowledged and its client's final read.
fn accounts(history: &History, check: &CheckResult) -> Vec<NodeAccount> {
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

/// The first overwrite as a story: who read what, who wrote what, what
/// was erased.
fn narrate(o: &Overwrite, ops: &[KvOp<'_>]) -> String {
    let fresh = |behind: u64| match behind {
        0 => "newest".to_string(),
        1 => "1 state behind the newest".to_string(),
        n => format!("{n} states behind the newest"),
    };
    let mut steps = vec![(
        o.basis.read_at_s,
        format!(
            "{} read {} ({})",
            o.node,
            o.basis.value,
            fresh(o.basis.behind)
        ),
    )];
    for c in &o.erased {
        // The erased writer's own read, if it came after ours.
        let read = ops.iter().rev().find(|r| {
            r.kind() == "read"
                && r.node() == c.node
                && *r.key.to_string() == *o.key
                && secs(r.answered()) <= c.time_s
        });
        if let Some((r, value)) = read
            .filter(|r| secs(r.answered()) >= o.basis.read_at_s)
            .and_then(|r| Some((r, read_value(r)?)))
        {
            steps.push((
                secs(r.answered()),
                format!("{} read {value} ({})", c.node, fresh(r.served.behind)),
            ));
        }
        steps.push((
            c.time_s,
            format!("{} wrote {}{}", c.node, c.value, signed(c.increment)),
        ));
    }
    let mine = num(&o.wrote).zip(num(&o.basis.value)).map(|(w, b)| w - b);
    steps.push((
        o.time_s,
        format!("{} wrote {}{}", o.node, o.wrote, signed(mine)),
    ));
    steps.sort_by(|a, b| a.0.total_cmp(&b.0));
    let erased: Vec<String> = o
        .erased
        .iter()
        .map(|c| match c.increment {
            Some(i) => format!("{}'s {i:+}", c.node),
            None => format!("{}'s write of {}", c.node, c.value),
        })
        .collect();
    let told: Vec<String> = steps.into_iter().map(|(_, s)| s).collect();
    format!("{}: {} erased", told.join(", "), erased.join(" and "))
}

fn signed(inc: Option<i64>) -> String {
    inc.map_or(String::new(), |i| format!(" ({i:+})"))
}

/// What would prevent the losses found.
fn fixes(e: &Explanation) -> Vec<String> {
    let mut fixes = Vec::new();
    let by = |cause| e.overwrites.iter().any(|o| o.cause == cause);
    if by(Cause::Concurrent) || by(Cause::StaleRead) || !e.noop_writes.is_empty() {
        fixes.push(
            "a blind write erases what landed since its read: use cas (compare-and-set from \
             the value read, retry on precondition-failed), give each node its own key \
             (per-node), or count without a store (gossip)"
                .into(),
        );
    }
    if by(Cause::StaleRead) || !e.noop_writes.is_empty() || !e.stale_final_reads.is_empty() {
        fixes.push(
            "seq-kv may serve a stale state: write a fresh value to a key of your own before \
             reading (it brings your view up to date), or use lin-kv"
                .into(),
        );
    }
    if !e.unwritten.is_empty() {
        fixes.push(
            "an add acknowledged before it is written must stay pending until a write that \
             carries it lands: subtract what a cas carried, never clear the buffer"
                .into(),
        );
    }
    if !e.kills.is_empty() {
        fixes.push(
            "a killed node forgets what it kept in memory: store acknowledged adds before \
             acknowledging them (our node: --state-dir), or keep them in the KV service"
                .into(),
        );
    }
    fixes
}

impl Explanation {
    /// The cause that accounts for the most lost increments, in a few
    /// words (for a table of runs).
    pub fn main_cause(&self) -> String {
        // `lost` splits in two: what the store lost (the acknowledged sum
        // minus the newest value) and how far the lowest final read fell
        // short of the newest value. Erasures a later write restored count
        // for neither, so the store's part is named by its largest cause
        // only when it is the larger part.
        let store_lost = self.lost.saturating_sub(self.final_shortfall);
        if self.final_shortfall > 0 && self.final_shortfall >= store_lost {
            return format!("stale final reads ({})", self.final_shortfall);
        }
        let erased = |c: Cause| -> i64 {
            self.overwrites
                .iter()
                .filter(|o| o.cause == c)
                .map(|o| o.lost)
                .sum()
        };
        let mut causes: Vec<(i64, String)> = vec![
            (
                erased(Cause::StaleRead),
                "overwrites after stale reads".into(),
            ),
            (erased(Cause::Concurrent), "concurrent overwrites".into()),
            (
                self.noop_writes.iter().filter_map(|n| n.lost).sum(),
                "writes that never landed".into(),
            ),
            (
                self.unwritten.iter().map(|u| u.missing).sum(),
                "acknowledged adds never written".into(),
            ),
        ];
        let unexplained = i64::try_from(self.unexplained).unwrap_or(i64::MAX);
        let rest = if self.kills.is_empty() {
            "unexplained".to_string()
        } else {
            format!("unexplained, around {} kill(s)", self.kills.len())
        };
        causes.push((unexplained, rest));
        causes
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .max_by_key(|(n, _)| *n)
            .map_or("-".into(), |(n, what)| format!("{what} ({n})"))
    }

    /// A few lines for the terminal, after the verdict.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "why: {} acknowledged increment(s) lost; {} explained, {} unexplained",
            self.lost, self.explained, self.unexplained
        )];
        if !self.overwrites.is_empty() {
            let count = |c| self.overwrites.iter().filter(|o| o.cause == c).count();
            let erased: usize = self.overwrites.iter().map(|o| o.erased.len()).sum();
            let sum: i64 = self.overwrites.iter().map(|o| o.lost).sum();
            lines.push(format!(
                "  {} overwrite(s) erased {erased} write(s), {sum} in all: {} after a stale read, {} concurrent",
                self.overwrites.len(),
                count(Cause::StaleRead),
                count(Cause::Concurrent)
            ));
        }
        if !self.noop_writes.is_empty() {
            let sum: i64 = self.noop_writes.iter().filter_map(|n| n.lost).sum();
            lines.push(format!(
                "  {} write(s) acknowledged but never landed (the state they ran against already held their value): {sum}",
                self.noop_writes.len()
            ));
        }
        for u in &self.unwritten {
            lines.push(format!(
                "  {} acknowledged {} but its writes added only {}: {} never reached the store",
                u.node, u.acknowledged_sum, u.written_sum, u.missing
            ));
        }
        for s in self.stale_final_reads.iter().take(3) {
            let worst = s.reads.iter().map(|r| r.behind).max().unwrap_or(0);
            lines.push(format!(
                "  final read of {} on {} was {} short: served up to {worst} state(s) behind the newest",
                s.client, s.node, s.shortfall
            ));
        }
        if self.overwrites.is_empty() && self.noop_writes.is_empty() && !self.per_node.is_empty() {
            let accounts: Vec<String> = self
                .per_node
                .iter()
                .map(|a| {
                    let read = a
                        .final_read
                        .map_or("no final read".into(), |v| format!("final read {v}"));
                    format!("{} acknowledged {} ({read})", a.node, a.acknowledged_sum)
                })
                .collect();
            lines.push(format!(
                "  no KV writes to follow; per node: {}",
                accounts.join(", ")
            ));
        }
        for k in &self.kills {
            lines.push(format!("  {}", k.describe()));
        }
        if self.unexplained > 0 && !self.faults.is_empty() {
            let shown: Vec<String> = self
                .faults
                .iter()
                .map(|w| format!("{} ({:.1}-{:.1} s)", w.label, w.start, w.end))
                .collect();
            lines.push(format!("  faults during the run: {}", shown.join("; ")));
        }
        if let Some(example) = &self.example {
            lines.push(format!("  e.g. {example}"));
        }
        for fix in &self.fixes {
            lines.push(format!("  fix: {fix}"));
        }
        for note in &self.notes {
            lines.push(format!("  note: {note}"));
        }
        lines
    }
}
