//! Requests to the store that two adversaries hold until a client has an
//! add acknowledged, so that a race a node has in its use of the store
//! opens in every run instead of when the machine's timing allows.
//!
//! - `adds-first`: every node but the first to reach for a service waits
//!   until an add of more than 0 has been acknowledged anywhere. A race in
//!   a node's *first* read-modify-write (a blind `write 0` to a key it
//!   reads as missing) erases something only if another node's add was
//!   stored and acknowledged before that first read; when every client
//!   starts with an add at once, the first requests overlap and nothing
//!   has been acknowledged yet.
//! - `slow-kv`: a change (`write` or `cas`) a node sends waits until that
//!   node acknowledges an add of more than 0, and the workload makes that
//!   node's client's next operation such an add. A node that acknowledges
//!   adds into a buffer and clears the whole buffer when its change lands
//!   loses exactly that add. A held change may be what the node's busy
//!   client waits for (an add stored before its `add_ok`, a read's sync
//!   write): so when the node is *stuck* (its clients all busy and nothing
//!   it sent to a store still on its way but what is held) for
//!   [`STUCK_HOLD`], its oldest held change goes on.
//!
//! The rules they stay inside (SPEC.md sections 2 and 3): any finite delay
//! of a node<->service message has positive probability under Maelstrom's
//! exponential latency, and Maelstrom's generator draws add or read, and
//! the delta, at random for every operation. Every hold is finite (the
//! acknowledgement, or [`FIRST_HOLD`] / [`CHANGE_HOLD`] at most); a
//! released message still takes its own sampled delay; replies are never
//! held.

use super::msg::Msg;
use gcounter_core::Time;
use std::collections::BTreeMap;
use std::time::Duration;

/// How long `adds-first` holds at most: far inside a client's 5 s, and
/// long enough for the opening node's add on a loaded machine.
pub const FIRST_HOLD: Duration = Duration::from_secs(1);

/// How long `slow-kv` holds a change at most, inside its own range of
/// delays (up to 1 s).
pub const CHANGE_HOLD: Duration = Duration::from_millis(800);

/// How long a node may stay stuck before its oldest held change goes on:
/// what its client may be waiting on is only slowed, and a real process
/// that just got a reply has this long to send its next request.
pub const STUCK_HOLD: Duration = Duration::from_millis(100);

/// What a held request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Until {
    /// An add acknowledged by any node (`adds-first`).
    AnyAck,
    /// An add acknowledged by the node that sent it (`slow-kv`).
    OwnAck,
}

#[derive(Debug)]
struct Held {
    until: Until,
    /// When to look again (`OwnAck`: whether its node is stuck).
    check: Time,
    /// When it goes on whatever happens.
    cap: Time,
    id: u64,
    msg: Msg,
    /// Its sampled delay, taken after the release.
    delay: Duration,
}

/// A released request: its id, itself, and the delay it still takes.
pub(super) type Released = (u64, Msg, Duration);

/// The holds in force and the requests they hold.
#[derive(Debug, Default)]
pub(super) struct Holds {
    /// `adds-first`: still to come or in force (ends for good at the first
    /// acknowledgement or when it runs out).
    first_armed: bool,
    /// The node whose request reached for the store first: never held by
    /// `adds-first`.
    opener: Option<String>,
    /// When `adds-first`'s hold runs out (set by the first request held).
    first_deadline: Option<Time>,
    /// `slow-kv`'s rule is on.
    changes: bool,
    /// Per node, its requests to a store that are on their way or at the
    /// store, not held (kept while `changes` is on).
    in_flight: BTreeMap<String, u32>,
    /// In send order.
    held: Vec<Held>,
}

impl Holds {
    pub fn new(adds_first: bool, slow_kv: bool) -> Self {
        Holds {
            first_armed: adds_first,
            changes: slow_kv,
            ..Holds::default()
        }
    }

    /// Whether a rule is on at all: the test core looks no further for
    /// most runs.
    pub fn active(&self) -> bool {
        self.first_armed || self.changes || !self.held.is_empty()
    }

