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
use std::collections::HashMap;

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
    /// Per client, per `msg_id` sent: answered yet.
    sent: HashMap<String, HashMap<u64, bool>>,
    counts: ReplyCounts,
}

impl Replies {
    /// Client `client` sent request `msg_id`.
    pub fn sent(&mut self, client: &str, msg_id: u64) {
        if let Some(ids) = self.sent.get_mut(client) {
            ids.insert(msg_id, false);
        } else {
            self.sent
                .insert(client.to_string(), HashMap::from([(msg_id, false)]));
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
        let answered = in_reply_to.and_then(|id| self.sent.get_mut(client)?.get_mut(&id));
        let kind = match answered {
            Some(answered) if !*answered => {
                *answered = true;
                return ReplyKind::First;
            }
            Some(_) => {
                self.counts.duplicate += 1;
                ReplyKind::Duplicate
            }
            None => {
                self.counts.unsolicited += 1;
                ReplyKind::Unsolicited
            }
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
}
