//! Replies to the workload's clients that no request accounts for.
//!
//! Maelstrom's client drops a reply it is not waiting for, and so does the
//! workload: the history is the same either way. But a node that answers a
//! request twice, or answers a `msg_id` its client never sent, is broken in
//! a way the verdict cannot show, so the test counts such replies and
//! reports them as warnings. A reply that comes after its client gave up
//! (past the client timeout) is the one a partition makes: counted apart,
//! not a warning.

use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};

/// How many examples of each kind are kept for the report.
const EXAMPLES: usize = 3;

/// What the test saw of replies to its clients beyond the one each request
/// is owed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplyCounts {
    /// A second (or later) reply to one request.
    pub duplicate: u64,
    /// A reply to a `msg_id` the client never sent, or a message to a
    /// client that answers nothing.
    pub unsolicited: u64,
    /// A first reply that came after the client stopped waiting.
    pub late: u64,
    /// The first few duplicate and unsolicited replies, as lines.
    pub examples: Vec<String>,
    /// Read values that were not plain integers (issue 24): taken as
    /// Maelstrom's client takes them, and warned about.
    pub reads: crate::workload::ReadValues,
}

impl ReplyCounts {
    /// One line per kind that should not happen, for the summary and the
    /// page; empty when the nodes behaved.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.duplicate > 0 {
            out.push(format!(
                "{} duplicate repl{} (a request answered more than once)",
                self.duplicate,
                if self.duplicate == 1 { "y" } else { "ies" }
            ));
        }
        if self.unsolicited > 0 {
            out.push(format!(
                "{} unsolicited repl{} (to a msg_id the client never sent)",
                self.unsolicited,
                if self.unsolicited == 1 { "y" } else { "ies" }
            ));
        }
        out.extend(self.reads.warnings());
        out
    }
}

/// What one reply to a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    /// The first reply to a request the client sent.
    First,
    Duplicate,
    Unsolicited,
}

/// Which requests each client sent and which were answered.
#[derive(Debug, Default)]
pub struct Replies {
    sent: HashMap<String, Ids>,
    counts: ReplyCounts,
}

/// One client's `msg_id`s: those awaiting their first reply, and those
/// answered, as ranges. A client numbers its requests in order and most
/// are answered, so the ranges merge and this stays as small as the
/// requests outstanding (a map of every id sent grew by about 30 bytes an
/// operation: 15 MB over a two-minute run at 5000 a second).
#[derive(Debug, Default)]
struct Ids {
    waiting: HashSet<u64>,
    /// Start -> end (exclusive), disjoint and not adjacent.
    answered: BTreeMap<u64, u64>,
}

impl Ids {
    fn is_answered(&self, id: u64) -> bool {
        self.answered
            .range(..=id)
            .next_back()
            .is_some_and(|(_, &end)| id < end)
    }

    fn answer(&mut self, id: u64) {
        if self.is_answered(id) {
            return;
        }
        let mut start = id;
        let mut end = id.saturating_add(1);
        if let Some((&s, &e)) = self.answered.range(..id).next_back() {
            if e == id {
                start = s;
            }
        }
        if let Some(e) = self.answered.remove(&end) {
            end = e;
        }
        self.answered.insert(start, end);
    }
}

impl Replies {
    /// Client `client` sent request `msg_id`.
    pub fn sent(&mut self, client: &str, msg_id: u64) {
        if let Some(ids) = self.sent.get_mut(client) {
            ids.waiting.insert(msg_id);
        } else {
            let mut ids = Ids::default();
            ids.waiting.insert(msg_id);
            self.sent.insert(client.to_string(), ids);
        }
    }

    /// A message reached `client`, answering `in_reply_to`; `shown` gives
    /// its line for an example.
    pub fn received(
        &mut self,
        client: &str,
        in_reply_to: Option<u64>,
        shown: impl FnOnce() -> String,
    ) -> ReplyKind {
        let answered_before = match (self.sent.get_mut(client), in_reply_to) {
            (Some(ids), Some(id)) => {
                if ids.waiting.remove(&id) {
                    ids.answer(id);
                    return ReplyKind::First;
                }
                ids.is_answered(id)
            }
            _ => false,
        };
        let kind = if answered_before {
            self.counts.duplicate += 1;
            ReplyKind::Duplicate
        } else {
            self.counts.unsolicited += 1;
            ReplyKind::Unsolicited
        };
        if self.counts.examples.len() < 2 * EXAMPLES {
            let label = match kind {
                ReplyKind::Duplicate => "duplicate",
                _ => "unsolicited",
            };
            self.counts.examples.push(format!("{label}: {}", shown()));
        }
        kind
    }

    /// A first reply came after its client stopped waiting.
    pub fn late(&mut self) {
        self.counts.late += 1;
    }

    pub fn counts(&self) -> ReplyCounts {
        self.counts.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_reply_is_a_duplicate_and_an_unknown_id_is_unsolicited() {
        let mut r = Replies::default();
        r.sent("c1", 1);
        r.sent("c1", 2);
        let line = || "line".to_string();
        assert_eq!(r.received("c1", Some(1), line), ReplyKind::First);
        assert_eq!(r.received("c1", Some(1), line), ReplyKind::Duplicate);
        assert_eq!(r.received("c1", Some(9), line), ReplyKind::Unsolicited);
        assert_eq!(r.received("c2", Some(2), line), ReplyKind::Unsolicited);
        assert_eq!(r.received("c1", None, line), ReplyKind::Unsolicited);
        assert_eq!(r.received("c1", Some(2), line), ReplyKind::First);
        let c = r.counts();
        assert_eq!((c.duplicate, c.unsolicited), (1, 3));
        assert_eq!(c.warnings().len(), 2);
        assert_eq!(c.examples[0], "duplicate: line");
    }

    #[test]
    fn answered_ids_merge_into_ranges_whatever_order_they_are_answered_in() {
        let mut r = Replies::default();
        let line = || "line".to_string();
        for id in 1..=10_000 {
            r.sent("c1", id);
        }
        // Answered out of order: odd ids first, then even, leaving 500.
        for id in (1..=10_000).filter(|id| id % 2 == 1) {
            assert_eq!(r.received("c1", Some(id), line), ReplyKind::First);
        }
        for id in (1..=10_000).filter(|id| id % 2 == 0 && *id != 500) {
            assert_eq!(r.received("c1", Some(id), line), ReplyKind::First);
        }
        let ids = &r.sent["c1"];
        assert_eq!(ids.answered.len(), 2, "{:?}", ids.answered);
        assert_eq!(ids.waiting.len(), 1);
        assert_eq!(r.received("c1", Some(499), line), ReplyKind::Duplicate);
        assert_eq!(r.received("c1", Some(500), line), ReplyKind::First);
        assert_eq!(r.received("c1", Some(500), line), ReplyKind::Duplicate);
        assert_eq!(r.sent["c1"].answered.len(), 1);
        assert_eq!(r.received("c1", Some(10_001), line), ReplyKind::Unsolicited);
        // A request sent again under an id already answered is owed a reply.
        r.sent("c1", 7);
        assert_eq!(r.received("c1", Some(7), line), ReplyKind::First);
    }
}
