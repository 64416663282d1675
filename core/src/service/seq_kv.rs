//! `seq-kv`: sequentially consistent, and therefore allowed to be stale.
//!
//! The model keeps the last [`SEQ_KV_WINDOW`] states and, per client, the
//! newest state that client has observed. An operation first runs against a
//! state picked at random between the client's position and the newest. If
//! it would change nothing there (a read, a failed cas, a write of the value
//! already there) that answer stands and the client's position moves to that
//! state; otherwise it runs against the newest state, which it extends, and
//! the client moves to the newest.
//!
//! The states share structure ([`KvState`] is a persistent map): the window
//! holds one copy of the data plus what its writes changed, and a write
//! costs O(log n), as in Maelstrom's own model. Copying the whole store per
//! write kept 32 copies (20 MB of values: 652 MB RSS, 6 ms a write).

use super::kv::{apply, KvState, Served};
use crate::protocol::Payload;
use std::collections::{BTreeMap, VecDeque};
use std::ops::RangeInclusive;

/// How many past states `seq-kv` keeps.
pub const SEQ_KV_WINDOW: usize = 32;

#[derive(Debug, Clone)]
pub struct SeqKv {
    rng: fastrand::Rng,
    /// The window of states, oldest first; `states[i]` is state `base + i`.
    states: VecDeque<KvState>,
    base: u64,
    /// Per client, the index of the newest state it has observed.
    positions: BTreeMap<String, u64>,
}

impl SeqKv {
    pub fn new(seed: u64) -> Self {
        SeqKv {
            rng: fastrand::Rng::with_seed(seed),
            states: VecDeque::from([KvState::default()]),
            base: 0,
            positions: BTreeMap::new(),
        }
    }

    fn newest(&self) -> u64 {
        self.base + self.states.len() as u64 - 1
    }

    /// The newest state, as a linearizable read would see it.
    pub fn latest(&self) -> &KvState {
        &self.states[self.states.len() - 1]
    }

    /// The value of `key` in the newest state.
    pub fn latest_value(&self, key: &serde_json::Value) -> Option<&serde_json::Value> {
        self.latest().get(&super::kv::key_text(key))
    }

    /// The answer to `request` from `client`, from a state drawn at
    /// random in the client's [`window`](SeqKv::window).
    pub fn handle(&mut self, client: &str, request: &Payload) -> Payload {
        self.serve(client, request).0
    }

    /// [`handle`](SeqKv::handle), saying which state served it.
    pub fn serve(&mut self, client: &str, request: &Payload) -> (Payload, Served) {
        let chosen = self.rng.u64(self.window(client));
        self.serve_from(client, request, chosen)
    }

    /// The states a request from `client` may run against first: from the
    /// newest it has observed to the newest of all.
    pub fn window(&self, client: &str) -> RangeInclusive<u64> {
        let position = self
            .positions
            .get(client)
            .copied()
            .unwrap_or(0)
            .max(self.base);
        position..=self.newest()
    }

    /// State `n` (one of a [`window`](SeqKv::window)), while the window
    /// holds it: lets a model checker work out what each choice of
    /// [`serve_from`](SeqKv::serve_from) would answer without serving it.
    pub fn state(&self, n: u64) -> Option<&KvState> {
        let i = n.checked_sub(self.base)?;
        self.states.get(usize::try_from(i).ok()?)
    }

    /// The answer to `request` from `client`, run first against state
    /// `chosen` (one of its [`window`](SeqKv::window); a model checker
    /// tries each): if it changes nothing there, that answer stands;
    /// otherwise it runs against the newest state, which it extends.
    pub fn serve_from(
        &mut self,
        client: &str,
        request: &Payload,
        chosen: u64,
    ) -> (Payload, Served) {
        let newest = self.newest();
        let chosen = chosen.clamp(self.base, newest);
        let (reply, change) = apply(&self.states[(chosen - self.base) as usize], request);
        if change.is_none() {
            self.positions.insert(client.to_string(), chosen);
            let served = Served {
                state: chosen,
                newest,
                changed: false,
            };
            return (reply, served);
        }
        let (reply, change) = apply(self.latest(), request);
        let changed = change.is_some();
        if let Some(next) = change {
            self.states.push_back(next);
            if self.states.len() > SEQ_KV_WINDOW {
                self.states.pop_front();
                self.base += 1;
            }
        }
        self.positions.insert(client.to_string(), self.newest());
        let served = Served {
            state: self.newest(),
            newest,
            changed,
        };
        (reply, served)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    fn write(v: i64) -> Payload {
        Payload::Write {
            key: "k".into(),
            value: v.into(),
        }
    }
    fn read() -> Payload {
        Payload::Read {
            key: Some("k".into()),
        }
    }
    fn value(p: Payload) -> i64 {
        match p {
            Payload::ReadOk { value } => value.as_i64().unwrap_or(-1),
            Payload::Error {
                code: ErrorCode::KEY_DOES_NOT_EXIST,
                ..
            } => -1,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn reads_can_be_stale_but_never_go_back_for_one_client() {
        let mut stale_seen = false;
        for seed in 0..50 {
            let mut kv = SeqKv::new(seed);
            for v in 1..=20 {
                kv.handle("writer", &write(v));
            }
            let mut last = -1;
            for _ in 0..20 {
                let v = value(kv.handle("reader", &read()));
                assert!(v >= last, "seed {seed}: read went back from {last} to {v}");
                stale_seen |= v < 20;
                last = v;
            }
        }
        assert!(stale_seen, "seq-kv never returned a stale read");
    }

    #[test]
    fn a_changing_write_brings_its_client_up_to_date() {
        for seed in 0..50 {
            let mut kv = SeqKv::new(seed);
            for v in 1..=20 {
                kv.handle("writer", &write(v));
            }
            kv.handle(
                "reader",
                &Payload::Write {
                    key: "mine".into(),
                    value: "fresh".into(),
                },
            );
            assert_eq!(value(kv.handle("reader", &read())), 20, "seed {seed}");
        }
    }

    #[test]
    fn a_cas_can_fail_against_a_stale_state() {
        let mut failed = false;
        for seed in 0..50 {
            let mut kv = SeqKv::new(seed);
            kv.handle("writer", &write(1));
            kv.handle("writer", &write(2));
            let cas = Payload::Cas {
                key: "k".into(),
                from: 2.into(),
                to: 3.into(),
                create_if_not_exists: false,
            };
            failed |= matches!(
                kv.handle("other", &cas),
                Payload::Error {
                    code: ErrorCode::PRECONDITION_FAILED,
                    ..
                }
            );
        }
        assert!(failed, "cas never met a stale state");
    }

    #[test]
    fn the_window_is_bounded() {
        let mut kv = SeqKv::new(7);
        for v in 0..1000 {
            kv.handle("w", &write(v));
        }
        assert_eq!(kv.states.len(), SEQ_KV_WINDOW);
        assert!(value(kv.handle("late", &read())) >= 1000 - SEQ_KV_WINDOW as i64);
    }
}
