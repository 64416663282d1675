//! The g-counter and pn-counter workloads (SPEC.md section 2) as a sans-IO
//! state machine.
//!
//! A [`Workload`] owns the clients: which node each is bound to, the one
//! operation each may have outstanding, their message ids, their timeouts,
//! and the [`History`] they write. It never touches a clock or a socket:
//! the driver (the simulator, or the process runner with real time) calls
//! [`Workload::poll`] with the current time and sends what it is given, and
//! hands every reply addressed to a client to [`Workload::on_reply`].
//!
//! The generator follows Maelstrom's: operations are spread over the whole
//! cluster at `rate` per second, each one a uniformly random delay in
//! `[0, 2/rate)` after the previous (Jepsen's `stagger`), and go to a random
//! idle client. Each is drawn like Maelstrom's `g-counter` draws it: pick
//! add or read with equal odds; an add draws `rand-int 10 - 5` and a
//! negative draw is thrown away and the pick made again. That leaves adds of
//! 0..=4 and reads in the proportion 1 : 2. Under `pn-counter` nothing is
//! thrown away: adds of -5..=4 and reads, 1 : 1.
//!
//! Phases: operations for `time_limit`; then no new operations until every
//! client is idle (each waits at most `client_timeout`), at which point
//! [`Step::Heal`] asks the driver to heal the network; `recovery` later,
//! every client issues one final read; when all have completed, [`Step::Done`].

use crate::history::{History, Invocation, OpError, OpKind, Outcome};
use crate::journal::{Journal, Journaled};
use crate::read_lag::{ReadLag, ReadLagStats};
use gcounter_core::{Body, Envelope, Payload, Time};
use serde::Serialize;
use std::time::Duration;

/// How long a client waits for a reply before the operation is `info`.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the final phase waits after healing, as Maelstrom does.
pub const RECOVERY: Duration = Duration::from_secs(10);

/// The id of client `i` (0-based): `c1`, `c2`, ...
pub fn client_id(i: usize) -> String {
    format!("c{}", i + 1)
}

/// The id of server `i` (0-based): `n0`, `n1`, ...
pub fn node_id(i: usize) -> String {
    format!("n{i}")
}

/// The ids of a cluster of `count` servers.
pub fn node_ids(count: usize) -> Vec<String> {
    (0..count).map(node_id).collect()
}

/// Whether `id` names a client. Maelstrom's rule: client ids start with `c`.
pub fn is_client(id: &str) -> bool {
    id.starts_with('c')
}

/// The `msg_id` of a client's first request.
const FIRST_MSG_ID: u64 = 1;

/// Which of Maelstrom's counter workloads: the same test, with deltas
/// 0..=4 (`g-counter`) or -5..=4 (`pn-counter`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkloadKind {
    #[default]
    GCounter,
    PnCounter,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 2] = [WorkloadKind::GCounter, WorkloadKind::PnCounter];

    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::GCounter => "g-counter",
            WorkloadKind::PnCounter => "pn-counter",
        }
    }

    pub fn is_g_counter(&self) -> bool {
        *self == WorkloadKind::GCounter
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for WorkloadKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        WorkloadKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown workload `{s}` (valid: g-counter, pn-counter)"))
    }
}

/// The workload's parameters.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkloadConfig {
    /// Left out of results for `g-counter`, which they described before
    /// there was a choice.
    #[serde(skip_serializing_if = "WorkloadKind::is_g_counter")]
    pub kind: WorkloadKind,
    /// Operations per second over the whole cluster (0: none but the final
    /// reads).
    pub rate: f64,
    /// How long operations are issued (and the nemesis is active).
    #[serde(with = "secs")]
    pub time_limit: Duration,
    /// How long to wait after healing before the final reads.
    #[serde(with = "secs")]
    pub recovery: Duration,
    /// How long a client waits for a reply.
    #[serde(with = "secs")]
    pub client_timeout: Duration,
    /// Each client's first operation is an add that changes the counter
    /// (the `adds-first` adversary); otherwise each is drawn as Maelstrom
    /// draws it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub adds_first: bool,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            kind: WorkloadKind::GCounter,
            rate: 100.0,
            time_limit: Duration::from_secs(20),
            recovery: RECOVERY,
            client_timeout: CLIENT_TIMEOUT,
            adds_first: false,
        }
    }
}

