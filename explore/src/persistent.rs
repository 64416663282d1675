//! Persistent sets for the state search (`states-persistent`, the
//! default): from a state where one node's next steps cannot be touched
//! by anything the rest of the system does first, explore only that
//! node's steps.
//!
//! Sleep sets keep the search from running two commuting steps in both
//! orders, but it still meets every state that some order passes
//! through: with three nodes stepping independently, every combination
//! of how far each has got. A persistent set (Godefroid, "Partial-Order
//! Methods for the Verification of Concurrent Systems", LNCS 1032,
//! chapters 4 and 5) is a set `T` of the events enabled in a state such
//! that no schedule from there that runs none of `T` ever runs an event
//! that does not commute with one of `T`. Exploring only `T` from each
//! state (less what sleeps) still reaches every end state of a finite
//! system without cycles (ours: the fingerprint holds the step count),
//! and so every outcome and verdict, with a schedule of the same length
//! as the one it stands for, since schedules that differ only in the
//! order of commuting events are as long. Godefroid's search with sleep
//! sets and a state cache (a revisit explores what slept the first time
//! and is awake now, [`states`](crate::states)) keeps that.
//!
//! # The set: one quiet node's steps
//!
//! Node `i`'s enabled steps (messages to it, its timer firing) form a
//! persistent set when nothing else can give node `i` a new step, or
//! change every node, before one of them runs:
//!
//! - no node ever sends to another ([`Bounds::nodes_talk`](crate::bounds::Bounds::nodes_talk):
//!   only `gossip`'s nodes do, so its searches get no persistent sets;
//!   the search stops with an error if a node breaks this);
//! - no request of node `i` to the KV service is in flight (serving it
//!   would send node `i` a reply, a step that does not commute with
//!   node `i`'s others), except during the final reads, where the set
//!   takes in the store's answers (below);
//! - its client sends only when node `i` answers it, within node `i`'s
//!   step, and a client's timeout moves with node `i`'s clock alone;
//! - no event that changes every node (`Recover`, a timer forced because
//!   nothing else can happen: `Global` footprints) is enabled, and none
//!   can become enabled first. `Recover` waits for an empty network, so
//!   during the adds node `i`'s set must hold a message (a `cas` node
//!   waiting alone on its backoff timer is not a set: `Recover` may come
//!   first). A recovery round ends only when no timer is due and nothing
//!   is in flight, and a forced firing comes only when no timer is within
//!   its bound, so node `i`'s own timer holds them off too.
//!
//! The events outside the set, at other nodes and at the service,
//! commute with node `i`'s ([`Footprint::independent`]): they touch
//! other nodes and the store, and add messages to a network that is a
//! set. Among the nodes that qualify the search takes the one with the
//! fewest steps enabled (the lowest index on a tie): a choice made from
//! the state alone, so that every visit of a state chooses alike.
//!
//! # The final reads
//!
//! The answer to the last final read ends the schedule, and so disables
//! every step still pending elsewhere (a late reply to a node whose
//! client is done): moving a set's step first can end a schedule sooner,
//! without steps that the original ran after it. Those steps change no
//! operation, though: every other client is done by then, and a node
//! answers only its own client. So an end state is what the checker sees
//! (the operations and their results), each node as the step that ended
//! its client's read left it, and the store ([`World::fingerprint`]);
//! schedules that differ only in steps a node or the store took after
//! that node's client was done end in the same state. One rule is left:
//!
//! - A node is chosen only while its own client's read is unanswered, so
//!   every schedule from here runs one of the set's steps (the node's
//!   client is answered, or gives up, only through the node's own steps).
//!
//! Take a schedule `w t r` from the state, `t` the first step of the
//! set. Every step of `w` is at another node or at the store for another
//! node, so `t` commutes with it ([`Footprint::independent`]), and `t w r`
//! runs, unless a step of `w` ends the reads once `t` has answered the
//! node's client: then `w t` ended them too, and `t w'`, cut there,
//! leaves out only steps taken for clients already done, and ends in the
//! same state, sooner. (Every node's steps up to its client's answer are
//! the same in both, and during the final reads no request changes what
//! another node reads, below.) So every end state is reached through the
//! set, by a schedule no longer than one that reaches it without (during
//! the final reads it can be shorter); the search keeps the shortest
//! failing schedule over every visit of an end state, not only the
//! first, since a later visit can be shorter.
//!
//! Earlier versions also kept a node out of the sets while one of its
//! steps answered its client, because the end states held what was
//! still in flight and which timers were armed: a set's step moved first
//! ended a schedule sooner in a different state. With the end state
//! kept to what those steps cannot change, the rule went, and with it
//! the copies of the world it took to check it. Without that change of the end state,
//! `per-node`'s end states (1 add, 1 timer) lose 136 of 425 to the sets.
//!
//! # The store's answers, during the final reads
//!
//! During the final reads a node nearly always has a request at the
//! store (each final read of `cas` and `per-node` is a write to a sync
//! key of the node's own, to make its read current, then reads), so the
//! rule above would leave almost no sets there, and those are most of
//! the states at 3 nodes. So the set of such a node takes in the store
//! serving its requests as well.
//!
//! On `lin-kv` those steps commute with every step elsewhere but a
//! request on the same key from another node, one of the two a write
//! ([`Footprint::independent`]); such a request, served on a path that
//! avoids the set, would be in flight together with the node's own. So
//! the search assumes that during the final reads two nodes' requests on
//! one key are never in flight together with one of them a write.
//!
//! On `seq-kv` any write makes a new state of the whole store, which
//! gives every other node's read a new state to be served from, an event
//! the set did not hold. But the state search counts states that differ
//! only in sync keys as one ([`World::fingerprint`]), and a sync write
//! only adds a state to the newest run of them: every other node's
//! requests keep their choices, and two nodes' sync writes in either
//! order reach one state. So on `seq-kv` the search assumes that during
//! the final reads no request writes anything but a sync key (nor sends
//! a cas, a write if it succeeds).
//!
//! The search checks either assumption on every step and stops with an
//! error if a schedule breaks it ([`SearchError::KeysCross`](crate::search::SearchError::KeysCross),
//! as for nodes that talk): `cas`'s and `per-node`'s nodes write only
//! sync keys then, and read the shared ones. Serving a request answers
//! no client, so the argument of the final reads above holds with the
//! store's answers in the set: a node's client still ends its read only
//! through the node's own steps.
//!
//! When end states held the whole system and sync keys were in the
//! fingerprint, the store's answers in the sets on `seq-kv` made the test
//! below miss 889 of `per-node`'s 1,510 end states: states that differ
//! in the order of sync writes, which no read sees.
//!
//! The test that compares end states with the plain search
//! (`sleep_and_persistent_sets_on_states_reach_every_end_state_of_the_plain_state_search`)
//! fails with a timer alone as a set during the adds (`cas`, 2 adds: 28
//! of 375 end states missed). It does not fail on its configurations
//! with a node chosen after its client's read was answered, or while its
//! request is at the store outside the final reads (with end states that
//! held the whole system, 15 and 124 of `naive`'s 324 were missed); both
//! rules stay, as the arguments above need them.
//!
//! # What it saves
//!
//! Whatever runs alone is not interleaved with the other nodes, so the
//! states where two nodes are both midway through such steps are never
//! made. `per-node`'s default search goes from 184,380 states (sleep
//! sets alone) to 92,961; at 3 nodes (1 add), where the final reads were
//! most of the states, `per-node` on `seq-kv` from 57 million to 7.8
//! million, `cas` on `seq-kv` from 0.94 million to 52,006 (BENCHMARKS.md
//! has the steps). `gossip` gets nothing (its nodes talk).
//!
//! Not covered: the step cap (`max_steps`) ends a schedule wherever it
//! falls. A schedule the full search cuts there extends, without the
//! cap, to an end state at least as deep, which this search reaches by
//! an equally long schedule, so it meets the cap too and reports the
//! livelock; the cut state itself may differ.

