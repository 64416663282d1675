//! `gcounter explore` on the command line: flags, the report, the SVG
//! of a failing schedule, and the exit status (0 complete and every
//! schedule valid, 1 a failing schedule found, 2 the budget ran out, 64 a
//! usage error, 255 output that could not be written).

use super::bounds::{count, thousands, Bounds, Reduction};
use super::diagram::{self, Footnote};
use super::event::Actor;
use super::narrative;
use super::search::{self, Report};
use gcounter_core::{KvKind, StrategyKind};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Tries every schedule of a small configuration (model checking): every
/// delivery order, every state seq-kv may serve, lost node-to-node
/// messages and timer firings up to the bounds.
#[derive(Debug, Clone, clap::Args)]
pub struct ExploreArgs {
    /// The workload: g-counter, or pn-counter (every other delta negative).
    #[arg(short = 'w', long = "workload", default_value = "g-counter")]
    pub workload: gcounter_harness::workload::WorkloadKind,
    /// How the nodes keep the counter: gossip, per-node, cas, naive or
    /// gossip-max.
    #[arg(long, default_value = "gossip", value_parser = gcounter_harness::params::parse_strategy)]
    pub strategy: StrategyKind,
    /// The KV service the KV strategies use: seq-kv or lin-kv.
    #[arg(long, default_value = "seq-kv", value_parser = parse_kv)]
    pub kv: KvKind,
    /// Server nodes, one client each.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=4))]
    pub node_count: u64,
    /// Adds per client, one at a time (deltas are distinct powers of two).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=6))]
    pub adds: u64,
    /// Node-to-node messages that may be lost, in all (services and
    /// clients never lose messages).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=8))]
    pub losses: u64,
    /// Timer firings per node outside recovery (gossip rounds, KV
    /// retries, KV call deadlines), each at any point while armed.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=8))]
    pub timers: u64,
    /// Give up after this many seconds (exit 2, "incomplete").
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0, value_parser = positive)]
    pub budget: f64,
    /// Where the diagram of a failing schedule goes (default:
    /// `store/explore/<strategy>-<kv>.svg`, beside `gcounter test`'s runs).
    #[arg(long, value_name = "PATH")]
    pub svg: Option<PathBuf>,
    /// How to skip equivalent schedules: states-persistent (each
    /// distinct state once, steps that commute in one order, and a node
    /// whose next steps nothing else can touch run alone), states-sleep
    /// (the same without that), states (each distinct state once, every
    /// schedule counted), dpor (source-DPOR with sleep sets), sleep-sets
    /// (a cross-check), or none (every interleaving and every seq-kv
    /// state: tiny bounds only).
    #[arg(long, default_value = "states-persistent", value_parser = parse_reduction)]
    pub reduction: Reduction,
}

fn parse_kv(s: &str) -> Result<KvKind, String> {
    s.parse()
        .map_err(|e: gcounter_core::config::UnknownValue| e.to_string())
}

fn parse_reduction(s: &str) -> Result<Reduction, String> {
    s.parse()
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("`{s}` is not a positive number of seconds")),
    }
}

impl ExploreArgs {
    pub fn bounds(&self) -> Bounds {
        Bounds {
            node_count: self.node_count as usize,
            adds: self.adds as usize,
            losses: self.losses as u32,
            timers: self.timers as u32,
            reduction: self.reduction,
            workload: self.workload,
            ..Bounds::new(self.strategy, self.kv)
        }
    }
}

/// Runs `gcounter explore`.
pub fn run(args: &ExploreArgs) -> ExitCode {
    match run_to(args, &mut std::io::stdout().lock()) {
        Ok(code) => ExitCode::from(code),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::from(0),
        Err(e) => {
            eprintln!("gcounter explore: {e}");
            ExitCode::from(255)
        }
    }
}

