//! Depth-first search over schedules, by re-execution, with source-DPOR
//! and sleep sets.
//!
//! The search keeps a stack of frames, one per step of the current
//! schedule, each with the events enabled there and, where there is more
//! than one, a copy of the world to branch from (replaying the prefix
//! from scratch, as it did before nodes could be cloned, took half the
//! time). Stepping is deterministic: replaying the failing schedule for
//! its story checks that it ends the same way.
//!
//! # Which branches
//!
//! Source-DPOR (Abdulla, Aronis, Jonsson, Sagonas, "Optimal Dynamic
//! Partial Order Reduction", POPL 2014, Algorithm 1). Events are grouped
//! in processes: a message (its delivery, with every `seq-kv` state it may
//! be served from, or its loss), a node's timer, `Recover`; every
//! alternative of a process is explored whenever the process is. From each
//! state the search first explores one process. Each time it runs an
//! event, it looks back along the schedule for the events it races with:
//! dependent ones of another process that nothing else orders before it.
//! For each race it makes sure that, in the state before the earlier
//! event, some process that could start the reversed order is explored
//! too.
//!
//! Dependence, for races, is non-commutation
//! ([`Footprint::independent`](super::event::Footprint::independent)) and
//! also one event changing the *alternatives* of the other's process: a
//! `seq-kv` request that runs against the newest state may add a state to
//! another client's window (the other's read of an older state commutes
//! with it, but after it the same read has one more state to choose); a
//! loss spends the budget another node-to-node message's loss needs; and
//! a request is in a race with the step that made the `seq-kv` state it
//! reads. Happens-before, the order that cannot be reversed, is the
//! transitive closure of dependence, of "sent the message it delivers",
//! and of phase changes (an event that ends a phase or a recovery round
//! comes after everything before it and before everything after it).
//! Two more rules cover what happens-before cannot show: an event that
//! disables another process (makes `Recover` wait by sending, disarms a
//! timer, spends the last loss) puts that process on its state's list at
//! once; and a race whose reversal no process enabled before it can start
//! (the later event needed the earlier in a way dependence does not show)
//! is not a race.
//!
//! Sleep sets (Godefroid) come on top: after exploring event `a` from a
//! state, a later sibling `b` that commutes with `a` starts with `a`
//! asleep, and `a` stays asleep until something that does not commute
//! with it runs, since running it then would only commute `b` and `a`. A
//! state where every enabled event sleeps is cut ("blocked").
//!
//! Together they explore at least one schedule of every class of
//! schedules equal up to commuting events (Mazurkiewicz traces);
//! equivalent schedules end in the same state, so the same final reads
//! and the same verdict. `--reduction sleep-sets` (sleep sets alone,
//! which explore one schedule of every class) and `--reduction none`
//! check it: the tests compare the distinct outcomes they find.

use super::bounds::{Bounds, Reduction};
use super::event::{Event, Footprint, MsgId};
use super::world::{Leaf, World};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// What a search found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Complete schedules run to their final reads (for the state search
    /// with sleep sets: distinct end states reached).
    pub schedules: u64,
    /// Of those, the failing ones.
    pub failures: u64,
    /// Branches cut because every enabled event slept.
    pub blocked: u64,
    /// Events applied, replays included.
    pub steps: u64,
    /// The longest schedule.
    pub max_depth: usize,
    /// Every distinct outcome (see [`Leaf::key`]).
    pub outcomes: BTreeSet<String>,
    /// Whether every schedule within the bounds was explored.
    pub complete: bool,
    pub elapsed: Duration,
    /// The shortest failing schedule found, and how it ended.
    pub shortest: Option<(Vec<Event>, Leaf)>,
    /// For the search over states: the distinct states explored.
    pub states: Option<u64>,
    /// For the search over states: steps that reached a state already
    /// explored, whose schedules were counted without running them.
    pub revisits: u64,
}

impl Report {
    /// Whether a failing schedule of `len` steps would be the shortest
    /// found so far.
    pub(super) fn beats_shortest(&self, len: usize) -> bool {
        self.shortest.as_ref().is_none_or(|(p, _)| len < p.len())
    }

    /// Nothing found yet, by the search `reduction` names.
    pub fn new(reduction: Reduction) -> Self {
        Report {
            schedules: 0,
            failures: 0,
            blocked: 0,
            steps: 0,
            max_depth: 0,
            outcomes: BTreeSet::new(),
            complete: true,
            elapsed: Duration::ZERO,
            shortest: None,
            states: reduction.searches_states().then_some(0),
            revisits: 0,
        }
    }
}

