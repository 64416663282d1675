//! `gcounter test`: Maelstrom's g-counter test for any node binary, run as
//! real processes. Flags are named as Maelstrom names them.

use super::run::{run_test, Progress, TestConfig, TestRun};
use super::store::{new_run_dir, write_error, write_results};
use super::NodeCommand;
use crate::params::{parse_strategy, RunParams};
use crate::stats::Quantiles;
use gcounter_core::{Config, StrategyKind};
use serde_json::json;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Runs Maelstrom's g-counter test against node processes that speak
/// Maelstrom's protocol on stdin/stdout (this binary by default).
#[derive(Debug, Clone, clap::Args)]
pub struct TestArgs {
    /// The workload. Only g-counter.
    #[arg(short = 'w', long = "workload", default_value = "g-counter", value_parser = ["g-counter"])]
    pub workload: String,
    /// The node program and its arguments (default: this gcounter binary).
    #[arg(long = "bin", value_name = "PATH [ARGS]...", num_args = 1..)]
    pub bin: Vec<String>,
    #[command(flatten)]
    pub params: RunParams,
    /// Clients: a number, or `Nn` for N per node (default: one per node).
    #[arg(long, value_name = "N|Nn")]
    pub concurrency: Option<String>,
    /// Copy every node's stderr to ours (it is always kept in node-logs/).
    #[arg(long)]
    pub log_stderr: bool,
    /// Where results go: <STORE>/g-counter/<timestamp>/, and <STORE>/latest.
    #[arg(long, value_name = "DIR", default_value = "store")]
    pub store: PathBuf,
    /// Sets GCOUNTER_STRATEGY for the nodes (for the gcounter binary);
    /// otherwise the environment is passed through as it is.
    #[arg(long, value_parser = parse_strategy)]
    pub strategy: Option<StrategyKind>,
}

impl TestArgs {
    fn concurrency(&self) -> Result<usize, String> {
        let nodes = self.params.node_count as usize;
        match self.concurrency.as_deref() {
            None => Ok(nodes),
            Some(c) => {
                let (n, per_node) = match c.strip_suffix('n') {
                    Some(n) => (n, true),
                    None => (c, false),
                };
                let n: usize = n
                    .parse()
                    .map_err(|_| format!("--concurrency {c}: not N or Nn"))?;
                let total = if per_node { n * nodes } else { n };
                if total == 0 {
                    return Err("--concurrency must be at least 1".into());
                }
                Ok(total)
            }
        }
    }

    fn command(&self, self_exe: &Path) -> NodeCommand {
        let (program, args) = match self.bin.split_first() {
            Some((p, rest)) => (PathBuf::from(p), rest.to_vec()),
            None => (self_exe.to_path_buf(), Vec::new()),
        };
        let env = self
            .strategy
            .map(|s| (Config::STRATEGY_VAR.to_string(), s.to_string()))
            .into_iter()
            .collect();
        NodeCommand { program, args, env }
    }
}

/// Runs `gcounter test`; `self_exe` is the node to run without `--bin`.
/// Exit status as Maelstrom's: 0 valid, 1 invalid, 2 unknown; 255 when the
/// test could not run (a node broke the protocol, exited, or never started).
pub fn run(args: &TestArgs, self_exe: &Path) -> ExitCode {
    let concurrency = match args.concurrency() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("gcounter test: {e}");
            return ExitCode::from(2);
        }
    };
    let seed = args.params.seed.unwrap_or_else(|| fastrand::u64(..));
    let dir = match new_run_dir(&args.store, &args.workload) {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "gcounter test: cannot create a results directory in {}: {e}",
                args.store.display()
            );
            return ExitCode::from(255);
        }
    };
    let command = args.command(self_exe);
    let cfg = TestConfig {
        command: command.clone(),
        node_count: args.params.node_count as usize,
        concurrency,
        workload: args.params.workload(),
        nemesis: args.params.nemesis(),
        latency: args.params.latency(),
        seed,
        log_dir: dir.join("node-logs"),
        log_stderr: args.log_stderr,
        init_timeout: Duration::from_secs(10),
    };
    let settings = json!({
        "workload": args.workload,
        "bin": std::iter::once(command.program.display().to_string()).chain(command.args.clone()).collect::<Vec<_>>(),
        "env": command.env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "node_count": cfg.node_count,
        "concurrency": concurrency,
        "workload_config": cfg.workload,
        "nemesis": cfg.nemesis,
        "latency": cfg.latency,
        "seed": seed,
        "replay": format!("gcounter test {}", args.params.flags(seed)),
    });
    eprintln!(
        "gcounter test: {} node(s) of {}, seed {seed}, results in {}",
        cfg.node_count,
        command.program.display(),
        dir.display()
    );
    let result = with_progress(&cfg, |every, report| run_test(&cfg, every, report));
    let nodes = crate::workload::node_ids(cfg.node_count);
    match result {
        Ok(run) => {
            if let Err(e) = write_results(&dir, &run, &settings, &nodes) {
                eprintln!("gcounter test: writing results to {}: {e}", dir.display());
            }
            let _ = print_summary(&mut std::io::stdout().lock(), &run, &dir);
            ExitCode::from(run.check.verdict.exit_code())
        }
        Err(e) => {
            let text = e.to_string();
            let _ = write_error(&dir, &text, &settings);
            eprintln!("gcounter test: error: {text}");
            eprintln!("node logs: {}", dir.join("node-logs").display());
            ExitCode::from(255)
        }
    }
}

