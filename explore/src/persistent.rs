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
//!   node `i`'s others), except on `lin-kv` during the final reads,
//!   where the set takes in the store's answers (below);
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
//! client is done): the step that gives it commutes with nothing. Two
//! more rules keep such a step out of every set and off every path that
//! avoids one:
//!
//! - A node is chosen only while its own client's read is unanswered.
//!   No step elsewhere can then be the last answer before one of the
//!   set's steps runs (the node's client answers only through the
//!   node's own steps, and the set holds every one enabled).
//! - None of the node's enabled steps may answer its client's read (or
//!   time it out): the search takes each of them once to see, and keeps
//!   the successors for the steps it explores from there. A step at a
//!   node does the same whatever runs elsewhere first (the node's state,
//!   clock and the message are unchanged), so the set's steps cannot end
//!   the final reads from any state a path avoiding them reaches either.
//!
//! So no step on such a path, and none of the set's, ends the final
//! reads, and the footprints' independence holds there unconditionally:
//! the sets are persistent in the system as it is, cut at the last
//! answer, and Godefroid's sleep sets stay on as in the other phases.
//! The end states, and the shortest failing schedule, are the plain
//! search's.
//!
//! An earlier version had the first rule only and let nothing sleep
//! during the final reads, arguing about a system that runs on past the
//! last answer. That argument had a gap (the chosen node's first step
//! could itself be the last answer, and moving it first ends the
//! schedule earlier), although no configuration showed a state missed:
//! 70 searches (`naive`, `per-node` and `cas` on both services, 2 and 3
//! nodes, 1 and 2 adds, 0 to 2 timers, 0 and 1 losses, each that the
//! plain search finished in 20 s) reached the plain search's end states.
//!
//! # The store's answers, on `lin-kv`, during the final reads
//!
//! During the final reads a node nearly always has a request at the
//! store (each final read of `cas` and `per-node` is a write to a key of
//! the node's own, to make its read current, then reads), so the rule
//! above would leave almost no sets there, and those are most of the
//! states at 3 nodes. On `lin-kv` the set of such a node takes in the
//! store serving its requests as well. Those steps commute with every
//! step elsewhere but a request on the same key from another node, one
//! of the two a write ([`Footprint::independent`]); such a request,
//! served on a path that avoids the set, would be in flight together
//! with the node's own. So the search assumes that during the final
//! reads two nodes' requests on one key are never in flight together
//! with one of them a write, checks it on every step, and stops with an
//! error if a schedule breaks it ([`SearchError::KeysCross`](crate::search::SearchError::KeysCross),
//! as for nodes that talk): `cas`'s and `per-node`'s nodes write only
//! keys of their own then, and read the shared ones. Serving a request
//! answers no client, so the rules above still keep every end of the
//! reads out of the set and off the paths that avoid it.
//!
//! Not on `seq-kv`: there any write makes a new state of the whole
//! store, which gives every other node's read a new state to be served
//! from, an event the set did not hold. With the store's answers in the
//! sets on `seq-kv` too, the test below missed 889 of `per-node`'s 1,510
//! end states.
//!
//! Each rule was taken out once, and the test that compares end states
//! with the plain search
//! (`sleep_and_persistent_sets_on_states_reach_every_end_state_of_the_plain_state_search`)
//! failed: without the second, `per-node` on `seq-kv` (1 add, 1 timer)
//! reached 1,390 of its 1,510 end states; with a node chosen after its
//! client's read was answered, `naive` missed 15 of 324; with a node
//! chosen while its request was at the store (outside the final reads on
//! `lin-kv`), 124 of 324; with a timer alone as a set during the adds,
//! `cas` (2 adds) missed 168 of 4,434.
//!
//! # What it saves
//!
//! Whatever runs alone is not interleaved with the other nodes, so the
//! states where two nodes are both midway through such steps are never
//! made: `per-node`'s default search goes from 572,273 to 273,337
//! states; at 3 nodes (1 add), where the final reads are most of the
//! states, `per-node` on `lin-kv` from 43.5 to 7.6 million (1.8 GB to
//! 0.5 GB, 208 s to about a minute, the store's answers in the sets) and `cas` on
//! `seq-kv` from 32.9 to 25.9 million (1.8 GB to 0.9 GB, but 154 s to
//! 196 s: on `seq-kv` the sets rarely apply during the final reads,
//! where a node nearly always has a request at the store, and choosing
//! one costs a copy of the world per step tried). `gossip` gets nothing
//! (its nodes talk).
//!
//! Not covered: the step cap (`max_steps`) ends a schedule wherever it
//! falls. A schedule the full search cuts there extends, without the
//! cap, to an end state at least as deep, which this search reaches by
//! an equally long schedule, so it meets the cap too and reports the
//! livelock; the cut state itself may differ.

use super::event::{Actor, Event, Footprint};
use super::world::{Phase, World};

/// The choice of a persistent set, and the successors it had to work
/// out.
#[derive(Debug, Default)]
pub struct Quiet {
    /// The node whose enabled steps form the set, if one does.
    pub node: Option<usize>,
    /// During the final reads, `world` after some of the enabled steps,
    /// by their index in `enabled`: the search takes them instead of
    /// stepping again, whichever set it explores.
    pub successors: Vec<(usize, World)>,
}

/// The node whose enabled steps form a persistent set in `world`, if
/// one does; `enabled` is `world.enabled(..)`.
pub fn quiet_node(world: &World, enabled: &[(Event, Footprint)]) -> Quiet {
    let mut quiet = Quiet::default();
    if world.bounds().nodes_talk() {
        return quiet;
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
            _ => return quiet,
        }
    }
    let phase = world.phase();
    let finals = phase == Phase::Finals;
    let mut candidates: Vec<usize> = (0..n)
        .filter(|&i| !finals || !world.final_answered(i))
        .filter(|&i| {
            if finals && world.linearizable() {
                // Its requests at the store join the set (see the module
                // docs).
                steps[i] + serves[i] > 0
            } else {
                steps[i] > 0 && (messages[i] || phase != Phase::Adds) && !world.awaits_service(i)
            }
        })
        .collect();
    candidates.sort_by_key(|&i| steps[i] + serves[i]);
    quiet.node = if finals {
        candidates
            .into_iter()
            .find(|&i| leaves_client_waiting(world, enabled, i, &mut quiet.successors))
    } else {
        candidates.first().copied()
    };
    quiet
}

/// Whether none of node `i`'s enabled steps answers (or times out) its
/// client's final read, or fails; the successors it works out join
/// `successors`.
fn leaves_client_waiting(
    world: &World,
    enabled: &[(Event, Footprint)],
    i: usize,
    successors: &mut Vec<(usize, World)>,
) -> bool {
    for (k, &(event, footprint)) in enabled.iter().enumerate() {
        if !at_node(footprint, i) {
            continue;
        }
        let mut next = world.clone();
        if next.apply(event).is_err() {
            return false;
        }
        let answers = next.final_answered(i) || next.is_done();
        successors.push((k, next));
        if answers {
            return false;
        }
    }
    true
}

/// Whether `footprint` is a step at node `i`.
pub fn at_node(footprint: Footprint, i: usize) -> bool {
    matches!(footprint, Footprint::Local { actor: Actor::Node(j), .. } if j == i)
}

/// Whether `footprint` is a member of node `i`'s set: a step at it, or
/// the store serving one of its requests.
pub fn in_set(footprint: Footprint, i: usize) -> bool {
    at_node(footprint, i) || matches!(footprint, Footprint::Kv(access) if access.client == i)
}
