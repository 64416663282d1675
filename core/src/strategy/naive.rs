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

use super::kv_calls::{self, Calls, ReadResult, MAYBE_APPLIED};
use super::{checked_total, Ctx, Request, Strategy, Tag, Timer};
use crate::error::ErrorCode;
use crate::protocol::Payload;
use std::collections::HashMap;

/// The shared key (the same one `cas` uses).
pub const KEY: &str = super::cas::KEY;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// Step one of add number `n`: read the current value.
    AddRead(u64),
    /// Step two: write value + delta.
    AddWrite(u64),
    /// A client's read, number `n`.
    Read(u64),
}

#[derive(Debug)]
struct Op {
    req: Request,
    delta: u64,
    /// The value to write, once read.
    write: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Naive {
    calls: Calls<Call>,
    next_op: u64,
    ops: HashMap<u64, Op>,
}

impl Naive {
    fn issue(&mut self, ctx: &mut Ctx<'_>, call: Call) {
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
        self.calls.call(ctx, call, payload);
    }

    fn new_op(&mut self, req: Request, delta: u64) -> u64 {
        let n = self.next_op;
        self.next_op += 1;
        self.ops.insert(
            n,
            Op {
                req,
                delta,
                write: None,
            },
        );
        n
    }
}

impl Strategy for Naive {
    fn on_add(&mut self, ctx: &mut Ctx<'_>, req: Request, delta: u64) {
        let n = self.new_op(req, delta);
        self.issue(ctx, Call::AddRead(n));
    }

    fn on_read(&mut self, ctx: &mut Ctx<'_>, req: Request) {
        let n = self.new_op(req, 0);
        self.issue(ctx, Call::Read(n));
    }

    fn on_reply(&mut self, ctx: &mut Ctx<'_>, tag: Tag, reply: Payload) {
        let Some(call) = self.calls.answered(ctx, tag) else {
            return;
        };
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
                match checked_total(value, op.delta) {
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
            Some(call) => self.issue(ctx, call),
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
