//! etcd behind the KV strategies: real etcd members (the `etcd` binary on
//! PATH, Debian's `etcd-server`; `.ci/run` installs it) on free loopback
//! ports, in directories of their own, stopped when the test ends. Without
//! etcd, each test that needs it is skipped, or fails under
//! `GCOUNTER_TEST_REQUIRE_ALL=1` ([`requires`]). The setup they share
//! with `etcd_tls.rs` is in [`crate::common::etcd`].

use crate::common::etcd::{cluster_command, one_member, scratch, ServingCluster};
use crate::common::{self, assert_reports_lost_updates, describe, gcounter, requires, Store};
use gcounter_core::StrategyKind;
use gcounter_transport_tcp::etcd::EtcdClient;
use gcounter_transport_tcp::{Client, Cluster, ClusterSpec, EtcdBackend};
use std::io::Read;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

fn etcd_test(strategy: &str) -> (Store, std::process::Output) {
    let store = Store(scratch(&format!("etcd-{strategy}")));
    let flags = [
        "--transport",
        "tcp",
        "--kv",
        "etcd",
        "--strategy",
        strategy,
        "--nemesis",
        "partition",
        "--time-limit",
        "10",
    ];
    let out = common::gcounter_test(&store, &flags, Duration::from_secs(90));
    (store, out)
}

fn assert_valid_on_etcd(strategy: &str) {
    let (store, out) = etcd_test(strategy);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let results = store.results();
    assert_eq!(results["verdict"], "valid", "{results}");
    assert_eq!(results["settings"]["kv_backend"], "etcd");
    let ok_adds = results["stats"]["add"]["ok"].as_u64().expect("ok adds");
    assert!(ok_adds > 100, "only {ok_adds} adds acknowledged: {results}");
    // The members' logs are kept with the run's, and their data is not
    // (issue 20, item 7: hundreds of MB of preallocated WAL a run).
    assert!(store.latest().join("node-logs/etcd0.log").is_file());
    // The members ran as etcd runs outside a laptop (issue 23, item 2):
    // TLS with client certificates, and authentication on.
    let cluster = store.latest().join("cluster");
    let args = std::fs::read_to_string(cluster.join("etcd0.args")).unwrap();
    assert!(args.contains("--client-cert-auth"), "{args}");
    assert!(args.contains("--listen-client-urls https://"), "{args}");
    let auth = std::fs::read_to_string(cluster.join("pki/auth.txt")).unwrap();
    assert!(auth.contains("auth enable"), "{auth}");
    let data: Vec<String> = walk(&store.0)
        .into_iter()
        .filter(|p| p.ends_with(".data"))
        .collect();
    assert!(data.is_empty(), "etcd data left behind: {data:?}");
}

/// Every directory under `dir`, as text.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() && !path.is_symlink() {
            found.push(path.display().to_string());
            found.extend(walk(&path));
        }
    }
    found
}

#[test]
fn etcd_cas_is_valid_under_partitions() {
    let Some(_) = requires::etcd() else { return };
    assert_valid_on_etcd("cas");
}

#[test]
fn etcd_per_node_is_valid_under_partitions() {
    let Some(_) = requires::etcd() else { return };
    assert_valid_on_etcd("per-node");
}

/// A read-then-write loses updates on a real database as on Maelstrom's.
#[test]
fn etcd_naive_loses_updates() {
    let Some(_) = requires::etcd() else { return };
    let (store, out) = etcd_test("naive");
    assert_reports_lost_updates(&store, &out);
    assert!(store.results()["explanation"].is_object());
}

#[test]
fn a_missing_etcd_is_one_line_naming_the_package() {
    let out = Command::new(gcounter())
        .args([
            "cluster",
            "--kv",
            "etcd",
            "--strategy",
            "cas",
            "--base-port",
            "0",
        ])
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("etcd-server"), "{stderr}");
}

/// `--kv etcd` with a strategy that keeps no counter in a KV service is
/// refused (issue 20, item 2: it ran gossip and printed "kv etcd").
#[test]
fn etcd_with_a_strategy_that_never_touches_it_is_refused() {
    for args in [
        &["test", "--transport", "tcp", "--kv", "etcd"][..],
        &["cluster", "--kv", "etcd", "--base-port", "0"][..],
    ] {
        let out = Command::new(gcounter()).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(64), "{}", describe(&out));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("would never touch etcd"), "{stderr}");
    }
}

/// How many keys a running etcd holds, all prefixes together.
fn etcd_keys(endpoints: &[String]) -> u64 {
    let mut client = EtcdClient::new(endpoints.to_vec(), 0, Duration::from_secs(5));
    // key = range_end = "\0" (base64 "AA=="): every key. etcd leaves
    // `count` out when it is 0, and gives an int64 as a string.
    let range = serde_json::json!({"key": "AA==", "range_end": "AA==", "count_only": true});
    let answer = smol::block_on(client.call("/v3/kv/range", &range))
        .unwrap_or_else(|e| panic!("etcd range: {e}"));
    answer["count"]
        .as_str()
        .map_or(0, |n| n.parse().expect("count is an integer"))
}

