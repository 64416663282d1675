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
//!   node `i`'s others);
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
//! more rules make the sets hold there anyway, by an argument about a
//! system where that answer disables nothing (the schedule runs on
//! until nothing is enabled, and nothing after the last answer changes
//! the history, since every client is done). In that system the sets
//! above are persistent, so a search of it reaches every end state; the
//! search here is the same search cut at the last answer.
//!
//! - A node is chosen only while its own client's read is unanswered.
//!   Take any schedule to an end state, and the last answer in it; the
//!   reduced search runs the schedule with the chosen node's first step
//!   in it moved to the front, and that step comes before the last
//!   answer, which needs this node's client answered. So the steps up to
//!   the last answer are only reordered among themselves, and the search
//!   meets the very state the schedule ended in, at the same depth: the
//!   end states, and the shortest failing schedule, are the plain
//!   search's.
//! - Nothing sleeps during the final reads. Sleep sets there rest on the
//!   system that ends at the last answer (woken where a step may end
//!   it), the sets on the one that runs on, and the argument above holds
//!   for the sets alone; kept together, they missed end states.
//!
//! Each rule was taken out once, and the test that compares end states
//! with the plain search
//! (`sleep_and_persistent_sets_on_states_reach_every_end_state_of_the_plain_state_search`)
//! failed: with sleep sets during the final reads `per-node` on `seq-kv`
//! (1 add, 1 timer) reached 1,390 of its 1,510 end states; with a node
//! chosen after its client's read was answered, `naive` missed 15 of 324;
//! with a node chosen while its request was at the store, 124 of 324;
//! with a timer alone as a set during the adds, `cas` (2 adds) missed
//! 168 of 4,434.
//!
//! # What it saves
//!
//! Whatever runs alone is not interleaved with the other nodes, so the
//! states where two nodes are both midway through such steps are never
//! made: `per-node`'s default search goes from 572,273 to 273,268
//! states; at 3 nodes (1 add), where the final reads are most of the
//! states, `per-node` on `lin-kv` from 43.5 to 29.3 million (1.8 GB to
//! 1.1 GB, but 221 s to 446 s) and `cas` on `seq-kv` from 32.9 to 22.3
//! million (1.8 GB to 0.9 GB, but 155 s to 199 s): with nothing asleep
//! during the final reads each state there runs more steps. `gossip`
//! gets nothing (its nodes talk).
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
    for &(event, footprint) in enabled {
        match footprint {
            Footprint::Local {
                actor: Actor::Node(i),
                spends_loss: false,
            } => {
                steps[i] += 1;
                messages[i] |= matches!(event, Event::Deliver { .. });
            }
            Footprint::Kv(_) => {}
            // `Global`, a loss, or a step at an actor this does not
            // reason about: no set.
            _ => return None,
        }
    }
    let phase = world.phase();
    (0..n)
        .filter(|&i| steps[i] > 0 && (messages[i] || phase != Phase::Adds))
        .filter(|&i| !world.awaits_service(i))
        .filter(|&i| phase != Phase::Finals || !world.final_answered(i))
        .min_by_key(|&i| steps[i])
}

/// Whether `footprint` is a step at node `i` (the members of its set).
pub fn at_node(footprint: Footprint, i: usize) -> bool {
    matches!(footprint, Footprint::Local { actor: Actor::Node(j), .. } if j == i)
}
