//! `gcounter sim` as the binary runs it: flags parsed by clap, the report
//! written, the exit status.

use clap::Parser;
use gcounter_harness::cli::{run_to, SimArgs};
use serde_json::Value;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    sim: SimArgs,
}

fn sim(args: &str) -> (u8, String) {
    let cli = Cli::try_parse_from(std::iter::once("sim").chain(args.split_whitespace()))
        .unwrap_or_else(|e| panic!("{args}: {e}"));
    let mut out = Vec::new();
    let code = run_to(&cli.sim, &mut out).unwrap();
    (code, String::from_utf8(out).unwrap())
}

#[test]
fn one_seed_gives_a_full_report() {
    let (code, out) =
        sim("--strategy gossip --nemesis partition --time-limit 5 --recovery 1 --seed 3");
    assert_eq!(code, 0, "{out}");
    for needle in [
        "seed 3",
        // The words of `gcounter test`'s summary (issue 20, item 6).
        "verdict: valid",
        "acknowledged sum ",
        "; final reads: n0 ",
        "lost: 0",
        "msgs/op",
        "p99",
        "nemesis",
    ] {
        assert!(out.contains(needle), "no `{needle}` in:\n{out}");
    }
}

#[test]
fn many_seeds_give_a_json_summary() {
    let (code, out) =
        sim("--nemesis partition --time-limit 3 --recovery 1 --seeds 4 --seed 10 --json");
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["runs"], 4);
    assert_eq!(v["valid"], 4);
    assert_eq!(v["invalid"], 0);
    assert_eq!(v["unknown"], 0);
    assert_eq!(v["lost"]["max"], 0);
    assert!(v["server_msgs_per_op"].as_f64().unwrap() > 0.0);
    assert!(v["latency_ms"]["add"]["0.99"].is_number());
    assert!(v["latency_ms"]["read"]["1"].is_number());
    assert_eq!(v["settings"]["strategy"], "gossip");
}

#[test]
fn invalid_runs_exit_1_and_name_a_seed_to_replay() {
    let (code, out) = sim("--strategy naive --time-limit 5 --recovery 1 --seeds 3");
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("invalid seeds: "), "{out}");
    let replay = out
        .lines()
        .find_map(|l| l.strip_prefix("replay one with: gcounter sim "))
        .expect(&out);
    let (code, out) = sim(replay);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("verdict: invalid"), "{out}");
}

#[test]
fn a_rate_of_zero_runs_only_the_final_reads() {
    let (code, out) = sim("--rate 0 --time-limit 1 --recovery 0 --seed 1 --json");
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(v["ops"]["all"]["count"], 3);
    assert_eq!(
        v["run"]["workload"]["final_reads"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
}

#[test]
fn bad_flags_are_refused() {
    for args in [
        "--latency -1",
        "--latency-dist normal",
        "--strategy paxos",
        // `kill` and `pause` are faults now (Maelstrom's names); others are not.
        "--nemesis crash",
        "--nemesis partition,,kill",
        "--node-count 0",
        "--kv lww",
    ] {
        let argv = std::iter::once("sim").chain(args.split_whitespace());
        assert!(Cli::try_parse_from(argv).is_err(), "{args} accepted");
    }
}
