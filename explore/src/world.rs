//! The explored system: the real core [`Node`]s, the core's KV model,
//! the clients, the messages in flight and the nodes' clocks, stepped one
//! [`Event`] at a time.
//!
//! A `World` is `Clone` (the searches branch by copying it) and has a
//! [`fingerprint`](World::fingerprint) (the state search explores each
//! state once). It says which events are enabled, with their
//! [`Footprint`]s, and applies one.
//!
//! The phases follow `gcounter sim`'s workload, shrunk to the bounds:
//!
//! 1. Adds: each client sends its adds one at a time, the next when the
//!    last is answered. Replies to a client are taken at once (a client
//!    does nothing but record them and send its next request, whose
//!    delivery is itself a choice), so "the client waits before its next
//!    add" is covered by delaying that delivery.
//! 2. `Recover` (enabled once nothing is in flight): the clock jumps by
//!    Maelstrom's recovery wait (10 s), past every call deadline, client
//!    timeout and staleness window; an add still unanswered is `info`.
//!    Then rounds: every armed timer fires once and everything in flight
//!    is delivered, in every order; a round that sends nothing ends
//!    recovery.
//! 3. Finals: each client sends one read; when every one is answered the
//!    schedule is complete and the history goes to the checker.
//!
//! # Time
//!
//! Each node has its own clock, which its client reads too. It moves only
//! when the node's timer fires (to the wake time the node asked for) and
//! at the recovery jump (every clock to the latest plus 10 s). That is
//! the asynchronous model: nothing bounds how long a message takes or
//! how far apart two nodes' steps are, so a node learns that time passed
//! only from its own timers, and a timer may fire at any point while it
//! is armed (a call's reply may come before or after its deadline). The
//! nodes use time only to measure their own intervals (call deadlines,
//! retry delays, the gossip interval, read staleness), which this keeps
//! exact; a strategy whose safety rested on clocks agreeing across nodes
//! would be beyond this model. In exchange a firing touches only its own
//! node, so it commutes with steps elsewhere (see [`Footprint`]).

use super::bounds::{Bounds, FORCED_FIRINGS, RECOVERY_ROUNDS};
use super::event::{Actor, Event, Footprint, KvAccess, KvEffect, MsgId};
use super::trace::{describe, served_note, Fate, KvChange, Trace};
use gcounter_core::service::{apply, KvState, LinKv, SeqKv, Served};
use gcounter_core::strategy::is_sync_key;
use gcounter_core::{Body, Envelope, Input, KvKind, Node, Output, Payload, Time};
use gcounter_harness::checker::{check, CheckResult, Verdict};
use gcounter_harness::history::{History, OpError, OpKind, Outcome};
use gcounter_harness::testcore::INIT_CLIENT;
use gcounter_harness::workload::{client_id, interpret, node_ids, CLIENT_TIMEOUT, RECOVERY};
use serde_json::Value;
use std::cell::RefCell;
use std::hash::{Hash, Hasher};
use std::rc::Rc;

#[derive(Debug, Clone)]
enum Kv {
    Seq(SeqKv),
    Lin(LinKv),
}

/// A `seq-kv` request's choices (state, whether the answer stands on it),
/// worked out for a version of the store, merged or not.
#[derive(Debug, Clone)]
struct Choices {
    version: u64,
    merge: bool,
    states: Vec<(u64, bool)>,
}

#[derive(Debug, Clone)]
struct Flight {
    id: MsgId,
    dest: Actor,
    // Shared between copies of the world: a message never changes.
    env: Rc<Envelope>,
    /// For a service's reply: which state answered.
    served: Option<Served>,
    /// The step that sent it (0: `init`).
    created: usize,
    /// The key of a KV request, hashed.
    key: u64,
    /// The digest of `env`, taken once when it is sent: a message is in
    /// the fingerprint of every state while it is in flight.
    digest: u128,
    /// For a request to `seq-kv`: its choices, as of a version of the
    /// store, with `merge` (worked out once per version, not per step).
    choices: RefCell<Option<Rc<Choices>>>,
}

/// Where a schedule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    Adds,
    Recovery,
    Finals,
    Done,
}

/// A client's request: sent, then (once delivered) invoked.
#[derive(Debug, Clone, Copy)]
struct Request {
    msg_id: u64,
    kind: OpKind,
    delta: Option<i64>,
    final_read: bool,
    /// The history entry, once the node has it.
    op: Option<usize>,
}

#[derive(Debug, Clone)]
struct Client {
    // Shared between copies of the world: they never change.
    id: Rc<str>,
    node: Rc<str>,
    deltas: Rc<[i64]>,
    next_add: usize,
    next_msg_id: u64,
    request: Option<Request>,
    final_done: bool,
}

/// What the world keeps per node beside the node itself, in one place so
/// that a copy of the world allocates it once, not once per field.
#[derive(Debug, Clone, Copy, Default, Hash)]
struct Slot {
    /// The digest of the node's state, taken after every input it is fed:
    /// a step changes one node, so the others' digests are reused rather
    /// than hashed again for every state's fingerprint.
    digest: u128,
    /// The digest of its client's operations (see
    /// [`fingerprint`](World::fingerprint)), taken when one of them
    /// starts or ends.
    client_digest: u128,
    /// The node's digest and clock right after the step that ended its
    /// client's final read: what an end state keeps of the node (see
    /// [`fingerprint`](World::fingerprint)).
    final_digest: Option<(u128, Time)>,
    /// When its timer is set to fire, if it is.
    wake: Option<Time>,
    /// Its clock, which its client reads too.
    clock: Time,
    /// Timer firings within `--timers`, and forced ones past it.
    fired: u32,
    forced: u32,
    /// In a recovery round: its timer is yet to fire.
    due: bool,
}

/// How a complete schedule ended.
#[derive(Debug, Clone)]
pub struct Leaf {
    pub check: CheckResult,
    /// A schedule that could not be completed within the caps.
    pub problem: Option<String>,
    /// The outcome in one line: every operation's result and every final
    /// read, per client. Two schedules with the same key are the same
    /// outcome as far as the checker is concerned.
    pub key: String,
    pub history: History,
}

impl Leaf {
    pub fn failing(&self) -> bool {
        self.problem.is_some() || self.check.verdict != Verdict::Valid
    }
}

