//! `cas`: one shared key, updated by compare-and-set.
//!
//! Every node adds to the same key `counter` with `cas(from, to)`, which
//! succeeds only if nobody wrote in between; on precondition-failed the node
//! reads the key again and retries. This is the classic fix for `naive`'s
//! lost update. Adds that arrive while a cas is in flight are coalesced into
//! the next one, so a busy node sends one cas per round trip, not one per
//! add.
//!
//! The subtle case is a cas that gets no answer: it may still land, and a
//! retry built on a fresh read would then count its adds twice (another
//! node's writes make the key's history impossible to interpret). So those
//! adds are answered with an indefinite error and never retried.
//!
//! Only one attempt is ever under way: a cas in flight, or the wait and
//! the read that follow a refused one. Two at once would carry the same
//! batch twice, and both could land. After a refusal the node waits a
//! random time that doubles with each refusal in a row (in round trips,
//! drawn from a generator seeded by the node's id, so runs replay) before
//! it reads and tries again: under contention the nodes that lost spread
//! out instead of colliding again one round trip later.
//!
//! Reads are made current first (a fresh write to a key of the node's own,
//! see [`Fresh`]); reads within `config.read_staleness` of the start of
//! the last completed read are answered from it ([`ReadView`]).
//!
//! The key holds a signed total, which goes down under `pn-counter`, so
//! the node cannot tell the newest of two values by which is higher.
//! It orders them by when it asked instead ([`Known`]): a value from a
//! call sent after the node learned what it knows is newer (on `seq-kv` a
//! client never reads a state older than one it has seen). A value from a
//! call sent earlier replaces what the node knows only if it is higher,
//! which under `g-counter` is exactly "newer", so a g-counter's reads never
//! go backwards on a node. (A cas that lands twice is no concern here: each
//! cas goes out once, and one that may have landed is never retried.)

use super::kv_calls::{
    self, expired, Calls, Fresh, Outage, ReadResult, ReadView, MAX_WAITING, MAYBE_APPLIED,
    UNAVAILABLE,
};
use super::{checked_signed, Ctx, Request, Strategy, Tag, Timer};
use crate::error::ErrorCode;
use crate::protocol::Payload;
use crate::Time;
use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

/// The most doublings of the backoff after refusals in a row. Kept low:
/// on `seq-kv` many refusals come from a stale reread, not from another
/// writer, and waiting does not cure those. At 5 nodes and 300 ms, a
/// ceiling of 16 round trips left 9486 adds unanswered within 5 s, 2 round
/// trips 8537, no wait 6820 (BENCHMARKS.md).
const MAX_BACKOFF_DOUBLINGS: u32 = 1;

/// The shared key.
pub const KEY: &str = "counter";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Call {
    Cas,
    /// After a refused cas, learn the key's value.
    Reread,
    RoundSync,
    RoundRead,
}

/// The adds carried by the cas in flight (or about to be retried).
#[derive(Debug, Clone, Hash)]
struct Batch {
    adds: Vec<Request>,
    sum: i64,
    from: i64,
    to: i64,
    /// When its oldest add arrived.
    oldest: Time,
}

#[derive(Debug, Default, Clone, Hash)]
pub struct Cas {
    calls: Calls<Call>,
    fresh: Fresh,
    /// The newest value this node has seen in the key.
    known: Known,
    /// Adds not in a batch yet, oldest first, with their arrival times.
    waiting: VecDeque<((Request, i64), Time)>,
    batch: Option<Batch>,
    /// Reads waiting for the next round, oldest first, with their arrival
    /// times.
    reads: VecDeque<(Request, Time)>,
    /// The reads being answered, and when their round started.
    round: Option<(VecDeque<(Request, Time)>, Time)>,
    view: ReadView,
    outage: Outage,
    /// Refused cas in a row.
    refusals: u32,
    /// After a refusal, until the value is read again: waiting out the
    /// backoff, or reading. No cas goes out meanwhile.
    rereading: bool,
    /// Backoff jitter; seeded from the node's id on first use.
    rng: Option<Jitter>,
}

