//! The message trace: every message the core routes, with when it was
//! sent, what became of it (delivered when, dropped by a partition, lost
//! with a killed node), its body, and for a KV store's reply which state
//! served it. It is what an explanation of a verdict is computed from
//! ([`crate::explain`]), and what `messages.jsonl` holds.
//!
//! Message ids are the network counts' ids, from 0 in the order messages
//! were sent, so entry `i` is message `i`. The trace keeps the first `cap`
//! messages and counts the rest: a run at a high rate must not hold every
//! message in memory, and an explanation of a cut trace says so.

use gcounter_core::service::Served;
use gcounter_core::Time;
use serde::Serialize;
use serde_json::Value;
use std::io::{self, Write};

/// The default cap: about a minute and a half of Maelstrom's evaluation
/// (five times its 20 s). Most of a long run's memory is this trace (each
/// entry holds its parsed body, about 1 KB): at 200,000 it was 200 MB of
/// a runner whose history no longer grows (issue 21, item 5).
pub const DEFAULT_CAP: usize = 50_000;

/// What became of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fate {
    /// Still on its way when the test ended.
    InFlight,
    Delivered,
    /// Dropped by a partition.
    Dropped,
    /// It reached a node the nemesis had killed.
    Lost,
    /// Sent to an id that does not exist.
    Undeliverable,
}

/// Which state of a KV store served a request, on its reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KvServed {
    /// The state the answer came from; for a change, the state it made.
    pub state: u64,
    /// The newest state when the request arrived.
    pub newest: u64,
    /// How many states behind the newest an answer that changed nothing
    /// was (0: current).
    pub behind: u64,
    /// Whether the request made a new state.
    pub changed: bool,
}

impl From<Served> for KvServed {
    fn from(s: Served) -> Self {
        KvServed {
            state: s.state,
            newest: s.newest,
            behind: if s.changed {
                0
            } else {
                s.newest.saturating_sub(s.state)
            },
            changed: s.changed,
        }
    }
}

/// One message. Times are the test's: from the start of the workload
/// (`init` and what precedes it is at 0), as in the history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceEntry {
    pub id: u64,
    pub src: String,
    pub dest: String,
    #[serde(rename = "sent_ns", serialize_with = "crate::nanos::ser")]
    pub sent: Time,
    #[serde(rename = "delivered_ns", serialize_with = "crate::nanos::ser_opt")]
    pub delivered: Option<Time>,
    pub fate: Fate,
    /// When a message dropped by a partition or lost with a killed node
    /// reached its destination: what shows it was lost by the rules.
    #[serde(
        rename = "arrived_ns",
        serialize_with = "crate::nanos::ser_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub arrived: Option<Time>,
    pub body: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kv: Option<KvServed>,
}

impl TraceEntry {
    /// The body's `type`.
    pub fn kind(&self) -> &str {
        self.body.get("type").and_then(Value::as_str).unwrap_or("")
    }

    pub fn msg_id(&self) -> Option<u64> {
        self.body.get("msg_id").and_then(Value::as_u64)
    }

    pub fn in_reply_to(&self) -> Option<u64> {
        self.body.get("in_reply_to").and_then(Value::as_u64)
    }
}

/// The first `cap` messages of a test.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trace {
    pub entries: Vec<TraceEntry>,
    pub cap: usize,
    /// Messages past the cap, not recorded.
    pub cut: u64,
}

impl Trace {
    pub fn new(cap: usize) -> Self {
        Trace {
            entries: Vec::new(),
            cap,
            cut: 0,
        }
    }

    /// Whether messages are recorded at all.
    pub fn on(&self) -> bool {
        self.cap > 0
    }

    /// Records message `id` (ids come in order from 0).
    pub(super) fn sent(&mut self, id: u64, src: &str, dest: &str, body: Value, at: Time) {
        if self.entries.len() >= self.cap {
            self.cut += 1;
            return;
        }
        debug_assert_eq!(id, self.entries.len() as u64);
        self.entries.push(TraceEntry {
            id,
            src: src.to_string(),
            dest: dest.to_string(),
            sent: at,
            delivered: None,
            fate: Fate::InFlight,
            arrived: None,
            body,
            kv: None,
        });
    }

    pub(super) fn entry(&mut self, id: u64) -> Option<&mut TraceEntry> {
        usize::try_from(id)
            .ok()
            .and_then(|i| self.entries.get_mut(i))
    }

    pub(super) fn fate(&mut self, id: u64, fate: Fate, at: Time) {
        if let Some(e) = self.entry(id) {
            e.fate = fate;
            match fate {
                Fate::Delivered => e.delivered = Some(at),
                Fate::Dropped | Fate::Lost => e.arrived = Some(at),
                Fate::InFlight | Fate::Undeliverable => {}
            }
        }
    }

    /// `messages.jsonl`: one entry a line.
    pub fn write_jsonl(&self, out: &mut impl Write) -> io::Result<()> {
        for e in &self.entries {
            serde_json::to_writer(&mut *out, e)?;
            out.write_all(b"\n")?;
        }
        Ok(())
    }
}
