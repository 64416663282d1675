//! The wire format: `{"src", "dest", "body"}` lines with typed bodies.
//!
//! Bodies are written by hand rather than derived so that the key order on
//! the wire is `type`, `in_reply_to`, `msg_id`, then the rest: the sample
//! fixtures compare bytes. They are read through a flat struct of optional
//! fields ([`RawBody`]) so that a body with a bad field still yields its
//! `msg_id`, and the node can answer it with an error instead of dropping it.
//!
//! Both directions are on the hot path of a node (`bench/` and
//! `benches/node.rs` measure them): a line is parsed with `src` and `dest`
//! borrowed from it ([`parse_incoming`]) into a small struct whose rarely
//! used fields are boxed, and [`write_line`] writes bytes directly, the
//! same bytes serde_json would write from the `Serialize` impls.

use crate::error::ErrorCode;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

/// One message: who sent it, to whom, and what it says.
#[derive(Debug, Clone, PartialEq, Hash, Serialize, Deserialize)]
pub struct Envelope<B = Body> {
    pub src: String,
    pub dest: String,
    pub body: B,
}

/// A message body: the ids that tie replies to requests, and the payload.
#[derive(Debug, Clone, PartialEq, Hash)]
pub struct Body {
    pub msg_id: Option<u64>,
    pub in_reply_to: Option<u64>,
    pub payload: Payload,
}

/// A counter as the G-Counter CRDT gossips it: one count per slot (node).
pub type Counts = BTreeMap<String, u64>;

/// An `add`'s delta as read: wider than `i64` so that a delta past what a
/// counter can hold is answered by name rather than as a parse error.
pub type WideDelta = i128;

