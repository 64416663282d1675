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
//! Reads are made current first (a fresh write to a key of the node's own,
//! see [`Fresh`]) and never report less than the node has seen; reads
//! within `config.read_staleness` of the start of the last completed read
//! are answered from it ([`ReadView`]).

use super::kv_calls::{self, Calls, Fresh, ReadResult, ReadView, MAYBE_APPLIED};
use super::{checked_total, Ctx, Request, Strategy, Tag, Timer};
use crate::error::ErrorCode;
use crate::protocol::Payload;
use crate::Time;

/// The shared key.
pub const KEY: &str = "counter";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Cas,
    /// After a refused cas, learn the key's value.
    Reread,
    RoundSync,
    RoundRead,
}

/// The adds carried by the cas in flight (or about to be retried).
#[derive(Debug)]
struct Batch {
    adds: Vec<Request>,
    sum: u64,
    from: u64,
    to: u64,
}

#[derive(Debug, Default)]
pub struct Cas {
    calls: Calls<Call>,
    fresh: Fresh,
    /// The highest value this node has seen in the key (a lower bound of
    /// its value now, since the counter only grows).
    known: Option<u64>,
    waiting: Vec<(Request, u64)>,
    batch: Option<Batch>,
    reads: Vec<Request>,
    /// The reads being answered, and when their round started.
    round: Option<(Vec<Request>, Time)>,
    view: ReadView,
}

impl Cas {
    fn issue(&mut self, ctx: &mut Ctx<'_>, call: Call) {
        let payload = match call {
            Call::Cas => match &self.batch {
                Some(b) => kv_calls::cas(KEY, b.from, b.to),
                None => return,
            },
            Call::Reread | Call::RoundRead => kv_calls::read(KEY),
            Call::RoundSync => self.fresh.next(ctx),
        };
        self.calls.call(ctx, call, payload);
    }

    fn saw(&mut self, value: u64) {
        self.known = Some(self.known.map_or(value, |k| k.max(value)));
    }

    /// Sends the next cas: the batch being retried plus every waiting add.
    fn send_cas(&mut self, ctx: &mut Ctx<'_>) {
        let from = self.known.unwrap_or(0);
        let batch = self.batch.get_or_insert(Batch {
            adds: Vec::new(),
            sum: 0,
            from,
            to: from,
        });
        for (req, delta) in self.waiting.drain(..) {
            // Each add is checked as it joins: an add that would take the
            // batch past the largest total is refused alone (it was never
            // sent), not summed into a wrapped total that all would share.
            match checked_total(batch.sum, delta).filter(|&s| checked_total(from, s).is_some()) {
                Some(sum) => {
                    batch.adds.push(req);
                    batch.sum = sum;
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
        match checked_total(from, batch.sum) {
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
    fn on_add(&mut self, ctx: &mut Ctx<'_>, req: Request, delta: u64) {
        if delta == 0 {
            return ctx.reply(&req, Payload::AddOk);
        }
        self.waiting.push((req, delta));
        if self.batch.is_none() {
            self.send_cas(ctx);
        }
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_>, req: Request) {
        let value = self.known.unwrap_or(0);
        match self.view.answer(ctx, req, value) {
            Some(req) => self.reads.push(req),
            None if !self.view.wants_refresh(ctx) => return,
            // Answered from the view, which is getting old: renew it.
            None => {}
        }
        self.start_round(ctx);
    }

    fn on_reply(&mut self, ctx: &mut Ctx<'_>, tag: Tag, reply: Payload) {
        let Some(call) = self.calls.take(tag) else {
            return;
        };
        match (call, reply) {
            (Call::Cas, Payload::CasOk) => {
                if let Some(batch) = self.batch.take() {
                    self.saw(batch.to);
                    for req in &batch.adds {
                        ctx.reply(req, Payload::AddOk);
                    }
                }
                self.send_cas(ctx);
            }
            (Call::Cas, Payload::Error { code, text }) if code.is_definite() => {
                // The cas did not happen; learn the value and try again.
                log::debug!("cas: refused ({code}): {text}");
                self.issue(ctx, Call::Reread);
            }
            (Call::Cas, other) => {
                log::warn!("cas: indefinite answer to my cas: {other:?}");
                self.fail_batch(ctx);
            }
            (Call::Reread, reply) => match kv_calls::read_result(&reply) {
                ReadResult::Value(v) => {
                    self.saw(v);
                    self.send_cas(ctx);
                }
                ReadResult::Missing => self.send_cas(ctx),
                ReadResult::Retry => self.calls.retry_later(ctx, Call::Reread),
            },
            (Call::RoundSync, Payload::WriteOk) => self.issue(ctx, Call::RoundRead),
            (Call::RoundSync, other) => {
                log::warn!("cas: sync write refused: {other:?}");
                self.calls.retry_later(ctx, Call::RoundSync);
            }
            (Call::RoundRead, reply) => {
                match kv_calls::read_result(&reply) {
                    ReadResult::Value(v) => self.saw(v),
                    ReadResult::Missing => {}
                    ReadResult::Retry => return self.calls.retry_later(ctx, Call::RoundRead),
                }
                let value = self.known.unwrap_or(0);
                if let Some((reads, started)) = self.round.take() {
                    self.view.refreshed(started);
                    for req in reads {
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

    fn on_timeout(&mut self, ctx: &mut Ctx<'_>, tag: Tag) {
        match self.calls.take(tag) {
            Some(Call::Cas) => self.fail_batch(ctx),
            Some(other) => self.issue(ctx, other),
            None => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: Timer) {
        if timer == Timer::KvRetry {
            for call in self.calls.due() {
                self.issue(ctx, call);
            }
        }
    }
}

impl Cas {
    /// The cas in flight may or may not land: its adds get an indefinite
    /// error and are never sent again.
    fn fail_batch(&mut self, ctx: &mut Ctx<'_>) {
        for req in self.batch.take().into_iter().flat_map(|b| b.adds) {
            ctx.reply_error(&req, ErrorCode::TIMEOUT, MAYBE_APPLIED);
        }
        self.send_cas(ctx);
    }
}
