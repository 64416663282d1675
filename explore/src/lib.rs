//! `gcounter explore`: every schedule of a small configuration, tried by
//! deterministic execution of the real nodes (model checking), so that "is my
//! strategy correct?" gets an answer that does not depend on a seed:
//! within the stated bounds, either every schedule passes the checker, or
//! here is the shortest one that does not.
//!
//! A randomized run samples schedules; a verdict that flips between runs
//! says only that some schedules fail. Here the nodes are the real core
//! [`Node`](gcounter_core::Node)s and the KV services the core's models,
//! as in the simulator, but every choice the network, the clock and
//! `seq-kv` could make is a branch of a search tree, and the search visits
//! them all.
//!
//! # What is explored
//!
//! One client per node, each doing `--adds` adds one at a time (deltas
//! are distinct powers of two, so a counter value names the adds it
//! holds), then recovery, then one final read per client (see [`world`]
//! for the phases and the clocks). At each step the search chooses:
//!
//! - which message in flight is delivered next (any order: Maelstrom's
//!   network reorders once there is latency);
//! - for a request to `seq-kv`, which state of the client's window it runs
//!   against first ([`SeqKv::window`](gcounter_core::service::SeqKv::window),
//!   then [`SeqKv::serve_from`](gcounter_core::service::SeqKv::serve_from));
//! - whether a node-to-node message is lost, up to `--losses` in all
//!   (clients and services never lose messages, as in Maelstrom);
//! - whether a node's timer fires now: any armed timer (gossip round, KV
//!   retry, or a KV call's deadline) may fire at any point, up to
//!   `--timers` times per node; the node's clock then moves to its wake
//!   time;
//! - when the adds end (once nothing is in flight).
//!
//! Not explored: crashes, pauses and duplicated messages; more clients
//! than nodes; reads during the adds (they are not checked). Recovery is
//! explored in every order too, but with everything delivered and every
//! armed timer firing once per round until a round sends nothing.
//!
//! # Reduction, and why it loses nothing
//!
//! Two schedules that differ only in the order of events that commute
//! end in the same state, so with the same final reads and verdict; the
//! search tries to run one of each class. Two events commute
//! ([`Footprint::independent`](event::Footprint::independent)) when they
//! happen at different nodes (a node with its client and its clock), or
//! one at a node and one at the KV service, or both at the service but
//! unable to see each other (on `seq-kv`: from different nodes, at most
//! one of them running against the newest state; on `lin-kv`: different
//! keys, or both reads), and neither changes the phase. Two losses never
//! commute (they share a budget). This rests on assumptions the code
//! keeps: a step at a node reads and writes only that node, its clock
//! and its client, and adds messages to a network that is a set; a
//! service's reply is named and numbered after its request; a `seq-kv`
//! state, once made, never changes, and the window never drops one (a
//! search that would see it drop stops with an error).
//!
//! [`search`] applies this with source-DPOR (Abdulla et al., POPL 2014)
//! and sleep sets (Godefroid): from each state it explores one process
//! (a message, a node's timer) and adds another only when a race it
//! finds later calls for it. `--reduction sleep-sets` (sleep sets alone)
//! and `--reduction none` (every interleaving) are there to check it:
//! the tests compare the outcomes each finds.
//!
//! A third reduction merges `seq-kv` answers: requests that change the
//! store all land on the newest state whatever state was chosen, so one
//! choice stands for them; among choices that change nothing and give
//! the same reply, only the one leaving the client's position stalest is
//! kept, since every continuation of a fresher one is also a continuation
//! of it (the window only grows) with the same result.
//!
//! # States: the default
//!
//! [`states`] takes the other road: it needs no argument about commuting
//! events, only a fingerprint of each state ([`World::fingerprint`]:
//! the core's nodes and strategies are `Clone + Hash`, so the compiler
//! checks that nothing is left out of a strategy's state), and explores
//! each distinct state once, counting the schedules through it without
//! running them. It is the default because it is exact where DPOR rests
//! on the footprints' independence relation, and faster on every default
//! configuration but the smallest (cas on lin-kv: 2,332 schedules in
//! 0.06 s against 13,935 states in 0.1 s; per-node on seq-kv with 1 add,
//! when it was chosen: 0.9 million states in 7 s against 1.3 million
//! schedules in 62 s, and 225,381 states in 2.4 s since `seq-kv` states
//! no node can read left the fingerprint).
//! DPOR, sleep sets and the unreduced search stay as cross-checks.
//!
//! `states-sleep` adds sleep sets to it, kept with each state, so that
//! steps that commute run in one order; it counts end states instead of
//! schedules, and the tests check that it reaches every end state the
//! plain state search (`--reduction states`) reaches (see [`states`] for
//! why that needs more than the footprints). The default
//! (`states-persistent`) adds persistent sets ([`persistent`]): a node
//! that nothing else can reach before its next step (its request at the
//! store answered, or during the final reads served with it; no node
//! talking to it) runs alone, which halves `per-node`'s default search.
//!
//! Two things are left out of a state's fingerprint because nothing
//! that follows depends on them ([`World::fingerprint`]): the sync keys
//! that `cas` and `per-node` write only to reach `seq-kv`'s newest
//! state, which nothing reads (the search checks that), and, in an end
//! state, whatever nodes and the store did for clients already done.
//! With both, and the persistent sets they make possible during the
//! final reads, `cas` on `seq-kv` at 3 nodes went from 25.9 million
//! states to 52,006.
//!
//! Both branch by copying the world, not by replaying a schedule's
//! prefix from scratch (which was half of DPOR's time).
//!
//! # Not reduced: renaming the nodes
//!
//! The servers of a run cannot be renamed into one another here, so the
//! search does not merge states that differ only by node names (symmetry
//! reduction). Each client adds distinct powers of two, so that a final
//! read names the adds it holds and the checker catches a read that
//! misses an acknowledged add but holds an indeterminate one of the same
//! size; renaming two servers would then have to rename values too (swap
//! their bits), which agrees with a strategy's arithmetic only while no
//! sum carries (a delta added twice, the bug we look for, carries) and
//! with a comparison across nodes' counts (`gossip-max`) not at all.
//! Message ids are handed out in send order (a node gossips to its peers
//! in id order), so a renamed state is not one the system reaches unless
//! message ids are renamed canonically as well; and `per-node` names its
//! peers by position in the node list, `cas` seeds its backoff from the
//! node's id. A sound reduction needs a renaming for every type of the
//! core (ids, values, message ids) and a test that a renamed world steps
//! as the original does, renamed. Until then, 3-node searches are exact
//! and large (`BENCHMARKS.md`).
//!
//! # One thread
//!
//! Working out a state's successors on both cores (copy, step and
//! fingerprint in parallel, taken back in order, so that the result does
//! not depend on the number of threads) was measured and made the search
//! slower: `per-node`'s default took 20.2 s on two threads and 14.2 s on
//! one against 9.3 s before, the successors held ahead falling out of
//! cache and a state's few successors too little work to share.

pub mod bounds;
pub mod cli;
pub mod diagram;
pub mod event;
pub mod narrative;
pub mod persistent;
pub mod search;
pub mod states;
pub mod trace;
pub mod visited;
pub mod world;

pub use bounds::Bounds;
pub use cli::ExploreArgs;
pub use search::{replay, Report, SearchError};

pub use world::{Leaf, World};

use std::time::Duration;

/// Explores every schedule within `bounds` (or as many as `budget`
/// allows), with the search its reduction names: [`states`] (with sleep
/// sets by default, or without),
/// [`search`] for DPOR, sleep sets or none.
pub fn explore(bounds: &Bounds, budget: Duration) -> Result<Report, SearchError> {
    if bounds.reduction.searches_states() {
        states::explore(bounds, budget)
    } else {
        search::explore(bounds, budget)
    }
}
