//! The wire format: `{"src", "dest", "body"}` lines with typed bodies.
//!
//! Bodies are written by hand rather than derived so that the key order on
//! the wire is `type`, `in_reply_to`, `msg_id`, then the rest: the sample
//! fixtures compare bytes. They are read through a flat struct of optional
//! fields ([`RawBody`]) so that a body with a bad field still yields its
//! `msg_id`, and the node can answer it with an error instead of dropping it.

use crate::error::ErrorCode;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One message: who sent it, to whom, and what it says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<B = Body> {
    pub src: String,
    pub dest: String,
    pub body: B,
}

/// A message body: the ids that tie replies to requests, and the payload.
#[derive(Debug, Clone, PartialEq)]
pub struct Body {
    pub msg_id: Option<u64>,
    pub in_reply_to: Option<u64>,
    pub payload: Payload,
}

/// A counter as the G-Counter CRDT gossips it: one count per slot (node).
pub type Counts = BTreeMap<String, u64>;

/// Every body type this crate speaks. KV and TSO bodies are here because the
/// node calls those services and the service models answer them.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Init {
        node_id: String,
        node_ids: Vec<String>,
    },
    InitOk,
    Add {
        delta: u64,
    },
    AddOk,
    /// A client's read (no key) or a KV read (with a key).
    Read {
        key: Option<Value>,
    },
    ReadOk {
        value: Value,
    },
    Write {
        key: Value,
        value: Value,
    },
    WriteOk,
    Cas {
        key: Value,
        from: Value,
        to: Value,
        create_if_not_exists: bool,
    },
    CasOk,
    Ts,
    TsOk {
        ts: u64,
    },
    /// Gossip of the sender's G-Counter state; not an RPC (no `msg_id`).
    Gossip {
        counts: Counts,
    },
    /// The answer to a `gossip`: the receiver's merged state. It tells the
    /// sender what the peer now knows, so idle clusters fall silent.
    GossipAck {
        counts: Counts,
    },
    Error {
        code: ErrorCode,
        text: String,
    },
}

impl Payload {
    /// The `type` string on the wire.
    pub fn type_name(&self) -> &'static str {
        match self {
            Payload::Init { .. } => "init",
            Payload::InitOk => "init_ok",
            Payload::Add { .. } => "add",
            Payload::AddOk => "add_ok",
            Payload::Read { .. } => "read",
            Payload::ReadOk { .. } => "read_ok",
            Payload::Write { .. } => "write",
            Payload::WriteOk => "write_ok",
            Payload::Cas { .. } => "cas",
            Payload::CasOk => "cas_ok",
            Payload::Ts => "ts",
            Payload::TsOk { .. } => "ts_ok",
            Payload::Gossip { .. } => "gossip",
            Payload::GossipAck { .. } => "gossip_ack",
            Payload::Error { .. } => "error",
        }
    }

    pub fn error(code: ErrorCode, text: impl Into<String>) -> Self {
        Payload::Error {
            code,
            text: text.into(),
        }
    }
}

impl Body {
    pub fn new(payload: Payload) -> Self {
        Body {
            msg_id: None,
            in_reply_to: None,
            payload,
        }
    }
}

impl Serialize for Body {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("type", self.payload.type_name())?;
        if let Some(id) = self.in_reply_to {
            m.serialize_entry("in_reply_to", &id)?;
        }
        if let Some(id) = self.msg_id {
            m.serialize_entry("msg_id", &id)?;
        }
        match &self.payload {
            Payload::Init { node_id, node_ids } => {
                m.serialize_entry("node_id", node_id)?;
                m.serialize_entry("node_ids", node_ids)?;
            }
            Payload::Add { delta } => m.serialize_entry("delta", delta)?,
            Payload::Read { key } => {
                if let Some(key) = key {
                    m.serialize_entry("key", key)?;
                }
            }
            Payload::ReadOk { value } => m.serialize_entry("value", value)?,
            Payload::Write { key, value } => {
                m.serialize_entry("key", key)?;
                m.serialize_entry("value", value)?;
            }
            Payload::Cas {
                key,
                from,
                to,
                create_if_not_exists,
            } => {
                m.serialize_entry("key", key)?;
                m.serialize_entry("from", from)?;
                m.serialize_entry("to", to)?;
                if *create_if_not_exists {
                    m.serialize_entry("create_if_not_exists", &true)?;
                }
            }
            Payload::TsOk { ts } => m.serialize_entry("ts", ts)?,
            Payload::Gossip { counts } | Payload::GossipAck { counts } => {
                m.serialize_entry("counts", counts)?;
            }
            Payload::Error { code, text } => {
                m.serialize_entry("code", code)?;
                m.serialize_entry("text", text)?;
            }
            Payload::InitOk | Payload::AddOk | Payload::WriteOk | Payload::CasOk | Payload::Ts => {}
        }
        m.end()
    }
}

