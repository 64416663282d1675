//! Depth-first search over states: every event enabled in every distinct
//! state, each state explored once (stateful model checking).
//!
//! Many schedules lead to the same state: two nodes' steps in either
//! order, a message lost or delivered to a node that ignores it. Past
//! that state their futures are the same, so the search keeps a
//! [`World::fingerprint`] of every state it has finished and, meeting one
//! again, takes what it found there instead of exploring it again. Unlike
//! DPOR this needs no argument about which events commute: it rests only
//! on the fingerprint covering everything that decides the future, which
//! the core's `Clone + Hash` nodes make checkable (and on 128-bit
//! fingerprints of different states not colliding).
//!
//! # Sleep sets on top (`states-sleep`; with persistent sets, the default)
//!
//! Two steps that commute ([`Footprint::independent`]) reach the same
//! state in either order; the plain search runs both orders and meets
//! the state twice. With sleep sets (Godefroid) it runs one: after
//! exploring `a` from a state, a later sibling `b` that commutes with `a`
//! starts with `a` asleep, and `a` stays asleep until a step that does
//! not commute with it runs. Each state is stored with the events it was
//! explored with asleep (a bit per enabled event, the events listed in
//! their own order so that every visit numbers them alike), and a
//! revisit with fewer asleep explores the difference and keeps only what
//! slept both times: the condition under which sleep sets and a state
//! cache together still reach every end state.
//!
//! Independence must hold in the state where it is used. An event that
//! ends the final reads disables everything beside it whatever its
//! footprint says, and whether a step ends them depends on the state: a
//! step at a node can end them only once every other client's final read
//! is answered ([`World::may_end_epoch`]). So a sleeping event is woken
//! where it may end the phase, and an event that did end a phase or a
//! recovery round sleeps beside nothing and lets nothing sleep past it.
//! Last round's attempt checked only the second and missed end states
//! with messages still in flight (9 of 87 for `gossip`, 1 add, 1 loss):
//! `a` put asleep where it did not end the reads, carried past `b`, which
//! answered the other read, then past `x`, was never run after `x`,
//! while the order it stood for ran `a` before `b` and `x` and ended the
//! schedule at once. The test
//! `sleep_and_persistent_sets_on_states_reach_every_end_state_of_the_plain_state_search`
//! compares the end states with the plain search's for every strategy.
//!
//! With persistent sets (`states-persistent`, see
//! [`persistent`](crate::persistent)) a state's first visit explores
//! only its set, less what sleeps; a revisit still explores what slept
//! the first time and is awake now, whether it is in the set or not
//! (Godefroid's algorithm for both with a state cache), so a set is
//! chosen on a first visit only.
//!
//! With sleep sets the search no longer passes every schedule through
//! each state, so it counts distinct end states (and the failing ones),
//! not schedules. Every schedule that reaches a state before the end has
//! the same length (the fingerprint holds the step count), and
//! equivalent schedules have the same length. An end state keeps less
//! ([`World::fingerprint`]): schedules of different lengths can reach
//! it, so each visit of a failing end state by a shorter schedule than
//! the shortest found so far replaces it, and the shortest failing
//! schedule is still found.
//!
//! # Memory
//!
//! The visited set ([`Visited`]) holds a 128-bit fingerprint and one
//! word (the sleep mask; without sleep sets, where the state's counts
//! are kept) per state: 24 bytes, about 40 with the tables' slack,
//! whatever a world weighs. It is split into 256 tables that grow one at
//! a time, so growing never copies the whole set at once. Worlds live
//! only on the stack, one per frame of the current schedule. Two
//! different states share a fingerprint with odds about n²/2^129 for n
//! states: below 10^-22 at 10^8 states (1.5 x 10^-23).
//!
//! The set keeps every state explored, not only the frontier's: a state
//! can be reached again from any later branch of a depth-first search,
//! and a breadth-first search, whose visited set could shrink to two
//! levels (every schedule reaching a state has the same length), would
//! hold a whole level's worlds instead, kilobytes each against 24 bytes.
//!
//! Branching copies the world (nodes are `Clone`, `seq-kv`'s states are
//! persistent maps) instead of replaying a prefix from scratch. The
//! copies share what a step does not change: every node but the one fed,
//! the store unless a request is served, the history unless an
//! operation starts or ends, and the messages (copied on write, `Rc`).
//!
//! # Counting schedules
//!
//! Each finished state records how many complete schedules start from it
//! and how many of those fail, summed over its successors, so the report
//! still says how many schedules the search covers, now without running
//! each. Every schedule that reaches a state has the same length (the
//! fingerprint holds the step count; an end state has no successors), so
//! the graph has no cycles, and the shortest schedule that reaches a
//! failing end state, over every visit, is a shortest failing schedule.