/// The system in one state.
#[derive(Debug, Clone)]
pub struct World {
    bounds: Bounds,
    kv_name: &'static str,
    ids: Rc<[String]>,
    /// Shared between copies of the world until a step changes one:
    /// a step feeds one node, so copying the others would be waste.
    nodes: Vec<Rc<Node>>,
    /// Per node (and its client), everything else the world keeps of it.
    slots: Vec<Slot>,
    /// Shared between copies of the world until a request is served.
    kv: Rc<Kv>,
    /// Per `seq-kv` state, the step that made it (0: the empty store).
    made_state: Vec<usize>,
    /// Per `seq-kv` state, a digest of what a request can read in it
    /// (everything but the sync keys, [`readable_digest`]), taken once
    /// when it is made (states never change): hashing every state of the
    /// window on every fingerprint was a third of the fingerprint's time.
    /// On `lin-kv`, one entry: its state's, taken again when it changes.
    state_digests: Vec<u128>,
    /// `seq-kv` dropped a state from its window: the reduction assumes it
    /// never does.
    overflowed: bool,
    /// A node sent a message to another node although the bounds say its
    /// strategy never does ([`Bounds::nodes_talk`]): the persistent sets
    /// assume it never does.
    talked: bool,
    /// During the final reads, a node sent a request that could change
    /// what another node's request there reads: on `lin-kv`, a request
    /// on a key while another node's request on it was in flight, one of
    /// the two a write; on `seq-kv`, any write but to a sync key. The
    /// persistent sets there assume none does.
    crossed: bool,
    /// A request read a sync key, or a write to one changed nothing
    /// where it ran: the fingerprint, which leaves sync keys out, assumes
    /// neither happens.
    read_sync: bool,
    /// Bumped whenever the service serves a request (its states or a
    /// position change).
    kv_version: u64,
    clients: Vec<Client>,
    /// Sorted by name.
    flight: Vec<Flight>,
    /// Messages sent so far, per actor (clients, nodes, service).
    sent: Vec<u32>,
    phase: Phase,
    lost: u32,
    round: u32,
    round_sent: bool,
    steps: usize,
    /// Shared between copies of the world until an operation starts or
    /// ends.
    history: Rc<History>,
    problem: Option<String>,
    trace: Option<Trace>,
}

impl World {
    /// The system after `init`, each client's first add in flight.
    pub fn new(bounds: &Bounds) -> Self {
        Self::build(bounds, false)
    }

    /// The same, recording a [`Trace`] of every step.
    pub fn traced(bounds: &Bounds) -> Self {
        Self::build(bounds, true)
    }

    fn build(bounds: &Bounds, traced: bool) -> Self {
        let n = bounds.node_count;
        let ids = node_ids(n);
        let kv_name = bounds.kv.name();
        let kv = match bounds.kv {
            KvKind::SeqKv => Kv::Seq(SeqKv::new(0)),
            KvKind::LinKv => Kv::Lin(LinKv::default()),
        };
        let trace = traced.then(|| Trace::new(bounds.uses_kv().then_some(kv_name), n));
        let mut w = World {
            bounds: bounds.clone(),
            kv_name,
            nodes: (0..n)
                .map(|_| Rc::new(Node::new(bounds.node_config())))
                .collect(),
            slots: vec![Slot::default(); n],
            kv: Rc::new(kv),
            made_state: vec![0],
            state_digests: vec![readable_digest(&KvState::default())],
            overflowed: false,
            talked: false,
            crossed: false,
            read_sync: false,
            kv_version: 0,
            clients: (0..n)
                .map(|i| Client {
                    id: client_id(i).into(),
                    node: ids[i].as_str().into(),
                    deltas: bounds.deltas(i).into(),
                    next_add: 0,
                    next_msg_id: 1,
                    request: None,
                    final_done: false,
                })
                .collect(),
            ids: ids.into(),
            flight: Vec::new(),
            sent: vec![0; 2 * n + 1],
            phase: Phase::Adds,
            lost: 0,
            round: 0,
            round_sent: false,
            steps: 0,
            history: Rc::default(),
            problem: None,
            trace,
        };
        for i in 0..n {
            let init = Envelope {
                src: INIT_CLIENT.into(),
                dest: w.ids[i].clone(),
                body: Body {
                    msg_id: Some(0),
                    in_reply_to: None,
                    payload: Payload::Init {
                        node_id: w.ids[i].clone(),
                        node_ids: w.ids.to_vec(),
                    },
                },
            };
            w.feed(i, Input::Message(init));
        }
        for k in 0..n {
            w.next_request(k);
        }
        w
    }

