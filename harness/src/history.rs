//! The history of a test: every client operation with its invocation and
//! completion times, its kind, its value and its outcome.
//!
//! The workload records it as it runs; the checker and the statistics read
//! it. It is the same for the simulator and for real processes, and it is
//! what `history.jsonl` holds (one [`Operation`] per line).

use gcounter_core::Time;
use serde::Serialize;

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    Add,
    Read,
}

impl OpKind {
    pub const ALL: [OpKind; 2] = [OpKind::Add, OpKind::Read];

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Add => "add",
            OpKind::Read => "read",
        }
    }
}

/// How an operation ended, in Jepsen's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// It happened (`add_ok`, `read_ok`).
    Ok,
    /// It may or may not have happened: no reply within the client timeout,
    /// an indefinite error, or a reply the client could not make sense of.
    Info,
    /// It did not and will not happen: a definite error.
    Fail,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Info => "info",
            Outcome::Fail => "fail",
        }
    }
}

/// The error an operation ended with, if any.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct OpError {
    /// The code of an `error` reply; `None` for a timeout or a reply of the
    /// wrong shape.
    pub code: Option<u32>,
    pub text: String,
}

/// An operation as its client starts it: what [`History::invoke`] and
/// the journal's `invoke` record, one value so that the journal hands it
/// on rather than repeating its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Invocation<'a> {
    pub client: &'a str,
    pub node: &'a str,
    pub kind: OpKind,
    /// The delta of an add; `None` for a read.
    pub delta: Option<i64>,
    /// One of the reads of the final phase.
    pub final_read: bool,
    pub at: Time,
}

impl<'a> Invocation<'a> {
    /// An add of `delta` at `at`.
    pub fn add(client: &'a str, node: &'a str, delta: i64, at: Time) -> Self {
        Invocation {
            client,
            node,
            kind: OpKind::Add,
            delta: Some(delta),
            final_read: false,
            at,
        }
    }

    /// A read at `at`, of the final phase if `final_read`.
    pub fn read(client: &'a str, node: &'a str, final_read: bool, at: Time) -> Self {
        Invocation {
            client,
            node,
            kind: OpKind::Read,
            delta: None,
            final_read,
            at,
        }
    }
}

/// One client operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Operation {
    /// Position in the history (order of invocation).
    pub index: usize,
    /// The client's id (`c1`, `c2`, ...).
    pub client: String,
    /// The server the client is bound to.
    pub node: String,
    #[serde(rename = "f")]
    pub kind: OpKind,
    /// The delta of an add (negative only under `pn-counter`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<i64>,
    /// The value a read returned (ok reads only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// One of the reads of the final phase, which the checker judges.
    #[serde(rename = "final", skip_serializing_if = "std::ops::Not::not")]
    pub final_read: bool,
    #[serde(rename = "invoke_ns", serialize_with = "crate::nanos::ser")]
    pub invoke: Time,
    #[serde(rename = "complete_ns", serialize_with = "crate::nanos::ser_opt")]
    pub complete: Option<Time>,
    /// `None` while the operation is still outstanding.
    #[serde(rename = "type")]
    pub outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<OpError>,
}

impl Operation {
    /// Operation `index`, just invoked.
    pub fn invoked(index: usize, inv: Invocation) -> Self {
        Operation {
            index,
            client: inv.client.to_string(),
            node: inv.node.to_string(),
            kind: inv.kind,
            delta: inv.delta,
            value: None,
            final_read: inv.final_read,
            invoke: inv.at,
            complete: None,
            outcome: None,
            error: None,
        }
    }

    /// Completion time minus invocation time, once complete.
    pub fn latency(&self) -> Option<Time> {
        self.complete.map(|c| c.saturating_sub(self.invoke))
    }

    /// Whether the operation may have taken effect without our knowing:
    /// `info`, or never completed.
    pub fn is_indeterminate(&self) -> bool {
        matches!(self.outcome, None | Some(Outcome::Info))
    }
}

/// Every operation of one test, in invocation order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct History {
    pub ops: Vec<Operation>,
}

impl History {
    /// Records an invocation and returns its index.
    pub fn invoke(&mut self, inv: Invocation) -> usize {
        let index = self.ops.len();
        self.ops.push(Operation::invoked(index, inv));
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
        if let Some(op) = self.ops.get_mut(index) {
            op.outcome = Some(outcome);
            op.value = value;
            op.error = error;
            op.complete = Some(at);
        }
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Operation> {
        self.ops.iter()
    }

    /// The history as JSON lines (`history.jsonl`), one operation a line.
    pub fn to_jsonl(&self) -> String {
        let mut out = String::new();
        for op in &self.ops {
            // Serializing these plain structs into a String cannot fail.
            if let Ok(line) = serde_json::to_string(op) {
                out.push_str(&line);
                out.push('\n');
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_operation_serializes_in_jepsen_words() {
        let mut h = History::default();
        let i = h.invoke(Invocation::add("c1", "n0", 3, Duration::from_millis(5)));
        h.complete(i, Outcome::Ok, None, None, Duration::from_millis(7));
        let j = h.invoke(Invocation::read("c2", "n1", true, Duration::from_millis(8)));
        assert_eq!(
            h.to_jsonl(),
            concat!(
                r#"{"index":0,"client":"c1","node":"n0","f":"add","delta":3,"invoke_ns":5000000,"complete_ns":7000000,"type":"ok"}"#,
                "\n",
                r#"{"index":1,"client":"c2","node":"n1","f":"read","final":true,"invoke_ns":8000000,"complete_ns":null,"type":null}"#,
                "\n"
            )
        );
        assert_eq!(h.ops[i].latency(), Some(Duration::from_millis(2)));
        assert!(h.ops[j].is_indeterminate());
    }
}
