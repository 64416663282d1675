//! Reports: one run in full, many runs summarized; serializable to JSON and
//! printable for a person.

use crate::checker::{CheckResult, Verdict};
use crate::nemesis::{Latency, NemesisConfig, NemesisRecord};
use crate::services::ServiceCounts;
use crate::sim::{SimConfig, SimError, SimRun};
use crate::stats::{LatencyStats, OpCounts, OpStats, Stats};
use crate::workload::WorkloadConfig;
use gcounter_core::Time;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::{self, Write};

/// The verdict and what it rests on, in the same words for `gcounter
/// sim` and `gcounter test`: the acknowledged sum, the indeterminate adds,
/// the acceptable values and the final reads, then what is lost, over or
/// unknown. `ran` (the run's settings) goes under the verdict.
pub fn write_check(w: &mut impl Write, c: &CheckResult, ran: Option<&str>) -> io::Result<()> {
    writeln!(w, "verdict: {}", c.verdict.name())?;
    if let Some(ran) = ran {
        writeln!(w, "  ran: {ran}")?;
    }
    let finals: Vec<String> = c
        .final_reads
        .iter()
        .map(|r| format!("{} {}", r.node, r.value))
        .collect();
    writeln!(
        w,
        "  acknowledged sum {}, {} indeterminate add(s) (deltas summing to {}); acceptable {}; \
         final reads: {}",
        c.definite_sum,
        c.indeterminate_adds,
        c.indeterminate_sum,
        ranges(&c.acceptable),
        if finals.is_empty() {
            "none".into()
        } else {
            finals.join(", ")
        }
    )?;
    if !c.missing_final_reads.is_empty() {
        writeln!(
            w,
            "  no final read from: {}",
            c.missing_final_reads.join(", ")
        )?;
    }
    writeln!(w, "  lost: {} (a sum of increments)", c.lost)?;
    if let Some((read, above)) = crate::explain::above_acceptable(c) {
        writeln!(
            w,
            "  over: {above} ({}'s final read of {} on {} is above every acceptable value)",
            read.client, read.value, read.node
        )?;
    }
    if let Some(reason) = crate::explain::unknown_reason(c) {
        writeln!(w, "  unknown: {reason}")?;
    } else if let (Verdict::Unknown, Some(note)) = (c.verdict, &c.note) {
        writeln!(w, "  unknown: {note}")?;
    }
    Ok(())
}

/// The settings of a test, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Settings {
    pub strategy: String,
    pub kv: String,
    pub node_count: usize,
    /// Clients.
    pub concurrency: usize,
    #[serde(flatten)]
    pub workload: WorkloadConfig,
    pub nemesis: Option<NemesisConfig>,
    pub latency: Latency,
    /// Whether killed nodes keep what they stored.
    pub persist: bool,
    /// The adversaries that made the run's choices (empty: Maelstrom's
    /// random ones).
    pub adversary: crate::choice::Adversaries,
}

impl Settings {
    pub fn of(cfg: &SimConfig) -> Self {
        Settings {
            strategy: cfg.node.strategy.to_string(),
            kv: cfg.node.kv.to_string(),
            node_count: cfg.node_count,
            concurrency: cfg.concurrency.unwrap_or(cfg.node_count),
            workload: cfg.workload.clone(),
            nemesis: cfg.nemesis.clone(),
            latency: cfg.latency,
            persist: cfg.persist,
            adversary: cfg.adversary.clone(),
        }
    }

    /// One line: `gossip, 3 nodes, seq-kv, 100 ops/s, 20 s + 10 s recovery, ...`.
    pub fn describe(&self) -> String {
        let w = &self.workload;
        let nemesis = match &self.nemesis {
            Some(n) => format!(
                "{} every ~{} s",
                crate::nemesis::Fault::list(&n.faults),
                n.interval.as_secs_f64()
            ),
            None => "no faults".to_string(),
        };
        let kept = if self.persist {
            ", state kept across kills"
        } else {
            ""
        };
        let clients = if self.concurrency == self.node_count {
            String::new()
        } else {
            format!(" ({} clients)", self.concurrency)
        };
        format!(
            "{}, {} nodes{clients}, {}, {} ops/s, {} s + {} s recovery, {nemesis}{kept}, latency {} ms {}, adversary {}",
            self.strategy,
            self.node_count,
            self.kv,
            w.rate,
            w.time_limit.as_secs_f64(),
            w.recovery.as_secs_f64(),
            self.latency.mean.as_secs_f64() * 1000.0,
            self.latency.dist,
            self.adversary,
        )
    }
}