/// The backoff's generator, hashed by where it is in its sequence (its
/// seed now), which is what decides the draws to come.
#[derive(Debug, Clone)]
struct Jitter(fastrand::Rng);

impl std::hash::Hash for Jitter {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.get_seed().hash(h);
    }
}

/// What the node knows of the key, ordered by a count of its own steps:
/// each call sent and each value taken in is one step.
#[derive(Debug, Default, Clone, Hash)]
struct Known {
    value: Option<i64>,
    /// The step at which `value` was taken in.
    at: u64,
    steps: u64,
    /// Per call in flight, the step at which its first copy went out.
    sent: BTreeMap<Call, u64>,
}

impl Known {
    fn sending(&mut self, call: Call, again: bool) {
        self.steps += 1;
        if !again {
            self.sent.insert(call, self.steps);
        }
    }

    /// Takes in `value`, learned from `call`: if the call went out after
    /// the node learned what it knows, or if it is higher.
    fn saw(&mut self, call: Call, value: i64) {
        self.steps += 1;
        let sent = self.sent.remove(&call).unwrap_or(0);
        let newer = sent > self.at;
        if self.value.is_none_or(|k| newer || value >= k) {
            self.value = Some(value);
            self.at = self.steps;
        }
    }

    fn get(&self) -> i64 {
        self.value.unwrap_or(0)
    }
}

impl Cas {
    fn issue(&mut self, ctx: &mut Ctx<'_>, call: Call) {
        // A backup copy of a call in flight keeps the first copy's step.
        let again = self.calls.in_flight(&call);
        self.known.sending(call, again);
        let payload = match call {
            Call::Cas => match &self.batch {
                Some(b) => kv_calls::cas(KEY, b.from, b.to),
                None => return,
            },
            Call::Reread | Call::RoundRead => kv_calls::read(KEY),
            Call::RoundSync => self.fresh.next(ctx),
        };
        self.outage.asked(ctx.now);
        if call == Call::Cas {
            self.calls.call(ctx, call, payload);
        } else {
            self.calls.call_hedged(ctx, call, payload);
        }
    }

    /// Sends the next cas: the batch being retried plus every waiting add,
    /// unless an attempt is already under way.
    fn send_cas(&mut self, ctx: &mut Ctx<'_>) {
        if self.rereading || self.calls.in_flight(&Call::Cas) {
            return;
        }
        let from = self.known.get();
        let batch = self.batch.get_or_insert(Batch {
            adds: Vec::new(),
            sum: 0,
            from,
            to: from,
            oldest: ctx.now,
        });
        for ((req, delta), at) in self.waiting.drain(..) {
            // Each add is checked as it joins: an add that would take the
            // batch past the largest total is refused alone (it was never
            // sent), not summed into a wrapped total that all would share.
            match checked_signed(batch.sum, delta).filter(|&s| checked_signed(from, s).is_some()) {
                Some(sum) => {
                    batch.adds.push(req);
                    batch.sum = sum;
                    batch.oldest = batch.oldest.min(at);
                }
                None => ctx.reply_error(
                    &req,
                    ErrorCode::MALFORMED_REQUEST,
                    format!(
                        "adding {delta} to {} would overflow the counter",
                        from.saturating_add(batch.sum)
                    ),
                ),
            }
        }
        if batch.adds.is_empty() {
            self.batch = None;
            return;
        }
        match checked_signed(from, batch.sum) {
            Some(to) => {
                batch.from = from;
                batch.to = to;
                self.issue(ctx, Call::Cas);
            }
            None => {
                // Nothing was written: a definite refusal is honest.
                let text = format!("adding {} to {from} would overflow the counter", batch.sum);
                for req in self.batch.take().into_iter().flat_map(|b| b.adds) {
                    ctx.reply_error(&req, ErrorCode::MALFORMED_REQUEST, text.clone());
                }
            }
        }
    }