    /// A 128-bit digest of everything that decides what can happen from
    /// here and how it ends: two worlds with the same fingerprint have the
    /// same futures and the same verdicts, so a search may explore one
    /// and skip the other. Left out: the trace, which only records, and
    /// what only the reduction's bookkeeping reads (the step each message
    /// and `seq-kv` state came from, the cache of `seq-kv` choices), and
    /// which state served a reply in flight, a label for the story: two
    /// writes to different keys in either order leave the same store, but
    /// their replies' labels name the states in the order they were made.
    ///
    /// The messages in flight are a set, hashed in order of their names;
    /// the history is hashed client by client, since the order in which
    /// different clients' operations were invoked is not part of the
    /// state (a client's own operations keep their order, and each has
    /// its node's clock time while it is pending). A completed operation's
    /// times are left out: the checker's verdict rests on the acknowledged
    /// sum, the indeterminate deltas and the final reads, and nothing
    /// reads those times again, so two states that differ only in when a
    /// node's timer fired around an operation that is over have the same
    /// futures and verdicts (this halves `per-node`'s states: 5,392,319 to
    /// 2,297,968 on the defaults). `steps` is hashed, so that every schedule
    /// reaching a state has the same length: the first failing leaf found
    /// at the least depth is a shortest failing schedule.
    ///
    /// Of `seq-kv`'s states, only those from the oldest that some node's
    /// window still starts at are hashed, and each node's position
    /// relative to it: a node is never served from a state older than its
    /// window, and windows only move forward, so older states decide
    /// nothing. Two stores that made their older states in a different
    /// order (each node writing its own key, in either order, then both
    /// reading past them) are then one state (`per-node`'s default:
    /// 2,297,969 to 572,273 states; `cas` at 3 nodes: 47.6 to 32.9
    /// million). The events of the two differ only by a constant in the
    /// state numbers they choose, so they list alike and the sleep masks,
    /// kept by position, mean the same. A store whose window of
    /// [`SEQ_KV_WINDOW`](gcounter_core::service::SEQ_KV_WINDOW) states
    /// overflows stops the search, as before: the merge assumes that no
    /// state a node may read is forgotten. Maelstrom's `seq-kv` keeps the
    /// same last 32 states, so it forgets one only past that window, where
    /// the search has already stopped.
    /// `the_state_search_keeps_every_seq_kv_state_a_node_can_still_read`
    /// (explore's tests) fails when the states of the stalest window are
    /// dropped too.
    ///
    /// The sync keys
    /// ([`SYNC_KEY_PREFIX`](gcounter_core::strategy::SYNC_KEY_PREFIX)) are
    /// left out of the store, on both services. `cas` and `per-node` write a fresh value to one
    /// before each round of reads, only to move to the newest state of
    /// `seq-kv`; nothing ever reads one, so what it holds decides no
    /// reply. Then a run of consecutive `seq-kv` states that differ only
    /// in sync keys is one state, and a node's position is the run it
    /// stands in: from any state of a run a request may be served from
    /// every later run and gets the same reply from each state of a run,
    /// and a sync write lands on the newest state whatever the run (it
    /// only adds to the last run). Three nodes' sync writes in any order
    /// are then one state, as are two `lin-kv` stores that differ in the
    /// sync values or in how many writes made them (`lin-kv`'s version
    /// is a label for the story, like `seq-kv`'s state numbers). The
    /// events of two such worlds still list alike: a request's merged
    /// choices are one per reply, each the stalest state of its run in
    /// the window. This rests on two things the search checks on every
    /// step, stopping with [`SearchError::SyncKeyRead`](crate::search::SearchError::SyncKeyRead)
    /// otherwise: no request reads a sync key, or cas's one; and no write
    /// to one changes nothing where it runs (it would leave its node at a
    /// stale state, not the newest run: the values are fresh, so only a
    /// duplicated write could). With them, `cas` on `seq-kv` at 3 nodes
    /// went from 25.9 million states to 0.73 million.
    ///
    /// An end state (`Done`) keeps only what the checker sees (the
    /// operations, by client, and a problem if any), each node as the
    /// step that ended its client's final read left it (its digest and
    /// clock), and what the store holds. Not the messages still in
    /// flight, the timers still armed, or anything a node or the store
    /// did after its client was done: those steps change no operation
    /// (every client they could answer is done), and the persistent sets
    /// move a node's steps ahead of them, which can end a schedule before
    /// they run ([`persistent`](crate::persistent)). So two end states
    /// reached by schedules of different lengths can be one state; the
    /// state search keeps the shortest failing schedule over every visit
    /// of an end state.
    pub fn fingerprint(&self) -> u128 {
        FINGERPRINT_BUFFER.with_borrow_mut(|buffer| {
            buffer.clear();
            let mut h = Fingerprinter(std::mem::take(buffer));
            self.fingerprint_into(&mut h);
            let fingerprint = h.finish128();
            *buffer = h.0;
            fingerprint
        })
    }

    fn fingerprint_into(&self, mut h: &mut Fingerprinter) {
        if self.phase == Phase::Done {
            // What the checker sees, and each node as its client's final
            // read left it; not what happened after (see above).
            (Phase::Done, &self.problem).hash(&mut h);
            for s in &self.slots {
                (s.client_digest, s.final_digest).hash(&mut h);
            }
            // The newest state's, on either service.
            self.state_digests.last().hash(&mut h);
            return;
        }
        (&self.slots, self.overflowed).hash(&mut h);
        match &*self.kv {
            // The states some node may still be served from, by their
            // digests, and where each node stands among them: a state
            // older than every node's window is never read again, so two
            // stores that made their older states in a different order
            // (two nodes' writes to their own keys, say) are one.
            Kv::Seq(kv) => {
                let oldest_read = self
                    .ids
                    .iter()
                    .map(|id| *kv.window(id).start())
                    .min()
                    .unwrap_or(0);
                let live = usize::try_from(oldest_read).unwrap_or(usize::MAX);
                let states = self.state_digests.get(live..).unwrap_or(&[]);
                // A run of states that differ only in sync keys is one.
                let mut last = None;
                for d in states {
                    if last != Some(d) {
                        d.hash(&mut h);
                        last = Some(d);
                    }
                }
                for id in self.ids.iter() {
                    let at = usize::try_from(kv.window(id).start() - oldest_read).unwrap_or(0);
                    let run = states
                        .windows(2)
                        .take(at)
                        .filter(|pair| pair[0] != pair[1])
                        .count();
                    run.hash(&mut h);
                }
            }
            Kv::Lin(_) => self.state_digests.last().hash(&mut h),
        }
        // Kept in order of their names (`send`).
        for f in &self.flight {
            (f.id, f.dest, f.digest).hash(&mut h);
        }
        for c in &self.clients {
            (c.next_add, c.next_msg_id, c.final_done).hash(&mut h);
            c.request
                .map(|r| (r.msg_id, r.kind, r.delta, r.final_read, r.op.is_some()))
                .hash(&mut h);
        }
        (&self.sent, self.phase, self.lost, self.round).hash(&mut h);
        (self.round_sent, self.steps).hash(&mut h);
        self.problem.hash(&mut h);
    }

    /// Takes node `i`'s digest again, after it changed.
    fn redigest_node(&mut self, i: usize) {
        let node = &self.nodes[i];
        self.slots[i].digest = digest_with(|h| node.fingerprint(h));
    }

