//! A local etcd cluster: members started from the `etcd` binary on PATH,
//! each with its own data directory and loopback ports, for
//! `gcounter cluster --kv etcd` and the tests.
//!
//! Each member runs under a small `sh` watchdog that holds a pipe from us
//! on its standard input: when the pipe closes (we stopped the member,
//! dropped the cluster, or died by any means, SIGKILL included) the
//! watchdog SIGKILLs etcd. So no member outlives its cluster, and
//! [`EtcdCluster::kill`] is a crash, not a clean shutdown.

use super::base64;
use super::client::EtcdClient;
use serde_json::json;
use std::fs::{self, File};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The one line a missing `etcd` gives.
pub const MISSING_ETCD: &str =
    "etcd is not installed: no `etcd` on PATH (on Debian: apt-get install etcd-server)";
/// How long a cluster may take to elect a leader and serve a read.
pub const HEALTHY_TIMEOUT: Duration = Duration::from_secs(20);

/// Finds `etcd` on PATH, or says how to install it.
pub fn find_etcd() -> Result<PathBuf, String> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("etcd"))
        .find(|p| p.is_file())
        .ok_or_else(|| MISSING_ETCD.to_owned())
}

/// One etcd process.
#[derive(Debug)]
pub struct EtcdMember {
    /// `etcd0`, `etcd1`, ...
    pub name: String,
    /// Where clients reach it.
    pub client_addr: SocketAddr,
    pub peer_addr: SocketAddr,
    pub data_dir: PathBuf,
    /// Its standard error, appended to across restarts.
    pub log: PathBuf,
    child: Option<Child>,
}

impl EtcdMember {
    pub fn running(&self) -> bool {
        self.child.is_some()
    }

    fn kill(&mut self) -> io::Result<()> {
        if let Some(mut child) = self.child.take() {
            // Closing the pipe makes the watchdog SIGKILL etcd and exit.
            drop(child.stdin.take());
            child.wait()?;
        }
        Ok(())
    }
}

/// Local etcd members as child processes. Dropping it kills them.
#[derive(Debug)]
pub struct EtcdCluster {
    binary: PathBuf,
    token: String,
    members: Vec<EtcdMember>,
    /// Flags given to every member after ours.
    extra: Vec<String>,
}

impl EtcdCluster {
    /// Starts `count` members with data and logs under `dir` (data from an
    /// earlier cluster there is removed) and waits until the cluster
    /// serves a linearizable read.
    pub fn start(dir: &Path, count: usize, host: IpAddr) -> io::Result<EtcdCluster> {
        Self::start_with(dir, count, host, &[])
    }

    /// [`start`](EtcdCluster::start), with more flags for every member
    /// (such as a small `--quota-backend-bytes`).
    pub fn start_with(
        dir: &Path,
        count: usize,
        host: IpAddr,
        extra: &[&str],
    ) -> io::Result<EtcdCluster> {
        let binary = find_etcd().map_err(|e| io::Error::new(io::ErrorKind::NotFound, e))?;
        fs::create_dir_all(dir)?;
        let ports = crate::local::free_ports(host, 2 * count)?;
        let members = (0..count)
            .map(|i| {
                let name = format!("etcd{i}");
                let data_dir = dir.join(format!("{name}.data"));
                match fs::remove_dir_all(&data_dir) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                    _ => {}
                }
                let log = dir.join(format!("{name}.log"));
                File::create(&log)?;
                Ok(EtcdMember {
                    name,
                    client_addr: SocketAddr::new(host, ports[2 * i]),
                    peer_addr: SocketAddr::new(host, ports[2 * i + 1]),
                    data_dir,
                    log,
                    child: None,
                })
            })
            .collect::<io::Result<Vec<_>>>()?;
        let mut cluster = EtcdCluster {
            binary,
            token: format!("gcounter-{:x}", crate::kv::clock_seed()),
            members,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        for i in 0..count {
            cluster.start_member(i)?;
        }
        cluster.wait_healthy(HEALTHY_TIMEOUT)?;
        Ok(cluster)
    }

    pub fn members(&self) -> &[EtcdMember] {
        &self.members
    }