/// Why a search could not give a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchError {
    /// Replaying a schedule went another way than the first run.
    Nondeterminism(String),
    /// `seq-kv` dropped a state from its 32-state window, which the
    /// reduction assumes never happens.
    WindowOverflow,
    /// A node sent to another node under a strategy whose nodes talk only
    /// to the KV service, which the persistent sets assume.
    NodesTalk,
    /// During the final reads, a node sent a request that could change
    /// what another node's request reads (on `lin-kv`: two nodes'
    /// requests on one key in flight together, one of them a write; on
    /// `seq-kv`: a write but to a sync key), which the persistent sets
    /// there assume never happens.
    KeysCross,
    /// A request read a sync key, or a write to one changed nothing where
    /// it ran, which the state search's fingerprint (it leaves sync keys
    /// out) assumes never happens.
    SyncKeyRead,
}

impl std::fmt::Display for SearchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SearchError::Nondeterminism(why) => {
                write!(f, "replaying a schedule went another way: {why}")
            }
            SearchError::WindowOverflow => write!(
                f,
                "a schedule made seq-kv drop a state from its window, which the reduction \
                 assumes never happens: lower the bounds, or use --reduction none"
            ),
            SearchError::NodesTalk => write!(
                f,
                "a node sent a message to another node, which the persistent sets assume \
                 this strategy never does: use --reduction states-sleep"
            ),
            SearchError::KeysCross => write!(
                f,
                "during the final reads a node sent a request that could change what another \
                 node reads (on lin-kv two nodes' requests on one key at the store together, \
                 one of them a write; on seq-kv a write but to a sync key), which the \
                 persistent sets assume this strategy never does: use --reduction states-sleep"
            ),
            SearchError::SyncKeyRead => write!(
                f,
                "a request read a sync key, or a write to one changed nothing, which the state \
                 search assumes never happens (it leaves sync keys out of a state's \
                 fingerprint): use --reduction dpor"
            ),
        }
    }
}

impl std::error::Error for SearchError {}

/// The events that DPOR schedules as a unit: all of a process's enabled
/// events are explored together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proc {
    Msg(MsgId),
    Timer(usize),
    Recover,
}

fn proc_of(e: Event) -> Proc {
    match e {
        Event::Deliver { msg, .. } | Event::Lose { msg } => Proc::Msg(msg),
        Event::Fire { node } => Proc::Timer(node),
        Event::Recover => Proc::Recover,
    }
}

/// Whether `a` and `b` are dependent for race detection: they do not
/// commute ([`Footprint::independent`]), or one changes which
/// alternatives the other's process has. Two such cases: a `seq-kv`
/// request that runs against the newest state may add a state to another
/// client's window (a read served from an older state commutes with it,
/// but the same read has a new alternative after it); a loss spends the
/// budget that another node-to-node message's loss needs.
fn dependent(a: (Event, Footprint), b: (Event, Footprint)) -> bool {
    use super::event::KvEffect::{Newest, Stands};
    if !a.1.independent(b.1) {
        return true;
    }
    let widens = |x: Footprint, y: Footprint| {
        matches!(
            (x, y),
            (Footprint::Kv(x), Footprint::Kv(y)) if x.effect == Newest && y.effect == Stands
        )
    };
    let lossable = |e: Event| match e {
        Event::Deliver { msg, .. } | Event::Lose { msg } => msg.src.is_node() && msg.dest.is_node(),
        _ => false,
    };
    let loses = |e: Event| matches!(e, Event::Lose { .. });
    widens(a.1, b.1)
        || widens(b.1, a.1)
        || (loses(a.0) && lossable(b.0))
        || (loses(b.0) && lossable(a.0))
}

/// A set of positions in the schedule.
#[derive(Debug, Clone, Default)]
struct Bits(Vec<u64>);

impl Bits {
    fn insert(&mut self, i: usize) {
        let w = i / 64;
        if self.0.len() <= w {
            self.0.resize(w + 1, 0);
        }
        self.0[w] |= 1 << (i % 64);
    }

    fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    fn union(&mut self, other: &Bits) {
        if self.0.len() < other.0.len() {
            self.0.resize(other.0.len(), 0);
        }
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }
}

/// One step of the current schedule, for race detection.
#[derive(Debug)]
struct Entry {
    event: Event,
    fp: Footprint,
    proc: Proc,
    /// The steps that happen before it.
    pred: Bits,
    /// It changed the phase: every later step happens after it.
    barrier: bool,
}

#[derive(Debug)]
struct Frame {
    enabled: Vec<(Event, Footprint)>,
    sleep: Vec<(Event, Footprint)>,
    /// Events explored from here, in order.
    done: Vec<(Event, Footprint)>,
    /// Processes to explore from here (DPOR); grows as races are found.
    backtrack: Vec<Proc>,
    /// Without reduction: the next enabled event to explore.
    next: usize,
    /// The world in this frame's state, to branch from without replaying
    /// the schedule's prefix.
    snapshot: Option<World>,
}

