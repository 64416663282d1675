//! `lww-kv`: several replicas that merge by timestamp.
//!
//! Each request is served by one replica picked at random; a write or a
//! successful cas stamps the key with a new timestamp on that replica only.
//! Now and then the replicas exchange state and keep, per key, the value
//! with the highest timestamp. Reads may be stale and a cas that succeeds on
//! one replica can be overwritten by a concurrent one on another: lost
//! writes are expected, as with Maelstrom's `lww-kv`.

use super::kv::{apply, KvState};
use crate::protocol::Payload;
use serde_json::Value;
use std::collections::BTreeMap;

/// How many replicas the model keeps.
pub const LWW_REPLICAS: usize = 3;

/// The chance, after each request, that the replicas merge.
const MERGE_CHANCE: f64 = 0.2;

#[derive(Debug, Clone)]
pub struct LwwKv {
    rng: fastrand::Rng,
    clock: u64,
    /// Per replica: the values, and per key the timestamp of its value.
    replicas: Vec<(KvState, BTreeMap<String, u64>)>,
}

impl LwwKv {
    pub fn new(seed: u64) -> Self {
        LwwKv {
            rng: fastrand::Rng::with_seed(seed),
            clock: 0,
            replicas: vec![Default::default(); LWW_REPLICAS],
        }
    }

    pub fn handle(&mut self, request: &Payload) -> Payload {
        let r = self.rng.usize(..self.replicas.len());
        let (state, stamps) = &mut self.replicas[r];
        let (reply, next) = apply(state, request);
        if let Some(next) = next {
            self.clock += 1;
            for (key, value) in next.iter() {
                if state.get(key) != Some(value) {
                    stamps.insert(key.clone(), self.clock);
                }
            }
            *state = next;
        }
        if self.rng.f64() < MERGE_CHANCE {
            self.merge();
        }
        reply
    }

    /// Every replica takes, per key, the value with the newest timestamp.
    fn merge(&mut self) {
        let mut best: BTreeMap<String, (u64, Value)> = BTreeMap::new();
        for (state, stamps) in &self.replicas {
            for (key, value) in state.iter() {
                let ts = stamps.get(key).copied().unwrap_or(0);
                if best.get(key).is_none_or(|(t, _)| ts > *t) {
                    best.insert(key.clone(), (ts, value.clone()));
                }
            }
        }
        let state: KvState = best
            .iter()
            .map(|(k, (_, v))| (k.clone(), v.clone()))
            .collect();
        let stamps: BTreeMap<String, u64> = best.into_iter().map(|(k, (t, _))| (k, t)).collect();
        for replica in &mut self.replicas {
            *replica = (state.clone(), stamps.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_cas_on_different_replicas_can_lose_a_write() {
        let mut lost = false;
        for seed in 0..200 {
            let mut kv = LwwKv::new(seed);
            let mut expected = 0;
            for _ in 0..20 {
                // A client that trusts cas: read, then cas from what it read.
                let current = match kv.handle(&Payload::Read {
                    key: Some("k".into()),
                }) {
                    Payload::ReadOk { value } => value.as_u64().unwrap_or(0),
                    _ => 0,
                };
                let cas = Payload::Cas {
                    key: "k".into(),
                    from: current.into(),
                    to: (current + 1).into(),
                    create_if_not_exists: current == 0,
                };
                if kv.handle(&cas) == Payload::CasOk {
                    expected += 1;
                }
            }
            kv.merge();
            let last = match kv.handle(&Payload::Read {
                key: Some("k".into()),
            }) {
                Payload::ReadOk { value } => value.as_u64().unwrap_or(0),
                _ => 0,
            };
            lost |= last < expected;
        }
        assert!(lost, "lww-kv never lost a write");
    }
}
