//! The node: `init`, message ids, dispatch to the strategy, the table of
//! calls awaiting replies, and timers.

use crate::config::Config;
use crate::error::ErrorCode;
pub use crate::io::Output;
use crate::io::{Io, Pending, Request, Timer};
use crate::protocol::{parse_incoming, Body, Envelope, ParseError, Payload};
use crate::strategy::{self, Ctx, Strategy};
use crate::Time;

use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// What the transport feeds the node.
#[derive(Debug)]
pub enum Input<'a> {
    /// One line read from the wire, without its newline.
    Line(&'a [u8]),
    /// A message already parsed (the simulator skips the bytes).
    Message(Envelope),
    /// The wake-up time the node asked for has come.
    Timeout,
}

#[derive(Debug, Clone)]
struct Ready {
    /// Shared, not copied, when the model checker copies the node.
    me: Arc<str>,
    nodes: Arc<[String]>,
    strategy: Box<dyn Strategy>,
}

/// A counter node. See the crate docs for the run loop.
///
/// `Clone`, and [`fingerprint`](Node::fingerprint)ed, for the model
/// checker: it branches by copying nodes, and explores two schedules
/// that leave every node in the same state once.
#[derive(Debug, Clone)]
pub struct Node {
    config: Config,
    ready: Option<Ready>,
    io: Io,
    bad_input: InputWarnings,
}

impl Node {
    pub fn new(config: Config) -> Self {
        Node {
            config,
            ready: None,
            io: Io::default(),
            bad_input: InputWarnings::default(),
        }
    }

    /// Feeds `h` everything that decides what this node does next: its
    /// identity, the strategy's state, its calls awaiting replies, timers
    /// and anything not yet drained. Not the configuration, which the
    /// caller fixed and knows, nor the count of bad input, which changes
    /// only what is logged.
    pub fn fingerprint<H: Hasher>(&self, h: &mut H) {
        let io = &self.io;
        (&io.outbox, io.next_msg_id, &io.pending).hash(h);
        (&io.deadlines, &io.timers).hash(h);
        match &self.ready {
            None => 0u8.hash(h),
            Some(r) => {
                (1u8, &r.me, &r.nodes).hash(h);
                r.strategy.fingerprint(h);
            }
        }
    }

    /// Gives back a message that [`poll_output`](Node::poll_output) handed
    /// out, once the transport is done with it, so that the buffers of its
    /// names are reused for the next messages' names. Optional: it only
    /// saves allocations (two per reply, and one per request, on the stdio
    /// transport's hot path).
    pub fn recycle(&mut self, msg: Envelope) {
        self.io.keep(msg.src);
        self.io.keep(msg.dest);
    }

    /// Logs how many warnings about bad input were left out since the last
    /// one logged, if any: for a transport whose input has ended, so that a
    /// flood's tail is summarized too.
    pub fn flush_warnings(&mut self) {
        self.bad_input.flush();
    }

