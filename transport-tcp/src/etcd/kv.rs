//! Maelstrom's KV calls (`read`, `write`, `cas` to `seq-kv` / `lin-kv`)
//! answered from etcd, behind the node's KV link.
//!
//! The node's core sends its KV requests as it would to `gcounter kv`; the
//! node's KV link hands them here instead of to a socket, and the replies
//! come back as if read from that socket. The core does not know.
//!
//! - `read` is a Range: linearizable for `lin-kv`, serializable (served by
//!   whichever member the client talks to, possibly behind) for `seq-kv`,
//!   so a stale read stays possible as it is on Maelstrom's `seq-kv`.
//! - `write` is a Put.
//! - `cas` is a Txn comparing the stored value with `from`; with
//!   `create_if_not_exists` its failure branch is a second Txn that
//!   creates the key if its create revision is 0 (it does not exist), in
//!   the same atomic transaction.
//!
//! Values are stored as their JSON text. A missing key is error 20, a
//! `from` that does not match error 22. When no etcd member can be
//! reached, or etcd refuses the call (its space quota exhausted, say), the
//! call did not happen: error 11, naming etcd's reason. When a `write` or `cas` went
//! out but its outcome is unknown (a timeout, no leader) there is no
//! reply, as when a network drops it: the core's RPC timeout handles that,
//! and no definite error claims what is not known.
//!
//! Calls run on a few workers, each with its own connection; a key always
//! goes to the same worker, so calls on one key keep their order.

use super::client::{CallError, EtcdClient};
use super::{base64, EtcdTarget, Security};
use crate::conn::{Event, Link, LinkId, Source};
use async_channel::{Receiver, Sender};
use gcounter_core::protocol::{parse_line, write_line};
use gcounter_core::{Body, Envelope, ErrorCode, KvKind, Payload};
use serde_json::{json, Value};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::{Duration, Instant};

/// Workers per node: enough to keep calls on different keys (per-node's
/// reads of every node's key) from queueing behind one another.
const WORKERS: usize = 4;
/// Calls waiting per worker before more are dropped, as a congested link
/// drops them.
const WORKER_QUEUE: usize = 256;
/// How long one call to etcd may take, connecting included: the core's
/// RPC timeout, past which its answer would be ignored anyway.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// A KV link that answers from etcd. `node` spreads nodes over the
/// endpoints: each starts with a different member.
pub(crate) fn spawn_link(
    id: LinkId,
    name: &str,
    target: &EtcdTarget,
    security: &Security,
    node: &str,
    events: Sender<Event>,
    queue_len: usize,
) -> Link {
    let (queue, pending) = async_channel::bounded(queue_len);
    let first = hash(node) as usize;
    let workers = (0..WORKERS)
        .map(|w| {
            let (tx, rx) = async_channel::bounded(WORKER_QUEUE);
            let client = EtcdClient::new(target.endpoints.clone(), first + w, CALL_TIMEOUT)
                .with_security(security);
            let worker = Worker {
                id,
                client,
                prefix: target.prefix.clone(),
                next_msg_id: (w as u64) << 48,
            };
            smol::spawn(worker.run(rx, events.clone())).detach();
            tx
        })
        .collect();
    smol::spawn(dispatch(pending, workers)).detach();
    log::info!(
        "{name} is etcd at {} (keys under {:?})",
        target.endpoints.join(","),
        target.prefix
    );
    Link::with_queue(name, &target.url(), queue)
}

fn hash(x: impl Hash) -> u64 {
    let mut h = DefaultHasher::new();
    x.hash(&mut h);
    h.finish()
}

async fn dispatch(pending: Receiver<(Instant, Vec<u8>)>, workers: Vec<Sender<Envelope>>) {
    let mut dropped = 0u64;
    while let Ok((_, line)) = pending.recv().await {
        let msg = match parse_line(&line) {
            Ok(msg) => msg,
            Err(e) => {
                log::warn!("not a KV request ({}): dropped", e.text);
                continue;
            }
        };
        let key = match &msg.body.payload {
            Payload::Read { key: Some(key) }
            | Payload::Write { key, .. }
            | Payload::Cas { key, .. } => hash(key.to_string()),
            _ => 0,
        };
        if workers[key as usize % workers.len()].try_send(msg).is_err() {
            dropped += 1;
            if dropped.is_power_of_two() {
                log::warn!("etcd is not keeping up: {dropped} KV calls dropped so far");
            }
        }
    }
}