/// Runs `f` with a progress bar on a terminal, or a plain line every few
/// seconds when stderr is not one.
fn with_progress<T>(
    cfg: &TestConfig,
    f: impl FnOnce(Duration, &mut dyn FnMut(&Progress)) -> T,
) -> T {
    let total = cfg.workload.time_limit + cfg.workload.recovery;
    if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(total.as_millis() as u64);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} [{bar:30}] {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        let result = f(Duration::from_millis(200), &mut |p| {
            bar.set_position(p.elapsed.as_millis() as u64);
            bar.set_message(line(p));
        });
        bar.finish_and_clear();
        result
    } else {
        f(Duration::from_secs(5), &mut |p| {
            eprintln!("gcounter test: {}", line(p))
        })
    }
}

fn line(p: &Progress) -> String {
    format!(
        "{:.0}/{:.0} s  ok {}  info {}  fail {}  {}  nemesis: {}",
        p.elapsed.as_secs_f64(),
        p.time_limit.as_secs_f64(),
        p.ok,
        p.info,
        p.fail,
        p.phase,
        p.nemesis
    )
}

fn quantiles(q: &Option<Quantiles>) -> String {
    q.map_or("-".into(), |q| {
        format!(
            "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            q.p50, q.p99, q.max
        )
    })
}

/// The short human summary printed at the end.
pub fn print_summary(out: &mut impl Write, run: &TestRun, dir: &Path) -> std::io::Result<()> {
    let c = &run.check;
    let s = &run.stats;
    writeln!(out, "verdict: {}", c.verdict.name())?;
    let finals: Vec<String> = c
        .final_reads
        .iter()
        .map(|r| format!("{} {}", r.node, r.value))
        .collect();
    let acceptable: Vec<String> = c
        .acceptable
        .iter()
        .map(|[lo, hi]| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}..={hi}")
            }
        })
        .collect();
    writeln!(
        out,
        "  acknowledged sum {}, {} indeterminate add(s); acceptable {}; final reads: {}",
        c.definite_sum,
        c.indeterminate_adds,
        acceptable.join(", "),
        finals.join(", ")
    )?;
    if !c.missing_final_reads.is_empty() {
        writeln!(
            out,
            "  no final read from: {}",
            c.missing_final_reads.join(", ")
        )?;
    }
    writeln!(out, "  lost: {}", c.lost)?;
    writeln!(
        out,
        "  operations ok {} / info {} / fail {}",
        s.ops.all.ok, s.ops.all.info, s.ops.all.fail
    )?;
    let mpo = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.3}"));
    writeln!(
        out,
        "  msgs-per-op: all {}, servers {}",
        mpo(s.net.all.msgs_per_op),
        mpo(s.net.servers.msgs_per_op)
    )?;
    writeln!(out, "  add latency: {}", quantiles(&s.latency_ms.add))?;
    writeln!(out, "  read latency: {}", quantiles(&s.latency_ms.read))?;
    writeln!(out, "  results: {}", dir.display())?;
    writeln!(out, "  open {}", dir.join("index.html").display())?;
    Ok(())
}
