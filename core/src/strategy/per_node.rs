//! `per-node`: each node keeps its own total under its own key.
//!
//! Only node `n` writes key `n`, so writes never race: there is no lost
//! update to lose. A read sums every node's key. Two things make it
//! correct on `seq-kv`, whose reads may be stale:
//!
//! - A read first makes the node current by writing a fresh value to a key
//!   of its own ([`Fresh`]), then reads the other nodes' keys. It keeps the
//!   highest value seen per key, so it never reports less than before.
//!   Reads that arrive while a round is in flight wait for the next one,
//!   and reads within `config.read_staleness` of the start of the last
//!   completed round are answered from it ([`ReadView`]).
//! - The node's own key is written by compare-and-set from the value the
//!   node knows is there to that value plus the adds waiting, one write in
//!   flight at a time; adds that arrive meanwhile ride on the next write.
//!   The key only ever grows (it holds the node's increments and its
//!   decrements apart, [`Tally`], each of which only grows), so a cas that
//!   timed out can be sent again as it was: whichever copy lands first
//!   wins and the other fails. After
//!   a failure the node reads its key: holding the target means the write
//!   landed, anything lower means it did not (yet), and the same cas goes
//!   out again. An add is acknowledged only once the write that carries it
//!   is known to have landed.
//!
//! On start the node learns its key's value (after making itself current)
//! before it writes, so a restarted process continues from its previous
//! total instead of overwriting it.

use super::kv_calls::{
    self, expired, Calls, Fresh, Outage, ReadResult, ReadView, MAX_WAITING, MAYBE_APPLIED,
    UNAVAILABLE,
};
use super::tally::Tally;
use super::{checked_sum, share_limit, Ctx, Request, Strategy, Tag, Timer};
use crate::error::ErrorCode;
use crate::protocol::Payload;
use crate::Time;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};

/// How many tries a write gets before its clients are told it may or may
/// not have happened (the write itself goes on until it is settled).
const TRIES_BEFORE_GIVING_UP: u32 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Call {
    /// Make current before learning our own key's value at start.
    RecoverSync,
    RecoverRead,
    /// The write in flight.
    Cas,
    /// After a failed or unanswered cas: did it land?
    VerifyRead,
    /// Make current before a round of reads.
    RoundSync,
    /// Read another node's key during a round.
    RoundRead(usize),
}

/// The write in flight: a cas of our key from `from` to `to`.
#[derive(Debug, Clone, Hash)]
struct Write {
    adds: Vec<Request>,
    from: Tally,
    to: Tally,
    tries: u32,
    /// The clients were already told the outcome is unknown.
    gave_up: bool,
}

/// A round of reads answering `reads`.
#[derive(Debug, Clone, Hash)]
struct Round {
    /// With their arrival times.
    reads: VecDeque<(Request, Time)>,
    outstanding: usize,
    started: Time,
}

#[derive(Debug, Default, Clone, Hash)]
pub struct PerNode {
    calls: Calls<Call>,
    fresh: Fresh,
    /// Our key's exact value, once learned at start; only we change it.
    confirmed: Option<Tally>,
    /// Adds not yet carried by a write, oldest first, with their arrival
    /// times.
    waiting: VecDeque<((Request, i64), Time)>,
    /// The sum of their deltas, kept so an add costs O(1).
    waiting_sum: Tally,
    write: Option<Write>,
    /// Per node, the highest value seen in its key, half by half.
    seen: BTreeMap<String, Tally>,
    /// Reads that arrived after the current round began, oldest first.
    reads: VecDeque<(Request, Time)>,
    round: Option<Round>,
    view: ReadView,
    outage: Outage,
}

impl PerNode {
    fn issue(&mut self, ctx: &mut Ctx<'_>, call: Call) {
        let payload = match call {
            Call::RecoverSync | Call::RoundSync => self.fresh.next(ctx),
            Call::RecoverRead | Call::VerifyRead => kv_calls::read(ctx.me),
            Call::Cas => match &self.write {
                Some(w) => kv_calls::cas(ctx.me, w.from, w.to),
                None => return,
            },
            Call::RoundRead(i) => kv_calls::read(&ctx.nodes[i]),
        };
        self.outage.asked(ctx.now);
        // A verifying read counts tries by its timeouts, which a backup
        // copy would put off.
        if matches!(call, Call::Cas | Call::VerifyRead) {
            self.calls.call(ctx, call, payload);
        } else {
            self.calls.call_hedged(ctx, call, payload);
        }
    }