pub(crate) mod secs {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

/// Where the test is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// Issuing operations (the nemesis is active).
    Main,
    /// Time is up; waiting for outstanding operations to end.
    Draining,
    /// Healed; waiting `recovery` before the final reads.
    Recovery,
    /// Final reads issued, waiting for them.
    Final,
    Done,
}

/// What the driver must do next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Deliver this request (from a client to its node) now.
    Send(Envelope),
    /// Heal every network fault: the final phase begins.
    Heal,
    /// Nothing to do until a reply arrives or this time comes (`None`:
    /// only a reply can move things on).
    Wait(Option<Time>),
    /// The test is over.
    Done,
}

#[derive(Debug, Clone, Copy)]
struct Pending {
    op: usize,
    msg_id: u64,
    kind: OpKind,
    deadline: Time,
    final_read: bool,
    /// An add's delta.
    delta: i64,
    /// When it was sent, and the acknowledged sum then (for read lag).
    sent: Time,
    acked_at_send: u64,
}

#[derive(Debug)]
struct Client {
    id: String,
    node: String,
    next_msg_id: u64,
    pending: Option<Pending>,
    final_issued: bool,
    final_done: bool,
    /// Its next operation is an add that changes the counter (the
    /// `slow-kv` adversary holds a change of its node's for one).
    add_next: bool,
}

/// The clients, their generator and their history. See the module docs.
#[derive(Debug)]
pub struct Workload {
    cfg: WorkloadConfig,
    rng: fastrand::Rng,
    clients: Vec<Client>,
    history: Journal,
    /// The read values that were not plain integers.
    reads: ReadValues,
    lag: ReadLag,
    phase: Phase,
    next_op_at: Time,
    recovery_until: Time,
}

impl Workload {
    /// One client per node, client `i` bound to `nodes[i]`: Maelstrom's
    /// default concurrency.
    pub fn new(cfg: WorkloadConfig, nodes: &[String], rng: fastrand::Rng) -> Self {
        Self::with_concurrency(cfg, nodes, nodes.len(), rng)
    }

    /// `concurrency` clients, client `i` bound to `nodes[i % nodes.len()]`.
    pub fn with_concurrency(
        cfg: WorkloadConfig,
        nodes: &[String],
        concurrency: usize,
        rng: fastrand::Rng,
    ) -> Self {
        let clients = if nodes.is_empty() { 0 } else { concurrency };
        let lag = ReadLag::new(clients);
        let clients = (0..clients)
            .map(|i| Client {
                id: client_id(i),
                node: nodes[i % nodes.len()].clone(),
                next_msg_id: FIRST_MSG_ID,
                pending: None,
                final_issued: false,
                final_done: false,
                add_next: false,
            })
            .collect();
        Workload {
            cfg,
            rng,
            clients,
            history: Journal::new(None),
            reads: ReadValues::default(),
            lag,
            phase: Phase::Main,
            next_op_at: Time::ZERO,
            recovery_until: Time::ZERO,
        }
    }