use super::bounds::{Bounds, Reduction};
use super::event::{Event, Footprint};
use super::persistent::{in_set, quiet_node};
use super::search::{record, Report, SearchError};
use super::visited::Visited;
use super::world::World;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Complete schedules from a state, and how many of them fail. Saturating:
/// a count past `u64::MAX` shows as that.
#[derive(Debug, Clone, Copy, Default)]
struct Paths {
    all: u64,
    failing: u64,
}

impl Paths {
    fn add(&mut self, other: Paths) {
        self.all = self.all.saturating_add(other.all);
        self.failing = self.failing.saturating_add(other.failing);
    }
}

/// The mask of a state with more enabled events than it has bits: every
/// one counts as asleep (the larger set is the safe side: a later visit
/// explores again whatever it leaves awake).
const EVERY: u64 = u64::MAX;

struct Frame {
    /// Taken by the last successor explored, which needs no copy of it.
    world: Option<World>,
    fingerprint: u128,
    /// In event order, so that the same state lists them the same way
    /// whichever schedule reached it (the masks in [`Seen`] index it).
    enabled: Vec<(Event, Footprint)>,
    /// Which of `enabled` to explore from here, in order.
    todo: Vec<usize>,
    next: usize,
    /// With sleep sets: the events that need not run from here, with
    /// their footprints in this state; those explored from here join
    /// them for the later ones.
    asleep: Vec<(Event, Footprint)>,
    paths: Paths,
}

impl Frame {
    /// With `persistent`, `todo` holds only a quiet node's steps where
    /// one is quiet ([`persistent`](crate::persistent)).
    fn new(world: World, fingerprint: u128, persistent: bool) -> Self {
        let mut enabled = if world.is_done() {
            Vec::new()
        } else {
            world.enabled(true)
        };
        enabled.sort_unstable_by_key(|&(e, _)| e);
        let quiet = if persistent {
            quiet_node(&world, &enabled)
        } else {
            None
        };
        let todo = match quiet {
            Some(i) => (0..enabled.len())
                .filter(|&k| in_set(enabled[k].1, i))
                .collect(),
            None => (0..enabled.len()).collect(),
        };
        Frame {
            world: Some(world),
            fingerprint,
            todo,
            enabled,
            next: 0,
            asleep: Vec::new(),
            paths: Paths::default(),
        }
    }

    /// The events of `sleep` enabled here, as a mask of `enabled`.
    fn mask(&self, sleep: &[Event]) -> u64 {
        if self.enabled.len() > 63 {
            return EVERY;
        }
        let mut m = 0u64;
        for (k, (e, _)) in self.enabled.iter().enumerate() {
            if sleep.contains(e) {
                m |= 1 << k;
            }
        }
        m
    }

    fn in_mask(&self, mask: u64, k: usize) -> bool {
        mask == EVERY || (k < 64 && mask >> k & 1 == 1)
    }
}

/// Explores every state reachable within `bounds`, or as many as `budget`
/// allows.
pub fn explore(bounds: &Bounds, budget: Duration) -> Result<Report, SearchError> {
    run(bounds, budget, None)
}

/// The same, also giving the fingerprints of every end state reached
/// (the tests compare them between searches).
pub fn end_states(
    bounds: &Bounds,
    budget: Duration,
) -> Result<(Report, BTreeSet<u128>), SearchError> {
    let mut ends = BTreeSet::new();
    let report = run(bounds, budget, Some(&mut ends))?;
    Ok((report, ends))
}