    /// Holds a request node `src` sends a service now, if a rule says so
    /// (`change`: whether it is a write or a cas); otherwise hands it back.
    pub fn offer(
        &mut self,
        (id, msg, delay): Released,
        now: Time,
        change: impl FnOnce(&Msg) -> bool,
    ) -> Option<Released> {
        let src = msg.src();
        let first = self.first_armed && *self.opener.get_or_insert_with(|| src.to_string()) != src;
        let until = if first {
            let deadline = *self.first_deadline.get_or_insert(now + FIRST_HOLD);
            Some((Until::AnyAck, deadline, deadline))
        } else if self.changes && change(&msg) {
            Some((Until::OwnAck, now + STUCK_HOLD, now + CHANGE_HOLD))
        } else {
            None
        };
        let Some((until, check, cap)) = until else {
            self.passed(src);
            return Some((id, msg, delay));
        };
        self.held.push(Held {
            until,
            check,
            cap,
            id,
            msg,
            delay,
        });
        None
    }

    /// A request of `node`'s went to the store.
    fn passed(&mut self, node: &str) {
        if self.changes {
            *self.in_flight.entry(node.to_string()).or_default() += 1;
        }
    }

    /// A store answered `node`.
    pub fn store_answered(&mut self, node: &str) {
        if let Some(n) = self.in_flight.get_mut(node) {
            *n = n.saturating_sub(1);
        }
    }

    /// `node` was killed: what it had at the store is nobody's now.
    pub fn killed(&mut self, node: &str) {
        self.in_flight.remove(node);
    }

    /// Whether `slow-kv` holds a change of `node`'s (whose client should
    /// be given an add).
    pub fn holds_change_of(&self, node: &str) -> bool {
        self.held
            .iter()
            .any(|h| h.until == Until::OwnAck && h.msg.src() == node)
    }

    /// Whether an add acknowledged by `node` would release something.
    pub fn waits_on(&self, node: &str) -> bool {
        self.first_armed || self.holds_change_of(node)
    }

    /// Node `node` acknowledged an add of more than 0: what waited for it,
    /// in send order. `adds-first` ends for good.
    pub fn acked(&mut self, node: &str) -> Vec<Released> {
        self.first_armed = false;
        self.release(|h| h.until == Until::AnyAck || h.msg.src() == node)
    }

    /// When to look at the holds again.
    pub fn deadline(&self) -> Option<Time> {
        self.held.iter().map(|h| h.check).min()
    }

    /// What goes on at `now`: every hold that ran out, and the oldest held
    /// change of each node that is stuck (`idle`: whether one of a node's
    /// clients is idle). Once `adds-first`'s hold has run out it holds
    /// nothing more.
    pub fn due(&mut self, now: Time, idle: impl Fn(&str) -> bool) -> Vec<Released> {
        if self.first_deadline.is_some_and(|d| d <= now) {
            self.first_armed = false;
        }
        let mut released = self.release(|h| h.cap <= now);
        let mut looked: Vec<&str> = Vec::new();
        let mut stuck: Vec<u64> = Vec::new();
        for h in self.held.iter_mut() {
            if h.until != Until::OwnAck || h.check > now {
                continue;
            }
            let node = h.msg.src();
            if !looked.contains(&node) {
                looked.push(node);
                if self.in_flight.get(node).copied().unwrap_or(0) == 0 && !idle(node) {
                    stuck.push(h.id);
                    continue;
                }
            }
            h.check = (now + STUCK_HOLD).min(h.cap);
        }
        released.extend(self.release(|h| stuck.contains(&h.id)));
        released
    }

    /// Everything, for good (the final phase begins).
    pub fn end(&mut self) -> Vec<Released> {
        self.first_armed = false;
        self.changes = false;
        self.release(|_| true)
    }

