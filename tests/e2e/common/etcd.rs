//! What the etcd tests (`etcd.rs`, `etcd_tls.rs`) share: a scratch
//! directory, a one-member etcd in it, and `gcounter cluster` pointed at
//! an etcd, started and waited for until it serves.
//!
//! Data goes under /dev/shm when there is one: etcd fsyncs every commit,
//! and on a disk shared with builds one fsync can take seconds, which
//! tests the disk rather than the counter.

use super::gcounter;
use gcounter_transport_tcp::etcd::PASSWORD_ENV;
use gcounter_transport_tcp::EtcdCluster;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};

pub const LOOPBACK: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An empty directory for test `name`, under /dev/shm if there is one.
pub fn scratch(name: &str) -> PathBuf {
    let shm = PathBuf::from("/dev/shm");
    let base = if shm.is_dir() {
        shm
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("gcounter-e2e-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// A one-member etcd in `dir/etcd` on loopback, started with etcd's own
/// flags `extra`; `secure`: TLS with client certificates, and users.
pub fn one_member(dir: &Path, secure: bool, extra: &[&str]) -> EtcdCluster {
    let dir = dir.join("etcd");
    let started = if secure {
        EtcdCluster::start_secure(&dir, 1, LOOPBACK, extra)
    } else {
        EtcdCluster::start_with(&dir, 1, LOOPBACK, extra)
    };
    started.unwrap_or_else(|e| panic!("etcd: {e}"))
}

/// `gcounter cluster --kv etcd --strategy cas` on free ports, in
/// `dir/cluster`, against the etcd at `endpoints`, with `flags`. The
/// developer's RUST_LOG and etcd password stay out of it.
pub fn cluster_command(dir: &Path, endpoints: &str, flags: &[&str]) -> Command {
    let mut cmd = Command::new(gcounter());
    cmd.args(["cluster", "--kv", "etcd", "--strategy", "cas"])
        .args(["--base-port", "0", "--etcd-endpoints", endpoints])
        .args(flags)
        .arg("--dir")
        .arg(dir.join("cluster"))
        .env_remove("RUST_LOG")
        .env_remove(PASSWORD_ENV)
        .stdin(Stdio::null());
    cmd
}

/// A `gcounter cluster` that printed its table, so serves; killed when
/// dropped (a test that fails midway leaves no cluster running).
pub struct ServingCluster {
    pub child: Child,
    pub stderr: ChildStderr,
    /// What it printed, up to and with the control line.
    pub table: String,
}

impl ServingCluster {
    /// Starts `cmd` (see [`cluster_command`]) and reads its table; panics
    /// with its stderr if it exits before printing it.
    pub fn start(mut cmd: Command) -> ServingCluster {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("gcounter cluster starts");
        let mut stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut cluster = ServingCluster {
            child,
            stderr,
            table: String::new(),
        };
        // The table ends with the control line.
        let mut byte = [0u8; 1];
        while !cluster.table.lines().any(|l| l.starts_with("control")) {
            if stdout.read(&mut byte).unwrap() == 0 {
                let mut err = String::new();
                let _ = cluster.stderr.read_to_string(&mut err);
                let status = cluster.child.wait().unwrap();
                panic!(
                    "the cluster exited ({status}) before serving:\n{}\n{err}",
                    cluster.table
                );
            }
            cluster.table.push(byte[0] as char);
        }
        cluster
    }

    /// Node `id`'s address, from the table.
    pub fn addr(&self, id: &str) -> String {
        let row = self
            .table
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .unwrap_or_else(|| panic!("no {id} in {}", self.table));
        row.split_whitespace().nth(1).unwrap().to_owned()
    }
}

impl Drop for ServingCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
