//! The simulator gives the same run for the same seed, release after
//! release: a fingerprint of every run of seeds 1..=50 per strategy at the
//! evaluation settings (and 1..=10 at 5 nodes with latency) is compared to
//! the one recorded in `tests/data/sim_fingerprints.txt` before the
//! simulator became a driver of the test core. A change that alters a run
//! must say so by recording the file anew, not slip through.

mod common;

use common::{evaluation, five_nodes_with_latency};
use gcounter_core::StrategyKind;
use gcounter_harness::sim::{self, SimConfig};

const STRATEGIES: [StrategyKind; 4] = [
    StrategyKind::Gossip,
    StrategyKind::PerNode,
    StrategyKind::Cas,
    StrategyKind::Naive,
];

/// FNV-1a: stable across Rust releases, unlike `DefaultHasher`.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One line that changes if anything a user sees of the run changes.
fn fingerprint(label: &str, cfg: &SimConfig, seed: u64) -> String {
    let run = sim::run(cfg, seed).unwrap_or_else(|e| panic!("{label} seed {seed}: {e}"));
    let n = &run.stats.net;
    let nemesis = serde_json::to_string(&run.nemesis).expect("nemesis serializes");
    let services = serde_json::to_string(&run.services).expect("counts serialize");
    format!(
        "{label} {} seed {seed}: {} lost {} history {:016x} ops {} msgs {}/{}/{} \
         servers {}/{}/{} dropped {} nemesis {:016x} services {:016x} end {}",
        cfg.node.strategy,
        run.check.verdict.name(),
        run.check.lost,
        fnv(run.history.to_jsonl().as_bytes()),
        run.history.len(),
        n.all.send_count,
        n.all.recv_count,
        n.all.msg_count,
        n.servers.send_count,
        n.servers.recv_count,
        n.servers.msg_count,
        run.dropped,
        fnv(nemesis.as_bytes()),
        fnv(services.as_bytes()),
        run.end.as_nanos(),
    )
}

fn fingerprints() -> Vec<String> {
    let mut lines = Vec::new();
    for strategy in STRATEGIES {
        let cfg = evaluation(strategy);
        lines.extend((1..=50).map(|seed| fingerprint("evaluation", &cfg, seed)));
        let cfg = five_nodes_with_latency(strategy);
        lines.extend((1..=10).map(|seed| fingerprint("latency", &cfg, seed)));
    }
    lines
}

#[test]
fn the_same_seed_gives_the_same_run_as_recorded() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/sim_fingerprints.txt"
    );
    let recorded = std::fs::read_to_string(path).unwrap_or_default();
    let now = fingerprints();
    let differ: Vec<String> = now
        .iter()
        .zip(recorded.lines())
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("recorded: {b}\n     now: {a}"))
        .collect();
    assert!(
        differ.is_empty() && recorded.lines().count() == now.len(),
        "{} of {} runs differ from {path} (first 5 below); every line now:\n{}\n\n{}",
        differ.len(),
        now.len(),
        now.join("\n"),
        differ
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
