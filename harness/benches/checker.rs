//! The checker on a large history: 1,000,000 operations from 100 clients
//! on 25 nodes (adds of 0..=4 and reads, half each), then one final read
//! per client. Three shapes: a healthy run (0.1 % of adds indeterminate),
//! one where a long partition left 10 % of the adds without an answer, and
//! nodes that answer every add with an indefinite error (every add
//! indeterminate: the largest acceptable set a history this long has).
//! The same last shape again with pn-counter's signed deltas (-5..=4):
//! 500,000 indeterminate adds of both signs.
//!
//! ```sh
//! cargo bench -p gcounter-harness --bench checker
//! ```
//!
//! With `--memory` (`cargo bench -p gcounter-harness --bench checker --
//! --memory`) it instead builds each history once, checks it once, and
//! prints the time taken and the process's peak RSS.

use criterion::{criterion_group, Criterion};
use gcounter_harness::history::{History, Invocation, Outcome};
use gcounter_harness::{check, Verdict};
use std::hint::black_box;
use std::time::Duration;

const OPS: usize = 1_000_000;
const CLIENTS: usize = 100;
const NODES: usize = 25;

/// `ops` operations, a fraction `indeterminate` of the adds left `info`
/// (half of those counted as having happened), then a final read per
/// client that sees every acknowledged add and those.
fn history(ops: usize, indeterminate: f64, signed: bool) -> History {
    let mut rng = fastrand::Rng::with_seed(14);
    let mut h = History::default();
    let clients: Vec<String> = (1..=CLIENTS).map(|c| format!("c{c}")).collect();
    let nodes: Vec<String> = (0..NODES).map(|n| format!("n{n}")).collect();
    let mut total = 0i64;
    for i in 0..ops {
        let c = rng.usize(0..CLIENTS);
        let t = Duration::from_micros(i as u64 * 10);
        let done = t + Duration::from_micros(rng.u64(50..500));
        let (client, node) = (&clients[c], &nodes[c % NODES]);
        if rng.bool() {
            let delta = match signed {
                true => rng.i64(-5..=4),
                false => rng.i64(0..=4),
            };
            let i = h.invoke(Invocation::add(client, node, delta, t));
            if rng.f64() < indeterminate {
                h.complete(i, Outcome::Info, None, None, done);
                if rng.bool() {
                    total += delta;
                }
            } else {
                h.complete(i, Outcome::Ok, None, None, done);
                total += delta;
            }
        } else {
            let i = h.invoke(Invocation::read(client, node, false, t));
            h.complete(i, Outcome::Ok, Some(total), None, done);
        }
    }
    let end = Duration::from_micros(ops as u64 * 10 + 10_000_000);
    for (c, client) in clients.iter().enumerate() {
        let i = h.invoke(Invocation::read(client, &nodes[c % NODES], true, end));
        h.complete(i, Outcome::Ok, Some(total), None, end);
    }
    h
}

const SHAPES: [(&str, f64, bool); 4] = [
    ("0.1%-info", 0.001, false),
    ("10%-info", 0.1, false),
    ("all-adds-info", 1.0, false),
    ("all-adds-info-signed", 1.0, true),
];

fn checker(c: &mut Criterion) {
    let mut group = c.benchmark_group("check/1M-ops");
    group.sample_size(10);
    for (name, indeterminate, signed) in SHAPES {
        let h = history(OPS, indeterminate, signed);
        assert_eq!(check(&h).verdict, Verdict::Valid);
        group.bench_function(name, |b| b.iter(|| black_box(check(black_box(&h)))));
    }
    group.finish();
}

/// Peak resident set of this process, from `/proc/self/status`.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn memory() {
    for (name, indeterminate, signed) in SHAPES {
        let built = std::time::Instant::now();
        let h = history(OPS, indeterminate, signed);
        let built = built.elapsed();
        let before = peak_rss_kb().unwrap_or(0);
        let start = std::time::Instant::now();
        let r = check(&h);
        let took = start.elapsed();
        let after = peak_rss_kb().unwrap_or(0);
        eprintln!(
            "check {name}: {} ops ({} indeterminate adds, {} acceptable ranges) built in \
             {built:.2?}, checked in {took:.2?} ({:?}); peak RSS {} MB with the history, \
             {} MB after checking",
            h.len(),
            r.indeterminate_adds,
            r.acceptable.len(),
            r.verdict,
            before / 1024,
            after / 1024,
        );
        black_box((h, r));
    }
}

criterion_group!(benches, checker);

fn main() {
    if std::env::args().any(|a| a == "--memory") {
        return memory();
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
