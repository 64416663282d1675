//! etcd as it is run outside a laptop (issue 23): TLS with client
//! certificates and users. A running secure etcd reached with etcdctl's
//! flags; each bad credential refused in one line that names it, with
//! exit status 1; and tokens that etcd forgets are obtained again without
//! losing or doubling an acknowledged add.

use crate::common::etcd::{cluster_command, one_member, scratch, ServingCluster, LOOPBACK};
use crate::common::{describe, gcounter, requires};
use crate::etcd::{add_for, converge, etcd_cluster};
use gcounter_core::StrategyKind;
use gcounter_transport_tcp::etcd::cluster::NODE_USER;
use gcounter_transport_tcp::etcd::pki::Pki;
use gcounter_transport_tcp::etcd::{base64_encode, EtcdClient, PASSWORD_ENV};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// `gcounter cluster` against `endpoints` with `flags`, expected to be
/// refused before any node starts.
fn refused_cluster(dir: &Path, endpoints: &str, flags: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = cluster_command(dir, endpoints, flags);
    command.envs(env.iter().copied());
    command.output().unwrap()
}

fn one_line_exit_1(out: &Output, names: &str) {
    assert_eq!(out.status.code(), Some(1), "{}", describe(out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{}", describe(out));
    assert!(stderr.contains(names), "`{names}` not in: {stderr}");
    assert!(
        !stderr.contains("within"),
        "a timeout, not the cause: {stderr}"
    );
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Issue 23, item 4: a wrong CA, a wrong password, and a plain client
/// against a TLS etcd each give one line naming the cause, exit 1.
#[test]
fn bad_etcd_credentials_are_one_line_naming_the_cause() {
    let Some(_) = requires::etcd() else { return };
    let dir = scratch("etcd-bad-creds");
    let etcd = one_member(&dir, true, &[]);
    let pki = etcd.pki().unwrap().clone();
    let creds = etcd.node_creds();
    let https = format!("https://{}", etcd.endpoints()[0]);
    let (cert, key) = (path(&pki.client_cert), path(&pki.client_key));
    let password = creds.password_file.unwrap();
    let user = ["--user", NODE_USER, "--password-file", path(&password)];

    // A CA that did not sign etcd's certificate.
    let other = Pki::generate(&dir.join("other-pki"), LOOPBACK).unwrap();
    let mut flags = vec!["--cacert", path(&other.ca), "--cert", cert, "--key", key];
    flags.extend(user);
    let out = refused_cluster(&dir, &https, &flags, &[]);
    one_line_exit_1(&out, "is --cacert the CA that signed etcd's certificate?");

    // The right CA, a wrong password (from the environment).
    let flags = [
        "--cacert",
        path(&pki.ca),
        "--cert",
        cert,
        "--key",
        key,
        "--user",
        NODE_USER,
    ];
    let out = refused_cluster(&dir, &https, &flags, &[(PASSWORD_ENV, "not-it")]);
    one_line_exit_1(&out, "cannot log in as gcounter");
    one_line_exit_1(&out, "invalid user ID or password");

    // Plain http against the TLS port.
    let out = refused_cluster(&dir, &etcd.endpoints()[0], &user, &[]);
    one_line_exit_1(
        &out,
        "does it speak TLS? then give its endpoints as https://",
    );

    // No login at all against an etcd with authentication on.
    let flags = ["--cacert", path(&pki.ca), "--cert", cert, "--key", key];
    let out = refused_cluster(&dir, &https, &flags, &[]);
    one_line_exit_1(&out, "permission denied (no --user given");

    drop(etcd);
    let _ = std::fs::remove_dir_all(&dir);
}

/// "etcd as you run it": `gcounter cluster` pointed at a running TLS etcd
/// with etcdctl's flags (password from the environment) serves an add.
#[test]
fn the_cluster_command_reaches_a_tls_etcd_with_etcdctl_flags() {
    let Some(_) = requires::etcd() else { return };
    let dir = scratch("etcd-tls-endpoints");
    let etcd = one_member(&dir, true, &[]);
    let creds = etcd.node_creds();
    let password = std::fs::read_to_string(creds.password_file.as_ref().unwrap()).unwrap();
    let https = format!("https://{}", etcd.endpoints()[0]);
    let flags = [
        "--node-count",
        "2",
        "--cacert",
        path(creds.cacert.as_ref().unwrap()),
        "--cert",
        path(creds.cert.as_ref().unwrap()),
        "--key",
        path(creds.key.as_ref().unwrap()),
        "--user",
        NODE_USER,
    ];
    let mut command = cluster_command(&dir, &https, &flags);
    command.env(PASSWORD_ENV, password.trim());
    let cluster = ServingCluster::start(command);
    assert!(
        cluster.table.contains("over TLS, as user gcounter"),
        "{}",
        cluster.table
    );
    let n0 = cluster.addr("n0");
    let add = Command::new(gcounter())
        .args(["client", "--node", &n0, "add", "3"])
        .output()
        .unwrap();
    let read = Command::new(gcounter())
        .args(["client", "--node", &n0, "read"])
        .output()
        .unwrap();
    drop(cluster);
    assert_eq!(add.status.code(), Some(0), "{}", describe(&add));
    assert_eq!(read.stdout, b"3\n", "{}", describe(&read));
    drop(etcd);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Changes the nodes' password to itself: etcd forgets every token it
/// gave the user (and moves its auth revision), as when a token expires.
fn forget_tokens(root: &mut EtcdClient, password_file: &PathBuf) {
    let password = std::fs::read_to_string(password_file).unwrap();
    let change = json!({"name": NODE_USER, "password": password.trim()});
    smol::block_on(root.call("/v3/auth/user/changepw", &change)).unwrap();
}

/// An expired token is obtained again, and the call it failed is made
/// again (it was refused, so not applied): a put is applied once.
#[test]
fn a_forgotten_token_is_renewed_and_the_call_applied_once() {
    let Some(_) = requires::etcd() else { return };
    let dir = scratch("etcd-token");
    let etcd = one_member(&dir, true, &[]);
    let creds = etcd.node_creds();
    let security = creds.load(true).unwrap();
    let t = Duration::from_secs(5);
    let mut node = EtcdClient::new(etcd.endpoints(), 0, t).with_security(&security);
    let mut root = etcd.root_client(t).unwrap();
    let key = base64_encode(b"gcounter/token-test");
    let put = |v: &str| json!({"key": key, "value": base64_encode(v.as_bytes())});
    smol::block_on(node.call("/v3/kv/put", &put("1"))).unwrap();
    forget_tokens(&mut root, creds.password_file.as_ref().unwrap());
    // The node's token is gone; its next put logs in again and is applied.
    smol::block_on(node.call("/v3/kv/put", &put("2"))).unwrap();
    let range = smol::block_on(root.call("/v3/kv/range", &json!({ "key": key }))).unwrap();
    let kv = &range["kvs"][0];
    assert_eq!(kv["value"], base64_encode(b"2"), "{range}");
    // Two puts, two versions: the refused one was not applied as well.
    assert_eq!(kv["version"], "2", "{range}");
    drop(etcd);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A running cluster whose tokens etcd forgets goes on acknowledging
/// adds, and none acknowledged is lost.
#[test]
fn nodes_whose_tokens_are_forgotten_go_on_and_lose_nothing() {
    let Some(_) = requires::etcd() else { return };
    let s = etcd_cluster("etcd-token-nodes", StrategyKind::Cas);
    let etcd = s.cluster.etcd().unwrap();
    let mut root = etcd.root_client(Duration::from_secs(5)).unwrap();
    let password = etcd.node_creds().password_file.unwrap();
    let (a1, u1) = add_for(&s.cluster, Duration::from_millis(500));
    assert!(a1 > 0);
    forget_tokens(&mut root, &password);
    let (a2, u2) = add_for(&s.cluster, Duration::from_millis(1000));
    assert!(a2 > 0, "no add acknowledged once etcd forgot the tokens");
    let (acked, unsure) = (a1 + a2, u1 + u2);
    converge(&s.cluster, acked, acked + unsure, Duration::from_secs(10));
}
