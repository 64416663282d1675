//! `gcounter test --runs N`: one verdict is weak evidence, so run the test
//! N times, on consecutive seeds and (unless `--latency` is given) under
//! varied network timing, and summarize: a table of runs with each one's
//! main cause, a page per run and an index page over them.
//!
//! Why vary timing: at zero latency a read-then-write finishes before
//! anything else can happen, so races a node has stay shut; latency of a
//! few to a few hundred milliseconds, and its jitter (uniform, exponential)
//! reorders messages and opens them. The set below spans both.
//!
//! Why cycle adversaries: random choices open a race only now and then;
//! each adversary ([`crate::choice`]) makes the worst legal choice at one
//! kind of choice point every time. Unless `--adversary` is given, run 1
//! keeps Maelstrom's random choices and runs 2 to 4 take one adversary
//! each, so `--runs 4` tries every one.

use super::cli::{run_dir, test_once, Common, TestArgs, Transport};
use super::run::TestRun;
use super::store::{write_error, write_results};
use crate::choice::{Adversaries, Adversary};
use crate::explain::unknown_reason;
use crate::nemesis::LatencyDist;
use crate::page::escape;
use serde::Serialize;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;

/// The network timings `--runs` cycles through: mean latency in ms and
/// its distribution.
pub const TIMINGS: [(f64, LatencyDist); 8] = [
    (0.0, LatencyDist::Constant),
    (5.0, LatencyDist::Exponential),
    (20.0, LatencyDist::Uniform),
    (50.0, LatencyDist::Exponential),
    (100.0, LatencyDist::Exponential),
    (10.0, LatencyDist::Constant),
    (200.0, LatencyDist::Exponential),
    (30.0, LatencyDist::Uniform),
];

/// The choices `--runs` cycles through: Maelstrom's random ones, then the
/// adversaries, so that `--runs 4` tries each. `adds-first` goes with
/// `stale`: alone it only fixes the order of operations, and it is the
/// stalest view that a node's first read-modify-write then acts on.
/// `kill-after-ack` acts only on kills, so it rides with `reorder`.
const CYCLE: [&[Adversary]; 4] = [
    &[],
    &[Adversary::Stale, Adversary::AddsFirst],
    &[Adversary::SlowKv],
    &[Adversary::Reorder, Adversary::KillAfterAck],
];

fn cycled_adversary(i: u64) -> Adversaries {
    Adversaries::of(CYCLE[(i as usize) % CYCLE.len()])
}

/// One run of the series, as the table shows it.
#[derive(Debug, Clone, Serialize)]
struct Row {
    run: u64,
    seed: u64,
    latency: String,
    adversary: String,
    verdict: String,
    lost: Option<u64>,
    /// The sum of the acknowledged adds' deltas: what `lost` is out of.
    acknowledged: Option<i128>,
    /// Operations that completed `ok`.
    completed: Option<u64>,
    cause: String,
    dir: String,
    replay: String,
}

impl Row {
    /// `14 of 15`: the loss against what was acknowledged.
    fn lost_of(&self) -> String {
        match (self.lost, self.acknowledged) {
            (Some(l), Some(a)) => format!("{l} of {a}"),
            _ => "-".into(),
        }
    }

    fn completed(&self) -> String {
        self.completed.map_or("-".into(), |c| c.to_string())
    }
}

/// The counts of a series of runs in one line: `4 runs: 3 valid, ...`.
fn tally(rows: &[Row]) -> String {
    let count = |v: &str| rows.iter().filter(|r| r.verdict == v).count();
    format!(
        "{} runs: {} valid, {} invalid, {} unknown, {} could not run",
        rows.len(),
        count("valid"),
        count("invalid"),
        count("unknown"),
        count("error")
    )
}