    /// The node's id, once `init` has given it one.
    pub fn id(&self) -> Option<&str> {
        self.ready.as_ref().map(|r| &*r.me)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The configuration, while changing it still takes effect: until
    /// `init` (then `None`). For a transport that learns from `init`
    /// itself which node it runs, and only then what that node stored in
    /// an earlier life ([`Config::restored`], [`Config::incarnation`]).
    pub fn config_mut(&mut self) -> Option<&mut Config> {
        match self.ready {
            None => Some(&mut self.config),
            Some(_) => None,
        }
    }

    /// Feeds one input. Never panics on any input.
    pub fn handle(&mut self, input: Input<'_>, now: Time) {
        match input {
            // `src` and `dest` stay borrowed from the line: reading a
            // request allocates nothing for them.
            Input::Line(line) => match parse_incoming(line) {
                Ok(msg) => self.on_message(&msg.src, &msg.dest, msg.body, now),
                Err(err) => self.on_bad_line(line, err),
            },
            Input::Message(msg) => self.on_message(&msg.src, &msg.dest, msg.body, now),
            Input::Timeout => self.on_timeout(now),
        }
    }

    /// The next thing to do. Call until it returns [`Output::Wait`], and
    /// do the outputs in the order given (a [`Output::Persist`] is done
    /// before any message that follows it is sent).
    pub fn poll_output(&mut self) -> Output {
        match self.io.outbox.pop_front() {
            Some(out) => out,
            None => Output::Wait(self.io.next_deadline()),
        }
    }

    fn on_bad_line(&mut self, line: &[u8], err: ParseError) {
        self.bad_input.warn(format_args!(
            "bad input ({}): {}: {}",
            err.code,
            err.text,
            shown(line)
        ));
        if let Some((client, msg_id)) = err.reply_to {
            let me = self
                .id()
                .map(str::to_owned)
                .or(err.dest)
                .unwrap_or_default();
            self.io
                .reply(&me, &client, msg_id, Payload::error(err.code, err.text));
        }
    }

    fn on_message(&mut self, src: &str, dest: &str, body: Body, now: Time) {
        if let Some(reply_to) = body.in_reply_to {
            return self.on_reply(src, reply_to, body.payload, now);
        }
        let Some(ready) = self.ready.as_mut() else {
            return self.before_init(src, dest, body, now);
        };
        if dest != &*ready.me {
            self.bad_input.warn(format_args!(
                "message for {dest} reached {}; handling it anyway",
                ready.me
            ));
        }
        let req = body.msg_id.map(|msg_id| Request {
            client: self.io.name(src),
            msg_id,
        });
        let mut ctx = Ctx {
            now,
            me: &ready.me,
            nodes: &ready.nodes,
            config: &self.config,
            io: &mut self.io,
        };
        match (body.payload, req) {
            (Payload::Add { delta }, Some(req)) => ready.strategy.on_add(&mut ctx, req, delta),
            (Payload::Read { key: None }, Some(req)) => ready.strategy.on_read(&mut ctx, req),
            (Payload::Init { node_id, .. }, Some(req)) => ctx.reply_error(
                &req,
                ErrorCode::PRECONDITION_FAILED,
                format!(
                    "already initialised as {}; init as {node_id} refused",
                    ready.me
                ),
            ),
            (Payload::Error { code, text }, _) => {
                self.bad_input.warn(format_args!(
                    "error {code} from {src} that answers nothing: {text}"
                ));
            }
            (payload, req) => {
                let ty = payload.type_name();
                // Only servers may gossip: a client's `gossip` must not
                // write into the counter.
                let from_server = ready.nodes.iter().any(|n| n == src);
                if !(from_server && ready.strategy.on_peer(&mut ctx, src, payload)) {
                    self.bad_input
                        .warn(format_args!("unsupported `{ty}` from {src}"));
                    if let Some(req) = req {
                        let text = format!("this node does not handle `{ty}`");
                        ctx.reply_error(&req, ErrorCode::NOT_SUPPORTED, text);
                    }
                }
            }
        }
    }

    fn before_init(&mut self, src: &str, dest: &str, body: Body, now: Time) {
        match (body.payload, body.msg_id) {
            (Payload::Init { node_id, node_ids }, Some(msg_id)) => {
                if !node_ids.contains(&node_id) {
                    let text = format!("node_id {node_id} is not among node_ids {node_ids:?}");
                    self.bad_input.warn(format_args!("refused init: {text}"));
                    let err = Payload::error(ErrorCode::MALFORMED_REQUEST, text);
                    return self.io.reply(dest, src, msg_id, err);
                }
                log::info!(
                    "init: {node_id} of {node_ids:?}, strategy {}, kv {}",
                    self.config.strategy,
                    self.config.kv
                );
                self.io.reply(&node_id, src, msg_id, Payload::InitOk);
                let strategy = strategy::build(self.config.strategy, &node_ids);
                self.ready = Some(Ready {
                    me: node_id.into(),
                    nodes: node_ids.into(),
                    strategy,
                });
                self.with_strategy(now, |s, ctx| s.on_start(ctx));
            }
            (payload, Some(msg_id)) => {
                let ty = payload.type_name();
                self.bad_input
                    .warn(format_args!("`{ty}` from {src} before init"));
                let text = format!("not initialised yet; `{ty}` must wait for init");
                let err = Payload::error(ErrorCode::TEMPORARILY_UNAVAILABLE, text);
                self.io.reply(dest, src, msg_id, err);
            }
            (payload, None) => {
                self.bad_input.warn(format_args!(
                    "`{}` from {src} before init, dropped",
                    payload.type_name()
                ));
            }
        }
    }

    fn on_reply(&mut self, src: &str, reply_to: u64, payload: Payload, now: Time) {
        match self.io.pending.remove(&reply_to) {
            Some(pending) => {
                self.io.deadlines.remove(&(pending.deadline, reply_to));
                self.with_strategy(now, |s, ctx| s.on_reply(ctx, pending.tag, payload));
            }
            // A late reply to a call that timed out is expected; an id we
            // never issued is someone's mistake.
            None if reply_to < self.io.next_msg_id => {
                log::debug!(
                    "late reply from {src} to {reply_to}: {}",
                    payload.type_name()
                )
            }
            None => self.bad_input.warn(format_args!(
                "`{}` from {src} claims to answer {reply_to}, which nothing awaits; dropped",
                payload.type_name()
            )),
        }
    }

    fn on_timeout(&mut self, now: Time) {
        let due_timers: Vec<Timer> = self
            .io
            .timers
            .iter()
            .filter(|(_, &at)| at <= now)
            .map(|(&t, _)| t)
            .collect();
        for timer in due_timers {
            self.io.timers.remove(&timer);
            self.with_strategy(now, |s, ctx| s.on_timer(ctx, timer));
        }
        let mut expired: Vec<(u64, Time)> = self
            .io
            .deadlines
            .iter()
            .take_while(|&&(at, _)| at <= now)
            .map(|&(at, id)| (id, at))
            .collect();
        // In the order of their ids, as before deadlines were kept sorted:
        // a different order would change every recorded run.
        expired.sort_unstable();
        for (id, at) in expired {
            self.io.deadlines.remove(&(at, id));
            let Some(Pending { tag, .. }) = self.io.pending.remove(&id) else {
                continue;
            };
            log::debug!("call {id} timed out");
            self.with_strategy(now, |s, ctx| s.on_timeout(ctx, tag));
        }
    }

    fn with_strategy(&mut self, now: Time, f: impl FnOnce(&mut dyn Strategy, &mut Ctx<'_>)) {
        let Some(ready) = self.ready.as_mut() else {
            return;
        };
        let mut ctx = Ctx {
            now,
            me: &ready.me,
            nodes: &ready.nodes,
            config: &self.config,
            io: &mut self.io,
        };
        f(ready.strategy.as_mut(), &mut ctx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_can_change_until_init() {
        let mut node = Node::new(Config::default());
        let init = br#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#;
        let config = node.config_mut().expect("before init");
        config.incarnation = 7;
        node.handle(Input::Line(init), Time::ZERO);
        assert_eq!(node.config().incarnation, 7);
        assert!(node.config_mut().is_none());
    }

    #[test]
    fn recycled_names_are_reused_and_hold_only_the_new_name() {
        let mut node = Node::new(Config::default());
        let init = br#"{"src":"c0","dest":"n1","body":{"type":"init","msg_id":1,"node_id":"n1","node_ids":["n1"]}}"#;
        node.handle(Input::Line(init), Time::ZERO);
        let Output::Send(init_ok) = node.poll_output() else {
            panic!("no init_ok");
        };
        let kept = [init_ok.src.as_ptr(), init_ok.dest.as_ptr()];
        node.recycle(init_ok);
        let read = br#"{"src":"c22","dest":"n1","body":{"type":"read","msg_id":2}}"#;
        node.handle(Input::Line(read), Time::ZERO);
        let Output::Send(read_ok) = node.poll_output() else {
            panic!("no read_ok");
        };
        assert_eq!((read_ok.src.as_str(), read_ok.dest.as_str()), ("n1", "c22"));
        // The request's client name (now the reply's `dest`) and the
        // reply's `src` are the two buffers given back.
        let mut reused = [read_ok.src.as_ptr(), read_ok.dest.as_ptr()];
        reused.sort();
        let mut kept = kept;
        kept.sort();
        assert_eq!(reused, kept);
    }

    #[test]
    fn a_state_queued_right_after_another_replaces_it() {
        let mut io = Io::default();
        io.persist("1".into());
        io.persist("2".into());
        io.send("n0", "c1", None, Some(1), Payload::AddOk);
        io.persist("3".into());
        let sent = match &io.outbox[1] {
            Output::Send(msg) => msg.clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            io.outbox.drain(..).collect::<Vec<_>>(),
            [
                Output::Persist("2".into()),
                Output::Send(sent),
                Output::Persist("3".into())
            ]
        );
    }
}

/// The longest warning about input that is logged, in bytes: the line
/// shown in it, or a `type` or `src` of any length, is cut to fit.
const MAX_WARNING: usize = 300;

/// How much of a bad line a warning shows.
const SHOWN: usize = 200;

/// How many warnings about bad input are logged in full before they are
/// thinned out.
const LOGGED_IN_FULL: u64 = 10;

/// Warnings caused by what the node was sent, limited so that the log
/// stays a small fraction of the input however much of it is bad: each
/// bad line used to cost a warning of ~130 bytes, 66 times a line of
/// `x`. The first [`LOGGED_IN_FULL`] are logged, then one at the 20th,
/// 40th, 80th... (a number of lines logarithmic in the flood), each saying
/// how many were left out since the last. Thinned by count rather than by
/// time, since the core has no clock.
#[derive(Debug, Default, Clone)]
struct InputWarnings {
    seen: u64,
    left_out: u64,
}

impl InputWarnings {
    fn warn(&mut self, text: std::fmt::Arguments<'_>) {
        self.seen += 1;
        let tens = self.seen / LOGGED_IN_FULL;
        let logged = self.seen <= LOGGED_IN_FULL
            || (self.seen % LOGGED_IN_FULL == 0 && tens.is_power_of_two());
        if !logged {
            self.left_out += 1;
            return;
        }
        let left_out = std::mem::take(&mut self.left_out);
        if !log::log_enabled!(log::Level::Warn) {
            return;
        }
        let text = clip(&text.to_string(), MAX_WARNING);
        match left_out {
            0 => log::warn!("{text}"),
            n => log::warn!(
                "{text} (and {n} more warnings about bad input not logged; {} in all)",
                self.seen
            ),
        }
    }

    fn flush(&mut self) {
        if let n @ 1.. = std::mem::take(&mut self.left_out) {
            log::warn!(
                "... and {n} more warnings about bad input not logged ({} in all)",
                self.seen
            );
        }
    }
}

/// The start of a line for a log: decoded leniently, control characters
/// escaped, at most [`SHOWN`] bytes, and its length when cut.
fn shown(line: &[u8]) -> String {
    let text = String::from_utf8_lossy(&line[..line.len().min(SHOWN)]);
    let escaped: String = text.escape_debug().collect();
    if line.len() <= SHOWN && escaped.len() <= SHOWN {
        return escaped;
    }
    // Past SHOWN bytes, so clip adds its `...`.
    let mut out = clip(&escaped, escaped.len().min(SHOWN) - 1);
    out.push_str(&format!(" ({} bytes)", line.len()));
    out
}

/// `text` cut to at most `max` bytes on a character boundary, with `...`
/// when cut.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

#[cfg(test)]
mod warning_tests {
    use super::{clip, shown, InputWarnings};

    #[test]
    fn warnings_about_input_are_cut_and_escaped() {
        assert_eq!(shown(b"ok"), "ok");
        assert_eq!(shown(b"a\x1b[2J\xff"), "a\\u{1b}[2J\u{fffd}");
        let long = shown(&[b'x'; 5000]);
        assert!(long.len() <= 200 + " (5000 bytes)".len(), "{long}");
        assert!(long.ends_with("... (5000 bytes)"), "{long}");
        let wide = shown(&[0xff; 5000]);
        assert!(wide.len() <= 213, "{} bytes", wide.len());
        assert_eq!(clip("\u{e9}\u{e9}\u{e9}", 5), "\u{e9}...");
    }

    #[test]
    fn warnings_are_thinned_logarithmically() {
        let mut w = InputWarnings::default();
        let mut logged = 0;
        for _ in 0..100_000 {
            let before = w.left_out;
            w.warn(format_args!("bad"));
            if w.left_out <= before {
                logged += 1;
            }
        }
        // 10 in full, then at 20, 40, ..., 81920.
        assert_eq!(logged, 10 + 13);
        w.flush();
        assert_eq!(w.left_out, 0);
    }
}