struct Worker {
    id: LinkId,
    client: EtcdClient,
    prefix: String,
    next_msg_id: u64,
}

/// What one call came to.
#[derive(Debug)]
enum Answer {
    Reply(Payload),
    /// The outcome is unknown: say nothing.
    Silence(String),
}

impl Worker {
    async fn run(mut self, calls: Receiver<Envelope>, events: Sender<Event>) {
        while let Ok(msg) = calls.recv().await {
            let Some(request_id) = msg.body.msg_id else {
                continue;
            };
            let payload = match self.answer(&msg).await {
                Answer::Reply(payload) => payload,
                Answer::Silence(why) => {
                    log::warn!(
                        "`{}` from {} left unanswered: {why}",
                        msg.body.payload.type_name(),
                        msg.src
                    );
                    continue;
                }
            };
            let reply = Envelope {
                src: msg.dest,
                dest: msg.src,
                body: Body {
                    msg_id: Some(self.next_msg_id),
                    in_reply_to: Some(request_id),
                    payload,
                },
            };
            self.next_msg_id += 1;
            let mut line = Vec::with_capacity(128);
            write_line(&mut line, &reply);
            while line.last() == Some(&b'\n') {
                line.pop();
            }
            let event = Event::Line {
                from: Source::Link(self.id),
                line,
            };
            if events.send(event).await.is_err() {
                return;
            }
        }
    }

    fn key(&self, key: &Value) -> String {
        // Strings as they are, so `etcdctl get --prefix` reads well; other
        // keys as their JSON text.
        let key = match key {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        base64::encode(format!("{}{key}", self.prefix).as_bytes())
    }

    async fn answer(&mut self, msg: &Envelope) -> Answer {
        let linearizable = msg.dest == KvKind::LinKv.name();
        match &msg.body.payload {
            Payload::Read { key: Some(key) } => {
                let body = json!({"key": self.key(key), "serializable": !linearizable});
                match self.client.call("/v3/kv/range", &body).await {
                    Ok(answer) => match first_value(&answer) {
                        Ok(Some(value)) => Answer::Reply(Payload::ReadOk { value }),
                        Ok(None) => missing(),
                        Err(e) => Answer::Reply(Payload::error(ErrorCode::CRASH, e)),
                    },
                    // A read changes nothing: refusing it is always true.
                    Err(e) => unavailable(e),
                }
            }
            Payload::Write { key, value } => {
                let body = json!({"key": self.key(key), "value": encode_value(value)});
                match self.client.call("/v3/kv/put", &body).await {
                    Ok(_) => Answer::Reply(Payload::WriteOk),
                    Err(e) => not_applied(e),
                }
            }
            Payload::Cas {
                key,
                from,
                to,
                create_if_not_exists,
            } => {
                let key = self.key(key);
                let put = json!([{"request_put": {"key": key, "value": encode_value(to)}}]);
                let range = json!([{"request_range": {"key": key}}]);
                let failure = if *create_if_not_exists {
                    json!([{"request_txn": {
                        "compare": [{"key": key, "target": "CREATE", "result": "EQUAL",
                                     "create_revision": "0"}],
                        "success": put,
                        "failure": range,
                    }}])
                } else {
                    range
                };
                let body = json!({
                    "compare": [{"key": key, "target": "VALUE", "result": "EQUAL",
                                 "value": encode_value(from)}],
                    "success": put,
                    "failure": failure,
                });
                match self.client.call("/v3/kv/txn", &body).await {
                    Ok(answer) => cas_outcome(&answer),
                    Err(e) => not_applied(e),
                }
            }
            other => Answer::Reply(Payload::error(
                ErrorCode::NOT_SUPPORTED,
                format!("etcd serves read, write and cas, not {}", other.type_name()),
            )),
        }
    }
}

fn encode_value(value: &Value) -> String {
    base64::encode(value.to_string().as_bytes())
}

fn missing() -> Answer {
    Answer::Reply(Payload::error(
        ErrorCode::KEY_DOES_NOT_EXIST,
        "key does not exist",
    ))
}

fn unavailable(e: CallError) -> Answer {
    Answer::Reply(Payload::error(
        ErrorCode::TEMPORARILY_UNAVAILABLE,
        e.to_string(),
    ))
}

/// A write or cas that failed: definitely when it never left or etcd
/// refused it, silence when it may have been applied.
fn not_applied(e: CallError) -> Answer {
    match e {
        CallError::Unreachable(_) | CallError::Refused(_) => unavailable(e),
        CallError::Unknown(_) => Answer::Silence(e.to_string()),
    }
}

/// The JSON value a Range answer holds, `None` for no key.
fn first_value(range: &Value) -> Result<Option<Value>, String> {
    let Some(kv) = range.get("kvs").and_then(|kvs| kvs.get(0)) else {
        return Ok(None);
    };
    // The gateway leaves out empty fields: an empty value has none.
    let text = kv.get("value").and_then(Value::as_str).unwrap_or("");
    let bytes = base64::decode(text).ok_or("etcd's value is not base64")?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("the value stored in etcd is not JSON: {e}"))
}