impl Frame {
    /// A frame with the events enabled in its state and its sleep set.
    /// DPOR starts with one process to explore; sleep sets alone, with
    /// every process that has an event awake.
    fn new(
        enabled: Vec<(Event, Footprint)>,
        sleep: Vec<(Event, Footprint)>,
        reduction: Reduction,
    ) -> Self {
        let mut first: Vec<Proc> = Vec::new();
        for &(e, _) in &enabled {
            let p = proc_of(e);
            if !sleep.iter().any(|(s, _)| *s == e) && !first.contains(&p) {
                first.push(p);
            }
        }
        if reduction == Reduction::Dpor {
            first.truncate(1);
        }
        Frame {
            enabled,
            sleep,
            done: Vec::new(),
            backtrack: first,
            next: 0,
            snapshot: None,
        }
    }

    /// Whether every enabled event sleeps.
    fn blocked(&self) -> bool {
        self.backtrack.is_empty()
    }

    /// The next event to explore from here.
    fn pick(&mut self, reduction: Reduction) -> Option<(Event, Footprint)> {
        if reduction == Reduction::None {
            let next = self.enabled.get(self.next).copied();
            self.next += 1;
            return next;
        }
        let asleep = |e: &Event, f: &Frame| {
            f.sleep.iter().any(|(s, _)| s == e) || f.done.iter().any(|(d, _)| d == e)
        };
        for &p in &self.backtrack {
            if let Some(&pick) = self
                .enabled
                .iter()
                .find(|(e, _)| proc_of(*e) == p && !asleep(e, self))
            {
                return Some(pick);
            }
        }
        None
    }
}

/// Rebuilds the world and replays `path`.
pub fn replay(bounds: &Bounds, path: &[Event], traced: bool) -> Result<World, SearchError> {
    let mut w = if traced {
        World::traced(bounds)
    } else {
        World::new(bounds)
    };
    for (i, &e) in path.iter().enumerate() {
        w.apply(e)
            .map_err(|why| SearchError::Nondeterminism(format!("step {}: {why}", i + 1)))?;
    }
    Ok(w)
}

/// What enabled a step, beyond dependence (positions in the schedule).
#[derive(Debug, Clone, Copy)]
struct Causes {
    /// The step that sent the message it delivers.
    sent: Option<usize>,
    /// The step that made the `seq-kv` state it is served from.
    made: Option<usize>,
    /// It changed the phase.
    barrier: bool,
}

/// Records `event` (just run after `entries`) for race detection, and
/// adds to earlier frames the backtrack points its races call for.
fn races(
    entries: &[Entry],
    frames: &mut [Frame],
    event: Event,
    fp: Footprint,
    causes: Causes,
) -> Entry {
    let n = entries.len();
    let proc = proc_of(event);
    // A phase change happens only when nothing else can: everything
    // before it happens before everything after it.
    let phase = entries.iter().rposition(|e| e.barrier).map_or(0, |b| b + 1);
    let mut direct = Vec::new();
    let mut conflicts = Vec::new();
    for (j, earlier) in entries.iter().enumerate().skip(phase) {
        // The step that made the `seq-kv` state `event` reads is a race
        // all the same: before it, the same request has other states to
        // read. The step that sent the message is not.
        let sent = causes.sent == Some(j);
        let dependent =
            dependent((earlier.event, earlier.fp), (event, fp)) || causes.made == Some(j);
        if dependent && earlier.proc != proc && !sent {
            conflicts.push(j);
        }
        if dependent || sent {
            direct.push(j);
        }
    }
    let mut pred = Bits::default();
    for j in 0..phase {
        pred.insert(j);
    }
    for &j in &direct {
        pred.insert(j);
        pred.union(&entries[j].pred);
    }
    for &j in &conflicts {
        // Ordered through something else: not a race.
        if direct.iter().any(|&k| k > j && entries[k].pred.contains(j)) {
            continue;
        }
        // The steps after `j` that do not depend on it, then `event`:
        // run from before `j`, they reverse the race.
        let v: Vec<usize> = (j + 1..n)
            .filter(|&k| !entries[k].pred.contains(j))
            .collect();
        let mut initials: Vec<Proc> = v
            .iter()
            .filter(|&&k| !v.iter().any(|&x| x < k && entries[k].pred.contains(x)))
            .map(|&k| entries[k].proc)
            .collect();
        if !v.iter().any(|&x| pred.contains(x)) {
            initials.push(proc);
        }
        // Only a process with an event enabled before `j` can start the
        // reversal. If none can, the race cannot be reversed: `event`
        // needs `j` in a way dependence does not show (the timer `j`
        // armed, the quiet `Recover` needs).
        let frame = &mut frames[j];
        initials.retain(|&p| frame.enabled.iter().any(|&(e, _)| proc_of(e) == p));
        if initials.is_empty() {
            continue;
        }
        if !initials.iter().any(|p| frame.backtrack.contains(p)) {
            let pick = if initials.contains(&proc) {
                proc
            } else {
                initials[0]
            };
            frame.backtrack.push(pick);
        }
    }
    Entry {
        event,
        fp,
        proc,
        pred,
        barrier: causes.barrier,
    }
}