/// The README's `gcounter cluster --kv etcd --etcd-endpoints ...`, against
/// an etcd that runs apart from the cluster: it starts, keeps the counter
/// in that etcd, serves an add and a read, stops cleanly on SIGTERM and
/// leaves the etcd running. The flag once panicked (exit 101, "Mismatch
/// between definition and access of `etcd_endpoints`") for any address.
#[test]
fn the_cluster_command_uses_a_running_etcd_at_its_endpoints() {
    let Some(_) = requires::etcd() else { return };
    let dir = scratch("etcd-endpoints");
    let etcd = one_member(&dir, false, &[]);
    let endpoints = etcd.endpoints();
    assert_eq!(etcd_keys(&endpoints), 0, "a fresh etcd holds no key");
    let flags = ["--node-count", "2"];
    let mut cluster = ServingCluster::start(cluster_command(&dir, &endpoints.join(","), &flags));
    let table = &cluster.table;
    assert!(
        table.contains(&format!("etcd at {}", endpoints.join(","))),
        "{table}"
    );
    let addr = |id: &str| cluster.addr(id);
    let run = |args: &[&str]| Command::new(gcounter()).args(args).output().unwrap();
    let add = run(&["client", "--node", &addr("n0"), "add", "3"]);
    assert_eq!(add.status.code(), Some(0), "{}", describe(&add));
    // The other node reads it, through the same etcd.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let read = run(&["client", "--node", &addr("n1"), "read"]);
        if read.status.success() && read.stdout == b"3\n" {
            break;
        }
        assert!(Instant::now() < deadline, "{}", describe(&read));
        std::thread::sleep(Duration::from_millis(100));
    }
    // The counter is in the etcd we started, not in one of the cluster's.
    assert!(
        etcd_keys(&endpoints) > 0,
        "nothing written to {endpoints:?}"
    );

    // SIGTERM: the cluster stops its nodes and exits 0.
    let pid = cluster.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = cluster.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the cluster did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    let _ = cluster.stderr.read_to_string(&mut err);
    assert!(status.success(), "{status}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!dir.join("cluster/cluster.json").exists());
    // The etcd was not the cluster's to stop: it still serves, data and all.
    assert!(etcd_keys(&endpoints) > 0);
    drop(etcd);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Adds 1 on every node, each node's client one add at a time, all
/// nodes at once, for `during`: `(acknowledged, indeterminate)` sums.
pub(crate) fn add_for(cluster: &Cluster, during: Duration) -> (u64, u64) {
    let ex = smol::LocalExecutor::new();
    smol::block_on(ex.run(async {
        let end = Instant::now() + during;
        let mut tasks = Vec::new();
        for id in cluster.node_ids() {
            let mut c = cluster.client(&id, &format!("c-{id}")).await.unwrap();
            tasks.push(ex.spawn(async move {
                let (mut acked, mut unsure) = (0, 0);
                while Instant::now() < end {
                    match c.add(1, Duration::from_secs(2)).await {
                        Ok(()) => acked += 1,
                        Err(e) if e.is_definite() => {}
                        Err(_) => unsure += 1,
                    }
                }
                (acked, unsure)
            }));
        }
        let (mut acked, mut unsure) = (0, 0);
        for t in tasks {
            let (a, u) = t.await;
            acked += a;
            unsure += u;
        }
        (acked, unsure)
    }))
}

/// Reads every node until each read is within `lo..=hi`, or panics after
/// `within` with the last values.
pub(crate) fn converge(cluster: &Cluster, lo: u64, hi: u64, within: Duration) {
    let deadline = Instant::now() + within;
    smol::block_on(async {
        loop {
            let mut values = Vec::new();
            for id in cluster.node_ids() {
                let value = match Client::connect(&cluster.node(&id).unwrap().addr.to_string(), "r")
                    .await
                {
                    Ok(mut c) => c.read(Duration::from_secs(2)).await.ok(),
                    Err(_) => None,
                };
                values.push(value);
            }
            if values
                .iter()
                .all(|v| v.is_some_and(|v| (lo..=hi).contains(&v)))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "reads {values:?} are not within {lo}..={hi}"
            );
            smol::Timer::after(Duration::from_millis(100)).await;
        }
    })
}