/// Every body type this crate speaks. KV and TSO bodies are here because the
/// node calls those services and the service models answer them.
#[derive(Debug, Clone, PartialEq, Hash)]
pub enum Payload {
    Init {
        node_id: String,
        node_ids: Vec<String>,
    },
    InitOk,
    /// Negative under `pn-counter`; a g-counter client never sends one.
    Add {
        delta: i64,
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
    /// Gossip of the sender's PN-Counter state; not an RPC (no `msg_id`).
    /// `counts` are the increments per slot, `decrements` the decrements,
    /// left off the wire when empty: a cluster that only ever counts up
    /// sends exactly what a G-Counter cluster sends.
    Gossip {
        counts: Counts,
        decrements: Counts,
    },
    /// The answer to a `gossip`: the receiver's merged state. It tells the
    /// sender what the peer now knows, so idle clusters fall silent.
    GossipAck {
        counts: Counts,
        decrements: Counts,
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
            Payload::Gossip { counts, decrements } | Payload::GossipAck { counts, decrements } => {
                m.serialize_entry("counts", counts)?;
                if !decrements.is_empty() {
                    m.serialize_entry("decrements", decrements)?;
                }
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
///
/// The fields of client requests are inline; the others, which only
/// `init`, KV and peer messages carry, live in [`RawBody::rest`], allocated
/// when the first of them is met. That keeps the struct small: a parse
/// moves it several times, and a large one costs a copy each time.
#[derive(Debug, Default)]
pub struct RawBody<'a> {
    pub ty: Option<Cow<'a, str>>,
    pub msg_id: Option<u64>,
    pub in_reply_to: Option<u64>,
    pub delta: Option<WideDelta>,
    pub rest: Option<Box<RawRest>>,
}

/// The fields of a body that client requests do not carry.
#[derive(Debug, Default)]
pub struct RawRest {
    pub node_id: Option<String>,
    pub node_ids: Option<Vec<String>>,
    pub key: Option<Value>,
    pub value: Option<Value>,
    pub from: Option<Value>,
    pub to: Option<Value>,
    pub create_if_not_exists: Option<bool>,
    pub ts: Option<u64>,
    pub counts: Option<Counts>,
    pub decrements: Option<Counts>,
    pub code: Option<ErrorCode>,
    pub text: Option<String>,
}

/// A body field's name on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Type,
    MsgId,
    InReplyTo,
    Delta,
    NodeId,
    NodeIds,
    Key,
    Value,
    From,
    To,
    CreateIfNotExists,
    Ts,
    Counts,
    Decrements,
    Code,
    Text,
    #[serde(other)]
    Other,
}

/// A string borrowed from the line when it has no escapes to undo.
/// (`Cow<str>`'s own `Deserialize` always copies.)
struct CowStr<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

impl Field {
    fn name(self) -> &'static str {
        match self {
            Field::Type => "type",
            Field::MsgId => "msg_id",
            Field::InReplyTo => "in_reply_to",
            Field::Delta => "delta",
            Field::NodeId => "node_id",
            Field::NodeIds => "node_ids",
            Field::Key => "key",
            Field::Value => "value",
            Field::From => "from",
            Field::To => "to",
            Field::CreateIfNotExists => "create_if_not_exists",
            Field::Ts => "ts",
            Field::Counts => "counts",
            Field::Decrements => "decrements",
            Field::Code => "code",
            Field::Text => "text",
            Field::Other => "other",
        }
    }
}

impl<'de> Deserialize<'de> for RawBody<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = RawBody<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message body")
    }

    /// What a derived `Deserialize` would do: a known field given twice is
    /// an error, unknown fields are skipped, `null` counts as absent.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut b = RawBody::default();
        let mut seen = 0u32;
        while let Some(field) = map.next_key::<Field>()? {
            if field == Field::Other {
                map.next_value::<de::IgnoredAny>()?;
                continue;
            }
            let bit = 1 << field as u32;
            if seen & bit != 0 {
                return Err(de::Error::duplicate_field(field.name()));
            }
            seen |= bit;
            match field {
                Field::Type => b.ty = map.next_value::<Option<CowStr<'de>>>()?.map(|t| t.0),
                Field::MsgId => b.msg_id = map.next_value()?,
                Field::InReplyTo => b.in_reply_to = map.next_value()?,
                Field::Delta => b.delta = map.next_value()?,
                rare => {
                    let r = b.rest.get_or_insert_with(Box::default);
                    match rare {
                        Field::NodeId => r.node_id = map.next_value()?,
                        Field::NodeIds => r.node_ids = map.next_value()?,
                        Field::Key => r.key = map.next_value()?,
                        Field::Value => r.value = map.next_value()?,
                        Field::From => r.from = map.next_value()?,
                        Field::To => r.to = map.next_value()?,
                        Field::CreateIfNotExists => r.create_if_not_exists = map.next_value()?,
                        Field::Ts => r.ts = map.next_value()?,
                        Field::Counts => r.counts = map.next_value()?,
                        Field::Decrements => r.decrements = map.next_value()?,
                        Field::Code => r.code = map.next_value()?,
                        Field::Text => r.text = map.next_value()?,
                        // Handled above.
                        Field::Type
                        | Field::MsgId
                        | Field::InReplyTo
                        | Field::Delta
                        | Field::Other => {}
                    }
                }
            }
        }
        Ok(b)
    }
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
            // The requests a client sends most, first and without `rest`.
            "add" => Payload::Add {
                delta: narrow_delta(require(self.delta, ty, "delta")?)?,
            },
            "read" => Payload::Read {
                key: self.rest.and_then(|r| r.key),
            },
            _ => {
                let r = self.rest.map(|r| *r).unwrap_or_default();
                match ty {
                    "init" => Payload::Init {
                        node_id: require(r.node_id, ty, "node_id")?,
                        node_ids: require(r.node_ids, ty, "node_ids")?,
                    },
                    "init_ok" => Payload::InitOk,
                    "add_ok" => Payload::AddOk,
                    "read_ok" => Payload::ReadOk {
                        value: require(r.value, ty, "value")?,
                    },
                    "write" => Payload::Write {
                        key: require(r.key, ty, "key")?,
                        value: require(r.value, ty, "value")?,
                    },
                    "write_ok" => Payload::WriteOk,
                    "cas" => Payload::Cas {
                        key: require(r.key, ty, "key")?,
                        from: require(r.from, ty, "from")?,
                        to: require(r.to, ty, "to")?,
                        create_if_not_exists: r.create_if_not_exists.unwrap_or(false),
                    },
                    "cas_ok" => Payload::CasOk,
                    "ts" => Payload::Ts,
                    "ts_ok" => Payload::TsOk {
                        ts: require(r.ts, ty, "ts")?,
                    },
                    "gossip" => Payload::Gossip {
                        counts: require(r.counts, ty, "counts")?,
                        decrements: r.decrements.unwrap_or_default(),
                    },
                    "gossip_ack" => Payload::GossipAck {
                        counts: require(r.counts, ty, "counts")?,
                        decrements: r.decrements.unwrap_or_default(),
                    },
                    "error" => Payload::Error {
                        code: require(r.code, ty, "code")?,
                        text: r.text.unwrap_or_default(),
                    },
                    other => {
                        return Err((
                            ErrorCode::NOT_SUPPORTED,
                            format!("unsupported message type `{other}`"),
                        ))
                    }
                }
            }
        };
        Ok(Body {
            msg_id: self.msg_id,
            in_reply_to: self.in_reply_to,
            payload,
        })
    }
}

