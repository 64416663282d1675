//! `gossip`: a state-based PN-Counter CRDT (a G-Counter while every delta
//! is 0 or more).
//!
//! A PN-Counter is two G-Counters, one for increments and one for
//! decrements: a slot's increments and its decrements each only grow, so
//! each merges by its maximum, and the value is their difference. (One
//! signed total per slot, merged by its maximum, is wrong: a peer would
//! keep the higher total from before a decrement and never see the
//! decrement. That is `gossip-max`, [`Gossip::signed_max`], kept to be
//! caught.) A cluster that is only ever asked to count up has no
//! decrements, and sends and stores exactly what a G-Counter does.
//!
//! Each node counts its own adds in its own slot and acknowledges them at
//! once: no network round trip, so add latency does not depend on network
//! latency. States merge by taking the maximum of every slot, which is
//! commutative, associative and idempotent, so gossip may be lost,
//! reordered or repeated and every node still converges to the sum once
//! the network heals. The price: a read may miss adds made elsewhere in
//! the last round or behind a partition.
//!
//! Each round (`config.gossip_interval`) a node sends its whole state to
//! every peer that is behind (not known to have all of it) or owed an
//! answer, at most one message per peer per round. A `gossip` asks for an
//! answer: the peer merges it and notes the sender as owed, and the answer
//! rides on the peer's next round, as a `gossip` if the sender is behind
//! the peer too (so it is answered in turn) or else as a `gossip_ack`,
//! which carries the same whole state but asks for no answer. The answer
//! is what tells the sender what the peer now knows: `known` only ever
//! records states a peer itself sent. So with changes at every node every
//! round, each ordered pair carries one message a round, no more than a
//! node that sends its whole state to every peer every round; an idle
//! cluster goes quiet once every owed answer is sent (an ack asks for
//! none). A lost message is repaired by the next round: the sender still
//! sees the peer as behind.
//!
//! A `gossip_interval` of zero is eager: an add starts a round at once,
//! and rounds of the node's own (for owed answers and repairs) come only
//! after [`EAGER_RETRY`] without one.
//!
//! # Crashes
//!
//! An add is acknowledged before any peer has heard of it, so a node that
//! crashes would take the adds of its last round with it. Every change to
//! the node's own slot is therefore stored ([`Ctx::persist`]: the slot and
//! every count) before the `add_ok`, and before any gossip, that reveals
//! it. A node that restarts with that state (`config.restored`) keeps
//! counting in the slot it names: the stored count is at least what any
//! peer has seen of that slot, so counting on from it loses nothing and
//! counts nothing twice. A node that restarts without it (no state kept,
//! or a state that does not parse) counts in a fresh slot, its id with
//! its incarnation ([`Ctx::slot`]), so its new adds are never swallowed
//! by what the peers already hold of an old slot; what it had not yet
//! gossiped is then lost.
//!
//! A read may answer more than the node's own adds: counts merged from
//! peers. So that a node restarted from its state never reads lower than
//! it answered before it stopped (a counter going backwards on one
//! node), a read whose value is above the stored state's stores the state
//! first. That costs a write per gossip round that raised the value, not
//! per read.

use super::{
    checked_signed, checked_sum, checked_total, share_limit, Ctx, Request, Strategy, Timer,
};
use crate::config::EAGER_RETRY;
use crate::error::ErrorCode;
use crate::protocol::{Counts, Payload};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

/// The CRDT's state: per slot, what it has counted up and what down.
#[derive(Debug, Default, Clone, Hash, PartialEq, Eq)]
struct State {
    counts: Counts,
    decrements: Counts,
}

#[derive(Debug, Default, Clone, Hash)]
pub struct Gossip {
    state: State,
    /// Per peer: the merge of every state it has shown us. A peer whose
    /// state covers ours needs nothing from us.
    known: BTreeMap<String, State>,
    /// Peers that sent a `gossip` since our last round to them: each is
    /// answered by the next round (see the module's doc).
    owed: BTreeSet<String>,
    /// Where this node counts its own adds: the slot of the state it
    /// restarted from, or [`Ctx::slot`]. Set by `on_start`.
    slot: String,
    /// The sums of the increments and of the decrements of the state last
    /// stored (or restored): a read of a state that has changed since
    /// stores it first, so that a node restarted from it never reads an
    /// older state than it answered.
    stored: (u64, u64),
    /// `gossip-max`: one signed total per slot, merged by its maximum.
    signed_max: bool,
}