/// Cluster and directory; the cluster goes first.
pub(crate) struct Setup {
    pub(crate) cluster: Cluster,
    dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.cluster.stop();
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub(crate) fn etcd_cluster(name: &str, strategy: StrategyKind) -> Setup {
    let dir = scratch(name);
    let mut spec = ClusterSpec::new(gcounter(), &dir);
    spec.strategy = strategy;
    // The tested path is the secure one: TLS, client certificates, users.
    spec.etcd = Some(EtcdBackend::Local {
        members: 3,
        secure: true,
    });
    let cluster = Cluster::start(spec).unwrap_or_else(|e| panic!("cluster start: {e}"));
    Setup { cluster, dir }
}

/// Issue 24, item 7: past etcd's space quota every write is refused, no
/// add is acknowledged, and reads go on: `per-node` and `cas` read without
/// their sync write when etcd refuses it.
#[test]
fn past_etcds_quota_no_add_is_acknowledged_and_reads_go_on() {
    let Some(_) = requires::etcd() else { return };
    for strategy in [StrategyKind::PerNode, StrategyKind::Cas] {
        let dir = scratch(&format!("etcd-quota-{strategy}"));
        let etcd = one_member(&dir, false, &["--quota-backend-bytes", "200000"]);
        let mut spec = ClusterSpec::new(gcounter(), dir.join("cluster"));
        spec.strategy = strategy;
        spec.nodes = 2;
        spec.etcd = Some(EtcdBackend::External {
            endpoints: etcd.endpoints(),
            creds: Default::default(),
        });
        let mut cluster = Cluster::start(spec).unwrap_or_else(|e| panic!("cluster: {e}"));
        let t = Duration::from_secs(5);
        let before = smol::block_on(async {
            let mut c = cluster.client("n0", "c1").await.unwrap();
            c.add(5, t).await.unwrap();
            c.read(t).await.unwrap()
        });
        // Fill etcd past its quota beside the counter's keys: 400-byte
        // values ("eHh4..." is "xxx..." in base64) under 64 keys.
        let mut filler = EtcdClient::new(etcd.endpoints(), 0, t);
        let value = "eHh4".repeat(100);
        let refused = (0..5000).any(|i| {
            let key = format!("Zm9v{:04}", i % 64); // "foo" and digits: valid base64
            let put = serde_json::json!({"key": key, "value": value});
            smol::block_on(filler.call("/v3/kv/put", &put)).is_err()
        });
        assert!(refused, "etcd never refused a write past its quota");
        smol::block_on(async {
            let mut c = cluster.client("n1", "c2").await.unwrap();
            // Not acknowledged. (Its outcome is indeterminate: the node
            // answers before it knows that every retry of its write will
            // be refused too.)
            let add = c.add(1, t).await;
            assert!(
                add.is_err(),
                "{strategy}: an add past the quota gave {add:?}"
            );
            let read = c.read(t).await;
            assert!(
                read.as_ref().is_ok_and(|v| *v >= before),
                "{strategy}: a read while etcd refuses writes gave {read:?}"
            );
        });
        cluster.stop();
        drop(etcd);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// One member down, a majority up: the counter goes on and loses nothing.
#[test]
fn killing_one_etcd_member_loses_nothing() {
    let Some(_) = requires::etcd() else { return };
    for strategy in [StrategyKind::PerNode, StrategyKind::Cas] {
        let mut s = etcd_cluster(&format!("etcd-kill-one-{strategy}"), strategy);
        let (a1, u1) = add_for(&s.cluster, Duration::from_millis(1000));
        s.cluster.etcd_mut().unwrap().kill(0).unwrap();
        // Long enough for an election (a second) if the leader went, and
        // for the adds caught by the kill to time out.
        let (a2, u2) = add_for(&s.cluster, Duration::from_millis(4000));
        assert!(
            a2 > 0,
            "{strategy}: nothing acknowledged with two members of three"
        );
        s.cluster.etcd_mut().unwrap().start_member(0).unwrap();
        let (acked, unsure) = (a1 + a2, u1 + u2);
        converge(&s.cluster, acked, acked + unsure, Duration::from_secs(10));
    }
}

/// Two members down: no quorum, so no add is acknowledged; once they are
/// back, everything acknowledged before is there and the counter goes on.
#[test]
fn losing_etcd_quorum_and_getting_it_back_loses_nothing_acknowledged() {
    let Some(_) = requires::etcd() else { return };
    let mut s = etcd_cluster("etcd-quorum", StrategyKind::Cas);
    let (a1, u1) = add_for(&s.cluster, Duration::from_millis(1000));
    assert!(a1 > 0);
    let etcd = s.cluster.etcd_mut().unwrap();
    etcd.kill(1).unwrap();
    etcd.kill(2).unwrap();
    let (a2, u2) = add_for(&s.cluster, Duration::from_millis(2000));
    assert_eq!(a2, 0, "an add was acknowledged by one member of three");
    let etcd = s.cluster.etcd_mut().unwrap();
    etcd.start_member(1).unwrap();
    etcd.start_member(2).unwrap();
    etcd.wait_healthy(Duration::from_secs(20)).unwrap();
    let (a3, u3) = add_for(&s.cluster, Duration::from_millis(1000));
    assert!(a3 > 0, "nothing acknowledged once quorum was back");
    let (acked, unsure) = (a1 + a3, u1 + u2 + u3);
    converge(&s.cluster, acked, acked + unsure, Duration::from_secs(10));
}