use super::event::{Actor, Event, Footprint};
use super::world::{Phase, World};

/// The node whose enabled steps form a persistent set in `world`, if
/// one does; `enabled` is `world.enabled(..)`.
pub fn quiet_node(world: &World, enabled: &[(Event, Footprint)]) -> Option<usize> {
    if world.bounds().nodes_talk() {
        return None;
    }
    let n = world.bounds().node_count;
    let mut steps = vec![0usize; n];
    let mut messages = vec![false; n];
    let mut serves = vec![0usize; n];
    for &(event, footprint) in enabled {
        match footprint {
            Footprint::Local {
                actor: Actor::Node(i),
                spends_loss: false,
            } => {
                steps[i] += 1;
                messages[i] |= matches!(event, Event::Deliver { .. });
            }
            Footprint::Kv(access) => {
                if let Some(s) = serves.get_mut(access.client) {
                    *s += 1;
                }
            }
            // `Global`, a loss, or a step at an actor this does not
            // reason about: no set.
            _ => return None,
        }
    }
    let phase = world.phase();
    let finals = phase == Phase::Finals;
    (0..n)
        .filter(|&i| !finals || !world.final_answered(i))
        .filter(|&i| {
            if finals {
                // Its requests at the store join the set (see the module
                // docs).
                steps[i] + serves[i] > 0
            } else {
                steps[i] > 0 && (messages[i] || phase != Phase::Adds) && !world.awaits_service(i)
            }
        })
        .min_by_key(|&i| steps[i] + serves[i])
}

/// Whether `footprint` is a step at node `i`.
fn at_node(footprint: Footprint, i: usize) -> bool {
    matches!(footprint, Footprint::Local { actor: Actor::Node(j), .. } if j == i)
}

/// Whether `footprint` is a member of node `i`'s set: a step at it, or
/// the store serving one of its requests.
pub fn in_set(footprint: Footprint, i: usize) -> bool {
    at_node(footprint, i) || matches!(footprint, Footprint::Kv(access) if access.client == i)
}