/// One run, in full (the history aside).
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub seed: u64,
    pub settings: Settings,
    pub verdict: Verdict,
    /// The checker's findings (Maelstrom's `:workload` results).
    pub workload: CheckResult,
    pub stats: Stats,
    pub nemesis: Vec<NemesisRecord>,
    pub services: BTreeMap<&'static str, ServiceCounts>,
    pub dropped: u64,
    /// Messages that reached a node while it was killed.
    pub lost_with_killed_nodes: u64,
    /// Why the run is invalid, when it is (a run without a trace
    /// explains what the history and the nemesis log can say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explanation: Option<crate::explain::Explanation>,
    pub undeliverable: u64,
    pub steps: u64,
    #[serde(rename = "end_ns", serialize_with = "crate::nanos::ser")]
    pub end: Time,
}

impl RunReport {
    pub fn of(settings: &Settings, run: &SimRun) -> Self {
        RunReport {
            seed: run.seed,
            settings: settings.clone(),
            verdict: run.check.verdict,
            workload: run.check.clone(),
            stats: run.stats,
            nemesis: run.nemesis.clone(),
            services: run.services.iter().copied().collect(),
            dropped: run.dropped,
            lost_with_killed_nodes: run.lost_to_kills,
            explanation: crate::explain::explain(
                &run.history,
                &run.check,
                &run.trace,
                &run.nemesis,
            ),
            undeliverable: run.undeliverable,
            steps: run.steps,
            end: run.end,
        }
    }

    /// The report for a person.
    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        let c = &self.workload;
        writeln!(
            w,
            "gcounter sim, seed {}: {}",
            self.seed,
            self.settings.describe()
        )?;
        writeln!(w)?;
        write_check(w, c, None)?;
        if let Some(e) = &self.explanation {
            for line in e.lines() {
                writeln!(w, "  {line}")?;
            }
        }
        writeln!(w)?;
        write_ops(w, &self.stats.ops)?;
        writeln!(w)?;
        let net = &self.stats.net;
        writeln!(w, "network            sent   received     unique   msgs/op")?;
        for (name, n) in [
            ("all", &net.all),
            ("clients", &net.clients),
            ("servers", &net.servers),
        ] {
            let per_op = n.msgs_per_op.map_or(String::new(), |m| format!("{m:9.3}"));
            writeln!(
                w,
                "  {name:<9} {:>10} {:>10} {:>10} {per_op}",
                n.send_count, n.recv_count, n.msg_count
            )?;
        }
        if self.dropped > 0 {
            writeln!(w, "  dropped by partitions: {}", self.dropped)?;
        }
        if self.lost_with_killed_nodes > 0 {
            writeln!(
                w,
                "  lost with killed nodes: {}",
                self.lost_with_killed_nodes
            )?;
        }
        if self.undeliverable > 0 {
            writeln!(w, "  sent to unknown nodes: {}", self.undeliverable)?;
        }
        for (name, s) in &self.services {
            if s.requests > 0 {
                writeln!(
                    w,
                    "  {name}: {} requests, {} stale reads",
                    s.requests, s.stale_reads
                )?;
            }
        }
        writeln!(w)?;
        write_latency(w, &self.stats.latency_ms)?;
        writeln!(w)?;
        writeln!(w, "nemesis")?;
        if self.nemesis.is_empty() {
            writeln!(w, "  (no events)")?;
        }
        for r in &self.nemesis {
            writeln!(w, "  {:>8.3} s  {}", r.time.as_secs_f64(), r.event)?;
        }
        writeln!(w)?;
        writeln!(
            w,
            "{} events, {:.3} s of virtual time",
            self.steps,
            self.end.as_secs_f64()
        )?;
        Ok(())
    }
}

/// One range of acceptable values: `a`, or `b..=c`.
pub fn range(&[lo, hi]: &[i128; 2]) -> String {
    if lo == hi {
        lo.to_string()
    } else {
        format!("{lo}..={hi}")
    }
}

/// Acceptable values as `a, b..=c, ...` (the first few ranges).
pub(crate) fn ranges(rs: &[[i128; 2]]) -> String {
    const SHOWN: usize = 8;
    let mut parts: Vec<String> = rs.iter().take(SHOWN).map(range).collect();
    if rs.len() > SHOWN {
        parts.push(format!("... ({} ranges)", rs.len()));
    }
    parts.join(", ")
}