    /// Starts the next write if none is in flight and adds are waiting.
    fn write_next(&mut self, ctx: &mut Ctx<'_>) {
        let Some(from) = self.confirmed else { return };
        if self.write.is_some() || self.waiting.is_empty() {
            return;
        }
        let sum = std::mem::take(&mut self.waiting_sum);
        let Some(to) = from.checked_add(sum) else {
            // on_add keeps confirmed + waiting within the node's share, so
            // only a key that held more than it could have written gets
            // here; nothing was written for these adds.
            for ((req, _), _) in self.waiting.drain(..) {
                ctx.reply_error(
                    &req,
                    ErrorCode::MALFORMED_REQUEST,
                    "the counter would overflow",
                );
            }
            return;
        };
        let adds = self.waiting.drain(..).map(|((r, _), _)| r).collect();
        self.write = Some(Write {
            adds,
            from,
            to,
            tries: 1,
            gave_up: false,
        });
        self.issue(ctx, Call::Cas);
    }

    fn write_landed(&mut self, ctx: &mut Ctx<'_>) {
        let Some(write) = self.write.take() else {
            return;
        };
        self.confirmed = Some(write.to);
        self.see(ctx.me, write.to);
        if !write.gave_up {
            for req in &write.adds {
                ctx.reply(req, Payload::AddOk);
            }
        }
        self.write_next(ctx);
    }

    /// The cas failed or went unanswered: find out whether it landed.
    fn write_unsettled(&mut self, ctx: &mut Ctx<'_>) {
        let Some(write) = self.write.as_mut() else {
            return;
        };
        write.tries += 1;
        if write.tries > TRIES_BEFORE_GIVING_UP && !write.gave_up {
            write.gave_up = true;
            for req in &write.adds {
                ctx.reply_error(req, ErrorCode::TIMEOUT, MAYBE_APPLIED);
            }
        }
        self.issue(ctx, Call::VerifyRead);
    }

    /// Starts a round of reads if none is in flight: for the reads
    /// waiting, or (with none waiting) to refresh the view.
    fn start_round(&mut self, ctx: &mut Ctx<'_>) {
        if self.round.is_some() {
            return;
        }
        let reads = std::mem::take(&mut self.reads);
        self.round = Some(Round {
            reads,
            outstanding: 0,
            started: ctx.now,
        });
        self.issue(ctx, Call::RoundSync);
    }

    fn round_synced(&mut self, ctx: &mut Ctx<'_>) {
        // Our own key needs no read once we know its value exactly.
        let to_read: Vec<usize> = (0..ctx.nodes.len())
            .filter(|&i| ctx.nodes[i] != ctx.me || self.confirmed.is_none())
            .collect();
        let Some(round) = self.round.as_mut() else {
            return;
        };
        round.outstanding = to_read.len();
        for i in to_read {
            self.issue(ctx, Call::RoundRead(i));
        }
        self.finish_round_if_done(ctx);
    }

    fn finish_round_if_done(&mut self, ctx: &mut Ctx<'_>) {
        if self.round.as_ref().is_none_or(|r| r.outstanding > 0) {
            return;
        }
        let Some(round) = self.round.take() else {
            return;
        };
        self.view.refreshed(round.started);
        let value = self.value(ctx);
        for (req, _) in &round.reads {
            ctx.reply(
                req,
                Payload::ReadOk {
                    value: value.into(),
                },
            );
        }
        if !self.reads.is_empty() {
            self.start_round(ctx);
        }
    }

