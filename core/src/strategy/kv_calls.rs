//! What the KV strategies share: remembering what each call was for,
//! making the node current on `seq-kv`, and reading counter values.

use super::{Ctx, Request, Tag, Timer, MAX_TOTAL};
use crate::error::ErrorCode;
use crate::protocol::Payload;
use crate::Time;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// How long to wait before re-issuing a call the service answered with an
/// unexpected error, so a struggling service is not hammered.
pub const RETRY_DELAY: Duration = Duration::from_millis(50);

/// The calls in flight, by tag, with what each one was for.
#[derive(Debug)]
pub struct Calls<P> {
    next: Tag,
    open: HashMap<Tag, P>,
    /// Calls to issue again when [`Timer::KvRetry`] fires.
    retry: Vec<P>,
}

impl<P> Default for Calls<P> {
    fn default() -> Self {
        Calls {
            next: 0,
            open: HashMap::new(),
            retry: Vec::new(),
        }
    }
}

impl<P: Copy> Calls<P> {
    /// Sends `payload` to the KV service on behalf of `purpose`.
    pub fn call(&mut self, ctx: &mut Ctx<'_>, purpose: P, payload: Payload) {
        let tag = self.next;
        self.next += 1;
        self.open.insert(tag, purpose);
        ctx.kv(payload, tag);
    }

    /// What the call with `tag` was for; `None` if it is not ours.
    pub fn take(&mut self, tag: Tag) -> Option<P> {
        self.open.remove(&tag)
    }

    /// Issues `purpose` again after [`RETRY_DELAY`].
    pub fn retry_later(&mut self, ctx: &mut Ctx<'_>, purpose: P) {
        self.retry.push(purpose);
        if !ctx.timer_armed(Timer::KvRetry) {
            let at = ctx.now + RETRY_DELAY;
            ctx.set_timer(Timer::KvRetry, at);
        }
    }

    /// The calls due for another try.
    pub fn due(&mut self) -> Vec<P> {
        std::mem::take(&mut self.retry)
    }
}

impl<P: PartialEq> Calls<P> {
    /// Whether a call for `purpose` is in flight.
    pub fn in_flight(&self, purpose: &P) -> bool {
        self.open.values().any(|p| p == purpose)
    }
}

/// The most requests a strategy keeps waiting for the KV service. Past it
/// a request is refused at once: when the service is gone, requests arrive
/// faster than they expire, and holding them all would grow without end.
pub const MAX_WAITING: usize = 10_000;

/// Text for a client whose request was never sent to the KV service.
pub const UNAVAILABLE: &str = "the KV service is not answering; the request was not applied";

/// Tells a slow KV service from a gone one: when it last answered.
#[derive(Debug, Default)]
pub struct Outage {
    last_answer: Option<Time>,
}

impl Outage {
    /// The service answered (or the node started: silence counts from
    /// then).
    pub fn heard(&mut self, now: Time) {
        self.last_answer = Some(self.last_answer.map_or(now, |t| t.max(now)));
    }

    /// Whether `reply` shows the service working: anything but an error
    /// that asks to try again later.
    pub fn heard_from(&mut self, now: Time, reply: &Payload) {
        let working = match reply {
            Payload::Error { code, .. } => {
                *code == ErrorCode::PRECONDITION_FAILED || *code == ErrorCode::KEY_DOES_NOT_EXIST
            }
            _ => true,
        };
        if working {
            self.heard(now);
        }
    }

    /// When the service has not answered for a whole RPC timeout: the
    /// arrival time at or before which a waiting request has outlived its
    /// client's patience, and is given up on. `None` while the service
    /// answers, so a slow service (or a long latency tail) refuses
    /// nothing; and nothing younger than the patience is refused, so a
    /// client never sees a refusal where waiting could have served it.
    pub fn cutoff(&self, ctx: &Ctx<'_>) -> Option<Time> {
        let timeout = ctx.config.rpc_timeout;
        let silent = self
            .last_answer
            .is_none_or(|t| ctx.now.saturating_sub(t) >= timeout);
        ctx.now
            .checked_sub(ctx.config.patience.max(timeout))
            .filter(|_| silent)
    }
}

/// Takes from the front of `queue` (oldest first) the entries that
/// arrived at or before `cutoff`.
pub fn expired<T>(queue: &mut VecDeque<(T, Time)>, cutoff: Time) -> Vec<T> {
    let n = queue.iter().take_while(|(_, at)| *at <= cutoff).count();
    queue.drain(..n).map(|(t, _)| t).collect()
}