/// What is stored to survive a crash: `{"slot": .., "counts": {..}}`, and
/// `"decrements": {..}` once there are any.
#[derive(Debug, Serialize, Deserialize)]
struct Saved<'a> {
    slot: Cow<'a, str>,
    counts: Cow<'a, Counts>,
    #[serde(default, skip_serializing_if = "no_counts")]
    decrements: Cow<'a, Counts>,
}

fn no_counts(c: &Counts) -> bool {
    c.is_empty()
}

impl Saved<'_> {
    /// The state stored by an earlier life of node `me`.
    fn restore(text: &str, me: &str) -> Result<Saved<'static>, String> {
        let saved: Saved<'static> = serde_json::from_str(text).map_err(|e| e.to_string())?;
        // `me`, or `me#<incarnation>`: a slot of another node's would count
        // this node's adds as that node's.
        let mine = match saved.slot.strip_prefix(me) {
            Some("") => true,
            Some(rest) => rest
                .strip_prefix('#')
                .is_some_and(|n| n.parse::<u64>().is_ok()),
            None => false,
        };
        if !mine {
            return Err(format!("slot `{}` is not one of {me}'s", saved.slot));
        }
        if checked_sum(saved.counts.values().copied()).is_none() {
            return Err("the counts add up past the largest total".into());
        }
        if checked_sum(saved.decrements.values().copied()).is_none() {
            return Err("the decrements add up past the largest total".into());
        }
        Ok(saved)
    }
}

/// Whether `text` is a state [`Gossip`] can take up as node `me`'s: what
/// a transport checks each stored line against, so that the line it
/// hands over is one the node will not refuse.
pub(crate) fn check_saved(text: &str, me: &str) -> Result<(), String> {
    Saved::restore(text, me).map(drop)
}

/// Whether `a` has every count of `b` (`a >= b` slot by slot).
fn covers_counts(a: &Counts, b: &Counts) -> bool {
    b.iter()
        .all(|(slot, &n)| a.get(slot).is_some_and(|&m| m >= n))
}

fn merge_counts(into: &mut Counts, from: &Counts) {
    for (slot, &n) in from {
        let mine = into.entry(slot.clone()).or_insert(0);
        *mine = (*mine).max(n);
    }
}

fn sum(counts: &Counts) -> u64 {
    // Every count taken in keeps the sum within MAX_TOTAL.
    checked_sum(counts.values().copied()).unwrap_or(super::MAX_TOTAL)
}

impl State {
    /// A slot's signed total (`gossip-max`'s view of it).
    fn total(&self, slot: &str) -> i64 {
        let get = |c: &Counts| c.get(slot).copied().unwrap_or(0) as i64;
        get(&self.counts) - get(&self.decrements)
    }

    /// Sets a slot's signed total, as `gossip-max` keeps it: a total below
    /// zero goes in `decrements`, so the wire and the stored state are
    /// the same as `gossip`'s.
    fn set_total(&mut self, slot: &str, total: i64) {
        self.counts.insert(slot.to_string(), total.max(0) as u64);
        match total < 0 {
            true => self
                .decrements
                .insert(slot.to_string(), total.unsigned_abs()),
            false => self.decrements.remove(slot),
        };
    }

    fn slots(&self) -> impl Iterator<Item = &String> {
        self.counts.keys().chain(self.decrements.keys())
    }

    /// Whether `self` already has everything of `other`.
    fn covers(&self, other: &State, signed_max: bool) -> bool {
        match signed_max {
            false => {
                covers_counts(&self.counts, &other.counts)
                    && covers_counts(&self.decrements, &other.decrements)
            }
            true => other.slots().all(|s| {
                (self.counts.contains_key(s) || self.decrements.contains_key(s))
                    && self.total(s) >= other.total(s)
            }),
        }
    }

    fn merge(&mut self, from: &State, signed_max: bool) {
        if !signed_max {
            merge_counts(&mut self.counts, &from.counts);
            merge_counts(&mut self.decrements, &from.decrements);
            return;
        }
        let slots: Vec<String> = from.slots().cloned().collect();
        for slot in slots {
            let known = self.counts.contains_key(&slot) || self.decrements.contains_key(&slot);
            if !known || from.total(&slot) > self.total(&slot) {
                self.set_total(&slot, from.total(&slot));
            }
        }
    }

