//! A local etcd cluster: members started from the `etcd` binary on PATH,
//! each with its own data directory and loopback ports, for
//! `gcounter cluster --kv etcd` and the tests.
//!
//! Each member runs under a small `sh` watchdog that holds a pipe from us
//! on its standard input: when the pipe closes (we stopped the member,
//! dropped the cluster, or died by any means, SIGKILL included) the
//! watchdog SIGKILLs etcd. So no member outlives its cluster, and
//! [`EtcdCluster::kill`] is a crash, not a clean shutdown.
//!
//! [`EtcdCluster::start_secure`] runs them as etcd is run in production:
//! TLS on client and peer ports with certificates made at start
//! ([`super::pki`]), `--client-cert-auth`, and authentication on, with a
//! `root` user for setup and a user for the nodes whose role reaches only
//! the counter's keys (`gcounter/`).

use super::base64;
use super::client::{CallError, EtcdClient};
use super::creds::{EtcdCreds, Login, Security};
use super::pki::{write_private, Pki};
use serde_json::{json, Value};
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
/// The etcd user the nodes log in as, and its role.
pub const NODE_USER: &str = "gcounter";
/// The keys the nodes' role may read and write: every cluster's prefix
/// starts so.
pub const NODE_KEYS: &str = "gcounter/";

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
    /// With TLS and authentication: the certificates and the logins.
    secure: Option<Secured>,
    /// Authentication is on: calls need a login.
    auth_enabled: bool,
}

