//! What the KV strategies share: remembering what each call was for,
//! making the node current on `seq-kv`, and reading counter values.

use super::{Ctx, Request, Tag, Timer, MAX_TOTAL};
use crate::error::ErrorCode;
use crate::protocol::Payload;
use crate::Time;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;
use std::time::Duration;

/// How long to wait before re-issuing a call the service answered with an
/// unexpected error, so a struggling service is not hammered.
pub const RETRY_DELAY: Duration = Duration::from_millis(50);

/// The calls in flight, by tag, with what each one was for.
#[derive(Debug, Clone, Hash)]
pub struct Calls<P> {
    next: Tag,
    /// With when each was sent, to time the round trip.
    open: BTreeMap<Tag, (P, Time)>,
    /// How many of `open` are for each purpose: with thousands of calls
    /// open (a gone service), scanning them on every answer and timeout
    /// made each request cost as much as all those waiting.
    copies: BTreeMap<P, usize>,
    /// Calls to issue again when [`Timer::KvRetry`] fires.
    retry: Vec<P>,
    rtt: Rtt,
    /// When to send another copy of a hedged call still unanswered, by
    /// the tag of the copy it backs up.
    hedges: Vec<(Time, Tag)>,
}

impl<P> Default for Calls<P> {
    fn default() -> Self {
        Calls {
            next: 0,
            open: BTreeMap::new(),
            copies: BTreeMap::new(),
            retry: Vec::new(),
            rtt: Rtt::default(),
            hedges: Vec::new(),
        }
    }
}

impl<P: Copy + Ord> Calls<P> {
    /// Sends `payload` to the KV service on behalf of `purpose`, with a
    /// deadline of [`Calls::timeout`].
    pub fn call(&mut self, ctx: &mut Ctx<'_>, purpose: P, payload: Payload) {
        let tag = self.next;
        self.next += 1;
        self.open_call(tag, purpose, ctx.now);
        let timeout = self.timeout(ctx);
        ctx.kv_within(payload, tag, timeout);
    }

    /// [`call`](Calls::call) for a request that may be sent twice (a read,
    /// a write of a fresh value): past [`Calls::timeout`] unanswered,
    /// [`Calls::hedges_due`] hands `purpose` back to be sent again, while
    /// this copy waits on. Whichever copy is answered first counts; the
    /// other's answer is not the strategy's any more. A timeout that drops
    /// the first copy would throw away an answer that is likely on its
    /// way (in the tail of the latency, not lost) and start the wait over.
    pub fn call_hedged(&mut self, ctx: &mut Ctx<'_>, purpose: P, payload: Payload) {
        let tag = self.next;
        self.next += 1;
        let copies = self.copies.get(&purpose).copied().unwrap_or(0);
        self.open_call(tag, purpose, ctx.now);
        let cap = ctx.config.rpc_timeout * MAX_TIMEOUT_FACTOR;
        // Each copy waits twice as long as the one before for its backup.
        let soft = (self.timeout(ctx) * (1 << copies.min(4))).min(cap);
        self.hedges.push((ctx.now + soft, tag));
        self.rearm(ctx);
        ctx.kv_within(payload, tag, (soft * HEDGED_DEADLINE).min(cap));
    }

    /// The hedged calls to send again now: those whose copy went
    /// unanswered for its timeout and is still the newest of its purpose.
    pub fn hedges_due(&mut self, ctx: &mut Ctx<'_>) -> Vec<P> {
        let now = ctx.now;
        let (due, later): (Vec<_>, Vec<_>) = self.hedges.iter().partition(|(at, _)| *at <= now);
        self.hedges = later;
        self.rearm(ctx);
        due.into_iter()
            .filter_map(|(_, tag)| self.open.get(&tag).map(|(p, _)| *p))
            .collect()
    }

    /// What the call with `tag` was for; `None` if it is not ours, or if
    /// another copy of it is still waiting. For a call that timed out.
    pub fn take(&mut self, ctx: &mut Ctx<'_>, tag: Tag) -> Option<P> {
        let (purpose, _) = self.close_call(tag)?;
        self.hedges.retain(|(_, t)| *t != tag);
        self.rearm(ctx);
        (!self.in_flight(&purpose)).then_some(purpose)
    }