/// `cas_ok`, 20 or 22 from a cas Txn's answer (nested when the cas could
/// create the key).
fn cas_outcome(txn: &Value) -> Answer {
    // The gateway leaves out `succeeded` when it is false.
    let succeeded = |t: &Value| t.get("succeeded").and_then(Value::as_bool) == Some(true);
    if succeeded(txn) {
        return Answer::Reply(Payload::CasOk);
    }
    let first = txn.pointer("/responses/0").cloned().unwrap_or(Value::Null);
    let range = match first.get("response_txn") {
        Some(inner) if succeeded(inner) => return Answer::Reply(Payload::CasOk),
        Some(inner) => inner.pointer("/responses/0/response_range"),
        None => first.get("response_range"),
    };
    let exists = range
        .and_then(|r| r.get("kvs"))
        .and_then(Value::as_array)
        .is_some_and(|kvs| !kvs.is_empty());
    if exists {
        Answer::Reply(Payload::error(
            ErrorCode::PRECONDITION_FAILED,
            "the value is not `from`",
        ))
    } else {
        missing()
    }
}

// The e2e tests' rule for a missing etcd (skip with one line, or fail under
// GCOUNTER_TEST_REQUIRE_ALL=1), included by path: one rule for every test
// that needs etcd, and no test-only code in this crate's API.
#[cfg(test)]
#[path = "../../../tests/e2e/common/requires.rs"]
mod requires;

/// Against a real one-member etcd (the `etcd` binary on PATH).
#[cfg(test)]
mod tests {
    use super::requires;
    use super::*;
    use crate::etcd::EtcdCluster;
    use std::net::{IpAddr, Ipv4Addr};

    fn request(dest: &str, payload: Payload) -> Envelope {
        Envelope {
            src: "n0".into(),
            dest: dest.into(),
            body: Body {
                msg_id: Some(1),
                in_reply_to: None,
                payload,
            },
        }
    }

    fn worker(endpoints: Vec<String>) -> Worker {
        Worker {
            id: 0,
            client: EtcdClient::new(endpoints, 0, CALL_TIMEOUT),
            prefix: format!("test/{:x}/", crate::kv::clock_seed()),
            next_msg_id: 0,
        }
    }

    fn code(answer: Answer) -> Option<u32> {
        match answer {
            Answer::Reply(Payload::Error { code, .. }) => Some(code.0),
            Answer::Reply(_) => None,
            Answer::Silence(why) => panic!("silence: {why}"),
        }
    }

