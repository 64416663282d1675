//! `naive`: read the shared key, write back value + delta. Nothing more.
//!
//! **This strategy loses acknowledged updates, on purpose.** Two adds that
//! read the same value both write value + their own delta, and the second
//! write erases the first: the classic lost update. With several nodes (or
//! even concurrent clients on one node) adding at once, the final count
//! comes out lower than the sum of acknowledged adds, and the checker says
//! so. Compare it with `cas`, which turns the blind write into a
//! compare-and-set, and `per-node`, which gives every writer its own key.
//!
//! Its reads are not made current either, so on `seq-kv` they may be stale.
//!
//! With the KV service gone it keeps to the rules `per-node` and `cas`
//! follow: at most [`MAX_WAITING`] requests wait, a read that times out
//! while the service has been silent since it was sent waits for one
//! retry per call timeout rather than sending its own, and once the
//! silence has lasted [`Outage::cutoff`] a request that waited that long
//! is refused (error 11) if its write was never sent. An add whose write
//! went out is answered by that write, indefinitely as before.

use super::kv_calls::{self, Calls, Outage, ReadResult, MAX_WAITING, MAYBE_APPLIED, UNAVAILABLE};
use super::{checked_signed, Ctx, Request, Strategy, Tag, Timer};
use crate::error::ErrorCode;
use crate::protocol::Payload;
use crate::Time;
use std::collections::{BTreeMap, VecDeque};

/// The shared key (the same one `cas` uses).
pub const KEY: &str = super::cas::KEY;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Call {
    /// Step one of add number `n`: read the current value.
    AddRead(u64),
    /// Step two: write value + delta.
    AddWrite(u64),
    /// A client's read, number `n`.
    Read(u64),
}

impl Call {
    fn op(self) -> u64 {
        match self {
            Call::AddRead(n) | Call::AddWrite(n) | Call::Read(n) => n,
        }
    }
}

#[derive(Debug, Clone, Hash)]
struct Op {
    req: Request,
    delta: i64,
    /// The value to write, once read.
    write: Option<i64>,
    /// When its latest call went out.
    sent: Time,
}

#[derive(Debug, Default, Clone, Hash)]
pub struct Naive {
    calls: Calls<Call>,
    next_op: u64,
    ops: BTreeMap<u64, Op>,
    /// Every op by arrival, oldest first; an op answered meanwhile is
    /// skipped when it comes to the front. Each op enters and leaves
    /// once, so refusing the expired costs O(1) per request.
    arrived: VecDeque<(u64, Time)>,
    outage: Outage,
    /// Ops whose read timed out with the service silent, waiting for it to
    /// answer something: retrying each of them every call timeout is what
    /// made a gone service cost every waiting request a call per second.
    parked: VecDeque<Call>,
    /// The one parked op whose read is out, to notice the service back.
    probe: Option<u64>,
    /// When the service last answered (the start, which `outage` counts
    /// silence from, is no answer).
    answered_at: Option<Time>,
}

impl Naive {
    fn issue(&mut self, ctx: &mut Ctx<'_>, call: Call) {
        let n = call.op();
        // Refused while its call was out: nothing left to ask for.
        let Some(op) = self.ops.get_mut(&n) else {
            return;
        };
        op.sent = ctx.now;
        let payload = match call {
            Call::AddRead(_) | Call::Read(_) => kv_calls::read(KEY),
            Call::AddWrite(n) => match self.ops.get(&n).and_then(|op| op.write) {
                Some(v) => Payload::Write {
                    key: KEY.into(),
                    value: v.into(),
                },
                None => return,
            },
        };
        self.outage.asked(ctx.now);
        self.calls.call(ctx, call, payload);
    }

    /// Takes in a request, or refuses it (`None`) when too many wait.
    fn new_op(&mut self, ctx: &mut Ctx<'_>, req: Request, delta: i64) -> Option<u64> {
        self.expire(ctx);
        if self.ops.len() >= MAX_WAITING {
            ctx.reply_error(&req, ErrorCode::TEMPORARILY_UNAVAILABLE, UNAVAILABLE);
            return None;
        }
        let n = self.next_op;
        self.next_op += 1;
        self.ops.insert(
            n,
            Op {
                req,
                delta,
                write: None,
                sent: ctx.now,
            },
        );
        // Ops answered in the ordinary way leave from the front as they
        // come; one slow op ahead of them would keep them all, so past a
        // bound the queue drops every answered op, which halves it at
        // least and keeps the cost O(1) per request.
        while self
            .arrived
            .front()
            .is_some_and(|(m, _)| !self.ops.contains_key(m))
        {
            self.arrived.pop_front();
        }
        if self.arrived.len() >= 2 * MAX_WAITING {
            let ops = &self.ops;
            self.arrived.retain(|(m, _)| ops.contains_key(m));
        }
        self.arrived.push_back((n, ctx.now));
        Some(n)
    }