    pub fn config(&self) -> &WorkloadConfig {
        &self.cfg
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// When the final reads are due, once the final heal has set it.
    pub fn final_reads_at(&self) -> Option<Time> {
        matches!(self.phase, Phase::Recovery | Phase::Final | Phase::Done)
            .then_some(self.recovery_until)
    }

    /// Keeps the first `keep` operations in memory and folds the rest as
    /// they complete (see [`Journal`]); before the first operation.
    pub fn bound_history(&mut self, keep: usize) {
        if self.history.history().is_empty() {
            self.history = Journal::new(Some(keep));
        }
    }

    /// The operations kept in memory (every one, unless bounded).
    pub fn history(&self) -> &History {
        self.history.history()
    }

    /// Read lag over the successful reads so far.
    pub fn read_lag(&self) -> Option<ReadLagStats> {
        self.lag.stats()
    }

    pub fn journal(&self) -> &Journal {
        &self.history
    }

    /// Operations completed since the last call, for `history.jsonl`
    /// (bounded only).
    pub fn take_completed(&mut self) -> Vec<crate::history::Operation> {
        self.history.take_completed()
    }

    pub fn into_history(self) -> History {
        self.history.finish().history
    }

    pub fn into_journaled(self) -> Journaled {
        self.history.finish()
    }

    /// The read values that were not plain integers, and what became of
    /// them.
    pub fn read_values(&self) -> &ReadValues {
        &self.reads
    }

    /// `(client, node)` for every client.
    pub fn clients(&self) -> impl Iterator<Item = (&str, &str)> {
        self.clients
            .iter()
            .map(|c| (c.id.as_str(), c.node.as_str()))
    }

    /// The next operation of each of `node`'s clients is an add that
    /// changes the counter: Maelstrom draws add or read, and the delta, at
    /// random for every operation.
    pub fn want_add(&mut self, node: &str) {
        for c in self.clients.iter_mut().filter(|c| c.node == node) {
            c.add_next = true;
        }
    }

    /// Whether one of node `node`'s clients waits for no reply.
    pub fn has_idle_client(&self, node: &str) -> bool {
        self.clients
            .iter()
            .any(|c| c.node == node && c.pending.is_none())
    }

    /// Whether `id` is one of this workload's clients.
    pub fn has_client(&self, id: &str) -> bool {
        self.clients.iter().any(|c| c.id == id)
    }

    /// Moves the test on at time `now`: times out overdue operations,
    /// changes phase, and returns the next thing to do. Call it until it
    /// returns [`Step::Wait`] or [`Step::Done`], and again after every
    /// [`Workload::on_reply`] and when the waited-for time comes.
    pub fn poll(&mut self, now: Time) -> Step {
        self.expire(now);
        loop {
            match self.phase {
                Phase::Main => {
                    if now >= self.cfg.time_limit {
                        self.phase = Phase::Draining;
                        continue;
                    }
                    if self.cfg.rate > 0.0 && now >= self.next_op_at {
                        if let Some(msg) = self.issue_main(now) {
                            return Step::Send(msg);
                        }
                    }
                    let next_op =
                        (self.cfg.rate > 0.0 && self.any_idle()).then_some(self.next_op_at);
                    let wake = [next_op, self.next_deadline(), Some(self.cfg.time_limit)];
                    return Step::Wait(wake.into_iter().flatten().min());
                }
                Phase::Draining => {
                    if self.any_busy() {
                        return Step::Wait(self.next_deadline());
                    }
                    self.phase = Phase::Recovery;
                    self.recovery_until = now + self.cfg.recovery;
                    log::debug!(
                        "{now:?}: all clients idle; healing, final reads at {:?}",
                        self.recovery_until
                    );
                    return Step::Heal;
                }
                Phase::Recovery => {
                    if now < self.recovery_until {
                        return Step::Wait(Some(self.recovery_until));
                    }
                    self.phase = Phase::Final;
                }
                Phase::Final => {
                    if let Some(i) = self.clients.iter().position(|c| !c.final_issued) {
                        return Step::Send(self.issue(i, OpKind::Read, None, true, now));
                    }
                    if self.clients.iter().all(|c| c.final_done) {
                        self.phase = Phase::Done;
                        continue;
                    }
                    return Step::Wait(self.next_deadline());
                }
                Phase::Done => return Step::Done,
            }
        }
    }

    /// A message addressed to a client. Returns whether it answered that
    /// client's outstanding operation (a late reply to an operation that
    /// already timed out does not).
    pub fn on_reply(&mut self, msg: &Envelope, now: Time) -> bool {
        let Some(i) = self.clients.iter().position(|c| c.id == msg.dest) else {
            return false;
        };
        let client = &mut self.clients[i];
        let Some(p) = client.pending else {
            return false;
        };
        if msg.body.in_reply_to != Some(p.msg_id) {
            return false;
        }
        client.pending = None;
        if p.final_read {
            client.final_done = true;
        }
        if let Payload::ReadOk { value } = &msg.body.payload {
            self.reads.count(value);
        }
        let (outcome, value, error) = interpret(p.kind, &msg.body.payload);
        match (outcome, p.kind, value) {
            (Outcome::Ok, OpKind::Add, _) => self.lag.add_ok(p.delta, now),
            (Outcome::Ok, OpKind::Read, Some(v)) => self.lag.read_ok(i, p.sent, p.acked_at_send, v),
            _ => {}
        }
        self.history.complete(p.op, outcome, value, error, now);
        true
    }

    fn expire(&mut self, now: Time) {
        for client in &mut self.clients {
            let Some(p) = client.pending else { continue };
            if p.deadline > now {
                continue;
            }
            client.pending = None;
            if p.final_read {
                client.final_done = true;
            }
            let text = format!(
                "no reply within {} s",
                self.cfg.client_timeout.as_secs_f64()
            );
            let error = Some(OpError { code: None, text });
            self.history.complete(p.op, Outcome::Info, None, error, now);
        }
    }

    fn any_idle(&self) -> bool {
        self.clients.iter().any(|c| c.pending.is_none())
    }

    fn any_busy(&self) -> bool {
        self.clients.iter().any(|c| c.pending.is_some())
    }

    fn next_deadline(&self) -> Option<Time> {
        self.clients
            .iter()
            .filter_map(|c| c.pending.map(|p| p.deadline))
            .min()
    }

    /// Draws the next operation and gives it to a random idle client.
    fn issue_main(&mut self, now: Time) -> Option<Envelope> {
        let idle: Vec<usize> = (0..self.clients.len())
            .filter(|&i| self.clients[i].pending.is_none())
            .collect();
        let &client = idle.get(self.rng.usize(..idle.len().max(1)))?;
        let (mut kind, mut delta) = self.draw();
        let first = self.cfg.adds_first && self.clients[client].next_msg_id == FIRST_MSG_ID;
        if first || std::mem::take(&mut self.clients[client].add_next) {
            // An add of more than 0 (or, for pn-counter, other than 0),
            // drawn as an add's delta is: one that changes nothing would
            // show no race.
            while kind != OpKind::Add || delta == Some(0) {
                (kind, delta) = self.draw();
            }
        }
        let dt = 1.0 / self.cfg.rate;
        self.next_op_at = now + Duration::from_secs_f64(self.rng.f64() * 2.0 * dt);
        Some(self.issue(client, kind, delta, false, now))
    }

    /// Maelstrom's `(gen/mix [adds reads])` for `pn-counter`, and
    /// `(gen/filter non-negative-add ...)` of it for `g-counter`.
    fn draw(&mut self) -> (OpKind, Option<i64>) {
        loop {
            if self.rng.bool() {
                let delta = self.rng.i64(0..10) - 5;
                if delta >= 0 || self.cfg.kind == WorkloadKind::PnCounter {
                    return (OpKind::Add, Some(delta));
                }
            } else {
                return (OpKind::Read, None);
            }
        }
    }

    fn issue(
        &mut self,
        i: usize,
        kind: OpKind,
        delta: Option<i64>,
        final_read: bool,
        now: Time,
    ) -> Envelope {
        let client = &mut self.clients[i];
        let msg_id = client.next_msg_id;
        client.next_msg_id += 1;
        if final_read {
            client.final_issued = true;
        }
        let op = self.history.invoke(Invocation {
            client: &client.id,
            node: &client.node,
            kind,
            delta,
            final_read,
            at: now,
        });
        client.pending = Some(Pending {
            op,
            msg_id,
            kind,
            deadline: now + self.cfg.client_timeout,
            final_read,
            delta: delta.unwrap_or(0),
            sent: now,
            acked_at_send: self.lag.acked(),
        });
        let payload = match kind {
            OpKind::Add => Payload::Add {
                delta: delta.unwrap_or(0),
            },
            OpKind::Read => Payload::Read { key: None },
        };
        Envelope {
            src: client.id.clone(),
            dest: client.node.clone(),
            body: Body {
                msg_id: Some(msg_id),
                in_reply_to: None,
                payload,
            },
        }
    }
}

/// A `read_ok`'s value as Maelstrom's client takes it: through Clojure's
/// `long` (SPEC.md section 2). `clojure.lang.RT/longCast` truncates a
/// floating-point number toward zero, and throws for one below
/// `Long/MIN_VALUE` or above `Long/MAX_VALUE` (compared as doubles, so
/// 2^63 itself passes and saturates) and for an integer that does not fit
/// in 64 bits; a value that is not a number throws too. A client that
/// throws leaves its operation `info`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ReadValue {
    /// An integer that fits: taken as it is.
    Integer(i64),
    /// A number written with a fraction or an exponent: truncated.
    Truncated(i64),
    /// A number outside the 64-bit range: `long` throws.
    OutOfRange,
    /// Not a number at all: `long` throws.
    NotANumber,
}

