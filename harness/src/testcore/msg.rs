//! A message on the test's network, as the test core routes it.

use gcounter_core::protocol::{self, parse_line};
use gcounter_core::{Body, Envelope, ErrorCode, Payload};
use serde_json::Value;
use std::borrow::Cow;

/// A message: typed when it came from the core or an in-process node, the
/// bytes as printed when it came from a process (a node's own message
/// types need not be ours).
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Typed(Envelope),
    Raw {
        src: String,
        dest: String,
        line: Vec<u8>,
    },
}

/// Whether a request to a store changes it (a `write` or a `cas`).
pub(super) fn is_change(msg: &Msg) -> bool {
    match msg {
        Msg::Typed(m) => matches!(m.body.payload, Payload::Write { .. } | Payload::Cas { .. }),
        Msg::Raw { .. } => matches!(
            msg.body_value().get("type").and_then(Value::as_str),
            Some("write" | "cas")
        ),
    }
}

impl Msg {
    pub fn src(&self) -> &str {
        match self {
            Msg::Typed(m) => &m.src,
            Msg::Raw { src, .. } => src,
        }
    }

    pub fn dest(&self) -> &str {
        match self {
            Msg::Typed(m) => &m.dest,
            Msg::Raw { dest, .. } => dest,
        }
    }

    /// The line to write, without its newline.
    pub fn line(&self) -> Cow<'_, [u8]> {
        match self {
            Msg::Typed(m) => Cow::Owned(protocol::to_line(m).into_bytes()),
            Msg::Raw { line, .. } => Cow::Borrowed(line),
        }
    }

    /// The body as JSON, for the trace.
    pub(super) fn body_value(&self) -> Value {
        match self {
            Msg::Typed(m) => serde_json::to_value(&m.body).unwrap_or_default(),
            Msg::Raw { line, .. } => serde_json::from_slice::<Value>(line)
                .ok()
                .and_then(|mut v| v.get_mut("body").map(Value::take))
                .unwrap_or_default(),
        }
    }

    /// The message typed; a reply our parser refuses (an unknown type, a
    /// bad field) still answers its request, as an indefinite error, since
    /// the client cannot tell what happened.
    pub(super) fn typed(self) -> Envelope {
        match self {
            Msg::Typed(m) => m,
            Msg::Raw { src, dest, line } => parse_line(&line).unwrap_or_else(|err| {
                let value: Value = serde_json::from_slice(&line).unwrap_or_default();
                let in_reply_to = value.pointer("/body/in_reply_to").and_then(Value::as_u64);
                Envelope {
                    src,
                    dest,
                    body: Body {
                        msg_id: None,
                        in_reply_to,
                        payload: Payload::error(
                            ErrorCode(1000),
                            format!("unreadable reply: {}", err.text),
                        ),
                    },
                }
            }),
        }
    }
}
