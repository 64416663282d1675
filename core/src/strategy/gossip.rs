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

use super::{checked_total, Ctx, Request, Strategy, Timer};
use crate::error::ErrorCode;
use crate::protocol::{Counts, Payload};
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub struct Gossip {
    counts: Counts,
    /// Per peer: the merge of every state it has shown us. A peer whose
    /// state covers ours needs nothing from us.
    known: BTreeMap<String, Counts>,
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
    /// The counter's value: the sum over every slot.
    pub fn value(&self) -> u64 {
        self.counts.values().sum()
    }

    fn arm(ctx: &mut Ctx<'_>) {
        if ctx.peers().next().is_some() && !ctx.timer_armed(Timer::Gossip) {
            let at = ctx.now + ctx.config.gossip_interval;
            ctx.set_timer(Timer::Gossip, at);
        }
    }
}

impl Strategy for Gossip {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        Self::arm(ctx);
    }

    fn on_add(&mut self, ctx: &mut Ctx<'_>, req: Request, delta: u64) {
        let slot = ctx.slot();
        let mine = self.counts.get(&slot).copied().unwrap_or(0);
        match checked_total(self.value(), delta) {
            Some(_) => {
                self.counts.insert(slot, mine + delta);
                ctx.reply(&req, Payload::AddOk);
            }
            None => ctx.reply_error(
                &req,
                ErrorCode::MALFORMED_REQUEST,
                format!(
                    "adding {delta} to {} would overflow the counter",
                    self.value()
                ),
            ),
        }
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_>, req: Request) {
        ctx.reply(
            &req,
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
        merge(&mut self.counts, &counts);
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