    /// [`take`](Calls::take) for a call the service answered at `now`:
    /// its round trip also goes into the estimate behind
    /// [`Calls::timeout`]. Tags are never reused, so the sample is never
    /// that of another copy of the call (Karn's problem). Other copies of
    /// the same purpose are forgotten: their answers are no longer ours.
    pub fn answered(&mut self, ctx: &mut Ctx<'_>, tag: Tag) -> Option<P> {
        let (purpose, sent) = self.close_call(tag)?;
        self.rtt.sample(ctx.now.saturating_sub(sent));
        if self.copies.remove(&purpose).is_some() {
            self.open.retain(|_, (p, _)| *p != purpose);
        }
        let open = &self.open;
        self.hedges.retain(|(_, t)| open.contains_key(t));
        self.rearm(ctx);
        Some(purpose)
    }

    fn open_call(&mut self, tag: Tag, purpose: P, now: Time) {
        self.open.insert(tag, (purpose, now));
        *self.copies.entry(purpose).or_insert(0) += 1;
    }

    fn close_call(&mut self, tag: Tag) -> Option<(P, Time)> {
        let (purpose, sent) = self.open.remove(&tag)?;
        if let Some(n) = self.copies.get_mut(&purpose) {
            *n -= 1;
            if *n == 0 {
                self.copies.remove(&purpose);
            }
        }
        Some((purpose, sent))
    }

    /// Whether a call for `purpose` is in flight.
    pub fn in_flight(&self, purpose: &P) -> bool {
        self.copies.contains_key(purpose)
    }

