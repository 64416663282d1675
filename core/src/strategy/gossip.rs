//! `gossip`: a state-based G-Counter CRDT.
//!
//! Each node counts its own adds in its own slot and acknowledges them at
//! once: no network round trip, so add latency does not depend on network
//! latency. States merge by taking the maximum of every slot, which is
//! commutative, associative and idempotent, so gossip may be lost,
//! reordered or repeated and every node still converges to the sum once
//! the network heals. The price: a read may miss adds made elsewhere in
//! the last round or behind a partition.
//!
//! Each round a node sends its state only to peers not known to have all of
//! it. A peer answers a `gossip` with a `gossip_ack` carrying its merged
//! state, which tells the sender what the peer now knows; an idle cluster
//! sends nothing.
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

use super::{checked_sum, checked_total, share_limit, Ctx, Request, Strategy, Timer};
use crate::error::ErrorCode;
use crate::protocol::{Counts, Payload};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

#[derive(Debug, Default, Clone, Hash)]
pub struct Gossip {
    counts: Counts,
    /// Per peer: the merge of every state it has shown us. A peer whose
    /// state covers ours needs nothing from us.
    known: BTreeMap<String, Counts>,
    /// Where this node counts its own adds: the slot of the state it
    /// restarted from, or [`Ctx::slot`]. Set by `on_start`.
    slot: String,
    /// The value of the state last stored (or restored): a read that
    /// would answer more stores the state first, so that a node
    /// restarted from it never reads lower than it answered.
    stored: u64,
}

/// What is stored to survive a crash: `{"slot": .., "counts": {..}}`.
#[derive(Debug, Serialize, Deserialize)]
struct Saved<'a> {
    slot: Cow<'a, str>,
    counts: Cow<'a, Counts>,
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
fn covers(a: &Counts, b: &Counts) -> bool {
    b.iter()
        .all(|(slot, &n)| a.get(slot).is_some_and(|&m| m >= n))
}

fn merge(into: &mut Counts, from: &Counts) {
    for (slot, &n) in from {
        let mine = into.entry(slot.clone()).or_insert(0);
        *mine = (*mine).max(n);
    }
}

impl Gossip {
    /// The counter's value: the sum over every slot. Every count that is
    /// taken in keeps it within `MAX_TOTAL`, so it never saturates.
    pub fn value(&self) -> u64 {
        checked_sum(self.counts.values().copied()).unwrap_or(super::MAX_TOTAL)
    }

    /// What this node has counted, in this life and earlier ones: the
    /// slots `me` and `me#<incarnation>`.
    fn own_share(&self, me: &str) -> u64 {
        let mine = self.counts.iter().filter(|(slot, _)| {
            slot.strip_prefix(me)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('#'))
        });
        checked_sum(mine.map(|(_, &n)| n)).unwrap_or(super::MAX_TOTAL)
    }

    fn arm(ctx: &mut Ctx<'_>) {
        if ctx.peers().next().is_some() && !ctx.timer_armed(Timer::Gossip) {
            let at = ctx.now + ctx.config.gossip_interval;
            ctx.set_timer(Timer::Gossip, at);
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
                merge(&mut self.counts, &saved.counts);
                self.slot = saved.slot.into_owned();
                self.stored = self.value();
                log::info!(
                    "restored: counting on in slot {} from {}, total {}",
                    self.slot,
                    self.counts.get(&self.slot).copied().unwrap_or(0),
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
        self.stored = self.value();
        let saved = Saved {
            slot: Cow::Borrowed(&self.slot),
            counts: Cow::Borrowed(&self.counts),
        };
        match serde_json::to_string(&saved) {
            Ok(text) => ctx.persist(text),
            // Strings and integers always serialize.
            Err(e) => log::error!("cannot serialize the state: {e}"),
        }
    }
}

impl Strategy for Gossip {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.restore(ctx);
        Self::arm(ctx);
    }

    fn on_add(&mut self, ctx: &mut Ctx<'_>, req: Request, delta: u64) {
        if self.slot.is_empty() {
            // Not started: cannot happen, since the node starts a strategy
            // as soon as it builds it.
            self.slot = ctx.slot();
        }
        let mine = self.counts.get(&self.slot).copied().unwrap_or(0);
        let fits = checked_total(self.value(), delta).is_some()
            && checked_total(self.own_share(ctx.me), delta)
                .is_some_and(|share| share <= share_limit(ctx.nodes.len()));
        match fits {
            true => {
                match self.counts.get_mut(&self.slot) {
                    Some(count) => *count = mine + delta,
                    None => {
                        self.counts.insert(self.slot.clone(), delta);
                    }
                }
                // Stored before the `add_ok` (and the next gossip) leaves.
                // An add of 0 changes no count.
                if delta > 0 {
                    self.persist(ctx);
                }
                ctx.answer(req, Payload::AddOk);
            }
            false => ctx.reply_error(
                &req,
                ErrorCode::MALFORMED_REQUEST,
                format!(
                    "adding {delta} to this node's {} could overflow the counter: \
                     each of the {} nodes may count up to {}",
                    self.own_share(ctx.me),
                    ctx.nodes.len(),
                    share_limit(ctx.nodes.len())
                ),
            ),
        }
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_>, req: Request) {
        if self.value() > self.stored {
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
        let behind: Vec<String> = ctx
            .peers()
            .filter(|p| !self.known.get(*p).is_some_and(|k| covers(k, &self.counts)))
            .map(str::to_owned)
            .collect();
        for peer in behind {
            ctx.send(
                &peer,
                Payload::Gossip {
                    counts: self.counts.clone(),
                },
            );
        }
        Self::arm(ctx);
    }

    fn on_peer(&mut self, ctx: &mut Ctx<'_>, from: &str, payload: Payload) -> bool {
        let (counts, is_ack) = match payload {
            Payload::Gossip { counts } => (counts, false),
            Payload::GossipAck { counts } => (counts, true),
            _ => return false,
        };
        let mut merged = self.counts.clone();
        merge(&mut merged, &counts);
        if checked_sum(merged.values().copied()).is_none() {
            // Merged, it would read as a wrapped or clamped total. No
            // node that checks its adds sends this, so none of it is a
            // count an add_ok stands for.
            log::warn!("gossip from {from} rejected: its counts would overflow the counter");
            return true;
        }
        self.counts = merged;
        merge(self.known.entry(from.to_string()).or_default(), &counts);
        if !is_ack {
            // Not recorded in `known`: the ack may be lost, and only what
            // the peer itself shows us proves what it has.
            ctx.send(
                from,
                Payload::GossipAck {
                    counts: self.counts.clone(),
                },
            );
        }
        true
    }
}