/// A replay command as HTML that wraps between flags, never inside one
/// (`--time-limit 20` stays on one line).
fn unbroken_flags(replay: &str) -> String {
    replay
        .split(" --")
        .enumerate()
        .map(|(i, part)| {
            let part = if i == 0 {
                part.to_string()
            } else {
                format!("--{part}")
            };
            format!(r#"<span class="flag">{}</span>"#, escape(&part))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Runs the series, stopping at the first invalid run unless
/// `--keep-going`; the exit status is 1 if any run is invalid, else 2 if
/// any is unknown, else 255 if any could not run, else 0.
pub fn run(args: &TestArgs, self_exe: &Path, concurrency: usize, n: u64) -> ExitCode {
    let first = args.params.seed.unwrap_or_else(|| fastrand::u64(..));
    let batch = match run_dir(args) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let vary = args.params.latency == 0.0 && args.transport == Transport::Stdio;
    let cycle = args.params.adversary.is_none() && args.transport == Transport::Stdio;
    eprintln!(
        "gcounter test: {n} runs, seeds {first}.., {}, {}; results in {}",
        if vary {
            "latency varied from 0 to 200 ms"
        } else {
            "the same network timing each run"
        },
        if cycle {
            "Maelstrom's random choices then each adversary in turn"
        } else {
            "the same choices each run"
        },
        batch.display()
    );
    let mut rows = Vec::new();
    for i in 0..n {
        let mut one = args.clone();
        let seed = first.wrapping_add(i);
        one.params.seed = Some(seed);
        if vary {
            let (ms, dist) = TIMINGS[(i as usize) % TIMINGS.len()];
            one.params.latency = ms;
            one.params.latency_dist = dist;
        }
        if cycle {
            one.params.adversary = Some(cycled_adversary(i));
        }
        let dir = batch.join(format!("run-{:02}", i + 1));
        if let Err(e) = std::fs::create_dir_all(&dir) {
            eprintln!("gcounter test: cannot create {}: {e}", dir.display());
            return ExitCode::from(255);
        }
        let common = Common {
            concurrency,
            seed,
            dir: dir.clone(),
        };
        let (settings, result) = test_once(&one, self_exe, &common);
        let row = record(i + 1, &one, &dir, &batch, &settings, result);
        eprintln!(
            "gcounter test: run {}/{n}: {} (lost {} acknowledged; {} operations completed){}",
            row.run,
            row.verdict,
            row.lost_of(),
            row.completed(),
            if row.cause == "-" {
                String::new()
            } else {
                format!(": {}", row.cause)
            }
        );
        let invalid = row.verdict == "invalid";
        rows.push(row);
        if super::interrupt::requested() {
            break;
        }
        // A hunt ends when it finds: the node is wrong, and the runs left
        // would only say how often.
        if invalid && !args.keep_going && i + 1 < n {
            eprintln!(
                "gcounter test: run {} is invalid: the hunt stops here ({} of {n} runs; \
                 --keep-going runs them all)",
                i + 1,
                i + 1
            );
            break;
        }
    }
    let _ = write_index(&batch, &rows);
    let _ = print_table(&mut std::io::stdout().lock(), &rows, &batch);
    if super::interrupt::requested() {
        eprintln!(
            "gcounter test: interrupted after {} of {n} runs; the results so far are in {}",
            rows.len(),
            batch.display()
        );
        return ExitCode::from(super::interrupt::EXIT);
    }
    let any = |v: &str| rows.iter().any(|r| r.verdict == v);
    let code = if any("invalid") {
        1
    } else if any("unknown") {
        2
    } else if any("error") {
        255
    } else {
        0
    };
    ExitCode::from(code)
}

/// Writes one run's results and makes its row.
fn record(
    run: u64,
    args: &TestArgs,
    dir: &Path,
    batch: &Path,
    settings: &serde_json::Value,
    result: Result<TestRun, String>,
) -> Row {
    let latency = if args.transport == Transport::Tcp {
        "loopback".to_string()
    } else {
        format!("{} ms {}", args.params.latency, args.params.latency_dist)
    };
    let rel = dir.strip_prefix(batch).unwrap_or(dir).display().to_string();
    let replay = settings["replay"].as_str().unwrap_or_default().to_string();
    let seed = args.params.seed.unwrap_or_default();
    let adversary = match args.transport {
        Transport::Tcp => "-".to_string(),
        Transport::Stdio => args.params.adversaries().to_string(),
    };
    let nodes = crate::workload::node_ids(args.params.node_count as usize);
    match result {
        Ok(t) => {
            if let Err(e) = write_results(dir, &t, settings, &nodes) {
                eprintln!("gcounter test: writing results to {}: {e}", dir.display());
            }
            // An unknown run has no loss to explain, but a reason: say it
            // (and what Maelstrom would have called it).
            let cause = t
                .explain()
                .map(|e| e.main_cause())
                .or_else(|| unknown_reason(&t.check))
                .unwrap_or_else(|| "-".into());
            Row {
                run,
                seed,
                latency,
                adversary,
                verdict: t.check.verdict.name().into(),
                lost: Some(t.check.lost),
                acknowledged: Some(t.check.definite_sum),
                completed: Some(
                    t.history
                        .iter()
                        .filter(|op| op.outcome == Some(crate::history::Outcome::Ok))
                        .count() as u64,
                ),
                cause,
                dir: rel,
                replay,
            }
        }
        Err(text) => {
            let _ = write_error(dir, &text, settings);
            Row {
                run,
                seed,
                latency,
                adversary,
                verdict: "error".into(),
                lost: None,
                acknowledged: None,
                completed: None,
                cause: text,
                dir: rel,
                replay,
            }
        }
    }
}

fn print_table(out: &mut impl std::io::Write, rows: &[Row], batch: &Path) -> std::io::Result<()> {
    writeln!(
        out,
        "{:>3}  {:>20}  {:<18}  {:<16}  {:<8}  {:>14}  {:>6}  main cause",
        "run", "seed", "latency", "adversary", "verdict", "lost of acked", "ops ok"
    )?;
    for r in rows {
        writeln!(
            out,
            "{:>3}  {:>20}  {:<18}  {:<16}  {:<8}  {:>14}  {:>6}  {}",
            r.run,
            r.seed,
            r.latency,
            r.adversary,
            r.verdict,
            r.lost_of(),
            r.completed(),
            r.cause
        )?;
    }
    writeln!(out, "{}", tally(rows))?;
    writeln!(
        out,
        "  lost: the acknowledged increments the lowest final read lacks, of their sum"
    )?;
    writeln!(out, "  results: {}", batch.display())?;
    writeln!(out, "  open {}", batch.join("index.html").display())?;
    Ok(())
}

/// `runs.json` and `index.html` over the runs.
fn write_index(batch: &Path, rows: &[Row]) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(rows)?;
    std::fs::write(batch.join("runs.json"), json + "\n")?;
    let mut page = String::from(
        r#"<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>g-counter test: runs</title>
<style>
body { font-family: sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .25em .7em; text-align: left; }
.valid { color: #2e8b57; } .invalid { color: #c0392b; font-weight: bold; } .unknown, .error { color: #e0a000; }
.flag { white-space: nowrap; }
</style></head><body><h1>g-counter test: runs</h1>
"#,
    );
    let _ = writeln!(
        page,
        "<p>{}. <em>lost</em>: the acknowledged increments the lowest final read lacks, \
         of their sum; <em>ops ok</em>: operations that completed.</p>",
        escape(&tally(rows))
    );
    page.push_str(
        "<table><tr><th>run</th><th>seed</th><th>latency</th><th>adversary</th><th>verdict</th>\
         <th>lost of acknowledged</th><th>ops ok</th><th>main cause</th><th>replay</th></tr>\n",
    );
    for r in rows {
        let _ = writeln!(
            page,
            r#"<tr><td><a href="{dir}/index.html">{run}</a></td><td>{seed}</td><td>{lat}</td><td>{adv}</td><td class="{v}">{v}</td><td>{lost}</td><td>{ops}</td><td>{cause}</td><td><code>{replay}</code></td></tr>"#,
            dir = escape(&r.dir),
            run = r.run,
            seed = r.seed,
            lat = escape(&r.latency),
            adv = escape(&r.adversary),
            v = escape(&r.verdict),
            lost = r.lost_of(),
            ops = r.completed(),
            cause = escape(&r.cause),
            replay = unbroken_flags(&r.replay),
        );
    }
    page.push_str("</table></body></html>\n");
    let mut file = std::fs::File::create(batch.join("index.html"))?;
    file.write_all(page.as_bytes())
}