    /// Sets [`Timer::Hedge`] for the next copy to back up, or clears it:
    /// a timer left for nothing would wake the node for nothing.
    fn rearm(&self, ctx: &mut Ctx<'_>) {
        match self.hedges.iter().map(|(at, _)| *at).min() {
            Some(at) => ctx.set_timer(Timer::Hedge, at),
            None => ctx.clear_timer(Timer::Hedge),
        }
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

impl<P> Calls<P> {
    /// How long a call may go unanswered: `config.rpc_timeout`, or more
    /// when the service's round trips are long. A call given up on is
    /// sent again and its late answer dropped, so a deadline inside the
    /// round-trip tail throws away answers that were about to arrive and
    /// starts the wait over: at 300 ms exponential latency each way,
    /// 15 % of round trips pass 1 s.
    pub fn timeout(&self, ctx: &Ctx<'_>) -> Duration {
        self.rtt.timeout(ctx.config.rpc_timeout)
    }

    /// The round-trip estimate, once there is one.
    pub fn srtt(&self) -> Option<Duration> {
        self.rtt.srtt
    }
}

/// The most a call's timeout grows to, in units of `config.rpc_timeout`:
/// past it a call is as good as lost, and a gone service must still be
/// noticed in bounded time.
const MAX_TIMEOUT_FACTOR: u32 = 8;

/// How many of its timeouts a hedged copy waits before it is given up
/// on; it is backed up by another copy after one.
const HEDGED_DEADLINE: u32 = 4;

/// A smoothed round trip and its variation, as TCP keeps them (RFC 6298),
/// for a timeout that sits past the tail of the round trips rather than
/// inside it.
#[derive(Debug, Default, Clone, Copy, Hash)]
struct Rtt {
    srtt: Option<Duration>,
    rttvar: Duration,
}

impl Rtt {
    fn sample(&mut self, r: Duration) {
        match self.srtt {
            None => {
                self.srtt = Some(r);
                self.rttvar = r / 2;
            }
            Some(s) => {
                let diff = s.abs_diff(r);
                self.rttvar = (self.rttvar * 3 + diff) / 4;
                self.srtt = Some((s * 7 + r) / 8);
            }
        }
    }

    /// Never below `floor` (`config.rpc_timeout`), so a fast service
    /// keeps the configured deadline exactly.
    fn timeout(&self, floor: Duration) -> Duration {
        let estimate = self.srtt.map_or(floor, |s| s + self.rttvar * 4);
        estimate.clamp(floor, floor * MAX_TIMEOUT_FACTOR)
    }
}

/// The most requests a strategy keeps waiting for the KV service. Past it
/// a request is refused at once: when the service is gone, requests arrive
/// faster than they expire, and holding them all would grow without end.
pub const MAX_WAITING: usize = 10_000;

/// Text for a client whose request was never sent to the KV service.
pub const UNAVAILABLE: &str = "the KV service is not answering; the request was not applied";

/// How many call timeouts of silence make the service count as gone.
/// One is not enough: a single round trip in the latency tail would then
/// refuse the requests waiting on it, which a client of a working
/// service should never see.
const OUTAGE_TIMEOUTS: u32 = 3;

/// Tells a slow KV service from a gone one: when it last answered, and
/// when it was first asked something after that.
#[derive(Debug, Default, Clone, Hash)]
pub struct Outage {
    last_answer: Option<Time>,
    /// The first call sent since the last answer. Silence counts from
    /// here, not from the last answer: after a quiet spell (the recovery
    /// before the final reads) the service has had nothing to answer,
    /// and a read arriving then must not find it "silent" already.
    asked_since: Option<Time>,
}

impl Outage {
    /// The service answered (or the node started: silence counts from
    /// then).
    pub fn heard(&mut self, now: Time) {
        self.last_answer = Some(self.last_answer.map_or(now, |t| t.max(now)));
        self.asked_since = None;
    }

    /// Whether the service answered at or after `t`.
    pub fn heard_since(&self, t: Time) -> bool {
        self.last_answer.is_some_and(|a| a >= t)
    }

    /// A call went out at `now`.
    pub fn asked(&mut self, now: Time) {
        self.asked_since.get_or_insert(now);
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

    /// When the service has left calls unanswered for
    /// [`OUTAGE_TIMEOUTS`] call timeouts (`timeout`, from
    /// [`Calls::timeout`]): the arrival time at or before which a waiting
    /// request has waited that long, and its client's patience too
    /// (`config.patience`), and is given up on. `None` while the service
    /// answers, so a slow service (or a long latency tail) refuses
    /// nothing; and nothing younger than the patience is refused, so a
    /// client never sees a refusal where waiting could have served it.
    pub fn cutoff(&self, ctx: &Ctx<'_>, timeout: Duration) -> Option<Time> {
        let after = timeout * OUTAGE_TIMEOUTS;
        let asked = self.asked_since?;
        let since = self.last_answer.map_or(asked, |t| t.max(asked));
        let silent = ctx.now.saturating_sub(since) >= after;
        ctx.now
            .checked_sub(after.max(ctx.config.patience))
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
#[derive(Debug, Default, Clone, Hash)]
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
    pub fn answer(&self, ctx: &mut Ctx<'_>, req: Request, value: i64) -> Option<Request> {
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

/// The start of every key a strategy writes before a round of reads
/// (`Fresh`, in `cas` and `per-node`). No strategy ever reads such a key:
/// a write to it only moves the writer to the newest state of `seq-kv`,
/// so what it holds decides nothing (the model checker leaves these keys
/// out of a state's fingerprint, and checks that none is read).
pub const SYNC_KEY_PREFIX: &str = "sync-";

/// Whether `key` is a sync key ([`SYNC_KEY_PREFIX`]).
pub fn is_sync_key(key: &Value) -> bool {
    key.as_str().is_some_and(|k| k.starts_with(SYNC_KEY_PREFIX))
}

/// Writes of fresh values to a key of the node's own.
///
/// On `seq-kv` a write that changes a value lands on the newest state and
/// moves the writer there, so the reads it sends next see every write
/// acknowledged before it. The value includes the incarnation so that a
/// restarted node never writes a value its previous life already wrote
/// (which `seq-kv` could treat as a no-op against a stale state).
#[derive(Debug, Default, Clone, Hash)]
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
pub enum ReadResult<T = i64> {
    Value(T),
    /// The key does not exist (yet): a counter of zero.
    Missing,
    /// No usable answer; try again.
    Retry,
}

/// Interprets a reply to a KV `read` of a counter holding a signed total.
pub fn read_result(reply: &Payload) -> ReadResult {
    read_with(reply, |v| {
        v.as_i64().filter(|n| n.unsigned_abs() <= MAX_TOTAL)
    })
}

/// Interprets a reply to a KV `read` whose value `parse` reads.
pub fn read_with<T>(reply: &Payload, parse: impl Fn(&Value) -> Option<T>) -> ReadResult<T> {
    match reply {
        // A value past the largest total was not written by a counter
        // that checks its sums; taking it in would overflow them.
        Payload::ReadOk { value } => match parse(value) {
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
pub fn cas(key: &str, from: impl Into<Value>, to: impl Into<Value>) -> Payload {
    let from = from.into();
    let create_if_not_exists = from == 0;
    Payload::Cas {
        key: key.into(),
        from,
        to: to.into(),
        create_if_not_exists,
    }
}

/// Text for a client whose add may or may not have been applied.
pub const MAYBE_APPLIED: &str = "the KV service did not confirm the write in time; \
     the add may or may not have been applied";