    /// Whether the increments and the decrements each stay within
    /// MAX_TOTAL, so that the value is a total a client can be given.
    fn fits(&self) -> bool {
        checked_sum(self.counts.values().copied()).is_some()
            && checked_sum(self.decrements.values().copied()).is_some()
    }

    fn sums(&self) -> (u64, u64) {
        (sum(&self.counts), sum(&self.decrements))
    }
}

/// The sum of the counts of node `me`'s slots, in this life and earlier
/// ones: `me` and `me#<incarnation>`.
fn share_of(counts: &Counts, me: &str) -> u64 {
    let mine = counts.iter().filter(|(slot, _)| {
        slot.strip_prefix(me)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('#'))
    });
    checked_sum(mine.map(|(_, &n)| n)).unwrap_or(super::MAX_TOTAL)
}

impl Gossip {
    /// `gossip-max`: a wrong node to learn from (see the module's doc).
    pub fn signed_max() -> Self {
        Gossip {
            signed_max: true,
            ..Gossip::default()
        }
    }

    /// The counter's value: the increments less the decrements. Each sum
    /// is kept within `MAX_TOTAL`, so the difference fits an `i64`.
    pub fn value(&self) -> i64 {
        let (up, down) = self.state.sums();
        up as i64 - down as i64
    }

    fn arm(ctx: &mut Ctx<'_>) {
        if ctx.peers().next().is_some() && !ctx.timer_armed(Timer::Gossip) {
            let interval = match ctx.config.gossip_interval.is_zero() {
                true => EAGER_RETRY,
                false => ctx.config.gossip_interval,
            };
            let at = ctx.now + interval;
            ctx.set_timer(Timer::Gossip, at);
        }
    }

    /// Eager (`gossip_interval` zero): a round now, to send an add at
    /// once. The next round after it is again [`EAGER_RETRY`] away.
    fn eager_round(ctx: &mut Ctx<'_>) {
        if ctx.config.gossip_interval.is_zero() && ctx.peers().next().is_some() {
            ctx.set_timer(Timer::Gossip, ctx.now);
        }
    }

    /// Takes up the state an earlier life stored, if there is one; else
    /// counts in a fresh slot.
    fn restore(&mut self, ctx: &Ctx<'_>) {
        self.slot = ctx.slot();
        let Some(text) = &ctx.config.restored else {
            return;
        };
        match Saved::restore(text, ctx.me) {
            Ok(saved) => {
                let restored = State {
                    counts: saved.counts.into_owned(),
                    decrements: saved.decrements.into_owned(),
                };
                self.state.merge(&restored, self.signed_max);
                self.slot = saved.slot.into_owned();
                self.stored = self.state.sums();
                log::info!(
                    "restored: counting on in slot {} from {}, total {}",
                    self.slot,
                    self.state.total(&self.slot),
                    self.value()
                );
            }
            Err(e) => log::warn!(
                "the stored state cannot be used ({e}): counting in a fresh slot, {}; \
                 adds it held that no peer had seen are lost",
                self.slot
            ),
        }
    }

    /// Stores the slot and every count, before anything that follows;
    /// nothing if the transport stores nothing (`config.persist`).
    fn persist(&mut self, ctx: &mut Ctx<'_>) {
        if !ctx.config.persist {
            return;
        }
        self.stored = self.state.sums();
        let saved = Saved {
            slot: Cow::Borrowed(&self.slot),
            counts: Cow::Borrowed(&self.state.counts),
            decrements: Cow::Borrowed(&self.state.decrements),
        };
        match serde_json::to_string(&saved) {
            Ok(text) => ctx.persist(text),
            // Strings and integers always serialize.
            Err(e) => log::error!("cannot serialize the state: {e}"),
        }
    }