fn write_ops(w: &mut impl Write, ops: &OpStats) -> io::Result<()> {
    writeln!(
        w,
        "operations         count         ok       info       fail"
    )?;
    let row = |w: &mut dyn Write, name: &str, c: &OpCounts| {
        writeln!(
            w,
            "  {name:<9} {:>10} {:>10} {:>10} {:>10}",
            c.count, c.ok, c.info, c.fail
        )
    };
    row(w, "all", &ops.all)?;
    row(w, "add", &ops.add)?;
    row(w, "read", &ops.read)
}

fn write_latency(w: &mut impl Write, lat: &LatencyStats) -> io::Result<()> {
    writeln!(
        w,
        "latency (ms, ok ops)     p50       p95       p99       max     count"
    )?;
    for (name, q) in [("add", &lat.add), ("read", &lat.read)] {
        match q {
            Some(q) => writeln!(
                w,
                "  {name:<18} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9}",
                q.p50, q.p95, q.p99, q.max, q.count
            )?,
            None => writeln!(w, "  {name:<18} (none)")?,
        }
    }
    Ok(())
}

/// What a summary keeps of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDigest {
    pub seed: u64,
    pub verdict: Verdict,
    pub lost: u64,
    pub ops: OpStats,
    pub msgs: u64,
    pub server_msgs: u64,
    pub stale_reads: u64,
    pub dropped: u64,
}

impl RunDigest {
    pub fn of(run: &SimRun) -> Self {
        RunDigest {
            seed: run.seed,
            verdict: run.check.verdict,
            lost: run.check.lost,
            ops: run.stats.ops,
            msgs: run.stats.net.all.msg_count,
            server_msgs: run.stats.net.servers.msg_count,
            stale_reads: run.stale_reads(),
            dropped: run.dropped,
        }
    }
}

/// Lost updates per run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LostSummary {
    pub min: u64,
    pub median: f64,
    pub max: u64,
}

