//! The fixes offered: one per cause the trace shows, none for a cause it
//! does not.

use super::{Cause, Explanation};

/// What would prevent the losses found.
pub(super) fn fixes(e: &Explanation) -> Vec<String> {
    let mut fixes = Vec::new();
    let by = |cause| e.overwrites.iter().any(|o| o.cause == cause);
    if by(Cause::Concurrent) || by(Cause::StaleRead) || !e.noop_writes.is_empty() {
        fixes.push(
            "a blind write erases what landed since its read: use cas (compare-and-set from \
             the value read, retry on precondition-failed), give each node its own key \
             (per-node), or count without a store (gossip)"
                .into(),
        );
    }
    if by(Cause::StaleRead) || !e.noop_writes.is_empty() || !e.stale_final_reads.is_empty() {
        fixes.push(
            "seq-kv may serve a stale state: write a fresh value to a key of your own before \
             reading (it brings your view up to date), or use lin-kv"
                .into(),
        );
    }
    if !e.unwritten.is_empty() {
        fixes.push(
            "an add acknowledged before it is written must stay pending until a write that \
             carries it lands: subtract what a cas carried, never clear the buffer"
                .into(),
        );
    }
    if !e.kills.is_empty() {
        fixes.push(
            "a killed node forgets what it kept in memory: store acknowledged adds before \
             acknowledging them (our node: --state-dir), or keep them in the KV service"
                .into(),
        );
    }
    fixes
}
