//! What happened in one schedule, step by step, for a person: recorded
//! only when a schedule is replayed to be shown (the search itself records
//! nothing), and drawn by [`narrative`](super::narrative) and
//! [`diagram`](super::diagram).

use super::event::{Actor, Event, MsgId};
use gcounter_core::protocol::Payload;
use gcounter_core::service::Served;
use gcounter_core::Time;
use std::collections::HashMap;

/// One schedule, as it was replayed.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    /// The service's id (`seq-kv`, `lin-kv`), or `None` if nothing used it.
    pub kv: Option<&'static str>,
    pub node_count: usize,
    /// Step `i + 1` of the schedule (step 0 is `init`).
    pub steps: Vec<StepRec>,
    pub msgs: Vec<MsgRec>,
    index: HashMap<MsgId, usize>,
}

/// One step.
#[derive(Debug, Clone)]
pub struct StepRec {
    pub event: Event,
    /// The clock after the step.
    pub time: Time,
    /// Whether the step moved the clock.
    pub clock_moved: bool,
    pub text: String,
    /// What followed from it: replies to clients, timeouts, phases.
    pub notes: Vec<String>,
}

/// How a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Still in flight when the schedule ended.
    InFlight,
    Delivered(usize),
    Lost(usize),
}

/// One message: who sent it to whom, at which step, and its fate.
#[derive(Debug, Clone)]
pub struct MsgRec {
    pub src: Actor,
    pub dest: Actor,
    /// Short, for an arrow: `read counter`, `read_ok 3`.
    pub label: String,
    pub sent: usize,
    pub fate: Fate,
}

impl Trace {
    pub fn new(kv: Option<&'static str>, node_count: usize) -> Self {
        Trace {
            kv,
            node_count,
            ..Trace::default()
        }
    }

    /// The id of `actor`: `c1`, `n0`, `seq-kv`.
    pub fn name(&self, actor: Actor) -> String {
        match actor {
            Actor::Service => self.kv.unwrap_or("kv").to_string(),
            other => other.to_string(),
        }
    }

    /// The step being recorded (0 before the first).
    pub fn now_step(&self) -> usize {
        self.steps.len()
    }

    pub(crate) fn sent(&mut self, id: MsgId, dest: Actor, label: String) {
        let sent = self.now_step();
        self.index.insert(id, self.msgs.len());
        self.msgs.push(MsgRec {
            src: id.src,
            dest,
            label,
            sent,
            fate: Fate::InFlight,
        });
    }

    /// A message that is delivered as it is sent (a reply to a client).
    pub(crate) fn sent_and_delivered(&mut self, src: Actor, dest: Actor, label: String) {
        let step = self.now_step();
        self.msgs.push(MsgRec {
            src,
            dest,
            label,
            sent: step,
            fate: Fate::Delivered(step),
        });
    }

    pub(crate) fn ended(&mut self, id: MsgId, fate: Fate) {
        if let Some(&i) = self.index.get(&id) {
            self.msgs[i].fate = fate;
        }
    }

    pub(crate) fn begin(&mut self, event: Event, text: String, time: Time) {
        self.steps.push(StepRec {
            event,
            time,
            clock_moved: false,
            text,
            notes: Vec::new(),
        });
    }

    pub(crate) fn note(&mut self, note: String) {
        if let Some(step) = self.steps.last_mut() {
            step.notes.push(note);
        }
    }

    pub(crate) fn clock(&mut self, time: Time) {
        if let Some(step) = self.steps.last_mut() {
            step.time = time;
            step.clock_moved = true;
        }
    }
}

/// A message body in a few words.
pub fn describe(payload: &Payload) -> String {
    fn plain(v: &serde_json::Value) -> String {
        match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    }
    match payload {
        Payload::Add { delta } => format!("add {delta}"),
        Payload::Read { key: None } => "read".into(),
        Payload::Read { key: Some(k) } => format!("read {}", plain(k)),
        Payload::ReadOk { value } => format!("read_ok {}", plain(value)),
        Payload::Write { key, value } => format!("write {} = {}", plain(key), plain(value)),
        Payload::Cas {
            key,
            from,
            to,
            create_if_not_exists,
        } => format!(
            "cas {} {} -> {}{}",
            plain(key),
            plain(from),
            plain(to),
            if *create_if_not_exists {
                " (create)"
            } else {
                ""
            }
        ),
        Payload::Gossip { counts } | Payload::GossipAck { counts } => {
            let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("{} {{{}}}", payload.type_name(), counts.join(", "))
        }
        Payload::Error { code, .. } => format!("error {code}"),
        other => other.type_name().to_string(),
    }
}

/// Which state of the KV store answered, as the narrative says it.
pub fn served_note(served: &Served) -> String {
    if served.changed {
        format!("made state {}", served.state)
    } else if served.state >= served.newest {
        format!("state {}, newest", served.state)
    } else {
        format!(
            "state {}, stale: newest was {}",
            served.state, served.newest
        )
    }
}