fn run(
    bounds: &Bounds,
    budget: Duration,
    mut ends: Option<&mut BTreeSet<u128>>,
) -> Result<Report, SearchError> {
    let started = Instant::now();
    let sleep_sets = bounds.reduction.counts_end_states();
    let persistent = bounds.reduction == Reduction::StatesPersistent;
    let mut report = Report::new(bounds.reduction);
    // With sleep sets a state's word is its mask; without, the index of
    // its counts in `paths`.
    let mut seen = Visited::default();
    let mut found: Vec<Paths> = Vec::new();
    let root = World::new(bounds);
    let root_fingerprint = root.fingerprint();
    let mut stack = vec![Frame::new(root, root_fingerprint, persistent)];
    if sleep_sets {
        seen.insert(root_fingerprint, 0);
    }
    let mut path: Vec<Event> = Vec::new();
    let mut iterations: u64 = 0;
    while let Some(top) = stack.last_mut() {
        let Some(&k) = top.todo.get(top.next) else {
            // Every successor done (or none: a leaf, counted below).
            let done = stack.pop().expect("the top frame");
            if !sleep_sets {
                let paths = match &done.world {
                    Some(world) if done.enabled.is_empty() => {
                        if let Some(ends) = ends.as_deref_mut() {
                            ends.insert(done.fingerprint);
                        }
                        leaf(&mut report, &path, world)
                    }
                    _ => done.paths,
                };
                seen.insert(done.fingerprint, found.len() as u64);
                found.push(paths);
                if let Some(parent) = stack.last_mut() {
                    parent.paths.add(paths);
                }
            }
            path.pop();
            continue;
        };
        let (event, footprint) = top.enabled[k];
        top.next += 1;
        let last = top.next == top.todo.len();
        // What stays asleep past `event`: what commutes with it here,
        // unless it may end a phase here (the last final read answered
        // disables everything beside it, whatever its footprint says).
        let mut sleep: Vec<Event> = Vec::new();
        let here = top.world.as_ref().expect("a frame keeps its world");
        if sleep_sets {
            sleep = top
                .asleep
                .iter()
                .filter(|&&(u, fu)| fu.independent(footprint) && !here.may_end_epoch(u))
                .map(|&(u, _)| u)
                .collect();
        }
        let epoch = here.epoch();
        let mut world = if last {
            top.world.take()
        } else {
            top.world.clone()
        }
        .expect("a frame keeps its world until its last successor");
        world.apply(event).map_err(|why| {
            SearchError::Nondeterminism(format!("step {}: {why}", path.len() + 1))
        })?;
        report.steps += 1;
        if world.overflowed() {
            return Err(SearchError::WindowOverflow);
        }
        if persistent && world.talked() {
            return Err(SearchError::NodesTalk);
        }
        if persistent && world.crossed() {
            return Err(SearchError::KeysCross);
        }
        if world.read_sync() {
            return Err(SearchError::SyncKeyRead);
        }
        // An event that ended a phase or a recovery round changed what
        // everything beside it does: nothing sleeps past it, and it
        // sleeps beside nothing.
        let barrier = world.epoch() != epoch;
        if sleep_sets && !last {
            let sleeps_as = if barrier {
                Footprint::Global
            } else {
                footprint
            };
            top.asleep.push((event, sleeps_as));
        }
        if barrier {
            sleep.clear();
        }
        let fingerprint = world.fingerprint();
        path.push(event);
        let seen_before = seen.get(fingerprint);
        if sleep_sets && seen_before == Some(0) {
            // Explored before with nothing asleep: nothing to add, and no
            // need to list its events to say so.
            shorter_end(&mut report, &path, &world);
            path.pop();
            report.revisits += 1;
        } else if sleep_sets {
            // A revisit explores what slept before and is awake now,
            // whatever the set: no need to choose one (and copy worlds).
            let frame = Frame::new(world, fingerprint, persistent && seen_before.is_none());
            match enter(
                &mut seen,
                seen_before,
                frame,
                &sleep,
                &mut report,
                &path,
                ends.as_deref_mut(),
            ) {
                Some(frame) => {
                    report.max_depth = report.max_depth.max(path.len());
                    stack.push(frame);
                }
                None => {
                    path.pop();
                }
            }
        } else if let Some(index) = seen_before {
            shorter_end(&mut report, &path, &world);
            path.pop();
            stack
                .last_mut()
                .expect("the frame stepped from")
                .paths
                .add(found[index as usize]);
            report.revisits += 1;
        } else {
            report.max_depth = report.max_depth.max(path.len());
            stack.push(Frame::new(world, fingerprint, persistent));
        }
        iterations += 1;
        if iterations % 256 == 0 && started.elapsed() >= budget {
            report.complete = false;
            break;
        }
    }
    if !sleep_sets {
        // Cut short: what the unfinished frames found so far still counts.
        while let Some(done) = stack.pop() {
            if let Some(parent) = stack.last_mut() {
                parent.paths.add(done.paths);
            } else {
                report.schedules = done.paths.all;
                report.failures = done.paths.failing;
            }
        }
        if report.complete {
            let root = seen
                .get(root_fingerprint)
                .map(|index| found[index as usize])
                .unwrap_or_default();
            report.schedules = root.all;
            report.failures = root.failing;
        }
    }
    report.states = Some(seen.len() as u64);
    report.elapsed = started.elapsed();
    Ok(report)
}

