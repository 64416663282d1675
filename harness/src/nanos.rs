//! Times in the JSON files (`results.json`, `history.jsonl`,
//! `messages.jsonl`) as whole nanoseconds since the test began: one
//! serializer for all of them, so that each file's `_ns` fields mean the
//! same thing.

use gcounter_core::Time;
use serde::Serializer;

/// `t` in nanoseconds (a test longer than 584 years saturates).
pub(crate) fn ser<S: Serializer>(t: &Time, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX))
}

/// [`ser`], or `null`.
pub(crate) fn ser_opt<S: Serializer>(t: &Option<Time>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => ser(t, s),
        None => s.serialize_none(),
    }
}