/// Many runs of one configuration.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub settings: Settings,
    pub runs: usize,
    pub valid: usize,
    pub invalid: usize,
    pub unknown: usize,
    /// Runs the simulator could not complete (livelock and the like).
    pub errors: usize,
    pub invalid_seeds: Vec<u64>,
    pub unknown_seeds: Vec<u64>,
    pub error_seeds: Vec<u64>,
    /// Lost updates per completed run.
    pub lost: LostSummary,
    /// Completed runs that lost at least one update.
    pub runs_with_loss: usize,
    /// Unique messages over client operations, over all completed runs.
    pub msgs_per_op: Option<f64>,
    pub server_msgs_per_op: Option<f64>,
    pub ops: OpStats,
    /// Latencies of ok operations of every run, pooled.
    pub latency_ms: LatencyStats,
    pub stale_reads: u64,
    pub dropped: u64,
    /// The first error's text, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Summary {
    /// The summary of `results`, with `latency_ms` the quantiles of their
    /// ok operations (kept apart, so that a digest per seed stays small).
    pub fn of(
        settings: Settings,
        results: &[Result<RunDigest, SimError>],
        latency_ms: LatencyStats,
    ) -> Self {
        let mut s = Summary {
            settings,
            runs: results.len(),
            valid: 0,
            invalid: 0,
            unknown: 0,
            errors: 0,
            invalid_seeds: Vec::new(),
            unknown_seeds: Vec::new(),
            error_seeds: Vec::new(),
            lost: LostSummary::default(),
            runs_with_loss: 0,
            msgs_per_op: None,
            server_msgs_per_op: None,
            ops: OpStats::default(),
            latency_ms,
            stale_reads: 0,
            dropped: 0,
            first_error: None,
        };
        let mut lost = Vec::new();
        let (mut msgs, mut server_msgs) = (0u64, 0u64);
        for r in results {
            match r {
                Ok(d) => {
                    match d.verdict {
                        Verdict::Valid => s.valid += 1,
                        Verdict::Invalid => {
                            s.invalid += 1;
                            s.invalid_seeds.push(d.seed);
                        }
                        Verdict::Unknown => {
                            s.unknown += 1;
                            s.unknown_seeds.push(d.seed);
                        }
                    }
                    lost.push(d.lost);
                    s.runs_with_loss += usize::from(d.lost > 0);
                    s.ops.merge(&d.ops);
                    msgs += d.msgs;
                    server_msgs += d.server_msgs;
                    s.stale_reads += d.stale_reads;
                    s.dropped += d.dropped;
                }
                Err(e) => {
                    s.errors += 1;
                    s.error_seeds.push(e.seed());
                    s.first_error.get_or_insert_with(|| e.to_string());
                }
            }
        }
        lost.sort_unstable();
        if let (Some(&min), Some(&max)) = (lost.first(), lost.last()) {
            let n = lost.len();
            let median = if n % 2 == 1 {
                lost[n / 2] as f64
            } else {
                (lost[n / 2 - 1] as f64 + lost[n / 2] as f64) / 2.0
            };
            s.lost = LostSummary { min, median, max };
        }
        let ops = s.ops.all.count;
        if ops > 0 {
            s.msgs_per_op = Some(msgs as f64 / ops as f64);
            s.server_msgs_per_op = Some(server_msgs as f64 / ops as f64);
        }
        s
    }

    /// The exit status: 0 all valid, 1 any invalid, 2 any unknown and none
    /// invalid, 255 (Jepsen's "crashed") if a run could not be completed
    /// and none was invalid.
    pub fn exit_code(&self) -> u8 {
        if self.invalid > 0 {
            1
        } else if self.errors > 0 {
            255
        } else if self.unknown > 0 {
            2
        } else {
            0
        }
    }

    /// The summary for a person.
    pub fn write(&self, w: &mut impl Write) -> io::Result<()> {
        writeln!(w, "gcounter sim: {}", self.settings.describe())?;
        writeln!(
            w,
            "{} runs: {} valid, {} invalid, {} unknown{}",
            self.runs,
            self.valid,
            self.invalid,
            self.unknown,
            if self.errors > 0 {
                format!(", {} FAILED TO RUN", self.errors)
            } else {
                String::new()
            }
        )?;
        writeln!(
            w,
            "lost updates per run: min {}, median {}, max {} ({} runs lost some)",
            self.lost.min, self.lost.median, self.lost.max, self.runs_with_loss
        )?;
        let f = |m: Option<f64>| m.map_or("-".to_string(), |m| format!("{m:.3}"));
        writeln!(
            w,
            "msgs-per-op: all {}, servers {}",
            f(self.msgs_per_op),
            f(self.server_msgs_per_op)
        )?;
        if self.stale_reads > 0 {
            writeln!(w, "stale seq-kv reads served: {}", self.stale_reads)?;
        }
        writeln!(w)?;
        write_ops(w, &self.ops)?;
        writeln!(w)?;
        write_latency(w, &self.latency_ms)?;
        if let Some(e) = &self.first_error {
            writeln!(w)?;
            writeln!(w, "first failure: {e}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(seed: u64, verdict: Verdict, lost: u64) -> Result<RunDigest, SimError> {
        Ok(RunDigest {
            seed,
            verdict,
            lost,
            ops: OpStats::default(),
            msgs: 0,
            server_msgs: 0,
            stale_reads: 0,
            dropped: 0,
        })
    }

    #[test]
    fn the_exit_status_follows_the_worst_verdict() {
        let settings = Settings::of(&SimConfig::default());
        let summary = |runs: &[Result<RunDigest, SimError>]| {
            Summary::of(settings.clone(), runs, LatencyStats::default())
        };
        let valid = digest(1, Verdict::Valid, 0);
        let unknown = digest(2, Verdict::Unknown, 0);
        let invalid = digest(3, Verdict::Invalid, 5);
        let failed = Err(SimError::Stalled {
            seed: 4,
            at: Time::ZERO,
        });
        assert_eq!(summary(std::slice::from_ref(&valid)).exit_code(), 0);
        assert_eq!(summary(&[valid.clone(), unknown.clone()]).exit_code(), 2);
        assert_eq!(summary(&[unknown.clone(), failed.clone()]).exit_code(), 255);
        let all = summary(&[valid, unknown, invalid, failed]);
        assert_eq!(all.exit_code(), 1);
        assert_eq!(
            (all.valid, all.invalid, all.unknown, all.errors),
            (1, 1, 1, 1)
        );
        assert_eq!(
            (
                all.invalid_seeds.clone(),
                all.unknown_seeds.clone(),
                all.error_seeds.clone()
            ),
            (vec![3], vec![2], vec![4])
        );
        assert_eq!(
            all.lost,
            LostSummary {
                min: 0,
                median: 0.0,
                max: 5
            }
        );
        assert!(all.first_error.unwrap().contains("seed 4"));
    }
}