    /// With the KV service silent for an RPC timeout, answers the
    /// requests that have waited that long and that no cas in flight
    /// carries: none of them reached the service (a batch waiting to be
    /// sent again was refused, definitely), so "temporarily unavailable",
    /// which is definite, is the truth. A cas in flight is settled by its
    /// own timeout, indefinitely.
    fn expire(&mut self, ctx: &mut Ctx<'_>) {
        let Some(cutoff) = self.outage.cutoff(ctx, self.calls.timeout(ctx)) else {
            return;
        };
        let mut refused: Vec<Request> = expired(&mut self.waiting, cutoff)
            .into_iter()
            .map(|(req, _)| req)
            .collect();
        let unsent = self
            .batch
            .as_ref()
            .is_some_and(|b| b.oldest <= cutoff && !self.calls.in_flight(&Call::Cas));
        // The attempt under way (a reread) goes on; what it finds is sent
        // with whatever waits by then.
        if unsent {
            refused.extend(self.batch.take().into_iter().flat_map(|b| b.adds));
        }
        refused.extend(expired(&mut self.reads, cutoff));
        if let Some((reads, _)) = self.round.as_mut() {
            refused.extend(expired(reads, cutoff));
        }
        for req in refused {
            ctx.reply_error(&req, ErrorCode::TEMPORARILY_UNAVAILABLE, UNAVAILABLE);
        }
    }

    /// Starts a round of reads if none is in flight: for the reads
    /// waiting, or (with none waiting) to refresh the view.
    fn start_round(&mut self, ctx: &mut Ctx<'_>) {
        if self.round.is_none() {
            self.round = Some((std::mem::take(&mut self.reads), ctx.now));
            self.issue(ctx, Call::RoundSync);
        }
    }
}

impl Strategy for Cas {
    fn on_add(&mut self, ctx: &mut Ctx<'_>, req: Request, delta: i64) {
        if delta == 0 {
            return ctx.reply(&req, Payload::AddOk);
        }
        self.expire(ctx);
        if self.waiting.len() >= MAX_WAITING {
            return ctx.reply_error(&req, ErrorCode::TEMPORARILY_UNAVAILABLE, UNAVAILABLE);
        }
        self.waiting.push_back(((req, delta), ctx.now));
        self.send_cas(ctx);
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_>, req: Request) {
        self.expire(ctx);
        let waiting = self.reads.len() + self.round.as_ref().map_or(0, |(r, _)| r.len());
        if waiting >= MAX_WAITING && !self.view.serves(ctx) {
            return ctx.reply_error(&req, ErrorCode::TEMPORARILY_UNAVAILABLE, UNAVAILABLE);
        }
        let value = self.known.get();
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
        match (call, reply) {
            (Call::Cas, Payload::CasOk) => {
                self.refusals = 0;
                if let Some(batch) = self.batch.take() {
                    self.known.saw(Call::Cas, batch.to);
                    for req in &batch.adds {
                        ctx.reply(req, Payload::AddOk);
                    }
                }
                self.send_cas(ctx);
            }
            (Call::Cas, Payload::Error { code, text }) if code.is_definite() => {
                // The cas did not happen; learn the value and try again.
                log::debug!("cas: refused ({code}): {text}");
                self.back_off(ctx);
            }
            (Call::Cas, other) => {
                log::warn!("cas: indefinite answer to my cas: {other:?}");
                self.fail_batch(ctx);
            }
            (Call::Reread, reply) => match kv_calls::read_result(&reply) {
                ReadResult::Value(v) => {
                    self.known.saw(Call::Reread, v);
                    self.rereading = false;
                    self.send_cas(ctx);
                }
                ReadResult::Missing => {
                    self.known.saw(Call::Reread, 0);
                    self.rereading = false;
                    self.send_cas(ctx);
                }
                ReadResult::Retry => self.calls.retry_later(ctx, Call::Reread),
            },
            (Call::RoundSync, Payload::WriteOk) => self.issue(ctx, Call::RoundRead),
            // The store said no (etcd past its space quota refuses every
            // write): read without the sync rather than not at all, so
            // reads go on while writes cannot, possibly behind. Maelstrom's
            // services never refuse a write.
            (Call::RoundSync, Payload::Error { code, .. }) if code.is_definite() => {
                log::warn!("cas: sync write refused ({code}): reading without it");
                self.issue(ctx, Call::RoundRead)
            }
            (Call::RoundSync, other) => {
                log::warn!("cas: sync write refused: {other:?}");
                self.calls.retry_later(ctx, Call::RoundSync);
            }
            (Call::RoundRead, reply) => {
                match kv_calls::read_result(&reply) {
                    ReadResult::Value(v) => self.known.saw(Call::RoundRead, v),
                    ReadResult::Missing => self.known.saw(Call::RoundRead, 0),
                    ReadResult::Retry => return self.calls.retry_later(ctx, Call::RoundRead),
                }
                let value = self.known.get();
                if let Some((reads, started)) = self.round.take() {
                    self.view.refreshed(started);
                    for (req, _) in reads {
                        ctx.reply(
                            &req,
                            Payload::ReadOk {
                                value: value.into(),
                            },
                        );
                    }
                }
                if !self.reads.is_empty() {
                    self.start_round(ctx);
                }
            }
        }
    }

    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.outage.heard(ctx.now);
    }

    fn on_timeout(&mut self, ctx: &mut Ctx<'_>, tag: Tag) {
        match self.calls.take(ctx, tag) {
            Some(Call::Cas) => {
                // The batch may have landed: answered indefinitely before
                // `expire` could take it for unsent. Adds that waited too
                // long are refused before the next batch takes them.
                self.batch_maybe_applied(ctx);
                self.expire(ctx);
                self.send_cas(ctx);
            }
            Some(other) => {
                self.expire(ctx);
                self.issue(ctx, other);
            }
            // Another copy of the call is still waiting; time may still
            // have run out for what waits on it.
            None => self.expire(ctx),
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: Timer) {
        match timer {
            Timer::KvRetry => {
                self.expire(ctx);
                for call in self.calls.due() {
                    self.issue(ctx, call);
                }
            }
            Timer::Backoff => {
                self.expire(ctx);
                self.issue(ctx, Call::Reread);
            }
            Timer::Hedge => {
                self.expire(ctx);
                for call in self.calls.hedges_due(ctx) {
                    self.issue(ctx, call);
                }
            }
            Timer::Gossip => {}
        }
    }
}

