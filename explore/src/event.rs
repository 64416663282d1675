//! The choices of the search, and when two of them commute.
//!
//! An [`Event`] names one transition by what it does, not by where it
//! happens in a schedule, so the same event can be recognised in two
//! states: "deliver the 3rd message `n0` sent", "fire `n1`'s timer". That is
//! what sleep sets need. Its [`Footprint`] says what it may touch; two
//! events whose footprints are [independent](Footprint::independent) lead
//! to the same state in either order and neither disables the other.

use std::fmt;

/// A participant of the explored system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Actor {
    /// Client `i` (0-based), `c{i+1}`, bound to node `i`.
    Client(usize),
    /// Node `i`, `n{i}`.
    Node(usize),
    /// The KV service (`seq-kv` or `lin-kv`).
    Service,
}

impl Actor {
    pub fn is_node(self) -> bool {
        matches!(self, Actor::Node(_))
    }
}

/// A message, named by its sender, its receiver and how many messages
/// that sender had sent before it (for a service's reply: the `msg_id` of
/// the request it answers). A sender's sends depend only on its own
/// inputs, so the name is the same in every order of independent events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MsgId {
    pub src: Actor,
    pub dest: Actor,
    pub n: u32,
}

/// One step of a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Event {
    /// Deliver a message in flight. For a request to `seq-kv`, `state` is
    /// the state it runs against first (one of `SeqKv::window`).
    Deliver { msg: MsgId, state: Option<u64> },
    /// Lose a node-to-node message (at most `--losses` in a schedule).
    Lose { msg: MsgId },
    /// Fire node `node`'s timer: the clock moves to its wake time if that
    /// is later, and the node gets `Input::Timeout`.
    Fire { node: usize },
    /// End the adds: time jumps by the recovery wait, then recovery and
    /// the final reads follow.
    Recover,
}

/// What an event may read or change, beyond the message it consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Footprint {
    /// Everything: the event changes the phase and every clock
    /// (`Recover`), or whether it is enabled depends on the whole network
    /// (a timer forced because nothing else can happen).
    Global,
    /// One node's state (with its clock and its client's state), or a
    /// message's loss; the messages it adds; for a loss, the shared loss
    /// budget.
    Local { actor: Actor, spends_loss: bool },
    /// A request served by the KV service.
    Kv(KvAccess),
}

/// What a KV request does to the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KvAccess {
    /// The requesting node.
    pub client: usize,
    /// The key, hashed (a collision only adds dependence).
    pub key: u64,
    pub effect: KvEffect,
}

/// How a KV request meets the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KvEffect {
    /// `seq-kv`: answered from the chosen state, which it did not change
    /// (a read, a failed cas): it moves only its client's position, and
    /// the chosen state stays in every client's window (the search stops
    /// with an error if the window ever drops a state).
    Stands,
    /// `seq-kv`: ran against the newest state (and may have extended it).
    Newest,
    /// `lin-kv`: changed nothing.
    Reads,
    /// `lin-kv`: changed its key.
    Writes,
}

impl Footprint {
    /// Whether two events enabled in the same state commute: in either
    /// order they reach the same state, and neither disables the other.
    ///
    /// - Steps at different nodes commute, unless both spend the loss
    ///   budget (one loss could use up what the other needs).
    /// - KV requests commute with steps at nodes, and with each other
    ///   when they cannot see each other: on `seq-kv`, requests of
    ///   different nodes of which at most one ran against the newest state
    ///   (a request that stands on an older state reads only that state,
    ///   which is immutable, and writes only its client's position); on
    ///   `lin-kv`, requests on different keys, or that both change
    ///   nothing.
    /// - `Global` events commute with nothing.
    ///
    /// Assumptions, true of the explored system: a step at a node changes
    /// only that node, its clock and its client (only node `i` answers
    /// client `i`), and adds messages to the network, which is a set:
    /// adding never disables anything and the order of additions does not
    /// matter; a service's reply is named and numbered after its request,
    /// not after the order of service steps; the choices a `seq-kv`
    /// request has depend only on the store and its client's position.
    pub fn independent(self, other: Footprint) -> bool {
        use KvEffect::*;
        match (self, other) {
            (
                Footprint::Local {
                    actor: a,
                    spends_loss: la,
                },
                Footprint::Local {
                    actor: b,
                    spends_loss: lb,
                },
            ) => a != b && !(la && lb),
            (Footprint::Local { .. }, Footprint::Kv(_))
            | (Footprint::Kv(_), Footprint::Local { .. }) => true,
            (Footprint::Kv(a), Footprint::Kv(b)) => match (a.effect, b.effect) {
                (Stands, Stands) | (Stands, Newest) | (Newest, Stands) => a.client != b.client,
                (Newest, Newest) => false,
                (Reads, Reads) => true,
                (Reads | Writes, Reads | Writes) => a.key != b.key,
                _ => false,
            },
            _ => false,
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Client(i) => write!(f, "c{}", i + 1),
            Actor::Node(i) => write!(f, "n{i}"),
            Actor::Service => f.write_str("kv"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(actor: Actor) -> Footprint {
        Footprint::Local {
            actor,
            spends_loss: false,
        }
    }

    fn kv(client: usize, key: u64, effect: KvEffect) -> Footprint {
        Footprint::Kv(KvAccess {
            client,
            key,
            effect,
        })
    }

    #[test]
    fn kv_requests_commute_when_they_cannot_see_each_other() {
        use KvEffect::*;
        assert!(kv(0, 1, Stands).independent(kv(1, 1, Newest)));
        assert!(kv(0, 1, Stands).independent(kv(1, 1, Stands)));
        assert!(!kv(0, 1, Stands).independent(kv(0, 2, Stands)));
        assert!(!kv(0, 1, Newest).independent(kv(1, 2, Newest)));
        assert!(kv(0, 1, Writes).independent(kv(1, 2, Writes)));
        assert!(kv(0, 1, Reads).independent(kv(0, 1, Reads)));
        assert!(!kv(0, 1, Reads).independent(kv(1, 1, Writes)));
        assert!(kv(0, 1, Writes).independent(at(Actor::Node(0))));
        assert!(!kv(0, 1, Reads).independent(Footprint::Global));
    }

    #[test]
    fn only_different_actors_commute() {
        assert!(at(Actor::Node(0)).independent(at(Actor::Node(1))));
        assert!(at(Actor::Node(0)).independent(at(Actor::Service)));
        assert!(!at(Actor::Node(0)).independent(at(Actor::Node(0))));
        assert!(!Footprint::Global.independent(at(Actor::Node(1))));
        assert!(!at(Actor::Service).independent(Footprint::Global));
        let loss = |i| Footprint::Local {
            actor: Actor::Node(i),
            spends_loss: true,
        };
        assert!(!loss(0).independent(loss(1)));
        assert!(loss(0).independent(at(Actor::Node(1))));
    }
}