/// With sleep sets: `frame`'s state reached with `sleep` asleep
/// (`seen_before`: its mask in `seen` before this visit, if any). Gives
/// the frame to explore, with what to explore from it, or nothing when
/// there is nothing new there: an end state (counted here, on its first
/// visit), a state whose every event sleeps, or one explored before with
/// no more asleep than now.
///
/// Godefroid's rule for sleep sets with a state cache: a state seen
/// before is explored again for what it had asleep then and this visit
/// leaves awake, and keeps as asleep only what slept both times. Without
/// it a state first reached with a large sleep set would hide, from every
/// later visit, the schedules through the events asleep the first time.
fn enter(
    seen: &mut Visited,
    seen_before: Option<u64>,
    mut frame: Frame,
    sleep: &[Event],
    report: &mut Report,
    path: &[Event],
    ends: Option<&mut BTreeSet<u128>>,
) -> Option<Frame> {
    let asleep: Vec<bool> = frame
        .enabled
        .iter()
        .map(|(e, _)| sleep.contains(e))
        .collect();
    let mask = frame.mask(sleep);
    let (todo, slept_before) = match seen_before {
        None => {
            seen.insert(frame.fingerprint, mask);
            if frame.enabled.is_empty() {
                if let Some(ends) = ends {
                    ends.insert(frame.fingerprint);
                }
                let world = frame.world.as_ref().expect("a new frame's world");
                leaf(report, path, world);
                return None;
            }
            let todo: Vec<usize> = frame.todo.iter().copied().filter(|&j| !asleep[j]).collect();
            (todo, EVERY)
        }
        Some(old) => {
            report.revisits += 1;
            let awake: Vec<usize> = (0..asleep.len())
                .filter(|&j| frame.in_mask(old, j) && !asleep[j])
                .collect();
            if awake.is_empty() {
                return None;
            }
            seen.insert(frame.fingerprint, old & mask);
            (awake, old)
        }
    };
    if todo.is_empty() {
        report.blocked += 1;
        return None;
    }
    frame.asleep = (0..asleep.len())
        .filter(|&j| asleep[j] && frame.in_mask(slept_before, j))
        .map(|j| frame.enabled[j])
        .collect();
    frame.todo = todo;
    Some(frame)
}

/// An end state met again, by `path`: if it fails and `path` is shorter
/// than the shortest failing schedule found so far, `path` replaces it.
/// End states that the checker sees alike are one state whatever their
/// length ([`World::fingerprint`]), so a later visit can be shorter.
fn shorter_end(report: &mut Report, path: &[Event], world: &World) {
    // With none found yet, this end state did not fail on its first visit.
    let longer = report.shortest.is_some() && report.beats_shortest(path.len());
    if world.is_done() && longer {
        let leaf = world.leaf();
        if leaf.failing() {
            report.shortest = Some((path.to_vec(), leaf));
        }
    }
}

/// A state with nothing enabled: the end of every schedule that reaches
/// it. Returns its count (one schedule; failing or not). The report's own
/// counts are replaced by the root's when the search ends.
fn leaf(report: &mut Report, path: &[Event], world: &World) -> Paths {
    let leaf = world.leaf();
    let failing = leaf.failing();
    record(report, path, leaf);
    Paths {
        all: 1,
        failing: u64::from(failing),
    }
}
