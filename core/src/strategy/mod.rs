//! How the counter is kept: one trait, one file per strategy.
//!
//! A strategy is a state machine. It reacts to a client's `add` or `read`,
//! to the reply (or the silence) of a KV call it made, to a peer's message
//! and to its own timers, and it acts only through [`Ctx`]: replying to a
//! client, calling a service, messaging a peer, arming a timer, storing
//! what must survive a crash. A CAS retry loop is "on precondition-failed,
//! send the next read", never an `await`.

mod cas;
mod gossip;
mod kv_calls;
mod naive;
mod per_node;
mod tally;

pub use cas::Cas;
pub use gossip::Gossip;
pub use kv_calls::{is_sync_key, SYNC_KEY_PREFIX};
pub use naive::Naive;
pub use per_node::PerNode;

use crate::config::{Config, StrategyKind};
use crate::error::ErrorCode;
use crate::io::Io;
pub use crate::io::{Request, Tag, Timer};
use crate::protocol::Payload;
use crate::Time;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::time::Duration;

/// The largest total a counter may reach. Maelstrom's checker keeps
/// counters in Java longs, so a total past `i64::MAX` would be misread.
pub const MAX_TOTAL: u64 = i64::MAX as u64;

/// `a + b` if it stays within [`MAX_TOTAL`].
pub fn checked_total(a: u64, b: u64) -> Option<u64> {
    a.checked_add(b).filter(|&t| t <= MAX_TOTAL)
}

/// `a + d` if it stays within `-MAX_TOTAL..=MAX_TOTAL`: a signed total
/// (`pn-counter`) may go as far below zero as above it.
pub fn checked_signed(a: i64, d: i64) -> Option<i64> {
    a.checked_add(d).filter(|t| t.unsigned_abs() <= MAX_TOTAL)
}

/// The sum of `counts` if it stays within [`MAX_TOTAL`].
pub fn checked_sum(counts: impl IntoIterator<Item = u64>) -> Option<u64> {
    counts.into_iter().try_fold(0, checked_total)
}

/// The most that one server's adds may come to when every server counts
/// its own share (`gossip`, `per-node`). A node cut off from the others
/// cannot know what they acknowledge meanwhile, so a check against the
/// total it sees would let the shares add up past [`MAX_TOTAL`] once they
/// meet; an equal share each can never.
pub fn share_limit(nodes: usize) -> u64 {
    MAX_TOTAL / nodes.max(1) as u64
}

/// Whether `text`, a line of a state file, is a state `kind` would take
/// up as node `me`'s ([`Config::restored`]), and if not, why. A transport
/// reading a state file keeps the last line that passes, so the node is
/// never handed a state it would drop. Only `gossip` stores states; the
/// others ignore what is stored.
pub fn check_stored(kind: StrategyKind, text: &str, me: &str) -> Result<(), String> {
    match kind {
        StrategyKind::Gossip | StrategyKind::GossipMax => gossip::check_saved(text, me),
        _ => Ok(()),
    }
}

/// What a strategy may do. Borrowed from the node for one event.
#[derive(Debug)]
pub struct Ctx<'a> {
    pub now: Time,
    /// This node's id.
    pub me: &'a str,
    /// Every server in the cluster, this one included, as `init` gave them.
    pub nodes: &'a [String],
    pub config: &'a Config,
    pub(crate) io: &'a mut Io,
}

