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
    /// Every change to the KV store, in order.
    pub changes: Vec<KvChange>,
    index: HashMap<MsgId, usize>,
}

/// A request that changed the KV store: which key, and its value in the
/// newest state before and after.
#[derive(Debug, Clone)]
pub struct KvChange {
    /// The step that delivered the request.
    pub step: usize,
    /// The node that sent it.
    pub node: Actor,
    pub key: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// Where a failing schedule lost what it lost, in one line, and the
/// message that did it (an index into [`Trace::msgs`]), for the diagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Why {
    pub text: String,
    pub msg: Option<usize>,
    /// The step that did it.
    pub step: usize,
    /// The deltas of the adds it erased.
    pub erased: Vec<u64>,
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

    pub(crate) fn changed(&mut self, change: KvChange) {
        self.changes.push(change);
    }

    /// The message delivered to the service at `step`, if one was.
    fn request_at(&self, step: usize) -> Option<usize> {
        self.msgs
            .iter()
            .position(|m| m.dest == Actor::Service && m.fate == Fate::Delivered(step))
    }

    /// The last reply from the service that `node` took before `step`.
    fn last_reply_to(&self, node: Actor, step: usize) -> Option<(usize, &MsgRec)> {
        self.msgs.iter().rev().find_map(|m| match m.fate {
            Fate::Delivered(d) if d < step && m.src == Actor::Service && m.dest == node => {
                Some((d, m))
            }
            _ => None,
        })
    }

    /// The first change to the store that erased adds: a value replaced
    /// by one that lacks some of its powers of two (the explorer's deltas
    /// are distinct powers of two, so a value names the adds it holds),
    /// with the read its writer had taken last. `None` if no write erased
    /// anything (a stale final read, say: the narrative's steps show it).
    pub fn why(&self) -> Option<Why> {
        let number = |v: &Option<serde_json::Value>| v.as_ref().and_then(|v| v.as_u64());
        self.changes.iter().find_map(|c| {
            let before = number(&c.before)?;
            let after = number(&c.after).unwrap_or(0);
            let erased = before & !after;
            if erased == 0 {
                return None;
            }
            let erased: Vec<u64> = (0..64)
                .map(|b| 1u64 << b)
                .filter(|d| erased & d != 0)
                .collect();
            let adds: Vec<String> = erased.iter().map(u64::to_string).collect();
            let msg = self.request_at(c.step);
            let what = msg.map_or_else(|| "its write".to_string(), |m| self.msgs[m].label.clone());
            let mut text = format!(
                "step {}: {}'s {what} replaced {} {before} with {after}, erasing acknowledged add{} {}",
                c.step,
                self.name(c.node),
                c.key.trim_matches('"'),
                if adds.len() == 1 { "" } else { "s" },
                adds.join(", ")
            );
            if let Some((at, read)) = self.last_reply_to(c.node, c.step) {
                text.push_str(&format!(
                    "; {} computed it from what it last heard, at step {at}: {}",
                    self.name(c.node),
                    read.label
                ));
            }
            Some(Why {
                text,
                msg,
                step: c.step,
                erased,
            })
        })
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
        Payload::Gossip { counts, decrements } | Payload::GossipAck { counts, decrements } => {
            let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            let mut text = format!("{} {{{}}}", payload.type_name(), counts.join(", "));
            if !decrements.is_empty() {
                let down: Vec<String> = decrements
                    .iter()
                    .map(|(k, v)| format!("{k}: -{v}"))
                    .collect();
                text += &format!(" decrements {{{}}}", down.join(", "));
            }
            text
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