/// Every field any body may carry, all optional. Parsing into this cannot
/// fail on a missing field, so `msg_id` survives for the error reply.
#[derive(Debug, Default, Deserialize)]
pub struct RawBody<'a> {
    #[serde(rename = "type", borrow)]
    pub ty: Option<Cow<'a, str>>,
    pub msg_id: Option<u64>,
    pub in_reply_to: Option<u64>,
    pub node_id: Option<String>,
    pub node_ids: Option<Vec<String>>,
    pub delta: Option<u64>,
    pub key: Option<Value>,
    pub value: Option<Value>,
    pub from: Option<Value>,
    pub to: Option<Value>,
    pub create_if_not_exists: Option<bool>,
    pub ts: Option<u64>,
    pub counts: Option<Counts>,
    pub code: Option<ErrorCode>,
    pub text: Option<String>,
}

/// Why a line could not become a [`Body`], and what to answer if anyone.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// Where the request can be identified: who sent it and its `msg_id`.
    pub reply_to: Option<(String, u64)>,
    /// The `dest` of the line, when it had one: the error reply's `src`.
    pub dest: Option<String>,
    pub code: ErrorCode,
    pub text: String,
}

fn require<T>(field: Option<T>, ty: &str, name: &str) -> Result<T, (ErrorCode, String)> {
    field.ok_or_else(|| {
        (
            ErrorCode::MALFORMED_REQUEST,
            format!("`{ty}` without `{name}`"),
        )
    })
}

impl RawBody<'_> {
    /// The typed body, or the error code and text to answer it with.
    pub fn into_body(self) -> Result<Body, (ErrorCode, String)> {
        let ty = require(self.ty, "body", "type")?;
        let ty = ty.as_ref();
        let payload = match ty {
            "init" => Payload::Init {
                node_id: require(self.node_id, ty, "node_id")?,
                node_ids: require(self.node_ids, ty, "node_ids")?,
            },
            "init_ok" => Payload::InitOk,
            "add" => Payload::Add {
                delta: require(self.delta, ty, "delta")?,
            },
            "add_ok" => Payload::AddOk,
            "read" => Payload::Read { key: self.key },
            "read_ok" => Payload::ReadOk {
                value: require(self.value, ty, "value")?,
            },
            "write" => Payload::Write {
                key: require(self.key, ty, "key")?,
                value: require(self.value, ty, "value")?,
            },
            "write_ok" => Payload::WriteOk,
            "cas" => Payload::Cas {
                key: require(self.key, ty, "key")?,
                from: require(self.from, ty, "from")?,
                to: require(self.to, ty, "to")?,
                create_if_not_exists: self.create_if_not_exists.unwrap_or(false),
            },
            "cas_ok" => Payload::CasOk,
            "ts" => Payload::Ts,
            "ts_ok" => Payload::TsOk {
                ts: require(self.ts, ty, "ts")?,
            },
            "gossip" => Payload::Gossip {
                counts: require(self.counts, ty, "counts")?,
            },
            "gossip_ack" => Payload::GossipAck {
                counts: require(self.counts, ty, "counts")?,
            },
            "error" => Payload::Error {
                code: require(self.code, ty, "code")?,
                text: self.text.unwrap_or_default(),
            },
            other => {
                return Err((
                    ErrorCode::NOT_SUPPORTED,
                    format!("unsupported message type `{other}`"),
                ))
            }
        };
        Ok(Body {
            msg_id: self.msg_id,
            in_reply_to: self.in_reply_to,
            payload,
        })
    }
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    src: String,
    dest: String,
    #[serde(borrow)]
    body: RawBody<'a>,
}

/// Parses one line (without its newline) into a typed message.
///
/// The fast path is one typed parse. Only when it fails is the line parsed
/// again, loosely, to find out who to answer: a bad line costs more, a good
/// one costs nothing extra.
pub fn parse_line(line: &[u8]) -> Result<Envelope, ParseError> {
    // serde_json skips the UTF-8 check of fields it ignores, so check the
    // whole line first: a line with invalid bytes is refused, never half-read.
    let Ok(text) = std::str::from_utf8(line) else {
        return Err(salvage(line, None));
    };
    match serde_json::from_str::<RawEnvelope<'_>>(text) {
        Ok(raw) => {
            let msg_id = raw.body.msg_id;
            let in_reply_to = raw.body.in_reply_to;
            match raw.body.into_body() {
                Ok(body) => Ok(Envelope {
                    src: raw.src,
                    dest: raw.dest,
                    body,
                }),
                Err((code, text)) => Err(ParseError {
                    // Never answer a reply with an error: two nodes could
                    // bounce errors at each other forever.
                    reply_to: msg_id
                        .filter(|_| in_reply_to.is_none())
                        .map(|id| (raw.src, id)),
                    dest: Some(raw.dest),
                    code,
                    text,
                }),
            }
        }
        Err(typed_err) => Err(salvage(line, Some(typed_err))),
    }
}