/// The envelope as read, before the body is typed.
struct RawEnvelope<'a> {
    src: Cow<'a, str>,
    dest: Cow<'a, str>,
    body: RawBody<'a>,
}

impl<'de> Deserialize<'de> for RawEnvelope<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "snake_case")]
        enum Field {
            Src,
            Dest,
            Body,
            #[serde(other)]
            Other,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawEnvelope<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a message")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let (mut src, mut dest, mut body) = (None, None, None);
                while let Some(field) = map.next_key::<Field>()? {
                    match field {
                        Field::Src if src.is_some() => {
                            return Err(de::Error::duplicate_field("src"))
                        }
                        Field::Src => src = Some(map.next_value::<CowStr<'de>>()?.0),
                        Field::Dest if dest.is_some() => {
                            return Err(de::Error::duplicate_field("dest"))
                        }
                        Field::Dest => dest = Some(map.next_value::<CowStr<'de>>()?.0),
                        Field::Body if body.is_some() => {
                            return Err(de::Error::duplicate_field("body"))
                        }
                        Field::Body => body = Some(map.next_value::<RawBody<'de>>()?),
                        Field::Other => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(RawEnvelope {
                    src: src.ok_or_else(|| de::Error::missing_field("src"))?,
                    dest: dest.ok_or_else(|| de::Error::missing_field("dest"))?,
                    body: body.ok_or_else(|| de::Error::missing_field("body"))?,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// A message as read from a line: like [`Envelope`], but `src` and `dest`
/// borrow from the line (unless they had escapes to undo), so reading a
/// message allocates nothing for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming<'a> {
    pub src: Cow<'a, str>,
    pub dest: Cow<'a, str>,
    pub body: Body,
}

impl Incoming<'_> {
    pub fn into_owned(self) -> Envelope {
        Envelope {
            src: self.src.into_owned(),
            dest: self.dest.into_owned(),
            body: self.body,
        }
    }
}

/// Parses one line (without its newline) into a typed message.
///
/// The fast path is one typed parse. Only when it fails is the line parsed
/// again, loosely, to find out who to answer: a bad line costs more, a good
/// one costs nothing extra.
pub fn parse_line(line: &[u8]) -> Result<Envelope, ParseError> {
    parse_incoming(line).map(Incoming::into_owned)
}

/// [`parse_line`], borrowing `src` and `dest` from the line.
pub fn parse_incoming(line: &[u8]) -> Result<Incoming<'_>, ParseError> {
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
                Ok(body) => Ok(Incoming {
                    src: raw.src,
                    dest: raw.dest,
                    body,
                }),
                Err((code, text)) => Err(ParseError {
                    // Never answer a reply with an error: two nodes could
                    // bounce errors at each other forever.
                    reply_to: msg_id
                        .filter(|_| in_reply_to.is_none())
                        .map(|id| (raw.src.into_owned(), id)),
                    dest: Some(raw.dest.into_owned()),
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
    let text = String::from_utf8_lossy(line);
    let found = serde_json::from_str::<Loose<Salvaged>>(&text);
    let text = match (&found, typed_err) {
        (_, None) => "line is not valid UTF-8".to_string(),
        (Err(e), Some(_)) => format!("not JSON: {e}"),
        (Ok(Loose(None)), Some(_)) => "message is not a JSON object".to_string(),
        (Ok(Loose(Some(_))), Some(e)) => format!("malformed message: {e}"),
    };
    let found = found.ok().and_then(|l| l.0).unwrap_or_default();
    let body = found.body.and_then(|b| b.0).unwrap_or_default();
    let reply_to = match (found.src.and_then(|s| s.0), body.msg_id.and_then(|m| m.0)) {
        // Never answer a reply with an error: two nodes could bounce
        // errors at each other forever. `null` is absence, as in the
        // typed parse.
        (Some(src), Some(id)) if !body.is_reply => Some((src, id)),
        _ => None,
    };
    ParseError {
        reply_to,
        dest: found.dest.and_then(|d| d.0),
        code: ErrorCode::MALFORMED_REQUEST,
        text,
    }
}

/// The loose parse of a refused line: only what is needed to answer it.
/// Every other value is skipped unread (`IgnoredAny`), so a number out of
/// range or nesting past serde_json's recursion limit, which a
/// `serde_json::Value` refuses, cannot hide who sent a request.
#[derive(Debug, Default)]
struct Salvaged {
    src: Option<Loose<String>>,
    dest: Option<Loose<String>>,
    body: Option<Loose<SalvagedBody>>,
}

#[derive(Debug, Default)]
struct SalvagedBody {
    msg_id: Option<Loose<u64>>,
    is_reply: bool,
}

/// `Some` if the value has the expected shape, `None` (not an error) if
/// it has another: a wrong field must not hide the fields beside it.
#[derive(Debug)]
struct Loose<T>(Option<T>);

/// What a [`Loose`] can be built from.
trait LooseFrom: Sized {
    fn from_str(_: &str) -> Option<Self> {
        None
    }
    fn from_u64(_: u64) -> Option<Self> {
        None
    }
    fn from_map<'de, A: MapAccess<'de>>(map: A) -> Result<Option<Self>, A::Error> {
        drain(map).map(|()| None)
    }
}

fn drain<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map
        .next_entry::<de::IgnoredAny, de::IgnoredAny>()?
        .is_some()
    {}
    Ok(())
}

impl LooseFrom for String {
    fn from_str(s: &str) -> Option<Self> {
        Some(s.to_owned())
    }
}

impl LooseFrom for u64 {
    fn from_u64(n: u64) -> Option<Self> {
        Some(n)
    }
}

impl LooseFrom for Salvaged {
    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        let mut s = Salvaged::default();
        while let Some(key) = map.next_key::<Cow<'_, str>>()? {
            match key.as_ref() {
                "src" => s.src = Some(map.next_value()?),
                "dest" => s.dest = Some(map.next_value()?),
                "body" => s.body = Some(map.next_value()?),
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(Some(s))
    }
}

impl LooseFrom for SalvagedBody {
    fn from_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<Option<Self>, A::Error> {
        let mut b = SalvagedBody::default();
        while let Some(key) = map.next_key::<Cow<'_, str>>()? {
            match key.as_ref() {
                "msg_id" => b.msg_id = Some(map.next_value()?),
                "in_reply_to" => b.is_reply = map.next_value::<IsSet>()?.0,
                _ => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        Ok(Some(b))
    }
}

impl<'de, T: LooseFrom> Deserialize<'de> for Loose<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: LooseFrom> Visitor<'de> for V<T> {
            type Value = Loose<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Loose(T::from_str(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Loose(T::from_u64(v)))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Loose(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Loose(None))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Loose(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Loose(None))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Loose(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                T::from_map(map).map(Loose)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// Whether a field holds anything but `null`, read without converting it.
struct IsSet(bool);

impl<'de> Deserialize<'de> for IsSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = IsSet;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_none<E: de::Error>(self) -> Result<IsSet, E> {
                Ok(IsSet(false))
            }
            fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<IsSet, D::Error> {
                de::IgnoredAny::deserialize(d).map(|_| IsSet(true))
            }
        }
        d.deserialize_option(V)
    }
}

/// Writes a message as one line (with its newline) into `out`.
///
/// The same bytes as serializing `msg` with serde_json (a test holds the
/// two together), written directly: no serializer state machine, and names
/// and ids that need no escaping are copied as they are.
pub fn write_line(out: &mut Vec<u8>, msg: &Envelope) {
    out.extend_from_slice(b"{\"src\":");
    write_str(out, &msg.src);
    out.extend_from_slice(b",\"dest\":");
    write_str(out, &msg.dest);
    out.extend_from_slice(b",\"body\":{\"type\":\"");
    // Type names are ours and need no escaping.
    out.extend_from_slice(msg.body.payload.type_name().as_bytes());
    out.push(b'"');
    if let Some(id) = msg.body.in_reply_to {
        write_key(out, "in_reply_to");
        write_u64(out, id);
    }
    if let Some(id) = msg.body.msg_id {
        write_key(out, "msg_id");
        write_u64(out, id);
    }
    match &msg.body.payload {
        Payload::Init { node_id, node_ids } => {
            write_key(out, "node_id");
            write_str(out, node_id);
            write_key(out, "node_ids");
            out.push(b'[');
            for (i, id) in node_ids.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_str(out, id);
            }
            out.push(b']');
        }
        Payload::Add { delta } => {
            write_key(out, "delta");
            out.extend_from_slice(itoa::Buffer::new().format(*delta).as_bytes());
        }
        Payload::Read { key } => {
            if let Some(key) = key {
                write_key(out, "key");
                write_value(out, key);
            }
        }
        Payload::ReadOk { value } => {
            write_key(out, "value");
            // A client's read_ok: a count, written as serde_json writes it.
            match value.as_u64() {
                Some(n) => write_u64(out, n),
                None => write_value(out, value),
            }
        }
        Payload::Write { key, value } => {
            write_key(out, "key");
            write_value(out, key);
            write_key(out, "value");
            write_value(out, value);
        }
        Payload::Cas {
            key,
            from,
            to,
            create_if_not_exists,
        } => {
            write_key(out, "key");
            write_value(out, key);
            write_key(out, "from");
            write_value(out, from);
            write_key(out, "to");
            write_value(out, to);
            if *create_if_not_exists {
                write_key(out, "create_if_not_exists");
                out.extend_from_slice(b"true");
            }
        }
        Payload::TsOk { ts } => {
            write_key(out, "ts");
            write_u64(out, *ts);
        }
        Payload::Gossip { counts, decrements } | Payload::GossipAck { counts, decrements } => {
            write_key(out, "counts");
            write_counts(out, counts);
            if !decrements.is_empty() {
                write_key(out, "decrements");
                write_counts(out, decrements);
            }
        }
        Payload::Error { code, text } => {
            write_key(out, "code");
            write_u64(out, code.0.into());
            write_key(out, "text");
            write_str(out, text);
        }
        Payload::InitOk | Payload::AddOk | Payload::WriteOk | Payload::CasOk | Payload::Ts => {}
    }
    out.extend_from_slice(b"}}\n");
}

fn write_counts(out: &mut Vec<u8>, counts: &Counts) {
    out.push(b'{');
    for (i, (slot, n)) in counts.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, slot);
        out.push(b':');
        write_u64(out, *n);
    }
    out.push(b'}');
}

/// An add's delta as the node takes it: what an `i64` holds but its
/// lowest value, so that a delta and its opposite both fit (a counter's
/// total stays within `-MAX_TOTAL..=MAX_TOTAL`, SPEC.md section 2).
fn narrow_delta(delta: WideDelta) -> Result<i64, (ErrorCode, String)> {
    let max = i64::MAX;
    if delta > WideDelta::from(max) {
        return Err((
            ErrorCode::MALFORMED_REQUEST,
            format!("delta {delta} is larger than the largest total, {max}"),
        ));
    }
    if delta < -WideDelta::from(max) {
        return Err((
            ErrorCode::MALFORMED_REQUEST,
            format!("delta {delta} is below the lowest total, -{max}"),
        ));
    }
    Ok(delta as i64)
}

/// `,"key":` for a key that needs no escaping.
fn write_key(out: &mut Vec<u8>, key: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":");
}

fn write_u64(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// A JSON string, escaped exactly as serde_json escapes it.
fn write_str(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        write_value(out, s);
    } else {
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
    }
}

fn write_value<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    // Writing a `Value` or a string into a Vec cannot fail: every map key
    // in a `Value` is a string.
    let _ = serde_json::to_writer(&mut *out, v);
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

    fn sample_payloads() -> Vec<Payload> {
        vec![
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
                decrements: Counts::new(),
            },
            Payload::GossipAck {
                counts: Counts::new(),
                decrements: Counts::new(),
            },
            Payload::Gossip {
                counts: [("n0".to_string(), 3)].into(),
                decrements: [("n1".to_string(), 2)].into(),
            },
            Payload::Add { delta: -5 },
            Payload::error(ErrorCode::PRECONDITION_FAILED, "nope"),
        ]
    }

    #[test]
    fn every_payload_round_trips() {
        for payload in sample_payloads() {
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
    fn write_line_writes_what_serde_json_writes() {
        let names = [
            "n1",
            "c\"1",
            "back\\slash",
            "tab\there",
            "\u{1}\u{1f}\u{7f}",
            "é ✓",
            "",
        ];
        let mut payloads = sample_payloads();
        payloads.push(Payload::Gossip {
            counts: names.iter().map(|n| (n.to_string(), 7)).collect(),
            decrements: names.iter().map(|n| (n.to_string(), 2)).collect(),
        });
        payloads.push(Payload::Init {
            node_id: names[1].into(),
            node_ids: names.iter().map(|n| n.to_string()).collect(),
        });
        payloads.push(Payload::error(ErrorCode(4242), names[3]));
        payloads.push(Payload::ReadOk {
            value: serde_json::json!({"a": [1, -2, 3.5, null, true, "x\ny"]}),
        });
        for value in [0.into(), u64::MAX.into(), (-5).into(), 2.5.into()] {
            payloads.push(Payload::ReadOk { value });
        }
        payloads.push(Payload::TsOk { ts: u64::MAX });
        for (i, payload) in payloads.into_iter().enumerate() {
            let msg = Envelope {
                src: names[i % names.len()].into(),
                dest: names[(i + 1) % names.len()].into(),
                body: Body {
                    msg_id: (i % 3 != 0).then_some(i as u64 * 1_000_003),
                    in_reply_to: (i % 2 == 0).then_some(u64::MAX - i as u64),
                    payload,
                },
            };
            let mut expected = serde_json::to_vec(&msg).unwrap();
            expected.push(b'\n');
            let mut written = b"kept".to_vec();
            write_line(&mut written, &msg);
            assert_eq!(
                String::from_utf8_lossy(&written[4..]),
                String::from_utf8_lossy(&expected)
            );
        }
    }

    #[test]
    fn names_with_escapes_are_unescaped_and_others_borrowed() {
        let line = br#"{"src":"c\u0031","dest":"n1","body":{"type":"read","msg_id":1}}"#;
        let msg = parse_incoming(line).unwrap();
        assert_eq!(msg.src, "c1");
        assert!(matches!(msg.src, Cow::Owned(_)));
        assert!(matches!(msg.dest, Cow::Borrowed("n1")));
    }

    #[test]
    fn fields_are_read_as_a_derived_deserialize_would() {
        // Unknown fields, repeated or not, are skipped; `null` is absence.
        let msg = parse(
            r#"{"x":1,"src":"c1","x":[2],"dest":"n1","body":{"z":{},"type":"read","z":3,"msg_id":4,"in_reply_to":null}}"#,
        )
        .unwrap();
        assert_eq!(msg.body.msg_id, Some(4));
        assert_eq!(msg.body.in_reply_to, None);
        assert_eq!(msg.body.payload, Payload::Read { key: None });
        // A known field given twice is malformed, and still answered.
        for line in [
            r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":7,"delta":1,"delta":2}}"#,
            r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":7,"delta":1,"text":"a","text":"b"}}"#,
        ] {
            let err = parse(line).unwrap_err();
            assert_eq!(err.code, ErrorCode::MALFORMED_REQUEST, "{line}");
            assert!(err.text.contains("duplicate field"), "{}", err.text);
            assert_eq!(err.reply_to, Some(("c1".into(), 7)));
        }
        let err = parse(r#"{"src":"c1","src":"c2","dest":"n1","body":{}}"#).unwrap_err();
        assert!(err.text.contains("duplicate field `src`"), "{}", err.text);
        let err = parse(r#"{"src":"c1","body":{"type":"read","msg_id":2}}"#).unwrap_err();
        assert!(err.text.contains("missing field `dest`"), "{}", err.text);
        assert_eq!(err.reply_to, Some(("c1".into(), 2)));
    }

    #[test]
    fn a_bad_field_still_yields_who_to_answer() {
        let err = parse(r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":7,"delta":1.5}}"#)
            .unwrap_err();
        assert_eq!(err.reply_to, Some(("c1".into(), 7)));
        assert_eq!(err.dest.as_deref(), Some("n1"));
        assert_eq!(err.code, ErrorCode::MALFORMED_REQUEST);
    }

    #[test]
    fn a_negative_delta_is_an_add_and_the_bounds_are_named() {
        let line = r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":7,"delta":-3}}"#;
        assert_eq!(
            parse(line).unwrap().body.payload,
            Payload::Add { delta: -3 }
        );
        let min = i64::MIN;
        let line = format!(
            r#"{{"src":"c1","dest":"n1","body":{{"type":"add","msg_id":7,"delta":{min}}}}}"#
        );
        let err = parse(&line).unwrap_err();
        assert_eq!(err.code, ErrorCode::MALFORMED_REQUEST);
        assert!(err.text.contains("below the lowest total"), "{}", err.text);
        let line = r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":7,"delta":9223372036854775808}}"#;
        let err = parse(line).unwrap_err();
        assert!(
            err.text.contains("larger than the largest total"),
            "{}",
            err.text
        );
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

    /// Issue 11, item 4: lines that name a sender and a `msg_id` but that
    /// neither the typed parse nor a `serde_json::Value` can read.
    fn unreadable_requests() -> Vec<String> {
        let deep = format!("{}1{}", "[".repeat(200), "]".repeat(200));
        vec![
            r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":7,"delta":1e400}}"#.into(),
            format!(r#"{{"src":"c1","dest":"n1","body":{{"type":"read","msg_id":7,"key":{deep}}}}}"#),
            r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":7,"in_reply_to":null,"delta":1.5}}"#
                .into(),
        ]
    }

    #[test]
    fn a_request_no_parser_can_read_still_yields_who_to_answer() {
        for line in unreadable_requests() {
            let err = parse_line(line.as_bytes()).unwrap_err();
            assert_eq!(err.reply_to, Some(("c1".into(), 7)), "{line:.80}");
            assert_eq!(err.dest.as_deref(), Some("n1"), "{line:.80}");
            assert_eq!(err.code, ErrorCode::MALFORMED_REQUEST, "{line:.80}");
        }
    }

    #[test]
    fn a_loose_parse_still_refuses_to_answer_replies_and_broken_lines() {
        for line in [
            r#"{"src":"n2","dest":"n1","body":{"type":"add","msg_id":1,"in_reply_to":3,"delta":1e400}}"#,
            r#"{"src":"c1","dest":"n1","body":{"type":"add","msg_id":1,"delta":1"#,
            r#"{"src":1e400,"dest":"n1","body":{"type":"add","msg_id":1}}"#,
            r#"["c1", 7]"#,
        ] {
            assert_eq!(parse(line).unwrap_err().reply_to, None, "{line}");
        }
    }
}