    /// Takes client `k`'s digest of its operations again, after one of
    /// them started or ended.
    fn redigest_client(&mut self, k: usize) {
        let client = &*self.clients[k].id;
        let history = &self.history;
        self.slots[k].client_digest = digest_with(|mut h| {
            for op in history.iter().filter(|op| *op.client == *client) {
                (op.kind, op.delta, op.value, op.final_read).hash(&mut h);
                (op.outcome, &op.error).hash(&mut h);
                // Only a pending operation's time decides anything (when
                // its client gives up on it); see `fingerprint`.
                if op.outcome.is_none() {
                    op.invoke.hash(&mut h);
                }
            }
        });
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The phase and the recovery round: a change means every event
    /// after it was enabled by it.
    pub fn epoch(&self) -> (Phase, u32) {
        (self.phase, self.round)
    }

    /// Whether `event` may end the phase or the recovery round here, and
    /// so disable what is enabled beside it whatever its footprint says:
    /// during the final reads, a step at the node of the one client whose
    /// read is still unanswered (answering it ends the schedule); at the
    /// step cap, anything. A recovery round cannot end while another event
    /// is enabled (it ends only when nothing is in flight and no timer is
    /// due), and during the adds only `Recover` ends the phase.
    pub fn may_end_epoch(&self, event: Event) -> bool {
        if self.steps + 1 >= self.bounds.max_steps {
            return true;
        }
        let node = match event {
            Event::Recover => return true,
            Event::Fire { node } => node,
            Event::Deliver { msg, .. } => match msg.dest {
                Actor::Node(i) => i,
                _ => return false,
            },
            Event::Lose { .. } => return false,
        };
        self.phase == Phase::Finals
            && self
                .clients
                .iter()
                .enumerate()
                .all(|(k, c)| c.final_done || k == node)
    }

    /// Whether `seq-kv` ever dropped a state from its window.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Whether a node sent a message to another node although
    /// [`Bounds::nodes_talk`] says it never does.
    pub fn talked(&self) -> bool {
        self.talked
    }

    /// Whether, during the final reads, a node ever sent a request that
    /// could change what another node's request there reads (see
    /// [`crate::persistent`]).
    pub fn crossed(&self) -> bool {
        self.crossed
    }

    /// Whether a request ever read a sync key, or a write to one changed
    /// nothing where it ran (see [`fingerprint`](World::fingerprint)).
    pub fn read_sync(&self) -> bool {
        self.read_sync
    }

    /// Whether the service is `lin-kv`.
    pub fn linearizable(&self) -> bool {
        matches!(*self.kv, Kv::Lin(_))
    }

    /// Whether client `k`'s final read is over (answered, or given up on).
    pub fn final_answered(&self, k: usize) -> bool {
        self.clients[k].final_done
    }

    pub fn bounds(&self) -> &Bounds {
        &self.bounds
    }

    /// Whether a request of node `i` to the KV service is in flight (its
    /// delivery would send node `i` a reply).
    pub fn awaits_service(&self, i: usize) -> bool {
        self.flight
            .iter()
            .any(|f| f.id.src == Actor::Node(i) && f.dest == Actor::Service)
    }

    /// The steps (numbered from 1, 0 for `init` or none) without which
    /// `event` would not be enabled as it is: the one that sent its
    /// message, and, for a `seq-kv` request, the one that made the state
    /// it is served from. (Other reasons are covered by dependence: a
    /// node's own steps arm its timer, a client's position moves only
    /// with its own requests.)
    pub fn causes(&self, event: Event) -> (usize, usize) {
        let (msg, state) = match event {
            Event::Deliver { msg, state } => (msg, state),
            Event::Lose { msg } => (msg, None),
            Event::Fire { .. } | Event::Recover => return (0, 0),
        };
        let sent = self
            .flight
            .iter()
            .find(|f| f.id == msg)
            .map_or(0, |f| f.created);
        let made = state
            .and_then(|k| self.made_state.get(k as usize))
            .copied()
            .unwrap_or(0);
        (sent, made)
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    pub fn trace(&self) -> Option<&Trace> {
        self.trace.as_ref()
    }

    fn slot(&self, actor: Actor) -> usize {
        let n = self.bounds.node_count;
        match actor {
            Actor::Client(i) => i,
            Actor::Node(i) => n + i,
            Actor::Service => 2 * n,
        }
    }

    /// The actor an id names, if it is one of this system's.
    fn actor(&self, id: &str) -> Option<Actor> {
        if id == self.kv_name {
            return Some(Actor::Service);
        }
        let n = self.bounds.node_count;
        let num = |rest: &str| rest.parse::<usize>().ok();
        if let Some(i) = id.strip_prefix('n').and_then(num) {
            return (i < n).then_some(Actor::Node(i));
        }
        if let Some(k) = id.strip_prefix('c').and_then(num) {
            return (1..=n).contains(&k).then(|| Actor::Client(k - 1));
        }
        None
    }

    /// The events enabled now, each with its footprint, in a fixed order.
    /// With `merge`, `seq-kv` answers that differ only in how stale the
    /// client's position ends up are merged (see the module docs of
    /// `explore`).
    pub fn enabled(&self, merge: bool) -> Vec<(Event, Footprint)> {
        let mut out = Vec::new();
        if self.phase == Phase::Done {
            return out;
        }
        for f in &self.flight {
            let at = Footprint::Local {
                actor: f.dest,
                spends_loss: false,
            };
            let client = match f.id.src {
                Actor::Node(i) => i,
                _ => usize::MAX,
            };
            let key = f.key;
            match (&*self.kv, f.dest) {
                (Kv::Seq(kv), Actor::Service) => {
                    let mut cache = f.choices.borrow_mut();
                    let fresh = cache
                        .as_ref()
                        .is_some_and(|c| c.version == self.kv_version && c.merge == merge);
                    if !fresh {
                        *cache = Some(Rc::new(Choices {
                            version: self.kv_version,
                            merge,
                            states: seq_choices(kv, &f.env, merge),
                        }));
                    }
                    let choices = cache.as_ref().map_or(&[][..], |c| c.states.as_slice());
                    for &(state, stands) in choices {
                        let event = Event::Deliver {
                            msg: f.id,
                            state: Some(state),
                        };
                        let effect = if stands {
                            KvEffect::Stands
                        } else {
                            KvEffect::Newest
                        };
                        out.push((
                            event,
                            Footprint::Kv(KvAccess {
                                client,
                                key,
                                effect,
                            }),
                        ));
                    }
                }
                (Kv::Lin(_), Actor::Service) => {
                    // By the request alone, so that the same event always
                    // has the same footprint: a cas that fails changes
                    // nothing, but counts as a write.
                    let effect = match f.env.body.payload {
                        Payload::Read { .. } => KvEffect::Reads,
                        _ => KvEffect::Writes,
                    };
                    let event = Event::Deliver {
                        msg: f.id,
                        state: None,
                    };
                    out.push((
                        event,
                        Footprint::Kv(KvAccess {
                            client,
                            key,
                            effect,
                        }),
                    ));
                }
                _ => out.push((
                    Event::Deliver {
                        msg: f.id,
                        state: None,
                    },
                    at,
                )),
            }
            if self.phase == Phase::Adds
                && self.lost < self.bounds.losses
                && f.id.src.is_node()
                && f.dest.is_node()
            {
                let lose = Footprint::Local {
                    actor: f.dest,
                    spends_loss: true,
                };
                out.push((Event::Lose { msg: f.id }, lose));
            }
        }
        let n = self.bounds.node_count;
        match self.phase {
            Phase::Adds | Phase::Finals => {
                let mut budgeted = false;
                for i in 0..n {
                    if self.slots[i].wake.is_some() && self.slots[i].fired < self.bounds.timers {
                        out.push((Event::Fire { node: i }, Self::fire_footprint(i)));
                        budgeted = true;
                    }
                }
                if self.flight.is_empty() {
                    if self.phase == Phase::Adds {
                        out.push((Event::Recover, Footprint::Global));
                    } else if !budgeted {
                        // A final read is waiting on a timer past the
                        // bound: let time pass, as it would.
                        for i in 0..n {
                            if self.slots[i].wake.is_some() && self.slots[i].forced < FORCED_FIRINGS
                            {
                                out.push((Event::Fire { node: i }, Footprint::Global));
                            }
                        }
                    }
                }
            }
            Phase::Recovery => {
                for i in 0..n {
                    if self.slots[i].due && self.slots[i].wake.is_some() {
                        out.push((Event::Fire { node: i }, Self::fire_footprint(i)));
                    }
                }
            }
            Phase::Done => {}
        }
        out
    }

    /// A firing within the bound touches only its node (and that node's
    /// clock).
    fn fire_footprint(node: usize) -> Footprint {
        Footprint::Local {
            actor: Actor::Node(node),
            spends_loss: false,
        }
    }

    /// Applies `event`, which must be enabled. An error means a replay
    /// went another way than the first run: something is not
    /// deterministic.
    pub fn apply(&mut self, event: Event) -> Result<(), String> {
        self.steps += 1;
        if self.trace.is_some() {
            let text = self.describe_event(event);
            let now = self.latest();
            if let Some(t) = self.trace.as_mut() {
                t.begin(event, text, now);
            }
        }
        match event {
            Event::Deliver { msg, state } => {
                let f = self.take(msg)?;
                if let Some(t) = self.trace.as_mut() {
                    let step = t.now_step();
                    t.ended(msg, Fate::Delivered(step));
                }
                self.deliver(f, state);
            }
            Event::Lose { msg } => {
                self.take(msg)?;
                self.lost += 1;
                if let Some(t) = self.trace.as_mut() {
                    let step = t.now_step();
                    t.ended(msg, Fate::Lost(step));
                }
            }
            Event::Fire { node } => {
                let at = self.slots[node]
                    .wake
                    .ok_or_else(|| format!("n{node} has no timer to fire"))?;
                match self.phase {
                    Phase::Recovery => self.slots[node].due = false,
                    _ if self.slots[node].fired < self.bounds.timers => self.slots[node].fired += 1,
                    _ => self.slots[node].forced += 1,
                }
                self.advance(node, at);
                self.feed(node, Input::Timeout);
            }
            Event::Recover => {
                self.phase = Phase::Recovery;
                let at = self.latest() + RECOVERY;
                for i in 0..self.bounds.node_count {
                    self.advance(i, at);
                }
                self.round = 1;
                self.arm_round();
                self.round_sent = false;
                if let Some(armed) = self.armed_list() {
                    self.note(format!("recovery round 1: {armed}"));
                }
            }
        }
        self.settle();
        if self.phase != Phase::Done && self.steps >= self.bounds.max_steps {
            self.problem = Some(format!(
                "no end after {} steps: a livelock?",
                self.bounds.max_steps
            ));
            self.phase = Phase::Done;
        }
        Ok(())
    }

    fn take(&mut self, msg: MsgId) -> Result<Flight, String> {
        let i = self
            .flight
            .iter()
            .position(|f| f.id == msg)
            .ok_or_else(|| format!("message {msg:?} is not in flight"))?;
        Ok(self.flight.remove(i))
    }

    fn armed_list(&self) -> Option<String> {
        let armed: Vec<String> = (0..self.bounds.node_count)
            .filter(|&i| self.slots[i].due)
            .map(|i| self.ids[i].clone())
            .collect();
        (!armed.is_empty()).then(|| format!("the timers of {} fire once", armed.join(", ")))
    }

    /// Every armed timer is due once in the recovery round starting.
    fn arm_round(&mut self) {
        for slot in &mut self.slots {
            slot.due = slot.wake.is_some();
        }
    }

    /// The latest of the clocks.
    fn latest(&self) -> Time {
        self.slots.iter().map(|s| s.clock).max().unwrap_or_default()
    }

    /// Moves node `k`'s clock to `at` if that is later; if its client's
    /// request is then older than the client timeout, the client gives up
    /// on it.
    fn advance(&mut self, k: usize, at: Time) {
        if at <= self.slots[k].clock {
            return;
        }
        self.slots[k].clock = at;
        if let Some(t) = self.trace.as_mut() {
            t.clock(at);
        }
        let Some(r) = self.clients[k].request else {
            return;
        };
        let Some(op) = r.op else { return };
        if self.history.ops[op].invoke + CLIENT_TIMEOUT > at {
            return;
        }
        self.clients[k].request = None;
        let text = format!("no reply within {} s", CLIENT_TIMEOUT.as_secs());
        let error = Some(OpError { code: None, text });
        Rc::make_mut(&mut self.history).complete(op, Outcome::Info, None, error, at);
        self.redigest_client(k);
        let what = match r.delta {
            Some(d) => format!("add {d}"),
            None => "final read".into(),
        };
        self.note(format!(
            "{} times out waiting for its {what}: indeterminate",
            self.clients[k].id
        ));
        if r.final_read {
            self.clients[k].final_done = true;
        } else {
            self.next_request(k);
        }
    }

    /// Moves between phases when nothing is left to do in this one.
    fn settle(&mut self) {
        loop {
            match self.phase {
                Phase::Recovery => {
                    let n = self.bounds.node_count;
                    let firing = (0..n).any(|i| self.slots[i].due && self.slots[i].wake.is_some());
                    if !self.flight.is_empty() || firing {
                        return;
                    }
                    if !self.round_sent {
                        self.start_finals();
                        continue;
                    }
                    if self.round >= RECOVERY_ROUNDS {
                        self.problem = Some(format!(
                            "recovery still sending after {RECOVERY_ROUNDS} rounds: a livelock?"
                        ));
                        self.phase = Phase::Done;
                        return;
                    }
                    self.round += 1;
                    self.arm_round();
                    self.round_sent = false;
                    if let Some(armed) = self.armed_list() {
                        let round = self.round;
                        self.note(format!("recovery round {round}: {armed}"));
                    }
                }
                Phase::Finals => {
                    if self.clients.iter().all(|c| c.final_done) {
                        self.phase = Phase::Done;
                    }
                    return;
                }
                Phase::Adds | Phase::Done => return,
            }
        }
    }

    fn start_finals(&mut self) {
        self.phase = Phase::Finals;
        self.note("recovery is over: every client sends its final read".into());
        for k in 0..self.clients.len() {
            self.send_request(k, OpKind::Read, None, true);
        }
    }

    fn next_request(&mut self, k: usize) {
        if self.phase != Phase::Adds {
            return;
        }
        let c = &self.clients[k];
        if let Some(&delta) = c.deltas.get(c.next_add) {
            self.clients[k].next_add += 1;
            self.send_request(k, OpKind::Add, Some(delta), false);
        }
    }

    fn send_request(&mut self, k: usize, kind: OpKind, delta: Option<i64>, final_read: bool) {
        let c = &mut self.clients[k];
        let msg_id = c.next_msg_id;
        c.next_msg_id += 1;
        c.request = Some(Request {
            msg_id,
            kind,
            delta,
            final_read,
            op: None,
        });
        let payload = match delta {
            Some(delta) => Payload::Add { delta },
            None => Payload::Read { key: None },
        };
        let env = Envelope {
            src: c.id.to_string(),
            dest: c.node.to_string(),
            body: Body {
                msg_id: Some(msg_id),
                in_reply_to: None,
                payload,
            },
        };
        self.send(Actor::Client(k), Actor::Node(k), env, None);
    }

    fn send(&mut self, src: Actor, dest: Actor, env: Envelope, served: Option<Served>) {
        // A service's reply is named after the request it answers, so that
        // its name does not depend on the order of requests that commute.
        let n = match (src, env.body.in_reply_to) {
            (Actor::Service, Some(request)) => request as u32,
            _ => {
                let slot = self.slot(src);
                self.sent[slot] += 1;
                self.sent[slot] - 1
            }
        };
        let id = MsgId { src, dest, n };
        if let Some(t) = self.trace.as_mut() {
            let mut label = describe(&env.body.payload);
            if let Some(s) = &served {
                label = format!("{label} ({})", served_note(s));
            }
            t.sent(id, dest, label);
        }
        let key = if dest == Actor::Service {
            key_hash(&env.body.payload)
        } else {
            0
        };
        if dest == Actor::Service {
            let request = &env.body.payload;
            self.read_sync |= match request {
                Payload::Read { key: Some(key) } | Payload::Cas { key, .. } => is_sync_key(key),
                _ => false,
            };
            if self.phase == Phase::Finals {
                self.crossed |= self.crosses(src, key, request);
            }
        }
        let digest = digest_with(|mut h| env.hash(&mut h));
        // In order of their names, so that the set hashes alike whatever
        // order its messages were sent in.
        let at = self.flight.partition_point(|f| f.id < id);
        self.flight.insert(
            at,
            Flight {
                id,
                dest,
                digest,
                env: Rc::new(env),
                served,
                created: self.steps,
                key,
                choices: RefCell::new(None),
            },
        );
    }

    fn deliver(&mut self, f: Flight, state: Option<u64>) {
        match f.dest {
            Actor::Node(i) => {
                if let Actor::Client(k) = f.id.src {
                    self.invoke(k);
                }
                let env = Rc::try_unwrap(f.env).unwrap_or_else(|shared| (*shared).clone());
                self.feed(i, Input::Message(env));
            }
            Actor::Service => {
                if let Some((reply, served)) = self.serve(&f.env, state) {
                    match self.actor(&reply.dest) {
                        Some(dest) => self.send(Actor::Service, dest, reply, Some(served)),
                        None => self.note(format!("{} is nobody: reply dropped", reply.dest)),
                    }
                }
            }
            // Replies to clients are taken as they are sent.
            Actor::Client(_) => {}
        }
    }

    /// Client `k`'s request reaches its node: the operation starts now.
    fn invoke(&mut self, k: usize) {
        let c = &self.clients[k];
        let Some(r) = c.request else { return };
        let op = Rc::make_mut(&mut self.history).invoke(gcounter_harness::history::Invocation {
            client: &c.id,
            node: &c.node,
            kind: r.kind,
            delta: r.delta,
            final_read: r.final_read,
            at: self.slots[k].clock,
        });
        if let Some(r) = self.clients[k].request.as_mut() {
            r.op = Some(op);
        }
        self.redigest_client(k);
    }

    fn serve(&mut self, req: &Envelope, state: Option<u64>) -> Option<(Envelope, Served)> {
        self.kv_version += 1;
        let request_id = req.body.msg_id?;
        let before = self
            .trace
            .is_some()
            .then(|| self.newest_value(&req.body.payload));
        let (payload, served) = match Rc::make_mut(&mut self.kv) {
            Kv::Seq(kv) => {
                let chosen = state.unwrap_or_else(|| *kv.window(&req.src).end());
                let (reply, served) = kv.serve_from(&req.src, &req.body.payload, chosen);
                if let Payload::Write { key, .. } = &req.body.payload {
                    self.read_sync |= is_sync_key(key) && !served.changed;
                }
                if served.changed {
                    self.made_state.push(self.steps);
                    self.state_digests.push(readable_digest(kv.latest()));
                }
                self.overflowed |= oldest(kv) > 0;
                (reply, served)
            }
            Kv::Lin(kv) => {
                let (reply, served) = kv.serve(&req.body.payload);
                if let (true, Some(d)) = (served.changed, self.state_digests.last_mut()) {
                    *d = readable_digest(kv.state());
                }
                (reply, served)
            }
        };
        if let (Some((key, before)), true) = (before.flatten(), served.changed) {
            let after = self.newest_value(&req.body.payload).and_then(|(_, v)| v);
            let node = self.actor(&req.src).unwrap_or(Actor::Service);
            if let Some(t) = self.trace.as_mut() {
                let step = t.now_step();
                t.changed(KvChange {
                    step,
                    node,
                    key,
                    before,
                    after,
                });
            }
        }
        // Unique per client rather than per service, for the same reason
        // as the reply's name: nodes never look at a reply's `msg_id`.
        let reply = Envelope {
            src: self.kv_name.to_string(),
            dest: req.src.clone(),
            body: Body {
                msg_id: Some(request_id),
                in_reply_to: Some(request_id),
                payload,
            },
        };
        Some((reply, served))
    }

    /// The key a write or cas names, and its value in the newest state of
    /// the store (for the trace's account of what each write replaced).
    fn newest_value(&self, request: &Payload) -> Option<(String, Option<Value>)> {
        let key = match request {
            Payload::Write { key, .. } | Payload::Cas { key, .. } => key,
            _ => return None,
        };
        let state = match &*self.kv {
            Kv::Seq(kv) => kv.latest(),
            Kv::Lin(kv) => kv.state(),
        };
        Some((key.to_string(), state.get(&key.to_string()).cloned()))
    }

    /// Hands node `i` an input and routes everything it sends.
    fn feed(&mut self, i: usize, input: Input<'_>) {
        let node = Rc::make_mut(&mut self.nodes[i]);
        node.handle(input, self.slots[i].clock);
        loop {
            match Rc::make_mut(&mut self.nodes[i]).poll_output() {
                Output::Send(env) => self.route(i, env),
                Output::Persist(_) => {}
                Output::Wait(at) => {
                    self.slots[i].wake = at;
                    break;
                }
            }
        }
        self.redigest_node(i);
        let slot = &mut self.slots[i];
        if self.clients[i].final_done && slot.final_digest.is_none() {
            slot.final_digest = Some((slot.digest, slot.clock));
        }
    }

    fn route(&mut self, i: usize, env: Envelope) {
        if env.dest == INIT_CLIENT {
            return;
        }
        if self.phase == Phase::Recovery {
            self.round_sent = true;
        }
        match self.actor(&env.dest) {
            Some(Actor::Client(k)) => self.client_reply(i, k, env),
            Some(dest) => {
                self.talked |= dest.is_node() && !self.bounds.nodes_talk();
                self.send(Actor::Node(i), dest, env, None)
            }
            None => {
                let text = format!(
                    "{} -> {}: nobody by that name; dropped",
                    self.ids[i], env.dest
                );
                self.note(text);
            }
        }
    }

    /// Whether `request` from `src` on the key hashed to `key` could
    /// change what another node's request reads: on `seq-kv` whenever it
    /// is a write but to a sync key (a new state for every window); on
    /// `lin-kv` when it would be in flight together with another node's on
    /// the same key, one of them a write.
    fn crosses(&self, src: Actor, key: u64, request: &Payload) -> bool {
        let writes = |p: &Payload| !matches!(p, Payload::Read { .. });
        if !self.linearizable() {
            return match request {
                Payload::Write { key, .. } => !is_sync_key(key),
                other => writes(other),
            };
        }
        self.flight.iter().any(|f| {
            f.dest == Actor::Service
                && f.id.src != src
                && f.key == key
                && (writes(request) || writes(&f.env.body.payload))
        })
    }

    /// A reply reaches client `k` as it is sent: it completes the
    /// client's operation (if it answers it) and the client sends its
    /// next request.
    fn client_reply(&mut self, i: usize, k: usize, env: Envelope) {
        let label = describe(&env.body.payload);
        if let Some(t) = self.trace.as_mut() {
            t.sent_and_delivered(Actor::Node(i), Actor::Client(k), label.clone());
        }
        let c = &mut self.clients[k];
        let answers = c
            .request
            .is_some_and(|r| r.op.is_some() && env.body.in_reply_to == Some(r.msg_id));
        if !answers {
            let text = format!(
                "{} -> {} {label}: answers nothing pending; ignored",
                self.ids[i], c.id
            );
            self.note(text);
            return;
        }
        let Some(r) = c.request.take() else { return };
        let (outcome, value, error) = interpret(r.kind, &env.body.payload);
        if let Some(op) = r.op {
            Rc::make_mut(&mut self.history).complete(
                op,
                outcome,
                value,
                error,
                self.slots[i].clock,
            );
            self.redigest_client(k);
        }
        if self.trace.is_some() {
            let what = match (r.delta, r.final_read) {
                (Some(d), _) => format!("add {d}"),
                (None, true) => "final read".into(),
                (None, false) => "read".into(),
            };
            let verdict = match (outcome, r.kind) {
                (Outcome::Ok, OpKind::Add) => "acknowledged".to_string(),
                (Outcome::Ok, OpKind::Read) => "answered".to_string(),
                (Outcome::Info, _) => "indeterminate".to_string(),
                (Outcome::Fail, _) => "failed".to_string(),
            };
            let detail = match &env.body.payload {
                Payload::Error { text, .. } => format!(" ({text})"),
                _ => String::new(),
            };
            let text = format!(
                "{} -> {} {label}: {what} {verdict}{detail}",
                self.ids[i], self.clients[k].id
            );
            self.note(text);
        }
        if r.final_read {
            self.clients[k].final_done = true;
        } else {
            self.next_request(k);
        }
    }

    fn note(&mut self, text: String) {
        if let Some(t) = self.trace.as_mut() {
            t.note(text);
        }
    }

    fn describe_event(&self, event: Event) -> String {
        let t = self.trace.as_ref();
        let name = |a: Actor| t.map_or_else(|| a.to_string(), |t| t.name(a));
        let flight = |msg: MsgId| self.flight.iter().find(|f| f.id == msg);
        match event {
            Event::Deliver { msg, .. } | Event::Lose { msg } => {
                let Some(f) = flight(msg) else {
                    return format!("{msg:?} (not in flight)");
                };
                let mut text = format!(
                    "{} -> {} {}",
                    name(f.id.src),
                    name(f.dest),
                    describe(&f.env.body.payload)
                );
                if let Payload::Error { text: why, .. } = &f.env.body.payload {
                    text.push_str(&format!(": {why}"));
                }
                if let Some(s) = &f.served {
                    text.push_str(&format!(" ({})", served_note(s)));
                }
                if let Actor::Client(k) = f.id.src {
                    if self.clients[k].request.is_some_and(|r| r.final_read) {
                        text.push_str(" (final read)");
                    }
                }
                if matches!(event, Event::Lose { .. }) {
                    text.push_str("  LOST");
                }
                text
            }
            Event::Fire { node } => {
                let now = self.slots[node].clock;
                let at = self.slots[node].wake.unwrap_or(now).max(now);
                format!(
                    "{}'s timer fires at {:.3} s (its clock)",
                    self.ids[node],
                    at.as_secs_f64()
                )
            }
            Event::Recover => format!(
                "nothing in flight: recovery; time jumps from {:.3} s to {:.3} s",
                self.latest().as_secs_f64(),
                (self.latest() + RECOVERY).as_secs_f64()
            ),
        }
    }

    /// The end of a complete schedule (or of one stuck with nothing
    /// enabled): the checker's verdict on the history.
    pub fn leaf(&self) -> Leaf {
        let check = check(&self.history);
        let mut key = String::new();
        for c in &self.clients {
            key.push_str(&c.id);
            key.push('[');
            for op in self.history.iter().filter(|op| *op.client == *c.id) {
                let outcome = op.outcome.map_or("pending", Outcome::name);
                match (op.kind, op.final_read) {
                    (OpKind::Add, _) => {
                        key.push_str(&format!(" +{}:{outcome}", op.delta.unwrap_or(0)))
                    }
                    (OpKind::Read, fin) => key.push_str(&format!(
                        " {}{}:{outcome}",
                        if fin { "final=" } else { "read=" },
                        op.value.map_or("-".into(), |v| v.to_string())
                    )),
                }
            }
            key.push_str(" ] ");
        }
        if let Some(p) = &self.problem {
            key.push_str(p);
        }
        Leaf {
            check,
            problem: self.problem.clone(),
            key,
            history: (*self.history).clone(),
        }
    }

    /// The trace, taken out (a traced world only).
    pub fn into_trace(self) -> Option<Trace> {
        self.trace
    }
}

thread_local! {
    /// The fingerprint's bytes, kept between calls so that the buffer is
    /// allocated once per thread, not once per state.
    static FINGERPRINT_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// The same for the digests of parts (taken while no fingerprint is).
    static DIGEST_BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The digest of a store's state without its sync keys, which nothing
/// reads. Taken only when a state is made, so parsing each key back from
/// its JSON text costs little.
fn readable_digest(state: &KvState) -> u128 {
    digest_with(|mut h| {
        for (k, v) in state.iter() {
            let sync = serde_json::from_str::<Value>(k).is_ok_and(|key| is_sync_key(&key));
            if !sync {
                (k, v).hash(&mut h);
            }
        }
    })
}

/// The XXH3-128 digest of what `feed` hashes.
fn digest_with(feed: impl FnOnce(&mut Fingerprinter)) -> u128 {
    DIGEST_BUFFER.with_borrow_mut(|buffer| {
        buffer.clear();
        let mut h = Fingerprinter(std::mem::take(buffer));
        feed(&mut h);
        let digest = h.finish128();
        *buffer = h.0;
        digest
    })
}

/// Collects the bytes `Hash` feeds it, then digests them at once with
/// XXH3-128: among the tens of millions of states a search may meet, two
/// that differ share a fingerprint with odds near 2^-80 (a collision would
/// skip a state). One digest of a buffer costs far less than hashing each
/// small field as it comes.
struct Fingerprinter(Vec<u8>);

impl Fingerprinter {
    fn finish128(&self) -> u128 {
        xxhash_rust::xxh3::xxh3_128(&self.0)
    }
}

impl Hasher for Fingerprinter {
    fn write(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    fn finish(&self) -> u64 {
        self.finish128() as u64
    }
}

/// The states a request to `seq-kv` may run against first. Without
/// reduction: every state of the client's window. With it, one per
/// distinct result: requests that change the store all land on the newest
/// state, so one stands for them; among those that change nothing and give
/// the same reply, only the one leaving the client at the stalest position
/// is kept, since from a staler position every later choice of the
/// fresher one is still open (the window only widens) and nothing else
/// differs.
///
/// Each choice comes with whether the answer stands on the chosen state
/// (it changed nothing there, so it depends on nothing newer and changes
/// only the client's position) rather than running against the newest.
fn seq_choices(kv: &SeqKv, req: &Envelope, merge: bool) -> Vec<(u64, bool)> {
    let window = kv.window(&req.src);
    let newest = *window.end();
    let request = &req.body.payload;
    // What a request that changes its chosen state does: it runs against
    // the newest state instead, whichever state was chosen.
    let mut on_newest: Option<(Payload, bool, u64)> = None;
    // (reply, changed, position after, chosen)
    let mut kept: Vec<(Payload, bool, u64, u64)> = Vec::new();
    for chosen in window {
        let Some(state) = kv.state(chosen) else {
            continue;
        };
        let (reply, change) = apply(state, request);
        let (reply, changed, after) = match change {
            None => (reply, false, chosen),
            Some(_) => on_newest
                .get_or_insert_with(|| {
                    let (reply, change) = apply(kv.latest(), request);
                    let changed = change.is_some();
                    (reply, changed, newest + u64::from(changed))
                })
                .clone(),
        };
        let same = kept
            .iter_mut()
            .find(|(r, c, _, _)| *c == changed && *r == reply);
        match same {
            Some(k) if merge => {
                if !changed && after < k.2 {
                    k.2 = after;
                    k.3 = chosen;
                }
            }
            _ => kept.push((reply, changed, after, chosen)),
        }
    }
    kept.into_iter()
        .map(|(_, changed, after, chosen)| (chosen, !changed && after == chosen))
        .collect()
}

/// The oldest state `seq-kv` still holds (a client it has never seen
/// starts there).
fn oldest(kv: &SeqKv) -> u64 {
    *kv.window("").start()
}

/// The key a KV request is about, hashed (two keys that collide are
/// merely treated as one: more dependence, never less).
fn key_hash(payload: &Payload) -> u64 {
    let key = match payload {
        Payload::Read { key: Some(k) } => k,
        Payload::Write { key, .. } | Payload::Cas { key, .. } => key,
        _ => return 0,
    };
    let mut h = std::collections::hash_map::DefaultHasher::new();
    key.to_string().hash(&mut h);
    h.finish()
}