impl ReadValue {
    pub(crate) fn of(value: &serde_json::Value) -> ReadValue {
        let Some(n) = value.as_number() else {
            return ReadValue::NotANumber;
        };
        if let Some(v) = n.as_i64() {
            return ReadValue::Integer(v);
        }
        if n.is_u64() {
            // Above i64::MAX: a BigInt or a long overflow for Clojure.
            return ReadValue::OutOfRange;
        }
        // serde_json reads any other number (a fraction, an exponent, an
        // integer beyond 64 bits) as a finite f64.
        match n.as_f64() {
            Some(f) if f >= i64::MIN as f64 && f <= i64::MAX as f64 => {
                // `as` truncates toward zero and saturates, as Java's
                // (long) cast does.
                ReadValue::Truncated(f as i64)
            }
            _ => ReadValue::OutOfRange,
        }
    }
}

/// How many read values were not plain integers, by what Maelstrom's
/// client makes of them, with the first of each kind: the verdict follows
/// Maelstrom, and a warning says what it took.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReadValues {
    /// Truncated toward zero (170.5 reads as 170), the read `ok`.
    pub truncated: u64,
    /// Outside the 64-bit range: the read `info`.
    pub out_of_range: u64,
    /// Not a number: the read `info`.
    pub not_a_number: u64,
    /// The first value of each kind, as received (at most 100 bytes).
    pub first: [Option<String>; 3],
}