/// When a node's view of the counter was last brought up to date: the
/// start of its last completed read round. Reads within
/// `config.read_staleness` of that are answered from the view, which
/// bounds how stale such a read can be and spares the service a round per
/// read under load; while reads keep coming the view is refreshed in the
/// background, and after a quiet spell (the final reads) a read asks the
/// service again.
#[derive(Debug, Default)]
pub struct ReadView {
    fresh_from: Option<Time>,
}

impl ReadView {
    /// Whether a read arriving now may be answered from the view.
    pub fn serves(&self, ctx: &Ctx<'_>) -> bool {
        let staleness = ctx.config.read_staleness;
        !staleness.is_zero()
            && self
                .fresh_from
                .is_some_and(|t| ctx.now.saturating_sub(t) <= staleness)
    }

    /// Answers `req` with `value` if the view serves it; otherwise hands
    /// the request back, to wait for a round.
    pub fn answer(&self, ctx: &mut Ctx<'_>, req: Request, value: u64) -> Option<Request> {
        if !self.serves(ctx) {
            return Some(req);
        }
        ctx.reply(
            &req,
            Payload::ReadOk {
                value: value.into(),
            },
        );
        None
    }

    /// Whether a read answered from the view should also start a round in
    /// the background: past half the staleness bound, so that while reads
    /// keep coming the view is renewed before it expires and they never
    /// wait for the service.
    pub fn wants_refresh(&self, ctx: &Ctx<'_>) -> bool {
        let half = ctx.config.read_staleness / 2;
        self.fresh_from
            .is_some_and(|t| ctx.now.saturating_sub(t) > half)
    }

    /// A round that started at `started` has completed.
    pub fn refreshed(&mut self, started: Time) {
        self.fresh_from = Some(self.fresh_from.map_or(started, |t| t.max(started)));
    }
}

/// Writes of fresh values to a key of the node's own.
///
/// On `seq-kv` a write that changes a value lands on the newest state and
/// moves the writer there, so the reads it sends next see every write
/// acknowledged before it. The value includes the incarnation so that a
/// restarted node never writes a value its previous life already wrote
/// (which `seq-kv` could treat as a no-op against a stale state).
#[derive(Debug, Default)]
pub struct Fresh {
    count: u64,
}

impl Fresh {
    pub fn next(&mut self, ctx: &Ctx<'_>) -> Payload {
        self.count += 1;
        Payload::Write {
            key: format!("sync-{}", ctx.me).into(),
            value: format!("{}:{}", ctx.config.incarnation, self.count).into(),
        }
    }
}

/// How a KV `read` came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadResult {
    Value(u64),
    /// The key does not exist (yet): a counter of zero.
    Missing,
    /// No usable answer; try again.
    Retry,
}

/// Interprets a reply to a KV `read` of a counter.
pub fn read_result(reply: &Payload) -> ReadResult {
    match reply {
        // A value past the largest total was not written by a counter
        // that checks its sums; taking it in would overflow them.
        Payload::ReadOk { value } => match value.as_u64().filter(|&n| n <= MAX_TOTAL) {
            Some(n) => ReadResult::Value(n),
            None => {
                log::error!("KV holds {value} where a counter was expected; reading again");
                ReadResult::Retry
            }
        },
        Payload::Error {
            code: ErrorCode::KEY_DOES_NOT_EXIST,
            ..
        } => ReadResult::Missing,
        other => {
            log::warn!("unexpected answer to a KV read: {other:?}");
            ReadResult::Retry
        }
    }
}

/// A KV `read` of `key`.
pub fn read(key: &str) -> Payload {
    Payload::Read {
        key: Some(Value::from(key)),
    }
}

/// A KV compare-and-set of counter `key` from `from` to `to`; a counter at
/// zero may not exist yet, so that case also creates it.
pub fn cas(key: &str, from: u64, to: u64) -> Payload {
    Payload::Cas {
        key: key.into(),
        from: from.into(),
        to: to.into(),
        create_if_not_exists: from == 0,
    }
}

/// Text for a client whose add may or may not have been applied.
pub const MAYBE_APPLIED: &str = "the KV service did not confirm the write in time; \
     the add may or may not have been applied";
