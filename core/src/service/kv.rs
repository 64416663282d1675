//! The key/value operations every KV service shares, and `lin-kv`.

use super::not_supported;
use crate::error::ErrorCode;
use crate::protocol::Payload;
use serde_json::Value;

/// One state of a KV store. Keys are kept as their JSON text, because
/// Maelstrom keys may be any JSON value and `Value` has no ordering.
/// A persistent map, as in Maelstrom's own model: a change copies one
/// path of the tree (O(log n) nodes, entries shared by pointer) and
/// shares the rest with the state it came from, so `seq-kv`'s window of
/// states costs one copy of the data plus its changes, and a clone (the
/// model checker clones whole worlds) is one pointer.
pub type KvState = rpds::RedBlackTreeMapSync<String, Value>;

pub(super) fn key_text(key: &Value) -> String {
    key.to_string()
}

/// Runs one KV request against `state`: the reply, and the new state if the
/// request changes it (a read, a failed cas and a write of the value already
/// there change nothing).
pub fn apply(state: &KvState, request: &Payload) -> (Payload, Option<KvState>) {
    let with = |k: &Value, v: &Value| Some(state.insert(key_text(k), v.clone()));
    match request {
        Payload::Read { key: Some(key) } => match state.get(&key_text(key)) {
            Some(value) => (
                Payload::ReadOk {
                    value: value.clone(),
                },
                None,
            ),
            None => (missing(key), None),
        },
        Payload::Write { key, value } => {
            let change = (state.get(&key_text(key)) != Some(value)).then(|| with(key, value));
            (Payload::WriteOk, change.flatten())
        }
        Payload::Cas {
            key,
            from,
            to,
            create_if_not_exists,
        } => match state.get(&key_text(key)) {
            None if *create_if_not_exists => (Payload::CasOk, with(key, to)),
            None => (missing(key), None),
            Some(current) if current == from => (
                Payload::CasOk,
                (from != to).then(|| with(key, to)).flatten(),
            ),
            Some(current) => (
                Payload::error(
                    ErrorCode::PRECONDITION_FAILED,
                    format!("expected {from}, but had {current}"),
                ),
                None,
            ),
        },
        other => (not_supported(other), None),
    }
}

fn missing(key: &Value) -> Payload {
    Payload::error(
        ErrorCode::KEY_DOES_NOT_EXIST,
        format!("key {key} does not exist"),
    )
}

/// Which state of a KV store served a request. States are numbered from
/// 0 (the empty store), one more per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// The state the answer came from; for a change, the state it made.
    pub state: u64,
    /// The newest state when the request arrived: `newest - state` of an
    /// answer that changed nothing is how far behind (stale) it was.
    pub newest: u64,
    /// Whether the request made a new state.
    pub changed: bool,
}

/// `lin-kv`: linearizable, every operation sees the latest state.
#[derive(Debug, Clone, Default, Hash)]
pub struct LinKv {
    state: KvState,
    version: u64,
}

impl LinKv {
    pub fn handle(&mut self, request: &Payload) -> Payload {
        self.serve(request).0
    }

    /// [`handle`](LinKv::handle), saying which state served it: always the
    /// newest.
    pub fn serve(&mut self, request: &Payload) -> (Payload, Served) {
        let newest = self.version;
        let (reply, next) = apply(&self.state, request);
        let changed = next.is_some();
        if let Some(next) = next {
            self.state = next;
            self.version += 1;
        }
        let served = Served {
            state: self.version,
            newest,
            changed,
        };
        (reply, served)
    }

    pub fn state(&self) -> &KvState {
        &self.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cas(from: i64, to: i64, create: bool) -> Payload {
        Payload::Cas {
            key: "k".into(),
            from: from.into(),
            to: to.into(),
            create_if_not_exists: create,
        }
    }
    fn read() -> Payload {
        Payload::Read {
            key: Some("k".into()),
        }
    }

    #[test]
    fn lin_kv_follows_the_spec() {
        let mut kv = LinKv::default();
        assert!(matches!(
            kv.handle(&read()),
            Payload::Error {
                code: ErrorCode::KEY_DOES_NOT_EXIST,
                ..
            }
        ));
        assert!(matches!(
            kv.handle(&cas(0, 1, false)),
            Payload::Error {
                code: ErrorCode::KEY_DOES_NOT_EXIST,
                ..
            }
        ));
        assert_eq!(kv.handle(&cas(0, 3, true)), Payload::CasOk);
        assert_eq!(kv.handle(&read()), Payload::ReadOk { value: 3.into() });
        assert!(matches!(
            kv.handle(&cas(0, 1, true)),
            Payload::Error {
                code: ErrorCode::PRECONDITION_FAILED,
                ..
            }
        ));
        assert_eq!(
            kv.handle(&Payload::Write {
                key: "k".into(),
                value: 9.into()
            }),
            Payload::WriteOk
        );
        assert_eq!(kv.handle(&read()), Payload::ReadOk { value: 9.into() });
        assert!(matches!(
            kv.handle(&Payload::Ts),
            Payload::Error {
                code: ErrorCode::NOT_SUPPORTED,
                ..
            }
        ));
    }

    #[test]
    fn keys_of_different_json_types_are_different_keys() {
        let mut kv = LinKv::default();
        kv.handle(&Payload::Write {
            key: "1".into(),
            value: 1.into(),
        });
        kv.handle(&Payload::Write {
            key: 1.into(),
            value: 2.into(),
        });
        assert_eq!(
            kv.handle(&Payload::Read {
                key: Some("1".into())
            }),
            Payload::ReadOk { value: 1.into() }
        );
        assert_eq!(
            kv.handle(&Payload::Read {
                key: Some(1.into())
            }),
            Payload::ReadOk { value: 2.into() }
        );
    }
}