    /// Takes in `value` as seen in `node`'s key, unless the sum of the
    /// keys would then pass the largest total: no node that keeps to its
    /// share writes such a value, and a wrapped or clamped sum would
    /// undercount every add acknowledged.
    fn see(&mut self, node: &str, value: Tally) {
        let old = self.seen.get(node).copied().unwrap_or_default();
        if old.covers(value) {
            return;
        }
        let value = value.max(old);
        let others = || {
            self.seen
                .iter()
                .filter(|(n, _)| *n != node)
                .map(|(_, &v)| v)
        };
        let fits = checked_sum(others().map(|t| t.up).chain([value.up])).is_some()
            && checked_sum(others().map(|t| t.down).chain([value.down])).is_some();
        if !fits {
            log::warn!(
                "per-node: key {node} holds {value:?}, which would overflow the counter; ignored"
            );
            return;
        }
        self.seen.insert(node.to_string(), value);
    }

    /// The sum of the highest value seen in every node's key: the
    /// increments less the decrements.
    fn value(&mut self, ctx: &Ctx<'_>) -> i64 {
        if let Some(c) = self.confirmed {
            self.see(ctx.me, c);
        }
        // `see` keeps each half's sum within MAX_TOTAL.
        let up = checked_sum(self.seen.values().map(|t| t.up)).unwrap_or(super::MAX_TOTAL);
        let down = checked_sum(self.seen.values().map(|t| t.down)).unwrap_or(super::MAX_TOTAL);
        up as i64 - down as i64
    }

    /// With the KV service silent for an RPC timeout, answers the
    /// requests that have waited that long and that no write carries: none
    /// of them reached the service, so "temporarily unavailable", which is
    /// definite, is the truth. Adds in the write in flight are settled by
    /// the write (`write_unsettled`).
    fn expire(&mut self, ctx: &mut Ctx<'_>) {
        let Some(cutoff) = self.outage.cutoff(ctx, self.calls.timeout(ctx)) else {
            return;
        };
        for (req, delta) in expired(&mut self.waiting, cutoff) {
            self.waiting_sum = self.waiting_sum.saturating_sub(Tally::of(delta));
            ctx.reply_error(&req, ErrorCode::TEMPORARILY_UNAVAILABLE, UNAVAILABLE);
        }
        let mut reads = expired(&mut self.reads, cutoff);
        if let Some(round) = self.round.as_mut() {
            reads.extend(expired(&mut round.reads, cutoff));
        }
        for req in reads {
            ctx.reply_error(&req, ErrorCode::TEMPORARILY_UNAVAILABLE, UNAVAILABLE);
        }
    }

    fn on_read_reply(&mut self, ctx: &mut Ctx<'_>, call: Call, reply: &Payload) {
        let result = kv_calls::read_with(reply, Tally::from_json);
        if result == ReadResult::Retry {
            return self.calls.retry_later(ctx, call);
        }
        let value = match result {
            ReadResult::Value(v) => v,
            _ => Tally::default(),
        };
        match call {
            Call::RecoverRead => {
                log::info!("per-node: my key holds {}", Value::from(value));
                self.confirmed = Some(value);
                self.write_next(ctx);
            }
            Call::VerifyRead => match &self.write {
                Some(w) if value.covers(w.to) => {
                    if value != w.to {
                        log::error!(
                            "per-node: my key holds {}, above my write's {}",
                            Value::from(value),
                            Value::from(w.to)
                        );
                    }
                    self.write_landed(ctx);
                }
                Some(_) => self.issue(ctx, Call::Cas),
                None => {}
            },
            Call::RoundRead(i) => {
                self.see(&ctx.nodes[i].clone(), value);
                if let Some(round) = self.round.as_mut() {
                    round.outstanding -= 1;
                }
                self.finish_round_if_done(ctx);
            }
            _ => {}
        }
    }
}