#[derive(Debug)]
struct Secured {
    pki: Pki,
    root: Login,
    /// The nodes' password, in an owner-only file.
    node_password_file: PathBuf,
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
        Self::start_inner(dir, count, host, extra, false)
    }

    /// [`start_with`](EtcdCluster::start_with), with TLS, client
    /// certificates and authentication (see the module's comment); the
    /// certificates and the nodes' password go in `<dir>/pki/`.
    pub fn start_secure(
        dir: &Path,
        count: usize,
        host: IpAddr,
        extra: &[&str],
    ) -> io::Result<EtcdCluster> {
        Self::start_inner(dir, count, host, extra, true)
    }

    fn start_inner(
        dir: &Path,
        count: usize,
        host: IpAddr,
        extra: &[&str],
        secure: bool,
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
            secure: None,
            auth_enabled: false,
        };
        if secure {
            let pki_dir = dir.join("pki");
            cluster.secure = Some(Secured {
                pki: Pki::generate(&pki_dir, host)?,
                root: Login {
                    user: "root".into(),
                    password: crate::auth::nonce()?,
                },
                node_password_file: pki_dir.join("node-password"),
            });
        }
        for i in 0..count {
            cluster.start_member(i)?;
        }
        cluster.wait_healthy(HEALTHY_TIMEOUT)?;
        if cluster.secure.is_some() {
            cluster.enable_auth()?;
        }
        Ok(cluster)
    }

    /// Adds the root user and the nodes' user and role, then turns
    /// authentication on (as `etcdctl user add`, `role add`, `role
    /// grant-permission --prefix`, `user grant-role`, `auth enable`).
    fn enable_auth(&mut self) -> io::Result<()> {
        let secured = self.secure.as_ref().expect("a secure cluster");
        let node_password = crate::auth::nonce()?;
        write_private(&secured.node_password_file, &format!("{node_password}\n"))?;
        let mut client = self.client_as(None, Duration::from_secs(5))?;
        let end = {
            let mut end = NODE_KEYS.as_bytes().to_vec();
            *end.last_mut().expect("a prefix") += 1;
            end
        };
        let root = &secured.root;
        let calls: [(&str, Value); 7] = [
            (
                "/v3/auth/user/add",
                json!({"name": root.user, "password": root.password}),
            ),
            (
                "/v3/auth/user/grant",
                json!({"user": root.user, "role": "root"}),
            ),
            ("/v3/auth/role/add", json!({"name": NODE_USER})),
            (
                "/v3/auth/role/grant",
                json!({"name": NODE_USER, "perm": {"permType": "READWRITE",
                        "key": base64::encode(NODE_KEYS.as_bytes()),
                        "range_end": base64::encode(&end)}}),
            ),
            (
                "/v3/auth/user/add",
                json!({"name": NODE_USER, "password": node_password}),
            ),
            (
                "/v3/auth/user/grant",
                json!({"user": NODE_USER, "role": NODE_USER}),
            ),
            ("/v3/auth/enable", json!({})),
        ];
        for (path, body) in calls {
            smol::block_on(client.call(path, &body))
                .map_err(|e| io::Error::other(format!("setting up etcd's users ({path}): {e}")))?;
        }
        self.auth_enabled = true;
        // What was done, for whoever looks at the directory (the password
        // files hold the secrets, not this).
        let record = format!(
            "user add root (password in memory only); user grant-role root root\n\
             role add {NODE_USER}; role grant-permission {NODE_USER} readwrite --prefix {NODE_KEYS}\n\
             user add {NODE_USER} (password in {}); user grant-role {NODE_USER} {NODE_USER}\n\
             auth enable\n",
            secured.node_password_file.display()
        );
        let dir = secured.node_password_file.parent().expect("in pki/");
        fs::write(dir.join("auth.txt"), record)?;
        Ok(())
    }

    /// Whether the members speak TLS and require logins.
    pub fn is_secure(&self) -> bool {
        self.secure.is_some()
    }

    /// What a node is given to reach the cluster: the CA, the client
    /// certificate, and the nodes' user with its password file. Empty for
    /// a plain cluster.
    pub fn node_creds(&self) -> EtcdCreds {
        match &self.secure {
            None => EtcdCreds::default(),
            Some(s) => EtcdCreds {
                cacert: Some(s.pki.ca.clone()),
                cert: Some(s.pki.client_cert.clone()),
                key: Some(s.pki.client_key.clone()),
                user: Some(NODE_USER.into()),
                password_file: Some(s.node_password_file.clone()),
            },
        }
    }

    /// The certificates, for a secure cluster.
    pub fn pki(&self) -> Option<&Pki> {
        self.secure.as_ref().map(|s| &s.pki)
    }

    /// What the root user connects with (TLS and its login), for setup and
    /// tests; `Security::default()` for a plain cluster.
    pub fn root_security(&self) -> io::Result<Security> {
        let Some(s) = &self.secure else {
            return Ok(Security::default());
        };
        let mut creds = self.node_creds();
        creds.user = None;
        creds.password_file = None;
        let mut security = creds.load(true).map_err(io::Error::other)?;
        security.login = Some(s.root.clone());
        Ok(security)
    }

    /// A client of every member, as root when authentication is on.
    pub fn root_client(&self, timeout: Duration) -> io::Result<EtcdClient> {
        Ok(EtcdClient::new(self.endpoints(), 0, timeout).with_security(&self.root_security()?))
    }

    /// A client of `endpoint` (of every member: `None`) with TLS if the
    /// cluster has it, and root's login once authentication is on.
    fn client_as(&self, endpoint: Option<String>, timeout: Duration) -> io::Result<EtcdClient> {
        let endpoints = endpoint.map_or_else(|| self.endpoints(), |e| vec![e]);
        let mut security = self.root_security()?;
        if !self.auth_enabled {
            security.login = None;
        }
        Ok(EtcdClient::new(endpoints, 0, timeout).with_security(&security))
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
        let scheme = if self.secure.is_some() {
            "https"
        } else {
            "http"
        };
        let initial: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}={scheme}://{}", m.name, m.peer_addr))
            .collect();
        let m = &mut self.members[i];
        if m.child.is_some() {
            return Err(io::Error::other(format!("{} is running", m.name)));
        }
        let log = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&m.log)?;
        let client_url = format!("{scheme}://{}", m.client_addr);
        let peer_url = format!("{scheme}://{}", m.peer_addr);
        let mut args: Vec<String> = vec![
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
        if let Some(secured) = &self.secure {
            let pki = &secured.pki;
            let path = |p: &Path| p.display().to_string();
            // Clients and peers alike must show a certificate our CA
            // signed; members present the one server certificate.
            args.extend([
                "--cert-file".into(),
                path(&pki.server_cert),
                "--key-file".into(),
                path(&pki.server_key),
                "--trusted-ca-file".into(),
                path(&pki.ca),
                "--client-cert-auth".into(),
                "--peer-cert-file".into(),
                path(&pki.server_cert),
                "--peer-key-file".into(),
                path(&pki.server_key),
                "--peer-trusted-ca-file".into(),
                path(&pki.ca),
                "--peer-client-cert-auth".into(),
            ]);
        }
        // Beside its log, for whoever wants to see how the member runs
        // (TLS, --client-cert-auth) without reading its log.
        let mut line = vec![self.binary.display().to_string()];
        line.extend(args.iter().chain(&self.extra).cloned());
        fs::write(m.log.with_extension("args"), line.join(" ") + "\n")?;
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
        let clients = self
            .members
            .iter()
            .map(|m| self.client_as(Some(m.client_addr.to_string()), Duration::from_secs(1)))
            .collect::<io::Result<Vec<_>>>()?;
        for (m, mut client) in self.members.iter_mut().zip(clients) {
            let Some(child) = &mut m.child else { continue };
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
                match smol::block_on(client.call("/v3/kv/range", &probe)) {
                    Ok(_) => break,
                    // A bad certificate or login will not get better.
                    Err(CallError::Refused(why)) => {
                        return Err(io::Error::other(format!("{}: {why}", m.name)))
                    }
                    Err(_) => {}
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
