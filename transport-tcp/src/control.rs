//! Control messages: how a person or a test runner pokes a running cluster.
//!
//! They use the same envelope as every other message, so `nc` or any
//! Maelstrom-style client can send them; their types are not Maelstrom's,
//! so a node under Maelstrom answers them `not-supported`.
//!
//! Sent to a node (`gcounter client --node ADDR partition ID...` / `heal`):
//!
//! ```text
//! {"src":"c1","dest":"n0","body":{"type":"partition","msg_id":1,"peers":["n1","n2"]}}
//!   -> {"src":"n0","dest":"c1","body":{"type":"partition_ok","in_reply_to":1}}
//! {"src":"c1","dest":"n0","body":{"type":"heal","msg_id":2}}
//!   -> {"src":"n0","dest":"c1","body":{"type":"heal_ok","in_reply_to":2}}
//! ```
//!
//! `partition` replaces the set of peers the node is cut off from: from
//! then on it drops every message to them and every message from them,
//! in both directions, like Maelstrom's partition nemesis. Telling one side
//! is enough to cut a link; telling every node its own set is how the
//! cluster is split into groups. The KV service is never cut off. `heal`
//! empties the set. Naming something that is not a peer is answered with
//! error 12 (malformed-request) and changes nothing.
//!
//! Sent to `gcounter cluster`'s control address (in `DIR/cluster.json`;
//! `gcounter cluster restart ID` does this for you):
//!
//! ```text
//! {"src":"ctl","dest":"cluster","body":{"type":"restart","msg_id":1,"node":"n1"}}
//!   -> {"src":"cluster","dest":"ctl","body":{"type":"restart_ok","in_reply_to":1}}
//! ```
//!
//! `restart` kills the node with SIGKILL and starts it again on the same
//! address; `kill` only kills it; `start` starts a killed node; `status`
//! answers `status_ok` with `members`, a list of `{id, addr, log, running}`.
//! An unknown node is answered with error 1 (node-not-found).

use gcounter_core::ErrorCode;
use serde_json::{Map, Value};

/// Asks a node to cut itself off from `peers` (replacing any earlier cut).
pub const PARTITION: &str = "partition";
/// Asks a node to reconnect with every peer.
pub const HEAL: &str = "heal";
/// Asks `gcounter cluster` to kill a node with SIGKILL and start it again.
pub const RESTART: &str = "restart";
/// Asks `gcounter cluster` to kill a node with SIGKILL.
pub const KILL: &str = "kill";
/// Asks `gcounter cluster` to start a node it killed.
pub const START: &str = "start";
/// Asks `gcounter cluster` for its members and whether they run.
pub const STATUS: &str = "status";

/// A control request as parsed from a line: who sent it, its `msg_id`,
/// its type and the rest of its body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Request {
    pub src: String,
    /// Whom the sender addressed (empty if it did not say).
    pub dest: String,
    pub msg_id: Option<u64>,
    pub ty: String,
    pub body: Map<String, Value>,
}

impl Request {
    /// Parses `line` as a control request of one of the `types`. `None`
    /// for anything else (which then goes its ordinary way).
    pub(crate) fn parse(line: &[u8], types: &[&str]) -> Option<Request> {
        let mut envelope: Map<String, Value> = serde_json::from_slice(line).ok()?;
        let src = envelope.remove("src")?.as_str()?.to_owned();
        let dest = match envelope.remove("dest") {
            Some(Value::String(dest)) => dest,
            _ => String::new(),
        };
        let Value::Object(mut body) = envelope.remove("body")? else {
            return None;
        };
        let ty = body.remove("type")?.as_str()?.to_owned();
        if !types.contains(&ty.as_str()) {
            return None;
        }
        let msg_id = body.remove("msg_id").and_then(|id| id.as_u64());
        Some(Request {
            src,
            dest,
            msg_id,
            ty,
            body,
        })
    }

    /// A list of strings from the body, or an error text.
    pub(crate) fn strings(&self, field: &str) -> Result<Vec<String>, String> {
        let bad = || format!("`{}` needs `{field}`: a list of node ids", self.ty);
        let list = self
            .body
            .get(field)
            .and_then(Value::as_array)
            .ok_or_else(bad)?;
        list.iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(bad))
            .collect()
    }

    /// A string from the body, or an error text.
    pub(crate) fn string(&self, field: &str) -> Result<String, String> {
        match self.body.get(field).and_then(Value::as_str) {
            Some(s) => Ok(s.to_owned()),
            None => Err(format!("`{}` needs `{field}`: a node id", self.ty)),
        }
    }

    /// The reply line (with its newline): `<type>_ok` plus `fields`.
    pub(crate) fn ok(&self, me: &str, fields: Vec<(&str, Value)>) -> Vec<u8> {
        let mut body = vec![("type", Value::from(format!("{}_ok", self.ty)))];
        body.extend(self.msg_id.map(|id| ("in_reply_to", Value::from(id))));
        body.extend(fields);
        line(me, &self.src, &body)
    }

    /// The error reply line (with its newline).
    pub(crate) fn error(&self, me: &str, code: ErrorCode, text: &str) -> Vec<u8> {
        let mut body = vec![("type", Value::from("error"))];
        body.extend(self.msg_id.map(|id| ("in_reply_to", Value::from(id))));
        body.push(("code", code.0.into()));
        body.push(("text", text.into()));
        line(me, &self.src, &body)
    }
}

/// One message line (with its newline), the body's keys in the order given
/// (`type` first, as every other message of this crate writes them).
pub(crate) fn line(src: &str, dest: &str, body: &[(&str, Value)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"src\":");
    push_json(&mut out, &Value::from(src));
    out.extend_from_slice(b",\"dest\":");
    push_json(&mut out, &Value::from(dest));
    out.extend_from_slice(b",\"body\":{");
    for (i, (key, value)) in body.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        push_json(&mut out, &Value::from(*key));
        out.push(b':');
        push_json(&mut out, value);
    }
    out.extend_from_slice(b"}}\n");
    out
}

fn push_json(out: &mut Vec<u8>, value: &Value) {
    // Writing a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_request_parses_and_is_answered_in_order() {
        let line =
            br#"{"src":"c1","dest":"n0","body":{"type":"partition","msg_id":4,"peers":["n1"]}}"#;
        let req = Request::parse(line, &[PARTITION, HEAL]).unwrap();
        assert_eq!(req.strings("peers"), Ok(vec!["n1".to_string()]));
        let ok = String::from_utf8(req.ok("n0", Vec::new())).unwrap();
        assert_eq!(
            ok,
            "{\"src\":\"n0\",\"dest\":\"c1\",\"body\":{\"type\":\"partition_ok\",\"in_reply_to\":4}}\n"
        );
    }

    #[test]
    fn other_types_are_left_alone() {
        let line = br#"{"src":"c1","dest":"n0","body":{"type":"echo","msg_id":4}}"#;
        assert_eq!(Request::parse(line, &[PARTITION, HEAL]), None);
        assert_eq!(Request::parse(b"not json", &[PARTITION]), None);
    }
}