    fn release(&mut self, which: impl Fn(&Held) -> bool) -> Vec<Released> {
        let (out, keep): (Vec<Held>, Vec<Held>) =
            std::mem::take(&mut self.held).into_iter().partition(which);
        self.held = keep;
        for h in &out {
            self.passed(h.msg.src());
        }
        out.into_iter().map(|h| (h.id, h.msg, h.delay)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(src: &str, id: u64) -> Released {
        let msg = Msg::Raw {
            src: src.into(),
            dest: "seq-kv".into(),
            line: Vec::new(),
        };
        (id, msg, Duration::from_millis(3))
    }

    fn ids(released: Vec<Released>) -> Vec<u64> {
        released.into_iter().map(|(id, ..)| id).collect()
    }

    const T: Time = Time::ZERO;
    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn adds_first_lets_the_opener_pass_and_holds_the_others_until_an_ack() {
        let mut h = Holds::new(true, false);
        let never = |_: &Msg| panic!("adds-first alone asks nothing more");
        assert!(h.offer(msg("n1", 1), T, never).is_some());
        assert!(h.offer(msg("n1", 2), T, never).is_some());
        assert!(h.offer(msg("n0", 3), T, never).is_none());
        assert!(h.offer(msg("n2", 4), T + 5 * MS, never).is_none());
        assert_eq!(h.deadline(), Some(T + FIRST_HOLD), "from the first held");
        assert!(h.waits_on("n1") && !h.holds_change_of("n0"));
        assert_eq!(ids(h.acked("n1")), [3, 4], "in send order");
        assert!(h.offer(msg("n0", 5), T + 5 * MS, never).is_some());
        assert!(!h.active());
    }

    #[test]
    fn adds_first_ends_when_its_hold_runs_out() {
        let mut h = Holds::new(true, false);
        let no = |_: &Msg| false;
        h.offer(msg("n0", 1), T, no);
        h.offer(msg("n1", 2), T, no);
        assert!(ids(h.due(T, |_| false)).is_empty());
        assert_eq!(ids(h.due(T + FIRST_HOLD, |_| false)), [2]);
        assert!(h.offer(msg("n2", 3), T + FIRST_HOLD, no).is_some());
    }

    #[test]
    fn slow_kv_holds_a_change_until_its_own_nodes_ack_or_the_cap() {
        let mut h = Holds::new(false, true);
        let yes = |_: &Msg| true;
        assert!(h.offer(msg("n0", 1), T, |_| false).is_some(), "a read");
        assert!(h.offer(msg("n0", 2), T, yes).is_none());
        assert!(h.offer(msg("n1", 3), T, yes).is_none());
        assert!(h.holds_change_of("n0") && !h.holds_change_of("n2"));
        assert_eq!(ids(h.acked("n1")), [3], "only its own node's ack");
        // n0 has its read at the store, and an idle client: not stuck.
        assert!(ids(h.due(T + STUCK_HOLD, |_| true)).is_empty());
        h.store_answered("n0");
        assert!(ids(h.due(T + 2 * STUCK_HOLD, |_| true)).is_empty(), "idle");
        assert_eq!(ids(h.due(T + CHANGE_HOLD, |_| true)), [2], "the cap");
        assert!(h.active(), "the rule stays on");
        h.offer(msg("n0", 4), T, yes);
        assert_eq!(ids(h.end()), [4]);
        assert!(!h.active());
    }

    #[test]
    fn slow_kv_lets_a_stuck_nodes_oldest_change_go() {
        let mut h = Holds::new(false, true);
        let yes = |_: &Msg| true;
        // n0's client is busy; its sync write, then a flush's cas.
        h.offer(msg("n0", 1), T, yes);
        h.offer(msg("n0", 2), T + MS, yes);
        let busy = |_: &str| false;
        assert!(ids(h.due(T + STUCK_HOLD - MS, busy)).is_empty());
        assert_eq!(
            ids(h.due(T + STUCK_HOLD + MS, busy)),
            [1],
            "the oldest only"
        );
        // The sync write is at the store: n0 is not stuck, the cas waits.
        assert!(ids(h.due(T + 3 * STUCK_HOLD, busy)).is_empty());
        h.store_answered("n0");
        assert_eq!(ids(h.acked("n0")), [2]);
    }

    #[test]
    fn without_a_rule_nothing_is_held() {
        let mut h = Holds::new(false, false);
        assert!(!h.active());
        assert!(h.offer(msg("n0", 1), T, |_| true).is_some());
    }
}