    /// Every member's client address, for a node's `--kv`.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| m.client_addr.to_string())
            .collect()
    }

    /// SIGKILLs member `i`, as a crash would.
    pub fn kill(&mut self, i: usize) -> io::Result<()> {
        self.members[i].kill()
    }

    /// Starts member `i` (again, on its data directory). It does not wait:
    /// a lone member cannot serve until a quorum is up.
    pub fn start_member(&mut self, i: usize) -> io::Result<()> {
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer_addr))
            .collect();
        let m = &mut self.members[i];
        if m.child.is_some() {
            return Err(io::Error::other(format!("{} is running", m.name)));
        }
        let log = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&m.log)?;
        let client_url = format!("http://{}", m.client_addr);
        let peer_url = format!("http://{}", m.peer_addr);
        let args = [
            "--name".into(),
            m.name.clone(),
            "--data-dir".into(),
            m.data_dir.display().to_string(),
            "--listen-client-urls".into(),
            client_url.clone(),
            "--advertise-client-urls".into(),
            client_url,
            "--listen-peer-urls".into(),
            peer_url.clone(),
            "--initial-advertise-peer-urls".into(),
            peer_url,
            "--initial-cluster".into(),
            initial.join(","),
            "--initial-cluster-token".into(),
            self.token.clone(),
            "--initial-cluster-state".into(),
            "new".into(),
            "--logger".into(),
            "zap".into(),
            "--log-outputs".into(),
            "stderr".into(),
            // Every put is a new revision, and etcd keeps them all unless
            // told: a long run at a few hundred writes a second would grow
            // the database until etcd refuses writes ("database space
            // exceeded"). Keep one minute of history, compacted every
            // minute, so its space is reused. And snapshot every 10,000
            // entries (not 100,000), so the WAL files kept behind a
            // snapshot are purged sooner.
            "--auto-compaction-mode".into(),
            "periodic".into(),
            "--auto-compaction-retention".into(),
            "1m".into(),
            "--snapshot-count".into(),
            "10000".into(),
        ];
        // The watchdog: etcd in the background, and beside it a reader of
        // our pipe that SIGKILLs etcd when the pipe closes; the shell exits
        // with etcd, so an exit on its own shows as the child's. (A
        // background list reads /dev/null unless redirected: hence fd 3.)
        let script = r#"exec 3<&0; "$0" "$@" </dev/null 3<&- & pid=$!
(cat <&3 >/dev/null; kill -9 $pid 2>/dev/null) & wait $pid"#;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(script)
            .arg(&self.binary)
            .args(args)
            .args(&self.extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        // Its own process group: a Ctrl-C in the terminal reaches the
        // cluster, which then stops its members in order.
        #[cfg(unix)]
        std::os::unix::process::CommandExt::process_group(&mut command, 0);
        m.child = Some(command.spawn()?);
        Ok(())
    }

    /// Polls a linearizable Range on every running member until each
    /// answers (a leader is elected and a quorum is up), or fails after
    /// `timeout` naming the member and the end of its log.
    pub fn wait_healthy(&mut self, timeout: Duration) -> io::Result<()> {
        let deadline = Instant::now() + timeout;
        for m in &mut self.members {
            let Some(child) = &mut m.child else { continue };
            let mut client =
                EtcdClient::new(vec![m.client_addr.to_string()], 0, Duration::from_secs(1));
            let probe = json!({"key": base64::encode(b"gcounter-health")});
            loop {
                if let Some(status) = child.try_wait()? {
                    m.child = None;
                    return Err(io::Error::other(format!(
                        "{} exited ({status}); the end of {}:\n{}",
                        m.name,
                        m.log.display(),
                        crate::local::log_tail(&m.log)
                    )));
                }
                if smol::block_on(client.call("/v3/kv/range", &probe)).is_ok() {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(io::Error::other(format!(
                        "{} at {} served no read within {timeout:?}; see {}",
                        m.name,
                        m.client_addr,
                        m.log.display()
                    )));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }

    /// Members that exited on their own since the last call, with how.
    pub fn reap(&mut self) -> Vec<(String, std::process::ExitStatus)> {
        let mut gone = Vec::new();
        for m in &mut self.members {
            if let Some(child) = &mut m.child {
                if let Ok(Some(status)) = child.try_wait() {
                    gone.push((m.name.clone(), status));
                    m.child = None;
                }
            }
        }
        gone
    }

    /// Kills every member.
    pub fn stop(&mut self) {
        for m in &mut self.members {
            if let Err(e) = m.kill() {
                log::warn!("cannot stop {}: {e}", m.name);
            }
        }
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        self.stop();
    }
}
