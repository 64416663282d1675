//! Messages in flight: what is on its way, in the order it arrives.

use super::msg::Msg;
use gcounter_core::Time;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// A message on its way: it arrives at `at`; `seq` orders messages that
/// arrive at the same instant by when they were sent; `id` is its id for
/// the network counts.
#[derive(Debug)]
pub(super) struct InFlight {
    pub at: Time,
    pub seq: u64,
    pub id: u64,
    pub msg: Msg,
}

impl PartialEq for InFlight {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for InFlight {}
impl PartialOrd for InFlight {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for InFlight {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// Earliest arrival first, then send order.
#[derive(Debug, Default)]
pub(super) struct Queue {
    heap: BinaryHeap<Reverse<InFlight>>,
    next_seq: u64,
}

impl Queue {
    pub fn push(&mut self, at: Time, id: u64, msg: Msg) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Reverse(InFlight { at, seq, id, msg }));
    }

    pub fn next_at(&self) -> Option<Time> {
        self.heap.peek().map(|Reverse(m)| m.at)
    }

    pub fn pop(&mut self) -> Option<InFlight> {
        self.heap.pop().map(|Reverse(m)| m)
    }

    /// The first `n` messages to arrive, for a livelock's report.
    pub fn first(&self, n: usize) -> Vec<&InFlight> {
        let mut next: Vec<&InFlight> = self.heap.iter().map(|Reverse(m)| m).collect();
        next.sort();
        next.truncate(n);
        next
    }
}