    /// With the KV service silent past [`Outage::cutoff`], refuses the
    /// ops that have waited that long and sent no write: no write of
    /// theirs can land, so "temporarily unavailable", which is definite,
    /// is the truth. An op whose write went out waits for that write's
    /// answer or timeout.
    fn expire(&mut self, ctx: &mut Ctx<'_>) {
        let Some(cutoff) = self.outage.cutoff(ctx, self.calls.timeout(ctx)) else {
            return;
        };
        while let Some(&(n, at)) = self.arrived.front() {
            if at > cutoff {
                break;
            }
            self.arrived.pop_front();
            if self.ops.get(&n).is_some_and(|op| op.write.is_none()) {
                if let Some(op) = self.ops.remove(&n) {
                    ctx.reply_error(&op.req, ErrorCode::TEMPORARILY_UNAVAILABLE, UNAVAILABLE);
                }
            }
        }
    }

    /// A read of op `n` timed out: sent again at once, as always, unless
    /// the service has been silent since it went out; then it waits, and
    /// one waiting op's read at a time goes out (the longest waiting),
    /// so the silence costs one call per call timeout.
    fn read_timed_out(&mut self, ctx: &mut Ctx<'_>, call: Call) {
        let n = call.op();
        if self.probe == Some(n) {
            self.probe = None;
        }
        let Some(sent) = self.ops.get(&n).map(|op| op.sent) else {
            // Refused meanwhile; if it was the probe, another takes over,
            // or what is parked would wait for no timeout to refuse it.
            return self.send_probe(ctx);
        };
        if self.answered_at.is_some_and(|t| t >= sent) {
            return self.issue(ctx, call);
        }
        self.parked.push_back(call);
        self.send_probe(ctx);
    }

    fn send_probe(&mut self, ctx: &mut Ctx<'_>) {
        if self.probe.is_some() {
            return;
        }
        while let Some(call) = self.parked.pop_front() {
            let n = call.op();
            if self.ops.contains_key(&n) {
                self.probe = Some(n);
                return self.issue(ctx, call);
            }
        }
    }

    /// The service answered: the parked ops send their reads again, as
    /// they would have had it answered all along.
    fn unpark(&mut self, ctx: &mut Ctx<'_>) {
        self.probe = None;
        for call in std::mem::take(&mut self.parked) {
            self.issue(ctx, call);
        }
    }
}

impl Strategy for Naive {
    fn on_start(&mut self, ctx: &mut Ctx<'_>) {
        self.outage.heard(ctx.now);
    }

    fn on_add(&mut self, ctx: &mut Ctx<'_>, req: Request, delta: i64) {
        if let Some(n) = self.new_op(ctx, req, delta) {
            self.issue(ctx, Call::AddRead(n));
        }
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_>, req: Request) {
        if let Some(n) = self.new_op(ctx, req, 0) {
            self.issue(ctx, Call::Read(n));
        }
    }

    fn on_reply(&mut self, ctx: &mut Ctx<'_>, tag: Tag, reply: Payload) {
        let Some(call) = self.calls.answered(ctx, tag) else {
            return;
        };
        self.outage.heard_from(ctx.now, &reply);
        if self.outage.heard_since(ctx.now) {
            self.answered_at = Some(ctx.now);
            self.unpark(ctx);
        }
        match call {
            Call::AddRead(n) | Call::Read(n) => {
                let value = match kv_calls::read_result(&reply) {
                    ReadResult::Value(v) => v,
                    ReadResult::Missing => 0,
                    ReadResult::Retry => return self.calls.retry_later(ctx, call),
                };
                let Some(op) = self.ops.get_mut(&n) else {
                    return;
                };
                if let Call::Read(_) = call {
                    ctx.reply(
                        &op.req,
                        Payload::ReadOk {
                            value: value.into(),
                        },
                    );
                    self.ops.remove(&n);
                    return;
                }
                match checked_signed(value, op.delta) {
                    Some(v) => {
                        op.write = Some(v);
                        self.issue(ctx, Call::AddWrite(n));
                    }
                    None => {
                        let text = format!("adding {} to {value} would overflow", op.delta);
                        ctx.reply_error(&op.req, ErrorCode::MALFORMED_REQUEST, text);
                        self.ops.remove(&n);
                    }
                }
            }
            Call::AddWrite(n) => {
                let Some(op) = self.ops.remove(&n) else {
                    return;
                };
                match reply {
                    Payload::WriteOk => ctx.reply(&op.req, Payload::AddOk),
                    Payload::Error { code, text } if code.is_definite() => {
                        ctx.reply_error(&op.req, code, format!("KV refused the write: {text}"))
                    }
                    _ => ctx.reply_error(&op.req, ErrorCode::TIMEOUT, MAYBE_APPLIED),
                }
            }
        }
    }

    fn on_timeout(&mut self, ctx: &mut Ctx<'_>, tag: Tag) {
        match self.calls.take(ctx, tag) {
            // The write may still land: say so, and do not write again.
            Some(Call::AddWrite(n)) => {
                if let Some(op) = self.ops.remove(&n) {
                    ctx.reply_error(&op.req, ErrorCode::TIMEOUT, MAYBE_APPLIED);
                }
            }
            Some(call) => {
                // Refused first, an op that waited too long sends no read.
                self.expire(ctx);
                return self.read_timed_out(ctx, call);
            }
            None => {}
        }
        self.expire(ctx);
    }

    fn on_timer(&mut self, ctx: &mut Ctx<'_>, timer: Timer) {
        if timer == Timer::KvRetry {
            self.expire(ctx);
            for call in self.calls.due() {
                self.issue(ctx, call);
            }
        }
    }
}