    #[test]
    fn read_write_and_cas_keep_maelstrom_semantics() {
        let Some(_) = requires::etcd() else { return };
        let dir = std::env::temp_dir().join(format!("gcounter-etcd-kv-{}", std::process::id()));
        let etcd = EtcdCluster::start(&dir, 1, IpAddr::V4(Ipv4Addr::LOCALHOST))
            .unwrap_or_else(|e| panic!("etcd: {e}"));
        let mut w = worker(etcd.endpoints());
        let key = Value::from("k");
        let cas = |from: i64, to: i64, create: bool| Payload::Cas {
            key: "k".into(),
            from: from.into(),
            to: to.into(),
            create_if_not_exists: create,
        };
        smol::block_on(async {
            for kv in ["seq-kv", "lin-kv"] {
                w.prefix = format!("test/{kv}/");
                let read = request(
                    kv,
                    Payload::Read {
                        key: Some(key.clone()),
                    },
                );
                assert_eq!(code(w.answer(&read).await), Some(20), "{kv}");
                assert_eq!(
                    code(w.answer(&request(kv, cas(0, 1, false))).await),
                    Some(20)
                );
                assert_eq!(code(w.answer(&request(kv, cas(0, 1, true))).await), None);
                assert_eq!(
                    code(w.answer(&request(kv, cas(0, 2, true))).await),
                    Some(22)
                );
                assert_eq!(code(w.answer(&request(kv, cas(1, 2, false))).await), None);
                let write = Payload::Write {
                    key: key.clone(),
                    value: serde_json::json!({"n1": 3}),
                };
                assert_eq!(code(w.answer(&request(kv, write)).await), None);
                match w.answer(&read).await {
                    Answer::Reply(Payload::ReadOk { value }) => {
                        assert_eq!(value, serde_json::json!({"n1": 3}))
                    }
                    _ => panic!("no read_ok"),
                }
            }
        });
        drop(etcd);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Issue 24, item 7: past its space quota etcd refuses every put
    /// (HTTP 429, "database space exceeded") and still serves ranges. The
    /// refusal is a definite error the client sees as `fail`, not a
    /// silence it must count as indeterminate; reads go on.
    #[test]
    fn a_write_past_etcds_quota_is_refused_definitely_and_reads_go_on() {
        let Some(_) = requires::etcd() else { return };
        let dir = std::env::temp_dir().join(format!("gcounter-etcd-quota-{}", std::process::id()));
        let etcd = EtcdCluster::start_with(
            &dir,
            1,
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            &["--quota-backend-bytes", "100000"],
        )
        .unwrap_or_else(|e| panic!("etcd: {e}"));
        let mut w = worker(etcd.endpoints());
        smol::block_on(async {
            let mut refused = None;
            for i in 0..5000 {
                let write = Payload::Write {
                    key: format!("k{}", i % 50).into(),
                    value: "x".repeat(200).into(),
                };
                match w.answer(&request("seq-kv", write)).await {
                    Answer::Reply(Payload::WriteOk) => {}
                    Answer::Reply(Payload::Error { code, text }) => {
                        refused = Some((code, text));
                        break;
                    }
                    other => panic!("write {i}: {other:?}"),
                }
            }
            let (code, text) = refused.expect("etcd never refused a write past its quota");
            assert_eq!(code, ErrorCode::TEMPORARILY_UNAVAILABLE, "{text}");
            assert!(code.is_definite());
            assert!(text.contains("database space exceeded"), "{text}");
            let read = Payload::Read {
                key: Some("k1".into()),
            };
            for kv in ["seq-kv", "lin-kv"] {
                match w.answer(&request(kv, read.clone())).await {
                    Answer::Reply(Payload::ReadOk { .. }) => {}
                    other => panic!("{kv} read while writes are refused: {other:?}"),
                }
            }
        });
        drop(etcd);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn an_unreachable_etcd_is_unavailable() {
        // A port that was free a moment ago: nobody listens there.
        let port = crate::local::free_ports(IpAddr::V4(Ipv4Addr::LOCALHOST), 1).unwrap()[0];
        let mut w = worker(vec![format!("127.0.0.1:{port}")]);
        let write = Payload::Write {
            key: "k".into(),
            value: 1.into(),
        };
        smol::block_on(async {
            assert_eq!(code(w.answer(&request("seq-kv", write)).await), Some(11));
            let read = Payload::Read {
                key: Some("k".into()),
            };
            assert_eq!(code(w.answer(&request("lin-kv", read)).await), Some(11));
        });
    }
}