impl ReadValues {
    fn count(&mut self, value: &serde_json::Value) {
        let (kind, counter) = match ReadValue::of(value) {
            ReadValue::Integer(_) => return,
            ReadValue::Truncated(_) => (0, &mut self.truncated),
            ReadValue::OutOfRange => (1, &mut self.out_of_range),
            ReadValue::NotANumber => (2, &mut self.not_a_number),
        };
        *counter += 1;
        if self.first[kind].is_none() {
            let mut text = value.to_string();
            if text.len() > 100 {
                let mut end = 100;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
                text.push_str("...");
            }
            self.first[kind] = Some(text);
        }
    }

    /// One line per kind seen, for the summary, results.json and the
    /// page; empty when every value was an integer.
    pub fn warnings(&self) -> Vec<String> {
        let what = [
            "truncated toward zero as Maelstrom's client does (Clojure's long)",
            "outside the 64-bit range, made indeterminate (info) as Maelstrom's \
             client does (Clojure's long throws)",
            "not a number, made indeterminate (info) as Maelstrom's client does",
        ];
        let counts = [self.truncated, self.out_of_range, self.not_a_number];
        (0..3)
            .filter(|&k| counts[k] > 0)
            .map(|k| {
                let first = self.first[k].as_deref().unwrap_or("?");
                let taken = match (
                    k,
                    serde_json::from_str(first).ok().map(|v| ReadValue::of(&v)),
                ) {
                    (0, Some(ReadValue::Truncated(v))) => format!(" read as {v}"),
                    _ => String::new(),
                };
                format!(
                    "{} read value{} {}; the first: {first}{taken}",
                    counts[k],
                    if counts[k] == 1 { "" } else { "s" },
                    what[k]
                )
            })
            .collect()
    }
}

