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
//! Branching copies the world (nodes are `Clone`, `seq-kv`'s states are
//! persistent maps) instead of replaying a prefix from scratch.
//!
//! # Counting schedules
//!
//! Each finished state records how many complete schedules start from it
//! and how many of those fail, summed over its successors, so the report
//! still says how many schedules the search covers, now without running
//! each. Every schedule that reaches a state has the same length (the
//! fingerprint holds the step count), so the graph has no cycles, and the
//! first failing leaf found at the least depth is a shortest failing
//! schedule.

use super::bounds::{Bounds, Reduction};
use super::event::Event;
use super::search::{record, Report, SearchError};
use super::world::World;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
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

/// The map's keys are fingerprints already: use their low bits as they are.
#[derive(Default)]
struct Prehashed(u64);

impl Hasher for Prehashed {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type Seen = HashMap<u128, Paths, BuildHasherDefault<Prehashed>>;

struct Frame {
    /// Taken by the last successor explored, which needs no copy of it.
    world: Option<World>,
    fingerprint: u128,
    enabled: Vec<Event>,
    next: usize,
    paths: Paths,
}

impl Frame {
    fn new(world: World, fingerprint: u128) -> Self {
        let enabled = if world.is_done() {
            Vec::new()
        } else {
            world.enabled(true).into_iter().map(|(e, _)| e).collect()
        };
        Frame {
            world: Some(world),
            fingerprint,
            enabled,
            next: 0,
            paths: Paths::default(),
        }
    }
}

/// Explores every state reachable within `bounds`, or as many as `budget`
/// allows.
pub fn explore(bounds: &Bounds, budget: Duration) -> Result<Report, SearchError> {
    let started = Instant::now();
    let mut report = Report::new(Reduction::States);
    let mut seen = Seen::default();
    let root = World::new(bounds);
    let root_fingerprint = root.fingerprint();
    let mut stack = vec![Frame::new(root, root_fingerprint)];
    let mut path: Vec<Event> = Vec::new();
    let mut iterations: u64 = 0;
    while let Some(top) = stack.last_mut() {
        let Some(&event) = top.enabled.get(top.next) else {
            // Every successor done (or none: a leaf, counted below).
            let done = stack.pop().expect("the top frame");
            let paths = match &done.world {
                Some(world) if done.enabled.is_empty() => leaf(&mut report, &path, world),
                _ => done.paths,
            };
            seen.insert(done.fingerprint, paths);
            if let Some(parent) = stack.last_mut() {
                parent.paths.add(paths);
            }
            path.pop();
            continue;
        };
        top.next += 1;
        let last = top.next == top.enabled.len();
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
        let fingerprint = world.fingerprint();
        if let Some(&paths) = seen.get(&fingerprint) {
            top.paths.add(paths);
            report.revisits += 1;
        } else {
            path.push(event);
            report.max_depth = report.max_depth.max(path.len());
            stack.push(Frame::new(world, fingerprint));
        }
        iterations += 1;
        if iterations % 256 == 0 && started.elapsed() >= budget {
            report.complete = false;
            break;
        }
    }
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
        let root = seen.get(&root_fingerprint).copied().unwrap_or_default();
        report.schedules = root.all;
        report.failures = root.failing;
    }
    report.states = Some(seen.len() as u64);
    report.elapsed = started.elapsed();
    Ok(report)
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
