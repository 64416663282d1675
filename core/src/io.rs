//! What the node and its strategy do to the world, queued: messages to
//! send, state to store, calls awaiting replies and timers. Its own module
//! because both the node (which drains it) and the strategy (which fills
//! it through `Ctx`) use it, and neither should import the other for it.

use crate::protocol::{Body, Envelope, Payload};
use crate::Time;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A client request waiting for its answer: where the reply goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Request {
    pub client: String,
    pub msg_id: u64,
}

/// The timers a strategy may arm; one deadline per name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Timer {
    /// Time to spread state to peers.
    Gossip,
    /// Time to retry KV work after a failure, without hammering the service.
    KvRetry,
    /// Time for `cas` to try again after losing a race for the key.
    Backoff,
    /// Time to back up a KV call that is slow to be answered.
    Hedge,
}

/// Identifies, to the strategy that made it, which KV call a reply is for.
pub type Tag = u64;

/// What the node wants done, drained with [`Node::poll_output`](crate::Node::poll_output), in order.
#[derive(Debug, Clone, PartialEq, Hash)]
pub enum Output {
    /// Send this message.
    Send(Envelope),
    /// Store this state (one line of text) durably, replacing the last
    /// one stored, before sending anything that follows it: any message
    /// after it may reveal or acknowledge what it holds. A restarted node
    /// is given the last state stored in [`Config::restored`](crate::Config::restored). A transport
    /// that keeps nothing across restarts may ignore it, and its restarted
    /// node then lacks what the state held.
    Persist(String),
    /// Nothing more to send now: call back with [`Input::Timeout`](crate::Input::Timeout) at this
    /// time (or never, if `None`) unless input arrives first.
    Wait(Option<Time>),
}

/// A KV call waiting for its reply.
#[derive(Debug, Clone, Hash)]
pub(crate) struct Pending {
    pub(crate) tag: Tag,
    pub(crate) deadline: Time,
}

/// The node's side effects, shared with the strategy through [`Ctx`](crate::strategy::Ctx).
#[derive(Debug, Default, Clone)]
pub(crate) struct Io {
    /// Only `Send` and `Persist`, in the order they were made.
    pub(crate) outbox: VecDeque<Output>,
    pub(crate) next_msg_id: u64,
    pub(crate) pending: BTreeMap<u64, Pending>,
    /// The deadlines of `pending`, soonest first: scanning every call
    /// after each input made a node with thousands of calls open (a gone
    /// service) pay for all of them on every request.
    pub(crate) deadlines: BTreeSet<(Time, u64)>,
    pub(crate) timers: BTreeMap<Timer, Time>,
    /// Names of sent messages that the transport gave back
    /// ([`Node::recycle`](crate::Node::recycle)), emptied, for the names of the next ones: a
    /// request and its reply then allocate nothing for them. Not part of
    /// the node's state (the fingerprint leaves it out).
    pub(crate) spare: Vec<String>,
}

/// At most this many names are kept for reuse: a few per message the
/// node sends for one input.
const SPARE_NAMES: usize = 16;

/// Names with more capacity than this are not kept for reuse.
const SPARE_NAME_BYTES: usize = 64;

impl Io {
    pub(crate) fn take_msg_id(&mut self) -> u64 {
        let id = self.next_msg_id;
        self.next_msg_id += 1;
        id
    }

    /// `name` as a `String`, in a kept one if there is one.
    pub(crate) fn name(&mut self, name: &str) -> String {
        match self.spare.pop() {
            Some(mut kept) => {
                kept.push_str(name);
                kept
            }
            None => name.to_owned(),
        }
    }

    /// Keeps `name`'s buffer for [`Io::name`], if there is room.
    pub(crate) fn keep(&mut self, mut name: String) {
        if self.spare.len() < SPARE_NAMES && name.capacity() <= SPARE_NAME_BYTES {
            name.clear();
            self.spare.push(name);
        }
    }

    pub(crate) fn send(
        &mut self,
        src: &str,
        dest: &str,
        msg_id: Option<u64>,
        in_reply_to: Option<u64>,
        payload: Payload,
    ) {
        let dest = self.name(dest);
        self.send_to(src, dest, msg_id, in_reply_to, payload);
    }

    /// [`send`](Io::send) with `dest` already a `String`.
    pub(crate) fn send_to(
        &mut self,
        src: &str,
        dest: String,
        msg_id: Option<u64>,
        in_reply_to: Option<u64>,
        payload: Payload,
    ) {
        let src = self.name(src);
        self.outbox.push_back(Output::Send(Envelope {
            src,
            dest,
            body: Body {
                msg_id,
                in_reply_to,
                payload,
            },
        }));
    }

    /// Queues a state to store. Two in a row with nothing between them
    /// are one: the later state holds the earlier one.
    pub(crate) fn persist(&mut self, state: String) {
        match self.outbox.back_mut() {
            Some(Output::Persist(last)) => *last = state,
            _ => self.outbox.push_back(Output::Persist(state)),
        }
    }

    pub(crate) fn reply(&mut self, src: &str, dest: &str, in_reply_to: u64, payload: Payload) {
        let id = self.take_msg_id();
        self.send(src, dest, Some(id), Some(in_reply_to), payload);
    }

    /// [`reply`](Io::reply) to a request taken whole: its client's name
    /// becomes the reply's `dest`.
    pub(crate) fn answer(&mut self, src: &str, req: Request, payload: Payload) {
        let id = self.take_msg_id();
        self.send_to(src, req.client, Some(id), Some(req.msg_id), payload);
    }

    pub(crate) fn call(
        &mut self,
        src: &str,
        dest: &str,
        payload: Payload,
        tag: Tag,
        deadline: Time,
    ) {
        let id = self.take_msg_id();
        self.pending.insert(id, Pending { tag, deadline });
        self.deadlines.insert((deadline, id));
        self.send(src, dest, Some(id), None, payload);
    }

    pub(crate) fn next_deadline(&self) -> Option<Time> {
        let timers = self.timers.values().copied();
        let calls = self.deadlines.first().map(|&(at, _)| at);
        timers.chain(calls).min()
    }
}