impl Ctx<'_> {
    /// The other servers.
    pub fn peers(&self) -> impl Iterator<Item = &str> + '_ {
        self.nodes
            .iter()
            .map(String::as_str)
            .filter(move |n| *n != self.me)
    }

    /// The name under which this incarnation of the node writes or gossips
    /// its own share: the node id, with the incarnation after a restart.
    pub fn slot(&self) -> String {
        match self.config.incarnation {
            0 => self.me.to_string(),
            inc => format!("{}#{inc}", self.me),
        }
    }

    pub fn reply(&mut self, req: &Request, payload: Payload) {
        self.io.reply(self.me, &req.client, req.msg_id, payload);
    }

    /// [`reply`](Ctx::reply), taking the request: for a strategy done with
    /// it, since its client's name then becomes the reply's `dest` as it is.
    pub fn answer(&mut self, req: Request, payload: Payload) {
        self.io.answer(self.me, req, payload);
    }

    pub fn reply_error(&mut self, req: &Request, code: ErrorCode, text: impl Into<String>) {
        self.reply(req, Payload::error(code, text));
    }

    /// A one-way message (gossip): no `msg_id`, no reply expected.
    pub fn send(&mut self, dest: &str, payload: Payload) {
        self.io.send(self.me, dest, None, None, payload);
    }

    /// Calls the configured KV service. The reply comes back through
    /// [`Strategy::on_reply`] with `tag`, or [`Strategy::on_timeout`] after
    /// `config.rpc_timeout`.
    pub fn kv(&mut self, payload: Payload, tag: Tag) {
        self.kv_within(payload, tag, self.config.rpc_timeout);
    }

    /// [`kv`](Ctx::kv) with the call's own `timeout` in place of
    /// `config.rpc_timeout`.
    pub fn kv_within(&mut self, payload: Payload, tag: Tag, timeout: Duration) {
        let deadline = self.now + timeout;
        self.io
            .call(self.me, self.config.kv.name(), payload, tag, deadline);
    }

    /// Asks the transport to store `state` (one line: no `\n`) durably
    /// before it sends anything queued after this call (a reply
    /// acknowledging what the state holds, say). After a restart the node
    /// finds the last state stored in [`Config::restored`]. Only the latest
    /// state counts: a state queued right after another replaces it.
    pub fn persist(&mut self, state: String) {
        self.io.persist(state);
    }

    pub fn set_timer(&mut self, timer: Timer, at: Time) {
        self.io.timers.insert(timer, at);
    }

    pub fn clear_timer(&mut self, timer: Timer) {
        self.io.timers.remove(&timer);
    }

    pub fn timer_armed(&self, timer: Timer) -> bool {
        self.io.timers.contains_key(&timer)
    }
}

/// What a model checker needs of a strategy: a copy to branch from, and a
/// fingerprint of everything that decides what it does next, so that two
/// schedules reaching the same state are explored once. Every strategy
/// gets both from `Clone + Hash`; a strategy's state must therefore hash
/// the same whatever order it was built in (ordered maps, not `HashMap`).
pub trait Snapshot {
    fn clone_box(&self) -> Box<dyn Strategy>;
    fn fingerprint(&self, h: &mut dyn Hasher);
}

impl<T: Strategy + Clone + Hash + 'static> Snapshot for T {
    fn clone_box(&self) -> Box<dyn Strategy> {
        Box::new(self.clone())
    }

    fn fingerprint(&self, mut h: &mut dyn Hasher) {
        self.hash(&mut h);
    }
}

impl Clone for Box<dyn Strategy> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// One way of keeping the counter.
pub trait Strategy: Debug + Send + Snapshot {
    /// Right after `init_ok` has been queued.
    fn on_start(&mut self, _ctx: &mut Ctx<'_>) {}

    /// A client's `add`. `delta` is within `-MAX_TOTAL..=MAX_TOTAL`
    /// (negative under `pn-counter`); the strategy must answer exactly
    /// once, with `add_ok` or an error.
    fn on_add(&mut self, ctx: &mut Ctx<'_>, req: Request, delta: i64);

    /// A client's `read`, answered exactly once with `read_ok` or an error.
    fn on_read(&mut self, ctx: &mut Ctx<'_>, req: Request);

    /// The reply to a KV call (`read_ok`, `write_ok`, `cas_ok` or `error`).
    fn on_reply(&mut self, _ctx: &mut Ctx<'_>, _tag: Tag, _reply: Payload) {}

    /// A KV call got no reply in time. A late reply is dropped by the node,
    /// so the strategy must treat the call as possibly applied.
    fn on_timeout(&mut self, _ctx: &mut Ctx<'_>, _tag: Tag) {}

    fn on_timer(&mut self, _ctx: &mut Ctx<'_>, _timer: Timer) {}

    /// A message from another server that is not an RPC reply. Returns
    /// false if the strategy does not speak it.
    fn on_peer(&mut self, _ctx: &mut Ctx<'_>, _from: &str, _payload: Payload) -> bool {
        false
    }
}

/// The strategy to run, given the cluster `init` described. A cluster of
/// one has nobody to share with, so every strategy then keeps the counter
/// in memory (which is what `gossip` does without peers).
pub fn build(kind: StrategyKind, nodes: &[String]) -> Box<dyn Strategy> {
    if nodes.len() <= 1 {
        return Box::new(Gossip::default());
    }
    match kind {
        StrategyKind::Gossip => Box::new(Gossip::default()),
        StrategyKind::PerNode => Box::new(PerNode::default()),
        StrategyKind::Cas => Box::new(Cas::default()),
        StrategyKind::Naive => Box::new(Naive::default()),
        StrategyKind::GossipMax => Box::new(Gossip::signed_max()),
    }
}

#[cfg(test)]
mod testkit;
#[cfg(test)]
mod tests;