    /// Counts `delta` in this node's slot, or says why it cannot: every
    /// node keeps its increments, and its decrements, within an equal
    /// share of the largest total, so that however the partitions fall
    /// the merged sums fit.
    fn count(&mut self, ctx: &Ctx<'_>, delta: i64) -> Result<(), String> {
        let limit = share_limit(ctx.nodes.len());
        let nodes = ctx.nodes.len();
        if self.signed_max {
            let mine = self.state.total(&self.slot);
            let total = checked_signed(mine, delta)
                .filter(|t| t.unsigned_abs() <= limit)
                .filter(|_| checked_signed(self.value(), delta).is_some());
            let Some(total) = total else {
                return Err(format!(
                    "adding {delta} to this node's {mine} could overflow the counter: \
                     each of the {nodes} nodes may count up to {limit}"
                ));
            };
            let slot = self.slot.clone();
            self.state.set_total(&slot, total);
            return Ok(());
        }
        let down = delta < 0;
        let (counts, what) = match down {
            false => (&mut self.state.counts, ""),
            true => (&mut self.state.decrements, " decrements"),
        };
        let step = delta.unsigned_abs();
        let share = share_of(counts, ctx.me);
        let fits = checked_total(sum(counts), step).is_some()
            && checked_total(share, step).is_some_and(|s| s <= limit);
        if !fits {
            return Err(format!(
                "adding {delta} to this node's{what} {share} could overflow the counter: \
                 each of the {nodes} nodes may count{} up to {limit}",
                if down { " down" } else { "" }
            ));
        }
        *counts.entry(self.slot.clone()).or_insert(0) += step;
        Ok(())
    }
}

impl Strategy for Gossip {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.restore(ctx);
        Self::arm(ctx);
    }

    fn on_add(&mut self, ctx: &mut Ctx<'_>, req: Request, delta: i64) {
        if self.slot.is_empty() {
            // Not started: cannot happen, since the node starts a strategy
            // as soon as it builds it.
            self.slot = ctx.slot();
        }
        match self.count(ctx, delta) {
            Ok(()) => {
                // Stored before the `add_ok` (and the next gossip) leaves.
                // An add of 0 changes no count.
                if delta != 0 {
                    self.persist(ctx);
                    Self::eager_round(ctx);
                }
                ctx.answer(req, Payload::AddOk);
            }
            Err(text) => ctx.reply_error(&req, ErrorCode::MALFORMED_REQUEST, text),
        }
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_>, req: Request) {
        if self.state.sums() != self.stored {
            self.persist(ctx);
        }
        ctx.answer(
            req,
            Payload::ReadOk {
                value: self.value().into(),
            },
        );
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: Timer) {
        if timer != Timer::Gossip {
            return;
        }
        let peers: Vec<(String, bool)> = ctx
            .peers()
            .map(|p| {
                let behind = !self
                    .known
                    .get(p)
                    .is_some_and(|k| k.covers(&self.state, self.signed_max));
                (p.to_owned(), behind)
            })
            .filter(|(p, behind)| *behind || self.owed.contains(p))
            .collect();
        self.owed.clear();
        for (peer, behind) in peers {
            let (counts, decrements) = (self.state.counts.clone(), self.state.decrements.clone());
            // A peer that is behind must answer, so that we learn it has
            // caught up; one that is only owed an answer already has all
            // of ours, and answering it back would never end.
            let payload = match behind {
                true => Payload::Gossip { counts, decrements },
                false => Payload::GossipAck { counts, decrements },
            };
            ctx.send(&peer, payload);
        }
        Self::arm(ctx);
    }

    fn on_peer(&mut self, _ctx: &mut Ctx<'_>, from: &str, payload: Payload) -> bool {
        let (theirs, is_ack) = match payload {
            Payload::Gossip { counts, decrements } => (State { counts, decrements }, false),
            Payload::GossipAck { counts, decrements } => (State { counts, decrements }, true),
            _ => return false,
        };
        let mut merged = self.state.clone();
        merged.merge(&theirs, self.signed_max);
        if !merged.fits() {
            // Merged, it would read as a wrapped or clamped total. No
            // node that checks its adds sends this, so none of it is a
            // count an add_ok stands for.
            log::warn!("gossip from {from} rejected: its counts would overflow the counter");
            return true;
        }
        self.state = merged;
        self.known
            .entry(from.to_string())
            .or_default()
            .merge(&theirs, self.signed_max);
        if !is_ack {
            // Answered by our next round, not at once: an answer now would
            // be a second message to `from` in the round (see the module's
            // doc).
            self.owed.insert(from.to_string());
        }
        true
    }
}