impl Cas {
    /// After a refused cas: wait, then read the key and try again. The
    /// wait is drawn from zero to a ceiling of one round trip doubled per
    /// refusal in a row ("full jitter"), so it scales with the service's
    /// latency and costs nothing on a fast one.
    fn back_off(&mut self, ctx: &mut Ctx<'_>) {
        self.rereading = true;
        self.refusals = self.refusals.saturating_add(1);
        let round_trip = self.calls.srtt().unwrap_or(Duration::ZERO);
        let ceiling = round_trip * (1 << (self.refusals - 1).min(MAX_BACKOFF_DOUBLINGS));
        let Jitter(rng) = self.rng.get_or_insert_with(|| {
            Jitter(fastrand::Rng::with_seed(jitter_seed(
                ctx.me,
                ctx.config.incarnation,
            )))
        });
        let nanos = u64::try_from(ceiling.as_nanos()).unwrap_or(u64::MAX);
        let wait = Duration::from_nanos(rng.u64(0..=nanos));
        ctx.set_timer(Timer::Backoff, ctx.now + wait);
    }

    /// The cas in flight may or may not land: its adds get an indefinite
    /// error and are never sent again.
    fn fail_batch(&mut self, ctx: &mut Ctx<'_>) {
        self.batch_maybe_applied(ctx);
        self.send_cas(ctx);
    }

    fn batch_maybe_applied(&mut self, ctx: &mut Ctx<'_>) {
        for req in self.batch.take().into_iter().flat_map(|b| b.adds) {
            ctx.reply_error(&req, ErrorCode::TIMEOUT, MAYBE_APPLIED);
        }
    }
}

/// A seed that differs per node and per life of a node, and is the same
/// on every run (FNV-1a of the id): the core draws no unseeded numbers.
fn jitter_seed(me: &str, incarnation: u64) -> u64 {
    let h = me.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    h ^ incarnation.wrapping_mul(0x9e37_79b9_7f4a_7c15)
}
