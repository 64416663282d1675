//! The fixes offered: one per cause the trace shows, none for a cause it
//! does not (a fix for a bug the node does not have sends the learner the
//! wrong way).

use super::overcount::shown;
use super::text::plain_key;
use super::{Cause, Explanation};

/// What would prevent the losses found.
pub(super) fn fixes(e: &Explanation) -> Vec<String> {
    let mut fixes = Vec::new();
    let by = |cause| e.overwrites.iter().any(|o| o.cause == cause);
    // A no-op write that meant to add nothing (a sync, an add of 0) lost
    // nothing: no cause to fix.
    let lossy_noops = e.noop_writes.iter().any(|n| n.lost.is_some_and(|l| l > 0));
    if by(Cause::Concurrent) || by(Cause::StaleRead) || lossy_noops {
        fixes.push(
            "a blind write erases what landed since its read: use cas (compare-and-set from \
             the value read, retry on precondition-failed), give each node its own key \
             (per-node), or count without a store (gossip)"
                .into(),
        );
    }
    let noop_synced = e.stale_final_reads.iter().any(|s| s.noop_sync.is_some());
    if noop_synced {
        fixes.push(
            "a sync must change the store to bring a node up to date: a cas from v to v or a \
             write of the value already there changes nothing, so seq-kv answers it from a \
             stale state and leaves the node's view there; write a fresh value (a counter, a \
             random number) to a key of your own before reading"
                .into(),
        );
    }
    let unsynced_stale = e.stale_final_reads.iter().any(|s| s.noop_sync.is_none());
    if by(Cause::StaleRead) || lossy_noops || unsynced_stale {
        fixes.push(
            "seq-kv may serve a stale state: write a fresh value to a key of your own before \
             reading (it brings your view up to date), or use lin-kv"
                .into(),
        );
    }
    // Only where adds arrived while the node's own change was in flight
    // (the window in which a buffer cleared on success drops them).
    if let Some(u) = e.unwritten.iter().find(|u| u.acknowledged_in_flight > 0) {
        fixes.push(format!(
            "{} acknowledged {} add(s) while one of its changes was in flight, which that change \
             did not carry: an add must stay pending until a change that carries it lands \
             (subtract what the cas carried, never clear the buffer)",
            u.node, u.acknowledged_in_flight
        ));
    }
    if let Some(over) = &e.over_count {
        if let Some(w) = over.writers.iter().find(|w| w.by_key.len() > 1) {
            let keys: Vec<String> = w.by_key.iter().map(|(k, _)| plain_key(k)).collect();
            fixes.push(format!(
                "count each add in one place: {} put its count into {} keys that are all \
                 summed ({}); a node's count belongs under its own key",
                w.node,
                w.by_key.len(),
                keys.join(", ")
            ));
        }
        if let Some(d) = over.added_by_node.filter(|d| *d > 0) {
            let read: Vec<String> = over.reads.iter().map(|k| shown(&k.value)).collect();
            fixes.push(format!(
                "answer a read with what the store holds: {} answered {} where its reads \
                 ({}) sum to {}",
                over.node,
                over.value,
                read.join(" + "),
                over.value - d
            ));
        }
    }
    if !e.kills.is_empty() && e.unexplained > 0 {
        fixes.push(
            "a killed node forgets what it kept in memory: store acknowledged adds before \
             acknowledging them (our node: --state-dir), or keep them in the KV service"
                .into(),
        );
    }
    fixes
}