impl Strategy for PerNode {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.outage.heard(ctx.now);
        self.issue(ctx, Call::RecoverSync);
    }

    fn on_add(&mut self, ctx: &mut Ctx<'_>, req: Request, delta: i64) {
        if delta == 0 {
            // Nothing to write: the counter already includes it.
            return ctx.reply(&req, Payload::AddOk);
        }
        self.expire(ctx);
        if self.waiting.len() >= MAX_WAITING {
            return ctx.reply_error(&req, ErrorCode::TEMPORARILY_UNAVAILABLE, UNAVAILABLE);
        }
        let in_flight = self
            .write
            .as_ref()
            .map_or(Tally::default(), |w| w.to.saturating_sub(w.from));
        let limit = share_limit(ctx.nodes.len());
        let total = self
            .confirmed
            .unwrap_or_default()
            .checked_add(in_flight)
            .and_then(|t| t.checked_add(self.waiting_sum))
            .and_then(|t| t.checked_add(Tally::of(delta)));
        if total.is_none_or(|t| t.exceeds(limit)) {
            return ctx.reply_error(
                &req,
                ErrorCode::MALFORMED_REQUEST,
                format!(
                    "adding {delta} to this node's key could overflow the counter: \
                     each of the {} nodes may count {}up to {limit}",
                    ctx.nodes.len(),
                    if delta < 0 { "down " } else { "" }
                ),
            );
        }
        // Within the share, so the sum cannot overflow.
        self.waiting_sum = self
            .waiting_sum
            .checked_add(Tally::of(delta))
            .unwrap_or_default();
        self.waiting.push_back(((req, delta), ctx.now));
        self.write_next(ctx);
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_>, req: Request) {
        self.expire(ctx);
        let waiting = self.reads.len() + self.round.as_ref().map_or(0, |r| r.reads.len());
        if waiting >= MAX_WAITING && !self.view.serves(ctx) {
            return ctx.reply_error(&req, ErrorCode::TEMPORARILY_UNAVAILABLE, UNAVAILABLE);
        }
        let value = self.value(ctx);
        match self.view.answer(ctx, req, value) {
            Some(req) => self.reads.push_back((req, ctx.now)),
            None if !self.view.wants_refresh(ctx) => return,
            // Answered from the view, which is getting old: renew it.
            None => {}
        }
        self.start_round(ctx);
    }

    fn on_reply(&mut self, ctx: &mut Ctx<'_>, tag: Tag, reply: Payload) {
        let Some(call) = self.calls.answered(ctx, tag) else {
            return;
        };
        self.outage.heard_from(ctx.now, &reply);
        match call {
            Call::RecoverSync | Call::RoundSync => match reply {
                Payload::WriteOk if call == Call::RecoverSync => self.issue(ctx, Call::RecoverRead),
                Payload::WriteOk => self.round_synced(ctx),
                // The store said no (etcd past its space quota refuses
                // every write): read without the sync rather than not at
                // all, so reads go on while writes cannot, possibly
                // behind. Maelstrom's services never refuse a write.
                Payload::Error { code, .. } if call == Call::RoundSync && code.is_definite() => {
                    log::warn!("per-node: sync write refused ({code}): reading without it");
                    self.round_synced(ctx)
                }
                other => {
                    log::warn!("per-node: sync write refused: {other:?}");
                    self.calls.retry_later(ctx, call);
                }
            },
            Call::Cas => match reply {
                Payload::CasOk => self.write_landed(ctx),
                Payload::Error { code, .. }
                    if code == ErrorCode::PRECONDITION_FAILED
                        || code == ErrorCode::KEY_DOES_NOT_EXIST =>
                {
                    self.write_unsettled(ctx)
                }
                other => {
                    log::warn!("per-node: unexpected answer to my cas: {other:?}");
                    self.write_unsettled(ctx);
                }
            },
            Call::RecoverRead | Call::VerifyRead | Call::RoundRead(_) => {
                self.on_read_reply(ctx, call, &reply)
            }
        }
    }

    fn on_timeout(&mut self, ctx: &mut Ctx<'_>, tag: Tag) {
        let Some(call) = self.calls.take(ctx, tag) else {
            // Another copy of the call is still waiting; time may still
            // have run out for what waits on it.
            return self.expire(ctx);
        };
        match call {
            // The cas may still land: settle it by reading, never by
            // writing anything else. A read that settles nothing is one
            // more try, so the write's clients learn in bounded time that
            // the outcome is unknown.
            Call::Cas | Call::VerifyRead => self.write_unsettled(ctx),
            other => self.issue(ctx, other),
        }
        self.expire(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: Timer) {
        let calls = match timer {
            Timer::KvRetry => self.calls.due(),
            Timer::Hedge => self.calls.hedges_due(ctx),
            _ => return,
        };
        self.expire(ctx);
        for call in calls {
            self.issue(ctx, call);
        }
    }
}
