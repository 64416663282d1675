//! Why a run is invalid, computed from its message trace for any node
//! binary: which acknowledged increments were lost, through which writes
//! or stale reads. Nothing is guessed: where the trace cannot say, the
//! explanation says what it can and leaves the rest `unexplained`.
//!
//! # The lineage of a key
//!
//! Every KV request and its reply are in the trace, and a KV store's reply
//! says which state served it ([`KvServed`](crate::testcore::trace::KvServed)): states are numbered, one
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
use crate::history::History;
use crate::nemesis::NemesisRecord;
use crate::testcore::Trace;
use serde::Serialize;
use serde_json::Value;

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
    /// Final reads above every acceptable value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub over_count: Option<OverCount>,
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
    /// Under pn-counter: which way the reads are off (erased increments
    /// or erased decrements), and why where the trace says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signed: Option<SignedLoss>,
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
    pub acknowledged_sum: i64,
    /// What its changes added: `to - from` of each cas, the value minus
    /// its basis of each write, and what its no-op writes meant to add.
    pub written_sum: i64,
    pub missing: i64,
    /// Adds it acknowledged while one of its changes was in flight (not
    /// carried by that change): where a buffer cleared on the change's
    /// success loses adds.
    pub acknowledged_in_flight: usize,
}

/// Final reads above every acceptable value, and what the trace says of
/// where the extra came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverCount {
    /// The highest such read.
    pub client: String,
    pub node: String,
    pub value: i64,
    /// The highest acceptable value, and how far above it the read is.
    pub highest_acceptable: i64,
    pub above: u64,
    /// How many final reads are above every acceptable value.
    pub count: usize,
    /// How much of `above` the causes below account for.
    pub explained: u64,
    /// What the read read: each key's last answer within it.
    pub reads: Vec<KeyHeld>,
    /// Its answer minus what those reads sum to, when not 0: what the
    /// node added on top of what it read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_by_node: Option<i64>,
    /// Nodes whose changes put more into the keys read than they
    /// acknowledged (and may have added).
    pub writers: Vec<OverWriter>,
}

/// One key as a final read found it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyHeld {
    pub key: String,
    pub value: Value,
    pub state: u64,
    /// The node whose change made that state (`None`: the key's first
    /// state, or a change the trace does not hold).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written_by: Option<String>,
}

/// A node whose changes added more than it acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OverWriter {
    pub node: String,
    /// What its changes added, in all and per key (each change's value
    /// minus the value it replaced).
    pub added: i64,
    pub by_key: Vec<(String, i64)>,
    pub acknowledged_sum: i64,
    pub indeterminate_sum: i64,
    /// `added` minus both sums.
    pub extra: i64,
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
    /// The node's last attempt, within the final read, to bring its view
    /// up to date, when it changed nothing and so synced nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noop_sync: Option<NoopSync>,
}

/// A "sync" that synced nothing: a cas from v to v, or a write of the
/// value already there, which `seq-kv` answered from a stale state (an
/// operation that changes nothing is answered from the state it drew, and
/// the client's position moves there, not to the newest).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NoopSync {
    /// `cas` or `write`.
    pub kind: String,
    pub key: String,
    /// The cas's `from` (and `to`), or the value written.
    pub value: Value,
    /// What the serving state held under the key.
    pub held: Value,
    pub state: u64,
    pub newest: u64,
    pub behind: u64,
    /// The request and its reply, by id in messages.jsonl.
    pub trace_ids: Vec<u64>,
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
    pub acknowledged_sum: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub final_read: Option<i64>,
}

mod accounts;
mod final_reads;
mod fixes;
mod lineage;
mod overcount;
mod signed;
#[cfg(test)]
mod tests;
mod text;
mod unknown;
mod writes;

use accounts::{accounts, unwritten};
use final_reads::final_reads;
use fixes::fixes;
use lineage::{kv_ops, Lineage, Reads};
pub use overcount::above_acceptable;
pub use signed::{KeptHigher, SignedLoss};
pub use unknown::unknown_reason;
use writes::{narrate, series, writes};

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
    let over_count = overcount::over_count(history, check, &ops, &lineage);
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
    let signed = signed::signed_loss(history, check, trace, &overwrites);
    let mut e = Explanation {
        lost: check.lost,
        explained: explained.min(check.lost),
        unexplained: check.lost.saturating_sub(explained),
        example: example_overwrite(&overwrites).map(|o| narrate(o, &ops)),
        series,
        fixes: Vec::new(),
        overwrites,
        noop_writes,
        unwritten,
        stale_final_reads,
        over_count,
        per_node,
        kills,
        faults: windows,
        notes,
        final_shortfall: u64::try_from(stale_lowest).unwrap_or(0),
        signed,
    };
    e.fixes = fixes(&e);
    Some(e)
}

/// The overwrite to tell as the example: the first that erased
/// something (an overwrite of an add of 0 erased nothing worth telling).
pub fn example_overwrite(overwrites: &[Overwrite]) -> Option<&Overwrite> {
    overwrites
        .iter()
        .find(|o| o.lost > 0)
        .or_else(|| overwrites.first())
}