/// Finds `src`, `dest` and `body.msg_id` in a line the typed parse refused.
fn salvage(line: &[u8], typed_err: Option<serde_json::Error>) -> ParseError {
    let value: Option<Value> = serde_json::from_slice(line)
        .ok()
        .or_else(|| serde_json::from_str(&String::from_utf8_lossy(line)).ok());
    let text = match (&value, typed_err) {
        (_, None) => "line is not valid UTF-8".to_string(),
        (None, Some(e)) => format!("not JSON: {e}"),
        (Some(v), _) if !v.is_object() => "message is not a JSON object".to_string(),
        (Some(_), Some(e)) => format!("malformed message: {e}"),
    };
    let field = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let (reply_to, dest) = match &value {
        Some(v) => {
            let body = v.get("body");
            let msg_id = body.and_then(|b| b.get("msg_id")).and_then(Value::as_u64);
            let is_reply = body.and_then(|b| b.get("in_reply_to")).is_some();
            let reply_to = match (field(v, "src"), msg_id) {
                (Some(src), Some(id)) if !is_reply => Some((src, id)),
                _ => None,
            };
            (reply_to, field(v, "dest"))
        }
        None => (None, None),
    };
    ParseError {
        reply_to,
        dest,
        code: ErrorCode::MALFORMED_REQUEST,
        text,
    }
}

/// Writes a message as one line (with its newline) into `out`.
pub fn write_line(out: &mut Vec<u8>, msg: &Envelope) {
    // Serializing our own types into a Vec cannot fail: every map key is a
    // string and no Serialize impl here returns an error.
    if serde_json::to_writer(&mut *out, msg).is_ok() {
        out.push(b'\n');
    }
}

/// A message as one JSON line, without the newline.
pub fn to_line(msg: &Envelope) -> String {
    let mut out = Vec::with_capacity(128);
    write_line(&mut out, msg);
    out.pop();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Envelope, ParseError> {
        parse_line(s.as_bytes())
    }

    #[test]
    fn reply_keys_come_in_fixture_order() {
        let msg = Envelope {
            src: "n1".into(),
            dest: "c1".into(),
            body: Body {
                msg_id: Some(2),
                in_reply_to: Some(3),
                payload: Payload::ReadOk { value: 5.into() },
            },
        };
        assert_eq!(
            to_line(&msg),
            r#"{"src":"n1","dest":"c1","body":{"type":"read_ok","in_reply_to":3,"msg_id":2,"value":5}}"#
        );
    }

    #[test]
    fn every_payload_round_trips() {
        let payloads = vec![
            Payload::Init {
                node_id: "n0".into(),
                node_ids: vec!["n0".into(), "n1".into()],
            },
            Payload::InitOk,
            Payload::Add { delta: 4 },
            Payload::AddOk,
            Payload::Read { key: None },
            Payload::Read {
                key: Some("k".into()),
            },
            Payload::ReadOk { value: 7.into() },
            Payload::Write {
                key: "k".into(),
                value: 1.into(),
            },
            Payload::WriteOk,
            Payload::Cas {
                key: "k".into(),
                from: 1.into(),
                to: 2.into(),
                create_if_not_exists: true,
            },
            Payload::Cas {
                key: 3.into(),
                from: 1.into(),
                to: 2.into(),
                create_if_not_exists: false,
            },
            Payload::CasOk,
            Payload::Ts,
            Payload::TsOk { ts: 9 },
            Payload::Gossip {
                counts: [("n0".to_string(), 3)].into(),
            },
            Payload::GossipAck {
                counts: Counts::new(),
            },
            Payload::error(ErrorCode::PRECONDITION_FAILED, "nope"),
        ];
        for payload in payloads {
            let msg = Envelope {
                src: "a".into(),
                dest: "b".into(),
                body: Body {
                    msg_id: Some(1),
                    in_reply_to: None,
                    payload,
                },
            };
            assert_eq!(parse(&to_line(&msg)), Ok(msg));
        }
    }

    #[test]
    fn a_bad_field_still_yields_who_to_answer() {
        let err = parse(r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":7,"delta":-1}}"#)
            .unwrap_err();
        assert_eq!(err.reply_to, Some(("c1".into(), 7)));
        assert_eq!(err.dest.as_deref(), Some("n1"));
        assert_eq!(err.code, ErrorCode::MALFORMED_REQUEST);
    }

    #[test]
    fn an_unknown_type_is_not_supported() {
        let err =
            parse(r#"{"src":"c1","dest":"n1","body":{"type":"echo","msg_id":7}}"#).unwrap_err();
        assert_eq!(err.code, ErrorCode::NOT_SUPPORTED);
        assert_eq!(err.reply_to, Some(("c1".into(), 7)));
    }

    #[test]
    fn invalid_utf8_in_an_ignored_field_is_refused() {
        let line = b"{\"src\":\"c1\",\"dest\":\"n1\",\"body\":{\"type\":\"add\",\"msg_id\":2,\"delta\":1,\"note\":\"\xff\"}}";
        let err = parse_line(line).unwrap_err();
        assert_eq!(err.code, ErrorCode::MALFORMED_REQUEST);
        assert_eq!(err.reply_to, Some(("c1".into(), 2)));
        assert_eq!(err.text, "line is not valid UTF-8");
    }

    #[test]
    fn a_bad_reply_is_never_answered() {
        let err =
            parse(r#"{"src":"n2","dest":"n1","body":{"type":"wat","msg_id":1,"in_reply_to":3}}"#)
                .unwrap_err();
        assert_eq!(err.reply_to, None);
    }
}