/// Runs `gcounter explore`, writing the report to `out`; returns the
/// exit status.
pub fn run_to(args: &ExploreArgs, out: &mut impl Write) -> std::io::Result<u8> {
    let bounds = args.bounds();
    writeln!(
        out,
        "gcounter explore: every schedule within the bounds, by running the real nodes"
    )?;
    writeln!(out, "{bounds}")?;
    if bounds == Bounds::new(StrategyKind::PerNode, KvKind::SeqKv) {
        writeln!(out, "  note: {}", super::bounds::LARGEST)?;
    }
    writeln!(out, "  budget: {} s", args.budget)?;
    out.flush()?;
    let report = match super::explore(&bounds, Duration::from_secs_f64(args.budget)) {
        Ok(report) => report,
        Err(e) => {
            writeln!(out, "error: {e}; the verdict cannot be trusted")?;
            return Ok(2);
        }
    };
    writeln!(out)?;
    if let Some((path, leaf)) = &report.shortest {
        let scope = if report.complete {
            "search complete"
        } else {
            "search incomplete: the budget ran out"
        };
        match report.states {
            Some(states) if bounds.reduction.counts_end_states() => writeln!(
                out,
                "FAILED: {} of the {} end states {} fail ({scope}; {} explored)",
                thousands(report.failures),
                thousands(report.schedules),
                if report.complete { "in all" } else { "reached" },
                count(states, "distinct state", "distinct states"),
            )?,
            Some(states) => writeln!(
                out,
                "FAILED: {} of the {} schedules {} fail ({scope}; {} explored)",
                thousands(report.failures),
                thousands(report.schedules),
                if report.complete { "in all" } else { "counted" },
                count(states, "distinct state", "distinct states"),
            )?,
            None => writeln!(
                out,
                "FAILED: {} of {} schedules explored fail ({scope})",
                thousands(report.failures),
                thousands(report.schedules),
            )?,
        }
        writeln!(
            out,
            "the shortest failing schedule found, {} steps:",
            path.len()
        )?;
        let world = match search::replay(&bounds, path, true) {
            Ok(w) => w,
            Err(e) => {
                writeln!(out, "error: {e}")?;
                return Ok(2);
            }
        };
        let replayed = world.leaf();
        let Some(trace) = world.into_trace() else {
            return Ok(2);
        };
        write!(out, "{}", narrative::narrative(&trace, &replayed, &bounds))?;
        debug_assert_eq!(replayed.key, leaf.key);
        let why = trace.why();
        if let Some(why) = &why {
            writeln!(out, "why: {}", why.text)?;
        }
        // Under pn-counter one add per client has no decrement after an
        // increment on one node, which is what a max-merge needs to fail.
        if bounds.adds > 1 && bounds.workload == gcounter_harness::workload::WorkloadKind::GCounter
        {
            writeln!(
                out,
                "for the smallest story, try --adds 1 (one add per client)"
            )?;
        }
        let title = format!(
            "gcounter explore: {} on {}, shortest failing schedule ({} steps)",
            bounds.strategy,
            bounds.kv,
            path.len()
        );
        let svg = diagram::svg(&trace, &title, &footnotes(&replayed), why.as_ref());
        let file = args.svg.clone().unwrap_or_else(|| {
            let kv = if bounds.uses_kv() {
                bounds.kv.name()
            } else {
                "no-kv"
            };
            let workload = match bounds.workload {
                gcounter_harness::workload::WorkloadKind::GCounter => "",
                gcounter_harness::workload::WorkloadKind::PnCounter => "-pn-counter",
            };
            PathBuf::from("store/explore").join(format!("{}-{kv}{workload}.svg", bounds.strategy))
        });
        let written = match file.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => std::fs::create_dir_all(dir),
            _ => Ok(()),
        }
        .and_then(|()| std::fs::write(&file, svg));
        match written {
            Ok(()) => writeln!(out, "diagram: {}", file.display())?,
            Err(e) => writeln!(out, "could not write {}: {e}", file.display())?,
        }
        stats(out, &report, bounds.reduction)?;
        return Ok(1);
    }
    let explored = match report.states {
        Some(states) if bounds.reduction.counts_end_states() => format!(
            "{}, {}",
            count(states, "distinct state", "distinct states"),
            count(report.schedules, "end state", "end states"),
        ),
        Some(states) => format!(
            "{}{} {} schedules{}",
            count(states, "distinct state", "distinct states"),
            if report.complete {
                ", which cover all"
            } else {
                " (at least"
            },
            thousands(report.schedules),
            if report.complete { "" } else { " covered)" },
        ),
        None => count(report.schedules, "schedule", "schedules"),
    };
    if report.complete {
        writeln!(
            out,
            "explored {explored}, complete within bounds {}: every one valid",
            bounds.short()
        )?;
        stats(out, &report, bounds.reduction)?;
        Ok(0)
    } else {
        writeln!(
            out,
            "incomplete: the budget of {} s ran out after {explored} (none failed so far, within bounds {})",
            args.budget,
            bounds.short()
        )?;
        writeln!(
            out,
            "raise --budget, or lower --adds, --timers, --losses or --node-count"
        )?;
        stats(out, &report, bounds.reduction)?;
        Ok(2)
    }
}

fn stats(out: &mut impl Write, r: &Report, by: Reduction) -> std::io::Result<()> {
    write!(out, "by {}: ", searcher(by))?;
    if let Some(states) = r.states {
        return writeln!(
            out,
            "{}; {} explored, {} run ({} reached a state already explored); longest schedule {}; {:.1} s",
            count(
                r.outcomes.len() as u64,
                "distinct outcome",
                "distinct outcomes"
            ),
            count(states, "distinct state", "distinct states"),
            count(r.steps, "step", "steps"),
            thousands(r.revisits),
            count(r.max_depth as u64, "step", "steps"),
            r.elapsed.as_secs_f64()
        );
    }
    writeln!(
        out,
        "{}; {} cut by sleep sets; {} run (replays included); longest schedule {}; {:.1} s",
        count(
            r.outcomes.len() as u64,
            "distinct outcome",
            "distinct outcomes"
        ),
        count(r.blocked, "branch", "branches"),
        count(r.steps, "step", "steps"),
        count(r.max_depth as u64, "step", "steps"),
        r.elapsed.as_secs_f64()
    )
}

/// The search that answered, in words.
fn searcher(r: Reduction) -> &'static str {
    match r {
        Reduction::States => "the state search",
        Reduction::StatesPersistent => "the state search with sleep and persistent sets",
        Reduction::StatesSleep => "the state search with sleep sets",
        Reduction::Dpor => "DPOR",
        Reduction::SleepSets => "sleep sets",
        Reduction::None => "the unreduced search",
    }
}

fn footnotes(leaf: &super::world::Leaf) -> Vec<Footnote> {
    leaf.check
        .final_reads
        .iter()
        .filter_map(|r| {
            let k: usize = r.client.strip_prefix('c')?.parse().ok()?;
            let ok = !leaf.check.errors.contains(r);
            let text = if ok {
                format!("final read {}: acceptable", r.value)
            } else {
                let expected: Vec<String> = leaf
                    .check
                    .acceptable
                    .iter()
                    .map(gcounter_harness::report::range)
                    .collect();
                format!("final read {}: expected {}", r.value, expected.join(" or "))
            };
            Some(Footnote {
                actor: Actor::Client(k.checked_sub(1)?),
                text,
                ok,
            })
        })
        .collect()
}