/// What a reply means for an operation of `kind`.
pub fn interpret(kind: OpKind, reply: &Payload) -> (Outcome, Option<i64>, Option<OpError>) {
    match (kind, reply) {
        (OpKind::Add, Payload::AddOk) => (Outcome::Ok, None, None),
        (OpKind::Read, Payload::ReadOk { value }) => match ReadValue::of(value) {
            ReadValue::Integer(v) | ReadValue::Truncated(v) => (Outcome::Ok, Some(v), None),
            ReadValue::OutOfRange => {
                let text = format!(
                    "read_ok value {value} is outside the 64-bit range (Clojure's long throws)"
                );
                (Outcome::Info, None, Some(OpError { code: None, text }))
            }
            ReadValue::NotANumber => {
                let text = format!("read_ok value {value} is not a number");
                (Outcome::Info, None, Some(OpError { code: None, text }))
            }
        },
        (_, Payload::Error { code, text }) => {
            let outcome = if code.is_definite() {
                Outcome::Fail
            } else {
                Outcome::Info
            };
            (
                outcome,
                None,
                Some(OpError {
                    code: Some(code.0),
                    text: text.clone(),
                }),
            )
        }
        (_, other) => {
            let text = format!(
                "unexpected reply `{}` to {}",
                other.type_name(),
                kind.name()
            );
            (Outcome::Info, None, Some(OpError { code: None, text }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gcounter_core::ErrorCode;

    fn reply(to: &Envelope, payload: Payload) -> Envelope {
        Envelope {
            src: to.dest.clone(),
            dest: to.src.clone(),
            body: Body {
                msg_id: Some(0),
                in_reply_to: to.body.msg_id,
                payload,
            },
        }
    }

    /// Runs the workload against a perfect counter that answers at once.
    fn run_perfect(cfg: WorkloadConfig, seed: u64) -> (History, Vec<Time>) {
        let nodes = node_ids(3);
        let mut w = Workload::new(cfg, &nodes, fastrand::Rng::with_seed(seed));
        let mut total = 0i64;
        let mut now = Time::ZERO;
        let mut heals = Vec::new();
        loop {
            match w.poll(now) {
                Step::Send(msg) => {
                    let answer = match msg.body.payload {
                        Payload::Add { delta } => {
                            total += delta;
                            Payload::AddOk
                        }
                        _ => Payload::ReadOk {
                            value: total.into(),
                        },
                    };
                    assert!(w.on_reply(&reply(&msg, answer), now));
                }
                Step::Heal => heals.push(now),
                Step::Wait(Some(t)) => {
                    assert!(t > now, "wait for {t:?} at {now:?}");
                    now = t;
                }
                Step::Wait(None) => panic!("stuck at {now:?}"),
                Step::Done => return (w.into_history(), heals),
            }
        }
    }

    #[test]
    fn rate_mix_and_phases_follow_maelstrom() {
        let (h, heals) = run_perfect(WorkloadConfig::default(), 7);
        let main: Vec<_> = h.iter().filter(|op| !op.final_read).collect();
        // 100/s for 20 s.
        assert!((1800..2200).contains(&main.len()), "{} ops", main.len());
        let adds = main.iter().filter(|op| op.kind == OpKind::Add).count() as f64;
        let share = adds / main.len() as f64;
        assert!((0.30..0.37).contains(&share), "add share {share}");
        assert!(main.iter().all(|op| op.delta.is_none_or(|d| d <= 4)));
        assert!((0..=4).all(|d| main.iter().any(|op| op.delta == Some(d))));
        assert!(main.iter().all(|op| op.invoke < Duration::from_secs(20)));
        assert_eq!(heals, vec![Duration::from_secs(20)]);
        let finals: Vec<_> = h.iter().filter(|op| op.final_read).collect();
        assert_eq!(finals.len(), 3);
        assert!(finals.iter().all(|op| op.invoke == Duration::from_secs(30)));
        assert!(h.iter().all(|op| op.outcome == Some(Outcome::Ok)));
    }

    /// The `adds-first` adversary: every client's first operation is an
    /// add; the rest are drawn as before.
    #[test]
    fn adds_first_makes_each_clients_first_operation_an_add_of_more_than_0() {
        for seed in 0..20 {
            let cfg = WorkloadConfig {
                time_limit: Duration::from_secs(2),
                adds_first: true,
                ..Default::default()
            };
            let (h, _) = run_perfect(cfg, seed);
            for client in ["c1", "c2", "c3"] {
                let first = h.iter().find(|op| op.client == client).expect("an op");
                assert_eq!(first.kind, OpKind::Add, "seed {seed}, {client}");
                assert!(first.delta.is_some_and(|d| d > 0), "seed {seed}, {client}");
            }
            let reads = h
                .iter()
                .filter(|op| op.kind == OpKind::Read && !op.final_read);
            assert!(reads.count() > 50, "seed {seed}: the rest is still a mix");
        }
    }

    #[test]
    fn silence_times_out_as_info_and_ends_the_test() {
        let cfg = WorkloadConfig {
            rate: 10.0,
            time_limit: Duration::from_secs(2),
            ..Default::default()
        };
        let nodes = node_ids(2);
        let mut w = Workload::new(cfg, &nodes, fastrand::Rng::with_seed(1));
        let mut now = Time::ZERO;
        let mut sent = 0;
        loop {
            match w.poll(now) {
                Step::Send(_) => sent += 1,
                Step::Heal => {}
                Step::Wait(Some(t)) => now = t,
                Step::Wait(None) => panic!("stuck"),
                Step::Done => break,
            }
        }
        let h = w.into_history();
        assert_eq!(h.len(), sent);
        assert!(h.iter().all(|op| op.outcome == Some(Outcome::Info)));
        assert!(h.iter().all(|op| op.latency() == Some(CLIENT_TIMEOUT)));
        // One op per client before 2 s (each then waits 5 s), plus finals.
        assert_eq!(h.iter().filter(|op| op.final_read).count(), 2);
    }

    #[test]
    fn replies_are_matched_and_judged() {
        let nodes = node_ids(1);
        let cfg = WorkloadConfig {
            rate: 1.0,
            ..Default::default()
        };
        let mut w = Workload::new(cfg, &nodes, fastrand::Rng::with_seed(3));
        let Step::Send(msg) = w.poll(Time::ZERO) else {
            panic!()
        };
        let mut wrong = reply(&msg, Payload::AddOk);
        wrong.body.in_reply_to = Some(999);
        assert!(!w.on_reply(&wrong, Time::ZERO));
        let err = Payload::error(ErrorCode::TEMPORARILY_UNAVAILABLE, "busy");
        assert!(w.on_reply(&reply(&msg, err), Time::ZERO));
        assert_eq!(w.history().ops[0].outcome, Some(Outcome::Fail));
        assert!(
            !w.on_reply(&reply(&msg, Payload::AddOk), Time::ZERO),
            "answered twice"
        );
        assert_eq!(
            interpret(OpKind::Add, &Payload::error(ErrorCode::CRASH, "")).0,
            Outcome::Info
        );
        assert_eq!(interpret(OpKind::Read, &Payload::AddOk).0, Outcome::Info);
        assert_eq!(
            interpret(OpKind::Read, &Payload::ReadOk { value: "x".into() }).0,
            Outcome::Info
        );
        assert_eq!(
            interpret(OpKind::Read, &Payload::ReadOk { value: 4.into() }),
            (Outcome::Ok, Some(4), None)
        );
    }

    #[test]
    fn read_values_are_taken_through_clojures_long() {
        let of = |text: &str| ReadValue::of(&serde_json::from_str(text).unwrap());
        assert_eq!(of("170"), ReadValue::Integer(170));
        assert_eq!(of("170.5"), ReadValue::Truncated(170));
        assert_eq!(of("-170.9"), ReadValue::Truncated(-170));
        assert_eq!(of("1e3"), ReadValue::Truncated(1000));
        assert_eq!(of("9223372036854775807"), ReadValue::Integer(i64::MAX));
        assert_eq!(of("9223372036854775808"), ReadValue::OutOfRange);
        assert_eq!(of("18446744073709551733"), ReadValue::OutOfRange);
        assert_eq!(of("-9223372036854775809"), ReadValue::Truncated(i64::MIN));
        assert_eq!(of("-1e19"), ReadValue::OutOfRange);
        assert_eq!(of("\"170\""), ReadValue::NotANumber);
        assert_eq!(of("null"), ReadValue::NotANumber);
        let mut reads = ReadValues::default();
        for text in ["1", "170.5", "2.5", "18446744073709551733", "[1]"] {
            reads.count(&serde_json::from_str(text).unwrap());
        }
        assert_eq!(
            reads.warnings(),
            [
                "2 read values truncated toward zero as Maelstrom's client does \
                 (Clojure's long); the first: 170.5 read as 170",
                "1 read value outside the 64-bit range, made indeterminate (info) as \
                 Maelstrom's client does (Clojure's long throws); the first: \
                 1.8446744073709552e+19",
                "1 read value not a number, made indeterminate (info) as Maelstrom's \
                 client does; the first: [1]",
            ]
        );
    }
}