/// Explores every schedule within `bounds`, or as many as `budget` allows.
pub fn explore(bounds: &Bounds, budget: Duration) -> Result<Report, SearchError> {
    let started = Instant::now();
    let reduction = bounds.reduction;
    let merge = reduction != Reduction::None;
    let mut report = Report::new(reduction);
    let mut world = World::new(bounds);
    let mut path: Vec<Event> = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    // Whether `world` is in the state `path` leads to.
    let mut current = true;
    let mut frames = vec![Frame::new(world.enabled(merge), Vec::new(), reduction)];
    frames[0].snapshot = Some(world.clone());
    if frames[0].enabled.is_empty() {
        record(&mut report, &path, world.leaf());
        frames.clear();
    }
    let mut iterations: u64 = 0;
    while !frames.is_empty() {
        let d = frames.len() - 1;
        let Some((event, fp)) = frames[d].pick(reduction) else {
            frames.pop();
            path.pop();
            entries.pop();
            current = false;
            continue;
        };
        if !current {
            world = match &frames[d].snapshot {
                Some(snapshot) => snapshot.clone(),
                None => replay(bounds, &path, false)?,
            };
        }
        let (sent, made) = world.causes(event);
        let epoch = world.epoch();
        world
            .apply(event)
            .map_err(|why| SearchError::Nondeterminism(format!("step {}: {why}", d + 1)))?;
        report.steps += 1;
        if merge && world.overflowed() {
            return Err(SearchError::WindowOverflow);
        }
        // An event that ended a phase or a recovery round (the last final
        // read answered, say) disables or changes everything enabled
        // beside it, whatever its footprint said: it sleeps nowhere, and
        // nothing sleeps past it.
        let barrier = world.epoch() != epoch;
        let sleeps_as = if barrier { Footprint::Global } else { fp };
        let sleep: Vec<(Event, Footprint)> = if reduction == Reduction::None || barrier {
            Vec::new()
        } else {
            let f = &frames[d];
            f.sleep
                .iter()
                .chain(&f.done)
                .filter(|(_, s)| s.independent(sleeps_as))
                .copied()
                .collect()
        };
        frames[d].done.push((event, sleeps_as));
        let enabled = if world.is_done() {
            Vec::new()
        } else {
            world.enabled(merge)
        };
        if reduction == Reduction::Dpor {
            let step = |s: usize| s.checked_sub(1);
            let causes = Causes {
                sent: step(sent),
                made: step(made),
                barrier,
            };
            let entry = races(&entries, &mut frames, event, fp, causes);
            entries.push(entry);
            disabled(&mut frames[d], event, &enabled);
        }
        path.push(event);
        current = true;
        report.max_depth = report.max_depth.max(path.len());
        let mut child = Frame::new(enabled, sleep, reduction);
        if child.enabled.len() > 1 {
            child.snapshot = Some(world.clone());
        }
        if child.enabled.is_empty() {
            record(&mut report, &path, world.leaf());
        } else if reduction != Reduction::None && child.blocked() {
            report.blocked += 1;
        } else {
            frames.push(child);
            continue;
        }
        path.pop();
        entries.pop();
        current = false;
        iterations += 1;
        if iterations % 64 == 0 && started.elapsed() >= budget {
            report.complete = false;
            break;
        }
    }
    report.elapsed = started.elapsed();
    Ok(report)
}

/// An event that disables another process (consumes what its loss needed,
/// sends what makes `Recover` wait, disarms a timer) races with it in a
/// way no later step can show: explore that process from here too.
fn disabled(frame: &mut Frame, event: Event, after: &[(Event, Footprint)]) {
    let mut gone: Vec<Proc> = Vec::new();
    for &(e, _) in &frame.enabled {
        let q = proc_of(e);
        if q != proc_of(event) && !gone.contains(&q) && !after.iter().any(|&(a, _)| proc_of(a) == q)
        {
            gone.push(q);
        }
    }
    for q in gone {
        if !frame.backtrack.contains(&q) {
            frame.backtrack.push(q);
        }
    }
}

/// Counts a complete schedule, keeps the shortest failing one, and notes
/// its outcome.
pub(super) fn record(report: &mut Report, path: &[Event], leaf: Leaf) {
    report.schedules += 1;
    if leaf.failing() {
        report.failures += 1;
        if report.beats_shortest(path.len()) {
            report.shortest = Some((path.to_vec(), leaf.clone()));
        }
    }
    report.outcomes.insert(leaf.key);
}
